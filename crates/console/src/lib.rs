//! The web console, served by the same binary under `/console/`: server-rendered pages
//! (askama, compile-checked) that read through the same masked views as the API, with no
//! script at all — every flow is a link or a form. Members sign in with a password (argon2id)
//! into a session kept only as a digest; every state-changing request carries the session's
//! CSRF token and an `Origin` equal to the public URL; every response carries a strict CSP.

pub mod auth;
mod error;
mod member;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chimatic_api::AppState;

pub use auth::session::Timeouts;

/// How the console is reached and how long its sessions last.
#[derive(Clone, Debug)]
pub struct ConsoleConfig {
    /// The console's origin (`scheme://host[:port]`) as browsers see it: state-changing
    /// requests must come from it, and it decides whether cookies are `Secure`.
    pub public_origin: String,
    pub timeouts: Timeouts,
    /// How long an invitation link works.
    pub invitation_lifetime: std::time::Duration,
    /// The region whose credential vault keeps second-factor secrets: the primary region.
    pub secrets_region: chimatic_domain::Region,
    /// The operator's relay for mail to people; without it invitation links are only shown.
    pub system_mail: Option<chimatic_providers::SmtpRelay>,
    /// Sign-in through an OpenID Connect provider, when configured.
    pub oidc: Option<chimatic_oauth::OidcProvider>,
}

impl ConsoleConfig {
    /// Browsers treat https and loopback http as secure contexts: there the cookies are
    /// `__Host-` and `Secure`.
    pub fn secure_cookies(&self) -> bool {
        let o = self.public_origin.as_str();
        o.starts_with("https://")
            || ["http://localhost", "http://127.0.0.1", "http://[::1]"]
                .iter()
                .any(|p| o.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with(':')))
    }
}

#[derive(Clone)]
pub(crate) struct Console {
    pub app: AppState,
    pub config: Arc<ConsoleConfig>,
}

/// The console's routes (`/console/…`, and `/` redirecting there), to be merged with the API's.
pub fn router(app: AppState, config: ConsoleConfig) -> Router {
    let console = Console { app, config: Arc::new(config) };
    Router::new()
        .route("/console/", get(pages::overview::show))
        .route("/console/sign-in", get(pages::sign_in::form).post(pages::sign_in::submit))
        .route("/console/sign-out", post(pages::sign_in::sign_out))
        .route("/console/sign-out-everywhere", post(pages::sign_in::sign_out_everywhere))
        .route("/console/switch-workspace", post(pages::workspaces::switch))
        .route("/console/api-keys", get(pages::api_keys::list).post(pages::api_keys::create))
        .route("/console/api-keys/revoke", post(pages::api_keys::revoke))
        .route("/console/sign-in/two-factor", post(pages::sign_in::submit_code))
        .route("/console/sign-in/oidc", get(pages::sso::start))
        .route("/console/sign-in/oidc/callback", get(pages::sso::callback))
        .route("/console/account", get(pages::account::show))
        .route("/console/account/password", post(pages::account::change_password))
        .route("/console/account/two-factor", get(pages::two_factor::enrol_form).post(pages::two_factor::enrol))
        .route("/console/account/two-factor/disable", post(pages::two_factor::disable))
        .route("/console/notifications", get(pages::notifications::list))
        .route("/console/notifications/find", get(pages::notifications::find))
        .route("/console/notifications/{id}", get(pages::notifications::show))
        .route("/console/notifications/{id}/replay", post(pages::notifications::replay))
        .route("/console/subscribers", get(pages::resources::subscriber_list))
        .route("/console/subscribers/{id}", get(pages::resources::subscriber))
        .route("/console/topics", get(pages::resources::topic_list))
        .route("/console/suppressions", get(pages::resources::suppression_list))
        .route("/console/workflows", get(pages::resources::workflow_list))
        .route("/console/workflows/{id}", get(pages::resources::workflow))
        .route("/console/workflows/{id}/preview", post(pages::resources::workflow_preview))
        .route("/console/integrations", get(pages::integrations::list))
        .route("/console/integrations/connect", post(pages::integrations::connect))
        .route(pages::integrations::CALLBACK_PATH, get(pages::integrations::callback))
        .route("/console/integrations/{id}", get(pages::integrations::show))
        .route("/console/integrations/{id}/check", post(pages::integrations::check))
        .route("/console/integrations/{id}/delete", post(pages::integrations::delete))
        .route("/console/settings", get(pages::settings::show))
        .route("/console/settings/delete", post(pages::settings::delete))
        .route("/console/audit", get(pages::audit::list))
        .route("/console/audit/export", post(pages::audit::export))
        .route("/console/audit/verify", post(pages::audit::verify))
        .route("/console/members", get(pages::members::list))
        .route("/console/members/invite", post(pages::members::invite))
        .route("/console/members/role", post(pages::members::set_role))
        .route("/console/members/remove", post(pages::members::remove))
        .route("/console/members/reset-password", post(pages::members::issue_reset))
        .route("/console/members/two-factor", post(pages::members::require_two_factor))
        .route("/console/members/sso", post(pages::sso_policy::save))
        .route("/console/invitations/revoke", post(pages::members::revoke_invitation))
        .route("/console/join", get(pages::join::show).post(pages::join::create_account))
        .route("/console/join/accept", post(pages::join::accept))
        .route("/console/reset-password", get(pages::join::reset_form).post(pages::join::reset))
        .route("/console/assets/console.css", get(stylesheet))
        .route("/console/assets/console.js", get(script))
        .route("/console/{*rest}", get(pages::not_found).post(pages::not_found))
        .layer(middleware::from_fn(security_headers))
        .route("/console", get(to_console))
        .route("/", get(to_console))
        .with_state(console)
}

async fn to_console() -> Redirect {
    Redirect::to("/console/")
}

async fn stylesheet() -> Response {
    asset(include_str!("../assets/console.css"), "text/css; charset=utf-8")
}

async fn script() -> Response {
    asset(include_str!("../assets/console.js"), "text/javascript; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    resp
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// On every console response. Pages hold workspace data, so nothing is cached unless a
/// handler (the stylesheet) says otherwise; HSTS is added by the TLS listener.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    );
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_secure_on_https_and_loopback_only() {
        let config = |o: &str| ConsoleConfig {
            public_origin: o.into(),
            timeouts: Timeouts::default(),
            invitation_lifetime: std::time::Duration::from_secs(72 * 3600),
            secrets_region: chimatic_domain::Region::primary_default(),
            system_mail: None,
            oidc: None,
        };
        assert!(config("https://console.example.com").secure_cookies());
        assert!(config("http://127.0.0.1:8080").secure_cookies());
        assert!(config("http://localhost").secure_cookies());
        assert!(!config("http://localhost.example.com").secure_cookies());
        assert!(!config("http://10.0.0.5:8080").secure_cookies());
    }
}
