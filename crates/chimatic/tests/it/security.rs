//! Security properties end to end: tenant isolation on every id-taking endpoint, sensitive
//! values kept out of logs, files and error responses, tamper detection on stored ciphertext,
//! masked views, and the OpenAPI document as the exact list of served routes.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::harness::{Receiver, Resp, ServerOptions, TestServer};
use crate::store_probe::{Backend, Db, backend};

// ---- shared helpers (also used by `input.rs`) ---------------------------------------------------

/// `n` random bytes as lowercase hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends a request with exactly these bytes, `Authorization` header value and content type.
pub(crate) async fn send_raw(
    server: &TestServer,
    method: &str,
    path: &str,
    authorization: Option<&[u8]>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Resp {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = server.http.request(m, server.url(path));
    if let Some(a) = authorization {
        req = req.header("authorization", reqwest::header::HeaderValue::from_bytes(a).unwrap());
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let r = req.body(body).send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, headers, text, json }
}

/// An RFC 9457 problem with this status and code, a type URI naming the code, and a title.
pub(crate) fn expect_problem(what: &str, r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{what}: expected {status} {code}, got {}: {}", r.status, r.text);
    assert_eq!(r.content_type(), "application/problem+json", "{what}: {}", r.text);
    assert_eq!(r.json["status"], status, "{what}: {}", r.text);
    assert_eq!(r.json["code"], code, "{what}: {}", r.text);
    assert_eq!(
        r.json["type"].as_str(),
        Some(format!("https://chimatic.dev/problems/{}", code.replace('_', "-")).as_str()),
        "{what}: {}",
        r.text
    );
    assert!(r.json["title"].as_str().is_some_and(|t| !t.is_empty()), "{what}: {}", r.text);
    assert!(r.json["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}: {}", r.text);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, recursively, with its bytes.
fn id_of(r: &Resp) -> String {
    r.json["id"].as_str().unwrap_or_else(|| panic!("no id in {}", r.text)).to_string()
}

// ---- 1. tenant isolation --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn another_workspace_cannot_see_use_or_change_any_resource_by_id() {
    let server = TestServer::spawn().await;
    let a = server.workspace("tenant-a");
    let b = server.workspace("tenant-b");
    let receiver_a = Receiver::start().await;
    let receiver_b = Receiver::start().await;

    // Workspace A: a channel, a delivered notification (with an idempotency key), an extra key.
    let (a_channel, _) = server.channel(&a.key, &receiver_a.url).await;
    let idempotency_key = format!("order-{}", random_hex(8));
    let r = server
        .post(
            "/v1/notifications",
            &a.key,
            json!({"channel_id": a_channel, "payload": {"tenant": "a"}, "idempotency_key": idempotency_key}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let a_msg = id_of(&r);
    let r = server
        .post("/v1/api-keys", &a.key, json!({"name": "a-reader", "scopes": ["notifications:read", "channels:read"]}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let a_extra_key = r.json["key"].as_str().unwrap().to_string();
    let a_extra_id = id_of(&r);
    let a_before = server.wait_notification(&a.key, &a_msg, |n| n["status"] == "delivered").await;
    let a_keys = server.get("/v1/api-keys", &a.key).await;
    let a_owner_id = a_keys.json["data"].as_array().unwrap().iter().find(|k| k["name"] == "owner").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a_ids = [a.id.clone(), a_channel.clone(), a_msg.clone(), a_extra_id.clone(), a_owner_id.clone()];

    // What B gets for ids that exist nowhere: A's ids must be indistinguishable from these.
    let nowhere_msg = format!("msg_{}", random_hex(16));
    let reference = server.get(&format!("/v1/notifications/{nowhere_msg}"), &b.key).await;
    expect_problem("B: unknown notification", &reference, 404, "not_found");

    // Workspace B walks every id-taking endpoint with A's ids.
    let attempts: Vec<(String, Resp)> = vec![
        ("GET A's notification".into(), server.get(&format!("/v1/notifications/{a_msg}"), &b.key).await),
        (
            "replay A's notification".into(),
            server.call("POST", &format!("/v1/notifications/{a_msg}/replay"), Some(&b.key), None).await,
        ),
        ("GET A's channel".into(), server.get(&format!("/v1/channels/{a_channel}"), &b.key).await),
        (
            "deactivate A's channel".into(),
            server.post(&format!("/v1/channels/{a_channel}/deactivate"), &b.key, json!({})).await,
        ),
        (
            "reactivate A's channel".into(),
            server.post(&format!("/v1/channels/{a_channel}/reactivate"), &b.key, json!({})).await,
        ),
        ("revoke A's extra key".into(), server.delete(&format!("/v1/api-keys/{a_extra_id}"), &b.key).await),
        ("revoke A's owner key".into(), server.delete(&format!("/v1/api-keys/{a_owner_id}"), &b.key).await),
        (
            "notify on A's channel".into(),
            server
                .post("/v1/notifications", &b.key, json!({"channel_id": a_channel, "payload": {"tenant": "b"}}))
                .await,
        ),
        (
            "notify on A's channel with A's idempotency key".into(),
            server
                .post(
                    "/v1/notifications",
                    &b.key,
                    json!({"channel_id": a_channel, "payload": {"tenant": "b"}, "idempotency_key": idempotency_key}),
                )
                .await,
        ),
    ];
    for (what, r) in &attempts {
        expect_problem(what, r, 404, "not_found");
        assert_eq!(r.json, reference.json, "{what}: a foreign id must look exactly like a missing one");
        for id in &a_ids {
            assert!(!r.text.contains(id.as_str()), "{what}: response names A's id {id}");
        }
    }

    // The batch endpoint takes channel ids too: A's channel is an unknown channel for B, and
    // nothing of the batch is stored.
    let r = server
        .post(
            "/v1/notifications/batch",
            &b.key,
            json!({"items": [{"channel_id": a_channel, "payload": {"tenant": "b"}, "idempotency_key": idempotency_key}]}),
        )
        .await;
    expect_problem("batch on A's channel", &r, 422, "invalid_batch_items");
    assert_eq!(r.json["errors"][0]["index"], 0, "{}", r.text);
    assert_eq!(r.json["errors"][0]["code"], "not_found", "{}", r.text);
    for id in &a_ids {
        assert!(!r.text.contains(id.as_str()), "batch on A's channel: response names A's id {id}");
    }

    // B's lists hold only B's own resources.
    let (b_channel, _) = server.channel(&b.key, &receiver_b.url).await;
    let channels = server.get("/v1/channels", &b.key).await;
    assert_eq!(channels.status, 200, "{}", channels.text);
    let listed: Vec<&str> =
        channels.json["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(listed, vec![b_channel.as_str()]);
    let keys = server.get("/v1/api-keys", &b.key).await;
    assert_eq!(keys.status, 200, "{}", keys.text);
    assert_eq!(keys.json["data"].as_array().unwrap().len(), 1, "B sees only its owner key: {}", keys.text);
    for id in &a_ids {
        assert!(!channels.text.contains(id.as_str()) && !keys.text.contains(id.as_str()), "B's list shows A's {id}");
    }
    // The lists are filtered, not paged past A: a page starting before every id shows nothing of A.
    let from_start = server.get(&format!("/v1/channels?after=ch_{}&limit=200", "0".repeat(32)), &b.key).await;
    assert_eq!(from_start.status, 200, "{}", from_start.text);
    assert!(!from_start.text.contains(&a_channel), "{}", from_start.text);

    // The same idempotency key in B is B's own: it neither returns nor touches A's notification.
    let r = server
        .post(
            "/v1/notifications",
            &b.key,
            json!({"channel_id": b_channel, "payload": {"tenant": "b"}, "idempotency_key": idempotency_key}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.headers.get("idempotent-replayed").is_none(), "B's key must not match A's");
    let b_msg = id_of(&r);
    assert_ne!(b_msg, a_msg);
    server.wait_notification(&b.key, &b_msg, |n| n["status"] == "delivered").await;

    // A is unchanged: its extra key works, its notification and channel read as before.
    let a_after = server.get(&format!("/v1/notifications/{a_msg}"), &a_extra_key).await;
    assert_eq!(a_after.status, 200, "A's extra key must still work: {}", a_after.text);
    for field in ["status", "attempt_count", "payload_masked", "channel_id", "updated_at", "attempts"] {
        assert_eq!(a_after.json[field], a_before[field], "A's notification `{field}` changed");
    }
    let ch = server.get(&format!("/v1/channels/{a_channel}"), &a_extra_key).await;
    assert_eq!(ch.status, 200, "{}", ch.text);
    assert_eq!(ch.json["id"], a_channel.as_str());
    let a_keys_after = server.get("/v1/api-keys", &a.key).await;
    let a_keys_after = a_keys_after.json["data"].as_array().unwrap();
    assert_eq!(a_keys_after.len(), 2);
    assert!(a_keys_after.iter().all(|k| k["revoked_at"].is_null()), "B revoked one of A's keys: {a_keys_after:?}");
    // For A the delivered notification is a conflict (409), so B's 404 hid its existence.
    let own = server.call("POST", &format!("/v1/notifications/{a_msg}/replay"), Some(&a.key), None).await;
    expect_problem("A replays its delivered notification", &own, 409, "conflict");

    // Each receiver saw only its own tenant's notification.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_a = receiver_a.received();
    let got_b = receiver_b.received();
    assert_eq!(got_a.len(), 1, "A's receiver got B's traffic");
    assert_eq!(got_b.len(), 1);
    assert_eq!(serde_json::from_slice::<Value>(&got_a[0].body).unwrap(), json!({"tenant": "a"}));
    assert_eq!(serde_json::from_slice::<Value>(&got_b[0].body).unwrap(), json!({"tenant": "b"}));
}

// ---- 2. canary -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_never_reaches_logs_files_or_error_responses() {
    let mut server = TestServer::spawn_with(ServerOptions::default().log("trace")).await;
    let canary = format!("canary-{}", random_hex(16));
    let ws = server.workspace("leak-check");
    let receiver = Receiver::start().await;
    let (channel, secret) = server.channel(&ws.key, &format!("{}/{canary}", receiver.url)).await;
    let secret_bytes = base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let r = server.post("/v1/api-keys", &ws.key, json!({"name": "sender", "scopes": ["notifications:write"]})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let sender_key = r.json["key"].as_str().unwrap().to_string();

    let payload = json!({"note": canary, "nested": {"deep": [format!("prefix {canary} suffix")]}});
    let body = json!({"channel_id": channel, "payload": payload, "idempotency_key": canary});
    let r = server.post("/v1/notifications", &sender_key, body.clone()).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = id_of(&r);
    let again = server.post("/v1/notifications", &sender_key, body).await;
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(id_of(&again), id, "same idempotency key, same notification");

    // Error paths fed with the canary.
    let json_ct = Some("application/json");
    let bearer = format!("Bearer {}", ws.key);
    let auth = Some(bearer.as_bytes());
    let mut errors: Vec<(&str, u16, &str, Resp)> = vec![
        (
            "channel_id is the canary",
            422,
            "invalid_body",
            server.post("/v1/notifications", &ws.key, json!({"channel_id": canary, "payload": payload})).await,
        ),
        (
            "unknown field named after the canary",
            422,
            "invalid_body",
            server.post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": {}, canary.clone(): true})).await,
        ),
        (
            "idempotency_key of the wrong type holding the canary",
            422,
            "invalid_body",
            server
                .post(
                    "/v1/notifications",
                    &ws.key,
                    json!({"channel_id": channel, "payload": {}, "idempotency_key": {canary.clone(): [canary]}}),
                )
                .await,
        ),
        (
            "unknown channel",
            404,
            "not_found",
            server
                .post(
                    "/v1/notifications",
                    &ws.key,
                    json!({"channel_id": format!("ch_{}", random_hex(16)), "payload": payload, "idempotency_key": canary}),
                )
                .await,
        ),
        (
            "idempotency_key too long",
            422,
            "invalid_idempotency_key",
            server
                .post(
                    "/v1/notifications",
                    &ws.key,
                    json!({"channel_id": channel, "payload": payload, "idempotency_key": canary.repeat(8)}),
                )
                .await,
        ),
        (
            "payload too large",
            413,
            "payload_too_large",
            server
                .post(
                    "/v1/notifications",
                    &ws.key,
                    json!({"channel_id": channel, "payload": {"big": format!("{canary}{}", "x".repeat(300 * 1024))}}),
                )
                .await,
        ),
        (
            "malformed JSON",
            400,
            "malformed_json",
            send_raw(
                &server,
                "POST",
                "/v1/notifications",
                auth,
                json_ct,
                format!(r#"{{"channel_id": "{channel}", "payload": {{"note": "{canary}"#).into_bytes(),
            )
            .await,
        ),
        (
            "trailing garbage",
            400,
            "malformed_json",
            send_raw(
                &server,
                "POST",
                "/v1/notifications",
                auth,
                json_ct,
                format!(r#"{{"channel_id": "{channel}", "payload": {{}}}} {canary}"#).into_bytes(),
            )
            .await,
        ),
        (
            "not JSON",
            415,
            "unsupported_media_type",
            send_raw(&server, "POST", "/v1/notifications", auth, Some("text/plain"), canary.clone().into_bytes()).await,
        ),
        (
            "channel type is the canary",
            422,
            "invalid_body",
            server.post("/v1/channels", &ws.key, json!({"type": canary, "url": receiver.url})).await,
        ),
        ("url is the canary", 422, "invalid_url", server.post("/v1/channels", &ws.key, json!({"type": "webhook", "url": canary})).await),
        (
            "ftp url with the canary",
            422,
            "invalid_url",
            server
                .post("/v1/channels", &ws.key, json!({"type": "webhook", "url": format!("ftp://{canary}.example.com/{canary}")}))
                .await,
        ),
        (
            "url with canary credentials",
            422,
            "invalid_url",
            server
                .post("/v1/channels", &ws.key, json!({"type": "webhook", "url": format!("http://{canary}:{canary}@127.0.0.1/x")}))
                .await,
        ),
        (
            "scope is the canary",
            422,
            "invalid_body",
            server.post("/v1/api-keys", &ws.key, json!({"name": "x", "scopes": [canary]})).await,
        ),
        (
            "scopes of the wrong type holding the canary",
            422,
            "invalid_body",
            server.post("/v1/api-keys", &ws.key, json!({"name": "x", "scopes": canary})).await,
        ),
        (
            "name of the wrong type holding the canary",
            422,
            "invalid_body",
            server.post("/v1/api-keys", &ws.key, json!({"name": [canary], "scopes": ["admin"]})).await,
        ),
        (
            "name too long",
            422,
            "invalid_name",
            server.post("/v1/api-keys", &ws.key, json!({"name": canary.repeat(4), "scopes": ["admin"]})).await,
        ),
        (
            "bearer token is the canary",
            401,
            "unauthorized",
            send_raw(&server, "GET", "/v1/channels", Some(format!("Bearer {canary}").as_bytes()), None, Vec::new()).await,
        ),
    ];
    // The batch endpoint reports per-item errors: they must not echo item values either.
    let batch_errors: Vec<(&str, u16, &str, Value)> = vec![
        (
            "batch item with the canary as channel_id",
            422,
            "invalid_body",
            json!({"items": [{"channel_id": canary, "payload": payload}]}),
        ),
        (
            "batch item with an unknown field named after the canary",
            422,
            "invalid_body",
            json!({"items": [{"channel_id": channel, "payload": {}, canary.clone(): 1}]}),
        ),
        (
            "batch items with an unknown channel and a too-long key",
            422,
            "invalid_batch_items",
            json!({"items": [
                {"channel_id": format!("ch_{}", random_hex(16)), "payload": payload, "idempotency_key": canary},
                {"channel_id": channel, "payload": payload, "idempotency_key": canary.repeat(8)},
                {"channel_id": channel, "payload": {"big": format!("{canary}{}", "x".repeat(300 * 1024))}}
            ]}),
        ),
    ];
    for (what, status, code, body) in batch_errors {
        errors.push((what, status, code, server.post("/v1/notifications/batch", &ws.key, body).await));
    }
    // An API key that has the right shape but holds the canary.
    let fake_key = format!("chm_{canary}{}", "a".repeat(43 - canary.len()));
    errors.push((
        "well-formed unknown key holding the canary",
        401,
        "unauthorized",
        send_raw(&server, "GET", "/v1/channels", Some(format!("Bearer {fake_key}").as_bytes()), None, Vec::new()).await,
    ));
    // Every leak is collected, so one failure shows all of them.
    let mut leaks: Vec<String> = Vec::new();
    for (what, status, code, r) in &errors {
        expect_problem(what, r, *status, code);
        if r.text.contains(&canary) {
            leaks.push(format!("error response ({what}): {}", r.text));
        }
        for (name, value) in &r.headers {
            if contains(value.as_bytes(), canary.as_bytes()) {
                leaks.push(format!("error response header {name} ({what})"));
            }
        }
    }

    // Delivered, exactly once, with the canary in the body: the test can see the canary.
    let n = server.wait_notification(&ws.key, &id, |n| n["status"] == "delivered").await;
    let seen = receiver.received();
    assert_eq!(seen.len(), 1, "the idempotent repeat must not be delivered again");
    assert!(contains(&seen[0].body, canary.as_bytes()), "the receiver must get the canary");
    assert!(seen[0].verify(&secret));
    assert_eq!(serde_json::from_slice::<Value>(&seen[0].body).unwrap(), payload);
    // Read views are masked.
    if n.to_string().contains(&canary) {
        leaks.push(format!("GET /v1/notifications/{id}: {n}"));
    }
    for path in [format!("/v1/channels/{channel}"), "/v1/channels".to_string()] {
        let r = server.get(&path, &ws.key).await;
        assert_eq!(r.status, 200);
        if r.text.contains(&canary) {
            leaks.push(format!("GET {path}: {}", r.text));
        }
    }

    let secrets: [(&str, &[u8]); 5] = [
        ("the canary", canary.as_bytes()),
        ("the signing secret", secret.as_bytes()),
        ("the raw signing secret bytes", &secret_bytes),
        ("the owner API key", ws.key.as_bytes()),
        ("the created API key", sender_key.as_bytes()),
    ];
    let probe = server.probe();
    let check_files = |when: &str, leaks: &mut Vec<String>| {
        let files = probe.files_on_disk();
        let names: Vec<String> =
            files.iter().map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        if *backend() == Backend::Sqlite {
            assert!(
                ["control.db", "data.db", "vault.db"].iter().all(|f| names.iter().any(|n| n == f)),
                "{when}: {names:?}"
            );
        } else {
            assert!(files.len() > 4, "{when}: the PostgreSQL files were not found: {names:?}");
        }
        for (path, bytes) in &files {
            for (what, needle) in &secrets {
                if contains(bytes, needle) {
                    leaks.push(format!("{when}: {what} is stored in plaintext in {}", path.display()));
                }
            }
        }
        names
    };
    let check_log = |when: &str, log: &str, leaks: &mut Vec<String>| {
        assert!(log.contains("TRACE") && log.contains("DEBUG"), "{when}: trace logging is not on:\n{log}");
        assert!(log.contains(&id), "{when}: the delivery of {id} was not logged, so the log check proves nothing");
        for (what, needle) in &secrets {
            for line in log.lines().filter(|l| contains(l.as_bytes(), needle)) {
                leaks.push(format!("{when}: {what} is in the server log: {line}"));
            }
        }
    };

    let names = check_files("while running", &mut leaks);
    if *backend() == Backend::Sqlite {
        assert!(names.iter().any(|n| n.ends_with("-wal")), "the WAL is read too: {names:?}");
    }
    check_log("while running", &server.log(), &mut leaks);

    server.terminate();
    check_files("after shutdown", &mut leaks);
    check_log("after shutdown", &server.log(), &mut leaks);
    assert!(leaks.is_empty(), "{} leak(s):\n{}", leaks.len(), leaks.join("\n"));
}

// ---- 3. tampering ----------------------------------------------------------------------------

/// The 500 `integrity_error` problem, and nothing of the plaintext in it.
fn expect_integrity_error(what: &str, r: &Resp, plaintexts: &[&str]) {
    expect_problem(what, r, 500, "integrity_error");
    let keys: BTreeSet<&str> = r.json.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["type", "title", "status", "detail", "code"]), "{what}: {}", r.text);
    for p in plaintexts {
        assert!(!r.text.contains(p), "{what}: the response carries stored data: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn altered_or_moved_ciphertext_is_refused_and_never_served_or_delivered() {
    let server = TestServer::spawn().await;
    let a = server.workspace("tenant-a");
    let b = server.workspace("tenant-b");
    let receiver_a = Receiver::start().await;
    let receiver_b = Receiver::start().await;
    let (a_channel, _) = server.channel(&a.key, &receiver_a.url).await;
    let (a_channel2, _) = server.channel(&a.key, &format!("{}/second", receiver_a.url)).await;
    let (b_channel, _) = server.channel(&b.key, &receiver_b.url).await;

    let markers: Vec<String> = (0..4).map(|i| format!("plaintext-{i}-{}", random_hex(8))).collect();
    let marker_refs: Vec<&str> = markers.iter().map(String::as_str).collect();
    let mut ids = Vec::new();
    for (i, m) in markers.iter().enumerate() {
        let (key, channel) = if i < 3 { (&a.key, &a_channel) } else { (&b.key, &b_channel) };
        let r = server.post("/v1/notifications", key, json!({"channel_id": channel, "payload": {"secret": m}})).await;
        assert_eq!(r.status, 202, "{}", r.text);
        ids.push(id_of(&r));
    }
    let (n1, n2, n3, nb) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    for (key, id) in [(&a.key, n1), (&a.key, n2), (&a.key, n3), (&b.key, nb)] {
        server.wait_notification(key, id, |n| n["status"] == "delivered").await;
    }
    let n2_view = server.get(&format!("/v1/notifications/{n2}"), &a.key).await;
    let probe = server.probe();

    // (a) One flipped bit anywhere (format byte, key version, nonce, ciphertext, tag), a truncated
    // value, an empty value, or plaintext in place of ciphertext: all refused.
    let original = probe.blob(Db::Data, "notifications", "payload", "id", n1);
    assert!(!contains(&original, markers[0].as_bytes()), "the payload is stored encrypted");
    let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
    for pos in [0, 2, 4, 10, 17, original.len() / 2, original.len() - 1] {
        let mut bad = original.clone();
        bad[pos] ^= 0x01;
        variants.push((format!("bit flipped at byte {pos}"), bad));
    }
    variants.push(("truncated".into(), original[..original.len() - 1].to_vec()));
    variants.push(("empty".into(), Vec::new()));
    variants.push(("plaintext".into(), format!(r#"{{"secret":"{}"}}"#, markers[0]).into_bytes()));
    for (what, bad) in &variants {
        probe.set_blob(Db::Data, "notifications", "payload", "id", n1, bad);
        let r = server.get(&format!("/v1/notifications/{n1}"), &a.key).await;
        expect_integrity_error(&format!("payload {what}"), &r, &marker_refs);
    }
    let mut flipped = original.clone();
    flipped[original.len() / 2] ^= 0x80;
    probe.set_blob(Db::Data, "notifications", "payload", "id", n1, &flipped);
    let r = server.get(&format!("/v1/notifications/{n1}"), &a.key).await;
    expect_integrity_error("payload with a flipped byte", &r, &marker_refs);

    // (b) A valid ciphertext moved to another row, in the same workspace and across workspaces.
    let n2_ciphertext = probe.blob(Db::Data, "notifications", "payload", "id", n2);
    probe.set_blob(Db::Data, "notifications", "payload", "id", n3, &n2_ciphertext);
    let r = server.get(&format!("/v1/notifications/{n3}"), &a.key).await;
    expect_integrity_error("n2's payload in n3's row", &r, &marker_refs);
    probe.set_blob(Db::Data, "notifications", "payload", "id", nb, &n2_ciphertext);
    let r = server.get(&format!("/v1/notifications/{nb}"), &b.key).await;
    expect_integrity_error("A's payload in B's row", &r, &marker_refs);

    // (c) A's channel URL ciphertext in B's channel row.
    let a_url = probe.blob(Db::Data, "channels", "destination", "id", &a_channel);
    probe.set_blob(Db::Data, "channels", "destination", "id", &b_channel, &a_url);
    let r = server.get(&format!("/v1/channels/{b_channel}"), &b.key).await;
    expect_integrity_error("A's channel URL in B's row", &r, &[]);
    let list = server.get("/v1/channels", &b.key).await;
    if list.status == 200 {
        assert!(!list.text.contains(&b_channel), "the tampered channel is listed: {}", list.text);
    } else {
        expect_integrity_error("B lists its channels", &list, &[]);
    }
    // ... and it must not redirect B's deliveries to A's destination.
    let r = server.post("/v1/notifications", &b.key, json!({"channel_id": b_channel, "payload": {"to": "b"}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let redirected = id_of(&r);
    let n = server.wait_notification(&b.key, &redirected, |n| n["status"] == "failed").await;
    assert_eq!(n["attempts"][0]["error_class"], "integrity_error", "{n}");

    // (d) A flipped byte in a signing secret in the vault: nothing is sent unsigned or mis-signed.
    let sealed: Vec<u8> = probe.blob(Db::Vault, "secrets", "secret", "owner_id", &a_channel2);
    let mut bad = sealed.clone();
    bad[sealed.len() - 3] ^= 0x04;
    probe.set_blob(Db::Vault, "secrets", "secret", "owner_id", &a_channel2, &bad);
    let r = server.post("/v1/notifications", &a.key, json!({"channel_id": a_channel2, "payload": {"to": "a2"}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let unsigned = id_of(&r);
    let n = server.wait_notification(&a.key, &unsigned, |n| n["status"] == "failed").await;
    assert_eq!(n["attempts"][0]["error_class"], "integrity_error", "{n}");

    // Untouched rows still read fine, and nothing tampered was ever delivered.
    let r = server.get(&format!("/v1/notifications/{n2}"), &a.key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json, n2_view.json);
    let r = server.get(&format!("/v1/channels/{a_channel}"), &a.key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["url_masked"], "http://127…");
    let r = server.get("/v1/channels", &a.key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["data"].as_array().unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver_a.received().len(), 3, "only the three intact notifications reach A");
    assert_eq!(receiver_b.received().len(), 1, "only B's intact notification reaches B");
}

// ---- 4. masking ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn channels_and_notifications_are_shown_masked() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("masking");
    let receiver = Receiver::start().await;
    let port = receiver.url.split(':').nth(2).unwrap().split('/').next().unwrap().to_string();
    let tag = random_hex(6);
    let url = format!("{}/path-{tag}?token=tok-{tag}", receiver.url);
    let hidden = [format!("path-{tag}"), format!("tok-{tag}"), format!(":{port}"), "/hook".to_string()];

    let created = server.post("/v1/channels", &ws.key, json!({"type": "webhook", "url": url})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let channel = id_of(&created);
    let listed = server.get("/v1/channels", &ws.key).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let one = server.get(&format!("/v1/channels/{channel}"), &ws.key).await;
    assert_eq!(one.status, 200, "{}", one.text);
    let in_list = listed.json["data"].as_array().unwrap().iter().find(|c| c["id"] == channel.as_str()).unwrap().clone();
    for (what, view, text) in
        [("create", &created.json, &created.text), ("get", &one.json, &one.text), ("list", &in_list, &listed.text)]
    {
        assert_eq!(view["url_masked"], "http://127…", "{what}: {text}");
        assert!(view.get("url").is_none(), "{what}: {text}");
        for h in &hidden {
            assert!(!text.contains(h.as_str()), "{what} shows {h}: {text}");
        }
    }

    let payload = json!({
        "email": "alice.liddell@example.com",
        "amount": 4217,
        "pin": "9q7z",
        "card": {"number": "4111111111111111", "exp": "12/29"},
        "tags": ["vip-customer-xyz"],
        "active": true,
        "note": null
    });
    let r = server.post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": payload})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = id_of(&r);
    let n = server.wait_notification(&ws.key, &id, |n| n["status"] == "delivered").await;
    assert_eq!(
        n["payload_masked"],
        json!({
            "email": "ali…",
            "amount": "…",
            "pin": "…",
            "card": {"number": "411…", "exp": "…"},
            "tags": ["vip…"],
            "active": true,
            "note": null
        })
    );
    assert!(n.get("payload").is_none());
    let text = n.to_string();
    for full in ["alice.liddell@example.com", "liddell", "4111111111111111", "vip-customer-xyz"] {
        assert!(!text.contains(full), "GET notification shows {full}: {text}");
    }
    let masked = n["payload_masked"].to_string();
    for full in ["4217", "9q7z", "12/29", "liddell", "1111", "customer"] {
        assert!(!masked.contains(full), "payload_masked shows {full}: {masked}");
    }
    // The receiver gets everything, so the masking is of the view, not of the data.
    let seen = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(serde_json::from_slice::<Value>(&seen[0].body).unwrap(), payload);
}

// ---- 5. OpenAPI --------------------------------------------------------------------------------

const METHODS: [&str; 8] = ["get", "post", "put", "patch", "delete", "head", "options", "trace"];

fn sample_path(template: &str) -> String {
    let id = if template.starts_with("/v1/api-keys") {
        "key_"
    } else if template.starts_with("/v1/channels") {
        "ch_"
    } else if template.starts_with("/v1/subscribers") {
        "sub_"
    } else if template.starts_with("/v1/integrations") {
        "int_"
    } else if template.starts_with("/v1/workflows") {
        "wf_"
    } else if template.starts_with("/v1/topics") {
        "top_"
    } else if template.starts_with("/v1/suppressions") {
        "sup_"
    } else {
        "msg_"
    };
    template
        .replace("{id}", &format!("{id}{}", random_hex(16)))
        .replace("{channel_id}", &format!("sch_{}", random_hex(16)))
        .replace("{message_id}", &format!("msg_{}", random_hex(16)))
        .replace("{integration_id}", &format!("int_{}", random_hex(16)))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_lists_exactly_the_served_routes() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("docs");
    let doc = server.call("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(doc.status, 200, "{}", doc.text);
    assert!(doc.content_type().starts_with("application/json"), "{}", doc.content_type());
    assert!(doc.json["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc.json["openapi"]);

    // The SDKs are generated from the committed copy: it must be this document.
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdks/openapi.json");
    let committed: Value = serde_json::from_slice(&std::fs::read(committed).unwrap()).unwrap();
    assert!(
        committed == doc.json,
        "sdks/openapi.json is not the served document: run `cargo run -- openapi > sdks/openapi.json` and \
         regenerate the SDKs (sdks/README.md)"
    );
    let operation_ids: Vec<&str> = doc.json["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| METHODS.iter().filter_map(|m| item.get(*m)))
        .map(|op| op["operationId"].as_str().expect("every operation has an id"))
        .collect();
    assert_eq!(operation_ids.iter().collect::<BTreeSet<_>>().len(), operation_ids.len(), "duplicate operation ids");

    let paths = doc.json["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for m in METHODS {
            if item.get(m).is_some() {
                documented.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    let expected: BTreeSet<(String, String)> = [
        ("POST", "/v1/admin/workspaces/{id}/freeze"),
        ("POST", "/v1/admin/workspaces/{id}/unfreeze"),
        ("POST", "/v1/api-keys"),
        ("GET", "/v1/api-keys"),
        ("DELETE", "/v1/api-keys/{id}"),
        ("POST", "/v1/channels"),
        ("GET", "/v1/channels"),
        ("GET", "/v1/channels/{id}"),
        ("POST", "/v1/channels/{id}/deactivate"),
        ("POST", "/v1/channels/{id}/reactivate"),
        ("POST", "/v1/notifications"),
        ("GET", "/v1/notifications/{id}"),
        ("POST", "/v1/notifications/{id}/replay"),
        // Added with batch submission (crates/api/src/routes/notifications.rs, `create_batch`).
        ("POST", "/v1/notifications/batch"),
        // The directory (crates/api/src/routes/subscribers.rs, integrations.rs).
        ("POST", "/v1/subscribers"),
        ("GET", "/v1/subscribers"),
        ("GET", "/v1/subscribers/{id}"),
        ("PATCH", "/v1/subscribers/{id}"),
        ("DELETE", "/v1/subscribers/{id}"),
        ("POST", "/v1/subscribers/{id}/channels"),
        ("GET", "/v1/subscribers/{id}/channels"),
        ("DELETE", "/v1/subscribers/{id}/channels/{channel_id}"),
        ("GET", "/v1/subscribers/{id}/inbox"),
        ("GET", "/v1/subscribers/{id}/preferences"),
        ("PUT", "/v1/subscribers/{id}/preferences"),
        ("PATCH", "/v1/subscribers/{id}/inbox/{message_id}"),
        ("POST", "/v1/events"),
        ("POST", "/v1/subscribers/{id}/token"),
        ("GET", "/v1/inbox"),
        ("PATCH", "/v1/inbox/{message_id}"),
        ("POST", "/v1/inbox/read-all"),
        ("GET", "/v1/inbox/preferences"),
        ("PUT", "/v1/inbox/preferences"),
        ("GET", "/v1/inbox/stream"),
        // The webhook portal (crates/api/src/routes/portal.rs).
        ("GET", "/v1/portal/endpoints"),
        ("POST", "/v1/portal/endpoints"),
        ("DELETE", "/v1/portal/endpoints/{id}"),
        ("POST", "/v1/portal/endpoints/{id}/rotate-secret"),
        ("POST", "/v1/portal/endpoints/{id}/disable"),
        ("POST", "/v1/portal/endpoints/{id}/enable"),
        ("GET", "/v1/portal/endpoints/{id}/deliveries"),
        ("POST", "/v1/portal/endpoints/{id}/deliveries/{message_id}/replay"),
        ("POST", "/v1/topics"),
        ("GET", "/v1/topics"),
        ("GET", "/v1/topics/{id}"),
        ("POST", "/v1/topics/{id}/subscribers"),
        ("GET", "/v1/topics/{id}/subscribers"),
        ("POST", "/v1/topics/{id}/subscribers/remove"),
        ("POST", "/v1/integrations"),
        ("GET", "/v1/integrations"),
        ("GET", "/v1/integrations/{id}"),
        ("PATCH", "/v1/integrations/{id}"),
        ("DELETE", "/v1/integrations/{id}"),
        ("POST", "/v1/integrations/{id}/check"),
        ("POST", "/v1/integrations/oauth/{provider}/start"),
        ("POST", "/v1/integrations/oauth/{provider}/finish"),
        // Provider feedback (crates/api/src/routes/inbound.rs, suppressions.rs).
        ("GET", "/v1/integrations/{id}/inbound"),
        ("POST", "/v1/inbound/{integration_id}"),
        ("POST", "/v1/suppressions"),
        ("GET", "/v1/suppressions"),
        ("DELETE", "/v1/suppressions/{id}"),
        ("POST", "/v1/workflows"),
        ("GET", "/v1/workflows"),
        ("GET", "/v1/workflows/{id}"),
        ("PUT", "/v1/workflows/{id}"),
        ("DELETE", "/v1/workflows/{id}"),
        ("POST", "/v1/workflows/{id}/preview"),
        // Control plane (crates/api/src/routes/workspace.rs).
        ("GET", "/v1/workspace"),
        ("DELETE", "/v1/workspace"),
        ("GET", "/v1/stats"),
        // Data keys (crates/api/src/routes/keys.rs).
        ("POST", "/v1/workspace/rotate-dek"),
        ("PUT", "/v1/workspace/kms"),
        // The audit log (crates/api/src/routes/audit.rs).
        ("GET", "/v1/audit"),
        ("GET", "/v1/audit/export"),
        ("GET", "/v1/audit/public-key"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/v1/openapi.json"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(documented, expected, "documented routes differ from the expected set");
    assert_eq!(doc.json["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    // Every documented operation is served, and is public exactly when the document says so.
    for (method, template) in &documented {
        let path = sample_path(template);
        let op = &paths[template.as_str()][method.to_lowercase().as_str()];
        let public = op["security"] == json!([{}]);
        let anonymous = server.call(method, &path, None, None).await;
        let authed = server.call(method, &path, Some(&ws.key), None).await;
        for r in [&anonymous, &authed] {
            assert!(
                !(r.status == 404 && r.json["detail"] == "no such endpoint") && r.status != 405,
                "{method} {template} is documented but not routed: {} {}",
                r.status,
                r.text
            );
        }
        if template.starts_with("/v1/inbound/") {
            // Public, but each request must carry its provider's signature: an integration that
            // does not exist is simply not found.
            assert!(public, "{template} takes no API key");
            expect_problem(&format!("{method} {template}"), &anonymous, 404, "not_found");
        } else if public {
            assert_eq!(anonymous.status, 200, "{method} {template} is documented as public: {}", anonymous.text);
        } else {
            expect_problem(&format!("{method} {template} without a key"), &anonymous, 401, "unauthorized");
        }
    }

    // No undocumented method is served on a documented path.
    let templates: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for template in templates {
        let path = sample_path(template);
        for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if documented.contains(&(m.to_string(), template.clone())) {
                continue;
            }
            let r = server.call(m, &path, Some(&ws.key), Some(json!({}))).await;
            assert_eq!(r.status, 405, "{m} {template} is served but not documented: {}", r.text);
        }
    }
    // Plausible but undocumented paths fall through to the 404 problem.
    for path in
        ["/v1/workspaces", "/v1/notifications/{id}/attempts", "/v1/audit/entries", "/v1/admin", "/v1/secrets", "/debug"]
    {
        let r = server.get(&sample_path(path), &ws.key).await;
        expect_problem(path, &r, 404, "not_found");
    }
}
