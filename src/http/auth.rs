//! Bearer-token authentication and who an action is recorded as.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::AppState;
use super::error::ApiError;
use crate::case::Actor;
use crate::notify::ids::constant_eq;
use crate::people::PersonId;
use crate::service::tokens;
use crate::token::{self, Feed, TokenInfo, TokenRole};

/// The caller, as its token says.
#[derive(Debug, Clone)]
pub struct Auth(pub TokenInfo);

/// 401 with the challenge RFC 6750 asks for.
pub struct Unauthorized(std::borrow::Cow<'static, str>);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut r = ApiError::new(StatusCode::UNAUTHORIZED, self.0).into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"tocsin\""));
        r
    }
}

pub enum AuthError {
    Missing(Unauthorized),
    /// A known token that may not use this route (a feed token off its
    /// feed).
    Forbidden(ApiError),
    Store(ApiError),
    /// A 401 with its own challenge (basic authentication).
    Challenge(Response),
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        match self {
            AuthError::Missing(u) => u.into_response(),
            AuthError::Forbidden(e) | AuthError::Store(e) => e.into_response(),
            AuthError::Challenge(r) => r,
        }
    }
}

impl From<tokens::AuthError> for AuthError {
    fn from(e: tokens::AuthError) -> Self {
        match e {
            tokens::AuthError::Refused(r) => AuthError::Missing(Unauthorized(r.to_string().into())),
            tokens::AuthError::Store(e) => AuthError::Store(e.into()),
        }
    }
}

/// The secret of an `Authorization: Bearer …` header (RFC 6750 §2.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let header = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())?;
    header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).map(str::trim)
}

/// The token of a bearer header, if it may be used now, whatever its role.
async fn bearer_token(parts: &Parts, state: &AppState) -> Result<TokenInfo, AuthError> {
    let missing = "send Authorization: Bearer <token>; make one with `tocsin token create --name N --role R`";
    let Some(secret) = bearer(&parts.headers) else {
        return Err(AuthError::Missing(Unauthorized(missing.into())));
    };
    Ok(state.tokens.authenticate(secret).await?)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        let info = bearer_token(parts, state).await?;
        if info.role == TokenRole::Feed {
            return Err(AuthError::Forbidden(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "token {:?} is a feed token: it opens only {} (GET /api/v1/…/NAME.ics); use an API token here",
                    info.name,
                    info.scope()
                ),
            )));
        }
        Ok(Auth(info))
    }
}

/// Lets a scrape of `/metrics` through when `[server] metrics_token_env`
/// is unset, or when it brings that token as a bearer token. The hashes
/// are compared, in constant time, so neither the token nor its length
/// leaks through the time the answer takes.
pub fn metrics_scrape(state: &AppState, headers: &HeaderMap) -> Result<(), Unauthorized> {
    let Some(expected) = &state.metrics_token else { return Ok(()) };
    let sent = bearer(headers).map(token::hash).unwrap_or_default();
    if constant_eq(sent.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Unauthorized(
            "/metrics needs Authorization: Bearer <the value of the variable [server] metrics_token_env names>".into(),
        ))
    }
}

/// Authentication for calendar feeds: a bearer token of any role, or
/// `?token=` in the URL, because calendar apps subscribe by URL and send no
/// headers. Calendar services store those URLs, so `?token=` takes feed
/// tokens only (`--role feed`): a full API token there gets 401. Which feed
/// a token may open is [`TokenInfo::may_read_feed`]'s answer.
#[derive(Debug, Clone)]
pub struct FeedAuth(pub TokenInfo);

impl FromRequestParts<AppState> for FeedAuth {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        let from_query =
            parts.uri.query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")).map(|t| t.to_owned()));
        let Some(secret) = from_query else {
            return bearer_token(parts, state).await.map(FeedAuth);
        };
        let secret = percent_encoding::percent_decode_str(&secret).decode_utf8_lossy().into_owned();
        let info = state.tokens.authenticate(&secret).await?;
        if info.role != TokenRole::Feed {
            return Err(AuthError::Missing(Unauthorized(
                format!(
                    "a {} token may not go in a feed URL: calendar services store URLs, so ?token= takes only feed \
                     tokens; make one with `tocsin token create --name N --role feed --person P` (or --schedule S), \
                     and revoke this one (`tocsin token revoke {}`) if the URL was shared",
                    info.role, info.name
                )
                .into(),
            )));
        }
        Ok(FeedAuth(info))
    }
}

impl FeedAuth {
    /// Refuses (403) a feed this token may not open.
    pub fn may_read(&self, feed: &Feed) -> Result<(), ApiError> {
        self.0.may_read_feed(feed).map_err(|e| ApiError::new(StatusCode::FORBIDDEN, e))
    }
}

impl Auth {
    /// Who an action is recorded as. A token that belongs to a person acts
    /// as that person; an admin or integration token may name one with
    /// `by`; other tokens act under their own name.
    pub fn actor(&self, by: Option<&str>, state: &AppState) -> Result<Actor, ApiError> {
        let t = &self.0;
        match (by, &t.person) {
            (None, Some(p)) => Ok(Actor::Person(p.clone())),
            (Some(by), Some(p)) if by == p.as_str() => Ok(Actor::Person(p.clone())),
            (Some(_), _) if !matches!(t.role, TokenRole::Admin | TokenRole::Integration) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "a {} token may not act for someone else: drop \"by\", or use an admin or integration token",
                    t.role
                ),
            )),
            (Some(by), _) => {
                let id: PersonId = by.parse().map_err(|e: String| ApiError::unprocessable(format!("by: {e}")))?;
                if !state.rules.people.contains_key(&id) {
                    return Err(ApiError::unprocessable(format!(
                        "by: unknown person {by:?}; use an id from rules/people.toml"
                    )));
                }
                Ok(Actor::Person(id))
            }
            (None, None) => Ok(Actor::Token(t.name.clone())),
        }
    }
}

/// Authentication for mail providers' inbound webhooks that can send only
/// HTTP basic authentication, from credentials written into the webhook's
/// URL (`https://tocsin:TOKEN@host/hooks/email/postmark`): the password is
/// an API token (RFC 7617), the user name is not checked. A bearer token
/// is taken too. Which roles may post is the handler's call.
#[derive(Debug, Clone)]
pub struct HookAuth(pub TokenInfo);

/// 401 asking for basic authentication, so a client that waits for the
/// challenge sends its credentials.
fn basic_challenge(why: &str) -> AuthError {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, why.to_owned()).into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"tocsin\""));
    AuthError::Challenge(r)
}

impl FromRequestParts<AppState> for HookAuth {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        let missing = "put an integration token in the webhook URL as the password \
                       (https://tocsin:TOKEN@host/…), or send Authorization: Bearer <token>";
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let Some(encoded) = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic ")) else {
            if bearer(&parts.headers).is_none() {
                return Err(basic_challenge(missing));
            }
            return bearer_token(parts, state).await.map(HookAuth);
        };
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok();
        let Some((_, password)) =
            decoded.as_deref().and_then(|d| std::str::from_utf8(d).ok()).and_then(|d| d.split_once(':'))
        else {
            return Err(basic_challenge("the basic credentials are not base64 of user:password"));
        };
        match state.tokens.authenticate(password).await {
            Ok(info) => Ok(HookAuth(info)),
            Err(tokens::AuthError::Refused(r)) => Err(basic_challenge(&r.to_string())),
            Err(tokens::AuthError::Store(e)) => Err(AuthError::Store(e.into())),
        }
    }
}

/// Declares the bearer scheme in the OpenAPI document.
pub struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
