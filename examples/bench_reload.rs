//! Rules reload benchmark (not a test): what a reload costs the daemon,
//! that is reading and checking the folder as `tocsin check` does and
//! putting the result in force ([`tocsin::rules::LiveRules`]), for the
//! shipped folder and for a large generated one (500 people, 50 schedules,
//! 200 routes with patterns), 50 times each after one warm-up.
//!
//!     cargo run --release --example bench_reload

use std::fmt::Write as _;
use std::time::Instant;

use tocsin::rules::LiveRules;

fn stats(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let p = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    format!("p50 {:7.2} ms   p95 {:7.2} ms   max {:7.2} ms", p(0.5), p(0.95), p(1.0))
}

/// The shipped folder plus `people` engineers, `schedules` rotations of
/// them and `routes` subject routes.
fn large(dir: &std::path::Path, people: usize, schedules: usize, routes: usize) -> anyhow::Result<()> {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    for f in std::fs::read_dir(&shipped)? {
        let f = f?;
        std::fs::copy(f.path(), dir.join(f.file_name()))?;
    }
    let mut p = String::new();
    for i in 0..people {
        write!(
            p,
            "[[person]]\nid = \"eng{i}\"\nname = \"Engineer {i}\"\nemail = \"eng{i}@example.com\"\nphone = \"+1555{i:07}\"\ntimezone = \"Europe/London\"\nrole = \"engineer\"\nchannels = [\"sms\", \"email\"]\n\n"
        )?;
    }
    std::fs::write(dir.join("people-more.toml"), p)?;
    let mut s = String::new();
    for k in 0..schedules {
        let members: Vec<String> = (0..10).map(|j| format!("\"eng{}\"", (k * 10 + j) % people)).collect();
        write!(
            s,
            "[schedule.team{k}]\ntimezone = \"Europe/London\"\n[[schedule.team{k}.layer]]\nmembers = [{}]\nshift = \"1w\"\nstart = \"2026-11-02T09:00\"\n\n",
            members.join(", ")
        )?;
    }
    std::fs::write(dir.join("schedules-more.toml"), s)?;
    let mut r = String::new();
    for k in 0..routes {
        write!(r, "[[route]]\nsubject = \"(?i)\\\\bproduct{k}\\\\b\"\npriority = \"P2\"\npolicy = \"standard\"\n\n")?;
    }
    // Before the shipped routes (the last must match everything): a file
    // that sorts first.
    std::fs::write(dir.join("a-routing-more.toml"), r)?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let big = tempfile::tempdir()?;
    large(big.path(), 500, 50, 200)?;
    for (name, dir) in [("shipped rules/", shipped.as_path()), ("500 people, 50 schedules, 200 routes", big.path())] {
        let first = tocsin::rules::load(dir).map_err(|d| anyhow::anyhow!("{d:?}"))?;
        println!("{name}: {}", first.summary());
        let live = LiveRules::new(first);
        let mut times = Vec::new();
        for _ in 0..50 {
            let start = Instant::now();
            let rules = tocsin::rules::load(dir).map_err(|d| anyhow::anyhow!("{d:?}"))?;
            live.replace(rules);
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        println!("  read, check and put in force: {}", stats(times));
        // What a decision pays to take the rules in force.
        let start = Instant::now();
        for _ in 0..1_000_000 {
            std::hint::black_box(live.get());
        }
        println!("  taking the rules in force (LiveRules::get): {:.0} ns", start.elapsed().as_nanos() as f64 / 1e6);
    }
    Ok(())
}
