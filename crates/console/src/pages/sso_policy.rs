//! An owner's single sign-on policy: the email domains whose people become members (with a
//! chosen role) the first time they sign in through the identity provider, and whether members
//! must sign in through it. Free email domains are refused: anyone can have an address there.

use axum::extract::State;
use axum::response::Redirect;
use chimatic_domain::Role;
use chimatic_store::SsoPolicy;
use serde::Deserialize;

use crate::Console;
use crate::error::PageError;
use crate::member::Change;

/// Domains where anyone can get an address.
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "yahoo.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.ru",
    "yandex.ru",
    "qq.com",
    "163.com",
    "zoho.com",
];

/// The domains an owner typed (commas or spaces between them), checked and lower-cased.
pub fn domains(text: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for raw in text.split([',', ' ', '\n', '\r', '\t']).filter(|d| !d.is_empty()) {
        let domain = raw.trim_start_matches('@').to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if domain.len() > 253 || !domain.contains('.') || !domain.split('.').all(label_ok) {
            return Err(format!("`{raw}` is not a domain name like example.com (no wildcards)"));
        }
        if FREE_MAIL.contains(&domain.as_str()) {
            return Err(format!("{domain} is a free email service: anyone could join"));
        }
        if !out.contains(&domain) {
            out.push(domain);
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    domains: String,
    role: String,
    required: Option<String>,
}

pub async fn save(State(console): State<Console>, change: Change<PolicyForm>) -> Result<Redirect, PageError> {
    let Change { member, form } = change;
    if member.role() != Role::Owner {
        return Err(PageError::forbidden());
    }
    if console.config.oidc.is_none() {
        return Err(PageError::bad_request("no identity provider is configured on this deployment"));
    }
    let role: Role = form.role.parse().map_err(|_| PageError::bad_request("choose a role"))?;
    if role == Role::Owner {
        return Err(PageError::bad_request("people joining by their email domain cannot be owners"));
    }
    let domains = domains(&form.domains).map_err(PageError::bad_request)?;
    let policy =
        SsoPolicy { domains: domains.into_iter().map(|d| (d, role)).collect(), required: form.required.is_some() };
    let now = console.app.clock.now();
    console.app.control.set_sso_policy(member.session.workspace_id, &policy, now, &member.audit).await?;
    Ok(Redirect::to("/console/members"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_names_without_wildcards_or_free_mail() {
        assert_eq!(
            domains(" Example.COM, @corp.example.org example.com").unwrap(),
            ["example.com", "corp.example.org"]
        );
        assert_eq!(domains("").unwrap(), Vec::<String>::new());
        for bad in ["*.example.com", "example", "exa_mple.com", "-a.example.com", "a..example.com", "gmail.com"] {
            assert!(domains(bad).is_err(), "{bad} accepted");
        }
    }
}
