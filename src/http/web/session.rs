//! Sign-in: an API token (manager or admin; engineers see their own cases)
//! is exchanged for a session cookie — `HttpOnly`, `SameSite=Strict`,
//! `Secure` behind https — that expires after `[dashboard] session_ttl`.
//! The store keeps only a hash of the cookie. Each session has a CSRF secret
//! that every form echoes; the sign-in form itself is protected by a
//! short-lived cookie it must echo (double submit).

use axum::extract::{Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use chrono_tz::Tz;
use cookie::{Cookie, SameSite};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::WebError;
use crate::audit::client_key;
use crate::http::AppState;
use crate::http::server::ClientAddr;
use crate::notify::ids::constant_eq;
use crate::people::PersonId;
use crate::service::tokens::SignInError;
use crate::token::{self, Refusal, TokenInfo, TokenRole};

/// The session cookie.
pub const COOKIE: &str = "tocsin_session";
/// The sign-in form's own CSRF cookie.
const LOGIN_COOKIE: &str = "tocsin_login";

fn random() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The value of cookie `name` in the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

fn set_cookie(r: &mut Response, c: Cookie<'_>) {
    if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn build(name: &'static str, value: String, path: &'static str, secure: bool, max_age: i64) -> Cookie<'static> {
    Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build()
}

/// Where to go after signing in: `next` if it is a path on this site,
/// else `/now`.
fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| same_site_path(n)).map_or_else(|| "/now".to_owned(), str::to_owned)
}

/// Whether `next` can only lead to a page of this site. Browsers read a
/// `Location` leniently (the WHATWG URL standard): they drop TAB, CR and LF
/// anywhere, read `\` as `/`, and take `//host` as another site, so
/// `/\t/evil.example` leads off-site. Only a plain path passes: it starts
/// with a single `/`, holds printable ASCII only (no control character, no
/// space; which also keeps the header valid), parses as a path, and hides
/// none of those tricks behind percent-escapes either.
fn same_site_path(next: &str) -> bool {
    let plain = |p: &[u8]| p.starts_with(b"/") && !p.starts_with(b"//") && !p.contains(&b'\\');
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(next).collect();
    next.bytes().all(|b| b.is_ascii_graphic())
        && plain(next.as_bytes())
        && plain(&decoded)
        && !decoded.iter().any(u8::is_ascii_control)
        && next.parse::<PathAndQuery>().is_ok()
        && !next.starts_with("/login")
}

/// A signed-in person (or token).
#[derive(Debug, Clone)]
pub struct Session {
    pub token: TokenInfo,
    pub csrf: String,
    /// Times and weeks are shown on this clock.
    pub zone: Tz,
    /// Who, for the page header.
    pub name: String,
    hash: String,
}

/// What every page's header shows.
#[derive(Debug, Serialize)]
pub struct Me {
    pub name: String,
    pub role: &'static str,
    pub manager: bool,
    pub csrf: String,
    pub zone: String,
}

impl Session {
    /// Managers and admins see everything; engineers their own cases.
    pub fn is_manager(&self) -> bool {
        matches!(self.token.role, TokenRole::Manager | TokenRole::Admin)
    }

    pub fn person(&self) -> Option<&PersonId> {
        self.token.person.as_ref()
    }

    pub fn me(&self) -> Me {
        Me {
            name: self.name.clone(),
            role: self.token.role.as_str(),
            manager: self.is_manager(),
            csrf: self.csrf.clone(),
            zone: self.zone.name().to_owned(),
        }
    }

    /// Refuses a form that does not carry this session's CSRF secret.
    pub fn check_csrf(&self, sent: &str) -> Result<(), WebError> {
        if constant_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(WebError::forbidden(
                "this form did not come from your dashboard session (CSRF check failed); reload the page and try again",
            ))
        }
    }
}

/// Why a request has no session: where to send the browser.
pub struct SignIn(Response);

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        self.0
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = SignIn;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, SignIn> {
        let here = parts.uri.path_and_query().map_or("/now", |p| p.as_str());
        // A session lasts while its token may be used: a revoked or expired
        // token's sessions end at once.
        let found = match cookie(&parts.headers, COOKIE) {
            Some(v) => state.tokens.session(&token::hash(v)).await,
            None => Ok(None),
        };
        match found {
            Ok(Some((info, s))) => {
                let rules = state.rules.get();
                let person = info.person.as_ref().and_then(|p| rules.people.get(p));
                Ok(Session {
                    zone: person.map_or(state.web.zone, |p| p.timezone),
                    name: person.map_or_else(|| info.name.clone(), |p| p.name.clone()),
                    hash: cookie(&parts.headers, COOKIE).map(token::hash).unwrap_or_default(),
                    token: info,
                    csrf: s.csrf,
                })
            }
            Ok(None) => Err(SignIn(to_sign_in(parts, here))),
            Err(e) => Err(SignIn(WebError::from(e).into_response())),
        }
    }
}

/// The answer to a request without a session.
fn to_sign_in(parts: &Parts, here: &str) -> Response {
    let target = format!("/login?next={}", urlencode(here));
    if parts.headers.contains_key("hx-request") {
        // htmx follows this header with a full page load.
        let mut r = StatusCode::UNAUTHORIZED.into_response();
        if let Ok(v) = HeaderValue::from_str(&target) {
            r.headers_mut().insert("hx-redirect", v);
        }
        return r;
    }
    let cross_site = parts.headers.get("sec-fetch-site").is_some_and(|v| v == "cross-site");
    if parts.method == Method::GET && cross_site && cookie(&parts.headers, COOKIE).is_none() {
        // A link followed from a mail or chat: SameSite=Strict kept the
        // cookie back. Loading the same page again from our own origin
        // sends it; without a session that load lands on the sign-in page.
        let url = minijinja::HtmlEscape(here).to_string();
        let body = format!(
            "<!doctype html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={url}\">\
             <title>Tocsin</title><p><a href=\"{url}\">Continue to Tocsin</a></p>"
        );
        return Html(body).into_response();
    }
    Redirect::to(&target).into_response()
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|e| e.trim_start_matches('=').to_owned()).unwrap_or_default()
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Serialize)]
struct LoginView<'a> {
    csrf: &'a str,
    next: &'a str,
    error: Option<&'a str>,
}

/// Renders the sign-in form with a fresh form secret in its cookie.
fn login_form(state: &AppState, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let csrf = random();
    match state.web.render("login.html", LoginView { csrf: &csrf, next, error }) {
        Ok(page) => {
            let mut r = (status, page).into_response();
            set_cookie(&mut r, build(LOGIN_COOKIE, csrf, "/login", state.web.secure_cookies, 3600));
            r
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /login`
pub async fn login_page(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    if let Some(v) = cookie(&headers, COOKIE)
        && let Ok(Some(_)) = state.tokens.session(&token::hash(v)).await
    {
        return Redirect::to(&next).into_response();
    }
    login_form(&state, &next, None, StatusCode::OK)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    csrf: String,
    next: Option<String>,
}

/// `POST /login`: token in, session cookie out. Failures are limited per
/// client address (`[dashboard] sign_in_failures` per `sign_in_window`;
/// then 429 with `Retry-After`), logged and audited by the token service.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !constant_eq(expected.as_bytes(), f.csrf.as_bytes()) {
        return login_form(
            &state,
            &next,
            Some("The sign-in form had expired (or cookies are off). Paste your token again."),
            StatusCode::FORBIDDEN,
        );
    }
    let secret = f.token.trim();
    let client = peer.map(|p| client_key(p.ip()));
    match state.tokens.sign_in(secret, client.as_deref()).await {
        Ok(_) => {}
        Err(SignInError::Limited(wait)) => {
            let minutes = (wait.num_seconds() + 59) / 60;
            let message = format!(
                "Too many failed sign-ins from your address. Wait {minutes} minute{} and try again.",
                if minutes == 1 { "" } else { "s" }
            );
            let mut r = login_form(&state, &next, Some(&message), StatusCode::TOO_MANY_REQUESTS);
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.num_seconds().max(1)));
            return r;
        }
        Err(SignInError::Refused(Refusal::Unknown)) => {
            return login_form(
                &state,
                &next,
                Some("That token is not known. Make one with `tocsin token create --name NAME --role manager`."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(SignInError::Refused(r)) => {
            return login_form(&state, &next, Some(&r.to_string()), StatusCode::UNAUTHORIZED);
        }
        Err(SignInError::Role(message)) => return login_form(&state, &next, Some(message), StatusCode::FORBIDDEN),
        Err(SignInError::Store(e)) => return WebError::from(e).into_response(),
    }
    let (id, csrf) = (random(), random());
    let now = state.clock.now();
    let (session, token) = (token::hash(&id), token::hash(secret));
    if let Err(e) = state.store.create_session(&session, &token, &csrf, now + state.web.session_ttl, now).await {
        return WebError::from(e).into_response();
    }
    let mut r = Redirect::to(&next).into_response();
    let secure = state.web.secure_cookies;
    set_cookie(&mut r, build(COOKIE, id, "/", secure, state.web.session_ttl.num_seconds()));
    set_cookie(&mut r, build(LOGIN_COOKIE, String::new(), "/login", secure, 0));
    r
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// `POST /logout`: ends the session here and in the store.
pub async fn logout(State(state): State<AppState>, session: Session, Form(f): Form<CsrfForm>) -> Response {
    if let Err(e) = session.check_csrf(&f.csrf) {
        return e.into_response();
    }
    if let Err(e) = state.store.delete_session(&session.hash, state.clock.now()).await {
        return WebError::from(e).into_response();
    }
    let mut r = Redirect::to("/login").into_response();
    set_cookie(&mut r, build(COOKIE, String::new(), "/", state.web.secure_cookies, 0));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/cases/4?x=1")), "/cases/4?x=1");
        assert_eq!(safe_next(Some("/cases?q=caf%C3%A9&status=open")), "/cases?q=caf%C3%A9&status=open");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "/login?next=/x",
            "now",
            "",
            "/\t/evil.example/phish",
            "/\r\nSet-Cookie:x",
            "/ /evil.example",
            "/caf\u{e9}",
            "/%09/evil.example",
            "/%0d%0aSet-Cookie:x",
            "/%2F/evil.example",
            "/%5cevil.example",
            "/\u{7f}",
        ] {
            assert_eq!(safe_next(Some(bad)), "/now", "{bad}");
        }
        assert_eq!(safe_next(None), "/now");
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; tocsin_session=abc; b=2"));
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), None);
    }

    #[test]
    fn session_cookies_are_strict_and_http_only() {
        let c = build(COOKIE, "v".into(), "/", true, 60).to_string();
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/", "Max-Age=60"] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        assert!(!build(COOKIE, "v".into(), "/", false, 60).to_string().contains("Secure"));
    }
}
