//! Console sessions: a 256-bit random identifier in a cookie, kept in the store only as a
//! digest; the CSRF token is derived from the identifier, so it is per session and never stored.
//! Idle and absolute timeouts are decided here from the injected clock.

use std::time::Duration;

use chimatic_crypto::digest::{constant_time_eq, sha256};
use chimatic_domain::Timestamp;
use chimatic_store::SessionRow;

/// The cookie's name: `__Host-` (Secure, no Domain, Path=/) wherever the browser treats the
/// origin as secure; a plain name over plain HTTP to another host, where `__Host-` is refused.
pub const SECURE_COOKIE: &str = "__Host-chimatic_session";
pub const PLAIN_COOKIE: &str = "chimatic_session";
/// Before sign-in, a random value that the sign-in form's CSRF token is derived from.
pub const SECURE_PRE_COOKIE: &str = "__Host-chimatic_presession";
pub const PLAIN_PRE_COOKIE: &str = "chimatic_presession";

/// `last_seen_at` is written at most this often per session, so a page view is not a write.
pub const TOUCH_RESOLUTION: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[error("the random number generator failed")]
pub struct RandomError;

/// A fresh identifier, as the cookie carries it (64 hex characters).
pub fn new_identifier() -> Result<String, RandomError> {
    let bytes = chimatic_crypto::random::bytes::<32>().map_err(|_| RandomError)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Only identifiers of the right shape are looked up.
pub fn well_formed(identifier: &str) -> bool {
    identifier.len() == 64 && identifier.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// What the store keeps of an identifier.
pub fn digest(identifier: &str) -> [u8; 32] {
    sha256("chimatic.console-session", identifier.as_bytes())
}

/// The CSRF token of the session (or pre-session) with this identifier.
pub fn csrf_token(identifier: &str) -> String {
    sha256("chimatic.console-csrf", identifier.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn csrf_matches(identifier: &str, presented: &str) -> bool {
    constant_time_eq(csrf_token(identifier).as_bytes(), presented.as_bytes())
}

#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Without a request for this long, the session ends.
    pub idle: Duration,
    /// However active, the session ends this long after sign-in.
    pub absolute: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { idle: Duration::from_secs(30 * 60), absolute: Duration::from_secs(12 * 3600) }
    }
}

impl Timeouts {
    pub fn expired(&self, session: &SessionRow, now: Timestamp) -> bool {
        session.last_seen_at.plus(self.idle) <= now || session.created_at.plus(self.absolute) <= now
    }
}

/// Whether this request should record the session as seen.
pub fn needs_touch(session: &SessionRow, now: Timestamp) -> bool {
    session.last_seen_at.plus(TOUCH_RESOLUTION) <= now
}

#[cfg(test)]
mod tests {
    use chimatic_domain::{Region, Role, UserId, WorkspaceId};

    use super::*;

    fn session(created: i64, seen: i64) -> SessionRow {
        SessionRow {
            user_id: UserId::generate(),
            workspace_id: WorkspaceId::generate(),
            role: Role::Viewer,
            email_masked: String::new(),
            created_at: Timestamp(created),
            last_seen_at: Timestamp(seen),
            region: Region::primary_default(),
            frozen: false,
            must_enrol: false,
        }
    }

    #[test]
    fn sessions_end_when_idle_or_old() {
        let t = Timeouts::default();
        let min = 60_000;
        assert!(!t.expired(&session(0, 0), Timestamp(29 * min)));
        assert!(t.expired(&session(0, 0), Timestamp(30 * min)), "idle 30 min");
        assert!(!t.expired(&session(0, 11 * 60 * min), Timestamp(11 * 60 * min + 29 * min)));
        assert!(t.expired(&session(0, 11 * 60 * min + 59 * min), Timestamp(12 * 60 * min)), "12 h after sign-in");
    }

    #[test]
    fn identifiers_are_random_and_only_their_digest_and_token_derive_from_them() {
        let a = new_identifier().unwrap();
        let b = new_identifier().unwrap();
        assert_ne!(a, b);
        assert!(well_formed(&a));
        assert!(!well_formed(&a[1..]));
        assert!(!well_formed(&a.to_uppercase()));
        assert_ne!(digest(&a), digest(&b));
        assert!(csrf_matches(&a, &csrf_token(&a)));
        assert!(!csrf_matches(&a, &csrf_token(&b)));
        assert!(!csrf_matches(&a, ""));
    }
}
