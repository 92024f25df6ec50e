//! `deploy/`: the example PostgreSQL config is valid, and the systemd unit
//! runs commands and flags the binary has.

use tocsin::config::Config;

use crate::harness::repo;

#[test]
fn the_example_config_loads_and_names_postgres() {
    let config = Config::load(Some(&repo().join("deploy/tocsin.toml"))).expect("deploy/tocsin.toml is valid");
    assert!(config.database.url.starts_with("postgres://"), "{}", config.database.url);
    assert!(config.server.public_url.starts_with("https://"), "behind a TLS proxy: Secure cookies");
    assert_eq!(config.sms.provider, "twilio");
}

#[test]
fn the_unit_runs_commands_the_binary_has() {
    let unit = std::fs::read_to_string(repo().join("deploy/tocsin.service")).unwrap();
    let exec: Vec<&str> =
        unit.lines().filter_map(|l| l.strip_prefix("ExecStart=").or_else(|| l.strip_prefix("ExecStartPre="))).collect();
    assert_eq!(exec.len(), 2, "ExecStartPre (check) and ExecStart (serve)");
    for line in exec {
        let mut args: Vec<&str> = line.split_whitespace().skip(1).collect();
        // Ask the binary to parse the same arguments, with --help so nothing runs.
        args.push("--help");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tocsin")).args(&args).output().unwrap();
        assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
    }
    for hardening in
        ["NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes", "SystemCallFilter=@system-service"]
    {
        assert!(unit.contains(hardening), "{hardening}");
    }
    match std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(repo().join("deploy/tocsin.service"))
        .output()
    {
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            // The binary path does not exist on a build machine; nothing else may be wrong.
            let real: Vec<&str> =
                err.lines().filter(|l| !l.contains("/usr/local/bin/tocsin") && !l.trim().is_empty()).collect();
            assert!(real.is_empty(), "systemd-analyze verify: {err}");
        }
        Err(_) => {
            eprintln!("SKIPPED: systemd-analyze is not installed; the unit was checked by the binary's own parser only")
        }
    }
}
