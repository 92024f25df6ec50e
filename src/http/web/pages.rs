//! Now, Case and Schedules pages, and the actions their forms post.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::session::{Me, Session};
use super::{WebError, local, rfc3339, span};
use crate::case::decide::next_due;
use crate::case::{Actor, Case, CaseNumber, Status, Via};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::overrides::OverrideRequest;
use crate::people::PersonId;
use crate::service::cases::Action;
use crate::service::overrides::OverrideError;
use crate::sla::SlaClock;
use crate::store::{OverrideRecord, PageRecord};

/// At most this many active cases on the Now page.
const NOW_LIMIT: u32 = 500;
/// A page still queued or sending after this long is in trouble.
const STUCK_AFTER: TimeDelta = TimeDelta::minutes(2);
/// Failed pages stay on the Now page this long.
const FAILED_FOR: TimeDelta = TimeDelta::hours(24);
/// An SMS handed to Twilio this long ago with no delivery report since is
/// listed as unconfirmed (reports come within seconds to minutes).
const UNCONFIRMED_AFTER: TimeDelta = TimeDelta::minutes(10);
/// The Schedules page shows this many days.
const SCHEDULE_DAYS: i64 = 14;

/// A deadline as the page shows it; the script counts `due` down and
/// moves `state` on at `warn` and `due`.
#[derive(Debug, Serialize)]
struct Due {
    clock: &'static str,
    due: String,
    due_local: String,
    warn: String,
    /// ok, warning or breached, as of the render.
    state: &'static str,
    /// "in 12m 04s" or "5m 10s ago", as of the render.
    left: String,
}

fn due_view(
    clock: SlaClock,
    at: DateTime<Utc>,
    warn: Option<DateTime<Utc>>,
    breached: bool,
    now: DateTime<Utc>,
    tz: Tz,
) -> Due {
    let state = if breached || now >= at {
        "breached"
    } else if warn.is_some_and(|w| now >= w) {
        "warning"
    } else {
        "ok"
    };
    let left = if now >= at { format!("{} ago", span(now - at)) } else { format!("in {}", span(at - now)) };
    Due {
        clock: clock.as_str(),
        due: rfc3339(at),
        due_local: local(at, tz),
        warn: warn.map(rfc3339).unwrap_or_default(),
        state,
        left,
    }
}

#[derive(Debug, Serialize)]
struct CaseRow {
    number: i64,
    subject: String,
    customer: String,
    priority: String,
    status: &'static str,
    assignee: String,
    next: Option<Due>,
    since: String,
    /// Opened by mail whose From could not be verified.
    unverified: bool,
    /// A held `working-hours` case: when paging starts ("Mon 09:00").
    held: Option<String>,
}

/// When a held case starts paging, in the viewer's zone: "Mon 09:00".
fn held_until(c: &Case, tz: Tz) -> Option<String> {
    c.held_until.map(|at| at.with_timezone(&tz).format("%a %H:%M").to_string())
}

fn person_name(state: &AppState, p: Option<&PersonId>) -> String {
    match p {
        Some(p) => state.rules.get().people.get(p).map_or_else(|| p.as_str().to_owned(), |x| x.name.clone()),
        None => String::new(),
    }
}

fn case_row(state: &AppState, c: &Case, now: DateTime<Utc>, tz: Tz) -> CaseRow {
    let next = next_due(&state.rules.get(), c).map(|d| {
        let breached = c.warned.contains(&format!("{}:breach", d.clock.as_str()));
        due_view(d.clock, d.at, d.warn, breached, now, tz)
    });
    let since = c.pauses.last().filter(|p| p.to.is_none()).map(|p| local(p.from, tz)).unwrap_or_default();
    CaseRow {
        number: c.number.0,
        subject: c.subject.clone(),
        customer: c.customer.clone().unwrap_or_default(),
        priority: c.priority.to_string(),
        status: c.status.as_str(),
        assignee: person_name(state, c.assignee.as_ref()),
        next,
        since,
        unverified: c.unverified,
        held: held_until(c, tz),
    }
}

#[derive(Debug, Serialize)]
struct OnCallRow {
    schedule: String,
    now: String,
    until: String,
    next: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
struct PageRow {
    id: i64,
    case: Option<i64>,
    person: String,
    channel: &'static str,
    kind: &'static str,
    status: &'static str,
    attempts: i64,
    error: String,
    at: String,
}

/// An SMS that Twilio took but has not reported delivered or failed.
fn unconfirmed_row(state: &AppState, p: &PageRecord, tz: Tz) -> PageRow {
    PageRow {
        status: "unconfirmed",
        error: format!("sent {}; no delivery report from Twilio yet", local(p.updated_at, tz)),
        ..page_row(state, p, tz)
    }
}

fn page_row(state: &AppState, p: &PageRecord, tz: Tz) -> PageRow {
    PageRow {
        id: p.id,
        case: p.case.map(|c| c.0),
        person: if p.person.is_some() { person_name(state, p.person.as_ref()) } else { p.address.clone() },
        channel: p.channel.as_str(),
        kind: p.kind.as_str(),
        status: p.status.as_str(),
        attempts: p.attempts,
        error: p.error.clone().unwrap_or_default(),
        at: local(p.created_at, tz),
    }
}

#[derive(Debug, Serialize)]
struct NowView {
    me: Me,
    page: &'static str,
    now: String,
    at: String,
    running: Vec<CaseRow>,
    waiting: Vec<CaseRow>,
    more: bool,
    oncall: Vec<OnCallRow>,
    troubled: Vec<PageRow>,
    mine_only: bool,
    /// Mail held by the new-case limits (managers only), newest first.
    held: Vec<HeldRow>,
}

/// A message held by the new-case limits: no case, no receipt, waiting
/// for a manager to look.
#[derive(Debug, Serialize)]
struct HeldRow {
    inbox: i64,
    at: String,
    sender: String,
    note: String,
}

async fn now_view(state: &AppState, s: &Session) -> Result<NowView, WebError> {
    let now = state.clock.now();
    let tz = s.zone;
    let mut cases = state.store.active_cases(NOW_LIMIT).await?;
    let more = cases.len() as u32 >= NOW_LIMIT;
    if !s.is_manager() {
        let me = s.person().cloned();
        let paging = match &me {
            Some(p) => state.store.cases_paging(p).await?,
            None => Vec::new(),
        };
        cases.retain(|c| me.is_some() && (c.assignee == me || paging.contains(&c.number)));
    }
    let (waiting, running): (Vec<&Case>, Vec<&Case>) = cases.iter().partition(|c| c.status == Status::Waiting);
    let overrides = state.overrides.by_schedule(now).await?;
    let none = Vec::new();
    let oncall = state
        .rules
        .get()
        .schedules
        .values()
        .map(|sch| {
            let o = overrides.get(&sch.name).unwrap_or(&none);
            let spans = sch.spans(o, now, now + TimeDelta::days(7));
            let who = |p: &Option<PersonId>| match p {
                Some(_) => person_name(state, p.as_ref()),
                None => "nobody".to_owned(),
            };
            OnCallRow {
                schedule: sch.name.clone(),
                now: spans.first().map_or_else(|| "nobody".to_owned(), |x| who(&x.2)),
                until: spans
                    .first()
                    .filter(|x| x.1 < now + TimeDelta::days(7))
                    .map(|x| local(x.1, tz))
                    .unwrap_or_default(),
                next: spans.iter().skip(1).take(2).map(|x| (local(x.0, tz), who(&x.2))).collect(),
            }
        })
        .collect();
    let mut troubled = Vec::new();
    if s.is_manager() {
        let pages = state.store.troubled_pages(now - FAILED_FOR, now - STUCK_AFTER, 50).await?;
        troubled.extend(pages.iter().map(|p| page_row(state, p, tz)));
        // Only Twilio reports deliveries; the outbox transport never does.
        if state.twilio.is_some() {
            let quiet = state.store.unconfirmed_sms(now - FAILED_FOR, now - UNCONFIRMED_AFTER, 50).await?;
            troubled.extend(quiet.iter().map(|p| unconfirmed_row(state, p, tz)));
        }
    }
    let mut held = Vec::new();
    if s.is_manager() {
        held = state
            .store
            .inbox_in(crate::mail::InboxStatus::Held, 20)
            .await?
            .into_iter()
            .map(|r| HeldRow {
                inbox: r.id,
                at: local(r.received_at, tz),
                sender: r.envelope.from.unwrap_or_default(),
                note: r.note,
            })
            .collect();
    }
    Ok(NowView {
        me: s.me(),
        page: "now",
        now: rfc3339(now),
        at: local(now, tz),
        running: running.iter().map(|c| case_row(state, c, now, tz)).collect(),
        waiting: waiting.iter().map(|c| case_row(state, c, now, tz)).collect(),
        more,
        oncall,
        troubled,
        mine_only: !s.is_manager(),
        held,
    })
}

/// `GET /now`: what is about to breach, who is on call, what did not go out.
pub async fn now(State(state): State<AppState>, s: Session) -> Result<Html<String>, WebError> {
    let view = now_view(&state, &s).await?;
    state.web.render("now.html", view)
}

/// `GET /now/live`: the part of `/now` that htmx refreshes.
pub async fn now_live(State(state): State<AppState>, s: Session) -> Result<Html<String>, WebError> {
    let view = now_view(&state, &s).await?;
    state.web.render("now_live.html", view)
}

#[derive(Debug, Serialize)]
struct Entry {
    at: String,
    at_local: String,
    kind: String,
    who: String,
    channel: String,
    text: String,
    /// For pages: queued … delivered, failed.
    status: String,
    error: String,
    /// For attachments: its id, downloaded at `/cases/{n}/attachments/{id}`
    /// (never shown inline).
    link: String,
}

#[derive(Debug, Serialize)]
struct CaseView {
    me: Me,
    page: &'static str,
    now: String,
    number: i64,
    subject: String,
    body: String,
    status: &'static str,
    priority: String,
    customer: String,
    requester: String,
    assignee: String,
    plan: String,
    policy: String,
    opened: String,
    step: String,
    deadlines: Vec<Due>,
    timeline: Vec<Entry>,
    can: Can,
    error: Option<String>,
    /// Opened by mail whose From could not be verified.
    unverified: bool,
}

/// Which buttons the viewer gets.
#[derive(Debug, Serialize)]
struct Can {
    ack: bool,
    note: bool,
    /// Reply to the customer: only a person signs a reply.
    reply: bool,
    escalate: bool,
    resolve: bool,
    /// Assignment, waiting on the customer and resuming (issue 15).
    assign: bool,
    wait: bool,
    resume: bool,
    /// Whom the case may be given to: (id, name), the assignee left out.
    people: Vec<(String, String)>,
}

/// Whether this session may see the case (the case service's rule).
async fn may_see(state: &AppState, s: &Session, c: &Case) -> Result<bool, WebError> {
    Ok(state.cases.visible_to(&s.token, c).await?)
}

async fn load(state: &AppState, s: &Session, raw: &str) -> Result<Case, WebError> {
    let n: CaseNumber = raw.parse().map_err(|e: String| WebError::new(StatusCode::BAD_REQUEST, e))?;
    let missing = || WebError::new(StatusCode::NOT_FOUND, format!("There is no case {n}."));
    let c = state.store.case(n).await?.ok_or_else(missing)?;
    if !may_see(state, s, &c).await? {
        // The same answer as for a case that does not exist: an engineer
        // learns nothing about other people's cases.
        return Err(missing());
    }
    Ok(c)
}

async fn case_view(state: &AppState, s: &Session, c: Case, error: Option<String>) -> Result<CaseView, WebError> {
    let now = state.clock.now();
    let tz = s.zone;
    let events = state.store.timeline(c.number).await?;
    let pages = state.store.pages_of(c.number).await?;
    let attachments = state.store.attachments_of(c.number).await?;
    let mut timeline: Vec<(DateTime<Utc>, u8, Entry)> = events
        .into_iter()
        .map(|e| {
            let entry = Entry {
                at: rfc3339(e.at),
                at_local: local(e.at, tz),
                kind: e.kind,
                who: e.actor,
                channel: e.channel.unwrap_or_default(),
                text: e.text,
                status: String::new(),
                error: String::new(),
                link: String::new(),
            };
            (e.at, 0, entry)
        })
        .chain(pages.iter().map(|p| {
            let to = if p.person.is_some() { person_name(state, p.person.as_ref()) } else { p.address.clone() };
            let step = p.position.map(|x| format!(" (step {})", x.step + 1)).unwrap_or_default();
            let entry = Entry {
                at: rfc3339(p.created_at),
                at_local: local(p.created_at, tz),
                kind: format!("{} message", p.kind.as_str()),
                who: to,
                channel: p.channel.as_str().to_owned(),
                text: format!("{}{step}, {} attempt(s)", p.kind.as_str(), p.attempts),
                status: p.status.as_str().to_owned(),
                error: p.error.clone().unwrap_or_default(),
                link: String::new(),
            };
            (p.created_at, 1, entry)
        }))
        .chain(attachments.into_iter().map(|a| {
            let entry = Entry {
                at: rfc3339(a.at),
                at_local: local(a.at, tz),
                kind: "attachment".to_owned(),
                who: c.requester.clone(),
                channel: "email".to_owned(),
                text: format!("{} ({}, {} bytes)", a.name, a.content_type, a.size),
                status: String::new(),
                error: String::new(),
                link: a.id.to_string(),
            };
            (a.at, 0, entry)
        }))
        .collect();
    timeline.sort_by_key(|(at, order, _)| (*at, *order));

    let deadlines = SlaClock::ALL
        .into_iter()
        .filter_map(|clock| {
            let at = match clock {
                SlaClock::Respond => c.deadlines.respond,
                SlaClock::Update => c.deadlines.update,
                SlaClock::Resolve => c.deadlines.resolve,
            }?;
            let breached = c.warned.contains(&format!("{}:breach", clock.as_str()));
            let running = crate::case::decide::running(&c, clock);
            let warn = next_due(&state.rules.get(), &c).filter(|d| d.clock == clock).and_then(|d| d.warn);
            let mut d = due_view(clock, at, warn, breached, now, tz);
            if !running && !breached {
                // Met, or the clock is stopped: no countdown.
                d.state = "stopped";
                d.warn = String::new();
            }
            Some(d)
        })
        .collect();
    let acting = s.person().is_some() || matches!(s.token.role, crate::token::TokenRole::Admin);
    let done = c.status.is_done();
    let can = Can {
        ack: s.person().is_some() && c.status == Status::Open,
        note: acting && !done,
        reply: s.person().is_some() && c.status != Status::Closed,
        escalate: acting && !done && c.escalation.running,
        resolve: acting && !done,
        assign: acting && !done,
        wait: acting && c.status == Status::Acknowledged,
        resume: acting && c.status == Status::Waiting,
        people: state
            .rules
            .get()
            .people
            .values()
            .filter(|p| c.assignee.as_ref() != Some(&p.id))
            .map(|p| (p.id.to_string(), p.name.clone()))
            .collect(),
    };
    Ok(CaseView {
        me: s.me(),
        page: "case",
        now: rfc3339(now),
        number: c.number.0,
        step: format!(
            "step {}{}{}",
            c.escalation.at.step + 1,
            if c.escalation.at.round > 0 { format!(", round {}", c.escalation.at.round + 1) } else { String::new() },
            match c.held_until {
                Some(at) => format!(", held until {} (urgency working-hours)", local(at, tz)),
                None if c.escalation.running => ", escalating".to_owned(),
                None => String::new(),
            }
        ),
        unverified: c.unverified,
        subject: c.subject,
        body: c.body,
        status: c.status.as_str(),
        priority: c.priority.to_string(),
        customer: c.customer.unwrap_or_default(),
        requester: c.requester,
        assignee: person_name(state, c.assignee.as_ref()),
        plan: c.plan,
        policy: c.policy,
        opened: local(c.opened_at, tz),
        deadlines,
        timeline: timeline.into_iter().map(|(_, _, e)| e).collect(),
        can,
        error,
    })
}

/// `GET /cases/{n}`: the whole story of one case.
pub async fn case(
    State(state): State<AppState>,
    s: Session,
    Path(raw): Path<String>,
) -> Result<Html<String>, WebError> {
    let c = load(&state, &s, &raw).await?;
    let view = case_view(&state, &s, c, None).await?;
    state.web.render("case.html", view)
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: String,
    #[serde(default)]
    text: String,
    /// For `assign`: the person id the case goes to.
    #[serde(default)]
    to: String,
}

/// `POST /cases/{n}/{ack|note|reply|escalate|resolve}`
pub async fn act(
    State(state): State<AppState>,
    s: Session,
    Path((raw, action)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Result<Response, WebError> {
    s.check_csrf(&f.csrf)?;
    let c = load(&state, &s, &raw).await?;
    let text = Some(f.text.trim().to_owned()).filter(|t| !t.is_empty());
    if text.as_ref().is_some_and(|t| t.chars().count() > crate::limits::MAX_TEXT) {
        return Err(WebError::new(StatusCode::UNPROCESSABLE_ENTITY, "that note is too long"));
    }
    let actor = match s.person() {
        Some(p) => Actor::Person(p.clone()),
        None => Actor::Token(s.token.name.clone()),
    };
    let action = match action.as_str() {
        "ack" => match s.person() {
            Some(p) => Action::Ack { by: p.clone(), text },
            None => {
                return Err(WebError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "acknowledging needs a token that belongs to a person (tocsin token create --person ID)",
                ));
            }
        },
        "note" => Action::Note { text: text.unwrap_or_default() },
        "reply" => match s.person() {
            Some(p) => Action::Reply { by: p.clone(), text: text.unwrap_or_default() },
            None => {
                return Err(WebError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "a reply to the customer is signed by a person: sign in with a token that belongs to one (tocsin token create --person ID)",
                ));
            }
        },
        "escalate" => Action::Escalate { from: None },
        "resolve" => Action::Resolve { text },
        "wait" => Action::Wait { text },
        "resume" => Action::Resume { text },
        "assign" => match f.to.trim().parse::<PersonId>() {
            Ok(to) => Action::Assign { to },
            Err(e) => return Err(WebError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("assign to whom? {e}"))),
        },
        other => {
            return Err(WebError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "there is no action {other:?}; use ack, note, reply, escalate, resolve, assign, wait or resume"
                ),
            ));
        }
    };
    match state.cases.act(c.number, &action, &actor, Via::Dashboard).await {
        Ok(_) => Ok(Redirect::to(&format!("/cases/{}", c.number.0)).into_response()),
        Err(e) => {
            // Shown on the case as it now stands, with the reason.
            let e = ApiError::from(e);
            let fresh = state.store.case(c.number).await?.unwrap_or(c);
            let view = case_view(&state, &s, fresh, Some(e.message)).await?;
            Ok((e.status, state.web.render("case.html", view)?).into_response())
        }
    }
}

#[derive(Debug, Serialize)]
struct Bar {
    /// Percent of the row's width.
    x: f64,
    w: f64,
    who: String,
    label: String,
    /// Position in the palette, so neighbours differ.
    shade: usize,
    is_override: bool,
}

#[derive(Debug, Serialize)]
struct ScheduleRow {
    name: String,
    bars: Vec<Bar>,
    /// Stretches with nobody on call on a schedule a policy pages
    /// (`tocsin check --coverage` finds the same).
    holes: Vec<HoleRow>,
}

#[derive(Debug, Serialize)]
struct HoleRow {
    x: f64,
    w: f64,
    /// When, on the viewer's clock, and why.
    label: String,
}

#[derive(Debug, Serialize)]
struct OverrideRow {
    id: i64,
    schedule: String,
    person: String,
    start: String,
    end: String,
    reason: String,
    by: String,
}

#[derive(Debug, Serialize)]
struct SchedulesView {
    me: Me,
    page: &'static str,
    now: String,
    days: Vec<(f64, String)>,
    schedules: Vec<ScheduleRow>,
    overrides: Vec<OverrideRow>,
    people: Vec<(String, String)>,
    names: Vec<String>,
    error: Option<String>,
    form: OverrideForm,
}

async fn schedules_view(
    state: &AppState,
    s: &Session,
    error: Option<String>,
    form: OverrideForm,
) -> Result<SchedulesView, WebError> {
    let now = state.clock.now();
    let tz = s.zone;
    let today = now.with_timezone(&tz).date_naive();
    let start = crate::schedule::to_utc(tz, today.and_time(chrono::NaiveTime::MIN)).unwrap_or(now);
    let end = start + TimeDelta::days(SCHEDULE_DAYS);
    let width = (end - start).num_seconds() as f64;
    let x = |t: DateTime<Utc>| ((t - start).num_seconds() as f64 / width * 100.0).clamp(0.0, 100.0);
    let stored = state.store.overrides(start).await?;
    let overrides = state.overrides.by_schedule(start).await?;
    let none = Vec::new();
    let mut shades: Vec<PersonId> = Vec::new();
    let schedules = state
        .rules
        .get()
        .schedules
        .values()
        .map(|sch| {
            let o = overrides.get(&sch.name).unwrap_or(&none);
            let bars = sch
                .spans(o, start, end)
                .into_iter()
                .map(|(from, to, who)| {
                    let shade = match &who {
                        Some(p) => shades.iter().position(|x| x == p).unwrap_or_else(|| {
                            shades.push(p.clone());
                            shades.len() - 1
                        }),
                        None => usize::MAX,
                    };
                    let name = if who.is_some() { person_name(state, who.as_ref()) } else { "nobody".into() };
                    let is_override = o.iter().any(|ov| ov.start <= from && to <= ov.end);
                    Bar {
                        x: x(from),
                        w: x(to) - x(from),
                        label: format!(
                            "{name}: {} to {}{}",
                            local(from, tz),
                            local(to, tz),
                            if is_override { " (override)" } else { "" }
                        ),
                        who: name,
                        shade: if shade == usize::MAX { 99 } else { shade % 6 },
                        is_override,
                    }
                })
                .collect();
            let holes = crate::coverage::schedule_holes(&state.rules.get(), &sch.name, &overrides, start, end)
                .into_iter()
                .filter_map(|h| match h {
                    crate::coverage::Hole::NobodyOnCall { from, to, policies, why, .. } => Some(HoleRow {
                        x: x(from),
                        w: x(to) - x(from),
                        label: format!(
                            "nobody on call {} to {}, yet policy {} pages it: {}",
                            local(from, tz),
                            local(to, tz),
                            policies.join(", "),
                            why.join("; ")
                        ),
                    }),
                    _ => None,
                })
                .collect();
            ScheduleRow { name: sch.name.clone(), bars, holes }
        })
        .collect();
    let days = (0..SCHEDULE_DAYS)
        .map(|d| {
            let day = today + TimeDelta::days(d);
            let t = crate::schedule::to_utc(tz, day.and_time(chrono::NaiveTime::MIN)).unwrap_or(start);
            (x(t), day.format("%a %d").to_string())
        })
        .collect();
    Ok(SchedulesView {
        me: s.me(),
        page: "schedules",
        now: rfc3339(now),
        days,
        schedules,
        overrides: stored
            .into_iter()
            .map(|o: OverrideRecord| OverrideRow {
                id: o.id,
                schedule: o.schedule,
                person: person_name(state, Some(&o.person)),
                start: local(o.start, tz),
                end: local(o.end, tz),
                reason: o.reason,
                by: o.created_by,
            })
            .collect(),
        people: state.rules.get().people.values().map(|p| (p.id.as_str().to_owned(), p.name.clone())).collect(),
        names: state.rules.get().schedules.keys().cloned().collect(),
        error,
        form,
    })
}

/// `GET /schedules`: the next 14 days of every schedule, and overrides.
pub async fn schedules(State(state): State<AppState>, s: Session) -> Result<Html<String>, WebError> {
    let view = schedules_view(&state, &s, None, OverrideForm::default()).await?;
    state.web.render("schedules.html", view)
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct OverrideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    schedule: String,
    #[serde(default)]
    person: String,
    /// `datetime-local` values, on the viewer's clock.
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    #[serde(default)]
    reason: String,
}

/// A `datetime-local` value on `tz`'s clock.
fn wall(raw: &str, tz: Tz, field: &str) -> Result<DateTime<Utc>, String> {
    let naive = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| format!("{field}: {raw:?} is not a date and time like 2026-11-24T09:00"))?;
    crate::schedule::to_utc(tz, naive).ok_or_else(|| format!("{field}: {raw} does not exist on the {tz} clock"))
}

/// `POST /schedules/overrides`: managers put someone on call for a while.
pub async fn add_override(
    State(state): State<AppState>,
    s: Session,
    Form(f): Form<OverrideForm>,
) -> Result<Response, WebError> {
    s.check_csrf(&f.csrf)?;
    if !s.is_manager() {
        return Err(WebError::forbidden("overrides need a manager or admin sign-in"));
    }
    let actor = match s.person() {
        Some(p) => p.as_str().to_owned(),
        None => s.token.name.clone(),
    };
    let checked = wall(&f.start, s.zone, "start").and_then(|start| Ok((start, wall(&f.end, s.zone, "end")?)));
    let refused = match checked {
        Ok((start, end)) => {
            let request = OverrideRequest {
                schedule: f.schedule.clone(),
                person: f.person.clone(),
                start,
                end,
                reason: f.reason.clone(),
            };
            match state.overrides.add(request, &actor).await {
                Ok(_) => None,
                Err(OverrideError::Invalid(field)) => Some(field.to_string()),
                Err(OverrideError::Store(e)) => return Err(e.into()),
            }
        }
        Err(message) => Some(message),
    };
    if let Some(message) = refused {
        let view = schedules_view(&state, &s, Some(message), f).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, state.web.render("schedules.html", view)?).into_response());
    }
    Ok(Redirect::to("/schedules").into_response())
}

/// `GET /cases/{n}/attachments/{id}`: an attachment of the customer's mail,
/// always as a download (the headers come from the attachments service), so
/// a hostile HTML file never runs in the dashboard's origin.
pub async fn attachment(
    State(state): State<AppState>,
    s: Session,
    Path((raw, id)): Path<(String, i64)>,
) -> Result<Response, WebError> {
    let c = load(&state, &s, &raw).await?;
    let file = crate::service::attachments::attachment(state.store.as_ref(), c.number, id)
        .await?
        .ok_or_else(|| WebError::new(StatusCode::NOT_FOUND, format!("Case {} has no attachment {id}.", c.number)))?;
    let mut response = file.bytes.clone().into_response();
    for (name, value) in file.headers() {
        if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}
