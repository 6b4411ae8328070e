//! `chimatic`: the server and its command-line tools.

mod config;
mod fanout;
mod jobs;
mod keys;
mod serve;
mod stores;
mod tls;
mod workspace;

use clap::Parser;

use config::{Cli, Command, KeysCommand, WorkspaceCommand};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(args)),
        Command::Workspace { command: WorkspaceCommand::Create { name, region, store } } => {
            runtime.block_on(workspace::create(&name, region, &store))
        }
        Command::Migrate { store } => runtime.block_on(stores::migrate(&store)),
        Command::Keys { command: KeysCommand::InitPkcs11 { kek } } => runtime.block_on(keys::init_pkcs11(&kek)),
        Command::Keys { command: KeysCommand::RotateKek { store } } => runtime.block_on(keys::rotate_kek(&store)),
        Command::Keys { command: KeysCommand::Status { store } } => runtime.block_on(keys::status(&store)),
        Command::Doctor { store, production } => runtime.block_on(keys::doctor(&store, production)),
    }
}
