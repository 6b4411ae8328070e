//! The orchestration issue's "done means", end to end: a new user configures an SMTP integration
//! and a webhook integration, creates 10,000 subscribers, sends one event to a topic of all of
//! them, and emails arrive at a real SMTP server (aiosmtpd, STARTTLS) and signed webhooks at a
//! receiver — with opted-out subscribers skipped, bounced addresses suppressed, and no address or
//! credential in plaintext in any file or the log.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::harness::{Receiver, ServerOptions, TestServer};
use crate::providers::{Pki, SmtpServer};
use crate::security::random_hex;
use crate::store_probe::Db;

const SUBSCRIBERS: usize = 10_000;
/// Every hundredth subscriber (from the 7th) opts out of email.
fn opted_out(i: usize) -> bool {
    i % 100 == 7
}
/// Every hundredth subscriber (from the 13th) has an address that bounced hard.
fn bounced(i: usize) -> bool {
    i % 100 == 13
}

fn email(tag: &str, i: usize) -> String {
    format!("member{i}.{tag}@example.com")
}

async fn created(server: &TestServer, key: &str, path: &str, body: Value) -> Value {
    let r = server.post(path, key, body).await;
    assert!(r.status == 201 || r.status == 200, "{path}: {}", r.text);
    r.json
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_to_a_topic_of_ten_thousand_reaches_every_mailbox_and_webhook_once() {
    let pki = Pki::new();
    let smtp = SmtpServer::start(&pki, "starttls", false);
    let receiver = Receiver::start().await;
    let hooks = receiver.url.trim_end_matches("/hook").to_string();
    let options = ServerOptions::default()
        .env("CHIMATIC_OUTBOUND_CA_FILE", pki.path("ca.pem").to_str().unwrap())
        .env("CHIMATIC_HEALTH_CHECK_INTERVAL_SECS", "3600");
    let server = Arc::new(TestServer::spawn_with(options).await);
    let ws = server.workspace("demo");
    let key = ws.key.clone();
    let tag = random_hex(6);
    let inbound_secret = format!("whsec_{}", STANDARD.encode(random_hex(16)));

    let smtp_int = created(
        &server,
        &key,
        "/v1/integrations",
        json!({"kind": "smtp", "name": "mail",
               "settings": {"host": "localhost", "port": smtp.port, "security": "starttls", "from": "news@example.com"},
               "credentials": {"username": "mailer", "password": "right-password",
                               "inbound_signing_secret": inbound_secret}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hook = created(&server, &key, "/v1/integrations", json!({"kind": "webhook", "name": "hooks"})).await;
    let (hook_int, hook_secret) =
        (hook["id"].as_str().unwrap().to_string(), hook["signing_secret"].as_str().unwrap().to_string());
    created(
        &server,
        &key,
        "/v1/workflows",
        json!({"key": "digest.weekly", "category": "digest", "steps": [
            {"channel": "email", "integration_id": smtp_int, "subject": "Your week, {{ subscriber.name }}",
             "text": "{{ data.count }} updates", "html": "<p>{{ data.count }} updates</p>"},
            {"channel": "webhook", "integration_id": hook_int, "text": "{{ data.count }} updates"}]}),
    )
    .await;
    let topic =
        created(&server, &key, "/v1/topics", json!({"key": "everyone"})).await["id"].as_str().unwrap().to_string();

    // 10,000 subscribers, each with an email address and a webhook endpoint.
    let started = Instant::now();
    let mut ids = vec![String::new(); SUBSCRIBERS];
    let workers = 16;
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (server, key, tag, hooks) = (server.clone(), key.clone(), tag.clone(), hooks.clone());
        set.spawn(async move {
            let mut mine = Vec::new();
            for i in (w..SUBSCRIBERS).step_by(workers) {
                let sub = created(
                    &server,
                    &key,
                    "/v1/subscribers",
                    json!({"external_id": format!("member-{i}"), "attributes": {"name": format!("m{i}")}}),
                )
                .await["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let channels = format!("/v1/subscribers/{sub}/channels");
                created(&server, &key, &channels, json!({"type": "email", "address": email(&tag, i)})).await;
                created(
                    &server,
                    &key,
                    &channels,
                    json!({"type": "webhook", "url": format!("{hooks}/member-{tag}/{i}")}),
                )
                .await;
                if opted_out(i) {
                    let prefs = json!({"channels": {"email": false}});
                    let r = server
                        .call("PUT", &format!("/v1/subscribers/{sub}/preferences"), Some(&key), Some(prefs))
                        .await;
                    assert_eq!(r.status, 200, "{}", r.text);
                }
                mine.push((i, sub));
            }
            mine
        });
    }
    while let Some(done) = set.join_next().await {
        for (i, sub) in done.unwrap() {
            ids[i] = sub;
        }
    }
    for chunk in ids.chunks(1000) {
        let r = server.post(&format!("/v1/topics/{topic}/subscribers"), &key, json!({"subscriber_ids": chunk})).await;
        assert_eq!(r.json["changed"], 1000, "{}", r.text);
    }
    eprintln!("demo: 10,000 subscribers with 2 channels each set up in {:?}", started.elapsed());

    // The email provider reports hard bounces for 100 addresses (signed, in batches of 10).
    let bounced_addresses: Vec<String> = (0..SUBSCRIBERS).filter(|&i| bounced(i)).map(|i| email(&tag, i)).collect();
    let signer = standardwebhooks::Webhook::new(&inbound_secret).unwrap();
    for (n, batch) in bounced_addresses.chunks(10).enumerate() {
        let body = serde_json::to_vec(&json!({"type": "email.bounced",
            "data": {"to": batch, "bounce": {"type": "Permanent", "subType": "General"}}}))
        .unwrap();
        let (id, ts) = (format!("evt_bounce_{n}"), chrono_now());
        let r = server
            .http
            .post(server.url(&format!("/v1/inbound/{smtp_int}")))
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signer.sign(&id, ts, &body).unwrap())
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }

    // One event to the topic.
    let started = Instant::now();
    let r = server
        .post("/v1/events", &key, json!({"name": "digest.weekly", "to": [{"topic": "everyone"}], "data": {"count": 3}}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["fanouts"], json!(["everyone"]));

    let expected_emails = (0..SUBSCRIBERS).filter(|&i| !opted_out(i) && !bounced(i)).count();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mails = smtp.events().iter().filter(|e| e["event"] == "message").count();
        let webhooks = receiver.received().len();
        if mails >= expected_emails && webhooks >= SUBSCRIBERS {
            break;
        }
        assert!(Instant::now() < deadline, "after 10 minutes: {mails} emails, {webhooks} webhooks");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("demo: {expected_emails} emails and {SUBSCRIBERS} webhooks delivered in {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Every mailbox that should get one got exactly one, over TLS; no opted-out or bounced one did.
    let messages: Vec<Value> = smtp.events().into_iter().filter(|e| e["event"] == "message").collect();
    assert_eq!(messages.len(), expected_emails, "no duplicates");
    let got: HashSet<String> = messages.iter().map(|m| m["to"][0].as_str().unwrap().to_string()).collect();
    let wanted: HashSet<String> =
        (0..SUBSCRIBERS).filter(|&i| !opted_out(i) && !bounced(i)).map(|i| email(&tag, i)).collect();
    assert!(got == wanted, "the emails went to exactly the expected mailboxes");
    assert!(messages.iter().all(|m| m["tls"] == true));
    assert!(messages[0]["data"].as_str().unwrap().contains("3 updates"));

    // Every subscriber's endpoint got exactly one webhook, signed with the integration's secret.
    let received = receiver.received();
    assert_eq!(received.len(), SUBSCRIBERS, "no duplicates");
    let paths: HashSet<String> = received.iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths.len(), SUBSCRIBERS, "one per subscriber");
    assert!(received.iter().all(|r| r.verify(&hook_secret)), "every webhook is signed");

    // The store agrees: 100 skipped (opted out), 100 suppressed (bounced), the rest delivered.
    let probe = server.probe();
    let count = |status: &str| probe.count(Db::Data, &format!("notifications WHERE status = '{status}'"));
    assert_eq!(count("skipped"), 100);
    assert_eq!(count("suppressed"), 100);
    assert_eq!(count("delivered") as usize, expected_emails + SUBSCRIBERS);

    // No address, endpoint or credential in plaintext in any file or in the log.
    let canaries = [tag.as_str(), "right-password", &inbound_secret[6..], &hook_secret[6..]];
    for (path, bytes) in probe.files_on_disk() {
        for c in &canaries {
            assert!(!contains(&bytes, c.as_bytes()), "{c} is in {}", path.display());
        }
    }
    let log = server.log();
    for c in &canaries {
        assert!(!log.contains(c), "{c} is in the log");
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}
