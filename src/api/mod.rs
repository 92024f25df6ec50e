//! The HTTP API: JSON under `/api/v1`, bearer tokens with roles, errors as
//! `{"error": "…"}` with a 4xx status that says what to fix.

pub mod auth;
pub mod cases;
pub mod health;
pub mod hooks;
pub mod reports;
pub mod schedules;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::de::DeserializeOwned;
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use self::auth::BearerScheme;
use crate::case::ActionError;
use crate::clock::Clock;
use crate::rules::Rules;
use crate::service::cases::{CaseError, CaseService};
use crate::service::overrides::{OverrideError, OverrideService};
use crate::store::{Store, StoreError};

/// Largest request body the JSON API reads.
pub const BODY_LIMIT: usize = 256 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub inbox: Arc<crate::service::inbox::Inbox>,
    pub cases: Arc<CaseService>,
    pub overrides: Arc<OverrideService>,
    pub store: Arc<dyn Store>,
    pub rules: Arc<Rules>,
    pub clock: Arc<dyn Clock>,
    pub metrics: PrometheusHandle,
    /// Set when SMS go through Twilio: checks its webhooks.
    pub twilio: Option<hooks::TwilioHooks>,
    pub openapi: Arc<String>,
    /// The dashboard's templates and settings.
    pub web: Arc<crate::web::Web>,
}

/// An error answer: a status and a sentence for a person.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        // The client may safely retry: nothing was committed.
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable right now; nothing was changed, try again",
        )
    }
}

impl From<CaseError> for ApiError {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::NotFound(n) => {
                ApiError::new(StatusCode::NOT_FOUND, format!("no case {n}; list cases with GET /api/v1/cases"))
            }
            CaseError::Refused(a) => {
                let status = match a {
                    ActionError::AlreadyAcknowledged { .. }
                    | ActionError::Done { .. }
                    | ActionError::NotDone { .. }
                    | ActionError::AlreadyEscalated { .. }
                    | ActionError::NoNextStep { .. }
                    | ActionError::WrongStatus { .. } => StatusCode::CONFLICT,
                    ActionError::NeedsPerson
                    | ActionError::UnknownPerson(_)
                    | ActionError::UnknownPriority { .. }
                    | ActionError::UnknownPolicy(_)
                    | ActionError::UnknownPlan(_)
                    | ActionError::NothingToChange
                    | ActionError::TooOldToReopen(_)
                    | ActionError::EmptyText => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError::new(status, a.to_string())
            }
            CaseError::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            CaseError::Store(s) => s.into(),
        }
    }
}

impl From<OverrideError> for ApiError {
    fn from(e: OverrideError) -> Self {
        match e {
            OverrideError::Invalid(field) => ApiError::unprocessable(field.to_string()),
            OverrideError::Store(s) => s.into(),
        }
    }
}

/// `Json<T>` whose rejections are our JSON errors rather than plain text.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => {
                let status = match &rejection {
                    JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    JsonRejection::BytesRejection(_) => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                };
                let hint = match status {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => " (send Content-Type: application/json)".to_owned(),
                    StatusCode::PAYLOAD_TOO_LARGE => format!(" (the limit is {BODY_LIMIT} bytes)"),
                    _ => String::new(),
                };
                Err(ApiError::new(status, format!("{}{hint}", rejection.body_text())))
            }
        }
    }
}

/// Like [`ApiJson`], but an empty body means `T::default()`: action
/// bodies such as `{"text"}` are optional.
pub struct MaybeJson<T>(pub T);

impl<S, T> FromRequest<S> for MaybeJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let empty = req.headers().get(axum::http::header::CONTENT_LENGTH).is_some_and(|v| v == "0")
            || (req.headers().get(axum::http::header::CONTENT_TYPE).is_none()
                && req.headers().get(axum::http::header::TRANSFER_ENCODING).is_none()
                && req.headers().get(axum::http::header::CONTENT_LENGTH).is_none());
        if empty {
            return Ok(MaybeJson(T::default()));
        }
        ApiJson::<T>::from_request(req, state).await.map(|ApiJson(v)| MaybeJson(v))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tocsin", description = "SLA support-case escalation daemon"),
    components(schemas(crate::case::Status)),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

/// The API routes and their OpenAPI description, from the same handlers.
/// `max_mail` is the body limit of the mail webhook.
pub fn routes(max_mail: usize) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(cases::routes())
        .merge(schedules::routes())
        .merge(reports::routes())
        .merge(hooks::routes(max_mail))
        .merge(health::routes())
        .split_for_parts()
}

/// The whole HTTP application.
pub fn app(state: AppState, routes: Router<AppState>) -> Router {
    routes
        .merge(crate::web::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route; see GET /api/openapi.json") })
        // The default for every route; the mail webhook sets its own, larger
        // limit on its route, which wins because it is applied closer.
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; it has been logged").into_response()
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
