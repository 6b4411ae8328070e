//! Bring your own key: a workspace switches online to its own key in a KMS-compatible server
//! (moto), its existing data stays readable, and revoking the key makes exactly that workspace
//! unreadable (`503 kms_unavailable`) with its deliveries paused, not failed; restoring the key
//! brings everything back. Other workspaces never notice.

use std::time::Duration;

use chimatic_keys::test_support::{Moto, REGION};
use serde_json::{Value, json};

use crate::harness::{Receiver, ServerOptions, TestServer};
use crate::store_probe::Db;

async fn send(server: &TestServer, key: &str, channel: &str, n: u32) -> crate::harness::Resp {
    server.post("/v1/notifications", key, json!({"channel_id": channel, "payload": {"order": n}})).await
}

fn policy(effect: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": "kms:*", "Resource": "*"}]}).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_workspace_key_stops_exactly_that_workspace_until_it_is_restored() {
    let moto = Moto::start().await;
    let app = moto.user("chimatic-app").await;
    let options =
        ServerOptions::default().env("CHIMATIC_BYOK_CACHE_SECS", "1").env("CHIMATIC_RETRY_SCHEDULE", "2s,60s");
    let server = TestServer::spawn_with(options).await;
    let (a, b) = (server.workspace("byok"), server.workspace("other"));
    let (a_receiver, b_receiver) = (Receiver::start().await, Receiver::start().await);
    let (a_channel, _) = server.channel(&a.key, &a_receiver.url).await;
    let (b_channel, _) = server.channel(&b.key, &b_receiver.url).await;
    let before = send(&server, &a.key, &a_channel, 1).await.json["id"].as_str().unwrap().to_string();
    server.wait_notification(&a.key, &before, |n| n["status"] == "delivered").await;

    let kms = |key_id: &str| {
        json!({"endpoint": moto.url.as_str(), "region": REGION, "key_id": key_id,
               "access_key_id": app.access_key_id, "secret_access_key": app.secret_access_key})
    };
    let probe = server.probe();
    let own = || probe.count(Db::Data, &format!("data_keys WHERE kek_id = 'aws-kms:{}'", moto.key_id));
    // Refused without a change: not an admin key; a key that does not work.
    let r = server.post("/v1/api-keys", &a.key, json!({"name": "ops", "scopes": ["notifications:write"]})).await;
    let ops = r.json["key"].as_str().unwrap().to_string();
    let r = server.call("PUT", "/v1/workspace/kms", Some(&ops), Some(kms(&moto.key_id))).await;
    r.assert_problem(403, "insufficient_scope");
    let r = server.call("PUT", "/v1/workspace/kms", Some(&a.key), Some(kms("no-such-key"))).await;
    r.assert_problem(422, "invalid_request");
    assert!(!r.text.contains(&app.secret_access_key));
    assert_eq!(own(), 0);

    // The switch: A's existing DEK is re-wrapped under its own key, online.
    let r = server.call("PUT", "/v1/workspace/kms", Some(&a.key), Some(kms(&moto.key_id))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["kek_id"], format!("aws-kms:{}", moto.key_id));
    assert_eq!(own(), 1, "A's data DEK, and only it, is under A's key");
    let old = server.get(&format!("/v1/notifications/{before}"), &a.key).await;
    assert_eq!(old.json["payload_masked"], json!({"order": "…"}), "{}", old.text);
    let after = send(&server, &a.key, &a_channel, 2).await.json["id"].as_str().unwrap().to_string();
    server.wait_notification(&a.key, &after, |n| n["status"] == "delivered").await;

    // A notification whose receiver is down waits for its retry (in 2 s)...
    a_receiver.set_status(503);
    let pending = send(&server, &a.key, &a_channel, 3).await.json["id"].as_str().unwrap().to_string();
    server.wait_notification(&a.key, &pending, |n| n["attempt_count"] == 1).await;
    // ...when the customer revokes Chimatic's access to the key.
    let deny = policy("Deny");
    moto.iam(&[
        ("Action", "PutUserPolicy"),
        ("UserName", "chimatic-app"),
        ("PolicyName", "deny"),
        ("PolicyDocument", &deny),
    ])
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.get(&format!("/v1/notifications/{before}"), &a.key).await.assert_problem(503, "kms_unavailable");
    send(&server, &a.key, &a_channel, 4).await.assert_problem(503, "kms_unavailable");
    // B is unaffected.
    let theirs = send(&server, &b.key, &b_channel, 1).await.json["id"].as_str().unwrap().to_string();
    server.wait_notification(&b.key, &theirs, |n| n["status"] == "delivered").await;
    // The retry came due while the key was revoked: paused, not attempted, not failed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(probe.count(Db::Data, &format!("attempts WHERE notification_id = '{pending}'")), 1);
    assert_eq!(probe.count(Db::Data, &format!("notifications WHERE id = '{pending}' AND status = 'queued'")), 1);
    assert!(server.log().contains("delivery paused"), "{}", server.log());

    // Restored: reads work again and the paused delivery goes out.
    moto.iam(&[("Action", "DeleteUserPolicy"), ("UserName", "chimatic-app"), ("PolicyName", "deny")]).await;
    a_receiver.set_status(200);
    let old = server.get(&format!("/v1/notifications/{before}"), &a.key).await;
    assert_eq!(old.status, 200, "{}", old.text);
    let n: Value = server.wait_notification(&a.key, &pending, |n| n["status"] == "delivered").await;
    assert_eq!(n["attempt_count"], 2, "one failed attempt before the revocation, one success after");
    // No credential of the customer's key in any file or the log.
    for (path, bytes) in probe.files_on_disk() {
        assert!(
            !bytes.windows(app.secret_access_key.len()).any(|w| w == app.secret_access_key.as_bytes()),
            "{}",
            path.display()
        );
    }
    assert!(!server.log().contains(&app.secret_access_key));
}
