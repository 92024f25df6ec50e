//! SMTP intake benchmark (not a test): mails per second through the SMTP
//! listener into durable inbox rows (the 250s), and on into filed cases;
//! beside it the raw single-row commit rate of the same database: for
//! SQLite a file on the same disk with the same settings, for PostgreSQL a
//! loop of single-row inserts on the same server (through `psql`).
//!
//!     cargo run --release --example bench_intake -- [MAILS] [CONNECTIONS] [--database URL]
//!
//! Without `--database` each phase gets a fresh temporary SQLite file. With
//! it, the phases share that database and count the cases they add.

mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tocsin::app::{App, Listeners, Workers};
use tocsin::clock::SystemClock;
use tocsin::config::Config;
use tocsin::notify::Templates;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return all;
        }
        all += &line;
        if line.as_bytes().get(3) != Some(&b'-') {
            return all;
        }
    }
}

/// One client connection sending `count` mails; returns how many got 250.
/// `run` keeps Message-IDs unique across runs on one database.
async fn client(addr: std::net::SocketAddr, run: u64, first: usize, count: usize) -> usize {
    let (r, mut w) = TcpStream::connect(addr).await.expect("connect").into_split();
    let mut r = BufReader::new(r);
    reply(&mut r).await;
    w.write_all(b"EHLO bench\r\n").await.unwrap();
    reply(&mut r).await;
    let mut ok = 0;
    for i in first..first + count {
        let mail =
            format!("MAIL FROM:<user{i}@customer{}.example>\r\nRCPT TO:<help@support.example.com>\r\nDATA\r\n", i % 50);
        w.write_all(mail.as_bytes()).await.unwrap();
        for _ in 0..3 {
            reply(&mut r).await;
        }
        let body = format!(
            "From: User {i} <user{i}@customer{}.example>\r\nTo: help@support.example.com\r\nSubject: Problem number {i}\r\nMessage-ID: <bench{run}.{i}@customer.example>\r\n\r\nSomething is wrong with order {i}.\r\n.\r\n",
            i % 50
        );
        w.write_all(body.as_bytes()).await.unwrap();
        if reply(&mut r).await.starts_with("250") {
            ok += 1;
        }
    }
    w.write_all(b"QUIT\r\n").await.unwrap();
    ok
}

/// Single-row commits per second on the server of `url`: `psql` runs `n`
/// autocommitted inserts on one connection; a run with none is subtracted
/// (connecting).
fn raw_commit_rate_postgres(url: &str, n: usize) -> anyhow::Result<f64> {
    let psql = |sql: String| -> anyhow::Result<f64> {
        let start = Instant::now();
        let out = std::process::Command::new("psql")
            .args([url, "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                if let Some(mut stdin) = child.stdin.take() {
                    stdin.write_all(sql.as_bytes())?;
                }
                child.wait()
            })
            .map_err(|e| anyhow::anyhow!("cannot run psql (needed for the raw PostgreSQL rate): {e}"))?;
        anyhow::ensure!(out.success(), "psql failed");
        Ok(start.elapsed().as_secs_f64())
    };
    let table = "tocsin_bench_raw_commits";
    let setup = format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id bigserial PRIMARY KEY, v bytea);\n");
    let payload = "x".repeat(300);
    let inserts: String = (0..n).map(|_| format!("INSERT INTO {table} (v) VALUES ('{payload}');\n")).collect();
    let teardown = format!("DROP TABLE {table};\n");
    let base = psql(format!("{setup}{teardown}"))?;
    let with = psql(format!("{setup}{inserts}{teardown}"))?;
    Ok(n as f64 / (with - base).max(1e-6))
}

async fn raw_commit_rate(dir: &std::path::Path, n: usize) -> f64 {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::{ConnectOptions, Executor};
    let options = SqliteConnectOptions::new()
        .filename(dir.join("raw.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let mut conn = options.connect().await.unwrap();
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)").await.unwrap();
    let payload = vec![b'x'; 300];
    let start = Instant::now();
    for _ in 0..n {
        sqlx::query("INSERT INTO t (v) VALUES (?)").bind(&payload).execute(&mut conn).await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

struct Daemon {
    app: App,
    store: Arc<dyn tocsin::store::Store>,
    _dir: tempfile::TempDir,
}

async fn daemon(args: &harness::Args, workers: Workers) -> anyhow::Result<Daemon> {
    let dir = tempfile::tempdir()?;
    let mut config: Config = harness::config(args, dir.path());
    // The load comes from one client address, over many connections.
    config.smtp.max_connections_per_ip = config.smtp.max_connections;
    // Thousands of new cases from 50 domains in a minute is the flood the
    // new-case limits stop; raised out of reach here, so every mail still
    // opens a case and the limits' counting is part of what is measured.
    config.email.new_cases_per_sender_per_hour = 1_000_000;
    config.email.new_cases_per_domain_per_hour = 1_000_000;
    let store = tocsin::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
    let listeners = Listeners {
        http: tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        smtp: Some(tokio::net::TcpListener::bind("127.0.0.1:0").await?),
    };
    let rules = tocsin::rules::load(&config.paths.rules).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let templates = Templates::load(&config.paths.templates).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let app = App::start(&config, rules, templates, store.clone(), Arc::new(SystemClock), listeners, workers).await?;
    Ok(Daemon { app, store, _dir: dir })
}

/// Sends `mails` over `connections` SMTP connections; returns how many got
/// 250 and the seconds it took.
async fn send_all(addr: std::net::SocketAddr, mails: usize, connections: usize) -> anyhow::Result<(usize, f64)> {
    let start = Instant::now();
    let per = mails / connections;
    let run = rand_run();
    let clients: Vec<_> = (0..connections).map(|c| tokio::spawn(client(addr, run, c * per, per))).collect();
    let mut accepted = 0;
    for c in clients {
        accepted += c.await?;
    }
    Ok((accepted, start.elapsed().as_secs_f64()))
}

fn rand_run() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

async fn case_count(store: &dyn tocsin::store::Store) -> anyhow::Result<usize> {
    Ok(store.counts(chrono::Utc::now()).await?.cases_by_status.iter().map(|(_, n)| *n as usize).sum())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = harness::Args::parse();
    let numbers = args.positional();
    let mails = numbers.first().copied().unwrap_or(5_000);
    let connections = numbers.get(1).copied().unwrap_or(8);
    let database = args.opt("database");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let backend = match &database {
        Some(url) => url.clone(),
        None => "SQLite, a fresh temporary file per phase (WAL, synchronous=FULL)".into(),
    };
    println!("intake: {mails} mails over {connections} SMTP connections; {backend}; {cores} cores");

    // 1 and 2: acceptance, then filing, each on its own (no dispatcher).
    let d = daemon(&args, Workers::Manual).await?;
    let before = case_count(d.store.as_ref()).await?;
    let (accepted, secs) = send_all(d.app.smtp_addr.expect("smtp"), mails, connections).await?;
    println!(
        "  1. accepted: 250 after the raw commit      {accepted} in {secs:.2}s = {:.0} mails/s",
        accepted as f64 / secs
    );
    let start = Instant::now();
    for id in d.store.pending_mail(u32::MAX).await? {
        d.app.inbox.file(id).await?;
    }
    let secs = start.elapsed().as_secs_f64();
    let cases = case_count(d.store.as_ref()).await? - before;
    let filing = cases as f64 / secs;
    println!("  2. filed into cases, alone                 {cases} in {secs:.2}s = {filing:.0} mails/s");
    d.app.stop().await;

    // 3: the whole default daemon, delivering receipts and pages into the
    // outbox folder while it files.
    let d = daemon(&args, Workers::Background).await?;
    let before = case_count(d.store.as_ref()).await?;
    let start = Instant::now();
    send_all(d.app.smtp_addr.expect("smtp"), mails, connections).await?;
    while !d.store.pending_mail(1).await?.is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let cases = case_count(d.store.as_ref()).await? - before;
    println!(
        "  3. SMTP to filed cases, whole daemon with outbox delivery  {cases} in {secs:.2}s = {:.0} mails/s",
        cases as f64 / secs
    );
    d.app.stop().await;

    let raw = match database.as_deref() {
        Some(url) if url.starts_with("postgres") => {
            let raw = raw_commit_rate_postgres(url, 2_000)?;
            println!("  raw PostgreSQL commit rate, single-row autocommitted inserts on the same server: {raw:.0}/s");
            raw
        }
        Some(url) => {
            // Beside the database file: the same disk.
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            let parent = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty());
            let dir = tempfile::tempdir_in(parent.unwrap_or(std::path::Path::new(".")))?;
            let raw = raw_commit_rate(dir.path(), 2_000).await;
            println!("  raw SQLite commit rate, single-row inserts, same settings, same disk: {raw:.0}/s");
            raw
        }
        None => {
            let dir = tempfile::tempdir()?;
            let raw = raw_commit_rate(dir.path(), 2_000).await;
            println!("  raw SQLite commit rate, single-row inserts, same settings: {raw:.0}/s");
            raw
        }
    };
    println!(
        "  filing alone / raw commits: {:.2} (each filed mail is one case transaction plus its reads)",
        filing / raw
    );
    Ok(())
}
