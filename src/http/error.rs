//! The JSON error answer of the API and the webhooks, and how each
//! service error maps to a status. The dashboard words its own pages but
//! takes the same status and sentence from here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::case::ActionError;
use crate::service::cases::CaseError;
use crate::service::overrides::OverrideError;
use crate::store::StoreError;

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
                    | ActionError::AlreadyAssigned { .. }
                    | ActionError::WrongStatus { .. } => StatusCode::CONFLICT,
                    ActionError::NeedsPerson
                    | ActionError::UnknownPerson(_)
                    | ActionError::UnknownPriority { .. }
                    | ActionError::UnknownPolicy(_)
                    | ActionError::UnknownPlan(_)
                    | ActionError::NothingToChange
                    | ActionError::TooOldToReopen(_)
                    | ActionError::EmptyText
                    | ActionError::EmptyReply
                    | ActionError::ReplyNeedsPerson => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError::new(status, a.to_string())
            }
            CaseError::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            CaseError::Forbidden(why) => ApiError::new(StatusCode::FORBIDDEN, why),
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
