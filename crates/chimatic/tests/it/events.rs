//! Events end to end: a workflow renders an event for each subscriber, one notification per
//! step and channel is queued in one transaction, and each is delivered through its
//! integration — email to a real SMTP server over TLS, SMS and Slack to stand-ins that check the
//! providers' request formats and authentication — or lands in the in-app inbox.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};

use crate::harness::{ServerOptions, TestServer};
use crate::providers::{Pki, SmtpServer};
use crate::security::random_hex;

pub(crate) type Seen = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

/// Stand-ins for the SMS and Slack APIs that record (path, authorization, body).
pub(crate) async fn provider_apis() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = |path: &'static str| {
        move |State(seen): State<Seen>, headers: HeaderMap, body: String| async move {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
            seen.lock().unwrap().push((path.to_string(), auth, body));
            if path == "slack" {
                axum::Json(json!({"ok": true, "ts": "1.2"}))
            } else {
                axum::Json(json!({"sid": "SM1", "status": "queued"}))
            }
        }
    };
    let router = axum::Router::new()
        .route("/sms/2010-04-01/Accounts/AC0123456789/Messages.json", post(record("sms")))
        .route("/slack/chat.postMessage", post(record("slack")))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, seen)
}

async fn created(server: &TestServer, key: &str, path: &str, body: Value) -> String {
    let r = server.post(path, key, body).await;
    assert!(r.status == 201 || r.status == 200, "{path}: {}", r.text);
    r.json["id"].as_str().unwrap().to_string()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_is_rendered_per_subscriber_and_delivered_through_every_channel() {
    let pki = Pki::new();
    let smtp = SmtpServer::start(&pki, "starttls", false);
    let (base, seen) = provider_apis().await;
    let options = ServerOptions::default()
        .env("CHIMATIC_OUTBOUND_CA_FILE", pki.path("ca.pem").to_str().unwrap())
        .env("CHIMATIC_HEALTH_CHECK_INTERVAL_SECS", "3600");
    let server = TestServer::spawn_with(options).await;
    let ws = server.workspace("events");
    let key = ws.key.as_str();

    let smtp_int = created(
        &server,
        key,
        "/v1/integrations",
        json!({"kind": "smtp", "name": "mail",
               "settings": {"host": "localhost", "port": smtp.port, "security": "starttls", "from": "shop@example.com"},
               "credentials": {"username": "mailer", "password": "right-password"}}),
    )
    .await;
    let sms_int = created(
        &server,
        key,
        "/v1/integrations",
        json!({"kind": "sms", "name": "sms",
               "settings": {"base_url": format!("{base}/sms"), "account_id": "AC0123456789", "from": "+14155550100"},
               "credentials": {"auth_token": "sms-token"}}),
    )
    .await;
    let slack_int = created(
        &server,
        key,
        "/v1/integrations",
        json!({"kind": "slack", "name": "slack", "settings": {"api_base": format!("{base}/slack")},
               "credentials": {"bot_token": "xoxb-right"}}),
    )
    .await;
    let r = server
        .post(
            "/v1/workflows",
            key,
            json!({"key": "order.shipped", "steps": [
                {"channel": "email", "integration_id": smtp_int, "subject": "Order {{ data.order }} shipped",
                 "text": "Hi {{ subscriber.name }}, {{ data.note }}", "html": "<p>{{ data.note }}</p>"},
                {"channel": "sms", "integration_id": sms_int, "text": "Order {{ data.order }} shipped"},
                {"channel": "slack", "integration_id": slack_int, "text": "Order {{ data.order }} for {{ subscriber.name }}"},
                {"channel": "inapp", "title": "Shipped", "text": "Order {{ data.order }} is on its way"}
            ]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let tag = random_hex(6);
    let ann_email = format!("ann.{tag}@example.com");
    let ann =
        created(&server, key, "/v1/subscribers", json!({"external_id": "ann", "attributes": {"name": "Ann"}})).await;
    for body in [
        json!({"type": "email", "address": ann_email}),
        json!({"type": "sms", "phone": "+14155550123"}),
        json!({"type": "slack", "channel_id": "C0123456789"}),
        json!({"type": "inapp"}),
    ] {
        created(&server, key, &format!("/v1/subscribers/{ann}/channels"), body).await;
    }
    let bob =
        created(&server, key, "/v1/subscribers", json!({"external_id": "bob", "attributes": {"name": "Bob"}})).await;
    created(&server, key, &format!("/v1/subscribers/{bob}/channels"), json!({"type": "inapp"})).await;

    let note = format!("<b>note-canary-{tag}</b>");
    let event = json!({"name": "order.shipped", "to": ["ann", "bob", "dave"], "data": {"order": 42, "note": note},
                       "idempotency_key": format!("evt-{tag}")});
    let r = server.post("/v1/events", key, event.clone()).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.json["event_id"].as_str().unwrap().starts_with("evt_"));
    let ids: Vec<String> =
        r.json["notifications"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().into()).collect();
    assert_eq!(ids.len(), 5, "ann: email, sms, slack, in-app; bob: in-app: {}", r.text);
    let skipped: Vec<(u64, Value, String)> = r.json["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["index"].as_u64().unwrap(), s["step"].clone(), s["reason"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        skipped,
        vec![
            (1, json!(0), "no_channel".to_string()),
            (1, json!(1), "no_channel".to_string()),
            (1, json!(2), "no_channel".to_string()),
            (2, Value::Null, "unknown_subscriber".to_string()),
        ]
    );
    assert!(!r.text.contains("dave"), "an unknown id is not echoed");

    // Every notification is delivered, and says what it was.
    let mut kinds = Vec::new();
    for id in &ids {
        let n = server.wait_notification(key, id, |n| n["status"] == "delivered").await;
        assert_eq!(n["event_id"], r.json["event_id"]);
        assert!(n["channel_id"].is_null());
        kinds.push(n["type"].as_str().unwrap().to_string());
    }
    kinds.sort();
    assert_eq!(kinds, ["email", "inapp", "inapp", "slack", "sms"]);

    // Email: one multipart message over TLS to Ann, HTML escaped, text as rendered.
    let messages: Vec<Value> = smtp.events().into_iter().filter(|e| e["event"] == "message").collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let mail = &messages[0];
    assert_eq!(mail["to"], json!([ann_email]));
    assert_eq!(mail["from"], "shop@example.com");
    assert_eq!(mail["tls"], true);
    let data = mail["data"].as_str().unwrap();
    assert!(data.contains("Subject: Order 42 shipped"), "{data}");
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(data.contains(&format!("Hi Ann, {note}")), "{data}");
    assert!(data.contains(&format!("&lt;b&gt;note-canary-{tag}&lt;&#x2f;b&gt;")), "{data}");

    // SMS and Slack: the providers' formats and credentials.
    let calls = seen.lock().unwrap().clone();
    let sms = calls.iter().find(|c| c.0 == "sms").expect("an SMS request");
    assert_eq!(sms.1.as_deref(), Some("Basic QUMwMTIzNDU2Nzg5OnNtcy10b2tlbg=="));
    assert!(sms.2.contains("To=%2B14155550123") && sms.2.contains("From=%2B14155550100"), "{}", sms.2);
    assert!(sms.2.contains("Body=Order+42+shipped"), "{}", sms.2);
    let slack = calls.iter().find(|c| c.0 == "slack").expect("a Slack request");
    assert_eq!(slack.1.as_deref(), Some("Bearer xoxb-right"));
    assert_eq!(
        serde_json::from_str::<Value>(&slack.2).unwrap(),
        json!({"channel": "C0123456789", "text": "Order 42 for Ann"})
    );

    // In-app: the inbox, newest first, with an unread count; marking read and archived.
    let inbox = server.get(&format!("/v1/subscribers/{ann}/inbox"), key).await;
    assert_eq!(inbox.status, 200, "{}", inbox.text);
    assert_eq!(inbox.json["unread_count"], 1);
    assert_eq!(inbox.json["data"][0]["title"], "Shipped");
    assert_eq!(inbox.json["data"][0]["text"], "Order 42 is on its way");
    let message = inbox.json["data"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/subscribers/{ann}/inbox/{message}");
    let marked = server.call("PATCH", &path, Some(key), Some(json!({"read": true}))).await;
    assert_eq!(marked.status, 200, "{}", marked.text);
    assert!(marked.json["read_at"].is_string());
    assert_eq!(server.get(&format!("/v1/subscribers/{ann}/inbox"), key).await.json["unread_count"], 0);
    server.call("PATCH", &path, Some(key), Some(json!({"archived": true}))).await;
    assert_eq!(server.get(&format!("/v1/subscribers/{ann}/inbox"), key).await.json["data"], json!([]));
    let with_archived = server.get(&format!("/v1/subscribers/{ann}/inbox?archived=true"), key).await;
    assert_eq!(with_archived.json["data"].as_array().unwrap().len(), 1);
    assert_eq!(server.get(&format!("/v1/subscribers/{bob}/inbox"), key).await.json["unread_count"], 1);
    // Bob's id with Ann's message: not his.
    server
        .call("PATCH", &format!("/v1/subscribers/{bob}/inbox/{message}"), Some(key), Some(json!({"read": true})))
        .await
        .assert_problem(404, "not_found");

    // The same idempotency key: the original event, nothing sent again.
    let again = server.post("/v1/events", key, event).await;
    assert_eq!((again.status, &again.json["event_id"]), (200, &r.json["event_id"]), "{}", again.text);
    assert_eq!(again.json["idempotent_replayed"], true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.events().iter().filter(|e| e["event"] == "message").count(), 1);

    // Refusals: an event no workflow handles; recipients with nowhere to send.
    server
        .post("/v1/events", key, json!({"name": "no.such.event", "to": ["ann"]}))
        .await
        .assert_problem(422, "unknown_event");
    server
        .post("/v1/events", key, json!({"name": "order.shipped", "to": ["dave"]}))
        .await
        .assert_problem(422, "nothing_to_send");
    server
        .post("/v1/events", key, json!({"name": "order.shipped", "to": []}))
        .await
        .assert_problem(422, "invalid_event");

    // Addresses and rendered content are encrypted at rest.
    for (file, bytes) in server.probe().files_on_disk() {
        for needle in [ann_email.as_str(), &format!("note-canary-{tag}"), "Order 42 is on its way"] {
            assert!(!contains(&bytes, needle.as_bytes()), "{needle} is in {}", file.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn opted_out_messages_are_recorded_as_skipped_and_never_sent() {
    let (base, seen) = provider_apis().await;
    let server = TestServer::spawn().await;
    let ws = server.workspace("preferences");
    let key = ws.key.as_str();
    let sms_int = created(
        &server,
        key,
        "/v1/integrations",
        json!({"kind": "sms", "name": "sms",
               "settings": {"base_url": format!("{base}/sms"), "account_id": "AC0123456789", "from": "+14155550100"},
               "credentials": {"auth_token": "sms-token"}}),
    )
    .await;
    let r = server
        .post(
            "/v1/workflows",
            key,
            json!({"key": "sale.started", "category": "marketing", "steps": [
                {"channel": "sms", "integration_id": sms_int, "text": "Sale!"},
                {"channel": "inapp", "title": "Sale", "text": "Sale!"}
            ]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut subscribers = Vec::new();
    for (name, prefs) in [
        ("ann", json!({"channels": {"sms": false}})),
        ("bob", json!({"categories": {"marketing": false}})),
        ("cat", json!({"categories": {"orders": false}})),
    ] {
        let id = created(&server, key, "/v1/subscribers", json!({"external_id": name})).await;
        created(
            &server,
            key,
            &format!("/v1/subscribers/{id}/channels"),
            json!({"type": "sms", "phone": "+14155550123"}),
        )
        .await;
        created(&server, key, &format!("/v1/subscribers/{id}/channels"), json!({"type": "inapp"})).await;
        let set =
            server.call("PUT", &format!("/v1/subscribers/{id}/preferences"), Some(key), Some(prefs.clone())).await;
        assert_eq!(set.status, 200, "{}", set.text);
        let got = server.get(&format!("/v1/subscribers/{id}/preferences"), key).await;
        assert_eq!(got.json["channels"], prefs.get("channels").cloned().unwrap_or_else(|| json!({})));
        subscribers.push(id);
    }
    let bad = server
        .call(
            "PUT",
            &format!("/v1/subscribers/{}/preferences", subscribers[0]),
            Some(key),
            Some(json!({"channels": {"fax": false}})),
        )
        .await;
    bad.assert_problem(422, "invalid_body");
    let bad = server
        .call(
            "PUT",
            &format!("/v1/subscribers/{}/preferences", subscribers[0]),
            Some(key),
            Some(json!({"categories": {"Bad Name": false}})),
        )
        .await;
    bad.assert_problem(422, "invalid_preferences");

    let r = server.post("/v1/events", key, json!({"name": "sale.started", "to": ["ann", "bob", "cat"]})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let reasons: Vec<(u64, u64)> = r.json["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["reason"] == "opted_out")
        .map(|s| (s["index"].as_u64().unwrap(), s["step"].as_u64().unwrap()))
        .collect();
    assert_eq!(reasons, vec![(0, 0), (1, 0), (1, 1)], "{}", r.text);

    // Six notifications: ann's SMS and both of bob's are recorded as skipped, the rest delivered.
    let mut statuses = std::collections::BTreeMap::new();
    for id in r.json["notifications"].as_array().unwrap() {
        let id = id.as_str().unwrap();
        let n = server.wait_notification(key, id, |n| n["status"] == "delivered" || n["status"] == "skipped").await;
        let who = subscribers.iter().position(|s| n["subscriber_id"] == s.as_str()).unwrap();
        statuses.insert((who, n["type"].as_str().unwrap().to_string()), n["status"].as_str().unwrap().to_string());
        if n["status"] == "skipped" {
            assert_eq!(n["attempt_count"], 0);
        }
    }
    let expected: std::collections::BTreeMap<(usize, String), String> = [
        ((0, "inapp"), "delivered"),
        ((0, "sms"), "skipped"),
        ((1, "inapp"), "skipped"),
        ((1, "sms"), "skipped"),
        ((2, "inapp"), "delivered"),
        ((2, "sms"), "delivered"),
    ]
    .into_iter()
    .map(|((i, k), s)| ((i, k.to_string()), s.to_string()))
    .collect();
    assert_eq!(statuses, expected);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.lock().unwrap().iter().filter(|c| c.0 == "sms").count(), 1, "only cat's SMS is sent");
    assert_eq!(server.get(&format!("/v1/subscribers/{}/inbox", subscribers[1]), key).await.json["data"], json!([]));
}
