//! Members and invitations. Every member sees who else is in the workspace (masked emails);
//! owners and admins invite (a single-use link, shown once), change roles, remove members and
//! issue password reset links, and only owners touch owners. Changes count on the member's
//! next request: their sessions in the workspace end at once.

use askama::Template;
use axum::extract::State;
use axum::response::{Html, Redirect};
use chimatic_domain::{EmailAddress, InvitationId, Role, Timestamp, UserId};
use chimatic_store::{InvitationRow, MemberRow, PasswordResetRow};
use serde::Deserialize;

use super::{Frame, frame, page};
use crate::Console;
use crate::auth::link::{self, LinkKind};
use crate::auth::password::EmailIdentity;
use crate::error::PageError;
use crate::member::{Change, Member};

/// A reset link is for a person told of it by a teammate: a day to use it.
pub const RESET_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

pub struct MemberView {
    pub id: String,
    pub email_masked: String,
    pub role: Role,
    pub since: String,
    pub is_you: bool,
    /// The viewer may change this member's role, remove them or reset their password.
    pub changeable: bool,
}

pub struct InvitationView {
    pub id: String,
    pub email_masked: String,
    pub role: Role,
    pub invited_by: String,
    pub expires: String,
    pub status: &'static str,
    pub pending: bool,
}

impl InvitationView {
    fn of(row: &InvitationRow, now: Timestamp) -> Self {
        let status = match (row.accepted_at, row.revoked_at) {
            (Some(_), _) => "accepted",
            (None, Some(_)) => "revoked",
            _ if now >= row.expires_at => "expired",
            _ => "pending",
        };
        InvitationView {
            id: row.id.to_string(),
            email_masked: row.email_masked.clone(),
            role: row.role,
            invited_by: row.invited_by.clone(),
            expires: row.expires_at.to_rfc3339(),
            status,
            pending: status == "pending",
        }
    }
}

/// A link with a secret, shown on the response that made it and never again.
pub struct ShownLink {
    pub what: String,
    pub url: String,
    /// Whether it was emailed too (only invitations, only with the operator's relay).
    pub mailed: Option<String>,
}

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage {
    frame: Frame,
    members: Vec<MemberView>,
    invitations: Vec<InvitationView>,
    assignable: Vec<Role>,
    two_factor_required: bool,
    is_owner: bool,
    link: Option<ShownLink>,
    /// The identity provider's name, when one is configured, and the workspace's policy.
    sso: Option<(String, SsoView)>,
}

pub struct SsoView {
    pub domains: String,
    pub role: Role,
    pub required: bool,
}

async fn render(console: &Console, member: &Member, link: Option<ShownLink>) -> Result<Html<String>, PageError> {
    let control = &console.app.control;
    let ws = member.session.workspace_id;
    let now = console.app.clock.now();
    let you = member.role();
    let members = control
        .members(ws)
        .await?
        .iter()
        .map(|m| MemberView {
            id: m.user_id.to_string(),
            email_masked: m.email_masked.clone(),
            role: m.role,
            since: m.since.to_rfc3339(),
            is_you: m.user_id == member.session.user_id,
            changeable: you.manages_workspace() && you.may_assign(m.role),
        })
        .collect();
    let invitations = if you.manages_workspace() {
        control.invitations(ws).await?.iter().map(|i| InvitationView::of(i, now)).collect()
    } else {
        Vec::new()
    };
    page(MembersPage {
        frame: frame(console, member).await?,
        members,
        invitations,
        assignable: Role::ALL.into_iter().filter(|r| you.may_assign(*r)).collect(),
        two_factor_required: control.two_factor_required(ws).await?,
        is_owner: you == Role::Owner,
        link,
        sso: match &console.config.oidc {
            Some(provider) => {
                let policy = control.sso_policy(ws).await?;
                let domains = policy.domains.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>().join(", ");
                let role = policy.domains.first().map_or(Role::Viewer, |(_, r)| *r);
                Some((provider.name.clone(), SsoView { domains, role, required: policy.required }))
            }
            None => None,
        },
    })
}

pub async fn list(State(console): State<Console>, member: Member) -> Result<Html<String>, PageError> {
    render(&console, &member, None).await
}

fn role(text: &str) -> Result<Role, PageError> {
    text.parse().map_err(|_| PageError::bad_request("choose a role"))
}

#[derive(Deserialize)]
pub struct Invite {
    email: String,
    role: String,
}

pub async fn invite(State(console): State<Console>, change: Change<Invite>) -> Result<Html<String>, PageError> {
    let Change { member, form } = change;
    member.require_manager()?;
    let role = role(&form.role)?;
    if !member.role().may_assign(role) {
        return Err(PageError::forbidden());
    }
    let email = EmailAddress::parse(form.email.trim()).map_err(|_| PageError::bad_request("enter an email address"))?;
    let identity = EmailIdentity::of(&email);
    let control = &console.app.control;
    let ws = member.session.workspace_id;
    if let Some(user) = control.user_by_email(&identity.digest).await?
        && control.memberships_of(user.id).await?.iter().any(|m| m.workspace_id == ws)
    {
        return Err(PageError::bad_request("this person is a member already"));
    }
    let token = link::new_token().map_err(PageError::internal)?;
    let digest = link::digest(LinkKind::Invitation, &token).ok_or_else(|| PageError::internal("token shape"))?;
    let now = console.app.clock.now();
    let row = InvitationRow {
        id: InvitationId::generate(),
        workspace_id: ws,
        email_digest: identity.digest,
        email_masked: identity.masked,
        role,
        invited_by: member.session.email_masked.clone(),
        created_at: now,
        expires_at: now.plus(console.config.invitation_lifetime),
        accepted_at: None,
        revoked_at: None,
    };
    control.create_invitation(&row, &digest, &member.audit).await?;
    let url = link::url(LinkKind::Invitation, &console.config.public_origin, &token);
    let mailed = match &console.config.system_mail {
        Some(relay) => Some(mail_invitation(&console, relay, &email, &row, &member, &url).await?),
        None => None,
    };
    let shown = ShownLink { what: format!("Invitation for {} as {}", row.email_masked, role), url, mailed };
    render(&console, &member, Some(shown)).await
}

/// Emails the link through the operator's relay; what became of it, for the inviter to read.
async fn mail_invitation(
    console: &Console,
    relay: &chimatic_providers::SmtpRelay,
    to: &EmailAddress,
    row: &InvitationRow,
    member: &Member,
    url: &str,
) -> Result<String, PageError> {
    let workspace = console.app.control.workspace(row.workspace_id).await?.name;
    let text = format!(
        "{inviter} invited you to the workspace \"{workspace}\" on Chimatic as {role}.\n\n\
         Open this link to join (it works once, until {expires}):\n{url}\n\n\
         If you did not expect this, ignore this email.\n",
        inviter = member.session.email_masked,
        role = row.role,
        expires = row.expires_at.to_rfc3339(),
    );
    let content = chimatic_domain::RenderedMessage {
        subject: Some(format!("Join {workspace} on Chimatic")),
        text,
        html: None,
        title: None,
    };
    Ok(match console.app.providers.send_through_relay(relay, to.expose(), &content).await {
        Ok(()) => format!("An email with this link was sent to {}.", row.email_masked),
        Err(class) => {
            tracing::warn!(workspace = %row.workspace_id, invitation = %row.id, error_class = class, "invitation email not sent");
            format!("The email to {} could not be sent ({class}): copy the link instead.", row.email_masked)
        }
    })
}

#[derive(Deserialize)]
pub struct Revoke {
    id: String,
}

pub async fn revoke_invitation(State(console): State<Console>, change: Change<Revoke>) -> Result<Redirect, PageError> {
    let Change { member, form } = change;
    member.require_manager()?;
    let id: InvitationId = form.id.parse().map_err(|_| PageError::bad_request("no such invitation"))?;
    let now = console.app.clock.now();
    console.app.control.revoke_invitation(member.session.workspace_id, id, now, &member.audit).await?;
    Ok(Redirect::to("/console/members"))
}

/// The member a change is about, if the one changing may touch them.
async fn target(console: &Console, member: &Member, id: &str) -> Result<(MemberRow, Vec<MemberRow>), PageError> {
    member.require_manager()?;
    let id: UserId = id.parse().map_err(|_| PageError::bad_request("no such member"))?;
    let members = console.app.control.members(member.session.workspace_id).await?;
    let found =
        members.iter().find(|m| m.user_id == id).cloned().ok_or_else(|| PageError::bad_request("no such member"))?;
    if !member.role().may_assign(found.role) {
        return Err(PageError::forbidden());
    }
    Ok((found, members))
}

/// A workspace always keeps an owner.
fn keeps_an_owner(members: &[MemberRow], changed: &MemberRow, new_role: Option<Role>) -> Result<(), PageError> {
    let owners = members.iter().filter(|m| m.role == Role::Owner).count();
    if changed.role == Role::Owner && new_role != Some(Role::Owner) && owners == 1 {
        return Err(PageError::bad_request("a workspace needs an owner: make someone else owner first"));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct SetRole {
    user: String,
    role: String,
}

pub async fn set_role(State(console): State<Console>, change: Change<SetRole>) -> Result<Redirect, PageError> {
    let Change { member, form } = change;
    let (found, members) = target(&console, &member, &form.user).await?;
    let role = role(&form.role)?;
    if !member.role().may_assign(role) {
        return Err(PageError::forbidden());
    }
    keeps_an_owner(&members, &found, Some(role))?;
    let now = console.app.clock.now();
    console.app.control.set_role(member.session.workspace_id, found.user_id, role, now, &member.audit).await?;
    Ok(Redirect::to("/console/members"))
}

#[derive(Deserialize)]
pub struct OneMember {
    user: String,
}

pub async fn remove(State(console): State<Console>, change: Change<OneMember>) -> Result<Redirect, PageError> {
    let Change { member, form } = change;
    let (found, members) = target(&console, &member, &form.user).await?;
    keeps_an_owner(&members, &found, None)?;
    let now = console.app.clock.now();
    console.app.control.remove_member(member.session.workspace_id, found.user_id, now, &member.audit).await?;
    let to = if found.user_id == member.session.user_id { "/console/sign-in" } else { "/console/members" };
    Ok(Redirect::to(to))
}

/// A single-use link that lets the member set a new password; shown once, to copy.
pub async fn issue_reset(State(console): State<Console>, change: Change<OneMember>) -> Result<Html<String>, PageError> {
    let Change { member, form } = change;
    let (found, _) = target(&console, &member, &form.user).await?;
    if found.user_id == member.session.user_id {
        return Err(PageError::bad_request("change your own password on your account page"));
    }
    let token = link::new_token().map_err(PageError::internal)?;
    let digest = link::digest(LinkKind::PasswordReset, &token).ok_or_else(|| PageError::internal("token shape"))?;
    let now = console.app.clock.now();
    let reset = PasswordResetRow {
        user_id: found.user_id,
        workspace_id: member.session.workspace_id,
        expires_at: now.plus(RESET_LIFETIME),
        used_at: None,
    };
    console.app.control.create_password_reset(&digest, &reset, now, &member.audit).await?;
    let shown = ShownLink {
        what: format!("Password reset link for {}", found.email_masked),
        url: link::url(LinkKind::PasswordReset, &console.config.public_origin, &token),
        // Chimatic keeps no address to send it to, only a digest.
        mailed: None,
    };
    render(&console, &member, Some(shown)).await
}

#[derive(Deserialize)]
pub struct Requirement {
    #[serde(default)]
    required: Option<String>,
}

/// Owners can require every member to have a second factor: members without one can open only
/// their account page until they enrol.
pub async fn require_two_factor(
    State(console): State<Console>,
    change: Change<Requirement>,
) -> Result<Redirect, PageError> {
    let Change { member, form } = change;
    if member.role() != Role::Owner {
        return Err(PageError::forbidden());
    }
    let now = console.app.clock.now();
    let required = form.required.is_some();
    console.app.control.set_two_factor_required(member.session.workspace_id, required, now, &member.audit).await?;
    Ok(Redirect::to("/console/members"))
}
