//! The audit log end to end: actions recorded with actor, source and target; read with filters
//! and cursors, per tenant; exported and verified offline; tampering with the stored rows is
//! caught entry by entry; and an action whose audit entry cannot be written does not happen.

use std::path::Path;

use serde_json::{Value, json};

use crate::harness::{Receiver, ServerOptions, TestServer, cli};
use crate::store_probe::{Backend, Db, backend};

fn audit_cli(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = cli(dir).arg("audit").args(args).arg("--data-dir").arg(dir).output().expect("run chimatic audit");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

async fn all_entries(server: &TestServer, key: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/audit?limit=2&{query}&cursor={c}"),
            None => format!("/v1/audit?limit=2&{query}"),
        };
        let r = server.get(&path, key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        out.extend(r.json["data"].as_array().unwrap().iter().cloned());
        match r.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries.iter().map(|e| e["action"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_are_recorded_listed_per_tenant_exported_and_verified_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server =
        TestServer::spawn_in(&dir, ServerOptions::default().env("CHIMATIC_AUDIT_SIGN_INTERVAL_SECS", "1")).await;
    let a = crate::harness::create_workspace(&dir, "audited");
    let b = crate::harness::create_workspace(&dir, "other");
    let receiver = Receiver::start().await;

    // A channel created from a known client, a delivery, an API key made and revoked.
    let r = server
        .http
        .post(server.url("/v1/channels"))
        .bearer_auth(&a.key)
        .header("user-agent", "audit-test/1.0\tforged")
        .json(&json!({"type": "webhook", "url": receiver.url}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let channel: Value = r.json().await.unwrap();
    let channel_id = channel["id"].as_str().unwrap().to_string();
    let n = server.post("/v1/notifications", &a.key, json!({"channel_id": channel_id, "payload": {"n": 1}})).await;
    let nid = n.json["id"].as_str().unwrap().to_string();
    server.wait_notification(&a.key, &nid, |n| n["status"] == "delivered").await;
    let made = server.post("/v1/api-keys", &a.key, json!({"name": "auditor", "scopes": ["audit:read"]})).await;
    assert_eq!(made.status, 201, "{}", made.text);
    let auditor = made.json["key"].as_str().unwrap().to_string();
    let temp = server.post("/v1/api-keys", &a.key, json!({"name": "temp", "scopes": ["channels:read"]})).await;
    let temp_id = temp.json["id"].as_str().unwrap().to_string();
    assert_eq!(server.delete(&format!("/v1/api-keys/{temp_id}"), &a.key).await.status, 204);

    // Keys without `audit:read` cannot read it.
    server.get("/v1/audit", temp.json["key"].as_str().unwrap()).await.assert_problem(401, "unauthorized");
    let channels_only = server.post("/v1/api-keys", &a.key, json!({"name": "ch", "scopes": ["channels:read"]})).await;
    server
        .get("/v1/audit", channels_only.json["key"].as_str().unwrap())
        .await
        .assert_problem(403, "insufficient_scope");

    let entries = all_entries(&server, &auditor, "").await;
    let acts = actions(&entries);
    for expected in [
        "workspace.created",
        "channel.created",
        "notification.delivery_attempted",
        "api_key.created",
        "api_key.revoked",
    ] {
        assert!(acts.contains(&expected), "{expected} missing from {acts:?}");
    }
    // Newest first, no duplicates across pages.
    let positions: Vec<(String, String, u64)> = entries
        .iter()
        .map(|e| (e["at_ms"].to_string(), e["stream"].as_str().unwrap().into(), e["seq"].as_u64().unwrap()))
        .collect();
    let mut unique = positions.clone();
    unique.dedup();
    assert_eq!(unique.len(), positions.len());
    assert!(entries.windows(2).all(|w| w[0]["at_ms"].as_i64() >= w[1]["at_ms"].as_i64()));

    let created = entries.iter().find(|e| e["action"] == "channel.created").unwrap();
    assert_eq!(created["actor"]["kind"], "api_key");
    assert_eq!(created["actor"]["name"], "owner");
    assert_eq!(created["target"], json!({"kind": "channel", "id": channel_id}));
    assert_eq!(created["ip"], "127.0.0.1");
    assert_eq!(created["user_agent"], "audit-test/1.0forged", "control characters are dropped");
    assert_eq!(created["outcome"], "success");
    assert!(!created.to_string().contains(&receiver.url), "the audit log holds ids, never the URL");
    let attempt = entries.iter().find(|e| e["action"] == "notification.delivery_attempted").unwrap();
    assert_eq!(attempt["actor"]["kind"], "system");
    assert_eq!(attempt["target"]["id"], nid.as_str());
    assert_eq!(attempt["detail"]["status_code"], 200);
    let revoked = entries.iter().find(|e| e["action"] == "api_key.revoked").unwrap();
    assert_eq!(revoked["target"]["id"], temp_id.as_str());
    assert_eq!(revoked["stream"], "control");

    // Filters.
    let only = all_entries(&server, &auditor, "action=api_key.created").await;
    assert_eq!(only.len(), 3, "{only:?}");
    let by_system = all_entries(&server, &auditor, "actor=system").await;
    assert!(by_system.iter().all(|e| e["actor"]["kind"] == "system") && !by_system.is_empty());
    let future = all_entries(&server, &auditor, "from=2999-01-01T00:00:00Z").await;
    assert!(future.is_empty());
    server.get("/v1/audit?from=yesterday", &auditor).await.assert_problem(400, "invalid_query");
    server.get("/v1/audit?cursor=nope", &auditor).await.assert_problem(400, "invalid_cursor");

    // Tenant B sees only its own workspace.
    let theirs = all_entries(&server, &b.key, "").await;
    assert!(theirs.iter().all(|e| e["workspace_id"] == b.id.as_str()), "{theirs:?}");
    assert!(!theirs.iter().any(|e| e["target"]["id"] == channel_id.as_str()));

    // The export verifies offline against the pinned key, and names an edited line.
    let public_key =
        server.get("/v1/audit/public-key", &auditor).await.json["public_key"].as_str().unwrap().to_string();
    let export = server.http.get(server.url("/v1/audit/export")).bearer_auth(&auditor).send().await.unwrap();
    assert_eq!(export.status(), 200);
    let jsonl = export.text().await.unwrap();
    assert!(jsonl.lines().any(|l| l.contains("\"type\":\"head\"")), "the export carries signed heads");
    let file = tmp.path().join("audit.jsonl");
    std::fs::write(&file, &jsonl).unwrap();
    let (ok, out) = audit_cli(&dir, &["verify", "--file", file.to_str().unwrap(), "--public-key", &public_key]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{} data: ok", a.id)) && out.contains(&format!("{} control: ok", a.id)), "{out}");
    let edited =
        jsonl.replacen(&format!("\"id\":\"{channel_id}\""), "\"id\":\"ch_00000000000000000000000000000000\"", 1);
    assert_ne!(edited, jsonl);
    std::fs::write(&file, &edited).unwrap();
    let (ok, out) = audit_cli(&dir, &["verify", "--file", file.to_str().unwrap(), "--public-key", &public_key]);
    assert!(!ok && out.contains("BROKEN") && out.contains("was altered"), "{out}");
    // A wrong pinned key fails too.
    let (ok, out) = audit_cli(&dir, &["verify", "--file", file.to_str().unwrap(), "--public-key", &"ab".repeat(32)]);
    assert!(!ok, "{out}");

    // The export is itself audited; CSV has a header and one row per entry.
    let after = all_entries(&server, &auditor, "action=audit.exported").await;
    assert_eq!(after.len(), 1);
    let csv = server.http.get(server.url("/v1/audit/export?format=csv")).bearer_auth(&auditor).send().await.unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("stream,seq,at,actor_kind"), "{csv}");
    assert!(csv.contains("\"api_key.revoked\""));
    server.get("/v1/audit/export?format=xml", &auditor).await.assert_problem(400, "invalid_query");

    // The stores verify as a whole, offline, with the key derived from the KEK.
    let (ok, out) = audit_cli(&dir, &["verify"]);
    assert!(ok, "{out}");
    assert!(out.contains("trusted head-signing key") && out.contains(&public_key), "{out}");
}

/// Runs `verify` for the workspace and returns what it printed; asserts it failed.
fn broken(dir: &Path, ws: &str) -> String {
    let (ok, out) = audit_cli(dir, &["verify", "--workspace", ws]);
    assert!(!ok, "tampering went unnoticed: {out}");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn edited_removed_reordered_and_cut_rows_are_each_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server = TestServer::spawn_in(&dir, ServerOptions::default()).await;
    let ws = crate::harness::create_workspace(&dir, "tampered");
    let receiver = Receiver::start().await;
    for _ in 0..5 {
        server.channel(&ws.key, &receiver.url).await;
    }
    drop(server);
    let (ok, out) = audit_cli(&dir, &["sign"]);
    assert!(ok, "{out}");
    let (ok, out) = audit_cli(&dir, &["verify", "--workspace", &ws.id]);
    assert!(ok, "{out}");
    let probe = crate::store_probe::StoreProbe::new(&dir);
    let w = format!("workspace_id = '{}'", ws.id);
    let (first, last) = {
        let seqs = audit_seqs(&probe, &ws.id);
        (seqs[0], *seqs.last().unwrap())
    };

    // An edited entry.
    probe.execute(Db::Data, &format!("UPDATE audit_log SET actor_name = 'mallory' WHERE {w} AND seq = {}", first + 1));
    let out = broken(&dir, &ws.id);
    assert!(out.contains(&format!("BROKEN — entry {}: was altered", first + 1)), "{out}");
    probe.execute(Db::Data, &format!("UPDATE audit_log SET actor_name = 'owner' WHERE {w} AND seq = {}", first + 1));
    let (ok, out) = audit_cli(&dir, &["verify", "--workspace", &ws.id]);
    assert!(ok, "restored: {out}");

    // A removed entry.
    probe.execute(Db::Data, &format!("CREATE TABLE kept AS SELECT * FROM audit_log WHERE {w} AND seq = {}", first + 2));
    probe.execute(Db::Data, &format!("DELETE FROM audit_log WHERE {w} AND seq = {}", first + 2));
    let out = broken(&dir, &ws.id);
    assert!(out.contains(&format!("entry {}: is missing", first + 2)), "{out}");
    probe.execute(Db::Data, "INSERT INTO audit_log SELECT * FROM kept");
    probe.execute(Db::Data, "DROP TABLE kept");
    let (ok, out) = audit_cli(&dir, &["verify", "--workspace", &ws.id]);
    assert!(ok, "restored: {out}");

    // Two entries swapped.
    let (x, y) = (first + 1, first + 2);
    probe.execute(Db::Data, &format!("UPDATE audit_log SET seq = -1 WHERE {w} AND seq = {x}"));
    probe.execute(Db::Data, &format!("UPDATE audit_log SET seq = {x} WHERE {w} AND seq = {y}"));
    probe.execute(Db::Data, &format!("UPDATE audit_log SET seq = {y} WHERE {w} AND seq = -1"));
    let out = broken(&dir, &ws.id);
    assert!(out.contains(&format!("entry {x}:")), "{out}");
    probe.execute(Db::Data, &format!("UPDATE audit_log SET seq = -1 WHERE {w} AND seq = {x}"));
    probe.execute(Db::Data, &format!("UPDATE audit_log SET seq = {x} WHERE {w} AND seq = {y}"));
    probe.execute(Db::Data, &format!("UPDATE audit_log SET seq = {y} WHERE {w} AND seq = -1"));
    let (ok, out) = audit_cli(&dir, &["verify", "--workspace", &ws.id]);
    assert!(ok, "restored: {out}");

    // The tail cut, and the chain's own record of its end rolled back to match: the signed
    // head still covers the removed entry.
    probe.execute(Db::Data, &format!("DELETE FROM audit_log WHERE {w} AND seq = {last}"));
    probe.execute(
        Db::Data,
        &format!(
            "UPDATE audit_chains SET next_seq = {last}, head_hash = (SELECT hash FROM audit_log WHERE {w} AND seq = {}) WHERE {w}",
            last - 1
        ),
    );
    let out = broken(&dir, &ws.id);
    assert!(out.contains(&format!("a signed head covers entry {last}")), "{out}");
}

fn audit_seqs(probe: &crate::store_probe::StoreProbe, ws: &str) -> Vec<i64> {
    let (data_url, _) = probe.urls();
    let n =
        crate::store_probe::count_at(&data_url, &format!("SELECT COUNT(*) FROM audit_log WHERE workspace_id = '{ws}'"));
    let min =
        crate::store_probe::count_at(&data_url, &format!("SELECT MIN(seq) FROM audit_log WHERE workspace_id = '{ws}'"));
    (min..min + n).collect()
}

/// The audit entry is written in the action's transaction: when it cannot be written, the
/// action does not happen (no channel, no API key) and the client gets an error.
#[tokio::test(flavor = "multi_thread")]
async fn an_action_whose_audit_entry_cannot_be_written_does_not_happen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server = TestServer::spawn_in(&dir, ServerOptions::default()).await;
    let ws = crate::harness::create_workspace(&dir, "failing-audit");
    let receiver = Receiver::start().await;
    let probe = server.probe();
    for table in ["audit_log", "control_audit_log"] {
        match backend() {
            Backend::Sqlite => {
                let db = if table == "audit_log" { Db::Data } else { Db::Control };
                probe.execute(db, &format!(
                    "CREATE TRIGGER {table}_down BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END"
                ));
            }
            Backend::Postgres { .. } => {
                probe.execute(
                    Db::Data,
                    "CREATE OR REPLACE FUNCTION audit_down() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$ LANGUAGE plpgsql",
                );
                probe.execute(
                    Db::Data,
                    &format!("CREATE TRIGGER {table}_down BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION audit_down()"),
                );
            }
        }
    }
    let channels = probe.count(Db::Data, "channels");
    let keys = probe.count(Db::Control, "api_keys");
    let r = server.post("/v1/channels", &ws.key, json!({"type": "webhook", "url": receiver.url})).await;
    assert!(r.status >= 500, "{}", r.text);
    assert!(!r.text.contains("audit log unavailable"), "no internals in error bodies: {}", r.text);
    let r = server.post("/v1/api-keys", &ws.key, json!({"name": "x", "scopes": ["admin"]})).await;
    assert!(r.status >= 500, "{}", r.text);
    assert_eq!(probe.count(Db::Data, "channels"), channels, "no channel without its audit entry");
    assert_eq!(probe.count(Db::Control, "api_keys"), keys, "no API key without its audit entry");
}
