//! Data lifecycle and incident isolation: freezing a workspace, channel deactivation and purge,
//! payload retention.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Receiver, ServerOptions, TestServer, cli};
use crate::store_probe::Db;

const OPERATOR_TOKEN: &str = "op-test-token-0123456789abcdef0123456789abcdef";

async fn operator_call(server: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let r = server.call("POST", path, token, None).await;
    (r.status, r.json)
}

async fn attempts_of(server: &TestServer, key: &str, id: &str) -> u64 {
    let r = server.get(&format!("/v1/notifications/{id}"), key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["attempt_count"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_workspace_is_completely_still_until_it_is_unfrozen() {
    let server = TestServer::spawn_with(
        ServerOptions::default()
            .env("CHIMATIC_OPERATOR_TOKEN", OPERATOR_TOKEN)
            .env("CHIMATIC_RETRY_SCHEDULE", "300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms"),
    )
    .await;
    let a = server.workspace("frozen");
    let b = server.workspace("neighbour");
    let failing = Receiver::start().await;
    failing.set_status(503);
    let healthy = Receiver::start().await;
    let (a_channel, _) = server.channel(&a.key, &failing.url).await;
    let (b_channel, _) = server.channel(&b.key, &healthy.url).await;
    let sub = server.post("/v1/subscribers", &a.key, json!({"external_id": "ann"})).await;
    let sub = sub.json["id"].as_str().unwrap().to_string();
    let token = server.post(&format!("/v1/subscribers/{sub}/token"), &a.key, json!({"ttl_seconds": 600})).await;
    let token = token.json["token"].as_str().unwrap().to_string();
    let r = server.post("/v1/notifications", &a.key, json!({"channel_id": a_channel, "payload": {"n": 1}})).await;
    let queued = r.json["id"].as_str().unwrap().to_string();
    failing.wait_for(2, Duration::from_secs(10)).await;

    // Only the operator token freezes; an API key (even the owner's) is not it.
    let path = format!("/v1/admin/workspaces/{}/freeze", a.id);
    assert_eq!(operator_call(&server, &path, None).await.0, 401);
    assert_eq!(operator_call(&server, &path, Some(&a.key)).await.0, 401);
    assert_eq!(operator_call(&server, &path, Some("op-test-token-0123456789abcdef0123456789abcdeX")).await.0, 401);
    let (status, body) = operator_call(&server, "/v1/admin/workspaces/nope/freeze", Some(OPERATOR_TOKEN)).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_id")));
    let unknown = "ws_0196b7f0a3c97d2e8f4b5a6c7d8e9f01";
    assert_eq!(
        operator_call(&server, &format!("/v1/admin/workspaces/{unknown}/freeze"), Some(OPERATOR_TOKEN)).await.0,
        404
    );

    let (status, body) = operator_call(&server, &path, Some(OPERATOR_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["frozen"].as_bool(), body["changed"].as_bool()), (Some(true), Some(true)));
    let (_, again) = operator_call(&server, &path, Some(OPERATOR_TOKEN)).await;
    assert_eq!(again["changed"], false, "freezing a frozen workspace changes nothing");

    // Every read and write of the workspace gets 423, whatever the credential.
    for (method, path, body) in [
        ("GET", "/v1/workspace".to_string(), None),
        ("GET", "/v1/channels".to_string(), None),
        ("GET", format!("/v1/notifications/{queued}"), None),
        ("POST", "/v1/notifications".to_string(), Some(json!({"channel_id": a_channel, "payload": {"n": 2}}))),
        ("GET", "/v1/audit".to_string(), None),
        ("GET", "/v1/api-keys".to_string(), None),
        ("POST", "/v1/subscribers".to_string(), Some(json!({"external_id": "bob"}))),
    ] {
        let r = server.call(method, &path, Some(&a.key), body).await;
        r.assert_problem(423, "workspace_frozen");
    }
    let inbox = server.http.get(server.url("/v1/inbox")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(inbox.status().as_u16(), 423);
    // A forged token does not learn that the workspace is frozen.
    let forged = server.http.get(server.url("/v1/inbox")).bearer_auth(format!("{token}x")).send().await.unwrap();
    assert_eq!(forged.status().as_u16(), 401);

    // Deliveries stop: the failing receiver hears nothing more, and the attempts made so far stay.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let heard = failing.received().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(failing.received().len(), heard, "a frozen workspace's deliveries are held");

    // The neighbour is untouched.
    let r = server.post("/v1/notifications", &b.key, json!({"channel_id": b_channel, "payload": {"n": 3}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap();
    server.wait_notification(&b.key, id, |n| n["status"] == "delivered").await;

    // Unfreezing resumes: the held notification is delivered with one more attempt, none lost.
    failing.set_status(200);
    let (status, body) =
        operator_call(&server, &format!("/v1/admin/workspaces/{}/unfreeze", a.id), Some(OPERATOR_TOKEN)).await;
    assert_eq!((status, body["frozen"].as_bool()), (200, Some(false)), "{body}");
    let n = server.wait_notification(&a.key, &queued, |n| n["status"] == "delivered").await;
    assert_eq!(n["attempt_count"].as_u64().unwrap() as usize, heard + 1, "holding costs no attempt");

    // Both changes are in the workspace's audit log, by the operator, from the caller's address.
    let log = server.get("/v1/audit?action=workspace.frozen", &a.key).await;
    let entries = log.json["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", log.text);
    assert_eq!(entries[0]["actor"]["kind"], "operator");
    assert_eq!(entries[0]["ip"], "127.0.0.1");
    let log = server.get("/v1/audit?action=workspace.unfrozen", &a.key).await;
    assert_eq!(log.json["data"].as_array().unwrap().len(), 1, "{}", log.text);

    // The CLI freezes and unfreezes the same way.
    let run = |cmd: &str| {
        let out = cli(&server.data_dir)
            .args(["workspace", cmd, "--workspace", &a.id, "--data-dir"])
            .arg(&server.data_dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    run("freeze");
    server.get("/v1/channels", &a.key).await.assert_problem(423, "workspace_frozen");
    run("unfreeze");
    assert_eq!(server.get("/v1/channels", &a.key).await.status, 200);
    assert_eq!(attempts_of(&server, &a.key, &queued).await as usize, heard + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_endpoints_are_disabled_without_an_operator_token() {
    let server = TestServer::spawn().await;
    let a = server.workspace("acme");
    let (status, body) =
        operator_call(&server, &format!("/v1/admin/workspaces/{}/freeze", a.id), Some(OPERATOR_TOKEN)).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("operator_disabled")));
    assert_eq!(server.get("/v1/channels", &a.key).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deactivated_channel_is_out_of_use_at_once_and_purged_after_its_window() {
    let server = TestServer::spawn_with(
        ServerOptions::default()
            .env("CHIMATIC_CHANNEL_RETENTION", "3s")
            .env("CHIMATIC_PURGE_INTERVAL", "1s")
            .env("CHIMATIC_RETRY_SCHEDULE", "30s"),
    )
    .await;
    let ws = server.workspace("acme");
    let other = server.workspace("other");
    let receiver = Receiver::start().await;
    receiver.set_status(503);
    let (channel, _) = server.channel(&ws.key, &receiver.url).await;
    let (kept, _) = server.channel(&ws.key, &format!("{}/kept", receiver.url)).await;
    let r = server.post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": {"n": 1}})).await;
    let waiting = r.json["id"].as_str().unwrap().to_string();
    // The first attempt fails; the retry is 30 s away, so the notification waits in the queue.
    server.wait_notification(&ws.key, &waiting, |n| n["attempt_count"] == 1 && n["status"] == "queued").await;

    // Another workspace cannot touch it.
    let path = format!("/v1/channels/{channel}/deactivate");
    server.post(&path, &other.key, json!({})).await.assert_problem(404, "not_found");
    let r = server.post(&path, &ws.key, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "deactivated");
    assert_eq!(r.json["cancelled_notifications"], 1);
    assert!(r.json["url_masked"].is_null() && r.json["tls"].is_null(), "{}", r.text);
    assert!(r.json["purge_at"].is_string());
    server.post(&path, &ws.key, json!({})).await.assert_problem(409, "conflict");

    // Out of use at once: the queued notification is cancelled, new ones are refused, and the
    // destination is shown nowhere.
    let n = server.get(&format!("/v1/notifications/{waiting}"), &ws.key).await;
    assert_eq!(n.json["status"], "cancelled", "{}", n.text);
    assert!(n.json["next_attempt_at"].is_null());
    let r = server.post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": {"n": 2}})).await;
    r.assert_problem(409, "conflict");
    let batch = json!({"items": [{"channel_id": kept, "payload": {}}, {"channel_id": channel, "payload": {}}]});
    let r = server.post("/v1/notifications/batch", &ws.key, batch).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.json["errors"][0]["index"], 1);
    assert_eq!(r.json["errors"][0]["code"], "channel_deactivated");
    let shown = server.get(&format!("/v1/channels/{channel}"), &ws.key).await;
    assert_eq!(shown.json["status"], "deactivated");
    assert!(shown.json["url_masked"].is_null());
    let list = server.get("/v1/channels", &ws.key).await;
    let listed: Vec<&str> =
        list.json["data"].as_array().unwrap().iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&"deactivated") && listed.contains(&"active"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "nothing more was sent to the channel");

    // Reactivated inside its window, it takes notifications again.
    let r = server.post(&format!("/v1/channels/{channel}/reactivate"), &ws.key, json!({})).await;
    assert_eq!((r.status, r.json["status"].as_str()), (200, Some("active")), "{}", r.text);
    assert!(r.json["url_masked"].as_str().unwrap().starts_with("http://127"));
    server
        .post(&format!("/v1/channels/{channel}/reactivate"), &ws.key, json!({}))
        .await
        .assert_problem(409, "conflict");
    receiver.set_status(200);
    let r = server.post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": {"n": 3}})).await;
    let delivered = r.json["id"].as_str().unwrap().to_string();
    server.wait_notification(&ws.key, &delivered, |n| n["status"] == "delivered").await;

    // Deactivated again and left: the purger removes it with its notifications after 3 s.
    assert_eq!(server.post(&path, &ws.key, json!({})).await.status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = server.get(&format!("/v1/channels/{channel}"), &ws.key).await;
        if r.status == 404 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the channel was not purged: {}", r.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in [&waiting, &delivered] {
        server.get(&format!("/v1/notifications/{id}"), &ws.key).await.assert_problem(404, "not_found");
    }
    assert_eq!(server.get(&format!("/v1/channels/{kept}"), &ws.key).await.status, 200);

    // Every step is in the audit log, the purge by the system with what it removed.
    let log = server.get("/v1/audit?limit=50", &ws.key).await;
    let entries = log.json["data"].as_array().unwrap();
    let of = |action: &str| entries.iter().filter(|e| e["action"] == action).collect::<Vec<_>>();
    assert_eq!(of("channel.deactivated").len(), 2);
    assert_eq!(of("channel.reactivated").len(), 1);
    let purged = of("channel.purged");
    assert_eq!(purged.len(), 1, "{}", log.text);
    assert_eq!(purged[0]["actor"]["kind"], "system");
    assert_eq!(purged[0]["target"]["id"], channel.as_str());
    assert_eq!(purged[0]["detail"]["notifications"], 2);
    assert_eq!(of("channel.deactivated")[0]["actor"]["kind"], "api_key");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_workspace_removes_everything_of_it_and_nothing_else() {
    let server = TestServer::spawn().await;
    let doomed = server.workspace("doomed");
    let kept = server.workspace("kept");
    let receiver = Receiver::start().await;
    let canary = format!("canary-{}", std::process::id());
    let mut delivered = Vec::new();
    for ws in [&doomed, &kept] {
        let (channel, _) = server.channel(&ws.key, &format!("{}/{canary}", receiver.url)).await;
        let r =
            server.post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": {"c": canary}})).await;
        let id = r.json["id"].as_str().unwrap().to_string();
        server.wait_notification(&ws.key, &id, |n| n["status"] == "delivered").await;
        let r = server.post("/v1/subscribers", &ws.key, json!({"external_id": format!("{canary}@example.com")})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        delivered.push(id);
    }
    let extra = server.post("/v1/api-keys", &doomed.key, json!({"name": "ci", "scopes": ["admin"]})).await;
    assert_eq!(extra.status, 201, "{}", extra.text);
    let extra_key = extra.json["key"].as_str().unwrap().to_string();

    // Only the owner key, and only with the workspace's id as confirmation.
    server
        .call("DELETE", "/v1/workspace", Some(&extra_key), Some(json!({"confirm": doomed.id})))
        .await
        .assert_problem(403, "owner_only");
    server
        .call("DELETE", "/v1/workspace", Some(&doomed.key), Some(json!({"confirm": kept.id})))
        .await
        .assert_problem(422, "confirmation_mismatch");
    server
        .call("DELETE", "/v1/workspace", Some(&doomed.key), Some(json!({})))
        .await
        .assert_problem(422, "invalid_body");
    assert_eq!(server.get("/v1/workspace", &doomed.key).await.status, 200, "a refused deletion changes nothing");

    let log = server.get("/v1/audit?limit=500", &doomed.key).await;
    let logged = log.json["data"].as_array().unwrap().len() as u64;
    let r = server.call("DELETE", "/v1/workspace", Some(&doomed.key), Some(json!({"confirm": doomed.id}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let deleted = &r.json["deleted"];
    assert_eq!(deleted["data.notifications"], 1);
    assert_eq!(deleted["data.channels"], 1);
    assert_eq!(deleted["data.subscribers"], 1);
    assert_eq!(deleted["control.api_keys"], 2);
    assert!(deleted["data.data_keys"].as_u64().unwrap() >= 1 && deleted["vault.vault_keys"].as_u64().unwrap() >= 1);
    let audit_rows = deleted["data.audit_log"].as_u64().unwrap() + deleted["control.audit_log"].as_u64().unwrap();
    assert_eq!(audit_rows, logged, "both of its audit chains go: {}", r.text);
    assert_eq!(deleted["control.audit_log"], 2, "workspace created, key created: {}", r.text);

    // Its keys are dead at once; the other workspace is untouched.
    for key in [&doomed.key, &extra_key] {
        server.get("/v1/workspace", key).await.assert_problem(401, "unauthorized");
    }
    let n = server.get(&format!("/v1/notifications/{}", delivered[1]), &kept.key).await;
    assert_eq!((n.status, n.json["status"].as_str()), (200, Some("delivered")), "{}", n.text);
    assert_eq!(server.get("/v1/subscribers", &kept.key).await.json["data"].as_array().unwrap().len(), 1);

    // No row of the workspace is left in any store, but for a nameless tombstone that its
    // region's nodes remove after one more sweep an hour later (tested with driven time in
    // crates/store/tests/timed.rs).
    let probe = server.probe();
    for (table, rows) in probe.rows_of_workspace(&doomed.id) {
        let expected = if table == "Control.workspaces" { 1 } else { 0 };
        assert_eq!(rows, expected, "{table} still holds rows of the deleted workspace");
    }
    let tombstone = probe.count_sql(
        Db::Control,
        &format!("SELECT COUNT(*) FROM workspaces WHERE id = '{}' AND name = '' AND erased_at IS NOT NULL", doomed.id),
    );
    assert_eq!(tombstone, 1, "the workspace's row is a tombstone without its name");
    assert!(probe.rows_of_workspace(&kept.id).iter().any(|(_, rows)| *rows > 0));

    // The deletion is recorded in the deployment's audit chain, which still verifies.
    let out = cli(&server.data_dir).args(["audit", "verify", "--data-dir"]).arg(&server.data_dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let system = "ws_00000000000000000000000000000000";
    let recorded = probe.count_sql(
        Db::Control,
        &format!("SELECT COUNT(*) FROM control_audit_log WHERE workspace_id = '{system}' AND action = 'workspace.deleted' AND target_id = '{}'", doomed.id),
    );
    assert_eq!(recorded, 1);
}
