//! `tocsin check`: validates config, rules and templates without starting.

use anyhow::bail;

use crate::config::Config;
use crate::notify::Templates;

pub fn run(config: &Config) -> anyhow::Result<()> {
    let source = config.source.as_ref().map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string());
    let rules = crate::rules::load(&config.paths.rules);
    let templates = Templates::load(&config.paths.templates);
    let mut errors = 0;
    match &rules {
        Ok(r) => println!("rules ({}): {}", config.paths.rules.display(), r.summary()),
        Err(e) => {
            errors += e.len();
            e.iter().for_each(|d| println!("{d}"));
        }
    }
    match &templates {
        Ok(t) => println!("templates ({}): {} templates", config.paths.templates.display(), t.len()),
        Err(e) => {
            errors += e.len();
            e.iter().for_each(|d| println!("{d}"));
        }
    }
    println!("config: {source}");
    errors += reply_key(config);
    println!("email verify: {}", config.email.verify.as_str());
    if config.email.verify == crate::mail::auth::VerifyMode::Dkim
        && let Err(e) = crate::service::verify::SystemDns::new()
    {
        println!("error: {e}");
        errors += 1;
    }
    if errors > 0 {
        bail!("{errors} error(s)");
    }
    println!("ok");
    Ok(())
}

/// `tocsin check --coverage`: every hole from now to now + `within`; an
/// error (exit status 1) when there is any.
pub async fn coverage(config: &Config, within: &str) -> anyhow::Result<()> {
    let within = super::simulate::duration(within, "--coverage")?;
    let rules = super::load_rules(config)?;
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let (mut overrides, mut sms_off) = (Default::default(), Default::default());
    // Only a database a config file names: the built-in default would be
    // ./tocsin.db of whatever folder this runs in.
    if config.source.is_some()
        && let Some(store) = crate::store::open_read_only(&config.database).await.map_err(anyhow::Error::msg)?
    {
        overrides = crate::service::overrides::by_schedule(store.as_ref(), now).await?;
        sms_off = store.sms_opt_outs().await?;
    }
    let holes = crate::coverage::holes(&rules, &overrides, &sms_off, now, within);
    let span = humantime::format_duration(within.to_std().unwrap_or_default());
    for hole in &holes {
        println!("hole: {hole}");
    }
    if !holes.is_empty() {
        bail!("{} hole(s) in coverage in the next {span}", holes.len());
    }
    println!("coverage: no hole in the next {span}");
    Ok(())
}

/// Where the reply key comes from, and whether it is safe (issue 13):
/// warnings for a weak key, a key file others may read, or PostgreSQL
/// without a shared key. The count of errors.
fn reply_key(config: &Config) -> usize {
    let weak = |key: &[u8], whence: &str| {
        if let Some(why) = crate::notify::ids::weakness(key) {
            println!("warning: the reply key in {whence} is weak: {why}");
        }
    };
    if let Some(key) = crate::app::reply_key_from_env(config) {
        println!("reply key: the environment variable {}", config.secrets.reply_key_env);
        weak(key.as_bytes(), &format!("${}", config.secrets.reply_key_env));
        return 0;
    }
    let path = match crate::app::reply_key_path(config) {
        Ok(Some(path)) => path,
        Ok(None) => {
            println!("reply key: generated per process (in-memory database)");
            return 0;
        }
        // Serve refuses too, unless the database still holds the key an
        // earlier release kept there: then it goes on with that one (so a
        // rolling upgrade does not stop here) and warns until it is moved.
        Err(e) => {
            println!(
                "warning: {e}. Until then serve starts only on a database that still holds the key an earlier \
                 release kept in it (and warns); on a new database it refuses"
            );
            return 0;
        }
    };
    match std::fs::read(&path) {
        Ok(key) => {
            println!("reply key: {}", path.display());
            weak(String::from_utf8_lossy(&key).trim().as_bytes(), &path.display().to_string());
            #[cfg(unix)]
            if let Ok(meta) = std::fs::metadata(&path) {
                use std::os::unix::fs::PermissionsExt;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    println!(
                        "warning: the reply key file {} is readable by others (mode {mode:o}): run `chmod 600 {}`",
                        path.display(),
                        path.display()
                    );
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("reply key: {} (generated at the first start)", path.display());
        }
        Err(e) => {
            println!("error: cannot read the reply key file {}: {e}", path.display());
            return 1;
        }
    }
    0
}
