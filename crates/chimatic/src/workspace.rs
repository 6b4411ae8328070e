use crate::config::StoreArgs;
use crate::serve::open_store;

/// Creates a workspace and prints its id and one-time owner key as JSON on stdout.
pub async fn create(name: &str, args: &StoreArgs) -> anyhow::Result<()> {
    let name = name.trim();
    anyhow::ensure!(!name.is_empty() && name.chars().count() <= 100, "--name must be 1 to 100 characters");
    let (store, kek_source) = open_store(args).await?;
    if let chimatic_crypto::KekSource::Generated(path) = kek_source {
        eprintln!("generated a development key-encryption key at {} (mode 0600)", path.display());
    }
    let clock = chimatic_domain::SystemClock;
    let (ws, _owner, key) = store.create_workspace(name, chimatic_domain::Clock::now(&clock)).await?;
    let out = serde_json::json!({ "workspace_id": ws.to_string(), "api_key": key.expose() });
    println!("{out}");
    Ok(())
}
