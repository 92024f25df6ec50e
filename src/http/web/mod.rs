//! The managers' dashboard, served by the daemon itself: server-rendered
//! minijinja pages, htmx (vendored) to refresh the live parts, a few lines
//! of our own script for countdowns, charts drawn as SVG on the server.
//! Every asset is compiled into the binary.
//!
//! Sign-in exchanges an API token for a session cookie ([`session`]); every
//! form carries the session's CSRF secret; every page answers with a
//! Content-Security-Policy that allows only our own scripts and styles, and
//! every value from outside is escaped by minijinja's HTML auto-escaping.

pub mod charts;
pub mod pages;
pub mod reports;
pub mod search;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use minijinja::Environment;
use serde::Serialize;

use crate::http::AppState;
use crate::store::{Store, StoreError};

/// The page templates, compiled in.
const TEMPLATES: [(&str, &str); 9] = [
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("now.html", include_str!("templates/now.html")),
    ("now_live.html", include_str!("templates/now_live.html")),
    ("case.html", include_str!("templates/case.html")),
    ("reports.html", include_str!("templates/reports.html")),
    ("schedules.html", include_str!("templates/schedules.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("cases.html", include_str!("templates/cases.html")),
];

/// Static files: path, content type, body.
const ASSETS: [(&str, &str, &str); 4] = [
    ("favicon.svg", "image/svg+xml", include_str!("assets/favicon.svg")),
    ("htmx.min.js", "text/javascript; charset=utf-8", include_str!("assets/htmx.min.js")),
    ("tocsin.js", "text/javascript; charset=utf-8", include_str!("assets/tocsin.js")),
    ("tocsin.css", "text/css; charset=utf-8", include_str!("assets/tocsin.css")),
];

/// Only our own scripts and styles; SVG charts use presentation
/// attributes, so no inline style is needed either.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the dashboard needs beside the API's state.
pub struct Web {
    env: Environment<'static>,
    /// Where reports read: `[database] reports_url`, else the main store.
    pub reports: Arc<dyn Store>,
    pub session_ttl: TimeDelta,
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
    /// For tokens that belong to no person.
    pub zone: Tz,
}

impl Web {
    pub fn new(reports: Arc<dyn Store>, config: &crate::config::Config) -> Result<Web, String> {
        Ok(Web {
            env: environment()?,
            reports,
            session_ttl: TimeDelta::from_std(config.dashboard.session_ttl).map_err(|e| e.to_string())?,
            secure_cookies: config.server.public_url.starts_with("https://"),
            zone: config.dashboard.zone()?,
        })
    }

    /// Renders page `name`; a template error is logged and shown as a 500.
    pub fn render<S: Serialize>(&self, name: &str, ctx: S) -> Result<Html<String>, WebError> {
        let t = self.env.get_template(name).map_err(WebError::template)?;
        t.render(minijinja::Value::from(minijinja::value::Serde(&ctx))).map(Html).map_err(WebError::template)
    }
}

/// The compiled-in templates, HTML-escaped (by their `.html` names).
fn environment() -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source).map_err(|e| format!("dashboard template {name}: {e}"))?;
    }
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    Ok(env)
}

/// Adds the headers every dashboard answer carries.
fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    r
}

/// An error page: status and a sentence for a person.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
}

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
    fn template(e: minijinja::Error) -> Self {
        tracing::error!(error = %e, "dashboard template failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "this page could not be drawn; the error has been logged")
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "the database is unavailable right now; try again in a moment")
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        // Escaped by hand: this page must render even when templates fail.
        let text = minijinja::HtmlEscape(&self.message).to_string();
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
             content=\"width=device-width, initial-scale=1\"><title>Tocsin: {code}</title>\
             <link rel=\"stylesheet\" href=\"/assets/tocsin.css\"></head><body><main class=\"narrow\">\
             <h1>{code}</h1><p class=\"error\" role=\"alert\">{text}</p><p><a href=\"/now\">Back to the dashboard</a></p>\
             </main></body></html>",
            code = self.status
        );
        secure((self.status, Html(body)).into_response())
    }
}

/// Serves a compiled-in asset; they change only with the binary.
async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, body)) => {
            let mut r = ([(header::CONTENT_TYPE, *kind)], *body).into_response();
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
            secure(r)
        }
        None => WebError::new(StatusCode::NOT_FOUND, format!("no asset {name:?}")).into_response(),
    }
}

/// `at` on the viewer's clock, short: "Tue 24 Nov 10:00".
pub fn local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%a %d %b %H:%M").to_string()
}

/// `at` as RFC 3339, for scripts.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A duration for people: "2h 05m", "3d 4h", "45s".
pub fn span(d: TimeDelta) -> String {
    let s = d.num_seconds().abs();
    let (days, hours, minutes, seconds) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m {seconds:02}s")
    } else {
        format!("{seconds}s")
    }
}

/// The dashboard's routes, under `/`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/now") }))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/now", get(pages::now))
        .route("/now/live", get(pages::now_live))
        .route("/cases", get(search::cases))
        .route("/cases/{number}", get(pages::case))
        .route("/cases/{number}/{action}", post(pages::act))
        .route("/cases/{number}/attachments/{id}", get(pages::attachment))
        .route("/schedules", get(pages::schedules))
        .route("/schedules/overrides", post(pages::add_override))
        .route("/reports", get(reports::page))
        .route("/reports/{table}", get(reports::csv))
        .route("/assets/{name}", get(asset))
        .route("/favicon.ico", get(|| async { axum::response::Redirect::permanent("/assets/favicon.svg") }))
        .layer(axum::middleware::map_response(|r: Response| async move { secure(r) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_like_a_person_would_write_them() {
        assert_eq!(span(TimeDelta::seconds(45)), "45s");
        assert_eq!(span(TimeDelta::seconds(125)), "2m 05s");
        assert_eq!(span(TimeDelta::seconds(2 * 3600 + 300)), "2h 05m");
        assert_eq!(span(TimeDelta::seconds(-(3 * 86_400 + 4 * 3600))), "3d 4h");
    }

    #[test]
    fn every_template_compiles() {
        if let Err(e) = environment() {
            panic!("{e}");
        }
    }
}
