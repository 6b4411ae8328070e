//! Store behaviour that depends on time, with injected timestamps (no waiting): background jobs
//! on both backends — the idempotency purge removes only claims past their window, inbound
//! provider webhooks go after 30 days, and on
//! PostgreSQL a node that does not hold the job's advisory lock does nothing — and the expiry
//! and scope of subscriber tokens.

#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::sync::Arc;
use std::time::Duration;

use chimatic_audit::AuditContext;
use chimatic_crypto::LocalKek;
use chimatic_domain::{
    ChannelAddress, IntegrationCredentials, IntegrationSettings, ManualClock, OutboundTls, PhoneNumber, Region,
    Sensitive, SubscriberScope, Timestamp, WebhookUrl, WorkspaceId,
};
use chimatic_domain::{Role, UserId};
use chimatic_store::records::Enqueued;
use chimatic_store::{
    ControlStore, DataBackend, Keyring, NewInbound, NewNotification, PostgresBackend, SqliteBackend, StatsRow, Store,
    StoreError, UserRow, VaultBackend,
};
use sqlx::Connection;

const HOUR: Duration = Duration::from_secs(3600);

fn keyring() -> Keyring {
    Keyring::new(Arc::new(LocalKek::from_bytes(&[7u8; 32]).unwrap()), Arc::new(ManualClock::new(Timestamp(0))))
}

async fn store(data: Arc<dyn DataBackend>, vault: Arc<dyn VaultBackend>) -> Store {
    Store::connect(Region::primary_default(), data, vault, keyring()).await.unwrap()
}

fn keyed(channel: chimatic_domain::ChannelId, i: usize) -> NewNotification {
    NewNotification {
        channel_id: channel,
        payload: Sensitive::new(b"{}".to_vec()),
        idempotency_key: Some(Sensitive::new(format!("order-{i}"))),
    }
}

/// A workspace with a channel and `n` notifications with idempotency keys, accepted at `t0`.
async fn with_claims(store: &Store, t0: Timestamp, n: usize) -> (WorkspaceId, chimatic_domain::ChannelId) {
    let ws = WorkspaceId::generate();
    store.provision_workspace(ws, t0).await.unwrap();
    let url = WebhookUrl::parse("https://receiver.example/hook", false).unwrap();
    let (channel, _) = store
        .create_channel(ws, url, OutboundTls::default(), t0, &chimatic_audit::AuditContext::system())
        .await
        .unwrap();
    let out = store.enqueue_batch(ws, (0..n).map(|i| keyed(channel.id, i)).collect(), t0).await.unwrap();
    assert!(out.iter().all(|o| matches!(o, Enqueued::Created(_))));
    (ws, channel.id)
}

async fn purge_removes_only_expired_claims(store: &Store) {
    let t0 = Timestamp(1_795_478_400_000);
    let (ws, channel) = with_claims(store, t0, 25).await;
    assert_eq!(store.purge_expired_idempotency_keys(t0.plus(23 * HOUR), 10).await.unwrap(), 0);
    // Still inside the window: the same key returns the original.
    let again = store.enqueue(ws, keyed(channel, 0), t0.plus(23 * HOUR)).await.unwrap();
    assert!(matches!(again, Enqueued::Existing(_)));
    // Past it: removed in batches of 10, all 25.
    assert_eq!(store.purge_expired_idempotency_keys(t0.plus(25 * HOUR), 10).await.unwrap(), 25);
    assert_eq!(store.purge_expired_idempotency_keys(t0.plus(25 * HOUR), 10).await.unwrap(), 0);
}

/// Inbound webhooks go after 30 days, oldest first in batches; the suppressions they caused stay.
async fn inbound_history_is_kept_thirty_days(store: &Store) {
    let day = 24 * HOUR;
    let t0 = Timestamp(1_795_478_400_000);
    let ws = WorkspaceId::generate();
    store.provision_workspace(ws, t0).await.unwrap();
    let settings = IntegrationSettings::Sms {
        base_url: "https://sms.example".into(),
        account_id: "AC1".into(),
        from: "+14155550100".into(),
    };
    let credentials = IntegrationCredentials::Sms { auth_token: "t".into() };
    let integration = store
        .create_integration(ws, "sms", settings, &credentials, t0, &chimatic_audit::AuditContext::system())
        .await
        .unwrap();
    let phone = [ChannelAddress::Sms(PhoneNumber::parse("+14155550123").unwrap())];
    for (i, at) in [t0, t0.plus(day), t0.plus(20 * day)].into_iter().enumerate() {
        let event_id = format!("SM{i}:failed");
        let inbound = NewInbound {
            integration_id: integration.id,
            provider_event_id: &event_id,
            kind: "permanent_failure",
            provider_status: "failed",
            code: Some("30005"),
            recipients: &phone,
            suppress: Some("hard_bounce"),
        };
        assert!(store.record_inbound(ws, inbound, at).await.unwrap());
    }
    assert_eq!(store.purge_inbound_events(t0.plus(30 * day), 30 * day, 1).await.unwrap(), 0, "none is 30 days old");
    assert_eq!(store.purge_inbound_events(t0.plus(32 * day), 30 * day, 1).await.unwrap(), 1, "one per batch");
    assert_eq!(store.purge_inbound_events(t0.plus(32 * day), 30 * day, 10).await.unwrap(), 1);
    assert_eq!(store.purge_inbound_events(t0.plus(32 * day), 30 * day, 10).await.unwrap(), 0);
    assert_eq!(store.inbound_events(ws, integration.id, None, 10).await.unwrap().len(), 1, "the 20-day-old one stays");
    assert_eq!(store.list_suppressions(ws, None, 10).await.unwrap().len(), 1, "the suppression stays");
}

/// Audit retention with driven time: a chain of entries a day apart is pruned from the old end
/// to its cut-off, and what is left still verifies against the signed head written with the
/// new anchor; nothing newer than the cut-off goes.
async fn audit_retention_keeps_the_chain_verifiable(store: &Store) {
    use chimatic_audit::{AuditContext, verify_chain};
    let day = 24 * HOUR;
    let t0 = Timestamp(1_795_478_400_000);
    let ws = WorkspaceId::generate();
    for i in 0..10u32 {
        let at = t0.plus(day * i);
        store.audit().record(ws, AuditContext::system().event(at, "test.event", "thing", i)).await.unwrap();
    }
    let now = t0.plus(day * 10);
    let signer = store.audit_head_signer(now).await.unwrap();
    assert_eq!(store.audit().sign_heads(&signer, now).await.unwrap(), 1);
    let keys = [signer.public_key()];
    // Seven days' retention: entries from days 0, 1 and 2 are older than the cut-off.
    let removed = store.audit().prune(ws, now.minus(7 * day), &signer, now).await.unwrap();
    assert_eq!(removed, 3);
    let chain = store.audit().chain_record(ws).await.unwrap();
    let verified = verify_chain(&chain, Some(&keys)).unwrap();
    assert_eq!((verified.entries, verified.first_seq, verified.last_seq), (7, Some(4), 10));
    assert_eq!(chain.anchor_seq, 3);
    // Pruning again at the same time removes nothing more.
    assert_eq!(store.audit().prune(ws, now.minus(7 * day), &signer, now).await.unwrap(), 0);
    // New entries chain on from the pruned log.
    store.audit().record(ws, AuditContext::system().event(now, "test.event", "thing", 11)).await.unwrap();
    let chain = store.audit().chain_record(ws).await.unwrap();
    assert_eq!(verify_chain(&chain, Some(&keys)).unwrap().last_seq, 11);
}

/// Channel deactivation and purge with driven time: queued notifications are cancelled at once
/// and nothing more is sent; the channel can be reactivated inside its window; the purge leaves
/// a frozen workspace alone, does nothing before the window ends, then removes the channel, its
/// secret and its notifications (in batches) and nothing else; every step is in the audit chain.
async fn deactivated_channels_are_purged_after_their_window(store: &Store) {
    use chimatic_audit::AuditContext;
    use chimatic_store::StoreError;
    use chimatic_store::records::ChannelEntry;
    use std::collections::BTreeSet;
    let day = 24 * HOUR;
    let by = AuditContext::system();
    let t0 = Timestamp(1_795_478_400_000);
    let (ws, channel) = with_claims(store, t0, 1500).await;
    let url = WebhookUrl::parse("https://other.example/hook", false).unwrap();
    let (kept, _) = store.create_channel(ws, url, OutboundTls::default(), t0, &by).await.unwrap();
    store.enqueue_batch(ws, (0..3).map(|i| keyed(kept.id, 5000 + i)).collect(), t0).await.unwrap();

    let (deactivated, cancelled) = store.deactivate_channel(ws, channel, t0.plus(HOUR), 30 * day, &by).await.unwrap();
    assert_eq!(cancelled, 1500);
    assert_eq!(deactivated.purge_at, t0.plus(HOUR).plus(30 * day));
    assert!(matches!(store.channel(ws, channel).await.unwrap(), ChannelEntry::Deactivated(_)));
    assert!(matches!(store.enqueue(ws, keyed(channel, 9999), t0.plus(HOUR)).await, Err(StoreError::Conflict(_))));
    assert!(matches!(
        store.deactivate_channel(ws, channel, t0.plus(HOUR), 30 * day, &by).await,
        Err(StoreError::Conflict(_))
    ));
    // Only the other channel's notifications are still due.
    let claimed = store.claim_due(t0.plus(2 * HOUR), Duration::from_secs(60), 5000).await.unwrap();
    assert_eq!(claimed.len(), 3);
    store.release_claims(&claimed, t0.plus(2 * HOUR)).await.unwrap();

    let none_frozen = BTreeSet::new();
    assert_eq!(store.purge_deactivated_channels(t0.plus(30 * day), &none_frozen, 1000).await.unwrap(), 0);
    store.reactivate_channel(ws, channel, t0.plus(2 * day), &by).await.unwrap();
    assert!(matches!(store.reactivate_channel(ws, channel, t0.plus(2 * day), &by).await, Err(StoreError::Conflict(_))));
    // Reactivated: a new window starts at the next deactivation.
    let t1 = t0.plus(3 * day);
    let (_, cancelled) = store.deactivate_channel(ws, channel, t1, 30 * day, &by).await.unwrap();
    assert_eq!(cancelled, 0);
    assert_eq!(store.purge_deactivated_channels(t1.plus(30 * day).minus(HOUR), &none_frozen, 1000).await.unwrap(), 0);
    let frozen: BTreeSet<WorkspaceId> = [ws].into();
    assert_eq!(store.purge_deactivated_channels(t1.plus(30 * day), &frozen, 1000).await.unwrap(), 0);
    assert!(matches!(store.channel(ws, channel).await.unwrap(), ChannelEntry::Deactivated(_)));
    // Once its window has ended it can no longer be reactivated, even before the purger runs.
    assert!(matches!(
        store.reactivate_channel(ws, channel, t1.plus(30 * day), &by).await,
        Err(StoreError::Conflict(_))
    ));

    assert_eq!(store.purge_deactivated_channels(t1.plus(30 * day), &none_frozen, 1000).await.unwrap(), 1);
    assert!(matches!(store.channel(ws, channel).await, Err(StoreError::NotFound)));
    assert!(matches!(store.signing_secret(ws, channel).await, Err(StoreError::NotFound)));
    assert!(matches!(store.channel(ws, kept.id).await.unwrap(), ChannelEntry::Active(_)));
    assert!(store.signing_secret(ws, kept.id).await.is_ok());
    let claimed = store.claim_due(t1.plus(31 * day), Duration::from_secs(60), 5000).await.unwrap();
    assert_eq!(claimed.len(), 3, "the other channel's notifications are untouched");

    let chain = store.audit().chain_record(ws).await.unwrap();
    let actions: Vec<(&str, &str)> = chain
        .entries
        .iter()
        .filter(|e| e.event.action.starts_with("channel."))
        .map(|e| (e.event.action.as_str(), e.event.detail.as_str()))
        .collect();
    let purge_at = t0.plus(HOUR).plus(30 * day).to_rfc3339();
    let second_purge_at = t1.plus(30 * day).to_rfc3339();
    assert_eq!(
        actions,
        vec![
            ("channel.created", actions[0].1),
            ("channel.created", actions[1].1),
            ("channel.deactivated", format!(r#"{{"cancelled":1500,"purge_at":"{purge_at}"}}"#).as_str()),
            ("channel.reactivated", "{}"),
            ("channel.deactivated", format!(r#"{{"cancelled":0,"purge_at":"{second_purge_at}"}}"#).as_str()),
            ("channel.purged", r#"{"attempts":0,"notifications":1500}"#),
        ]
    );
    chimatic_audit::verify_chain(&chain, None).unwrap();
}

/// Payload retention with driven time: a finished notification's content goes once it is older
/// than its workspace's retention, its status and attempts stay; pending ones, newer ones,
/// another workspace with a longer retention and a frozen workspace keep theirs.
async fn notification_content_is_removed_after_its_retention(store: &Store) {
    use chimatic_store::QueueOutcome;
    use chimatic_store::records::AttemptDetail;
    use std::collections::BTreeSet;
    let day = 24 * HOUR;
    let t0 = Timestamp(1_795_478_400_000);
    let (ws, channel) = with_claims(store, t0, 3).await;
    let (long_ws, _) = with_claims(store, t0, 2).await;
    let detail = AttemptDetail { status_code: Some(200), latency_ms: 5, error_class: None, integration_id: None };
    // Everything accepted so far is delivered, except one of `ws`'s, which stays queued.
    let mut claimed = store.claim_due(t0, Duration::from_secs(60), 100).await.unwrap();
    let pending = claimed.iter().position(|j| j.workspace_id == ws).unwrap();
    let pending = claimed.remove(pending);
    store.release_claims(std::slice::from_ref(&pending), t0.plus(365 * day)).await.unwrap();
    for job in &claimed {
        store.complete_attempt(job, t0, true, &detail, QueueOutcome::Delivered, t0).await.unwrap();
    }
    // Committed by the group committer; wait until all four are recorded.
    for _ in 0..100 {
        let mut done = 0;
        for job in &claimed {
            if store.notification(job.workspace_id, job.notification_id).await.unwrap().status
                == chimatic_domain::NotificationStatus::Delivered
            {
                done += 1;
            }
        }
        if done == claimed.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let newer = match store.enqueue(ws, keyed(channel, 99), t0.plus(20 * day)).await.unwrap() {
        Enqueued::Created(id) => id,
        Enqueued::Existing(_) => unreachable!(),
    };
    let retentions = [(ws, 30), (long_ws, 90)];
    let none_frozen = BTreeSet::new();
    assert_eq!(store.remove_expired_payloads(t0.plus(30 * day), &retentions, &none_frozen, 1).await.unwrap(), 0);
    let frozen: BTreeSet<WorkspaceId> = [ws].into();
    let later = t0.plus(30 * day).plus(HOUR);
    assert_eq!(store.remove_expired_payloads(later, &retentions, &frozen, 1).await.unwrap(), 0);
    // Batches of one: the job goes on until the backlog is done.
    assert_eq!(store.remove_expired_payloads(later, &retentions, &none_frozen, 1).await.unwrap(), 2);
    for job in &claimed {
        let n = store.notification(job.workspace_id, job.notification_id).await.unwrap();
        assert_eq!(n.payload.is_none(), job.workspace_id == ws, "only the 30-day workspace's content goes");
        assert_eq!(n.status, chimatic_domain::NotificationStatus::Delivered);
        assert_eq!(store.attempts(job.workspace_id, job.notification_id).await.unwrap().len(), 1);
    }
    assert!(store.notification(ws, pending.notification_id).await.unwrap().payload.is_some(), "pending keeps it");
    assert!(store.notification(ws, newer).await.unwrap().payload.is_some(), "newer keeps it");
    assert_eq!(store.remove_expired_payloads(later, &retentions, &none_frozen, 1).await.unwrap(), 0);
}

/// Workspace deletion with driven time, with a second node: deliveries on the wire when it
/// starts record nothing once it is done; a row another node writes afterwards (with the keys it
/// still held in memory) is erased by the last sweep an hour later, which then forgets the
/// tombstone; the other workspace is untouched and the system chain records both steps.
async fn deleted_workspaces_are_swept_once_more_then_forgotten(
    node: &Store,
    other_node: &Store,
    control: &ControlStore,
) {
    use chimatic_audit::AuditContext;
    use chimatic_store::records::{AttemptDetail, ChannelEntry};
    use chimatic_store::{ERASURE_SWEEP_DELAY, QueueOutcome};
    let by = AuditContext::system();
    let t0 = Timestamp(1_795_478_400_000);
    let url = |host: &str| WebhookUrl::parse(&format!("https://{host}.example/hook"), false).unwrap();
    let (doomed, _, _) = control.create_workspace("doomed", node, t0, &by).await.unwrap();
    let (kept, _, _) = control.create_workspace("kept", node, t0, &by).await.unwrap();
    let ws = doomed.id;
    let (channel, _) = node.create_channel(ws, url("a"), OutboundTls::default(), t0, &by).await.unwrap();
    let (kept_channel, _) = node.create_channel(kept.id, url("b"), OutboundTls::default(), t0, &by).await.unwrap();
    node.enqueue_batch(ws, (0..2).map(|i| keyed(channel.id, i)).collect(), t0).await.unwrap();
    node.enqueue(kept.id, keyed(kept_channel.id, 0), t0).await.unwrap();
    // The other node serves the workspace too, so it holds its DEKs in memory, and it is
    // delivering its notifications when the deletion starts.
    other_node.create_channel(ws, url("c"), OutboundTls::default(), t0, &by).await.unwrap();
    let on_the_wire = other_node.claim_due(t0, Duration::from_secs(60), 10).await.unwrap();
    assert_eq!(on_the_wire.len(), 3);

    let t1 = t0.plus(HOUR);
    let receipt = control.delete_workspace(ws, node, t1, &by).await.unwrap();
    assert_eq!((receipt["data.notifications"], receipt["data.channels"], receipt["vault.secrets"]), (2, 2, 2));
    assert!(matches!(control.workspace(ws).await, Err(StoreError::NotFound)));
    // The deliveries finish after the deletion: only the other workspace's is recorded.
    let detail = AttemptDetail { status_code: Some(200), latency_ms: 5, error_class: None, integration_id: None };
    for job in &on_the_wire {
        let recorded = other_node.complete_attempt(job, t1, true, &detail, QueueOutcome::Delivered, t1).await.unwrap();
        assert_eq!(recorded, job.workspace_id == kept.id);
        // On the node that deleted it, where the workspace's keys are gone from memory too.
        if job.workspace_id == ws {
            assert!(!node.complete_attempt(job, t1, false, &detail, QueueOutcome::Failed, t1).await.unwrap());
        }
    }
    // A request the other node had let through before the deletion writes after it.
    let (straggler, _) = other_node.create_channel(ws, url("d"), OutboundTls::default(), t1, &by).await.unwrap();
    // Delivery counts gathered before the deletion and written after it are dropped.
    let counts = StatsRow { period: 20_000 * 24, accepted: 2, attempts: 0, delivered: 0, failed: 0 };
    control.add_stats(&[(ws, counts), (kept.id, counts)]).await.unwrap();
    assert_eq!(control.daily_stats(kept.id, 20_000, 20_000).await.unwrap().len(), 1);

    // Not before the delay: the tombstone and the straggler stay.
    let early = t1.plus(ERASURE_SWEEP_DELAY).minus(Duration::from_secs(1));
    assert!(control.sweep_deletions(node, early).await.unwrap().is_empty());
    assert!(matches!(other_node.channel(ws, straggler.id).await.unwrap(), ChannelEntry::Active(_)));
    let swept = control.sweep_deletions(node, t1.plus(ERASURE_SWEEP_DELAY)).await.unwrap();
    assert_eq!(swept.len(), 1);
    let (swept_ws, found) = &swept[0];
    assert_eq!(*swept_ws, ws);
    let stragglers: Vec<(&str, u64)> =
        found.iter().filter(|(_, n)| **n > 0).map(|(table, n)| (table.as_str(), *n)).collect();
    assert_eq!(
        stragglers,
        vec![("data.audit_chains", 1), ("data.audit_log", 1), ("data.channels", 1), ("vault.secrets", 1)],
        "exactly the straggler's rows: no attempt, no audit entry of a delivery"
    );
    assert!(matches!(other_node.channel(ws, straggler.id).await, Err(StoreError::NotFound)));
    // Forgotten: the next sweep has nothing to do.
    assert!(control.sweep_deletions(node, t1.plus(2 * ERASURE_SWEEP_DELAY)).await.unwrap().is_empty());

    let kept_job = on_the_wire.iter().find(|j| j.workspace_id == kept.id).unwrap();
    assert_eq!(node.attempts(kept.id, kept_job.notification_id).await.unwrap().len(), 1);
    assert!(matches!(node.channel(kept.id, kept_channel.id).await.unwrap(), ChannelEntry::Active(_)));
    let system = control.audit().chain_record(chimatic_audit::system_workspace()).await.unwrap();
    let steps: Vec<&str> = system
        .entries
        .iter()
        .filter(|e| e.event.target.id == ws.to_string())
        .map(|e| e.event.action.as_str())
        .collect();
    assert_eq!(steps, vec!["workspace.deleted", "workspace.erasure_swept"]);
    chimatic_audit::verify_chain(&system, None).unwrap();
}

/// Once the purger has begun on a channel, a node whose clock is behind (and so still sees the
/// window open) cannot reactivate it: its secret may already be gone.
async fn a_channel_being_purged_cannot_be_reactivated(store: &Store, data: &dyn DataBackend) {
    use chimatic_audit::AuditContext;
    use chimatic_store::StoreError;
    use chimatic_store::records::ChannelEntry;
    let (day, by) = (24 * HOUR, AuditContext::system());
    let t0 = Timestamp(1_795_478_400_000);
    let (ws, channel) = with_claims(store, t0, 1).await;
    store.deactivate_channel(ws, channel, t0, 30 * day, &by).await.unwrap();
    assert!(!data.start_channel_purge(ws, channel, t0.plus(29 * day)).await.unwrap(), "not due yet");
    assert!(data.start_channel_purge(ws, channel, t0.plus(30 * day)).await.unwrap());
    let behind = t0.plus(29 * day);
    assert!(matches!(store.reactivate_channel(ws, channel, behind, &by).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.channel(ws, channel).await.unwrap(), ChannelEntry::Deactivated(_)));
}

/// Two nodes of one region over the same backends, each with its own key cache.
async fn two_nodes(data: Arc<dyn DataBackend>, vault: Arc<dyn VaultBackend>) -> (Store, Store) {
    (store(data.clone(), vault.clone()).await, store(data, vault).await)
}

/// A region's data and vault backends and a control store, on one dialect: SQLite files in a
/// temporary directory, or fresh PostgreSQL databases dropped by [`Backends::close`].
struct Backends {
    data: Arc<dyn DataBackend>,
    vault: Arc<dyn VaultBackend>,
    control: ControlStore,
    _dir: Option<tempfile::TempDir>,
    /// The admin URL and the databases made for this test, on PostgreSQL.
    postgres: Option<(String, [String; 3])>,
}

impl Backends {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| dir.path().join(name);
        Self {
            data: Arc::new(SqliteBackend::open_data(&open("data.db")).unwrap()),
            vault: Arc::new(SqliteBackend::open_vault(&open("vault.db")).unwrap()),
            control: ControlStore::new(Arc::new(SqliteBackend::open_control(&open("control.db")).unwrap())),
            _dir: Some(dir),
            postgres: None,
        }
    }

    async fn postgres() -> Self {
        let admin = std::env::var("CHIMATIC_TEST_POSTGRES_URL")
            .expect("CHIMATIC_TEST_POSTGRES_URL must name a PostgreSQL admin URL (scripts/test starts one)");
        let urls = [
            fresh_pg_database(&admin, "data").await,
            fresh_pg_database(&admin, "vault").await,
            fresh_pg_database(&admin, "control").await,
        ];
        Self {
            data: Arc::new(PostgresBackend::open_data(&urls[0]).await.unwrap()),
            vault: Arc::new(PostgresBackend::open_vault(&urls[1]).await.unwrap()),
            control: ControlStore::new(Arc::new(PostgresBackend::open_control(&urls[2]).await.unwrap())),
            _dir: None,
            postgres: Some((admin, urls)),
        }
    }

    async fn store(&self) -> Store {
        store(self.data.clone(), self.vault.clone()).await
    }

    async fn close(self) {
        let Self { data, vault, control, postgres, .. } = self;
        drop((data, vault, control));
        if let Some((admin, urls)) = postgres {
            drop_pg_databases(&admin, &urls.iter().map(String::as_str).collect::<Vec<_>>()).await;
        }
    }
}

/// One test per backend for each scenario: `name::sqlite` and `name::postgres`.
macro_rules! on_both_backends {
    ($($name:ident($b:ident) $body:block)*) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let $b = Backends::sqlite().await;
                $body
                $b.close().await;
            }

            #[tokio::test]
            async fn postgres() {
                let $b = Backends::postgres().await;
                $body
                $b.close().await;
            }
        }
    )*};
}

on_both_backends! {
    deleted_workspaces_are_swept_once_more_then_forgotten(b) {
        let (node, other_node) = two_nodes(b.data.clone(), b.vault.clone()).await;
        super::deleted_workspaces_are_swept_once_more_then_forgotten(&node, &other_node, &b.control).await;
    }
    a_channel_being_purged_cannot_be_reactivated(b) {
        super::a_channel_being_purged_cannot_be_reactivated(&b.store().await, &*b.data).await;
    }
    notification_content_is_removed_after_its_retention(b) {
        super::notification_content_is_removed_after_its_retention(&b.store().await).await;
    }
    deactivated_channels_are_purged_after_their_window(b) {
        super::deactivated_channels_are_purged_after_their_window(&b.store().await).await;
    }
    audit_retention_keeps_the_chain_verifiable(b) {
        super::audit_retention_keeps_the_chain_verifiable(&b.store().await).await;
    }
    a_membership_decides_every_console_session(b) {
        super::a_membership_decides_every_console_session(&b.store().await, &b.control).await;
    }
    the_queue_depth_counts_due_leased_and_waiting_work(b) {
        super::the_queue_depth_counts_due_leased_and_waiting_work(&b.store().await).await;
    }
    an_sso_flow_is_taken_once_by_its_browser_before_it_expires(b) {
        super::an_sso_flow_is_taken_once_by_its_browser_before_it_expires(&b.control).await;
    }
    a_connect_flow_is_taken_once_by_its_session_in_its_workspace_before_it_expires(b) {
        super::a_connect_flow_is_taken_once_by_its_session_in_its_workspace_before_it_expires(
            &b.store().await,
            &b.control,
        )
        .await;
    }
    delivery_counts_are_kept_per_hour_and_summed_per_day(b) {
        super::delivery_counts_are_kept_per_hour_and_summed_per_day(&b.store().await, &b.control).await;
    }
    background_purges_remove_only_what_has_expired(b) {
        let store = b.store().await;
        purge_removes_only_expired_claims(&store).await;
        inbound_history_is_kept_thirty_days(&store).await;
    }
}

/// Due work (and work whose lease ran out) is due; leased work is in flight; a retry set for
/// later waits; the oldest due time says how far behind delivery runs. Per workspace.
async fn the_queue_depth_counts_due_leased_and_waiting_work(store: &Store) {
    use chimatic_store::QueueDepth;
    let t0 = Timestamp(1_795_478_400_000);
    let (ws, _) = with_claims(store, t0, 3).await;
    let (other, _) = with_claims(store, t0.plus(Duration::from_secs(5)), 1).await;
    let later = t0.plus(Duration::from_secs(10));
    let all_due = QueueDepth { queued: 3, due: 3, in_flight: 0, oldest_due: Some(t0) };
    assert_eq!(store.queue_depth(ws, later).await.unwrap(), all_due);
    assert_eq!(store.queue_depth(other, later).await.unwrap().queued, 1);

    let mut leased = store.claim_due(later, Duration::from_secs(60), 100).await.unwrap();
    leased.retain(|j| j.workspace_id == ws);
    assert_eq!(leased.len(), 3);
    store.release_claims(&leased[..1], later.plus(HOUR)).await.unwrap();
    let depth = store.queue_depth(ws, later).await.unwrap();
    assert_eq!(depth, QueueDepth { queued: 3, due: 0, in_flight: 2, oldest_due: None });
    // Once the leases run out, the two are due again, the one set for later still waits.
    let expired = later.plus(Duration::from_secs(61));
    let depth = store.queue_depth(ws, expired).await.unwrap();
    assert_eq!((depth.queued, depth.due, depth.in_flight), (3, 2, 0));
    assert_eq!(depth.oldest_due, Some(later.plus(Duration::from_secs(60))));
    assert_eq!(store.queue_depth(WorkspaceId::generate(), expired).await.unwrap(), QueueDepth::default());
}

async fn an_sso_flow_is_taken_once_by_its_browser_before_it_expires(control: &ControlStore) {
    let t0 = Timestamp(1_795_478_400_000);
    let flow = |browser: u8, expires_at| chimatic_store::SsoFlowRow {
        pre_session_digest: [browser; 32],
        nonce: "n".repeat(43),
        pkce_verifier: "v".repeat(43),
        expires_at,
    };
    let ten_minutes = Duration::from_secs(600);
    control.put_sso_flow(&[1; 32], &flow(7, t0.plus(ten_minutes)), t0).await.unwrap();
    assert_eq!(control.take_sso_flow(&[1; 32], &[8; 32], t0).await.unwrap(), None, "another browser's");
    assert_eq!(control.take_sso_flow(&[1; 32], &[7; 32], t0).await.unwrap(), Some(flow(7, t0.plus(ten_minutes))));
    assert_eq!(control.take_sso_flow(&[1; 32], &[7; 32], t0).await.unwrap(), None, "used once");
    control.put_sso_flow(&[2; 32], &flow(7, t0.plus(ten_minutes)), t0).await.unwrap();
    let late = t0.plus(ten_minutes);
    assert_eq!(control.take_sso_flow(&[2; 32], &[7; 32], late).await.unwrap(), None, "expired");
    // An abandoned flow goes when the next one is recorded after its time.
    control.put_sso_flow(&[3; 32], &flow(9, t0), t0).await.unwrap();
    control.put_sso_flow(&[4; 32], &flow(9, late.plus(ten_minutes)), late).await.unwrap();
    assert_eq!(control.take_sso_flow(&[3; 32], &[9; 32], Timestamp(t0.0 - 1)).await.unwrap(), None, "forgotten");
}

async fn a_connect_flow_is_taken_once_by_its_session_in_its_workspace_before_it_expires(
    store: &Store,
    control: &ControlStore,
) {
    let by = AuditContext::system();
    let t0 = Timestamp(1_795_478_400_000);
    let ws = control.create_workspace("acme", store, t0, &by).await.unwrap().0.id;
    let other = control.create_workspace("other", store, t0, &by).await.unwrap().0.id;
    let ten_minutes = Duration::from_secs(600);
    let flow = |session: u8, expires_at| chimatic_store::ConnectFlowRow {
        provider: chimatic_domain::OAuthProvider::Google,
        bound_to: [session; 32],
        redirect_uri: "https://chimatic.example/console/integrations/connect/callback".into(),
        pkce_verifier: "v".repeat(64),
        name: "Gmail".into(),
        send_as: Some("ops@example.com".into()),
        expires_at,
    };
    control.put_connect_flow(ws, &[1; 32], &flow(7, t0.plus(ten_minutes)), t0).await.unwrap();
    assert_eq!(control.take_connect_flow(ws, &[1; 32], &[8; 32], t0).await.unwrap(), None, "another session's");
    assert_eq!(control.take_connect_flow(other, &[1; 32], &[7; 32], t0).await.unwrap(), None, "another workspace");
    let taken = control.take_connect_flow(ws, &[1; 32], &[7; 32], t0).await.unwrap();
    assert_eq!(taken, Some(flow(7, t0.plus(ten_minutes))));
    assert_eq!(control.take_connect_flow(ws, &[1; 32], &[7; 32], t0).await.unwrap(), None, "used once");
    control.put_connect_flow(ws, &[2; 32], &flow(7, t0.plus(ten_minutes)), t0).await.unwrap();
    let late = t0.plus(ten_minutes);
    assert_eq!(control.take_connect_flow(ws, &[2; 32], &[7; 32], late).await.unwrap(), None, "expired");
    // An abandoned flow goes when the next one is recorded after its time.
    control.put_connect_flow(ws, &[3; 32], &flow(9, t0), t0).await.unwrap();
    control.put_connect_flow(ws, &[4; 32], &flow(9, late.plus(ten_minutes)), late).await.unwrap();
    let before = Timestamp(t0.0 - 1);
    assert_eq!(control.take_connect_flow(ws, &[3; 32], &[9; 32], before).await.unwrap(), None, "forgotten");
}

/// Counts added twice to one hour add up; hours sum into their UTC day; the ranges are inclusive
/// and another workspace's counts never show.
async fn delivery_counts_are_kept_per_hour_and_summed_per_day(store: &Store, control: &ControlStore) {
    let by = AuditContext::system();
    let t0 = Timestamp(1_795_478_400_000);
    let ws = control.create_workspace("acme", store, t0, &by).await.unwrap().0.id;
    let other = control.create_workspace("other", store, t0, &by).await.unwrap().0.id;
    let day = chimatic_store::day_of(t0);
    let hour = |h: i64| day * 24 + h;
    let counts = |period: i64, n: u64| StatsRow { period, accepted: n, attempts: n + 1, delivered: n, failed: 1 };
    control
        .add_stats(&[(ws, counts(hour(0), 2)), (ws, counts(hour(23), 3)), (other, counts(hour(1), 50))])
        .await
        .unwrap();
    control.add_stats(&[(ws, counts(hour(0), 1)), (ws, counts(hour(24), 7))]).await.unwrap();

    let hours = control.hourly_stats(ws, hour(0), hour(23)).await.unwrap();
    assert_eq!(
        hours.iter().map(|r| (r.period, r.accepted, r.attempts, r.failed)).collect::<Vec<_>>(),
        vec![(hour(0), 3, 5, 2), (hour(23), 3, 4, 1)]
    );
    let days = control.daily_stats(ws, day, day + 1).await.unwrap();
    assert_eq!(
        days,
        vec![
            StatsRow { period: day, accepted: 6, attempts: 9, delivered: 6, failed: 3 },
            StatsRow { period: day + 1, accepted: 7, attempts: 8, delivered: 7, failed: 1 },
        ]
    );
    assert!(control.daily_stats(ws, day - 3, day - 1).await.unwrap().is_empty());
}

fn user(email_digest: u8, now: Timestamp) -> UserRow {
    UserRow {
        id: UserId::generate(),
        email_digest: [email_digest; 32],
        email_masked: "a•••@example.com".into(),
        local_part_len: 3,
        local_part_digest: [9; 32],
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: now,
        password_changed_at: now,
    }
}

/// Roles are read with the session, so a role change or a removal ends the member's sessions in
/// that workspace at once; a deleted workspace takes its memberships and sessions with it.
async fn a_membership_decides_every_console_session(store: &Store, control: &ControlStore) {
    let by = AuditContext::system();
    let t0 = Timestamp(1_795_478_400_000);
    let ws = control.create_workspace("acme", store, t0, &by).await.unwrap().0.id;
    let ann = user(1, t0);
    control.create_user(&ann, ws, Role::Owner, &by).await.unwrap();
    let again = UserRow { id: UserId::generate(), ..ann.clone() };
    assert!(matches!(control.create_user(&again, ws, Role::Viewer, &by).await, Err(StoreError::Conflict(_))));
    assert_eq!(control.user_by_email(&[1; 32]).await.unwrap().map(|u| u.id), Some(ann.id));
    assert!(control.user_by_email(&[2; 32]).await.unwrap().is_none());
    let memberships = control.memberships_of(ann.id).await.unwrap();
    assert_eq!(memberships.iter().map(|m| (m.workspace_id, m.role)).collect::<Vec<_>>(), vec![(ws, Role::Owner)]);

    control.start_session(&[10; 32], ann.id, ws, t0, &by, None).await.unwrap();
    let live = control.session(&[10; 32]).await.unwrap().unwrap();
    assert_eq!((live.user_id, live.workspace_id, live.role), (ann.id, ws, Role::Owner));
    control.set_role(ws, ann.id, Role::Viewer, t0, &by).await.unwrap();
    assert!(control.session(&[10; 32]).await.unwrap().is_none(), "a role change ends the sessions");
    control.start_session(&[11; 32], ann.id, ws, t0, &by, None).await.unwrap();
    assert_eq!(control.session(&[11; 32]).await.unwrap().unwrap().role, Role::Viewer);
    control.remove_member(ws, ann.id, t0, &by).await.unwrap();
    assert!(control.session(&[11; 32]).await.unwrap().is_none(), "a removal ends the sessions");
    assert!(control.memberships_of(ann.id).await.unwrap().is_empty());
    assert!(matches!(control.remove_member(ws, ann.id, t0, &by).await, Err(StoreError::NotFound)));

    // Signing out everywhere ends every session of the person, and only theirs.
    let bob = user(2, t0);
    control.create_user(&bob, ws, Role::Developer, &by).await.unwrap();
    for d in [20, 21] {
        control.start_session(&[d; 32], bob.id, ws, t0, &by, None).await.unwrap();
    }
    let carl = user(3, t0);
    control.create_user(&carl, ws, Role::Admin, &by).await.unwrap();
    control.start_session(&[30; 32], carl.id, ws, t0, &by, None).await.unwrap();
    let session = control.session(&[20; 32]).await.unwrap().unwrap();
    assert!(control.end_session(&[20; 32], Some(&session), true, t0, &by).await.unwrap());
    assert!(control.session(&[21; 32]).await.unwrap().is_none());
    assert!(control.session(&[30; 32]).await.unwrap().is_some());

    // A switch moves carl's session, sign-in time and all, into another workspace of his only.
    let beta = control.create_workspace("beta", store, t0, &by).await.unwrap().0.id;
    let later = t0.plus(HOUR);
    let carls = control.session(&[30; 32]).await.unwrap().unwrap();
    let refused = control.switch_session(&[30; 32], &[31; 32], &carls, beta, later, &by).await;
    assert!(matches!(refused, Err(StoreError::NotFound)));
    assert!(control.session(&[30; 32]).await.unwrap().is_some(), "a refused switch leaves the session");
    let invitation = chimatic_store::InvitationRow {
        id: chimatic_domain::InvitationId::generate(),
        workspace_id: beta,
        email_digest: carl.email_digest,
        email_masked: carl.email_masked.clone(),
        role: Role::Viewer,
        invited_by: "o•••@example.com".into(),
        created_at: t0,
        expires_at: later.plus(HOUR),
        accepted_at: None,
        revoked_at: None,
    };
    control.create_invitation(&invitation, &[40; 32], &by).await.unwrap();
    control.accept_invitation(&invitation, chimatic_store::Joining::Existing(carl.id), t0, &by).await.unwrap();
    control.switch_session(&[30; 32], &[31; 32], &carls, beta, later, &by).await.unwrap();
    assert!(control.session(&[30; 32]).await.unwrap().is_none(), "the old identifier is gone");
    let moved = control.session(&[31; 32]).await.unwrap().unwrap();
    assert_eq!((moved.workspace_id, moved.role, moved.created_at, moved.last_seen_at), (beta, Role::Viewer, t0, later));

    let actions: Vec<String> =
        control.audit().entries_after(ws, 0).await.unwrap().into_iter().map(|e| e.event.action).collect();
    for action in
        ["user.created", "console.sign_in", "member.role_changed", "member.removed", "console.sign_out_everywhere"]
    {
        assert!(actions.iter().any(|a| a == action), "{action} is audited: {actions:?}");
    }

    control.delete_workspace(beta, store, t0, &by).await.unwrap();
    assert!(control.session(&[31; 32]).await.unwrap().is_none(), "a deleted workspace ends its sessions");
    control.delete_workspace(ws, store, t0, &by).await.unwrap();
    assert!(control.members(ws).await.unwrap().is_empty());
}

async fn fresh_pg_database(admin: &str, part: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(&format!("{admin}/postgres")).await.unwrap();
    let db = format!("chimatic_jobs_{}_{part}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&mut conn).await.unwrap();
    format!("{admin}/{db}")
}

async fn drop_pg_databases(admin: &str, urls: &[&str]) {
    let mut conn = sqlx::PgConnection::connect(&format!("{admin}/postgres")).await.unwrap();
    for url in urls {
        let db = url.rsplit('/').next().unwrap();
        let sql = format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    }
}

/// PostgreSQL only: a node that does not hold a job's advisory lock does none of its work.
#[tokio::test]
async fn postgres_purge_runs_on_one_node_at_a_time() {
    let b = Backends::postgres().await;
    let store = b.store().await;
    let data_url = b.postgres.as_ref().map(|(_, urls)| urls[0].clone()).unwrap();

    // Another node holds the job's lock: this node's purge removes nothing, although every
    // claim has expired.
    let t0 = Timestamp(1_795_478_400_000);
    with_claims(&store, t0, 5).await;
    let mut other_node = sqlx::PgConnection::connect(&data_url).await.unwrap();
    let lock = "SELECT pg_advisory_lock(hashtext('chimatic.job.idempotency_purge'))";
    sqlx::query(lock).execute(&mut other_node).await.unwrap();
    assert_eq!(store.purge_expired_idempotency_keys(t0.plus(48 * HOUR), 10).await.unwrap(), 0);
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys").fetch_one(&mut other_node).await.unwrap();
    assert_eq!(left, 5);
    // Released (as when that node finishes or dies): the next run does the work.
    let unlock = "SELECT pg_advisory_unlock(hashtext('chimatic.job.idempotency_purge'))";
    sqlx::query(unlock).execute(&mut other_node).await.unwrap();
    assert_eq!(store.purge_expired_idempotency_keys(t0.plus(48 * HOUR), 10).await.unwrap(), 5);
    drop(other_node);
    drop(store);
    b.close().await;
}

#[tokio::test]
async fn subscriber_tokens_expire_and_name_one_subscriber_of_one_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let data = SqliteBackend::open_data(&dir.path().join("data.db")).unwrap();
    let vault = SqliteBackend::open_vault(&dir.path().join("vault.db")).unwrap();
    let store = store(Arc::new(data), Arc::new(vault)).await;
    let t0 = Timestamp(1_795_478_400_000);
    let (a, b) = (WorkspaceId::generate(), WorkspaceId::generate());
    store.provision_workspace(a, t0).await.unwrap();
    store.provision_workspace(b, t0).await.unwrap();
    let (ann, _) = store.identify_subscriber(a, &Sensitive::new("ann".into()), None, t0).await.unwrap();
    let inbox = [SubscriberScope::Inbox];
    let token = store.issue_subscriber_token(a, ann.id, &inbox, t0.plus(HOUR)).await.unwrap();
    let grant = store.verify_subscriber_token(token.expose(), t0).await.unwrap().unwrap();
    assert_eq!((grant.workspace_id, grant.subscriber_id, grant.scopes), (a, ann.id, inbox.to_vec()));
    assert!(store.verify_subscriber_token(token.expose(), t0.plus(HOUR)).await.unwrap().is_none(), "expired");
    assert!(store.issue_subscriber_token(b, ann.id, &inbox, t0.plus(HOUR)).await.is_err(), "ann is not b's subscriber");
    // Workspace b's MAC on claims rewritten to name a's subscriber does not verify.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (bob, _) = store.identify_subscriber(b, &Sensitive::new("bob".into()), None, t0).await.unwrap();
    let bobs = store.issue_subscriber_token(b, bob.id, &inbox, t0.plus(HOUR)).await.unwrap();
    let (payload, mac) = bobs.expose().strip_prefix("sbt_").unwrap().split_once('.').unwrap();
    let mut claims: serde_json::Value = serde_json::from_slice(&b64.decode(payload).unwrap()).unwrap();
    claims["w"] = serde_json::json!(a.to_string());
    claims["s"] = serde_json::json!(ann.id.to_string());
    let forged = format!("sbt_{}.{mac}", b64.encode(serde_json::to_vec(&claims).unwrap()));
    assert!(store.verify_subscriber_token(&forged, t0).await.unwrap().is_none());
    // Nor does an inbox token whose claims were widened to the portal.
    let mut claims: serde_json::Value = serde_json::from_slice(&b64.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["k"], serde_json::json!(["inbox"]));
    claims["k"] = serde_json::json!(["inbox", "portal"]);
    let widened = format!("sbt_{}.{mac}", b64.encode(serde_json::to_vec(&claims).unwrap()));
    assert!(store.verify_subscriber_token(&widened, t0).await.unwrap().is_none());
    assert!(store.verify_subscriber_token(bobs.expose(), t0).await.unwrap().is_some());
}
