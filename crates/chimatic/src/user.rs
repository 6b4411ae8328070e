//! `chimatic user`: console users from the command line — the first owner of a workspace, and a
//! password reset. The password is read from standard input (or `--password-file`), never from
//! an argument or the environment, and must meet the console's password standard.

use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use chimatic_audit::system_workspace;
use chimatic_console::auth::password::{self, EmailIdentity, email_digest};
use chimatic_domain::{Clock, EmailAddress, Role, SystemClock, WorkspaceId};

use crate::config::StoreArgs;
use crate::stores::open_control;
use crate::workspace::operator;

/// The password: the file's first line, or standard input's.
fn read_password(file: Option<&Path>) -> anyhow::Result<zeroize::Zeroizing<String>> {
    let mut line = zeroize::Zeroizing::new(String::new());
    match file {
        Some(path) => {
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
            );
            line.push_str(text.lines().next().unwrap_or_default());
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprintln!("password (at least {} characters), then Enter:", password::MIN_CHARS);
            }
            std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
        }
    }
    let trimmed = zeroize::Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string());
    Ok(trimmed)
}

fn parsed_email(email: &str) -> anyhow::Result<EmailAddress> {
    EmailAddress::parse(email.trim()).map_err(|_| anyhow::anyhow!("--email: not an email address"))
}

async fn hashed(password: zeroize::Zeroizing<String>) -> anyhow::Result<String> {
    Ok(password::hash_blocking(password).await?)
}

/// Creates a user who is a member of `workspace` with `role`; prints the user id as JSON.
pub async fn create(
    args: &StoreArgs,
    email: &str,
    workspace: WorkspaceId,
    role: Role,
    password_file: Option<&Path>,
) -> anyhow::Result<()> {
    let email = parsed_email(email)?;
    let identity = EmailIdentity::of(&email);
    let secret = read_password(password_file)?;
    password::check(&secret, identity.local_part_len, &identity.local_part_digest)?;
    let topology = args.topology()?;
    let control = open_control(&topology.control).await?;
    let now = SystemClock.now();
    let row = identity.user(hashed(secret).await?, now);
    control.create_user(&row, workspace, role, &operator()).await?;
    let out = serde_json::json!({ "user_id": row.id.to_string(), "workspace_id": workspace.to_string(), "role": role.as_str() });
    println!("{out}");
    Ok(())
}

/// Sets a new password for the user with this email; every session of theirs ends.
pub async fn reset_password(args: &StoreArgs, email: &str, password_file: Option<&Path>) -> anyhow::Result<()> {
    let email = parsed_email(email)?;
    let topology = args.topology()?;
    let control = open_control(&topology.control).await?;
    let user = control.user_by_email(&email_digest(&email)).await?.ok_or_else(|| anyhow::anyhow!("no such user"))?;
    let secret = read_password(password_file)?;
    password::check(&secret, user.local_part_len, &user.local_part_digest)?;
    let chain = control.memberships_of(user.id).await?.first().map_or_else(system_workspace, |m| m.workspace_id);
    control.set_password(user.id, &hashed(secret).await?, None, SystemClock.now(), chain, &operator()).await?;
    println!("{}", serde_json::json!({ "user_id": user.id.to_string(), "sessions_ended": true }));
    Ok(())
}
