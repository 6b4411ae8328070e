//! `chimatic audit …`, and the audit upkeep of a data node: signing chain heads and pruning
//! entries past their workspace's retention.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use chimatic_audit::{ChainRecord, ExportLine, GENESIS, Stream, from_hex, system_workspace, to_hex, verify_chain};
use chimatic_domain::{Clock, SystemClock, Timestamp, WorkspaceId};
use chimatic_store::{AuditLog, ControlStore, Store, StoreError};

use crate::config::StoreArgs;
use crate::stores::{open_control, open_region};

/// Deployment-level entries (KEK rotations, workspace deletions) are kept a year.
const SYSTEM_RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Signs every chain head that grew since its last signature, in this region's store and, on
/// a node of the primary region, the control store's.
pub async fn sign_heads(store: &Store, control: Option<&ControlStore>, now: Timestamp) -> Result<u64, StoreError> {
    let signer = store.audit_head_signer(now).await?;
    let mut signed = store.audit().sign_heads(&signer, now).await?;
    if let Some(control) = control {
        signed += control.audit().sign_heads(&signer, now).await?;
    }
    Ok(signed)
}

/// Removes entries past their workspace's plan retention from the old end of each chain; the
/// new start is signed in the same transaction, so the rest still verifies.
pub async fn prune(store: &Store, control: &ControlStore, primary: bool, now: Timestamp) -> Result<u64, StoreError> {
    let signer = store.audit_head_signer(now).await?;
    let mut logs = vec![store.audit()];
    if primary {
        logs.push(control.audit());
    }
    let mut removed = 0;
    for log in logs {
        for ws in log.workspaces().await? {
            let retention = if ws == system_workspace() {
                SYSTEM_RETENTION
            } else {
                match control.workspace(ws).await {
                    // A frozen workspace's log is kept whole until it is unfrozen (evidence).
                    Ok(w) if w.frozen_at.is_some() => continue,
                    Ok(w) => w.plan.audit_retention(),
                    Err(StoreError::NotFound) => continue,
                    Err(e) => return Err(e),
                }
            };
            removed += log.prune(ws, now.minus(retention), &signer, now).await?;
        }
    }
    Ok(removed)
}

/// `chimatic audit sign`: signs every chain's head now.
pub async fn sign(args: &StoreArgs) -> anyhow::Result<()> {
    let topology = args.topology()?;
    let control = open_control(&topology.control).await?;
    let (keks, _) = args.kek().await?;
    let now = SystemClock.now();
    let mut signed = 0;
    for (i, region) in topology.regions.iter().enumerate() {
        let store = open_region(region, &keks, &args.kek).await?;
        signed += sign_heads(&store, (i == 0).then_some(&*control), now).await?;
    }
    println!("signed {signed} chain heads");
    Ok(())
}

/// What `verify` found for one chain.
fn report(chain: &ChainRecord, trusted: Option<&[[u8; 32]]>) -> bool {
    let name = format!("{} {}", chain.workspace_id, chain.stream.as_str());
    match verify_chain(chain, trusted) {
        Ok(v) => {
            let signed = v.signed_through.map_or("no signed head yet".to_string(), |s| format!("signed through {s}"));
            let range = v.first_seq.map_or("none".to_string(), |f| format!("{f}–{}", v.last_seq));
            println!("{name}: ok — {} entries ({range}), {signed}", v.entries);
            true
        }
        Err(broken) => {
            println!("{name}: BROKEN — {broken}");
            false
        }
    }
}

/// `chimatic audit verify`: checks every chain (or one workspace's) in the stores, or in an
/// exported JSON Lines file. Exits non-zero if any chain is broken.
pub async fn verify(
    args: &StoreArgs,
    workspace: Option<WorkspaceId>,
    file: Option<&Path>,
    public_keys: &[String],
) -> anyhow::Result<()> {
    let pinned = public_keys
        .iter()
        .map(|k| from_hex::<32>(k.trim()).with_context(|| "--public-key must be 64 hex characters (an Ed25519 key)"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let chains = match file {
        Some(path) => {
            if pinned.is_empty() {
                println!(
                    "note: heads are checked against the public keys the file names; pin the deployment's key with \
                     --public-key (GET /v1/audit/public-key prints it)"
                );
            }
            (read_export(path)?, (!pinned.is_empty()).then_some(pinned))
        }
        None => {
            let (chains, mut trusted) = read_stores(args, workspace).await?;
            trusted.extend(pinned);
            for key in &trusted {
                println!("trusted head-signing key: {}", to_hex(key));
            }
            (chains, Some(trusted))
        }
    };
    let (mut chains, trusted) = chains;
    chains.retain(|c| workspace.is_none_or(|w| c.workspace_id == w));
    let mut ok = true;
    for chain in &chains {
        ok &= report(chain, trusted.as_deref());
    }
    anyhow::ensure!(ok, "the audit log has been tampered with (see above)");
    println!("verified {} chains", chains.len());
    Ok(())
}

async fn read_log(log: &AuditLog, workspace: Option<WorkspaceId>) -> anyhow::Result<Vec<ChainRecord>> {
    let mut chains = Vec::new();
    for ws in log.workspaces().await? {
        if workspace.is_none_or(|w| w == ws) {
            chains.push(log.chain_record(ws).await?);
        }
    }
    Ok(chains)
}

/// Every chain in the stores, and the public keys of the regions' head signers (derived from
/// keys the KEK wraps, so a forged head cannot bring its own key).
async fn read_stores(
    args: &StoreArgs,
    workspace: Option<WorkspaceId>,
) -> anyhow::Result<(Vec<ChainRecord>, Vec<[u8; 32]>)> {
    let topology = args.topology()?;
    let control = open_control(&topology.control).await?;
    let (keks, _) = args.kek().await?;
    let mut chains = read_log(control.audit(), workspace).await?;
    let mut trusted = Vec::new();
    for region in &topology.regions {
        let store = open_region(region, &keks, &args.kek).await?;
        trusted.extend(store.audit_head_public_key().await?);
        chains.extend(read_log(store.audit(), workspace).await?);
    }
    Ok((chains, trusted))
}

fn empty_chain(workspace_id: WorkspaceId, stream: Stream) -> ChainRecord {
    ChainRecord {
        workspace_id,
        stream,
        anchor_seq: 0,
        anchor_hash: GENESIS,
        next_seq: None,
        entries: Vec::new(),
        heads: Vec::new(),
    }
}

/// Chains as exported by `GET /v1/audit/export`.
fn read_export(path: &Path) -> anyhow::Result<Vec<ChainRecord>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut chains: BTreeMap<(WorkspaceId, Stream), ChainRecord> = BTreeMap::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = || format!("line {} of {} is not an audit export line", n + 1, path.display());
        let parsed: ExportLine = serde_json::from_str(&line).with_context(bad)?;
        let (ws, stream) = match &parsed {
            ExportLine::Anchor(a) => (a.workspace_id, a.stream),
            ExportLine::Head(h) => (h.workspace_id, h.stream),
            ExportLine::Entry(e) => (e.workspace_id, e.stream),
        };
        let chain = chains.entry((ws, stream)).or_insert_with(|| empty_chain(ws, stream));
        match parsed {
            ExportLine::Anchor(a) => {
                chain.anchor_seq = a.seq;
                chain.anchor_hash = from_hex(&a.hash).with_context(bad)?;
                chain.next_seq = Some(a.next_seq);
            }
            ExportLine::Head(h) => chain.heads.push(h.to_head().with_context(bad)?),
            ExportLine::Entry(e) => chain.entries.push(e.to_entry().with_context(bad)?),
        }
    }
    Ok(chains.into_values().collect())
}

/// `chimatic workspace set-plan`.
pub async fn set_plan(
    args: &StoreArgs,
    workspace: WorkspaceId,
    plan: &str,
    audit_retention_days: Option<u32>,
) -> anyhow::Result<()> {
    let plan = chimatic_domain::Plan::new(plan, audit_retention_days)?;
    let topology = args.topology()?;
    let control = open_control(&topology.control).await?;
    control.set_plan(workspace, plan, SystemClock.now(), &crate::workspace::operator()).await?;
    println!(
        "{}",
        serde_json::json!({
            "workspace_id": workspace.to_string(),
            "plan": plan.name(),
            "audit_retention_days": plan.audit_retention_days(),
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use chimatic_audit::AuditContext;
    use chimatic_domain::{ManualClock, Region, Timestamp};
    use chimatic_store::{ControlStore, Keyring, SqliteBackend, Store};

    use super::prune;

    #[tokio::test]
    async fn a_frozen_workspaces_audit_log_is_not_pruned_until_it_is_unfrozen() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| dir.path().join(name);
        let control = ControlStore::new(Arc::new(SqliteBackend::open_control(&open("control.db")).unwrap()));
        let kek = Arc::new(chimatic_crypto::LocalKek::from_bytes(&[7u8; 32]).unwrap());
        let keyring = Keyring::new(kek, Arc::new(ManualClock::new(Timestamp(0))));
        let data = Arc::new(SqliteBackend::open_data(&open("data.db")).unwrap());
        let vault = Arc::new(SqliteBackend::open_vault(&open("vault.db")).unwrap());
        let store = Store::connect(Region::primary_default(), data, vault, keyring).await.unwrap();
        let by = AuditContext::system();
        let t0 = Timestamp(1_795_478_400_000);
        let (ws, _, _) = control.create_workspace("acme", &store, t0, &by).await.unwrap();
        store.audit().record(ws.id, by.event(t0, "test.event", "thing", 1)).await.unwrap();
        control.freeze(ws.id, t0, &by).await.unwrap();
        // Past the free plan's 7 days: a frozen workspace's entries all stay.
        let later = t0.plus(Duration::from_secs(8 * 24 * 3600));
        assert_eq!(prune(&store, &control, true, later).await.unwrap(), 0);
        // Unfrozen: the three old entries go (created and frozen in the control chain, the test
        // event in the data chain); the unfreeze itself is new and stays.
        control.unfreeze(ws.id, later, &by).await.unwrap();
        assert_eq!(prune(&store, &control, true, later).await.unwrap(), 3);
    }
}
