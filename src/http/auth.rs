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
use crate::token::{self, TokenInfo, TokenRole};

/// The caller, as its token says.
#[derive(Debug, Clone)]
pub struct Auth(pub TokenInfo);

/// 401 with the challenge RFC 6750 asks for.
pub struct Unauthorized(&'static str);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut r = ApiError::new(StatusCode::UNAUTHORIZED, self.0).into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"tocsin\""));
        r
    }
}

pub enum AuthError {
    Missing(Unauthorized),
    Store(ApiError),
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        match self {
            AuthError::Missing(u) => u.into_response(),
            AuthError::Store(e) => e.into_response(),
        }
    }
}

/// The secret of an `Authorization: Bearer …` header (RFC 6750 §2.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let header = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())?;
    header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).map(str::trim)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        let missing = "send Authorization: Bearer <token>; make one with `tocsin token create --name N --role R`";
        let Some(secret) = bearer(&parts.headers) else {
            return Err(AuthError::Missing(Unauthorized(missing)));
        };
        match state.store.token(&token::hash(secret)).await {
            Ok(Some(info)) => Ok(Auth(info)),
            Ok(None) => {
                Err(AuthError::Missing(Unauthorized("this token is not known; make one with `tocsin token create`")))
            }
            Err(e) => Err(AuthError::Store(e.into())),
        }
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
            "/metrics needs Authorization: Bearer <the value of the variable [server] metrics_token_env names>",
        ))
    }
}

/// Authentication for calendar feeds: a bearer token, or `?token=` in the
/// URL, because calendar apps subscribe by URL and send no headers.
#[derive(Debug, Clone)]
pub struct FeedAuth(pub TokenInfo);

impl FromRequestParts<AppState> for FeedAuth {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        let from_query =
            parts.uri.query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")).map(|t| t.to_owned()));
        match from_query {
            Some(secret) => match state.store.token(&token::hash(&secret)).await {
                Ok(Some(info)) => Ok(FeedAuth(info)),
                Ok(None) => Err(AuthError::Missing(Unauthorized(
                    "this token is not known; make one with `tocsin token create`",
                ))),
                Err(e) => Err(AuthError::Store(e.into())),
            },
            None => Auth::from_request_parts(parts, state).await.map(|Auth(info)| FeedAuth(info)),
        }
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
