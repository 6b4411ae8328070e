//! Console errors render as a page (the API's are problem+json); a session that is missing or
//! over goes to the sign-in page instead.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chimatic_api::ApiError;
use chimatic_store::StoreError;

pub enum PageError {
    /// No live session: sign in (again).
    SignIn,
    /// The workspace requires a second factor: enrol first.
    EnrolFirst,
    /// Shown to the member: the message must hold no stored value.
    Shown { status: StatusCode, message: String },
}

impl PageError {
    pub fn forbidden() -> Self {
        Self::Shown { status: StatusCode::FORBIDDEN, message: "your role in this workspace does not allow this".into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::Shown { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    /// A request that failed the CSRF checks: nothing was changed.
    pub fn forged() -> Self {
        Self::Shown {
            status: StatusCode::FORBIDDEN,
            message: "this request did not come from a console page; nothing was changed".into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Shown { status: StatusCode::SERVICE_UNAVAILABLE, message: message.into() }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::internal(cause).into()
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        e.log_cause();
        Self::Shown { status: e.status, message: e.detail }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        Self::internal(e)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn => Redirect::to("/console/sign-in").into_response(),
            PageError::EnrolFirst => Redirect::to("/console/account/two-factor").into_response(),
            PageError::Shown { status, message } => {
                let page = ErrorPage {
                    status: status.as_u16(),
                    reason: status.canonical_reason().unwrap_or("Error"),
                    message: &message,
                };
                match page.render() {
                    Ok(html) => (status, Html(html)).into_response(),
                    Err(_) => (status, message).into_response(),
                }
            }
        }
    }
}
