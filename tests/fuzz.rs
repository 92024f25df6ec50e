//! Fuzzing: hostile bytes into mail intake, the command grammar, the rules
//! loader, the Twilio signature checker and the sign-in redirect. No panic on any input, and bad
//! input loses nothing (PRODUCT.md, "hostile input").
//!
//! cargo-fuzz needs a nightly compiler (`-Z sanitizer`), and this project
//! builds on stable 1.95 only, so the targets are proptest properties fed
//! with arbitrary bytes and with mutations of real inputs (byte edits plus
//! a dictionary of MIME, SMTP and TOML tokens). The default test run is a
//! bounded run; a longer one is
//!
//!     TOCSIN_FUZZ_CASES=100000 cargo test --release --test fuzz
//!
//! A failing input is shrunk and saved by proptest in
//! `tests/fuzz.proptest-regressions` or `tests/fuzz-runner.proptest-regressions` (committed, so it is re-run first every
//! time); a crash found is also written down below as a named regression
//! test.

mod harness;

use std::sync::Arc;

use harness::{START, TestApp, repo};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, FileFailurePersistence, TestRunner};
use tocsin::app::Workers;
use tocsin::command::{self, MAX_LEN};
use tocsin::mail::{Envelope, read};
use tocsin::notify::twilio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Cases per target: `TOCSIN_FUZZ_CASES`, else `default` (the bounded run).
fn cases(default: u32) -> u32 {
    std::env::var("TOCSIN_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig { cases: cases(default), ..ProptestConfig::default() }
}

/// A runner for targets that need a daemon or a runtime around them; its
/// failures are saved (and replayed first) like the `proptest!` ones.
fn runner(default: u32) -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases: cases(default),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("tests/fuzz-runner.proptest-regressions"))),
        ..RunnerConfig::default()
    })
}

// ---- hostile bytes ----------------------------------------------------

/// Tokens that reach deep into MIME, SMTP and TOML parsers.
const DICTIONARY: &[&str] = &[
    "\r\n",
    "\r\n\r\n",
    "\n",
    "\0",
    ":",
    "=?utf-8?B?",
    "=?iso-8859-1?Q?",
    "?=",
    "=\r\n",
    "=FF",
    "--b1\r\n",
    "--b1--\r\n",
    "Content-Type: multipart/mixed; boundary=b1\r\n",
    "Content-Transfer-Encoding: base64\r\n",
    "Content-Transfer-Encoding: quoted-printable\r\n",
    "charset=\"",
    "In-Reply-To: <",
    "References: <",
    "Subject: [#",
    "Auto-Submitted: auto-replied\r\n",
    "From: <>\r\n",
    "\u{feff}",
    "\u{200b}",
    "#",
    "[",
    "]]",
    "[[",
    "\"",
    "'''",
    "= ",
    "{ ",
    "}",
    "\\u",
    "99999999999999999999",
    "-1",
    "1e308",
    "2026-02-29T25:61:00Z",
];

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, Vec<u8>),
    Token(usize, usize),
    Delete(usize, usize),
    Replace(usize, u8),
    Truncate(usize),
    Repeat(usize, usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), vec(any::<u8>(), 1..16)).prop_map(|(at, b)| Edit::Insert(at, b)),
        (any::<usize>(), 0..DICTIONARY.len()).prop_map(|(at, t)| Edit::Token(at, t)),
        (any::<usize>(), 1usize..64).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Replace(at, b)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1usize..64, 1u8..20).prop_map(|(at, n, k)| Edit::Repeat(at, n, k)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let at = |i: usize, len: usize| i % (len + 1);
        match e {
            Edit::Insert(i, b) => {
                let p = at(*i, bytes.len());
                bytes.splice(p..p, b.iter().copied());
            }
            Edit::Token(i, t) => {
                let p = at(*i, bytes.len());
                bytes.splice(p..p, DICTIONARY[*t].bytes());
            }
            Edit::Delete(i, n) => {
                let p = at(*i, bytes.len());
                let end = (p + n).min(bytes.len());
                bytes.drain(p..end);
            }
            Edit::Replace(i, b) => {
                if !bytes.is_empty() {
                    let p = i % bytes.len();
                    bytes[p] = *b;
                }
            }
            Edit::Truncate(i) => {
                let p = at(*i, bytes.len());
                bytes.truncate(p);
            }
            Edit::Repeat(i, n, k) => {
                let p = at(*i, bytes.len());
                let end = (p + n).min(bytes.len());
                let chunk = bytes[p..end].to_vec();
                for _ in 0..*k {
                    bytes.splice(end..end, chunk.iter().copied());
                }
            }
        }
    }
    bytes
}

/// Arbitrary bytes, or one of `seeds` after a few edits.
fn hostile(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    prop_oneof![
        1 => vec(any::<u8>(), 0..1024),
        3 => (0..n, vec(edit(), 0..8)).prop_map(move |(i, e)| apply(seeds[i].clone(), &e)),
    ]
}

// ---- mail -------------------------------------------------------------

fn mail_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = [
        "From: Ops <ops@acme.com>\r\nTo: help@support.example.com\r\nSubject: Checkout is down\r\nMessage-ID: <s1@acme.com>\r\n\r\nAll 500s since 09:58.\r\n",
        "From: =?utf-8?B?w4lsb2TDqWU=?= <cto@acme.com>\r\nTo: help@support.example.com\r\nSubject: =?utf-8?Q?R=C3=A9_[#1001]_still_down?=\r\nMessage-ID: <s2@acme.com>\r\nIn-Reply-To: <case1001.x@support.example.com>\r\nReferences: <s1@acme.com> <case1001.x@support.example.com>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nStill d=C3=A9failing.=\r\n\r\nOn Tue, Support wrote:\r\n> We are on it.\r\n",
        "From: ops@acme.com\r\nTo: help@support.example.com\r\nSubject: Logs\r\nMessage-ID: <s3@acme.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b1\r\nContent-Type: application/octet-stream; name=log.gz\r\nContent-Transfer-Encoding: base64\r\n\r\nH4sIAAAAAAAAA+3BAQ0AAADCoPdPbQ8HFAAAAAAAAAAA\r\n--b1--\r\n",
        "From: ops@acme.com\r\nTo: help@support.example.com\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <s4@acme.com>\r\n\r\nI am away.\r\n",
        "From: MAILER-DAEMON@mx.acme.com\r\nTo: help@support.example.com\r\nSubject: Undelivered Mail\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n--r\r\n\r\nfailed\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\n--r--\r\n",
        "From: ops@acme.com\r\nTo: help@support.example.com\r\nSubject: <script>alert(1)</script>\r\nMessage-ID: <s6@acme.com>\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n<p>Cafe <b>down</b></p>\r\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    seeds.push(b"\xff\xfe\x00garbage".to_vec());
    // Latin-1 bytes in a body that claims iso-8859-1.
    seeds.push(b"From: ops@acme.com\r\nSubject: caf\xe9\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nCaf\xe9 down\r\n".to_vec());
    seeds
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (prop_oneof![Just(None), Just(Some(String::new())), "[a-z]{1,8}@acme\\.com".prop_map(Some)], Just(()))
        .prop_map(|(from, ())| Envelope { from, to: vec!["help@support.example.com".into()] })
}

#[test]
fn reading_any_bytes_as_mail_never_panics() {
    let mut runner = runner(3000);
    let result = runner.run(&(hostile(mail_seeds()), envelope()), |(raw, env)| {
        let _ = read(&raw, &env);
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn any_mail_is_kept_byte_for_byte_and_filed_or_flagged() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = rt.block_on(TestApp::spawn(Workers::Manual));
    let known = ["filed", "duplicate", "automatic", "unusable", "command", "refused"];
    let mut runner = runner(150);
    let result = runner.run(&(hostile(mail_seeds()), envelope()), |(raw, env)| {
        rt.block_on(async {
            let (id, outcome) = t.app().inbox.ingest(&raw, &env, "fuzz").await.expect("ingest never fails on content");
            let row = t.store().inbox(id).await.unwrap().expect("the row is kept");
            prop_assert_eq!(&row.raw, &raw, "the raw message is kept byte for byte");
            prop_assert!(known.contains(&row.status.as_str()), "status {}", row.status);
            prop_assert_eq!(row.status, outcome.status());
            if let Some(n) = outcome.case() {
                prop_assert!(t.store().case(n).await.unwrap().is_some(), "case {n:?} exists");
            }
            // Whatever it queued can be processed.
            t.app().tick().await.expect("tick");
            Ok(())
        })
    });
    assert!(result.is_ok(), "{result:?}");
}

async fn smtp_reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        match r.read_line(&mut line).await {
            Ok(0) | Err(_) => return all,
            Ok(_) => {}
        }
        all += &line;
        if line.as_bytes().get(3) != Some(&b'-') {
            return all;
        }
    }
}

#[test]
fn hostile_smtp_conversations_leave_the_listener_serving() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Sessions the hostile clients left may still be ending when the next
    // client connects from the same address: the per-address cap is not
    // what this target tests.
    let t = rt.block_on(TestApp::spawn_configured(Workers::Manual, START, &repo().join("rules"), |c| {
        c.smtp.max_connections_per_ip = c.smtp.max_connections
    }));
    let addr = t.smtp();
    let lines = vec(
        prop_oneof![
            vec(any::<u8>(), 0..200),
            Just(b"EHLO fuzz".to_vec()),
            Just(b"MAIL FROM:<ops@acme.com>".to_vec()),
            Just(b"RCPT TO:<help@support.example.com>".to_vec()),
            Just(b"DATA".to_vec()),
            Just(b".".to_vec()),
            Just(b"BDAT 10 LAST".to_vec()),
            Just(b"STARTTLS".to_vec()),
            Just(b"AUTH PLAIN AGVmdXp6AGZ1eno=".to_vec()),
            Just(b"RSET".to_vec()),
        ],
        0..12,
    );
    let mut runner = runner(40);
    let result = runner.run(&lines, |lines| {
        rt.block_on(async {
            let (r, mut w) = tokio::net::TcpStream::connect(addr).await.unwrap().into_split();
            let mut r = BufReader::new(r);
            smtp_reply(&mut r).await;
            for line in &lines {
                if w.write_all(line).await.is_err() || w.write_all(b"\r\n").await.is_err() {
                    break;
                }
            }
            let _ = w.shutdown().await;
            drop(r);
            // The listener still greets and takes a mail.
            let (r, mut w) = tokio::net::TcpStream::connect(addr).await.unwrap().into_split();
            let mut r = BufReader::new(r);
            prop_assert!(smtp_reply(&mut r).await.starts_with("220"));
            for cmd in ["EHLO ok", "MAIL FROM:<ops@acme.com>", "RCPT TO:<help@support.example.com>", "DATA"] {
                w.write_all(format!("{cmd}\r\n").as_bytes()).await.unwrap();
                smtp_reply(&mut r).await;
            }
            w.write_all(b"From: ops@acme.com\r\nSubject: still here\r\n\r\nhello\r\n.\r\n").await.unwrap();
            let done = smtp_reply(&mut r).await;
            prop_assert!(done.starts_with("250"), "after hostile input a mail still gets 250: {done}");
            w.write_all(b"QUIT\r\n").await.unwrap();
            Ok(())
        })
    });
    assert!(result.is_ok(), "{result:?}");
}

// ---- the command grammar ----------------------------------------------

const COMMANDS: &[&str] = &[
    "ACK",
    "ack 1042",
    "#1042 a",
    "NOTE 1042 restarted the database",
    "RES 1042 fixed by rollback",
    "esc",
    "SNOOZE 1042 30m",
    "snooze 1h 30m",
    "LIST",
    "help",
    "?",
    "STOP",
    "“Ack” #1042!",
];

fn command_text() -> impl Strategy<Value = String> {
    let seeds: Vec<Vec<u8>> = COMMANDS.iter().map(|c| c.as_bytes().to_vec()).collect();
    prop_oneof![
        any::<String>(),
        "\\PC{0,40}",
        hostile(seeds).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        Just("a".repeat(MAX_LEN + 1)),
        Just(format!("NOTE 1042 {}", "x".repeat(MAX_LEN))),
    ]
}

proptest! {
    #![proptest_config(config(20000))]

    #[test]
    fn the_command_grammar_answers_any_text(text in command_text()) {
        let first = command::parse(&text);
        prop_assert_eq!(&first, &command::parse(&text), "parsing is deterministic");
        match first {
            Ok(c) => {
                if let Some(n) = c.case {
                    prop_assert!(n.0 > 0, "case numbers are positive");
                }
                if let command::Verb::Snooze(d) = c.verb {
                    prop_assert!(d > chrono::TimeDelta::zero(), "a snooze is forward");
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty(), "an error is a reply"),
        }
        if text.chars().count() > MAX_LEN {
            prop_assert_eq!(command::parse(&text), Err(command::ParseError::TooLong));
        }
    }
}

// ---- the rules loader ---------------------------------------------------

/// The shipped `*.toml` rule files, named by full path (a calendar's
/// `holidays_ics` is read beside its file).
fn shipped_rules() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(repo().join("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|path| (path.to_string_lossy().into_owned(), std::fs::read_to_string(&path).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn the_shipped_rules_load_from_sources() {
    let files = shipped_rules();
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    assert!(
        tocsin::rules::from_sources(&refs).is_ok(),
        "the unmutated rules load, so mutations start from a valid set"
    );
}

#[test]
fn a_mutated_rule_file_is_refused_with_its_file_and_line() {
    let files = shipped_rules();
    let seeds: Vec<Vec<u8>> = files.iter().map(|(_, t)| t.as_bytes().to_vec()).collect();
    let which = 0..files.len();
    let mut runner = runner(3000);
    let result = runner.run(&(which, vec(edit(), 1..6)), |(i, edits)| {
        let mutated = String::from_utf8_lossy(&apply(seeds[i].clone(), &edits)).into_owned();
        let mut set = files.clone();
        set[i].1 = mutated;
        let refs: Vec<(&str, &str)> = set.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        if let Err(diagnostics) = tocsin::rules::from_sources(&refs) {
            prop_assert!(!diagnostics.is_empty(), "a refusal says why");
            for d in &diagnostics {
                let name = d.file.to_string_lossy();
                let file = set.iter().find(|(n, _)| *n == name);
                prop_assert!(file.is_some(), "diagnostic names a given file: {}", d);
                let lines = file.map_or(0, |(_, t)| t.lines().count());
                prop_assert!(d.line <= lines + 1, "line {} of {} lines: {}", d.line, lines, d);
                prop_assert!(!d.message.trim().is_empty(), "diagnostic has a message");
            }
        }
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn arbitrary_rule_files_never_panic() {
    let mut runner = runner(3000);
    let names = prop_oneof![
        Just("people.toml"),
        Just("schedules.toml"),
        Just("policies.toml"),
        Just("sla.toml"),
        Just("routing.toml"),
        Just("calendars.toml"),
    ];
    let result = runner.run(&vec((names, any::<String>()), 0..4), |files| {
        let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let _ = tocsin::rules::from_sources(&refs);
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn any_holiday_calendar_file_is_read_or_refused() {
    let seed = std::fs::read(repo().join("rules/england-2027.ics")).unwrap();
    let mut runner = runner(3000);
    let result = runner.run(&hostile(vec![seed]), |bytes| {
        let _ = tocsin::calendar::holidays_from_ics(&String::from_utf8_lossy(&bytes));
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
}

// ---- the Twilio signature checker ---------------------------------------

fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    vec(("\\PC{0,12}", "\\PC{0,40}"), 0..6)
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("https://support.example.com/hooks/twilio/sms".to_owned()),
        Just("https://support.example.com:443/hooks/twilio/status?page=12".to_owned()),
        "https?://[a-z.:0-9]{0,20}(/[a-z?=&%0-9]{0,20})?",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config(5000))]

    #[test]
    fn a_twilio_signature_verifies_only_what_it_signed(
        token in "\\PC{0,40}",
        url in url(),
        params in params(),
        header in any::<String>(),
        flip in any::<usize>(),
        extra in ("\\PC{1,8}", "\\PC{0,8}"),
    ) {
        let good = twilio::signature(&token, &url, &params);
        prop_assert!(twilio::verify(&token, &url, &params, &good));
        // Any header at all is answered, never a panic; a random one fails.
        if header.trim() != good {
            prop_assert!(!twilio::verify(&token, &url, &params, &header));
        }
        // One flipped bit of the signature fails.
        let mut raw = base64_decode(&good);
        let bit = flip % (raw.len() * 8);
        raw[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(!twilio::verify(&token, &url, &params, &base64_encode(&raw)));
        // An added parameter fails.
        let mut more = params.clone();
        more.push(extra);
        prop_assert!(!twilio::verify(&token, &url, &more, &good));
        // Another token fails.
        let other = format!("{token}x");
        prop_assert!(!twilio::verify(&other, &url, &params, &good));
        // JSON webhooks: any body, any URL.
        let _ = twilio::verify_json(&token, &url, header.as_bytes(), &good);
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

const TOKEN_ENV: &str = harness::TWILIO_TOKEN_ENV;
const TOKEN: &str = harness::TWILIO_TOKEN;
const PUBLIC: &str = "https://support.example.com";

#[test]
fn signed_or_forged_hostile_sms_webhooks_get_an_answer_never_a_crash() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (t, _twilio) = rt.block_on(async {
        let twilio = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .respond_with(
                wiremock::ResponseTemplate::new(201)
                    .set_body_json(serde_json::json!({"sid": "SM1", "status": "queued"})),
            )
            .mount(&twilio)
            .await;
        let uri = twilio.uri();
        let t = TestApp::spawn_configured(Workers::Manual, harness::START, &repo().join("rules"), |c| {
            c.sms.provider = "twilio".into();
            c.sms.twilio_account_sid = "AC0123456789abcdef0123456789abcdef".into();
            c.sms.twilio_auth_token_env = TOKEN_ENV.into();
            c.sms.twilio_api_base = uri;
            c.server.public_url = PUBLIC.into();
        })
        .await;
        (t, twilio)
    });
    let t = Arc::new(t);
    let from = prop_oneof![Just("+15550100001".to_owned()), Just("+15550100002".to_owned()), "\\PC{0,16}"];
    let body = prop_oneof![command_text(), any::<String>()];
    let raw_body = vec(any::<u8>(), 0..300);
    // Twilio names every message; a repeated SID is a replay (answered 200,
    // acted on once).
    let sid = prop_oneof![Just("SMreplayed".to_owned()), "SM[0-9a-f]{32}"];
    let mut runner = runner(200);
    let result = runner.run(&(from, body, raw_body, any::<bool>(), sid), |(from, body, raw_body, signed, sid)| {
        rt.block_on(async {
            let url = t.url("/hooks/twilio/sms");
            let (bytes, sig) = if signed {
                let params = vec![("MessageSid".to_owned(), sid), ("From".to_owned(), from), ("Body".to_owned(), body)];
                let sig = twilio::signature(TOKEN, &format!("{PUBLIC}/hooks/twilio/sms"), &params);
                (serde_urlencoded::to_string(&params).unwrap().into_bytes(), sig)
            } else {
                (raw_body, "forged".to_owned())
            };
            let r = t
                .http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-twilio-signature", sig)
                .body(bytes)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            if signed {
                prop_assert_eq!(status, 200, "a signed SMS is answered with TwiML");
            } else {
                prop_assert!(status == 400 || status == 403, "a forged or malformed hook is refused, got {}", status);
            }
            Ok(())
        })
    });
    assert!(result.is_ok(), "{result:?}");
}

// ---- the sign-in redirect ------------------------------------------------

/// Pieces that lead browsers off-site when a `Location` is read leniently
/// (the WHATWG URL standard: TAB/CR/LF dropped, `\\` read as `/`, `//host`
/// another site), raw and percent-escaped.
const REDIRECT_TRICKS: &[&str] = &[
    "/",
    "//",
    "\\",
    "/\\",
    "\t",
    "\r",
    "\n",
    "%09",
    "%0d%0a",
    "%2f",
    "%2F",
    "%5c",
    "%5C",
    "%00",
    "\u{7f}",
    " ",
    "evil.example",
    "@evil.example",
    ":",
    "https:",
    "javascript:",
    "?",
    "#",
    "..",
    "/now",
    "/cases/1001",
    "%25",
    "\u{e9}",
    "\u{3002}",
    "\u{ff0f}",
];

/// Any `next` given to the sign-in form: the daemon answers 303, and where
/// the browser goes, resolving the `Location` as browsers do (the `url`
/// crate implements the WHATWG parser), is a page of this site.
#[test]
fn the_sign_in_redirect_never_leaves_the_site() {
    use harness::web::{browser, hidden, set_cookie};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = rt.block_on(TestApp::spawn(Workers::Manual));
    let token = rt.block_on(t.token("fuzz-manager", tocsin::token::TokenRole::Manager, None));
    let base = url::Url::parse(&t.url("/login")).unwrap();
    let next =
        prop_oneof![vec(proptest::sample::select(REDIRECT_TRICKS), 0..8).prop_map(|p| p.concat()), any::<String>(),];
    let mut runner = runner(300);
    let result = runner.run(&next, |next| {
        rt.block_on(async {
            let b = browser();
            let r = b.get(t.url("/login")).send().await.unwrap();
            let (login, _) = set_cookie(&r, "tocsin_login").expect("login cookie");
            let csrf = hidden(&r.text().await.unwrap(), "csrf");
            let r = b
                .post(t.url("/login"))
                .header(reqwest::header::COOKIE, format!("tocsin_login={login}"))
                .form(&[("token", token.as_str()), ("csrf", &csrf), ("next", &next)])
                .send()
                .await
                .unwrap();
            prop_assert_eq!(r.status().as_u16(), 303, "next {:?}", next);
            let location = r.headers()[reqwest::header::LOCATION].to_str().unwrap().to_owned();
            let to = base.join(&location).unwrap();
            prop_assert_eq!(
                (to.scheme(), to.host_str(), to.port()),
                (base.scheme(), base.host_str(), base.port()),
                "next {:?} sent the browser to {}",
                next,
                to
            );
            Ok(())
        })
    });
    assert!(result.is_ok(), "{result:?}");
}

// ---- regressions found by the targets above --------------------------------

/// Found by `any_mail_is_kept_byte_for_byte_and_filed_or_flagged`: a bounce
/// that threads into a case was answered "automatic" but its inbox row was
/// stored "filed" (and an engineer's command reply "command" vs "filed"),
/// so a replay of the row told a different story than the first answer.
#[tokio::test]
async fn an_automatic_mail_joining_a_case_is_stored_as_automatic() {
    let t = TestApp::spawn(Workers::Manual).await;
    let env = |from: &str| Envelope { from: Some(from.into()), to: vec!["help@support.example.com".into()] };
    let first = b"From: ops@acme.com\r\nSubject: Checkout is down\r\nMessage-ID: <r1@acme.com>\r\n\r\nAll 500s.\r\n";
    let (_, opened) = t.app().inbox.ingest(first, &env("ops@acme.com"), "fuzz").await.unwrap();
    let n = opened.case().expect("opened a case");
    let bounce = b"From: ops@acme.com\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\nIn-Reply-To: <r1@acme.com>\r\nMessage-ID: <r2@acme.com>\r\n\r\nAway.\r\n";
    let (id, outcome) = t.app().inbox.ingest(bounce, &env("ops@acme.com"), "fuzz").await.unwrap();
    assert_eq!(outcome.status().as_str(), "automatic");
    assert_eq!(outcome.case(), Some(n));
    let row = t.store().inbox(id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.case), ("automatic", Some(n)));
    assert!(!row.note.is_empty(), "the row says why it is automatic");
    // Filing the row again reports what the first answer said.
    assert_eq!(t.app().inbox.file(id).await.unwrap().status().as_str(), "automatic");
}

// ---- tokens (issue 13) ------------------------------------------------

/// Text like what operators pass to `--expires`, and worse.
fn expires_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{0,25}[smhdwy ]{0,4}[0-9]{0,6}[a-z]{0,3}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2}))?",
    ]
}

proptest! {
    #![proptest_config(config(2000))]

    /// `--expires` answers any text with an instant in the future or a
    /// message, never a panic or an overflow.
    #[test]
    fn any_expires_text_is_a_future_instant_or_refused(raw in expires_text(), secs in 0i64..5_000_000_000) {
        let now = chrono::DateTime::from_timestamp(secs, 0).unwrap();
        if let Ok(at) = tocsin::token::expiry(&raw, now) {
            prop_assert!(at > now);
        }
    }
}

// ---- mail verification (issue 13) ---------------------------------------

const AUTH_RESULTS: &[&str] = &[
    "mx.example.com; dkim=pass (2048-bit key; secure) header.d=acme.com header.i=@acme.com header.b=\"AbC=\"",
    "mx.example.com 1; spf=pass smtp.mailfrom=ops@acme.com; dmarc/1=pass (p=reject) header.from=acme.com",
    "mx.example.com; none",
    "mx.example.com; dkim=fail reason=\"bad (sig)\" header.d=acme.com; dkim=pass header.d=evil.com",
    "mx.evil.com; dkim=pass header.d=acme.com (\\) nested (comments))",
];

/// The `Authentication-Results` reader answers any text, the same each
/// time, and nothing but the trusted host's aligned pass ever verifies.
#[test]
fn any_authentication_results_text_is_read_or_refused_without_panic() {
    use tocsin::mail::auth::{Verification, parse_authentication_results, trusted_results};
    let seeds: Vec<Vec<u8>> = AUTH_RESULTS.iter().map(|s| s.as_bytes().to_vec()).collect();
    let mut runner = runner(5000);
    let result = runner.run(&vec(hostile(seeds), 0..4), |values| {
        let values: Vec<String> = values.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect();
        for v in &values {
            let parsed = parse_authentication_results(v);
            prop_assert_eq!(&parsed, &parse_authentication_results(v), "reading is deterministic");
        }
        let verdict = trusted_results(std::slice::from_ref(&values), "mx.example.com", "acme.com");
        if let Verification::Verified { .. } = verdict {
            let trusted = values.iter().filter_map(|v| parse_authentication_results(v)).any(|ar| {
                ar.authserv_id == "mx.example.com"
                    && ar.results.iter().any(|r| r.result == "pass" && (r.method == "dkim" || r.method == "dmarc"))
            });
            prop_assert!(trusted, "verified only by a trusted pass: {values:?}");
        }
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
}

/// The DKIM check takes any bytes (signed or not, with any DNS answer) and
/// gives a verdict; hostile mail never verifies.
#[test]
fn the_dkim_check_answers_any_mail() {
    use tocsin::mail::auth::{Verification, VerifyMode};
    use tocsin::service::verify::{StaticDns, Verifier};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dns = StaticDns(std::collections::HashMap::from([(
        "sel._domainkey.acme.com".to_owned(),
        vec!["v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".to_owned()],
    )]));
    let verifier = Verifier {
        mode: VerifyMode::Dkim,
        authserv_id: String::new(),
        dns: Arc::new(dns),
        timeout: std::time::Duration::from_secs(5),
    };
    let mut seeds = mail_seeds();
    seeds.push(
        b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=acme.com; s=sel; h=From:Subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\nFrom: ops@acme.com\r\nSubject: x\r\n\r\n".to_vec(),
    );
    let mut runner = runner(300);
    let result = runner.run(&hostile(seeds), |raw| {
        let Ok(mail) = read(&raw, &Envelope::default()) else { return Ok(()) };
        let verdict = rt.block_on(verifier.check(&raw, &mail));
        prop_assert!(!matches!(verdict, Verification::Verified { .. }), "{verdict:?}");
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
}
