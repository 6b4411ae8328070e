//! Links that carry a single-use secret (invitations, password resets): 256 random bits in the
//! query string (request spans log paths without it), of which the store keeps a digest.

use chimatic_crypto::digest::sha256;

use super::session::{RandomError, new_identifier, well_formed};

#[derive(Clone, Copy)]
pub enum LinkKind {
    Invitation,
    PasswordReset,
}

impl LinkKind {
    fn purpose(self) -> &'static str {
        match self {
            LinkKind::Invitation => "chimatic.console-invitation",
            LinkKind::PasswordReset => "chimatic.console-password-reset",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            LinkKind::Invitation => "/console/join",
            LinkKind::PasswordReset => "/console/reset-password",
        }
    }
}

pub fn new_token() -> Result<String, RandomError> {
    new_identifier()
}

/// The digest of a presented token, if it has a token's shape.
pub fn digest(kind: LinkKind, token: &str) -> Option<[u8; 32]> {
    well_formed(token).then(|| sha256(kind.purpose(), token.as_bytes()))
}

/// The link as it is shown to copy.
pub fn url(kind: LinkKind, public_origin: &str, token: &str) -> String {
    format!("{public_origin}{}?token={token}", kind.path())
}
