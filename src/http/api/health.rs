//! Liveness, readiness, Prometheus metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::case::Status;
use crate::http::{AppState, auth};
use crate::mail::InboxStatus;
use crate::people::ChannelKind;
use crate::store::PageStatus;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "alive")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// The process can reach its database.
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "ready"), (status = 503, description = "database unreachable")))]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
        }
    }
}

/// Prometheus metrics: cases by status, pages by channel and status, timer
/// lateness, scheduler queue depth, mail held by the new-case limits.
/// With `[server] metrics_token_env` set, only for its bearer token.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format"),
    (status = 401, description = "[server] metrics_token_env is set and this is not its token")))]
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(refused) = auth::metrics_scrape(&state, &headers) {
        return refused.into_response();
    }
    match state.store.counts(state.clock.now()).await {
        Ok(counts) => {
            for s in Status::ALL {
                let n = counts.cases_by_status.iter().find(|(st, _)| st == s.as_str()).map_or(0, |(_, n)| *n);
                metrics::gauge!("tocsin_cases", "status" => s.as_str()).set(n as f64);
            }
            for ch in [ChannelKind::Sms, ChannelKind::Email] {
                for st in PageStatus::ALL {
                    let n = counts
                        .pages
                        .iter()
                        .find(|(c, s, _)| c == ch.as_str() && s == st.as_str())
                        .map_or(0, |(_, _, n)| *n);
                    metrics::gauge!("tocsin_pages", "channel" => ch.as_str(), "status" => st.as_str()).set(n as f64);
                }
            }
            metrics::gauge!("tocsin_scheduler_timers", "state" => "pending").set(counts.timers_pending as f64);
            metrics::gauge!("tocsin_scheduler_timers", "state" => "due").set(counts.timers_due as f64);
        }
        Err(e) => tracing::warn!(error = %e, "metrics cannot read the store"),
    }
    // Mail held by the new-case limits waits for a manager: worth an alert.
    match state.store.inbox_count(InboxStatus::Held).await {
        Ok(n) => metrics::gauge!("tocsin_inbox", "status" => InboxStatus::Held.as_str()).set(n as f64),
        Err(e) => tracing::warn!(error = %e, "metrics cannot read the inbox"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

/// This API's OpenAPI 3 description.
#[utoipa::path(get, path = "/api/openapi.json", responses((status = 200, description = "OpenAPI document")))]
async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.openapi.as_str().to_owned())
}
