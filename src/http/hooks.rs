//! Webhooks from providers: raw MIME from a mail provider's inbound route
//! (to the inbox service), and Twilio's incoming SMS and delivery reports
//! (to the phone service). This file owns Twilio's wire format (signature,
//! form fields, TwiML) and nothing else; it never imports `http::api` or
//! `http::web`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use crate::mail::Envelope;
use crate::store::PageStatus;
use crate::token::TokenRole;

mod providers;
pub use providers::MailgunHooks;

pub fn routes(max_size: usize) -> OpenApiRouter<AppState> {
    // The body limit is raised here only, to the configured mail size.
    OpenApiRouter::new()
        .routes(routes!(email))
        .layer(DefaultBodyLimit::max(max_size))
        // Providers wrap the message in a form or in JSON (attachments in
        // base64, the text twice): room for that on top of the mail.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(providers::mailgun))
                .routes(routes!(providers::postmark))
                .routes(routes!(providers::sendgrid))
                .layer(DefaultBodyLimit::max(max_size.saturating_mul(2).saturating_add(1 << 20))),
        )
        .routes(routes!(twilio_status))
        .routes(routes!(twilio_sms))
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
    /// filed, duplicate, automatic, unusable, command, refused, or held
    /// (over a new-case limit, kept for a manager)
    status: String,
    /// The case it opened or joined.
    case: Option<i64>,
    note: Option<String>,
}

/// The raw-mail webhook's route: its requests, and those of the mail
/// providers' webhooks under it (`/hooks/email/mailgun`, …), get `[server]
/// mail_hook_timeout` (see [`crate::http::server::time_limit`]).
pub const MAIL_HOOK: &str = "/hooks/email";

/// A raw RFC 5322 message from a mail provider. It is committed before the
/// answer; 503 means nothing was stored and the provider should retry.
#[utoipa::path(post, path = MAIL_HOOK, params(EnvelopeQuery), request_body(content = String, content_type = "message/rfc822"),
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
    let (inbox, outcome) = state.inbox.ingest(&body, &envelope, "webhook").await?;
    Ok((StatusCode::ACCEPTED, Json(filed(inbox, &outcome))))
}

/// The answer of a mail webhook: what became of inbox row `inbox`.
fn filed(inbox: i64, outcome: &crate::service::inbox::Outcome) -> Filed {
    use crate::service::inbox::Outcome;
    let note = match outcome {
        Outcome::Unusable(why) | Outcome::Automatic { why, .. } | Outcome::Held(why) => Some(why.clone()),
        _ => None,
    };
    Filed { inbox, status: outcome.status().as_str().into(), case: outcome.case().map(|n| n.0), note }
}

/// What the Twilio webhooks need: the token that signs them and the public
/// URL Twilio was given.
#[derive(Clone)]
pub struct TwilioHooks {
    pub auth_token: String,
    /// `[server] public_url`, without a trailing slash.
    pub public_url: String,
}

impl TwilioHooks {
    /// Checks `X-Twilio-Signature` of a form POST to `uri` (path and query
    /// as received) under the public URL Twilio signed.
    pub fn verify(&self, uri: &axum::http::Uri, headers: &axum::http::HeaderMap, params: &[(String, String)]) -> bool {
        let Some(sig) = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()) else { return false };
        let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        crate::notify::twilio::verify(&self.auth_token, &format!("{}{path}", self.public_url), params, sig)
    }
}

/// Parses a form body into its (name, value) pairs, repeated names kept.
pub fn form_pairs(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_bytes(body).map_err(|e| ApiError::bad_request(format!("the body is not a form: {e}")))
}

/// Twilio reports how an SMS fared. Signed by Twilio (403 otherwise); moves
/// the page to delivered, undelivered or failed, and pages the person on
/// their next channel when it did not arrive. Each (`MessageSid`,
/// `MessageStatus`) acts once: a replay answers 204 and changes nothing.
#[utoipa::path(post, path = "/hooks/twilio/status", request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 204, description = "recorded"), (status = 403, description = "bad signature"), (status = 404, description = "Twilio is not configured")))]
pub async fn twilio_status(
    State(state): State<AppState>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let Some(twilio) = &state.twilio else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "Twilio is not configured ([sms] provider)"));
    };
    let params = form_pairs(&body)?;
    if !twilio.verify(&uri, &headers, &params) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "the X-Twilio-Signature does not match"));
    }
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let (Some(sid), Some(status)) = (get("MessageSid"), get("MessageStatus")) else {
        return Err(ApiError::bad_request("MessageSid and MessageStatus are required"));
    };
    let status = match status {
        "delivered" => PageStatus::Delivered,
        "undelivered" => PageStatus::Undelivered,
        "failed" => PageStatus::Failed,
        // queued, accepted, sending, sent: nothing new to record.
        _ => return Ok(StatusCode::NO_CONTENT),
    };
    let error = get("ErrorCode").map(|c| format!("Twilio error {c}"));
    // Acts once per (MessageSid, MessageStatus): a replay answers 204 too.
    state.phone.delivery_once(sid, status, error.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A TwiML answer: one message, or none.
fn twiml(text: Option<&str>) -> impl IntoResponse {
    let body = match text {
        Some(t) => {
            let escaped = t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{escaped}</Message></Response>")
        }
        None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>".to_owned(),
    };
    ([(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")], body)
}

/// An engineer's SMS: a command for a case. Signed by Twilio (403
/// otherwise); the sender's number names the person, an unknown number
/// changes nothing and gets no answer. Each `MessageSid` acts once: a
/// replay gets an empty answer and changes nothing. The answer is TwiML on
/// the same channel; after a few error answers in a row the phone gets
/// silence until its next good command or page.
#[utoipa::path(post, path = "/hooks/twilio/sms", request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "TwiML", content_type = "text/xml"), (status = 400, description = "no MessageSid"), (status = 403, description = "bad signature"), (status = 404, description = "Twilio is not configured")))]
pub async fn twilio_sms(
    State(state): State<AppState>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<axum::response::Response, ApiError> {
    let Some(twilio) = &state.twilio else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "Twilio is not configured ([sms] provider)"));
    };
    let params = form_pairs(&body)?;
    if !twilio.verify(&uri, &headers, &params) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "the X-Twilio-Signature does not match"));
    }
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default();
    // Twilio sends every message with its MessageSid; without one a replay
    // could not be told from a new message.
    let sid = get("MessageSid");
    if sid.is_empty() {
        return Err(ApiError::bad_request("MessageSid is required"));
    }
    // A replay of the same MessageSid answers 200 with empty TwiML and
    // does nothing.
    let answer = state.phone.message_once(sid, get("From"), get("Body")).await?;
    Ok(twiml(answer.as_deref()).into_response())
}
