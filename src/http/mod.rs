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
use tower_http::trace::TraceLayer;

use self::error::ApiError;
use crate::clock::Clock;
use crate::rules::LiveRules;
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
    pub rules: LiveRules,
    pub clock: Arc<dyn Clock>,
    pub metrics: PrometheusHandle,
    /// The SHA-256 (hex) of the token `/metrics` needs, when `[server]
    /// metrics_token_env` names one.
    pub metrics_token: Option<String>,
    /// Set when SMS go through Twilio: checks its webhooks.
    pub twilio: Option<hooks::TwilioHooks>,
    pub openapi: Arc<String>,
    /// The dashboard's templates and settings.
    pub web: Arc<web::Web>,
}

/// The API and webhook routes and their OpenAPI description, from the
/// same handlers. `max_mail` is the body limit of the mail webhook.
pub fn routes(max_mail: usize) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    api::routes().merge(hooks::routes(max_mail)).split_for_parts()
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
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
