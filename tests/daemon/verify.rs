//! Mail that cannot be spoofed (issue 13): with `[email] verify` on, an
//! email command needs a From the daemon can verify (a DKIM signature it
//! checks, or a trusted MTA's `Authentication-Results`), and a customer's
//! mail that fails cannot join or reopen a case by its subject tag. Also:
//! the reply key lives in a 0600 file, never in the database. Each attack
//! is a real SMTP conversation with the in-process daemon.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::case::CaseNumber;
use tocsin::mail::auth::VerifyMode;
use tocsin::notify::ids::ReplyKey;
use tocsin::service::verify::{StaticDns, TxtLookup};
use tocsin::token::TokenRole;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::*;

/// Sends `raw` from `from` to `to` over a real SMTP conversation and files
/// it; panics unless the listener answers 250 to the data.
async fn smtp_send(t: &TestApp, from: &str, to: &str, raw: &str) {
    let (r, mut w) = tokio::net::TcpStream::connect(t.smtp()).await.unwrap().into_split();
    let mut r = BufReader::new(r);
    async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut line)).await.unwrap().unwrap();
            all += &line;
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }
    assert!(reply(&mut r).await.starts_with("220"));
    for (line, code) in [
        ("EHLO mx.example.org".to_owned(), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_owned(), "354"),
    ] {
        w.write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
        let answer = reply(&mut r).await;
        assert!(answer.starts_with(code), "{line}: {answer}");
    }
    w.write_all(raw.as_bytes()).await.unwrap();
    w.write_all(b".\r\n").await.unwrap();
    let answer = reply(&mut r).await;
    assert!(answer.starts_with("250"), "{answer}");
    w.write_all(b"QUIT\r\n").await.unwrap();
    t.app().tick().await.unwrap();
}

/// A reply as a mail client writes it (CRLF, ending in CRLF).
fn message(from: &str, to: &str, subject: &str, id: &str, extra: &str, body: &str) -> String {
    format!("{extra}From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\r\n{body}\r\n")
}

/// An Ed25519 DKIM key and the TXT record that publishes it.
struct DkimKey {
    pkcs8: Vec<u8>,
    record: String,
}

impl DkimKey {
    fn new() -> DkimKey {
        let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
        let public = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap().public_key();
        let record = format!("v=DKIM1; k=ed25519; p={}", base64::engine::general_purpose::STANDARD.encode(public));
        DkimKey { pkcs8, record }
    }

    /// `raw` with a DKIM-Signature of `domain` (selector `sel`) on top.
    fn sign(&self, domain: &str, raw: &str) -> String {
        let key = Ed25519Key::from_pkcs8_der(&self.pkcs8).unwrap();
        let signature = DkimSigner::from_key(key)
            .domain(domain)
            .selector("sel")
            .headers(["From", "To", "Subject", "Message-ID"])
            .sign(raw.as_bytes())
            .unwrap();
        format!("{}{raw}", signature.to_header())
    }
}

/// Ana's signed reply address for case `n`, from the page email she got.
fn reply_address(t: &TestApp, n: i64) -> String {
    let page = t.outbox_texts(&format!("case{n}-page-email")).pop().expect("a page email");
    page.lines().find_map(|l| l.strip_prefix("Reply-To: ")).unwrap().trim().to_owned()
}

async fn case(t: &TestApp, tok: &str, n: i64) -> Value {
    t.get(&format!("/api/v1/cases/{n}"), tok).await.1
}

/// The answers Tocsin mailed about commands.
fn answers(t: &TestApp) -> Vec<String> {
    t.outbox_texts("confirmation-email")
}

#[tokio::test]
async fn with_dkim_a_forged_reply_is_refused_and_answered_and_a_signed_one_acknowledges() {
    let rules = rules_with_ana_email("ana@example.com");
    let key = DkimKey::new();
    let dns = StaticDns(HashMap::from([
        ("sel._domainkey.example.com".to_owned(), vec![key.record.clone()]),
        ("sel._domainkey.evil.com".to_owned(), vec![key.record.clone()]),
    ]));
    let dns: Arc<dyn TxtLookup> = Arc::new(dns);
    let t =
        TestApp::spawn_with_dns(Workers::Manual, START, rules.path(), |c| c.email.verify = VerifyMode::Dkim, Some(dns))
            .await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let to = reply_address(&t, n);

    // The attack: Ana's reply address, a forged From, no signature.
    let forged = message("ana@example.com", &to, "Re: page", "f1@example.com", "", "ACK");
    smtp_send(&t, "ana@example.com", &to, &forged).await;
    assert_eq!(case(&t, &tok, n).await["status"], "open", "nothing acknowledged");
    t.app().tick().await.unwrap();
    let refusal = answers(&t);
    assert_eq!(refusal.len(), 1, "{refusal:?}");
    assert!(refusal[0].contains("To: ana@example.com"), "answered at Ana's own address: {}", refusal[0]);
    let text = refusal[0].replace("=\r\n", "").replace("\r\n", " ");
    assert!(text.contains("could not be verified") && text.contains("no DKIM signature"), "{text}");

    // Signed, but by another domain than the From's: not aligned.
    let other = key.sign("evil.com", &message("ana@example.com", &to, "Re: page", "f2@example.com", "", "ACK"));
    smtp_send(&t, "ana@example.com", &to, &other).await;
    assert_eq!(case(&t, &tok, n).await["status"], "open", "d=evil.com does not vouch for example.com");

    // Signed by example.com, then changed on the way: the signature fails.
    let signed = key.sign("example.com", &message("ana@example.com", &to, "Re: page", "f3@example.com", "", "ACK"));
    let tampered = signed.replace("\r\n\r\nACK\r\n", "\r\n\r\nRES all fine\r\n");
    smtp_send(&t, "ana@example.com", &to, &tampered).await;
    assert_eq!(case(&t, &tok, n).await["status"], "open", "a broken signature vouches for nothing");

    // The real thing: DKIM-signed by Ana's domain, aligned with her From.
    let real =
        key.sign("example.com", &message("Ana Lima <ana@example.com>", &to, "Re: page", "r1@example.com", "", "ACK"));
    smtp_send(&t, "ana@example.com", &to, &real).await;
    let c = case(&t, &tok, n).await;
    assert_eq!((c["status"].as_str(), c["assignee"].as_str()), (Some("acknowledged"), Some("ana")), "{c}");
    assert_eq!(c["unverified"], false);
}

#[tokio::test]
async fn with_authentication_results_only_the_trusted_hosts_topmost_header_vouches() {
    let rules = rules_with_ana_email("ana@example.com");
    let t = TestApp::spawn_configured(Workers::Manual, START, rules.path(), |c| {
        c.email.verify = VerifyMode::AuthenticationResults;
        c.email.trusted_authserv_id = Some("mx.example.com".into());
    })
    .await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let to = reply_address(&t, n);
    let send = |id: &'static str, extra: &'static str, body: &'static str| {
        let raw = message("ana@example.com", &to, "Re: page", id, extra, body);
        let t = &t;
        let to = to.clone();
        async move { smtp_send(t, "ana@example.com", &to, &raw).await }
    };

    // Another host's results are not ours to trust.
    send("a1@example.com", "Authentication-Results: mx.evil.com; dkim=pass header.d=example.com\r\n", "ACK").await;
    assert_eq!(case(&t, &tok, n).await["status"], "open");
    // Our MTA found no signature; the sender's own header below its
    // Received line claims a pass with our id: not read.
    send(
        "a2@example.com",
        "Authentication-Results: mx.example.com; dkim=none\r\nReceived: from attacker.example.net by mx.example.com\r\nAuthentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n",
        "ACK",
    )
    .await;
    assert_eq!(case(&t, &tok, n).await["status"], "open");
    t.app().tick().await.unwrap();
    assert_eq!(answers(&t).len(), 2, "each refusal answered");
    // Our MTA's pass, aligned with the From.
    send(
        "a3@example.com",
        "Authentication-Results: mx.example.com; dkim=pass (ed25519) header.d=example.com header.s=sel; dmarc=pass header.from=example.com\r\nReceived: from mail.example.com by mx.example.com\r\n",
        "ACK",
    )
    .await;
    assert_eq!(case(&t, &tok, n).await["status"], "acknowledged");
}

#[tokio::test]
async fn a_forged_customer_mail_to_a_resolved_case_opens_a_new_unverified_case() {
    let t = TestApp::spawn_configured(Workers::Manual, START, &repo().join("rules"), |c| {
        c.email.verify = VerifyMode::Dkim;
    })
    .await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let (status, _) = t.post(&format!("/api/v1/cases/{n}/resolve"), &tok, json!({"by": "ana", "text": "fixed"})).await;
    assert_eq!(status, 200);
    let pages_before = case(&t, &tok, n).await["pages"].as_array().unwrap().len();

    // A forged From in Acme's domain, with the case's tag, unsigned.
    let forged = message(
        "ops@acme.com",
        "help@support.example.com",
        &format!("Re: [#{n}] Site down"),
        "x1@acme.com",
        "",
        "It is down again, page everyone.",
    );
    smtp_send(&t, "ops@acme.com", "help@support.example.com", &forged).await;
    t.app().tick().await.unwrap();
    let old = case(&t, &tok, n).await;
    assert_eq!(old["status"], "resolved", "not reopened: {old}");
    assert_eq!(old["pages"].as_array().unwrap().len(), pages_before, "nobody paged again about #{n}");
    let (_, list) = t.get("/api/v1/cases", &tok).await;
    let new =
        list["cases"].as_array().unwrap().iter().find(|c| c["number"].as_i64() != Some(n)).expect("a new case").clone();
    let m = new["number"].as_i64().unwrap();
    assert_eq!((new["unverified"].as_bool(), new["requester"].as_str()), (Some(true), Some("ops@acme.com")), "{new}");
    let timeline = case(&t, &tok, m).await["timeline"].clone();
    let why = timeline.as_array().unwrap().iter().find(|e| e["kind"] == "unverified").expect("why, on the timeline");
    let why = why["text"].as_str().unwrap();
    assert!(why.contains("no DKIM signature") && why.contains(&format!("did not join #{n}")), "{why}");

    // The dashboard marks it, on the case page and in the Now list.
    let (signed, _) = web::sign_in(&t, &tok).await;
    let (_, html) = web::page(&t, &signed, &format!("/cases/{m}")).await;
    assert!(html.contains("UNVERIFIED SENDER"), "{html}");
    let (_, html) = web::page(&t, &signed, "/now").await;
    assert_eq!(html.matches("UNVERIFIED SENDER").count(), 1, "only #{m} is marked: {html}");
    let (_, html) = web::page(&t, &signed, &format!("/cases/{n}")).await;
    assert!(!html.contains("UNVERIFIED SENDER"));

    // A reply to Tocsin's own (signed) receipt proves the sender got it:
    // it joins that case even unsigned.
    let receipt = t.outbox_texts(&format!("case{m}-receipt-email")).pop().expect("a receipt");
    let id = receipt.lines().find_map(|l| l.strip_prefix("Message-ID: ")).unwrap().trim().to_owned();
    let follow = message(
        "ops@acme.com",
        "help@support.example.com",
        "Re: received",
        "x2@acme.com",
        &format!("In-Reply-To: {id}\r\n"),
        "More detail.",
    );
    smtp_send(&t, "ops@acme.com", "help@support.example.com", &follow).await;
    let joined = case(&t, &tok, m).await["timeline"].as_array().unwrap().iter().any(|e| e["kind"] == "mail");
    assert!(joined, "joined #{m} by the signed Message-ID");
}

#[tokio::test]
async fn with_verify_none_a_tagged_mail_still_reopens_its_case() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.post(&format!("/api/v1/cases/{n}/resolve"), &tok, json!({"by": "ana"})).await;
    let raw = message(
        "ops@acme.com",
        "help@support.example.com",
        &format!("Re: [#{n}] Site down"),
        "y1@acme.com",
        "",
        "Down again.",
    );
    smtp_send(&t, "ops@acme.com", "help@support.example.com", &raw).await;
    let c = case(&t, &tok, n).await;
    assert_eq!((c["status"].as_str(), c["unverified"].as_bool()), (Some("open"), Some(false)), "{c}");
}

#[tokio::test]
async fn the_reply_key_lives_in_a_0600_file_and_not_in_the_database() {
    let t = TestApp::spawn(Workers::Manual).await;
    let path = t.dir.path().join("tocsin.db.reply-key");
    let key = std::fs::read_to_string(&path).expect("the key file beside the database");
    assert_eq!(key.trim().len(), 64, "32 random bytes, hex");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(t.store().read_setting("reply_key").await.unwrap(), None, "never in the settings table");
}

#[tokio::test]
async fn an_old_databases_key_moves_into_the_file_and_its_reply_addresses_still_work() {
    let rules = rules_with_ana_email("ana@example.com");
    let mut t = TestApp::spawn_with(Workers::Manual, START, rules.path()).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.stop().await;
    // As an older Tocsin left it: the key in the settings table, no file.
    let path = t.dir.path().join("tocsin.db.reply-key");
    std::fs::remove_file(&path).unwrap();
    const OLD: &str = "4f1c0b9e27d35a86e0c4f71b92d3a58e6b0f2c17d94a3e85b6c0d2f71a9e4b36";
    let store = tocsin::store::open(&t.config.database).await.unwrap();
    assert_eq!(store.setting("reply_key", OLD).await.unwrap(), OLD);
    drop(store);
    // A reply address sent back then.
    let to = ReplyKey::new(OLD.as_bytes()).reply_address("support", CaseNumber(n), "ana", "support.example.com");

    t.start(Workers::Manual).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), OLD, "moved into the file");
    assert_eq!(t.store().read_setting("reply_key").await.unwrap(), None, "and out of the database");
    smtp_send(&t, "ana@example.com", &to, &message("ana@example.com", &to, "Re: page", "o1@example.com", "", "ACK"))
        .await;
    assert_eq!(case(&t, &tok, n).await["status"], "acknowledged", "the old address still works");
}

#[tokio::test]
async fn postgres_without_a_shared_reply_key_is_refused_with_the_fix() {
    let mut config = tocsin::config::Config::default();
    config.database.url = "postgres://tocsin@db/tocsin".into();
    config.secrets.reply_key_env = "TOCSIN_TEST_UNSET_REPLY_KEY".into();
    let e = tocsin::app::reply_key_path(&config).unwrap_err();
    assert!(e.contains("TOCSIN_TEST_UNSET_REPLY_KEY") && e.contains("reply_key_file"), "{e}");
    config.secrets.reply_key_file = Some("/etc/tocsin/reply-key".into());
    assert_eq!(tocsin::app::reply_key_path(&config).unwrap(), Some("/etc/tocsin/reply-key".into()));
}

/// Runs `tocsin check` in `dir`, without a reply key in the environment.
fn check(dir: &std::path::Path) -> (Option<i32>, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .arg("check")
        .current_dir(dir)
        .env_remove("TOCSIN_REPLY_KEY")
        .output()
        .unwrap();
    (o.status.code(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn check_warns_of_a_weak_or_readable_key_and_refuses_what_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!(
        "[database]\nurl = \"sqlite://t.db\"\n[paths]\nrules = \"{}\"\ntemplates = \"{}\"\n",
        repo().join("rules").display(),
        repo().join("templates").display()
    );
    std::fs::write(dir.path().join("tocsin.toml"), &base).unwrap();
    let (code, out) = check(dir.path());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("t.db.reply-key (generated at the first start)"), "{out}");
    // A short key, readable by everyone.
    let key = dir.path().join("t.db.reply-key");
    std::fs::write(&key, "hunter2\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (code, out) = check(dir.path());
    assert_eq!(code, Some(0), "warnings only: {out}");
    assert!(out.contains("warning: the reply key in") && out.contains("7 bytes long"), "{out}");
    #[cfg(unix)]
    assert!(out.contains("readable by others (mode 644): run `chmod 600"), "{out}");
    // Trusting Authentication-Results needs to know whose.
    std::fs::write(dir.path().join("tocsin.toml"), format!("{base}[email]\nverify = \"authentication-results\"\n"))
        .unwrap();
    let (code, out) = check(dir.path());
    assert_ne!(code, Some(0));
    assert!(out.contains("needs trusted_authserv_id"), "{out}");
    // PostgreSQL without a shared key: a warning (serve refuses a new
    // database, and goes on with the key an earlier release kept in an old
    // one, so a rolling upgrade's ExecStartPre does not stop here).
    let pg = base.replace("sqlite://t.db", "postgres://tocsin@127.0.0.1:1/tocsin");
    std::fs::write(dir.path().join("tocsin.toml"), pg).unwrap();
    let (code, out) = check(dir.path());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("warning: the reply key") && out.contains("TOCSIN_REPLY_KEY"), "{out}");
}

/// A resolver that is down.
struct Down;

#[async_trait::async_trait]
impl TxtLookup for Down {
    async fn txt(&self, _: &str) -> Result<Vec<Vec<u8>>, tocsin::service::verify::DnsFailure> {
        Err(tocsin::service::verify::DnsFailure::Temporary("SERVFAIL".into()))
    }
}

#[tokio::test]
async fn a_dns_failure_leaves_signed_mail_unverified_but_filed() {
    let key = DkimKey::new();
    let dns: Arc<dyn TxtLookup> = Arc::new(Down);
    let t = TestApp::spawn_with_dns(
        Workers::Manual,
        START,
        &repo().join("rules"),
        |c| c.email.verify = VerifyMode::Dkim,
        Some(dns),
    )
    .await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let raw = key.sign(
        "acme.com",
        &message("ops@acme.com", "help@support.example.com", "Checkout is down", "d1@acme.com", "", "All 500s."),
    );
    smtp_send(&t, "ops@acme.com", "help@support.example.com", &raw).await;
    let (_, list) = t.get("/api/v1/cases", &tok).await;
    let c = list["cases"].as_array().unwrap().first().expect("the mail opened a case: not lost").clone();
    assert_eq!(c["unverified"], true, "{c}");
    let timeline = case(&t, &tok, c["number"].as_i64().unwrap()).await["timeline"].clone();
    let why = timeline.as_array().unwrap().iter().find(|e| e["kind"] == "unverified").unwrap()["text"].clone();
    assert!(why.as_str().unwrap().contains("temperror"), "{why}");
    // The field is in the published schema.
    let spec: Value = t.http.get(t.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    let field = &spec["components"]["schemas"]["CaseView"]["properties"]["unverified"];
    assert_eq!(field["type"], "boolean", "{field}");
    assert!(field["description"].as_str().unwrap_or_default().contains("could not be"), "{field}");
}

/// Past a new-case limit, mail normally joins its sender's open case; an
/// unverified From must not write onto a real customer's case that way: it
/// is held instead (nothing lost, nobody paged, no receipt).
#[tokio::test]
async fn unverified_mail_past_a_new_case_limit_is_held_not_filed_onto_the_senders_case() {
    let t = TestApp::spawn_configured(Workers::Manual, START, &repo().join("rules"), |c| {
        c.email.verify = VerifyMode::Dkim;
        c.email.new_cases_per_sender_per_hour = 1;
    })
    .await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let first = message("ops@acme.com", "help@support.example.com", "Checkout is down", "l1@acme.com", "", "All 500s.");
    smtp_send(&t, "ops@acme.com", "help@support.example.com", &first).await;
    let (_, list) = t.get("/api/v1/cases", &tok).await;
    let cases = list["cases"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 1, "{list}");
    let n = cases[0]["number"].as_i64().unwrap();
    let timeline_before = case(&t, &tok, n).await["timeline"].as_array().unwrap().len();

    let second = message("ops@acme.com", "help@support.example.com", "Also down", "l2@acme.com", "", "Injected text.");
    smtp_send(&t, "ops@acme.com", "help@support.example.com", &second).await;
    let after = case(&t, &tok, n).await;
    assert_eq!(after["timeline"].as_array().unwrap().len(), timeline_before, "nothing written onto #{n}: {after}");
    let (_, list) = t.get("/api/v1/cases", &tok).await;
    assert_eq!(list["cases"].as_array().unwrap().len(), 1, "no second case: {list}");
    let (status, held) = t.get("/api/v1/inbox", &tok).await;
    assert_eq!(status, 200, "{held}");
    let text = held.to_string();
    assert!(text.contains("ops@acme.com") && text.contains("held"), "the mail is held, not lost: {held}");
}
