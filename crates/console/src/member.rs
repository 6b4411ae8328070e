//! Who a console request is from: the member behind a live session cookie, passed through the
//! API's guard (freeze, rate limit) — and, for a change, proof that it came from a console
//! page: an `Origin` (or `Referer`) equal to the public URL and the session's CSRF token.

use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::{HeaderValue, header, request::Parts};
use axum::response::Response;
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

    /// Gives the session a new identifier (after a privilege change: a second factor, a new
    /// password), so one that leaked before is worthless; the cookie to set is returned.
    pub async fn rotate(&mut self, console: &Console) -> Result<HeaderValue, PageError> {
        let identifier = session::new_identifier().map_err(PageError::internal)?;
        let digest = session::digest(&identifier);
        if !console.app.control.rotate_session(&self.digest, &digest).await? {
            return Err(PageError::SignIn);
        }
        let config = &console.config;
        let cookie = header_value(&set_cookie(config, session_cookie(config), &identifier, None))?;
        self.identifier = identifier;
        self.digest = digest;
        Ok(cookie)
    }

    /// The member as a caller of the API's own handlers (their role's scopes, the same guard).
    pub fn tenant(&self, console: &Console) -> Result<chimatic_api::auth::Tenant, PageError> {
        let s = &self.session;
        Ok(chimatic_api::auth::Tenant::member(
            &console.app,
            s.workspace_id,
            &s.region,
            s.frozen,
            s.user_id,
            s.role.scopes(),
            self.audit.clone(),
        )?)
    }

    /// The same permission check as the API's: the role's scopes.
    pub fn require(&self, scope: Scope) -> Result<(), PageError> {
        if self.session.role.scopes().allows(scope) { Ok(()) } else { Err(PageError::forbidden()) }
    }

    /// Members, keys and settings: owners and admins.
    pub fn require_manager(&self) -> Result<(), PageError> {
        if self.session.role.manages_workspace() { Ok(()) } else { Err(PageError::forbidden()) }
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
        if found.must_enrol && !open_before_enrolment(parts.uri.path()) {
            return Err(PageError::EnrolFirst);
        }
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

/// Where a member goes while their workspace requires a second factor they do not have yet.
fn open_before_enrolment(path: &str) -> bool {
    ["/console/account", "/console/sign-out", "/console/switch-workspace"].iter().any(|p| path.starts_with(p))
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

/// The fields of a change that has none but its CSRF token (sign out, replay, check now…).
#[derive(serde::Deserialize)]
pub struct NoFields {}

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

/// The browser's pre-session: a random identifier in a cookie, for the CSRF token of the forms
/// shown before there is a session (sign-in, joining, resetting a password). Made on first use.
pub struct PreSession {
    pub identifier: String,
    /// Made for this response: the cookie must be set on it.
    pub fresh: bool,
}

/// A pre-session lasts as long as a form may sit open.
const PRE_SESSION_SECS: u64 = 3600;

impl PreSession {
    pub fn csrf(&self) -> String {
        session::csrf_token(&self.identifier)
    }

    pub fn digest(&self) -> [u8; 32] {
        session::digest(&self.identifier)
    }

    /// Sets the cookie on a response when it was made for it.
    pub fn attach(&self, config: &ConsoleConfig, mut resp: Response) -> Result<Response, PageError> {
        if self.fresh {
            let cookie = set_cookie(config, pre_session_cookie(config), &self.identifier, Some(PRE_SESSION_SECS));
            resp.headers_mut().append(header::SET_COOKIE, header_value(&cookie)?);
        }
        Ok(resp)
    }
}

pub fn header_value(text: &str) -> Result<HeaderValue, PageError> {
    HeaderValue::from_str(text).map_err(PageError::internal)
}

impl FromRequestParts<Console> for PreSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, PageError> {
        Ok(match cookie_value(parts, pre_session_cookie(&console.config)) {
            Some(identifier) if session::well_formed(&identifier) => PreSession { identifier, fresh: false },
            _ => PreSession { identifier: session::new_identifier().map_err(PageError::internal)?, fresh: true },
        })
    }
}

/// A form posted before there is a session: from a console page, with the pre-session's CSRF
/// token. Anything else is refused before the handler runs.
pub struct PreChange<T> {
    pub pre: PreSession,
    pub form: T,
    pub parts: Parts,
}

impl<T: DeserializeOwned + Send> FromRequest<Console> for PreChange<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, console: &Console) -> Result<Self, PageError> {
        let (parts, body) = req.into_parts();
        let pre = cookie_value(&parts, pre_session_cookie(&console.config)).filter(|id| session::well_formed(id));
        let Some(identifier) = pre.filter(|_| same_origin(&parts, &console.config)) else {
            return Err(PageError::forged());
        };
        let req = Request::from_parts(parts.clone(), body);
        let Form(WithCsrf { csrf, fields }) = Form::<WithCsrf<T>>::from_request(req, &())
            .await
            .map_err(|_| PageError::bad_request("the form is incomplete"))?;
        if !session::csrf_matches(&identifier, &csrf) {
            return Err(PageError::forged());
        }
        Ok(PreChange { pre: PreSession { identifier, fresh: false }, form: fields, parts })
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
