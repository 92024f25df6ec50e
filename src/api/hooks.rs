//! Webhooks from providers: raw MIME from a mail provider's inbound route.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Auth;
use super::{ApiError, AppState};
use crate::desk::DeskError;
use crate::inbound::mail::Envelope;
use crate::token::TokenRole;

pub fn routes(max_size: usize) -> OpenApiRouter<AppState> {
    // The body limit is raised here only, to the configured mail size.
    OpenApiRouter::new().routes(routes!(email)).layer(DefaultBodyLimit::max(max_size))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EnvelopeQuery {
    /// The envelope sender, if the provider passes it ("" for a bounce).
    sender: Option<String>,
    /// The envelope recipient.
    recipient: Option<String>,
}

/// What became of the message.
#[derive(Debug, Serialize, ToSchema)]
pub struct Filed {
    /// The inbox row that keeps the raw message.
    inbox: i64,
    /// filed, duplicate, automatic or unusable
    status: String,
    /// The case it opened or joined.
    case: Option<i64>,
    note: Option<String>,
}

/// A raw RFC 5322 message from a mail provider. It is committed before the
/// answer; 503 means nothing was stored and the provider should retry.
#[utoipa::path(post, path = "/hooks/email", params(EnvelopeQuery), request_body(content = String, content_type = "message/rfc822"),
    security(("bearer" = [])),
    responses((status = 202, body = Filed), (status = 400, description = "empty body"), (status = 403, description = "not an integration token"),
        (status = 413, description = "larger than [email] max_size"), (status = 503, description = "not stored; retry")))]
async fn email(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<EnvelopeQuery>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    if !matches!(auth.0.role, TokenRole::Integration | TokenRole::Admin) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "the mail webhook needs an integration or admin token"));
    }
    if body.is_empty() {
        return Err(ApiError::bad_request("the body is empty: post the raw message (message/rfc822)"));
    }
    let envelope = Envelope { from: q.sender, to: q.recipient.into_iter().collect() };
    let (inbox, outcome) = match state.inbox.ingest(&body, &envelope, "webhook").await {
        Ok(r) => r,
        Err(DeskError::Store(e)) => return Err(e.into()),
        Err(e) => return Err(e.into()),
    };
    let note = match &outcome {
        crate::inbound::Outcome::Unusable(why) => Some(why.clone()),
        crate::inbound::Outcome::Automatic { why, .. } => Some(why.clone()),
        _ => None,
    };
    let filed = Filed { inbox, status: outcome.status().into(), case: outcome.case().map(|n| n.0), note };
    Ok((StatusCode::ACCEPTED, Json(filed)))
}
