//! On call, overrides, and iCalendar feeds of the schedules.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, TimeDelta, Utc};
use icalendar::{Component, EventLike};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiJson;
use crate::http::AppState;
use crate::http::auth::{Auth, FeedAuth};
use crate::http::error::ApiError;
use crate::overrides::OverrideRequest;
use crate::people::PersonId;
use crate::store::OverrideRecord;
use crate::token::{Feed, TokenRole};

/// How far ahead `until` and the feeds look.
const HORIZON_DAYS: i64 = 60;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(oncall))
        .routes(routes!(create_override, list_overrides))
        .routes(routes!(delete_override))
        .routes(routes!(schedule_feed))
        .routes(routes!(person_feed))
}

fn instant(raw: &str, field: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        ApiError::unprocessable(format!("{field}: {raw:?} is not an RFC 3339 instant like 2026-11-24T09:00:00Z"))
    })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AtQuery {
    /// RFC 3339 instant; default now.
    at: Option<String>,
}

/// Who is on call on one schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnCallView {
    schedule: String,
    /// Person id, or null when nobody is.
    person: Option<String>,
    name: Option<String>,
    /// When the answer next changes (a handoff, a window edge, an override),
    /// if within 60 days.
    until: Option<DateTime<Utc>>,
    /// Who is on call from `until`.
    next: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OnCallList {
    at: DateTime<Utc>,
    schedules: Vec<OnCallView>,
}

/// Who is on call on every schedule, and until when.
#[utoipa::path(get, path = "/api/v1/oncall", params(AtQuery), security(("bearer" = [])),
    responses((status = 200, body = OnCallList), (status = 422, description = "bad instant")))]
async fn oncall(
    State(state): State<AppState>,
    _auth: Auth,
    Query(q): Query<AtQuery>,
) -> Result<Json<OnCallList>, ApiError> {
    let at = match q.at.as_deref() {
        Some(raw) => instant(raw, "at")?,
        None => state.clock.now(),
    };
    let overrides = state.overrides.by_schedule(at).await?;
    let none = Vec::new();
    let schedules = state
        .rules
        .get()
        .schedules
        .values()
        .map(|s| {
            let o = overrides.get(&s.name).unwrap_or(&none);
            let person = s.on_call(o, at);
            let until = s.next_change(o, at, at + TimeDelta::days(HORIZON_DAYS));
            let rules = state.rules.get();
            OnCallView {
                schedule: s.name.clone(),
                name: person.as_ref().and_then(|p| rules.people.get(p)).map(|p| p.name.clone()),
                person: person.map(String::from),
                next: until.and_then(|u| s.on_call(o, u)).map(String::from),
                until,
            }
        })
        .collect();
    Ok(Json(OnCallList { at, schedules }))
}

/// A new override.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOverride {
    schedule: String,
    /// Person id who is on call instead.
    person: String,
    /// RFC 3339.
    start: String,
    /// RFC 3339; after `start`.
    end: String,
    #[serde(default)]
    reason: String,
}

/// An override.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverrideView {
    id: i64,
    schedule: String,
    person: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    reason: String,
    created_by: String,
    created_at: DateTime<Utc>,
}

impl From<OverrideRecord> for OverrideView {
    fn from(o: OverrideRecord) -> Self {
        OverrideView {
            id: o.id,
            schedule: o.schedule,
            person: o.person.into(),
            start: o.start,
            end: o.end,
            reason: o.reason,
            created_by: o.created_by,
            created_at: o.created_at,
        }
    }
}

fn manager(auth: &Auth) -> Result<(), ApiError> {
    match auth.0.role {
        TokenRole::Manager | TokenRole::Admin => Ok(()),
        role => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("overrides need a manager or admin token; this one is {role}"),
        )),
    }
}

/// Put someone on call on a schedule for a while, over every layer.
#[utoipa::path(post, path = "/api/v1/overrides", request_body = CreateOverride, security(("bearer" = [])),
    responses((status = 201, body = OverrideView), (status = 403, description = "not a manager"), (status = 422, description = "bad field")))]
async fn create_override(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(req): ApiJson<CreateOverride>,
) -> Result<impl IntoResponse, ApiError> {
    manager(&auth)?;
    let (start, end) = (instant(&req.start, "start")?, instant(&req.end, "end")?);
    let by = auth.actor(None, &state)?.to_string();
    let request = OverrideRequest { schedule: req.schedule, person: req.person, start, end, reason: req.reason };
    let stored = state.overrides.add(request, &by).await?;
    Ok((StatusCode::CREATED, Json(OverrideView::from(stored))))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OverrideQuery {
    /// Only this schedule.
    schedule: Option<String>,
}

/// Overrides that have not ended yet.
#[utoipa::path(get, path = "/api/v1/overrides", params(OverrideQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<OverrideView>)))]
async fn list_overrides(
    State(state): State<AppState>,
    _auth: Auth,
    Query(q): Query<OverrideQuery>,
) -> Result<Json<Vec<OverrideView>>, ApiError> {
    let list = state.overrides.list(q.schedule.as_deref()).await?.into_iter().map(OverrideView::from).collect();
    Ok(Json(list))
}

/// Remove an override.
#[utoipa::path(delete, path = "/api/v1/overrides/{id}", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404)))]
async fn delete_override(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    manager(&auth)?;
    let id: i64 = raw.parse().map_err(|_| ApiError::bad_request(format!("{raw:?} is not an override id")))?;
    let by = auth.actor(None, &state)?.to_string();
    if state.overrides.remove(id, &by).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, format!("no override {id}; list them with GET /api/v1/overrides")))
    }
}

/// The feed's window: a week back, sixty days ahead.
fn window(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (now - TimeDelta::days(7), now + TimeDelta::days(HORIZON_DAYS))
}

/// How long before the window a shift that is still running in it may have
/// begun (and after it, how long one that starts in it may run): a shift is
/// served whole, from its true start to its true end, so its UID and its
/// content are the same on every fetch.
const LOOKBACK: TimeDelta = TimeDelta::days(60);

/// The shifts of `schedule` that overlap `[from, to)`, each whole.
fn shifts_of(
    schedule: &crate::schedule::Schedule,
    overrides: &crate::escalation::Overrides,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(String, DateTime<Utc>, DateTime<Utc>, PersonId)> {
    let o = overrides.get(&schedule.name).map_or(&[][..], |v| &v[..]);
    schedule
        .spans(o, from - LOOKBACK, to + LOOKBACK)
        .into_iter()
        .filter(|(start, end, _)| *end > from && *start < to)
        .filter_map(|(s, e, p)| p.map(|p| (schedule.name.clone(), s, e, p)))
        .collect()
}

fn feed_name(raw: &str) -> Result<&str, ApiError> {
    raw.strip_suffix(".ics").ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "feeds end in .ics"))
}

/// A shift as served: UID, fingerprint, summary, start, end.
type FeedEvent = (String, String, String, DateTime<Utc>, DateTime<Utc>);

/// Shifts as iCalendar events, one per span someone is on call. A shift's
/// UID is built from the shift (schedule, person, true start), so it is the
/// same on every fetch; its `SEQUENCE` and `DTSTAMP` move only when the
/// shift changes (its end, or its person's name), as the store remembers
/// (RFC 5545 3.8.7.4), so calendar apps update it instead of deleting and
/// re-adding it on every refresh.
async fn calendar(
    state: &AppState,
    name: &str,
    shifts: Vec<(String, DateTime<Utc>, DateTime<Utc>, PersonId)>,
    now: DateTime<Utc>,
) -> Result<String, ApiError> {
    let rules = state.rules.get();
    let events: Vec<FeedEvent> = shifts
        .into_iter()
        .map(|(schedule, start, end, person)| {
            let who = rules.people.get(&person).map_or(person.as_str(), |p| p.name.as_str());
            let uid = format!("{schedule}-{person}-{}@tocsin", start.timestamp());
            let summary = format!("On call: {who} ({schedule})");
            let fingerprint = format!("{}|{summary}", end.timestamp());
            (uid, fingerprint, summary, start, end)
        })
        .collect();
    let keys: Vec<(String, String)> = events.iter().map(|(u, f, ..)| (u.clone(), f.clone())).collect();
    let versions = state.store.feed_versions(&keys, now).await?;
    let mut cal = icalendar::Calendar::new();
    cal.name(name);
    for ((uid, _, summary, start, end), (sequence, stamp)) in events.into_iter().zip(versions) {
        cal.push(
            icalendar::Event::new()
                .uid(&uid)
                .summary(&summary)
                .timestamp(stamp)
                .add_property("SEQUENCE", sequence.to_string())
                .starts(start)
                .ends(end)
                .done(),
        );
    }
    Ok(cal.done().to_string())
}

fn ics(body: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/calendar; charset=utf-8")], body)
}

/// A schedule's shifts as an iCalendar feed (a week back, 60 days ahead).
/// Calendar apps cannot send headers, so `?token=` is accepted here, for
/// feed tokens only (`tocsin token create --role feed --schedule NAME`).
/// A bearer token of another role reads it too (any role's token: every
/// schedule's feed).
#[utoipa::path(get, path = "/api/v1/schedules/{name}", params(("name" = String, Path, description = "schedule name and .ics, e.g. primary.ics"),
        ("token" = Option<String>, Query, description = "a feed token (role feed) for this feed; other tokens go in the Authorization header")),
    responses((status = 200, content_type = "text/calendar"), (status = 401, description = "no usable token, or a non-feed token in ?token="),
        (status = 403, description = "this token may not open this feed"), (status = 404)))]
async fn schedule_feed(
    State(state): State<AppState>,
    auth: FeedAuth,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let name = feed_name(&raw)?;
    auth.may_read(&Feed::Schedule(name.to_owned()))?;
    let rules = state.rules.get();
    let schedule = rules
        .schedules
        .get(name)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no schedule {name:?}")))?;
    let now = state.clock.now();
    let (from, to) = window(now);
    let overrides = state.overrides.by_schedule(from - LOOKBACK).await?;
    let shifts = shifts_of(schedule, &overrides, from, to);
    Ok(ics(calendar(&state, &format!("On call: {name}"), shifts, now).await?))
}

/// One person's shifts on every schedule, as an iCalendar feed. `?token=`
/// takes feed tokens only (`tocsin token create --role feed --person ID`);
/// a bearer token reads it if it is that person's, or a manager's or
/// admin's.
#[utoipa::path(get, path = "/api/v1/people/{id}", params(("id" = String, Path, description = "person id and .ics, e.g. ana.ics"),
        ("token" = Option<String>, Query, description = "a feed token (role feed) for this feed; other tokens go in the Authorization header")),
    responses((status = 200, content_type = "text/calendar"), (status = 401, description = "no usable token, or a non-feed token in ?token="),
        (status = 403, description = "this token may not open this feed"), (status = 404)))]
async fn person_feed(
    State(state): State<AppState>,
    auth: FeedAuth,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: PersonId = feed_name(&raw)?.parse().map_err(|e: String| ApiError::new(StatusCode::NOT_FOUND, e))?;
    auth.may_read(&Feed::Person(id.clone()))?;
    let rules = state.rules.get();
    let person =
        rules.people.get(&id).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no person {id:?}")))?;
    let now = state.clock.now();
    let (from, to) = window(now);
    let overrides = state.overrides.by_schedule(from - LOOKBACK).await?;
    let mut shifts = Vec::new();
    for s in rules.schedules.values() {
        shifts.extend(shifts_of(s, &overrides, from, to).into_iter().filter(|shift| shift.3 == id));
    }
    shifts.sort_by_key(|s| s.1);
    Ok(ics(calendar(&state, &format!("On call: {}", person.name), shifts, now).await?))
}
