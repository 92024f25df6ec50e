//! Skipped tests, said loudly and counted.
//!
//! libtest keeps what a passing test prints with `eprintln!` to itself, so a
//! skip is written straight to the process's stderr, where it shows in the
//! run. With `TOCSIN_TEST_TALLY_DIR` set, every PostgreSQL test also leaves a
//! file there, `postgres/<test>.ran` or `postgres/<test>.skipped`, which
//! `.ci/run` sums up into `PostgreSQL tests: N ran, M skipped` (and fails on
//! a skip).

use std::io::Write;
use std::path::PathBuf;

/// The name libtest runs the calling test under (its thread's name).
pub fn current_test() -> String {
    std::thread::current().name().filter(|n| *n != "main").unwrap_or("a test").to_owned()
}

/// Says that `test` was skipped, and why, where the run shows it.
pub fn say(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
}

/// What became of a test that needs a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ran,
    Skipped,
}

/// Records in `TOCSIN_TEST_TALLY_DIR/<kind>/` whether `test` ran or was
/// skipped; nothing without the variable.
pub fn tally(kind: &str, test: &str, outcome: Outcome) {
    let Some(dir) = std::env::var_os("TOCSIN_TEST_TALLY_DIR").filter(|d| !d.is_empty()) else { return };
    let dir = PathBuf::from(dir).join(kind);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("TOCSIN_TEST_TALLY_DIR: {}: {e}", dir.display()));
    let (this, other) = match outcome {
        Outcome::Ran => ("ran", "skipped"),
        Outcome::Skipped => ("skipped", "ran"),
    };
    let _ = std::fs::remove_file(dir.join(format!("{test}.{other}")));
    let path = dir.join(format!("{test}.{this}"));
    std::fs::write(&path, "").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
