use chimatic_domain::{Clock, Region, SystemClock};

use crate::config::StoreArgs;
use crate::stores::{open_control, open_region};

/// Commands run here act as the operator (whoever can run the binary against the stores).
pub fn operator() -> chimatic_audit::AuditContext {
    chimatic_audit::AuditContext {
        actor: chimatic_audit::Actor::operator(),
        origin: chimatic_audit::Origin::new("", "chimatic-cli"),
    }
}

/// Creates a workspace in a region and prints its id, region and one-time owner key as JSON on stdout.
pub async fn create(name: &str, region: Option<Region>, args: &StoreArgs) -> anyhow::Result<()> {
    let name = name.trim();
    anyhow::ensure!(!name.is_empty() && name.chars().count() <= 100, "--name must be 1 to 100 characters");
    let topology = args.topology()?;
    let region = topology.region(&region.unwrap_or_else(|| args.primary_region.clone()))?;
    let control = open_control(&topology.control).await?;
    let (kek, origin) = args.kek().await?;
    if let crate::keys::KekOrigin::Local(chimatic_crypto::KekSource::Generated(path)) = origin {
        eprintln!("generated a development key-encryption key at {} (mode 0600)", path.display());
    }
    let store = open_region(region, &kek, &args.kek).await?;
    let (ws, _owner, key) = control.create_workspace(name, &store, SystemClock.now(), &operator()).await?;
    let out = serde_json::json!({ "workspace_id": ws.id.to_string(), "region": ws.region, "api_key": key.expose() });
    println!("{out}");
    Ok(())
}

/// Switches a workspace to its own KMS key (see `PUT /v1/workspace/kms`).
pub async fn use_kms(
    id: chimatic_domain::WorkspaceId,
    kms: chimatic_store::WorkspaceKms,
    args: &StoreArgs,
) -> anyhow::Result<()> {
    let topology = args.topology()?;
    let control = open_control(&topology.control).await?;
    let workspace = control.workspace(id).await?;
    let region = topology.region(&workspace.region)?;
    let (keks, _) = args.kek().await?;
    let store = open_region(region, &keks, &args.kek).await?;
    let kek_id = store.use_workspace_kms(id, kms, SystemClock.now(), &operator()).await?;
    println!("{}", serde_json::json!({ "workspace_id": id.to_string(), "kek_id": kek_id }));
    Ok(())
}

/// Freezes or unfreezes a workspace in the control store; running nodes see it on their next
/// request and their next delivery claim.
pub async fn set_frozen(args: &StoreArgs, id: chimatic_domain::WorkspaceId, frozen: bool) -> anyhow::Result<()> {
    let topology = args.topology()?;
    let control = open_control(&topology.control).await?;
    let now = SystemClock.now();
    let changed = if frozen {
        control.freeze(id, now, &operator()).await?
    } else {
        control.unfreeze(id, now, &operator()).await?
    };
    println!("{}", serde_json::json!({ "workspace_id": id.to_string(), "frozen": frozen, "changed": changed }));
    Ok(())
}

/// Sets a workspace's payload retention in days.
pub async fn set_payload_retention(
    args: &StoreArgs,
    id: chimatic_domain::WorkspaceId,
    days: u32,
) -> anyhow::Result<()> {
    let topology = args.topology()?;
    let control = open_control(&topology.control).await?;
    control.set_payload_retention(id, days, SystemClock.now(), &operator()).await?;
    println!("{}", serde_json::json!({ "workspace_id": id.to_string(), "payload_retention_days": days }));
    Ok(())
}
