//! `POST /v1/notifications/batch`: all-or-nothing, per-item ids and errors.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Receiver, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_batch_is_queued_whole_and_every_item_is_delivered() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    let receiver = Receiver::start().await;
    let (channel, secret) = server.channel(&ws.key, &receiver.url).await;
    let items: Vec<_> = (0..250).map(|i| json!({"channel_id": channel, "payload": {"i": i}})).collect();
    let r = server.post("/v1/notifications/batch", &ws.key, json!({"items": items})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let data = r.json["data"].as_array().unwrap();
    assert_eq!(data.len(), 250);
    assert!(data.iter().all(|d| d["status"] == "queued" && d["idempotent_replayed"] == false));

    let seen = receiver.wait_for(250, Duration::from_secs(30)).await;
    assert_eq!(seen.len(), 250);
    assert!(seen.iter().all(|s| s.verify(&secret)));
    let ids: std::collections::HashSet<_> = seen.iter().map(|s| s.webhook_id()).collect();
    for d in data {
        assert!(ids.contains(d["id"].as_str().unwrap()), "item {} was not delivered", d["id"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bad_item_rejects_the_whole_batch_with_per_item_errors() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    let other = server.workspace("other");
    let receiver = Receiver::start().await;
    let (channel, _) = server.channel(&ws.key, &receiver.url).await;
    let (foreign, _) = server.channel(&other.key, &receiver.url).await;
    let body = json!({"items": [
        {"channel_id": channel, "payload": {"ok": 1}},
        {"channel_id": foreign, "payload": {"ok": 2}},
        {"channel_id": channel, "payload": {"ok": 3}, "idempotency_key": "k".repeat(256)},
        {"channel_id": channel, "payload": {"big": "x".repeat(300 * 1024)}},
    ]});
    let r = server.post("/v1/notifications/batch", &ws.key, body).await;
    r.assert_problem(422, "invalid_batch_items");
    let errors = r.json["errors"].as_array().unwrap();
    let by_index: Vec<(u64, &str)> =
        errors.iter().map(|e| (e["index"].as_u64().unwrap(), e["code"].as_str().unwrap())).collect();
    assert_eq!(by_index, [(1, "not_found"), (2, "invalid_idempotency_key"), (3, "payload_too_large")]);

    for bad in [json!({"items": []}), json!({"items": vec![json!({"channel_id": channel, "payload": {}}); 1001]})] {
        server.post("/v1/notifications/batch", &ws.key, bad).await.assert_problem(422, "invalid_batch");
    }

    // Nothing from the rejected batches was stored or delivered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.received().is_empty());
    let metrics = server.call("GET", "/metrics", None, None).await;
    assert!(!metrics.text.contains("chimatic_notifications_accepted_total"), "{}", metrics.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_keys_hold_within_and_across_batches() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    let receiver = Receiver::start().await;
    let (channel, _) = server.channel(&ws.key, &receiver.url).await;
    let item = |k: &str, n: u32| json!({"channel_id": channel, "payload": {"n": n}, "idempotency_key": k});
    let r = server
        .post("/v1/notifications/batch", &ws.key, json!({"items": [item("a", 1), item("a", 2), item("b", 3)]}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let d = r.json["data"].as_array().unwrap();
    assert_eq!(d[0]["id"], d[1]["id"]);
    assert_eq!(
        (d[0]["idempotent_replayed"].as_bool(), d[1]["idempotent_replayed"].as_bool()),
        (Some(false), Some(true))
    );
    assert_ne!(d[0]["id"], d[2]["id"]);
    let single = server.post("/v1/notifications", &ws.key, item("b", 4)).await;
    assert_eq!(single.json["id"], d[2]["id"]);
    receiver.wait_for(2, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 2);
}
