//! The Reports page and its CSV downloads.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::session::{Me, Session};
use super::{WebError, charts, local, rfc3339, span};
use crate::http::AppState;
use crate::reports::{self, Report};

#[derive(Debug, Deserialize)]
pub struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

fn managers_only(s: &Session) -> Result<(), WebError> {
    if s.is_manager() {
        Ok(())
    } else {
        Err(WebError::forbidden("reports are for managers and admins; your sign-in shows your own cases"))
    }
}

/// Reads and computes the report `q` asks for, on the viewer's clock.
async fn compute(state: &AppState, s: &Session, q: &RangeQuery) -> Result<(reports::Range, Report), WebError> {
    let range = reports::range(q.from.as_deref(), q.to.as_deref(), s.zone, state.clock.now())
        .map_err(|e| WebError::new(StatusCode::BAD_REQUEST, e))?;
    let data = state.web.reports.report_data(range.from, range.to).await?;
    Ok((range, Report::compute(&data, &state.rules.get(), s.zone, range.from, range.to)))
}

#[derive(Serialize)]
struct Row {
    cells: Vec<String>,
}

#[derive(Serialize)]
struct ReportView {
    me: Me,
    page: &'static str,
    now: String,
    from: String,
    to: String,
    query: String,
    report: Report,
    percent_chart: String,
    tta_chart: String,
    ttr_chart: String,
    totals: Vec<(String, String)>,
    times: Vec<Row>,
    /// The latest breaches, newest first; the CSV has them all.
    breaches: Vec<Row>,
    breaches_more: usize,
}

/// Breaches listed on the page; the rest are in breaches.csv.
const BREACHES_SHOWN: usize = 200;

fn secs(v: Option<i64>) -> String {
    v.map(|s| span(chrono::TimeDelta::seconds(s))).unwrap_or_else(|| "–".into())
}

/// `GET /reports?from=&to=`
pub async fn page(
    State(state): State<AppState>,
    s: Session,
    Query(q): Query<RangeQuery>,
) -> Result<Html<String>, WebError> {
    managers_only(&s)?;
    let (range, report) = compute(&state, &s, &q).await?;
    let weeks: Vec<String> = report.weeks.iter().map(|w| w.format("%d %b").to_string()).collect();
    // Overall compliance of each week, across plans.
    let per_week: Vec<Option<f64>> = report
        .weeks
        .iter()
        .map(|w| {
            let (met, breached) = report
                .compliance
                .iter()
                .filter(|r| r.by == "plan" && r.week == *w)
                .fold((0u32, 0u32), |(m, b), r| (m + r.met, b + r.breached));
            (met + breached > 0).then(|| f64::from(met) * 100.0 / f64::from(met + breached))
        })
        .collect();
    let t = &report.totals;
    let totals = vec![
        ("Cases opened".to_owned(), t.opened.to_string()),
        (
            "SLA met".to_owned(),
            t.percent.map_or_else(|| "–".into(), |p| format!("{p:.1}% ({} of {})", t.met, t.met + t.breached)),
        ),
        ("Breached".to_owned(), t.breached.to_string()),
        ("Still running".to_owned(), t.pending.to_string()),
        ("MTTA (p90)".to_owned(), format!("{} ({})", secs(t.mtta), secs(t.tta_p90))),
        ("Time to first reply (p90)".to_owned(), format!("{} ({})", secs(t.mttfr), secs(t.ttfr_p90))),
        ("MTTR (p90)".to_owned(), format!("{} ({})", secs(t.mttr), secs(t.ttr_p90))),
        ("Pages (at night)".to_owned(), format!("{} ({})", t.pages, t.night)),
    ];
    let view = ReportView {
        me: s.me(),
        page: "reports",
        now: rfc3339(state.clock.now()),
        from: range.first.to_string(),
        to: range.last.to_string(),
        query: format!("from={}&to={}", range.first, range.last),
        percent_chart: charts::percent_bars("SLA met per week", &weeks, &per_week),
        tta_chart: charts::duration_lines(
            "Time to acknowledge per week: mean, and 90th percentile dashed",
            &weeks,
            &[
                ("mean", report.times.iter().map(|r| r.mtta).collect()),
                ("p90", report.times.iter().map(|r| r.tta_p90).collect()),
            ],
        ),
        ttr_chart: charts::duration_lines(
            "Time to resolve per week: mean, and 90th percentile dashed",
            &weeks,
            &[
                ("mean", report.times.iter().map(|r| r.mttr).collect()),
                ("p90", report.times.iter().map(|r| r.ttr_p90).collect()),
            ],
        ),
        totals,
        times: report
            .times
            .iter()
            .map(|r| Row {
                cells: vec![
                    r.week.format("%d %b %Y").to_string(),
                    r.acknowledged.to_string(),
                    secs(r.mtta),
                    secs(r.tta_p90),
                    r.replied.to_string(),
                    secs(r.mttfr),
                    secs(r.ttfr_p90),
                    r.resolved.to_string(),
                    secs(r.mttr),
                    secs(r.ttr_p90),
                ],
            })
            .collect(),
        breaches_more: report.breaches.len().saturating_sub(BREACHES_SHOWN),
        breaches: report
            .breaches
            .iter()
            .rev()
            .take(BREACHES_SHOWN)
            .map(|b| Row {
                cells: vec![
                    b.case.to_string(),
                    b.subject.clone(),
                    b.customer.clone().unwrap_or_default(),
                    b.priority.clone(),
                    b.clock.clone(),
                    local(b.at, s.zone),
                    b.cause.clone(),
                ],
            })
            .collect(),
        report,
    };
    state.web.render("reports.html", view)
}

/// `GET /reports/{table}.csv?from=&to=`
pub async fn csv(
    State(state): State<AppState>,
    s: Session,
    Path(file): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Response, WebError> {
    managers_only(&s)?;
    let Some(table) = file.strip_suffix(".csv").filter(|t| reports::TABLES.contains(t)) else {
        return Err(WebError::new(
            StatusCode::NOT_FOUND,
            format!("no report {file:?}; use one of {}", reports::TABLES.map(|t| format!("{t}.csv")).join(", ")),
        ));
    };
    let (range, report) = compute(&state, &s, &q).await?;
    csv_response(&report, table, &range)
}

/// A CSV download named after its table and range.
pub fn csv_response(report: &Report, table: &str, range: &reports::Range) -> Result<Response, WebError> {
    let body =
        report.csv(table).ok_or_else(|| WebError::new(StatusCode::NOT_FOUND, format!("no report table {table:?}")))?;
    let name = format!("attachment; filename=\"tocsin-{table}-{}-{}.csv\"", range.first, range.last);
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, name)], body)
        .into_response())
}
