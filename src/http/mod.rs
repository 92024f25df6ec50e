//! The HTTP adapter: one server, three sibling doors that only translate.
//!
//! - [`api`]: the JSON API under `/api/v1`, with bearer tokens.
//! - [`web`]: the dashboard (HTML pages, sign-in sessions, forms).
//! - [`hooks`]: providers' webhooks (raw mail, Twilio's SMS and reports).
//!
//! This module owns what they share: [`AppState`], the bearer [`auth`], the
//! JSON [`error`] answer and the router that mounts them. The three doors
//! call the services (`crate::service`) and never import each other.

pub mod api;
pub mod auth;
pub mod error;
pub mod hooks;
pub mod server;
pub mod web;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use self::error::ApiError;
use crate::clock::Clock;
use crate::rules::Rules;
use crate::service::audit::Audit;
use crate::service::cases::CaseService;
use crate::service::inbox::Inbox;
use crate::service::overrides::OverrideService;
use crate::service::phone::Phone;
use crate::service::tokens::TokenService;
use crate::store::Store;

pub use self::server::{Limits, serve};

/// Largest request body the JSON API reads.
pub const BODY_LIMIT: usize = 256 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub inbox: Arc<Inbox>,
    pub cases: Arc<CaseService>,
    pub overrides: Arc<OverrideService>,
    pub phone: Arc<Phone>,
    /// Whether a token may be used now; sign-in limits.
    pub tokens: Arc<TokenService>,
    /// The audit log.
    pub audit: Arc<Audit>,
    pub store: Arc<dyn Store>,
    pub rules: Arc<Rules>,
    pub clock: Arc<dyn Clock>,
    pub metrics: PrometheusHandle,
    /// The SHA-256 (hex) of the token `/metrics` needs, when `[server]
    /// metrics_token_env` names one.
    pub metrics_token: Option<String>,
    /// Set when SMS go through Twilio: checks its webhooks.
    pub twilio: Option<hooks::TwilioHooks>,
    /// Set when `[email] mailgun_signing_key_env` is: checks Mailgun's posts.
    pub mailgun: Option<hooks::MailgunHooks>,
    pub openapi: Arc<String>,
    /// The dashboard's templates and settings.
    pub web: Arc<web::Web>,
}

/// The API and webhook routes and their OpenAPI description, from the
/// same handlers. `max_mail` is the body limit of the mail webhook.
pub fn routes(max_mail: usize) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    api::routes().merge(hooks::routes(max_mail)).split_for_parts()
}

/// The header naming a request in the answer and in the logs.
const REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// A request id for a request that brought none (or one that is not
/// 1–128 visible ASCII characters): 128 random bits in hex.
#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let id = format!("{:032x}", rand::random::<u128>());
        axum::http::HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Drops a caller's `X-Request-Id` that is empty, longer than 128 bytes or
/// not visible ASCII, so the one made here takes its place and no caller
/// can fill the logs with its own text.
async fn sane_request_id(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let keep = request.headers().get(REQUEST_ID).is_some_and(|v| {
        let b = v.as_bytes();
        !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic())
    });
    if !keep {
        request.headers_mut().remove(REQUEST_ID);
    }
    next.run(request).await
}

/// The whole HTTP application: `routes`, the dashboard, and the layers
/// every request passes.
pub fn app(state: AppState, routes: Router<AppState>, limits: Limits) -> Router {
    routes
        .merge(web::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route; see GET /api/openapi.json") })
        // The default for every route; the mail webhook sets its own, larger
        // limit on its route, which wins because it is applied closer.
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(limits, server::time_limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; it has been logged").into_response()
        }))
        // One span per request, named by its request id (and never the
        // query: a feed URL's `?token=` stays out of the logs).
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %id)
        }))
        // Every answer carries `X-Request-Id`: the caller's, or one made here.
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, NewRequestId))
        .layer(axum::middleware::from_fn(sane_request_id))
        .with_state(state)
}
