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
    if errors > 0 {
        bail!("{errors} error(s)");
    }
    println!("ok");
    Ok(())
}
