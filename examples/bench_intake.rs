//! SMTP intake benchmark (not a test): mails per second through the SMTP
//! listener into durable inbox rows (the 250s), and on into filed cases,
//! on SQLite; beside it the raw single-row commit rate of the same database
//! on the same disk.
//!
//!     cargo run --release --example bench_intake -- [MAILS] [CONNECTIONS]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tocsin::app::{App, Listeners, Workers};
use tocsin::clock::SystemClock;
use tocsin::config::Config;
use tocsin::notify::Templates;
use tocsin::rules::Rules;
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
async fn client(addr: std::net::SocketAddr, first: usize, count: usize) -> usize {
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
            "From: User {i} <user{i}@customer{}.example>\r\nTo: help@support.example.com\r\nSubject: Problem number {i}\r\nMessage-ID: <bench{i}@customer.example>\r\n\r\nSomething is wrong with order {i}.\r\n.\r\n",
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

async fn daemon(workers: Workers) -> anyhow::Result<Daemon> {
    let dir = tempfile::tempdir()?;
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}", dir.path().join("tocsin.db").display());
    config.paths.rules = repo.join("rules");
    config.paths.templates = repo.join("templates");
    config.paths.outbox = dir.path().join("outbox");
    let store = tocsin::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
    let listeners = Listeners {
        http: tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        smtp: Some(tokio::net::TcpListener::bind("127.0.0.1:0").await?),
    };
    let rules = Rules::load(&config.paths.rules).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let templates = Templates::load(&config.paths.templates).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let app = App::start(&config, rules, templates, store.clone(), Arc::new(SystemClock), listeners, workers).await?;
    Ok(Daemon { app, store, _dir: dir })
}

/// Sends `mails` over `connections` SMTP connections; returns how many got
/// 250 and the seconds it took.
async fn send_all(addr: std::net::SocketAddr, mails: usize, connections: usize) -> anyhow::Result<(usize, f64)> {
    let start = Instant::now();
    let per = mails / connections;
    let clients: Vec<_> = (0..connections).map(|c| tokio::spawn(client(addr, c * per, per))).collect();
    let mut accepted = 0;
    for c in clients {
        accepted += c.await?;
    }
    Ok((accepted, start.elapsed().as_secs_f64()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let mails = args.first().copied().unwrap_or(5_000);
    let connections = args.get(1).copied().unwrap_or(8);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "intake: {mails} mails over {connections} SMTP connections; SQLite (WAL, synchronous=FULL); {cores} cores"
    );

    // 1 and 2: acceptance, then filing, each on its own (no dispatcher).
    let d = daemon(Workers::Manual).await?;
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
    let cases = d.store.cases(None, u32::MAX).await?.len();
    let filing = cases as f64 / secs;
    println!("  2. filed into cases, alone                 {cases} in {secs:.2}s = {filing:.0} mails/s");
    d.app.stop().await;

    // 3: the whole default daemon, delivering receipts and pages into the
    // outbox folder while it files.
    let d = daemon(Workers::Background).await?;
    let start = Instant::now();
    send_all(d.app.smtp_addr.expect("smtp"), mails, connections).await?;
    while !d.store.pending_mail(1).await?.is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let cases = d.store.cases(None, u32::MAX).await?.len();
    println!(
        "  3. SMTP to filed cases, whole daemon with outbox delivery  {cases} in {secs:.2}s = {:.0} mails/s",
        cases as f64 / secs
    );
    d.app.stop().await;

    let dir = tempfile::tempdir()?;
    let raw = raw_commit_rate(dir.path(), 2_000).await;
    println!("  raw SQLite commit rate, single-row inserts, same settings: {raw:.0}/s");
    println!(
        "  filing alone / raw commits: {:.2} (each filed mail is one case transaction plus its reads)",
        filing / raw
    );
    Ok(())
}
