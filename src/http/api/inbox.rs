//! `GET /api/v1/inbox`: inbound mail by status, for managers; above all
//! the mail held by the new-case limits (issue 13), which opened no case
//! and is seen nowhere else.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::AppState;
use crate::http::auth::Auth;
use crate::http::error::ApiError;
use crate::mail::InboxStatus;
use crate::token::TokenRole;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Most rows one request lists.
const MAX_LIMIT: u32 = 500;

#[derive(Debug, Deserialize, IntoParams)]
pub struct InboxQuery {
    /// held (default), pending, filed, duplicate, automatic, unusable,
    /// command or refused.
    status: Option<String>,
    /// At most this many, newest first (default 50, at most 500).
    limit: Option<u32>,
}

/// One inbound message as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxMessage {
    id: i64,
    received_at: String,
    /// smtp, pipe or webhook.
    source: String,
    /// The envelope sender (`MAIL FROM`), if the door had one.
    envelope_from: Option<String>,
    /// The From header, if the message can be read.
    from: Option<String>,
    subject: Option<String>,
    status: String,
    case: Option<i64>,
    /// Why it became what it is (for held mail: which limit).
    note: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboxList {
    messages: Vec<InboxMessage>,
}

/// Inbound mail in one status, newest first: by default the mail held by
/// `[email] new_cases_per_sender_per_hour` / `new_cases_per_domain_per_hour`
/// (kept raw in the inbox; it opened no case and got no receipt).
#[utoipa::path(get, path = "/api/v1/inbox", params(InboxQuery), security(("bearer" = [])),
    responses((status = 200, body = InboxList), (status = 400, description = "unknown status or bad limit"),
        (status = 403, description = "not a manager or admin")))]
async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<InboxQuery>,
) -> Result<Json<InboxList>, ApiError> {
    if !matches!(auth.0.role, TokenRole::Manager | TokenRole::Admin) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("the inbox needs a manager or admin token; this one is {}", auth.0.role),
        ));
    }
    let status: InboxStatus = match q.status.as_deref() {
        None => InboxStatus::Held,
        Some(s) => s.parse().map_err(|_| {
            let known: Vec<&str> = InboxStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::bad_request(format!("status: {s:?} is not one of {}", known.join(", ")))
        })?,
    };
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!("limit: {limit} is out of range; use 1 to {MAX_LIMIT}")));
    }
    let rows = state.store.inbox_in(status, limit).await?;
    let messages = tokio::task::spawn_blocking(move || {
        rows.into_iter()
            .map(|r| {
                let mail = crate::mail::read(&r.raw, &r.envelope).ok();
                InboxMessage {
                    id: r.id,
                    received_at: r.received_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    source: r.source,
                    envelope_from: r.envelope.from,
                    from: mail.as_ref().map(|m| m.from.clone()),
                    subject: mail.map(|m| m.subject),
                    status: r.status.as_str().to_owned(),
                    case: r.case.map(|n| n.0),
                    note: r.note,
                }
            })
            .collect()
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the inbox: {e}")))?;
    Ok(Json(InboxList { messages }))
}
