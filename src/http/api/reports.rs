//! `GET /api/v1/reports/sla`: the dashboard's reports, as JSON or CSV.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::AppState;
use crate::http::auth::Auth;
use crate::http::error::ApiError;
use crate::reports::{self, Report};
use crate::token::TokenRole;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sla))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SlaQuery {
    /// First day, `YYYY-MM-DD` (default: 27 days before `to`).
    from: Option<String>,
    /// Last day, inclusive (default: today).
    to: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
    /// With `format=csv`: compliance (default), times, breaches or pages.
    table: Option<String>,
    /// IANA zone the days and weeks are counted in (default: the token's
    /// person's zone, else `[dashboard] time_zone`).
    zone: Option<String>,
}

/// SLA compliance per week by plan, priority and customer; MTTA and MTTR
/// with 90th percentiles per week; breaches with their cause; pages per
/// person and at night. For cases opened in the range.
#[utoipa::path(get, path = "/api/v1/reports/sla", params(SlaQuery), security(("bearer" = [])),
    responses((status = 200, description = "the report (JSON), or one table of it (CSV)"),
        (status = 400, description = "bad range, zone, format or table"), (status = 403, description = "not a manager")))]
async fn sla(State(state): State<AppState>, auth: Auth, Query(q): Query<SlaQuery>) -> Result<Response, ApiError> {
    if !matches!(auth.0.role, TokenRole::Manager | TokenRole::Admin) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("reports need a manager or admin token; this one is {}", auth.0.role),
        ));
    }
    let rules = state.rules.get();
    let zone = match q.zone.as_deref() {
        Some(z) => z.parse().map_err(|_| ApiError::bad_request(format!("zone: {z:?} is not an IANA time zone")))?,
        None => auth.0.person.as_ref().and_then(|p| rules.people.get(p)).map_or(state.web.zone, |p| p.timezone),
    };
    let range =
        reports::range(q.from.as_deref(), q.to.as_deref(), zone, state.clock.now()).map_err(ApiError::bad_request)?;
    let data = state.web.reports.report_data(range.from, range.to).await?;
    let report = Report::compute(&data, &state.rules.get(), zone, range.from, range.to);
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(report).into_response()),
        "csv" => {
            let table = q.table.as_deref().unwrap_or("compliance");
            let body = report.csv(table).ok_or_else(|| {
                ApiError::bad_request(format!("table: {table:?} is not one of {}", reports::TABLES.join(", ")))
            })?;
            let name = format!("attachment; filename=\"tocsin-{table}-{}-{}.csv\"", range.first, range.last);
            Ok((
                [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, name)],
                body,
            )
                .into_response())
        }
        other => Err(ApiError::bad_request(format!("format: {other:?}; use json or csv"))),
    }
}
