//! The `tocsin` binary as an operator runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tocsin(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tocsin")).args(args).current_dir(dir).env("RUST_LOG", "warn").output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn check_passes_on_the_shipped_rules_and_templates() {
    let o = tocsin(&repo(), &["check"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("5 people") && out.contains("47 templates") && out.ends_with("ok\n"), "{out}");
}

fn broken_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["rules", "templates"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        for f in std::fs::read_dir(repo().join(sub)).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), dir.path().join(sub).join(f.file_name())).unwrap();
        }
    }
    dir
}

#[test]
fn check_names_file_line_and_fix_for_each_mistake_and_serve_refuses_to_start() {
    let dir = broken_copy();
    let policies = dir.path().join("rules/policies.toml");
    let text_before = std::fs::read_to_string(&policies).unwrap();
    std::fs::write(&policies, text_before.replacen("schedule:secondary", "schedule:dba", 1)).unwrap();
    let routing = dir.path().join("rules/routing.toml");
    std::fs::write(
        &routing,
        std::fs::read_to_string(&routing).unwrap().replacen("policy = \"urgent\"", "policy = \"urgnet\"", 1),
    )
    .unwrap();
    std::fs::write(dir.path().join("templates/page.sms.txt"), "{{ case.number | shout }}").unwrap();
    let o = tocsin(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(
        out.contains("rules/policies.toml:13: step 2 notifies unknown schedule \"dba\": define [schedule.dba]"),
        "{out}"
    );
    assert!(out.contains("rules/routing.toml:9: route 1: unknown policy \"urgnet\""), "{out}");
    assert!(out.contains("page.sms.txt") && out.contains("shout"), "{out}");
    let o = tocsin(dir.path(), &["serve"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("error(s) in the rules"));
}

#[test]
fn deadline_prints_the_product_examples() {
    let cases = [
        ("office", "2026-12-24T16:45:00+00:00", "2h", "2026-12-29T10:15:00+00:00"),
        ("office", "2026-03-27T12:30:00+00:00", "3h", "2026-03-27T16:30:00+00:00"),
        ("office", "2026-11-21T10:00:00+00:00", "1h 30m 30s", "2026-11-23T10:30:30+00:00"),
        ("24x7", "2026-11-21T10:00:00+00:00", "90s", "2026-11-21T10:01:30+00:00"),
    ];
    for (cal, from, within, want) in cases {
        let o = tocsin(&repo(), &["deadline", "--calendar", cal, "--from", from, "--within", within]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), want);
    }
    let o = tocsin(&repo(), &["deadline", "--calendar", "moon", "--from", "2026-01-01T00:00:00Z", "--within", "1h"]);
    assert!(!o.status.success() && text(&o).contains("unknown calendar \"moon\""));
    let o = tocsin(&repo(), &["deadline", "--calendar", "office", "--from", "yesterday", "--within", "1h"]);
    assert!(!o.status.success() && text(&o).contains("RFC 3339"));
}

#[test]
fn oncall_prints_one_tab_separated_line_per_schedule() {
    // In a copy: oncall reads overrides from the database it opens.
    let dir = broken_copy();
    let o = tocsin(dir.path(), &["oncall", "--at", "2026-11-24T10:00:00Z"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "primary\tana\nsecondary\tben\n");
    let o = tocsin(dir.path(), &["oncall", "--schedule", "primary", "--at", "2026-11-24T19:00:00Z"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "primary\tdana\n");
    let o = tocsin(dir.path(), &["oncall", "--schedule", "primary", "--at", "2026-11-01T19:00:00Z"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "primary\t-\n");
}

#[test]
fn token_create_prints_a_token_once_and_refuses_bad_input() {
    let dir = broken_copy();
    let o = tocsin(dir.path(), &["token", "create", "--name", "ana-phone", "--role", "engineer", "--person", "ana"]);
    assert!(o.status.success(), "{}", text(&o));
    let token = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert!(token.starts_with("tocsin_") && token.len() == 50, "{token}");
    let o = tocsin(dir.path(), &["token", "create", "--name", "ana-phone", "--role", "engineer"]);
    assert!(!o.status.success() && text(&o).contains("already exists"), "{}", text(&o));
    let o = tocsin(dir.path(), &["token", "create", "--name", "x", "--role", "boss"]);
    assert!(!o.status.success() && text(&o).contains("unknown role \"boss\""), "{}", text(&o));
    let o = tocsin(dir.path(), &["token", "create", "--name", "y", "--role", "engineer", "--person", "zoe"]);
    assert!(!o.status.success() && text(&o).contains("unknown person \"zoe\""), "{}", text(&o));
    let db = std::fs::read(dir.path().join("tocsin.db")).unwrap_or_default();
    let wal = std::fs::read(dir.path().join("tocsin.db-wal")).unwrap_or_default();
    let needle = token.as_bytes();
    assert!(![db, wal].iter().any(|b| b.windows(needle.len()).any(|w| w == needle)), "the token is stored in clear");
}

#[test]
fn tokens_are_created_with_an_expiry_or_for_one_feed_listed_without_secrets_and_revoked() {
    let dir = broken_copy();
    let create = |args: &[&str]| {
        let mut all = vec!["token", "create"];
        all.extend_from_slice(args);
        tocsin(dir.path(), &all)
    };
    let o = create(&["--name", "ana-phone", "--role", "engineer", "--person", "ana", "--expires", "90d"]);
    assert!(o.status.success(), "{}", text(&o));
    let secret = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert!(create(&["--name", "ops", "--role", "admin", "--expires", "2099-01-31"]).status.success());
    assert!(create(&["--name", "ana-cal", "--role", "feed", "--person", "ana"]).status.success());
    assert!(create(&["--name", "primary-cal", "--role", "feed", "--schedule", "primary"]).status.success());
    for (args, want) in [
        (&["--name", "x", "--role", "engineer", "--expires", "yesterday"][..], "--expires: \"yesterday\" is neither"),
        (&["--name", "x", "--role", "engineer", "--expires", "2020-01-01"], "--expires: \"2020-01-01\" is"),
        (&["--name", "x", "--role", "feed"], "exactly one of --person or --schedule"),
        (&["--name", "x", "--role", "feed", "--person", "ana", "--schedule", "primary"], "exactly one of"),
        (&["--name", "x", "--role", "feed", "--schedule", "tertiary"], "--schedule: unknown schedule \"tertiary\""),
        (&["--name", "x", "--role", "admin", "--schedule", "primary"], "only feed tokens name a schedule"),
        (&["--name", "ana-phone", "--role", "admin"], "a token named \"ana-phone\" already exists"),
    ] {
        let o = create(args);
        assert!(!o.status.success() && text(&o).contains(want), "{args:?}: {}", text(&o));
    }

    let o = tocsin(dir.path(), &["token", "list"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "name\trole\tscope\tcreated\texpires\trevoked");
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[1].starts_with("ana-phone\tengineer\tperson ana\t"), "{out}");
    assert!(lines[2].starts_with("ops\tadmin\t-\t") && lines[2].contains("\t2099-01-31T00:00:00Z\t-"), "{out}");
    assert!(lines[4].starts_with("primary-cal\tfeed\tschedule primary\t") && lines[4].ends_with("\t-\t-"), "{out}");
    assert!(!out.contains(&secret) && !out.contains("tocsin_"), "no secret in the list: {out}");

    assert!(tocsin(dir.path(), &["token", "revoke", "ana-phone"]).status.success());
    let o = tocsin(dir.path(), &["token", "revoke", "zoe-phone"]);
    assert!(!o.status.success() && text(&o).contains("no token named \"zoe-phone\""), "{}", text(&o));
    let o = tocsin(dir.path(), &["token", "list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list[0]["name"], "ana-phone");
    assert!(list[0]["revoked_at"].is_string() && list[0]["expires_at"].is_string(), "{list}");
    assert!(list[3]["revoked_at"].is_null() && list[3]["schedule"] == "primary", "{list}");
    assert!(!o.stdout.windows(secret.len()).any(|w| w == secret.as_bytes()));

    let o = tocsin(dir.path(), &["audit"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains("\tcli\ttoken_created\tana-phone\t-\trole engineer, person ana, expires "), "{out}");
    assert!(out.contains("\tcli\ttoken_revoked\tana-phone\t"), "{out}");
    let o = tocsin(dir.path(), &["audit", "--format", "json", "--from", "2020-01-01T00:00:00Z"]);
    let log: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(log.as_array().unwrap().len(), 5, "{log}");
    let o = tocsin(dir.path(), &["audit", "--from", "last week"]);
    assert!(!o.status.success() && text(&o).contains("--from"), "{}", text(&o));
}

#[test]
fn every_subcommand_takes_config_and_a_bad_config_names_its_line() {
    let dir = broken_copy();
    std::fs::write(dir.path().join("custom.toml"), "[server]\nhttp = \"127.0.0.1:0\"\nsmpt = \"x\"\n").unwrap();
    for args in [&["check"][..], &["migrate"], &["oncall"], &["serve"]] {
        let mut all = args.to_vec();
        all.extend(["--config", "custom.toml"]);
        let o = tocsin(dir.path(), &all);
        assert!(!o.status.success(), "{all:?}");
        assert!(text(&o).contains("custom.toml:3: unknown field `smpt`"), "{all:?}: {}", text(&o));
    }
    let o = tocsin(dir.path(), &["migrate"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn overrides_are_added_listed_honoured_and_removed_from_the_cli() {
    let dir = broken_copy();
    let add = [
        "override",
        "add",
        "--schedule",
        "primary",
        "--person",
        "chen",
        "--start",
        "2026-11-24T09:00:00Z",
        "--end",
        "2026-11-24T12:00:00Z",
        "--reason",
        "swap",
    ];
    let o = tocsin(dir.path(), &add);
    assert!(o.status.success(), "{}", text(&o));
    let id = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let o = tocsin(dir.path(), &["oncall", "--at", "2026-11-24T10:00:00Z"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "primary\tchen\nsecondary\tben\n");
    // The list shows overrides that have not ended: a far-future one, not
    // the one above once its day is past (this test must not age).
    let mut later = add;
    (later[7], later[9], later[11]) = ("2099-01-05T09:00:00Z", "2099-01-05T12:00:00Z", "holiday");
    let o = tocsin(dir.path(), &later);
    assert!(o.status.success(), "{}", text(&o));
    let later_id = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let o = tocsin(dir.path(), &["override", "list"]);
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        listed.ends_with(&format!("{later_id}\tprimary\tchen\t2099-01-05T09:00:00Z\t2099-01-05T12:00:00Z\tholiday\n")),
        "{listed}"
    );
    let past = chrono::Utc::now() > "2026-11-24T12:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    assert_eq!(listed.lines().count(), if past { 1 } else { 2 }, "{listed}");
    let bad = [
        "override",
        "add",
        "--schedule",
        "primary",
        "--person",
        "chen",
        "--start",
        "2026-11-24T12:00:00Z",
        "--end",
        "2026-11-24T09:00:00Z",
    ];
    let o = tocsin(dir.path(), &bad);
    assert!(!o.status.success() && text(&o).contains("--end: must be after start"), "{}", text(&o));
    // The same checks as the API and the dashboard: a reason of 501
    // characters is refused here too.
    let long = "x".repeat(501);
    let mut wordy = add;
    wordy[11] = &long;
    let o = tocsin(dir.path(), &wordy);
    assert!(!o.status.success() && text(&o).contains("--reason: at most 500 characters"), "{}", text(&o));
    assert!(tocsin(dir.path(), &["override", "remove", &id]).status.success());
    let o = tocsin(dir.path(), &["override", "remove", &id]);
    assert!(!o.status.success() && text(&o).contains("no override"), "{}", text(&o));
    let o = tocsin(dir.path(), &["oncall", "--at", "2026-11-24T10:00:00Z"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "primary\tana\nsecondary\tben\n");
}

/// Runs `tocsin args…` in `dir` with `env`, and waits (bounded) for it to
/// exit: a `serve` that wrongly starts would otherwise run forever.
fn tocsin_exits(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("tocsin {args:?} did not exit: {}", text(&child.wait_with_output().unwrap()));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn smtp_credentials_over_plain_smtp_fail_check_and_serve_refuses_to_start() {
    let dir = broken_copy();
    let config = |transport: &str| {
        let text = format!(
            "[server]\nhttp = \"127.0.0.1:0\"\nsmtp = \"\"\n[email]\ntransport = \"{transport}\"\n\
             smtp_user_env = \"TOCSIN_TEST_SMTP_USER\"\nsmtp_password_env = \"TOCSIN_TEST_SMTP_PASSWORD\"\n"
        );
        std::fs::write(dir.path().join("tocsin.toml"), text).unwrap();
    };
    // The credentials are there, so only the transport stands in the way.
    let env = [("TOCSIN_TEST_SMTP_USER", "tocsin"), ("TOCSIN_TEST_SMTP_PASSWORD", "hunter2")];
    for plain in ["smtp://127.0.0.1:2587", "smtp://127.0.0.1:2587?tls=opportunistic"] {
        config(plain);
        for command in ["check", "serve"] {
            let o = tocsin_exits(dir.path(), &[command], &env);
            let out = text(&o);
            assert_eq!(o.status.code(), Some(1), "{command} with {plain}: {out}");
            assert!(out.contains("tocsin.toml: [email] transport"), "{command}: {out}");
            assert!(out.contains("unencrypted"), "{command}: {out}");
            assert!(out.contains("\"smtp://127.0.0.1:2587?tls=required\""), "{command}: {out}");
            assert!(out.contains("\"smtps://127.0.0.1\""), "{command}: {out}");
        }
    }
    for encrypted in ["smtp://127.0.0.1:2587?tls=required", "smtps://127.0.0.1:2465"] {
        config(encrypted);
        let o = tocsin_exits(dir.path(), &["check"], &env);
        assert!(o.status.success(), "{encrypted}: {}", text(&o));
    }
}

#[test]
fn serve_refuses_to_start_when_the_metrics_token_variable_is_unset() {
    let dir = broken_copy();
    let config =
        "[server]\nhttp = \"127.0.0.1:0\"\nsmtp = \"\"\nmetrics_token_env = \"TOCSIN_TEST_NO_SUCH_VARIABLE\"\n";
    std::fs::write(dir.path().join("tocsin.toml"), config).unwrap();
    let o = tocsin_exits(dir.path(), &["serve"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o)
            .contains("[server] metrics_token_env: the environment variable TOCSIN_TEST_NO_SUCH_VARIABLE is not set"),
        "{}",
        text(&o)
    );
}
