//! Several stateless nodes on one store: the queue is shared, a node killed mid-load loses
//! nothing, and a redelivery carries the same `webhook-id`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Receiver, ServerOptions, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_share_the_load_and_a_sigkilled_node_loses_nothing() {
    let opts = ServerOptions::default()
        .env("CHIMATIC_RETRY_SCHEDULE", &vec!["300ms"; 40].join(","))
        .env("CHIMATIC_DELIVERY_TIMEOUT_SECS", "1");
    let mut first = TestServer::spawn_with(opts.clone()).await;
    let dir = first.keep_dir().unwrap();
    let data = dir.path().join("data");
    let mut nodes = [first, TestServer::spawn_in(&data, opts.clone()).await, TestServer::spawn_in(&data, opts).await];
    let ws = nodes[0].workspace("acme");
    let receiver = Receiver::start().await;
    // Slow enough that the killed node has deliveries in flight.
    receiver.set_delay(Duration::from_millis(20));
    let (channel, secret) = nodes[0].channel(&ws.key, &receiver.url).await;

    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let mut senders = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for s in 0..4 {
            let (http, url, key, channel, accepted) =
                (node.http.clone(), node.url("/v1/notifications"), ws.key.clone(), channel.clone(), accepted.clone());
            senders.push(tokio::spawn(async move {
                for i in 0..100 {
                    let body = json!({"channel_id": channel, "payload": {"node": n, "sender": s, "i": i}});
                    let Ok(resp) = http.post(&url).bearer_auth(&key).json(&body).send().await else { break };
                    if resp.status() != 202 {
                        break;
                    }
                    let Ok(v) = resp.json::<serde_json::Value>().await else { break };
                    accepted.lock().unwrap().insert(v["id"].as_str().unwrap().to_string());
                }
            }));
        }
    }
    while accepted.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nodes[1].kill9();
    for s in senders {
        let _ = s.await;
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= 800, "the surviving nodes keep accepting: {}", accepted.len());

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: HashSet<String> = receiver.received().iter().map(|r| r.webhook_id()).collect();
        if accepted.is_subset(&seen) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = receiver.received();
    assert!(received.iter().all(|r| r.verify(&secret)), "every delivery is signed");
    let mut copies: HashMap<String, usize> = HashMap::new();
    for r in &received {
        *copies.entry(r.webhook_id()).or_default() += 1;
    }
    let missing: Vec<_> = accepted.iter().filter(|id| !copies.contains_key(*id)).collect();
    assert!(missing.is_empty(), "{} of {} accepted notifications never arrived", missing.len(), accepted.len());
    // At-least-once: a redelivery after the kill repeats a webhook-id (receivers dedupe on it);
    // it is never a different id for the same notification, and never more than a few copies.
    assert!(copies.values().all(|&n| n <= 3), "a notification was delivered more than 3 times");
    // The store agrees: every accepted notification ends delivered, including those the killed
    // node had claimed, which the survivors take over once its lease runs out.
    let survivor = &nodes[2];
    for id in &accepted {
        survivor.wait_notification(&ws.key, id, |n| n["status"] == "delivered").await;
    }
}

/// What a node caches never outlives a revocation answered by another node: a revoked API key
/// is refused on the very next request to the other node, and a deactivated channel takes no
/// notification there (its cache had seen the channel active) and receives nothing more.
#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_on_one_node_holds_on_the_next_request_to_another() {
    let mut first = TestServer::spawn().await;
    let dir = first.keep_dir().unwrap();
    let second = TestServer::spawn_in(&dir.path().join("data"), ServerOptions::default()).await;
    let ws = first.workspace("acme");
    let receiver = Receiver::start().await;
    let (channel, _) = first.channel(&ws.key, &receiver.url).await;
    let key = first.post("/v1/api-keys", &ws.key, json!({"name": "sender", "scopes": ["notifications:write"]})).await;
    assert_eq!(key.status, 201, "{}", key.text);
    let (sender, key_id) = (key.json["key"].as_str().unwrap(), key.json["id"].as_str().unwrap());
    let send = |body: serde_json::Value| second.post("/v1/notifications", sender, body);

    // The second node has used both the key and the channel.
    for i in 0..3 {
        let r = send(json!({"channel_id": channel, "payload": {"i": i}})).await;
        assert_eq!(r.status, 202, "{}", r.text);
        second.wait_notification(&ws.key, r.json["id"].as_str().unwrap(), |n| n["status"] == "delivered").await;
    }
    assert_eq!(receiver.received().len(), 3);

    let r = first.post(&format!("/v1/channels/{channel}/deactivate"), &ws.key, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let refused = send(json!({"channel_id": channel, "payload": {"after": "deactivation"}})).await;
    refused.assert_problem(409, "conflict");
    assert!(refused.json["detail"].as_str().unwrap().contains("deactivated"), "{}", refused.text);
    let batch = second
        .post("/v1/notifications/batch", sender, json!({"items": [{"channel_id": channel, "payload": {}}]}))
        .await;
    assert_eq!(batch.status, 422, "{}", batch.text);
    assert_eq!(batch.json["errors"][0]["code"], "channel_deactivated", "{}", batch.text);

    let r = first.delete(&format!("/v1/api-keys/{key_id}"), &ws.key).await;
    assert_eq!(r.status, 204, "{}", r.text);
    send(json!({"channel_id": channel, "payload": {}})).await.assert_problem(401, "unauthorized");

    // Nothing more arrived: the receiver saw only the three sent before the deactivation.
    assert_eq!(receiver.received().len(), 3);
}
