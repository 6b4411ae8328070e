//! The webhook portal: a subscriber token with the `portal` scope manages that subscriber's own
//! webhook endpoints (own secrets, rotation with overlap, disable, deliveries, replay), and
//! nothing of anyone else's.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Receiver, ServerOptions, TestServer};
use crate::security::random_hex;
use crate::store_probe::Db;

const WAIT: Duration = Duration::from_secs(20);

async fn created(server: &TestServer, key: &str, path: &str, body: Value) -> Value {
    let r = server.post(path, key, body).await;
    assert_eq!(r.status, 201, "{path}: {}", r.text);
    r.json
}

/// A call with a subscriber token: status, body.
async fn portal(server: &TestServer, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = server.http.request(m, server.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn token(server: &TestServer, key: &str, sub: &str, scopes: Value) -> String {
    let r = created(server, key, &format!("/v1/subscribers/{sub}/token"), json!({"scopes": scopes})).await;
    r["token"].as_str().unwrap().to_string()
}

/// Sends `order.shipped` to ann; the ids of the notifications it made.
async fn ship(server: &TestServer, key: &str) -> Vec<String> {
    let r = server.post("/v1/events", key, json!({"name": "order.shipped", "to": ["ann"], "data": {"order": 7}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.json["notifications"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

async fn wait_delivery(server: &TestServer, token: &str, endpoint: &str, id: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (code, page) =
            portal(server, "GET", &format!("/v1/portal/endpoints/{endpoint}/deliveries"), token, None).await;
        assert_eq!(code, 200, "{page}");
        let found = page["data"].as_array().unwrap().iter().find(|d| d["id"] == id).cloned();
        if let Some(d) = found.filter(|d| d["status"] == status) {
            return d;
        }
        assert!(std::time::Instant::now() < deadline, "{id} did not become {status}: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signatures(r: &crate::harness::Received) -> usize {
    r.headers["webhook-signature"].to_str().unwrap().split(' ').filter(|s| s.starts_with("v1,")).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_portal_token_manages_its_subscribers_endpoints_with_their_own_rotating_secrets() {
    let server = TestServer::spawn_with(ServerOptions::default().log("trace")).await;
    let ws = server.workspace("portal");
    let key = ws.key.as_str();
    let hook = created(&server, key, "/v1/integrations", json!({"kind": "webhook", "name": "hooks"})).await;
    let workspace_secret = hook["signing_secret"].as_str().unwrap().to_string();
    created(
        &server,
        key,
        "/v1/workflows",
        json!({"key": "order.shipped", "steps": [
            {"channel": "webhook", "integration_id": hook["id"], "text": "Order {{ data.order }} shipped"}]}),
    )
    .await;
    let ann = created(&server, key, "/v1/subscribers", json!({"external_id": "ann"})).await["id"].clone();
    let bob = created(&server, key, "/v1/subscribers", json!({"external_id": "bob"})).await["id"].clone();
    let (ann, bob) = (ann.as_str().unwrap(), bob.as_str().unwrap());
    let anns = token(&server, key, ann, json!(["portal"])).await;
    let bobs = token(&server, key, bob, json!(["inbox", "portal"])).await;
    let inbox_only = token(&server, key, ann, json!(["inbox"])).await;

    // Scopes: each token opens what it names, nothing else; the portal takes no token in the URL.
    let (code, body) = portal(&server, "GET", "/v1/portal/endpoints", &inbox_only, None).await;
    assert_eq!((code, &body["code"]), (403, &json!("insufficient_scope")), "{body}");
    let (code, body) = portal(&server, "GET", "/v1/inbox", &anns, None).await;
    assert_eq!((code, &body["code"]), (403, &json!("insufficient_scope")), "{body}");
    let r = server.http.get(server.url(&format!("/v1/portal/endpoints?token={anns}"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    server
        .post(&format!("/v1/subscribers/{ann}/token"), key, json!({"scopes": []}))
        .await
        .assert_problem(422, "invalid_scopes");

    // Adding: the URL is checked, and nothing is stored when it is refused.
    let tag = random_hex(6);
    let (code, body) =
        portal(&server, "POST", "/v1/portal/endpoints", &anns, Some(json!({"url": format!("ftp://x/{tag}")}))).await;
    assert_eq!((code, &body["code"]), (422, &json!("invalid_url")), "{body}");
    assert!(!body.to_string().contains(&tag), "the refusal echoes the URL: {body}");
    let (_, list) = portal(&server, "GET", "/v1/portal/endpoints", &anns, None).await;
    assert_eq!(list["data"], json!([]));

    let ok = Receiver::start().await;
    let (code, first) = portal(&server, "POST", "/v1/portal/endpoints", &anns, Some(json!({"url": ok.url}))).await;
    assert_eq!(code, 201, "{first}");
    let endpoint = first["id"].as_str().unwrap().to_string();
    let secret1 = first["signing_secret"].as_str().unwrap().to_string();
    assert!(secret1.starts_with("whsec_"));
    assert_eq!((&first["status"], &first["signed_with"]), (&json!("active"), &json!("endpoint")));
    let (_, list) = portal(&server, "GET", "/v1/portal/endpoints", &anns, None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&secret1) && !list.to_string().contains(&ok.url), "{list}");

    // Deliveries are signed with the endpoint's own secret, not the workspace's.
    let sent = ship(&server, key).await;
    let got = ok.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].verify(&secret1) && !got[0].verify(&workspace_secret));
    assert_eq!((got[0].webhook_id(), signatures(&got[0])), (sent[0].clone(), 1));

    // Bob sees none of it and can touch none of it.
    let (_, list) = portal(&server, "GET", "/v1/portal/endpoints", &bobs, None).await;
    assert_eq!(list["data"], json!([]));
    for (method, path, body) in [
        ("GET", format!("/v1/portal/endpoints/{endpoint}/deliveries"), None),
        ("POST", format!("/v1/portal/endpoints/{endpoint}/rotate-secret"), Some(json!({}))),
        ("POST", format!("/v1/portal/endpoints/{endpoint}/disable"), None),
        ("POST", format!("/v1/portal/endpoints/{endpoint}/deliveries/{}/replay", sent[0]), None),
        ("DELETE", format!("/v1/portal/endpoints/{endpoint}"), None),
    ] {
        let (code, body) = portal(&server, method, &path, &bobs, body).await;
        assert_eq!((code, &body["code"]), (404, &json!("not_found")), "{method} {path}: {body}");
    }

    // Rotation with an overlap: both secrets sign until it ends; without one, only the new one.
    let rotate = format!("/v1/portal/endpoints/{endpoint}/rotate-secret");
    let (code, body) = portal(&server, "POST", &rotate, &anns, Some(json!({"overlap_seconds": 604_801}))).await;
    assert_eq!((code, &body["code"]), (422, &json!("invalid_request")), "{body}");
    let (code, rotated) = portal(&server, "POST", &rotate, &anns, Some(json!({"overlap_seconds": 3600}))).await;
    assert_eq!(code, 200, "{rotated}");
    let secret2 = rotated["signing_secret"].as_str().unwrap().to_string();
    assert_ne!(secret2, secret1);
    assert!(rotated["previous_secret_expires_at"].is_string() && rotated["secret_rotated_at"].is_string());
    ship(&server, key).await;
    let got = ok.wait_for(2, WAIT).await;
    assert_eq!(signatures(&got[1]), 2);
    assert!(got[1].verify(&secret1) && got[1].verify(&secret2));
    let (code, rotated) = portal(&server, "POST", &rotate, &anns, Some(json!({"overlap_seconds": 0}))).await;
    assert_eq!(code, 200, "{rotated}");
    let secret3 = rotated["signing_secret"].as_str().unwrap().to_string();
    assert!(rotated["previous_secret_expires_at"].is_null());
    ship(&server, key).await;
    let got = ok.wait_for(3, WAIT).await;
    assert_eq!(signatures(&got[2]), 1);
    assert!(got[2].verify(&secret3) && !got[2].verify(&secret2) && !got[2].verify(&secret1));

    // A second endpoint that fails: its delivery fails after its retries, then is replayed.
    let failing = Receiver::start().await;
    failing.set_status(500);
    let (_, second) = portal(&server, "POST", "/v1/portal/endpoints", &anns, Some(json!({"url": failing.url}))).await;
    let second_id = second["id"].as_str().unwrap().to_string();
    // Disabled, the first one is left out of new events; the second still gets them.
    let (code, disabled) =
        portal(&server, "POST", &format!("/v1/portal/endpoints/{endpoint}/disable"), &anns, None).await;
    assert_eq!((code, &disabled["status"]), (200, &json!("disabled")), "{disabled}");
    let sent = ship(&server, key).await;
    assert_eq!(sent.len(), 1, "only the enabled endpoint gets a message");
    let failed = wait_delivery(&server, &anns, &second_id, &sent[0], "failed").await;
    assert_eq!(failed["attempt_count"], 4, "{failed}");
    assert_eq!(failed["attempts"][3]["status_code"], 500, "{failed}");
    assert_eq!(ok.received().len(), 3, "the disabled endpoint got a request");
    failing.set_status(200);
    let replay = format!("/v1/portal/endpoints/{second_id}/deliveries/{}/replay", sent[0]);
    let (code, body) = portal(&server, "POST", &replay, &anns, None).await;
    assert_eq!((code, &body["status"]), (202, &json!("queued")), "{body}");
    let delivered = wait_delivery(&server, &anns, &second_id, &sent[0], "delivered").await;
    assert_eq!(delivered["attempts"].as_array().unwrap().last().unwrap()["succeeded"], true);
    let (code, body) = portal(&server, "POST", &replay, &anns, None).await;
    assert_eq!((code, &body["code"]), (409, &json!("conflict")), "a delivered one is not replayed: {body}");
    // A delivery is replayed only through its own endpoint.
    let elsewhere = format!("/v1/portal/endpoints/{endpoint}/deliveries/{}/replay", sent[0]);
    assert_eq!(portal(&server, "POST", &elsewhere, &anns, None).await.0, 404);

    // Altered secrets are refused, never used to sign: nothing is sent until they are restored.
    let probe = server.probe();
    let sealed = probe.blob(Db::Data, "subscriber_channels", "signing_secrets", "id", &second_id);
    let mut altered = sealed.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    probe.set_blob(Db::Data, "subscriber_channels", "signing_secrets", "id", &second_id, &altered);
    let (code, body) = portal(&server, "GET", "/v1/portal/endpoints", &anns, None).await;
    assert_eq!((code, &body["code"]), (500, &json!("integrity_error")), "{body}");
    let r = server.post("/v1/events", key, json!({"name": "order.shipped", "to": ["ann"], "data": {}})).await;
    r.assert_problem(500, "integrity_error");
    probe.set_blob(Db::Data, "subscriber_channels", "signing_secrets", "id", &second_id, &sealed);
    assert_eq!(portal(&server, "GET", "/v1/portal/endpoints", &anns, None).await.0, 200);
    assert_eq!(failing.received().len(), 5, "a request went out with altered secrets");

    // An endpoint added through the API is signed with the workspace's secret: no rotation here.
    let api_added =
        created(&server, key, &format!("/v1/subscribers/{ann}/channels"), json!({"type": "webhook", "url": ok.url}))
            .await;
    let (_, list) = portal(&server, "GET", "/v1/portal/endpoints", &anns, None).await;
    let listed = list["data"].as_array().unwrap().iter().find(|e| e["id"] == api_added["id"]).cloned().unwrap();
    assert_eq!(listed["signed_with"], "workspace");
    let path = format!("/v1/portal/endpoints/{}/rotate-secret", api_added["id"].as_str().unwrap());
    assert_eq!(portal(&server, "POST", &path, &anns, Some(json!({}))).await.0, 409);

    // Enabled again, then deleted: gone from the portal and from the subscriber.
    let (code, enabled) =
        portal(&server, "POST", &format!("/v1/portal/endpoints/{endpoint}/enable"), &anns, None).await;
    assert_eq!((code, &enabled["status"]), (200, &json!("active")), "{enabled}");
    assert_eq!(portal(&server, "DELETE", &format!("/v1/portal/endpoints/{endpoint}"), &anns, None).await.0, 204);
    let channels = server.get(&format!("/v1/subscribers/{ann}/channels"), key).await;
    assert!(!channels.text.contains(&endpoint), "{}", channels.text);

    // Audited as the subscriber; no secret in the log or in any file in plaintext.
    let audit = server.get("/v1/audit?action=subscriber_channel.secret_rotated", key).await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    let entries = audit.json["data"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{}", audit.text);
    assert!(entries.iter().all(|e| e["actor"]["kind"] == "subscriber" && e["actor"]["id"] == ann), "{}", audit.text);
    let log = server.log();
    for secret in [&secret1, &secret2, &secret3] {
        assert!(!log.contains(secret.as_str()), "a signing secret is in the log");
        let raw = secret.trim_start_matches("whsec_");
        for (path, bytes) in probe.files_on_disk() {
            assert!(!bytes.windows(raw.len()).any(|w| w == raw.as_bytes()), "a secret is in {}", path.display());
        }
    }
}
