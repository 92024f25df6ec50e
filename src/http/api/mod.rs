//! The HTTP API: JSON under `/api/v1`, bearer tokens with roles, errors as
//! `{"error": "…"}` with a 4xx status that says what to fix.

pub mod audit;
pub mod cases;
pub mod health;
pub mod inbox;
pub mod reports;
pub mod schedules;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::http::auth::BearerScheme;
use crate::http::error::ApiError;
use crate::http::{AppState, BODY_LIMIT};

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

/// The API routes, with their OpenAPI description from the same handlers.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(cases::routes())
        .merge(schedules::routes())
        .merge(reports::routes())
        .merge(health::routes())
        .merge(audit::routes())
        .merge(inbox::routes())
}
