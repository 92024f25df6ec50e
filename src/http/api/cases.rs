//! `/api/v1/cases`: open, list, read and act on cases.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, MaybeJson};
use crate::audit::AuditAction;
use crate::case::decide::NewCase;
use crate::case::{Actor, Case, CaseNumber, RequestKey, Status, Via};
use crate::escalation::Position;
use crate::http::AppState;
use crate::http::auth::Auth;
use crate::http::error::ApiError;
use crate::limits::{MAX_REQUEST_KEY, MAX_SUBJECT, MAX_TEXT};
use crate::people::PersonId;
use crate::routing::Urgency;
use crate::service::cases::{Action, CaseError};
use crate::service::search::CaseSearch;
use crate::sla::Priority;
use crate::store::{EventRecord, PageRecord, StoreError};

pub fn routes() -> OpenApiRouter<super::AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_case, list_cases))
        .routes(routes!(get_case, change_case))
        .routes(routes!(wait_case))
        .routes(routes!(resume_case))
        .routes(routes!(ack_case))
        .routes(routes!(note_case))
        .routes(routes!(reply_case))
        .routes(routes!(get_attachment))
        .routes(routes!(get_message))
        .routes(routes!(resolve_case))
        .routes(routes!(reopen_case))
        .routes(routes!(escalate_case))
        .routes(routes!(assign_case))
}

/// A new case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCase {
    /// One line, at most 500 characters.
    subject: String,
    #[serde(default)]
    body: String,
    /// The customer's mail address; its domain picks the customer.
    requester: String,
    /// Overrides the routed priority (`P1`…).
    priority: Option<String>,
}

/// Text and, for admin or integration tokens, the person acting.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    text: Option<String>,
    /// Person id to act as (admin and integration tokens only).
    by: Option<String>,
}

/// A change of priority or plan.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    priority: Option<String>,
    plan: Option<String>,
    by: Option<String>,
}

/// An assignment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// The person id the case goes to (`ben`).
    to: String,
    /// Person id to act as (admin and integration tokens only).
    by: Option<String>,
}

/// Escalation request.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateBody {
    /// The step (1-based, in the current round) to escalate past. Without
    /// it: the step that last paged the acting person, else the current one.
    /// Repeating a request for the same step escalates once.
    step: Option<u32>,
    by: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// open, acknowledged, waiting, resolved or closed
    status: Option<String>,
    /// A customer's name, as in the rules (`Acme`).
    customer: Option<String>,
    /// A person id (`ana`).
    assignee: Option<String>,
    /// The requester's mail address, exactly.
    requester: Option<String>,
    /// A priority (`P1`).
    priority: Option<String>,
    /// Text the subject or the body contains (ASCII letters in any case).
    q: Option<String>,
    /// The cursor: only cases numbered below this. The `Link: rel="next"`
    /// header of an answer carries the next page's.
    before: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    limit: Option<u32>,
}

impl From<ListQuery> for CaseSearch {
    fn from(q: ListQuery) -> Self {
        let ListQuery { status, customer, assignee, requester, priority, q, before, limit } = q;
        CaseSearch { status, customer, assignee, requester, priority, q, before, limit }
    }
}

/// The SLA deadlines of a case.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadlinesView {
    respond: Option<DateTime<Utc>>,
    update: Option<DateTime<Utc>>,
    resolve: Option<DateTime<Utc>>,
}

/// Where the escalation stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct EscalationView {
    /// 1-based step that ran last.
    step: u32,
    /// 0 for the first pass through the steps.
    round: u32,
    /// False once acknowledged, resolved, or out of steps.
    running: bool,
}

/// A timeline entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    at: DateTime<Utc>,
    kind: String,
    actor: String,
    channel: Option<String>,
    text: String,
}

/// One message sent for the case.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageView {
    id: i64,
    /// None for messages to the customer.
    person: Option<String>,
    channel: String,
    /// page, reminder, breach, warning, receipt, confirmation, reply (the
    /// assignee hears the customer wrote) or customer_reply (an engineer's
    /// reply mailed to the customer)
    kind: String,
    /// Who wrote it, for a customer_reply.
    author: Option<String>,
    /// queued, sending, sent or failed
    status: String,
    /// 1-based escalation step, for step pages.
    step: Option<u32>,
    round: Option<u32>,
    at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    attempts: i64,
    provider_id: Option<String>,
    error: Option<String>,
}

/// A case. `timeline` and `pages` are present when one case is asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseView {
    number: i64,
    subject: String,
    status: Status,
    priority: String,
    customer: Option<String>,
    requester: String,
    assignee: Option<String>,
    plan: String,
    policy: String,
    opened_at: DateTime<Utc>,
    acknowledged_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    deadlines: DeadlinesView,
    /// Each clock's deadline, when it was met and when it was breached, as
    /// the plan measures it (`respond_met_by`, `update_met_by`).
    sla: crate::case::clocks::SlaState,
    escalation: EscalationView,
    /// True when the case was opened by mail whose From could not be
    /// verified (`[email] verify` is on and the mail had no aligned DKIM
    /// signature, nor a trusted `Authentication-Results` pass): the sender
    /// may not be who they say. Its timeline says why.
    unverified: bool,
    /// The urgency of the route that opened it (`high`, `low`,
    /// `working-hours`), worked out again when its priority changes.
    urgency: Urgency,
    /// A `working-hours` case outside working time: nobody is paged until
    /// then, when its policy starts from step 1. Absent when not held.
    #[serde(skip_serializing_if = "Option::is_none")]
    held_until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeline: Option<Vec<EventView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pages: Option<Vec<PageView>>,
    /// Attachments of the customer's mail, at
    /// `/api/v1/cases/{number}/attachments/{id}` (always a download).
    #[serde(skip_serializing_if = "Option::is_none")]
    attachments: Option<Vec<AttachmentView>>,
    /// The messages filed on the case; managers and admins read each raw
    /// at `/api/v1/cases/{number}/messages/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<MessageView>>,
}

/// An attachment of the customer's mail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentView {
    id: i64,
    /// A safe file name.
    name: String,
    /// The declared type, `type/subtype`.
    #[serde(rename = "type")]
    content_type: String,
    /// Bytes, decoded.
    size: u64,
    at: DateTime<Utc>,
    /// The message it came with (`messages[].id`).
    message: i64,
}

/// A message filed on the case.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    id: i64,
    at: DateTime<Utc>,
    /// filed (the customer's), automatic, or command (an engineer's)
    status: String,
}

/// A page of cases.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseList {
    cases: Vec<CaseView>,
}

impl CaseView {
    fn summary(c: Case) -> Self {
        let sla = crate::case::clocks::SlaState::of(&c);
        CaseView {
            sla,
            number: c.number.0,
            subject: c.subject,
            status: c.status,
            priority: c.priority.to_string(),
            customer: c.customer,
            requester: c.requester,
            assignee: c.assignee.map(String::from),
            plan: c.plan,
            policy: c.policy,
            opened_at: c.opened_at,
            acknowledged_at: c.acked_at,
            resolved_at: c.resolved_at,
            deadlines: DeadlinesView {
                respond: c.deadlines.respond,
                update: c.deadlines.update,
                resolve: c.deadlines.resolve,
            },
            escalation: EscalationView {
                step: c.escalation.at.step + 1,
                round: c.escalation.at.round,
                running: c.escalation.running,
            },
            unverified: c.unverified,
            urgency: c.urgency,
            held_until: c.held_until,
            body: None,
            timeline: None,
            pages: None,
            attachments: None,
            messages: None,
        }
    }

    fn full(
        c: Case,
        events: Vec<EventRecord>,
        pages: Vec<PageRecord>,
        attachments: Vec<crate::store::AttachmentRecord>,
        messages: Vec<crate::store::MessageRecord>,
    ) -> Self {
        let body = c.body.clone();
        CaseView {
            body: Some(body),
            attachments: Some(
                attachments
                    .into_iter()
                    .map(|a| AttachmentView {
                        id: a.id,
                        name: a.name,
                        content_type: a.content_type,
                        size: a.size,
                        at: a.at,
                        message: a.inbox_id,
                    })
                    .collect(),
            ),
            messages: Some(
                messages
                    .into_iter()
                    .map(|m| MessageView { id: m.id, at: m.received_at, status: m.status.as_str().to_owned() })
                    .collect(),
            ),
            timeline: Some(
                events
                    .into_iter()
                    .map(|e| EventView { at: e.at, kind: e.kind, actor: e.actor, channel: e.channel, text: e.text })
                    .collect(),
            ),
            pages: Some(
                pages
                    .into_iter()
                    .map(|p| PageView {
                        id: p.id,
                        person: p.person.map(String::from),
                        channel: p.channel.as_str().into(),
                        kind: p.kind.as_str().into(),
                        author: p.author.map(String::from),
                        status: p.status.as_str().into(),
                        step: p.position.map(|x| x.step + 1),
                        round: p.position.map(|x| x.round),
                        at: p.created_at,
                        updated_at: p.updated_at,
                        attempts: p.attempts,
                        provider_id: p.provider_id,
                        error: p.error,
                    })
                    .collect(),
            ),
            ..CaseView::summary(c)
        }
    }
}

async fn detail(state: &AppState, case: Case) -> Result<CaseView, ApiError> {
    let events = state.store.timeline(case.number).await?;
    let pages = state.store.pages_of(case.number).await?;
    let attachments = state.store.attachments_of(case.number).await?;
    let messages = state.store.case_messages(case.number).await?;
    Ok(CaseView::full(case, events, pages, attachments, messages))
}

/// What a new case asks for, as a digest: the same request retried has
/// the same one.
fn fingerprint(new: &NewCase) -> String {
    use sha2::Digest;
    let fields = serde_json::json!([new.subject, new.body, new.requester, new.priority.as_ref().map(|p| p.as_str())]);
    hex::encode(sha2::Sha256::digest(fields.to_string().as_bytes()))
}

fn number(raw: &str) -> Result<CaseNumber, ApiError> {
    raw.parse::<CaseNumber>().map_err(ApiError::bad_request)
}

fn text(t: Option<String>) -> Result<Option<String>, ApiError> {
    match t {
        Some(t) if t.chars().count() > MAX_TEXT => {
            Err(ApiError::unprocessable(format!("text is longer than {MAX_TEXT} characters")))
        }
        t => Ok(t),
    }
}

/// The `Idempotency-Key` header of a request, if any: 1 to 255 visible
/// ASCII characters.
fn request_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= MAX_REQUEST_KEY && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key.to_owned()))
        }
        _ => Err(ApiError::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_REQUEST_KEY} visible ASCII characters, such as a UUID"
        ))),
    }
}

/// Open a case: routes it, sets its deadlines, sends the receipt and pages
/// the first escalation step. With an `Idempotency-Key` header, a retry of
/// the same request (after a timeout, say) opens nothing and answers the
/// case the first try opened, with `Idempotent-Replayed: true`.
#[utoipa::path(post, path = "/api/v1/cases", request_body = CreateCase, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "any unique string per new case, e.g. a UUID; a retry with the same key and body opens no second case")),
    responses((status = 201, body = CaseView), (status = 400, description = "malformed Idempotency-Key"), (status = 401),
        (status = 422, description = "invalid field, or an Idempotency-Key already used for a different request")))]
async fn create_case(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateCase>,
) -> Result<impl IntoResponse, ApiError> {
    let key = request_key(&headers)?;
    let subject = req.subject.trim().to_owned();
    if subject.is_empty() {
        return Err(ApiError::unprocessable("subject is empty: say in one line what is wrong"));
    }
    if subject.chars().count() > MAX_SUBJECT || subject.contains(['\r', '\n']) {
        return Err(ApiError::unprocessable(format!("subject must be one line of at most {MAX_SUBJECT} characters")));
    }
    if req.body.chars().count() > MAX_TEXT {
        return Err(ApiError::unprocessable(format!("body is longer than {MAX_TEXT} characters")));
    }
    let requester = req.requester.trim();
    if requester.len() > 254 || requester.parse::<lettre::Address>().is_err() {
        return Err(ApiError::unprocessable(format!(
            "requester {requester:?} is not a mail address like \"ops@acme.com\""
        )));
    }
    let priority = req.priority.map(|p| p.parse::<Priority>()).transpose().map_err(ApiError::unprocessable)?;
    let actor = auth.actor(None, &state)?;
    let new = NewCase {
        subject,
        body: req.body,
        requester: requester.to_ascii_lowercase(),
        priority,
        actor,
        via: Via::Api,
        receipt: true,
        unverified: None,
    };
    let (case, replayed) = match key {
        None => (state.cases.open(new).await?, false),
        Some(key) => {
            let fingerprint = fingerprint(&new);
            let request = RequestKey { scope: auth.0.name.clone(), key: key.clone(), fingerprint: fingerprint.clone() };
            match state.cases.open_once(new, request).await {
                Ok(case) => (case, false),
                Err(CaseError::Store(StoreError::Repeated { case, fingerprint: before })) => {
                    if before != fingerprint {
                        return Err(ApiError::unprocessable(format!(
                            "Idempotency-Key {key:?} was already used for a different request (case {case}); send a new key for a new case"
                        )));
                    }
                    let case = state.store.case(case).await?.ok_or_else(|| {
                        ApiError::from(StoreError::Corrupt(format!("request key {key:?} names a missing case")))
                    })?;
                    (case, true)
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let location = format!("/api/v1/cases/{}", case.number.0);
    let view = detail(&state, case).await?;
    let mut response = (StatusCode::CREATED, [(header::LOCATION, location)], Json(view)).into_response();
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Find cases, newest first: every filter given must hold. When more
/// remain, `Link: <…?before=N…>; rel="next"` (RFC 8288) names the next page.
#[utoipa::path(get, path = "/api/v1/cases", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = CaseList, headers(("Link" = String, description = "the next page, when more remain"))),
        (status = 400, description = "a filter that cannot be read (unknown status, bad person id or case number)")))]
async fn list_cases(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let search = CaseSearch::from(q);
    let mut query = search.query(100).map_err(ApiError::bad_request)?;
    let limit = query.limit as usize;
    // One more than asked says whether a next page exists.
    query.limit += 1;
    let mut cases = state.cases.find(&auth.0, query).await?;
    let more = cases.len() > limit;
    cases.truncate(limit);
    let mut headers = HeaderMap::new();
    if more && let Some(last) = cases.last() {
        let link = format!("</api/v1/cases?{}>; rel=\"next\"", search.next(last.number));
        // Form-encoded, so always a valid header value.
        if let Ok(link) = HeaderValue::from_str(&link) {
            headers.insert(header::LINK, link);
        }
    }
    Ok((headers, Json(CaseList { cases: cases.into_iter().map(CaseView::summary).collect() })))
}

/// One case with its timeline, deadlines and pages.
#[utoipa::path(get, path = "/api/v1/cases/{number}", params(("number" = String, Path, description = "case number, e.g. 1042")),
    security(("bearer" = [])), responses((status = 200, body = CaseView), (status = 404)))]
async fn get_case(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
) -> Result<Json<CaseView>, ApiError> {
    let case = visible(&state, &auth, number(&raw)?).await?;
    Ok(Json(detail(&state, case).await?))
}

/// Case `n` if `auth` may see it; otherwise the same 404 as for a case
/// that does not exist, so an engineer learns nothing of other cases.
async fn visible(state: &AppState, auth: &Auth, n: CaseNumber) -> Result<Case, ApiError> {
    let missing = || ApiError::new(StatusCode::NOT_FOUND, format!("no case {n}"));
    let case = state.store.case(n).await?.ok_or_else(missing)?;
    if !state.cases.visible_to(&auth.0, &case).await? {
        return Err(missing());
    }
    Ok(case)
}

async fn act(
    state: &AppState,
    auth: &Auth,
    raw: &str,
    action: Action,
    actor: Actor,
) -> Result<Json<CaseView>, ApiError> {
    let n = number(raw)?;
    visible(state, auth, n).await?;
    let case = state.cases.act(n, &action, &actor, Via::Api).await?;
    // Every case action of the API passes here, once: an admin or
    // integration token that acted for a person (`"by"`) is audited.
    if let Actor::Person(p) = &actor
        && auth.0.person.as_ref() != Some(p)
    {
        let what = format!("{} as {p}", action.name());
        state
            .audit
            .record(&format!("token:{}", auth.0.name), AuditAction::ActedFor, &format!("case {}", n.0), &what, None)
            .await;
    }
    Ok(Json(detail(state, case).await?))
}

/// Acknowledge: stops the escalation, assigns the case to the person, and
/// starts the update clock.
#[utoipa::path(post, path = "/api/v1/cases/{number}/ack", request_body = ActionBody, params(("number" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = CaseView), (status = 409, description = "already acknowledged or resolved"), (status = 422)))]
async fn ack_case(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
    MaybeJson(b): MaybeJson<ActionBody>,
) -> Result<Json<CaseView>, ApiError> {
    let actor = auth.actor(b.by.as_deref(), &state)?;
    let Actor::Person(by) = actor.clone() else {
        return Err(ApiError::unprocessable(crate::case::ActionError::NeedsPerson.to_string()));
    };
    act(&state, &auth, &raw, Action::Ack { by, text: text(b.text)? }, actor).await
}

/// Add an update; on an acknowledged case it restarts the update clock.
#[utoipa::path(post, path = "/api/v1/cases/{number}/notes", request_body = ActionBody, params(("number" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = CaseView), (status = 422, description = "empty text")))]
async fn note_case(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
    ApiJson(b): ApiJson<ActionBody>,
) -> Result<Json<CaseView>, ApiError> {
    let actor = auth.actor(b.by.as_deref(), &state)?;
    act(&state, &auth, &raw, Action::Note { text: text(b.text)?.unwrap_or_default() }, actor).await
}

/// Reply to the customer: the text is mailed to the requester in the
/// case's thread (`Re: [#n] subject`, answering their latest message) and
/// recorded as a `reply` on the timeline. Signed by a person: a person's
/// token, or `"by"` with an admin or integration token.
#[utoipa::path(post, path = "/api/v1/cases/{number}/replies", request_body = ActionBody, params(("number" = String, Path)),
    security(("bearer" = [])), responses((status = 201, body = CaseView), (status = 404), (status = 422, description = "empty text, or no person to sign it")))]
async fn reply_case(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
    ApiJson(b): ApiJson<ActionBody>,
) -> Result<(StatusCode, Json<CaseView>), ApiError> {
    let actor = auth.actor(b.by.as_deref(), &state)?;
    let Actor::Person(by) = actor.clone() else {
        return Err(ApiError::unprocessable(crate::case::ActionError::ReplyNeedsPerson.to_string()));
    };
    let text = text(b.text)?.unwrap_or_default();
    let view = act(&state, &auth, &raw, Action::Reply { by, text }, actor).await?;
    Ok((StatusCode::CREATED, view))
}

/// Download an attachment of the customer's mail: always as a file
/// (`Content-Disposition: attachment`, `X-Content-Type-Options: nosniff`),
/// never rendered, so an HTML attachment cannot run in this origin.
#[utoipa::path(get, path = "/api/v1/cases/{number}/attachments/{id}",
    params(("number" = String, Path), ("id" = i64, Path, description = "attachments[].id")),
    security(("bearer" = [])), responses((status = 200, description = "the file", content_type = "application/octet-stream"), (status = 404)))]
async fn get_attachment(
    State(state): State<AppState>,
    auth: Auth,
    Path((raw, id)): Path<(String, i64)>,
) -> Result<axum::response::Response, ApiError> {
    let case = visible(&state, &auth, number(&raw)?).await?;
    let missing = || ApiError::new(StatusCode::NOT_FOUND, format!("case {} has no attachment {id}", case.number));
    let file =
        crate::service::attachments::attachment(state.store.as_ref(), case.number, id).await?.ok_or_else(missing)?;
    Ok(download(file))
}

/// The raw message (`message/rfc822`) behind a case's mail, for managers
/// and admins.
#[utoipa::path(get, path = "/api/v1/cases/{number}/messages/{id}",
    params(("number" = String, Path), ("id" = i64, Path, description = "messages[].id")),
    security(("bearer" = [])), responses((status = 200, description = "the raw message", content_type = "message/rfc822"), (status = 403), (status = 404)))]
async fn get_message(
    State(state): State<AppState>,
    auth: Auth,
    Path((raw, id)): Path<(String, i64)>,
) -> Result<axum::response::Response, ApiError> {
    if !crate::service::attachments::may_read_raw(&auth.0) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "raw messages are for managers and admins"));
    }
    let case = visible(&state, &auth, number(&raw)?).await?;
    let missing = || ApiError::new(StatusCode::NOT_FOUND, format!("case {} has no message {id}", case.number));
    let file =
        crate::service::attachments::message(state.store.as_ref(), case.number, id).await?.ok_or_else(missing)?;
    Ok(download(file))
}

fn download(file: crate::service::attachments::Download) -> axum::response::Response {
    let mut response = file.bytes.clone().into_response();
    for (name, value) in file.headers() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Resolve, with an optional note.
#[utoipa::path(post, path = "/api/v1/cases/{number}/resolve", request_body = ActionBody, params(("number" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = CaseView), (status = 409, description = "already resolved")))]
async fn resolve_case(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
    MaybeJson(b): MaybeJson<ActionBody>,
) -> Result<Json<CaseView>, ApiError> {
    let actor = auth.actor(b.by.as_deref(), &state)?;
    act(&state, &auth, &raw, Action::Resolve { text: text(b.text)? }, actor).await
}

/// Reopen a resolved case: the policy runs again from its first step.
#[utoipa::path(post, path = "/api/v1/cases/{number}/reopen", request_body = ActionBody, params(("number" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = CaseView), (status = 409, description = "not resolved")))]
async fn reopen_case(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
    MaybeJson(b): MaybeJson<ActionBody>,
) -> Result<Json<CaseView>, ApiError> {
    let actor = auth.actor(b.by.as_deref(), &state)?;
    act(&state, &auth, &raw, Action::Reopen { text: text(b.text)? }, actor).await
}

/// Escalate now to the next step.
#[utoipa::path(post, path = "/api/v1/cases/{number}/escalate", request_body = EscalateBody, params(("number" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = CaseView), (status = 409, description = "already escalated past that step, or no next step")))]
async fn escalate_case(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
    MaybeJson(b): MaybeJson<EscalateBody>,
) -> Result<Json<CaseView>, ApiError> {
    let actor = auth.actor(b.by.as_deref(), &state)?;
    let from = match b.step {
        Some(0) => return Err(ApiError::unprocessable("step counts from 1")),
        Some(step) => {
            let case = visible(&state, &auth, number(&raw)?).await?;
            Some(Position { round: case.escalation.at.round, step: step - 1 })
        }
        None => None,
    };
    act(&state, &auth, &raw, Action::Escalate { from }, actor).await
}

/// The case waits on the customer: the resolve clock pauses and the update
/// clock stops until the customer writes or someone resumes it.
#[utoipa::path(post, path = "/api/v1/cases/{number}/wait", request_body = ActionBody, params(("number" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = CaseView), (status = 409, description = "not acknowledged")))]
async fn wait_case(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
    MaybeJson(b): MaybeJson<ActionBody>,
) -> Result<Json<CaseView>, ApiError> {
    let actor = auth.actor(b.by.as_deref(), &state)?;
    act(&state, &auth, &raw, Action::Wait { text: text(b.text)? }, actor).await
}

/// Stop waiting: the resolve clock runs on, a new update window starts.
#[utoipa::path(post, path = "/api/v1/cases/{number}/resume", request_body = ActionBody, params(("number" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = CaseView), (status = 409, description = "not waiting")))]
async fn resume_case(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
    MaybeJson(b): MaybeJson<ActionBody>,
) -> Result<Json<CaseView>, ApiError> {
    let actor = auth.actor(b.by.as_deref(), &state)?;
    act(&state, &auth, &raw, Action::Resume { text: text(b.text)? }, actor).await
}

/// Change the priority or plan; every deadline is recomputed from the
/// case's original start and its pauses.
#[utoipa::path(patch, path = "/api/v1/cases/{number}", request_body = ChangeBody, params(("number" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = CaseView), (status = 422, description = "unknown priority or plan")))]
async fn change_case(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
    ApiJson(b): ApiJson<ChangeBody>,
) -> Result<Json<CaseView>, ApiError> {
    let actor = auth.actor(b.by.as_deref(), &state)?;
    let priority = b.priority.map(|p| p.parse::<Priority>()).transpose().map_err(ApiError::unprocessable)?;
    act(&state, &auth, &raw, Action::Change { priority, plan: b.plan }, actor).await
}

/// Give the case to someone. Managers assign anyone; engineers take cases
/// they can see and give their own away. An open case is acknowledged by
/// it; otherwise the update clock carries on. The new assignee is told on
/// their first channel (unless they took it themselves).
#[utoipa::path(post, path = "/api/v1/cases/{number}/assign", request_body = AssignBody, params(("number" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = CaseView),
        (status = 403, description = "not yours to assign"), (status = 409, description = "resolved, or already theirs"),
        (status = 422, description = "unknown person")))]
async fn assign_case(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
    ApiJson(b): ApiJson<AssignBody>,
) -> Result<Json<CaseView>, ApiError> {
    let actor = auth.actor(b.by.as_deref(), &state)?;
    let to: PersonId = b.to.trim().parse().map_err(|e: String| ApiError::unprocessable(format!("to: {e}")))?;
    if !state.rules.get().people.contains_key(&to) {
        return Err(ApiError::unprocessable(format!(
            "to: unknown person {:?}: use an id from rules/people.toml",
            to.as_str()
        )));
    }
    act(&state, &auth, &raw, Action::Assign { to }, actor).await
}
