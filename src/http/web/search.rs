//! The Cases page: every case, resolved ones included, found by the same
//! filters as `GET /api/v1/cases` (read by [`crate::service::search`]),
//! newest first, fifty a page, each linking to its case.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::session::{Me, Session};
use super::{WebError, local, rfc3339};
use crate::case::Status;
use crate::http::AppState;
use crate::service::search::CaseSearch;

/// Cases per page.
const PAGE: u32 = 50;

#[derive(Debug, Serialize)]
struct Row {
    number: i64,
    opened: String,
    status: &'static str,
    priority: String,
    subject: String,
    customer: String,
    requester: String,
    assignee: String,
    held: Option<String>,
}

#[derive(Debug, Serialize)]
struct View {
    me: Me,
    page: &'static str,
    now: String,
    /// The filters as given, to fill the form again.
    status: String,
    customer: String,
    assignee: String,
    requester: String,
    priority: String,
    q: String,
    statuses: Vec<&'static str>,
    customers: Vec<String>,
    people: Vec<(String, String)>,
    cases: Vec<Row>,
    /// The next page's query string, when more remain.
    next: Option<String>,
    error: Option<String>,
}

/// `GET /cases`: the search form and a page of what it finds.
pub async fn cases(State(state): State<AppState>, s: Session, Query(search): Query<CaseSearch>) -> Response {
    match page(&state, &s, search).await {
        Ok((status, html)) => (status, html).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn page(state: &AppState, s: &Session, search: CaseSearch) -> Result<(StatusCode, Html<String>), WebError> {
    let tz = s.zone;
    let (mut cases, error) = match search.query(PAGE) {
        Ok(mut q) => {
            q.limit += 1;
            (state.cases.find(&s.token, q).await?, None)
        }
        Err(e) => (Vec::new(), Some(e)),
    };
    let limit = search.limit.unwrap_or(PAGE).clamp(1, crate::service::search::MAX_PAGE) as usize;
    let more = cases.len() > limit;
    cases.truncate(limit);
    let next = cases.last().filter(|_| more).map(|c| search.next(c.number));
    let name = |p: Option<&crate::people::PersonId>| {
        p.map(|p| state.rules.get().people.get(p).map_or_else(|| p.to_string(), |x| x.name.clone())).unwrap_or_default()
    };
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let view = View {
        me: s.me(),
        page: "cases",
        now: rfc3339(state.clock.now()),
        status: text(&search.status),
        customer: text(&search.customer),
        assignee: text(&search.assignee),
        requester: text(&search.requester),
        priority: text(&search.priority),
        q: text(&search.q),
        statuses: Status::ALL.iter().map(|s| s.as_str()).collect(),
        customers: state.rules.get().customers.iter().map(|c| c.name.clone()).collect(),
        people: state.rules.get().people.values().map(|p| (p.id.to_string(), p.name.clone())).collect(),
        cases: cases
            .iter()
            .map(|c| Row {
                number: c.number.0,
                opened: local(c.opened_at, tz),
                status: c.status.as_str(),
                priority: c.priority.to_string(),
                subject: c.subject.clone(),
                customer: c.customer.clone().unwrap_or_default(),
                requester: c.requester.clone(),
                assignee: name(c.assignee.as_ref()),
                held: c.held_until.map(|at| local(at, tz)),
            })
            .collect(),
        next,
        error: error.clone(),
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok((status, state.web.render("cases.html", view)?))
}
