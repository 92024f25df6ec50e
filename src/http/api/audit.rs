//! The audit log, for admins.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::{AuditAction, AuditEntry};
use crate::http::AppState;
use crate::http::auth::Auth;
use crate::http::error::ApiError;
use crate::service::audit::AuditError;
use crate::token::TokenRole;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// RFC 3339 instant, inclusive; default a week before `to`.
    from: Option<String>,
    /// RFC 3339 instant, inclusive; default now.
    to: Option<String>,
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    at: DateTime<Utc>,
    /// A person id, `token:NAME`, `cli` or `unknown`.
    actor: String,
    action: AuditAction,
    subject: String,
    detail: String,
    /// The client address (IPv6: its /64), where the door knew it.
    client: Option<String>,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        AuditView { at: e.at, actor: e.actor, action: e.action, subject: e.subject, detail: e.detail, client: e.client }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// Oldest first; at most 10 000.
    entries: Vec<AuditView>,
}

fn bound(raw: Option<&str>, field: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|raw| {
        DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc)).map_err(|_| {
            ApiError::unprocessable(format!("{field}: {raw:?} is not an RFC 3339 instant like 2026-11-24T09:00:00Z"))
        })
    })
    .transpose()
}

/// The audit log: token creation and revocation, sign-ins and failed
/// sign-ins, overrides added and removed, actions taken for someone else.
/// Admin tokens only.
#[utoipa::path(get, path = "/api/v1/audit", params(AuditQuery), security(("bearer" = [])),
    responses((status = 200, body = AuditList), (status = 403, description = "not an admin token"),
        (status = 422, description = "a bound is not an RFC 3339 instant, or from is after to")))]
async fn audit(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditList>, ApiError> {
    if auth.0.role != TokenRole::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("the audit log needs an admin token; this one is {}", auth.0.role),
        ));
    }
    let (from, to) = (bound(q.from.as_deref(), "from")?, bound(q.to.as_deref(), "to")?);
    let (from, to, entries) = state.audit.between(from, to).await.map_err(|e| match e {
        AuditError::Window(m) => ApiError::unprocessable(m),
        AuditError::Store(e) => e.into(),
    })?;
    Ok(Json(AuditList { from, to, entries: entries.into_iter().map(AuditView::from).collect() }))
}
