//! The audit log's upkeep: signing grown chain heads and pruning entries past their
//! workspace's plan retention.

use std::time::Duration;

use chimatic_audit::system_workspace;
use chimatic_domain::Timestamp;
use chimatic_store::{ControlStore, Store, StoreError};

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
