//! Who a console request is from: the member behind a live session cookie, passed through the
//! API's guard (freeze, rate limit) — and, for a change, proof that it came from a console
//! page: an `Origin` (or `Referer`) equal to the public URL and the session's CSRF token.

use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use chimatic_api::auth::{admit_member, request_origin};
use chimatic_audit::{Actor, AuditContext};
use chimatic_domain::{Role, Scope};
use chimatic_store::SessionRow;
use cookie::Cookie;
use serde::de::DeserializeOwned;

use crate::auth::session;
use crate::error::PageError;
use crate::{Console, ConsoleConfig};

/// A member with a live session in one workspace.
pub struct Member {
    pub session: SessionRow,
    /// The cookie's identifier, which the CSRF token derives from.
    identifier: String,
    pub digest: [u8; 32],
    pub audit: AuditContext,
}

impl Member {
    pub fn csrf(&self) -> String {
        session::csrf_token(&self.identifier)
    }

    pub fn role(&self) -> Role {
        self.session.role
    }

    /// The same permission check as the API's: the role's scopes.
    pub fn require(&self, scope: Scope) -> Result<(), PageError> {
        if self.session.role.scopes().allows(scope) { Ok(()) } else { Err(PageError::forbidden()) }
    }
}

/// The value of the cookie `name`, if the request carries it.
pub fn cookie_value(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

pub fn session_cookie(config: &ConsoleConfig) -> &'static str {
    if config.secure_cookies() { session::SECURE_COOKIE } else { session::PLAIN_COOKIE }
}

pub fn pre_session_cookie(config: &ConsoleConfig) -> &'static str {
    if config.secure_cookies() { session::SECURE_PRE_COOKIE } else { session::PLAIN_PRE_COOKIE }
}

/// A `Set-Cookie` value: host-only, whole site, not readable by scripts, not sent on
/// cross-site subrequests; `max_age` zero removes it.
pub fn set_cookie(config: &ConsoleConfig, name: &'static str, value: &str, max_age: Option<u64>) -> String {
    let mut c = Cookie::new(name, value.to_string());
    c.set_path("/");
    c.set_http_only(true);
    c.set_same_site(cookie::SameSite::Lax);
    c.set_secure(config.secure_cookies());
    if let Some(secs) = max_age {
        c.set_max_age(cookie::time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)));
    }
    c.to_string()
}

impl FromRequestParts<Console> for Member {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, PageError> {
        let identifier = cookie_value(parts, session_cookie(&console.config))
            .filter(|id| session::well_formed(id))
            .ok_or(PageError::SignIn)?;
        let digest = session::digest(&identifier);
        let app = &console.app;
        let now = app.clock.now();
        let found = app.control.session(&digest).await?.ok_or(PageError::SignIn)?;
        if console.config.timeouts.expired(&found, now) {
            app.control.end_session(&digest, None, false, now, &AuditContext::system()).await?;
            return Err(PageError::SignIn);
        }
        admit_member(app, found.workspace_id, &found.region, found.frozen, false)?;
        if session::needs_touch(&found, now) {
            app.control.touch_session(&digest, now).await?;
        }
        let audit = AuditContext {
            actor: Actor::user(found.user_id, found.email_masked.clone()),
            origin: request_origin(parts),
        };
        Ok(Member { session: found, identifier, digest, audit })
    }
}

/// Whether the request says it came from the console's own origin.
pub fn same_origin(parts: &Parts, config: &ConsoleConfig) -> bool {
    let origin = parts.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match origin {
        Some(o) => o == config.public_origin,
        None => parts
            .headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(url_origin)
            .is_some_and(|o| o == config.public_origin),
    }
}

fn url_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

/// The form fields of a change, with its `csrf` field.
#[derive(serde::Deserialize)]
struct WithCsrf<T> {
    csrf: String,
    #[serde(flatten)]
    fields: T,
}

/// A state-changing request: a member, from a console page, with the session's CSRF token.
/// Anything else is refused before the handler runs, so nothing changes.
pub struct Change<T> {
    pub member: Member,
    pub form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<Console> for Change<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, console: &Console) -> Result<Self, PageError> {
        let (mut parts, body) = req.into_parts();
        if !same_origin(&parts, &console.config) {
            return Err(PageError::forged());
        }
        let member = Member::from_request_parts(&mut parts, console).await?;
        let req = Request::from_parts(parts, body);
        let Form(WithCsrf { csrf, fields }) = Form::<WithCsrf<T>>::from_request(req, &())
            .await
            .map_err(|_| PageError::bad_request("the form is incomplete"))?;
        if !session::csrf_matches(&member.identifier, &csrf) {
            return Err(PageError::forged());
        }
        Ok(Change { member, form: fields })
    }
}

#[cfg(test)]
mod tests {
    use super::url_origin;

    #[test]
    fn a_referer_is_reduced_to_its_origin() {
        assert_eq!(url_origin("https://c.example.com/console/x?y").as_deref(), Some("https://c.example.com"));
        assert_eq!(url_origin("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(url_origin("nonsense"), None);
    }
}
