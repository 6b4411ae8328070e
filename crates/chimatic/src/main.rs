//! `chimatic`: the server and its command-line tools.

mod audit;
mod config;
mod connect_config;
mod keys;
mod serve;
mod stores;
mod tls;
mod user;
mod workspace;

use clap::Parser;

use config::{AuditCommand, Cli, Command, KeysCommand, UserCommand, WorkspaceCommand};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(*args)),
        Command::Workspace { command: WorkspaceCommand::Create { name, region, store } } => {
            runtime.block_on(workspace::create(&name, region, &store))
        }
        Command::Workspace {
            command: WorkspaceCommand::UseKms { workspace, endpoint, region, key_id, access_key_id, store },
        } => {
            let kms = chimatic_store::WorkspaceKms {
                endpoint,
                region,
                key_id,
                access_key_id,
                secret_access_key: std::env::var("CHIMATIC_KMS_SECRET_ACCESS_KEY")
                    .map_err(|_| anyhow::anyhow!("CHIMATIC_KMS_SECRET_ACCESS_KEY is required"))?,
                session_token: std::env::var("CHIMATIC_KMS_SESSION_TOKEN").ok(),
            };
            runtime.block_on(workspace::use_kms(workspace, kms, &store))
        }
        Command::Workspace { command: WorkspaceCommand::SetPayloadRetention { workspace, days, store } } => {
            runtime.block_on(workspace::set_payload_retention(&store, workspace, days))
        }
        Command::Workspace { command: WorkspaceCommand::Freeze { workspace, store } } => {
            runtime.block_on(workspace::set_frozen(&store, workspace, true))
        }
        Command::Workspace { command: WorkspaceCommand::Unfreeze { workspace, store } } => {
            runtime.block_on(workspace::set_frozen(&store, workspace, false))
        }
        Command::Workspace { command: WorkspaceCommand::SetPlan { workspace, plan, audit_retention_days, store } } => {
            runtime.block_on(audit::set_plan(&store, workspace, &plan, audit_retention_days))
        }
        Command::Audit { command: AuditCommand::Verify { workspace, file, public_key, store } } => {
            runtime.block_on(audit::verify(&store, workspace, file.as_deref(), &public_key))
        }
        Command::Audit { command: AuditCommand::Sign { store } } => runtime.block_on(audit::sign(&store)),
        Command::User { command: UserCommand::Create { email, workspace, role, password_file, store } } => {
            runtime.block_on(user::create(&store, &email, workspace, role, password_file.as_deref()))
        }
        Command::User { command: UserCommand::ResetPassword { email, password_file, store } } => {
            runtime.block_on(user::reset_password(&store, &email, password_file.as_deref()))
        }
        Command::Migrate { store } => runtime.block_on(stores::migrate(&store)),
        Command::Keys { command: KeysCommand::InitPkcs11 { kek } } => runtime.block_on(keys::init_pkcs11(&kek)),
        Command::Keys { command: KeysCommand::RotateKek { store } } => runtime.block_on(keys::rotate_kek(&store)),
        Command::Keys { command: KeysCommand::Status { store } } => runtime.block_on(keys::status(&store)),
        Command::Doctor { store, production } => runtime.block_on(keys::doctor(&store, production)),
        Command::Openapi { role } => {
            let document = chimatic_api::routes::document(role.planes());
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(())
        }
    }
}
