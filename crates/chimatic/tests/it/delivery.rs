//! The delivery spine end to end: durable accept, signed delivery, retries, replay,
//! idempotency, SSRF refusal, crash safety.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use crate::harness::{Receiver, ServerOptions, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn delivers_a_standard_webhooks_signed_payload_with_one_attempt() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    let receiver = Receiver::start().await;
    let (channel, secret) = server.channel(&ws.key, &receiver.url).await;
    assert!(secret.starts_with("whsec_"));

    let payload = json!({"order": "o-1", "items": [1, 2, 3], "note": "héllo"});
    let r = server.post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": payload})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["status"], "queued");
    let id = r.json["id"].as_str().unwrap().to_string();

    let n = server.wait_notification(&ws.key, &id, |n| n["status"] == "delivered").await;
    assert_eq!(n["attempt_count"], 1);
    let attempts = n["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["succeeded"], true);
    assert_eq!(attempts[0]["status_code"], 200);
    assert!(attempts[0]["error_class"].is_null());

    let seen = receiver.received();
    assert_eq!(seen.len(), 1);
    let got = &seen[0];
    assert!(got.verify(&secret), "signature must verify with the Standard Webhooks library");
    assert!(!got.verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "another secret must not verify");
    assert_eq!(got.webhook_id(), id, "webhook-id is the notification id");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&got.body).unwrap(), payload);
    assert_eq!(got.headers["content-type"], "application/json");
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_on_the_schedule_then_fails_and_replay_delivers() {
    // Schedule 200ms,400ms,800ms from the harness: four attempts in all.
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    let receiver = Receiver::start().await;
    receiver.set_status(500);
    let (channel, secret) = server.channel(&ws.key, &receiver.url).await;
    let r = server.post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": {"n": 1}})).await;
    let id = r.json["id"].as_str().unwrap().to_string();

    let n = server.wait_notification(&ws.key, &id, |n| n["status"] == "failed").await;
    assert_eq!(n["attempt_count"], 4);
    for a in n["attempts"].as_array().unwrap() {
        assert_eq!(a["succeeded"], false);
        assert_eq!(a["status_code"], 500);
        assert_eq!(a["error_class"], "http_status");
    }
    let seen = receiver.received();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|s| s.verify(&secret) && s.webhook_id() == id), "every retry is signed with the same id");
    // Retries wait at least the scheduled delay less the 10% jitter.
    for (i, min_ms) in [180u64, 360, 720].into_iter().enumerate() {
        let gap = seen[i + 1].at.duration_since(seen[i].at);
        assert!(gap >= Duration::from_millis(min_ms), "retry {} came after {gap:?}", i + 1);
    }

    // Replaying something that is not failed is a conflict.
    receiver.set_status(204);
    let replay = server.post(&format!("/v1/notifications/{id}/replay"), &ws.key, json!({})).await;
    assert_eq!(replay.status, 202, "{}", replay.text);
    let n = server.wait_notification(&ws.key, &id, |n| n["status"] == "delivered").await;
    assert_eq!(n["attempt_count"], 5);
    assert_eq!(n["attempts"][4]["status_code"], 204);
    let again = server.post(&format!("/v1/notifications/{id}/replay"), &ws.key, json!({})).await;
    again.assert_problem(409, "conflict");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_returns_the_original_notification() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    let receiver = Receiver::start().await;
    let (channel, _) = server.channel(&ws.key, &receiver.url).await;
    let send = |key: &'static str, n: u32| {
        server.post(
            "/v1/notifications",
            &ws.key,
            json!({"channel_id": channel, "payload": {"n": n}, "idempotency_key": key}),
        )
    };
    let first = send("order-42", 1).await;
    let second = send("order-42", 2).await;
    let other = send("order-43", 3).await;
    assert_eq!(first.status, 202);
    assert_eq!(second.status, 202);
    assert_eq!(first.json["id"], second.json["id"]);
    assert!(first.headers.get("idempotent-replayed").is_none());
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_ne!(first.json["id"], other.json["id"]);

    let seen = receiver.wait_for(2, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 2, "exactly one delivery per idempotency key");
    let bodies: HashSet<String> = seen.iter().map(|s| String::from_utf8_lossy(&s.body).into_owned()).collect();
    assert_eq!(bodies, HashSet::from([r#"{"n":1}"#.to_string(), r#"{"n":3}"#.to_string()]));

    // Another workspace's identical key is independent.
    let ws2 = server.workspace("other");
    let (channel2, _) = server.channel(&ws2.key, &receiver.url).await;
    let r = server
        .post(
            "/v1/notifications",
            &ws2.key,
            json!({"channel_id": channel2, "payload": {}, "idempotency_key": "order-42"}),
        )
        .await;
    assert_eq!(r.status, 202);
    assert_ne!(r.json["id"], first.json["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn private_and_metadata_destinations_are_refused_outside_development_mode() {
    let server = TestServer::spawn_with(ServerOptions::default().env("CHIMATIC_ALLOW_PRIVATE_DESTINATIONS", "0")).await;
    let ws = server.workspace("acme");
    for url in [
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",
        "https://10.0.0.8/hook",
        "https://192.168.1.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fd00:ec2::254]/",
    ] {
        let r = server.post("/v1/channels", &ws.key, json!({"type": "webhook", "url": url})).await;
        r.assert_problem(422, "forbidden_destination");
    }
    let r = server.post("/v1/channels", &ws.key, json!({"type": "webhook", "url": "http://example.com/hook"})).await;
    r.assert_problem(422, "invalid_url");
    let list = server.get("/v1/channels", &ws.key).await;
    assert_eq!(list.json["data"].as_array().unwrap().len(), 0, "nothing was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_burst_loses_no_accepted_notification() {
    let opts = ServerOptions::default()
        .env("CHIMATIC_RETRY_SCHEDULE", &vec!["300ms"; 40].join(","))
        .env("CHIMATIC_DELIVERY_TIMEOUT_SECS", "1");
    let mut server = TestServer::spawn_with(opts.clone()).await;
    let dir = server.keep_dir().unwrap();
    let ws = server.workspace("acme");
    let receiver = Receiver::start().await;
    receiver.set_status(503);
    let (channel, secret) = server.channel(&ws.key, &receiver.url).await;

    // A burst from 16 concurrent senders; the server is killed while it is in flight.
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(HashSet::new()));
    let mut senders = Vec::new();
    for s in 0..16 {
        let (http, url, key, channel, accepted) =
            (server.http.clone(), server.url("/v1/notifications"), ws.key.clone(), channel.clone(), accepted.clone());
        senders.push(tokio::spawn(async move {
            for i in 0..1000 {
                let body = json!({"channel_id": channel, "payload": {"sender": s, "i": i}});
                let Ok(resp) = http.post(&url).bearer_auth(&key).json(&body).send().await else { break };
                if resp.status() != 202 {
                    break;
                }
                let Ok(v) = resp.json::<serde_json::Value>().await else { break };
                accepted.lock().unwrap().insert(v["id"].as_str().unwrap().to_string());
            }
        }));
    }
    while accepted.lock().unwrap().len() < 150 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill9();
    for s in senders {
        let _ = s.await;
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= 150);

    receiver.set_status(200);
    let server = TestServer::spawn_in(&dir.path().join("data"), opts).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let delivered = loop {
        let ok: HashSet<String> =
            receiver.received().iter().filter(|r| r.verify(&secret)).map(|r| r.webhook_id()).collect();
        if accepted.is_subset(&ok) || std::time::Instant::now() > deadline {
            break ok;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let missing: Vec<_> = accepted.difference(&delivered).collect();
    assert!(missing.is_empty(), "{} of {} accepted notifications never arrived", missing.len(), accepted.len());
    let some = accepted.iter().next().unwrap();
    server.wait_notification(&ws.key, some, |n| n["status"] == "delivered").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_with_a_backlog_on_a_slow_endpoint_does_not_starve_another() {
    let server = TestServer::spawn_with(ServerOptions::default().env("CHIMATIC_DELIVERY_CONCURRENCY", "8")).await;
    let (noisy, quiet) = (server.workspace("noisy"), server.workspace("quiet"));
    let (slow, fast) = (Receiver::start().await, Receiver::start().await);
    slow.set_delay(Duration::from_millis(100));
    let (slow_channel, _) = server.channel(&noisy.key, &slow.url).await;
    let (fast_channel, _) = server.channel(&quiet.key, &fast.url).await;

    // 400 deliveries of 100 ms each on 8 workers: about five seconds of backlog.
    let items: Vec<_> = (0..400).map(|i| json!({"channel_id": slow_channel, "payload": {"i": i}})).collect();
    let r = server.post("/v1/notifications/batch", &noisy.key, json!({"items": items})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    slow.wait_for(8, Duration::from_secs(10)).await;

    for i in 0..10 {
        let r = server
            .post("/v1/notifications", &quiet.key, json!({"channel_id": fast_channel, "payload": {"i": i}}))
            .await;
        assert_eq!(r.status, 202);
    }
    let got = fast.wait_for(10, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 10);
    let noisy_done = slow.received().len();
    assert!(
        noisy_done < 200,
        "the quiet tenant waited behind the noisy one's backlog: {noisy_done} of 400 were delivered first"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_whose_receiver_hangs_cannot_hold_every_delivery_worker() {
    let server = TestServer::spawn_with(ServerOptions::default().env("CHIMATIC_DELIVERY_CONCURRENCY", "8")).await;
    let (stuck, other) = (server.workspace("stuck"), server.workspace("other"));
    let (hanging, fast) = (Receiver::start().await, Receiver::start().await);
    hanging.set_delay(Duration::from_secs(8));
    let (hanging_channel, _) = server.channel(&stuck.key, &hanging.url).await;
    let (fast_channel, _) = server.channel(&other.key, &fast.url).await;

    let items: Vec<_> = (0..40).map(|i| json!({"channel_id": hanging_channel, "payload": {"i": i}})).collect();
    let r = server.post("/v1/notifications/batch", &stuck.key, json!({"items": items})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    // The stuck tenant gets at most 7 of the 8 workers (one is kept for others), however long it waits.
    let first = hanging.wait_for(7, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(hanging.received().len(), 7, "a tenant held more than its share of the workers");

    // The other tenant is delivered while every one of the stuck tenant's requests still hangs.
    let r =
        server.post("/v1/notifications", &other.key, json!({"channel_id": fast_channel, "payload": {"x": 1}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let got = fast.wait_for(1, Duration::from_secs(7)).await;
    assert_eq!(got.len(), 1, "the other tenant waited for a worker held by a hanging receiver");
    let earliest_release = first.iter().map(|r| r.at).min().unwrap() + Duration::from_secs(8);
    assert!(got[0].at < earliest_release, "delivered only after a stuck request gave its worker back");
}
