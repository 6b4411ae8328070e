//! Delivery feedback: providers' signed webhooks (bounces, complaints, SMS status callbacks)
//! feed a per-workspace suppression list; later sends to a suppressed address are recorded as
//! `suppressed` and never sent; and a failing primary integration hands over to its fallback.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::events::provider_apis;
use crate::harness::{Receiver, ServerOptions, TestServer};
use crate::providers::{Pki, SmtpServer};
use crate::security::random_hex;
use crate::store_probe::Db;

async fn created(server: &TestServer, key: &str, path: &str, body: Value) -> String {
    let r = server.post(path, key, body).await;
    assert!(r.status == 201 || r.status == 200, "{path}: {}", r.text);
    r.json["id"].as_str().unwrap().to_string()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Posts an email provider's event signed per Standard Webhooks (by the reference library).
async fn post_signed(
    server: &TestServer,
    integration: &str,
    secret: &str,
    id: &str,
    ts: i64,
    body: &Value,
) -> (u16, Value) {
    let payload = serde_json::to_vec(body).unwrap();
    let signature = standardwebhooks::Webhook::new(secret).unwrap().sign(id, ts, &payload).unwrap();
    let r = server
        .http
        .post(server.url(&format!("/v1/inbound/{integration}")))
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .header("content-type", "application/json")
        .body(payload)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn bounce(address: &str) -> Value {
    json!({"type": "email.bounced", "created_at": "2026-11-24T10:00:00Z",
           "data": {"email_id": "em_1", "to": [address], "bounce": {"type": "Permanent", "subType": "General"}}})
}

struct Tenant {
    key: String,
    integration: String,
    secret: String,
}

async fn email_tenant(server: &TestServer, name: &str, smtp_port: u16, subscribers: &[(&str, &str)]) -> Tenant {
    let ws = server.workspace(name);
    let secret = format!("whsec_{}", STANDARD.encode(random_hex(16)));
    let integration = created(
        server,
        &ws.key,
        "/v1/integrations",
        json!({"kind": "smtp", "name": "mail",
               "settings": {"host": "localhost", "port": smtp_port, "security": "starttls", "from": "shop@example.com"},
               "credentials": {"username": "mailer", "password": "right-password", "inbound_signing_secret": secret}}),
    )
    .await;
    created(
        server,
        &ws.key,
        "/v1/workflows",
        json!({"key": "order.shipped", "steps": [
            {"channel": "email", "integration_id": integration, "subject": "Shipped", "text": "Your order shipped"}]}),
    )
    .await;
    for (external, email) in subscribers {
        let sub = created(server, &ws.key, "/v1/subscribers", json!({"external_id": external})).await;
        created(
            server,
            &ws.key,
            &format!("/v1/subscribers/{sub}/channels"),
            json!({"type": "email", "address": email}),
        )
        .await;
    }
    Tenant { key: ws.key, integration, secret }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_hard_bounce_suppresses_that_address_in_its_workspace_only() {
    let pki = Pki::new();
    let smtp = SmtpServer::start(&pki, "starttls", false);
    let options = ServerOptions::default()
        .env("CHIMATIC_OUTBOUND_CA_FILE", pki.path("ca.pem").to_str().unwrap())
        .env("CHIMATIC_HEALTH_CHECK_INTERVAL_SECS", "3600");
    let server = TestServer::spawn_with(options).await;
    let tag = random_hex(6);
    let ann = format!("bounce.canary.{tag}@example.com");
    let bob = format!("bob.{tag}@example.com");
    let a = email_tenant(&server, "a", smtp.port, &[("ann", &ann), ("bob", &bob)]).await;
    let b = email_tenant(&server, "b", smtp.port, &[("ann", &ann)]).await;
    let probe = server.probe();

    // Not verified: another workspace's secret, a tampered body, no signature, a stale timestamp.
    let (status, body) = post_signed(&server, &a.integration, &b.secret, "evt_forged", now_secs(), &bounce(&ann)).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("invalid_signature")));
    let r = server
        .http
        .post(server.url(&format!("/v1/inbound/{}", a.integration)))
        .body(serde_json::to_vec(&bounce(&ann)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (status, body) =
        post_signed(&server, &a.integration, &a.secret, "evt_stale", now_secs() - 600, &bounce(&ann)).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("stale_webhook")));
    let (status, _) =
        post_signed(&server, "int_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", &a.secret, "e", now_secs(), &bounce(&ann)).await;
    assert_eq!(status, 404, "an unknown integration");
    assert_eq!(probe.count(Db::Data, "inbound_events"), 0, "nothing unverified is recorded");
    assert_eq!(probe.count(Db::Data, "suppressions"), 0);

    // A verified hard bounce (the provider's casing differs from ours) suppresses ann in A.
    let shouted = ann.to_uppercase();
    let (status, body) = post_signed(&server, &a.integration, &a.secret, "evt_1", now_secs(), &bounce(&shouted)).await;
    assert_eq!((status, &body), (200, &json!({"duplicate": false, "suppressed": 1})));
    // The provider redelivers it: recognised, nothing changes.
    let (status, body) = post_signed(&server, &a.integration, &a.secret, "evt_1", now_secs(), &bounce(&shouted)).await;
    assert_eq!((status, &body), (200, &json!({"duplicate": true, "suppressed": 0})));
    // Soft bounces and deliveries are recorded only.
    let soft = json!({"type": "email.bounced", "data": {"to": [bob], "bounce": {"type": "Transient"}}});
    let (_, body) = post_signed(&server, &a.integration, &a.secret, "evt_2", now_secs(), &soft).await;
    assert_eq!(body, json!({"duplicate": false, "suppressed": 0}));
    // A verified body that is not a provider event: a clear 422, nothing recorded.
    let (status, body) = post_signed(&server, &a.integration, &a.secret, "evt_3", now_secs(), &json!({"x": 1})).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_event")));

    let list = server.get("/v1/suppressions", &a.key).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let entries = list.json["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", list.text);
    assert_eq!(entries[0]["reason"], "hard_bounce");
    assert_eq!(entries[0]["type"], "email");
    assert_eq!(entries[0]["integration_id"], a.integration.as_str());
    assert!(!list.text.contains(&tag), "addresses are masked: {}", list.text);
    assert_eq!(server.get("/v1/suppressions", &b.key).await.json["data"], json!([]), "B's list is untouched");

    let history = server.get(&format!("/v1/integrations/{}/inbound", a.integration), &a.key).await;
    let kinds: Vec<(&str, &str)> = history.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, vec![("soft_bounce", "recorded"), ("hard_bounce", "suppressed")], "{}", history.text);
    assert!(!history.text.contains(&tag), "{}", history.text);
    // Another workspace sees none of it.
    server.get(&format!("/v1/integrations/{}/inbound", a.integration), &b.key).await.assert_problem(404, "not_found");
    // A bad query string is a problem+json 400 on both lists (axum's own rejection is text/plain).
    for q in ["limit=abc", "limit=1.5", "limit=1&limit=2"] {
        server.get(&format!("/v1/suppressions?{q}"), &a.key).await.assert_problem(400, "invalid_query");
    }
    for q in ["limit=abc", "limit=-1"] {
        let url = format!("/v1/integrations/{}/inbound?{q}", a.integration);
        server.get(&url, &a.key).await.assert_problem(400, "invalid_query");
    }

    // A sends to ann and bob: ann's email is suppressed, bob's is delivered. B's ann still gets hers.
    let r = server.post("/v1/events", &a.key, json!({"name": "order.shipped", "to": ["ann", "bob"]})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["skipped"], json!([{"index": 0, "step": 0, "reason": "suppressed"}]));
    let ids: Vec<String> =
        r.json["notifications"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let mut statuses = Vec::new();
    for id in &ids {
        let n = server.wait_notification(&a.key, id, |n| n["status"] != "queued" && n["status"] != "delivering").await;
        statuses.push(n["status"].as_str().unwrap().to_string());
    }
    assert_eq!(statuses, vec!["suppressed", "delivered"]);
    let r = server.post("/v1/events", &b.key, json!({"name": "order.shipped", "to": ["ann"]})).await;
    let id = r.json["notifications"][0].as_str().unwrap().to_string();
    server.wait_notification(&b.key, &id, |n| n["status"] == "delivered").await;
    let mut recipients: Vec<Value> =
        smtp.events().into_iter().filter(|e| e["event"] == "message").map(|e| e["to"].clone()).collect();
    recipients.sort_by_key(|v| v.to_string());
    let mut expected = vec![json!([bob]), json!([ann])];
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(recipients, expected, "ann got B's email only");

    // The list is the workspace's own: B cannot remove A's entry; A can, and ann is reachable again.
    let entry = entries[0]["id"].as_str().unwrap();
    server.delete(&format!("/v1/suppressions/{entry}"), &b.key).await.assert_problem(404, "not_found");
    assert_eq!(server.delete(&format!("/v1/suppressions/{entry}"), &a.key).await.status, 204);
    let r = server.post("/v1/events", &a.key, json!({"name": "order.shipped", "to": ["ann"]})).await;
    assert_eq!(r.json["skipped"], json!([]));

    // Manual entries: validated, no duplicates, never echoed.
    let r = server.post("/v1/suppressions", &a.key, json!({"type": "email", "address": bob})).await;
    assert_eq!((r.status, r.json["reason"].as_str()), (201, Some("manual")), "{}", r.text);
    server
        .post("/v1/suppressions", &a.key, json!({"type": "email", "address": bob}))
        .await
        .assert_problem(409, "conflict");
    let r = server.post("/v1/suppressions", &a.key, json!({"type": "email", "address": format!("nope-{tag}")})).await;
    r.assert_problem(422, "invalid_address");
    assert!(!r.text.contains(&tag));
    server
        .post("/v1/suppressions", &a.key, json!({"type": "inapp", "address": "x"}))
        .await
        .assert_problem(422, "invalid_body");

    // No address in plaintext in any file or the log.
    for (path, bytes) in probe.files_on_disk() {
        assert!(!contains(&bytes, ann.as_bytes()) && !contains(&bytes, bob.as_bytes()), "{}", path.display());
        assert!(!contains(&bytes, shouted.as_bytes()), "{}", path.display());
    }
    let log = server.log();
    assert!(!log.contains(&tag), "an address is in the log");
}

/// Twilio's signature: base64 HMAC-SHA1 over the URL and the sorted form fields.
fn twilio_signature(token: &str, url: &str, fields: &[(&str, &str)]) -> String {
    let mut sorted = fields.to_vec();
    sorted.sort();
    let data: String = sorted.iter().fold(url.to_string(), |acc, (k, v)| format!("{acc}{k}{v}"));
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    STANDARD.encode(hmac::sign(&key, data.as_bytes()).as_ref())
}

#[tokio::test(flavor = "multi_thread")]
async fn twilio_status_callbacks_are_verified_and_a_stop_reply_suppresses_the_number() {
    let (base, seen) = provider_apis().await;
    let server =
        TestServer::spawn_with(ServerOptions::default().env("CHIMATIC_HEALTH_CHECK_INTERVAL_SECS", "3600")).await;
    let ws = server.workspace("sms");
    let key = ws.key.as_str();
    let integration = created(
        &server,
        key,
        "/v1/integrations",
        json!({"kind": "sms", "name": "sms",
               "settings": {"base_url": format!("{base}/sms"), "account_id": "AC0123456789", "from": "+14155550100"},
               "credentials": {"auth_token": "sms-token"}}),
    )
    .await;
    created(
        &server,
        key,
        "/v1/workflows",
        json!({"key": "code", "steps": [{"channel": "sms", "integration_id": integration, "text": "Your code"}]}),
    )
    .await;
    let sub = created(&server, key, "/v1/subscribers", json!({"external_id": "ann"})).await;
    created(&server, key, &format!("/v1/subscribers/{sub}/channels"), json!({"type": "sms", "phone": "+14155550123"}))
        .await;

    let url = server.url(&format!("/v1/inbound/{integration}"));
    let post = |fields: Vec<(&'static str, &'static str)>, signature: String| {
        let (server, url) = (&server, url.clone());
        async move {
            let r = server.http.post(&url).header("x-twilio-signature", signature).form(&fields).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let stop = vec![
        ("MessageSid", "SM1"),
        ("MessageStatus", "failed"),
        ("To", "+14155550123"),
        ("ErrorCode", "21610"),
        ("AccountSid", "AC0123456789"),
    ];
    // Signed with the wrong token, or over other fields: refused.
    assert_eq!(post(stop.clone(), twilio_signature("other-token", &url, &stop)).await.0, 401);
    let mut altered = stop.clone();
    altered[3] = ("ErrorCode", "30003");
    assert_eq!(post(altered, twilio_signature("sms-token", &url, &stop)).await.0, 401);
    // A temporary failure is recorded, not suppressed.
    let temporary =
        vec![("MessageSid", "SM0"), ("MessageStatus", "undelivered"), ("To", "+14155550123"), ("ErrorCode", "30003")];
    let (status, body) = post(temporary.clone(), twilio_signature("sms-token", &url, &temporary)).await;
    assert_eq!((status, body), (200, json!({"duplicate": false, "suppressed": 0})));
    assert_eq!(server.get("/v1/suppressions", key).await.json["data"], json!([]));
    // The STOP reply suppresses the number.
    let (status, body) = post(stop.clone(), twilio_signature("sms-token", &url, &stop)).await;
    assert_eq!((status, body), (200, json!({"duplicate": false, "suppressed": 1})));
    let list = server.get("/v1/suppressions", key).await;
    assert_eq!(list.json["data"][0]["reason"], "unsubscribed", "{}", list.text);
    assert!(!list.text.contains("5550123"), "{}", list.text);

    let r = server.post("/v1/events", key, json!({"name": "code", "to": ["ann"]})).await;
    assert_eq!(r.json["skipped"][0]["reason"], "suppressed", "{}", r.text);
    let id = r.json["notifications"][0].as_str().unwrap().to_string();
    let n = server.wait_notification(key, &id, |n| n["status"] != "queued").await;
    assert_eq!(n["status"], "suppressed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(seen.lock().unwrap().is_empty(), "no SMS was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_primary_integration_hands_over_to_its_fallback() {
    let dead = Receiver::start().await;
    dead.set_status(503);
    let dead_base = dead.url.trim_end_matches("/hook").to_string();
    let (base, seen) = provider_apis().await;
    let server =
        TestServer::spawn_with(ServerOptions::default().env("CHIMATIC_HEALTH_CHECK_INTERVAL_SECS", "3600")).await;
    let ws = server.workspace("failover");
    let key = ws.key.as_str();
    let sms = |name: &str, base: &str| {
        json!({"kind": "sms", "name": name,
               "settings": {"base_url": base, "account_id": "AC0123456789", "from": "+14155550100"},
               "credentials": {"auth_token": "sms-token"}})
    };
    let primary = created(&server, key, "/v1/integrations", sms("primary", &dead_base)).await;
    let fallback = created(&server, key, "/v1/integrations", sms("fallback", &format!("{base}/sms"))).await;
    let slack = created(
        &server,
        key,
        "/v1/integrations",
        json!({"kind": "slack", "name": "s", "credentials": {"bot_token": "x"}}),
    )
    .await;

    // Fallbacks are checked like primaries.
    let step = |extra: Value| {
        let mut s = json!({"channel": "sms", "integration_id": primary, "text": "Your code"});
        s.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"key": "code", "steps": [s]})
    };
    for (extra, why) in [
        (json!({"fallback_integration_id": slack}), "a slack fallback for sms"),
        (json!({"fallback_integration_id": primary}), "the primary as its own fallback"),
        (json!({"failover_after": 2}), "a threshold without a fallback"),
        (json!({"fallback_integration_id": fallback, "failover_after": 0}), "a zero threshold"),
        (json!({"fallback_integration_id": "int_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f"}), "an unknown fallback"),
    ] {
        let r = server.post("/v1/workflows", key, step(extra)).await;
        assert_eq!(r.status, 422, "{why}: {}", r.text);
    }
    created(&server, key, "/v1/workflows", step(json!({"fallback_integration_id": fallback, "failover_after": 2})))
        .await;
    let sub = created(&server, key, "/v1/subscribers", json!({"external_id": "ann"})).await;
    created(&server, key, &format!("/v1/subscribers/{sub}/channels"), json!({"type": "sms", "phone": "+14155550123"}))
        .await;

    let r = server.post("/v1/events", key, json!({"name": "code", "to": ["ann"]})).await;
    let id = r.json["notifications"][0].as_str().unwrap().to_string();
    let n = server.wait_notification(key, &id, |n| n["status"] == "delivered").await;
    let attempts: Vec<(bool, &str)> = n["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["succeeded"].as_bool().unwrap(), a["integration_id"].as_str().unwrap()))
        .collect();
    assert_eq!(attempts, vec![(false, primary.as_str()), (false, primary.as_str()), (true, fallback.as_str())]);
    assert_eq!(dead.received().len(), 2, "the primary was tried twice");
    let sent = seen.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "the fallback sent it once");
    assert!(sent[0].2.contains("To=%2B14155550123"), "{:?}", sent[0].2);
}
