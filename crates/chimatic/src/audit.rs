//! `chimatic audit …`, and the audit upkeep of a data node: signing chain heads and pruning
//! entries past their workspace's retention.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use chimatic_audit::{ChainRecord, ExportLine, GENESIS, Stream, from_hex, to_hex, verify_chain};
use chimatic_domain::{Clock, SystemClock, WorkspaceId};
use chimatic_store::AuditLog;

use chimatic_delivery::sign_heads;

use crate::config::StoreArgs;
use crate::stores::{open_control, open_region};

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
