//! The message templates in `templates/`: one set per message kind and
//! channel, rendered with minijinja (strict about undefined names, HTML
//! auto-escaped in `.html` files, fuel-limited so a template cannot loop).

use std::path::Path;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::case::PageKind;
use crate::people::ChannelKind;

/// Fuel for one render: plenty for any page, finite for a runaway loop.
const FUEL: u64 = 100_000;

/// The templates every kind of message needs, by file name.
pub fn required() -> Vec<String> {
    let mut names = Vec::new();
    for kind in [
        PageKind::Page,
        PageKind::Reminder,
        PageKind::Breach,
        PageKind::Warning,
        PageKind::Notice,
        PageKind::Reply,
        PageKind::Assigned,
    ] {
        names.push(format!("{}.sms.txt", kind.as_str()));
        names.extend(email_names(kind));
    }
    names.extend(email_names(PageKind::Receipt));
    names.extend(email_names(PageKind::Confirmation));
    names.extend(email_names(PageKind::Digest));
    names.extend(email_names(PageKind::CustomerReply));
    names.extend(email_names(PageKind::CustomerAck));
    names.extend(email_names(PageKind::CustomerResolved));
    names.push("bundle.sms.txt".into());
    names
}

fn email_names(kind: PageKind) -> [String; 3] {
    let k = kind.as_str();
    [format!("{k}.email.subject.txt"), format!("{k}.email.txt"), format!("{k}.email.html")]
}

/// `{{ text | truncate(60) }}`: at most `n` characters, ending in "..."
/// when cut (plain dots: "…" is not in GSM-7 and would turn an SMS into
/// UCS-2), so an SMS stays within one segment.
fn truncate(s: String, n: usize) -> String {
    if s.chars().count() <= n {
        return s;
    }
    let mut out: String = s.chars().take(n.saturating_sub(3)).collect::<String>().trim_end().to_owned();
    out.push_str("...");
    out
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Empty for SMS.
    pub subject: String,
    pub text: String,
    /// Only for email.
    pub html: Option<String>,
}

/// Templates that are reloaded when their files change: what the
/// dispatcher renders with.
#[derive(Debug, Clone)]
pub struct Live {
    dir: std::path::PathBuf,
    current: std::sync::Arc<std::sync::RwLock<std::sync::Arc<Templates>>>,
}

impl Live {
    pub fn new(dir: &Path, templates: Templates) -> Self {
        Self {
            dir: dir.to_owned(),
            current: std::sync::Arc::new(std::sync::RwLock::new(std::sync::Arc::new(templates))),
        }
    }

    /// The templates in force.
    pub fn get(&self) -> std::sync::Arc<Templates> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What identifies the folder's contents: names, sizes, change times.
    fn fingerprint(&self) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
        let mut all: Vec<_> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| {
                        let m = e.metadata().ok()?;
                        Some((e.file_name().to_string_lossy().into_owned(), m.len(), m.modified().ok()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        all.sort();
        all
    }

    /// Watches the folder until `shutdown`; a changed set that loads and
    /// checks cleanly replaces the one in force, a broken one is logged and
    /// ignored, so a typo saved in an editor never stops paging.
    pub async fn watch(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut seen = self.fingerprint();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                _ = shutdown.changed() => return,
            }
            let now = self.fingerprint();
            if now == seen {
                continue;
            }
            seen = now;
            match Templates::load(&self.dir) {
                Ok(t) => {
                    *self.current.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(t);
                    tracing::info!(dir = %self.dir.display(), "templates reloaded");
                }
                Err(errors) => {
                    for e in errors {
                        tracing::error!(error = %e, "template change refused; keeping the templates in force");
                    }
                }
            }
        }
    }
}

/// The loaded templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Loads every file in `dir` and checks that each required template is
    /// there and compiles. Errors name the file and, where known, the line.
    pub fn load(dir: &Path) -> Result<Templates, Vec<String>> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.add_filter("truncate", truncate);
        let mut errors = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            vec![format!("{}: cannot read the templates folder ({e}): run from the folder that holds templates/, or set [paths] templates", dir.display())]
        })?;
        let mut names = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
            if !path.is_file() || name.starts_with('.') {
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(source) => match env.add_template_owned(name.clone(), source) {
                    Ok(()) => names.push(name),
                    Err(e) => errors.push(format!(
                        "{}:{}: {}",
                        path.display(),
                        e.line().unwrap_or(0),
                        e.detail().unwrap_or("syntax error")
                    )),
                },
                Err(e) => errors.push(format!("{}: cannot read ({e})", path.display())),
            }
        }
        for name in required() {
            if !names.contains(&name) && !errors.iter().any(|e| e.contains(&name)) {
                errors.push(format!(
                    "{}: missing: every message kind needs it; copy it from the shipped templates/",
                    dir.join(&name).display()
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let templates = Templates { env };
        // Render every message once with a sample case, so that an unknown
        // name or filter shows up in `tocsin check`, not at 3 a.m.
        let mut errors = Vec::new();
        for rendered in super::sample_renders(&templates) {
            match rendered {
                Err(e) => errors.push(format!("{}/{e}", dir.display())),
                Ok((kind, ChannelKind::Sms, r)) if super::sms::segments(&super::sms::gsm7(&r.text)) > 1 => errors.push(format!(
                    "{}: renders to {} characters with a sample case, more than one SMS (160): shorten it or truncate its fields",
                    dir.join(format!("{}.sms.txt", kind.as_str())).display(),
                    super::sms::units(&super::sms::gsm7(&r.text))
                )),
                Ok(_) => {}
            }
        }
        let items = serde_json::json!([
            {"case": {"tag": "#1042", "priority": "P1", "customer": "Acme", "requester": "ops@acme.com", "subject": "Database down"}},
            {"case": {"tag": "#1043", "priority": "P2", "customer": null, "requester": "it@globex.example", "subject": "Slow invoices"}}
        ]);
        if let Err(e) =
            templates.render_bundle(&serde_json::json!({"count": 2, "pages": items, "public_url": "https://x"}))
        {
            errors.push(format!("{}/{e}", dir.display()));
        }
        if errors.is_empty() { Ok(templates) } else { Err(errors) }
    }

    /// How many templates are loaded.
    pub fn len(&self) -> usize {
        self.env.templates().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn render_one(&self, name: &str, ctx: &Value) -> Result<String, String> {
        let t = self.env.get_template(name).map_err(|e| format!("{name}: {e}"))?;
        let out = t
            .render(ctx)
            .map_err(|e| format!("{name}:{}: {}", e.line().unwrap_or(0), e.detail().unwrap_or("render error")))?;
        Ok(out.trim().to_owned())
    }

    /// Renders the SMS that bundles several pages to one person.
    pub fn render_bundle(&self, ctx: &impl Serialize) -> Result<String, String> {
        self.render_one("bundle.sms.txt", &Value::from(minijinja::value::Serde(ctx)))
    }

    /// Renders message `kind` for `channel` with `ctx`.
    pub fn render(&self, kind: PageKind, channel: ChannelKind, ctx: &impl Serialize) -> Result<Rendered, String> {
        let ctx = Value::from(minijinja::value::Serde(ctx));
        let k = kind.as_str();
        match channel {
            ChannelKind::Sms => Ok(Rendered {
                subject: String::new(),
                text: self.render_one(&format!("{k}.sms.txt"), &ctx)?,
                html: None,
            }),
            ChannelKind::Email => {
                let subject = self.render_one(&format!("{k}.email.subject.txt"), &ctx)?;
                Ok(Rendered {
                    subject: subject.lines().next().unwrap_or_default().to_owned(),
                    text: self.render_one(&format!("{k}.email.txt"), &ctx)?,
                    html: Some(self.render_one(&format!("{k}.email.html"), &ctx)?),
                })
            }
        }
    }
}
