//! Bad input: every malformed, mistyped, oversized or unauthenticated request gets a clear 4xx
//! `application/problem+json` answer, and none of them changes anything.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Receiver, Resp, TestServer};
use crate::security::{expect_problem, random_hex, send_raw};
use crate::store_probe::Db;

const JSON: Option<&str> = Some("application/json");
const MIB: usize = 1024 * 1024;
const PAYLOAD_LIMIT: usize = 256 * 1024;

/// A JSON body of exactly `len` bytes: `value` padded with trailing whitespace (valid JSON).
fn padded(value: &Value, len: usize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).unwrap();
    assert!(bytes.len() <= len);
    bytes.resize(len, b' ');
    bytes
}

/// A notification body whose payload serializes to exactly `len` bytes (a JSON string).
fn payload_of_len(channel: &str, len: usize) -> Value {
    json!({"channel_id": channel, "payload": "p".repeat(len - 2)})
}

struct Client<'a> {
    server: &'a TestServer,
    bearer: String,
}

impl Client<'_> {
    async fn post_bytes(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Resp {
        send_raw(self.server, "POST", path, Some(self.bearer.as_bytes()), content_type, body).await
    }
    async fn post(&self, path: &str, body: &Value) -> Resp {
        self.post_bytes(path, JSON, serde_json::to_vec(body).unwrap()).await
    }
    async fn call(&self, method: &str, path: &str) -> Resp {
        send_raw(self.server, method, path, Some(self.bearer.as_bytes()), None, Vec::new()).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_clear_problems_and_change_nothing() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("input");
    let c = Client { server: &server, bearer: format!("Bearer {}", ws.key) };
    // A well-formed channel id that exists nowhere: checks that must run before the lookup are
    // told apart from the lookup's 404.
    let nowhere = format!("ch_{}", random_hex(16));
    let valid: [(&str, Value); 3] = [
        ("/v1/api-keys", json!({"name": "x", "scopes": ["admin"]})),
        ("/v1/channels", json!({"type": "webhook", "url": "http://127.0.0.1:9/hook"})),
        ("/v1/notifications", json!({"channel_id": nowhere, "payload": {}})),
    ];

    // Malformed JSON: 400. (Bodies that break before any key is complete; see also
    // `syntax_errors_are_reported_as_such_whatever_the_fields`.)
    let malformed: [&[u8]; 10] = [
        b"{",
        b"[",
        b"}",
        b"not json",
        b"{'name': 'x'}",
        b"{,}",
        b"",
        b"{\"unterminated",
        b"\xff\xfe{}",
        b"{\"\xff\": 1}",
    ];
    for (path, body) in &valid {
        let text = serde_json::to_vec(body).unwrap();
        let mut bodies: Vec<Vec<u8>> = malformed.iter().map(|b| b.to_vec()).collect();
        bodies.push(text[..text.len() / 2].to_vec());
        bodies.push(text[..text.len() - 1].to_vec());
        bodies.push([&text[..], b" trailing"].concat());
        bodies.push([&text[..], &text[..]].concat());
        for body in bodies {
            let r = c.post_bytes(path, JSON, body.clone()).await;
            expect_problem(&format!("POST {path} {:?}", String::from_utf8_lossy(&body)), &r, 400, "malformed_json");
        }
    }

    // Wrong or missing content type: 415, even for a valid JSON body.
    for (path, body) in &valid {
        let bytes = serde_json::to_vec(body).unwrap();
        for ct in [
            None,
            Some("text/plain"),
            Some("text/json"),
            Some("application/x-www-form-urlencoded"),
            Some("application/jsonp"),
            Some("multipart/form-data; boundary=x"),
        ] {
            let r = c.post_bytes(path, ct, bytes.clone()).await;
            expect_problem(&format!("POST {path} with content type {ct:?}"), &r, 415, "unsupported_media_type");
        }
    }
    // JSON media types with parameters or in another case are JSON (reaching the channel lookup).
    for ct in ["application/json; charset=utf-8", "Application/JSON", "application/problem+json"] {
        let r = c.post_bytes("/v1/notifications", Some(ct), serde_json::to_vec(&valid[2].1).unwrap()).await;
        expect_problem(&format!("content type {ct}"), &r, 404, "not_found");
    }

    // Unknown fields, missing fields, wrong types: 422 naming the field.
    let invalid: Vec<(&str, Value, &str)> = vec![
        ("/v1/api-keys", json!({"name": "x", "scopes": ["admin"], "admin": true}), "unknown field"),
        ("/v1/api-keys", json!({"name": "x", "scopes": ["admin"], "workspace_id": ws.id}), "unknown field"),
        ("/v1/api-keys", json!({"scopes": ["admin"]}), "name"),
        ("/v1/api-keys", json!({"name": "x"}), "scopes"),
        ("/v1/api-keys", json!({}), "missing field"),
        ("/v1/api-keys", json!({"name": 5, "scopes": ["admin"]}), "name"),
        ("/v1/api-keys", json!({"name": null, "scopes": ["admin"]}), "name"),
        ("/v1/api-keys", json!({"name": "x", "scopes": "admin"}), "scopes"),
        ("/v1/api-keys", json!({"name": "x", "scopes": ["root"]}), "scopes"),
        ("/v1/api-keys", json!({"name": "x", "scopes": ["admin", "Admin"]}), "scopes"),
        ("/v1/api-keys", json!([]), "expected"),
        ("/v1/api-keys", json!("x"), "expected"),
        ("/v1/api-keys", json!(null), "expected"),
        (
            "/v1/channels",
            json!({"type": "webhook", "url": "http://127.0.0.1:9/", "secret": "whsec_x"}),
            "unknown field",
        ),
        ("/v1/channels", json!({"url": "http://127.0.0.1:9/"}), "type"),
        ("/v1/channels", json!({"type": "webhook"}), "url"),
        ("/v1/channels", json!({"type": "webhook", "url": 42}), "url"),
        ("/v1/channels", json!({"type": "webhook", "url": ["http://127.0.0.1:9/"]}), "url"),
        ("/v1/channels", json!({"type": "email", "url": "http://127.0.0.1:9/"}), "type"),
        ("/v1/notifications", json!({"channel_id": nowhere, "payload": {}, "priority": 1}), "unknown field"),
        ("/v1/notifications", json!({"channel_id": nowhere, "payload": {}, "workspace_id": ws.id}), "unknown field"),
        ("/v1/notifications", json!({"payload": {}}), "channel_id"),
        ("/v1/notifications", json!({"channel_id": nowhere}), "payload"),
        ("/v1/notifications", json!({"channel_id": 5, "payload": {}}), "channel_id"),
        ("/v1/notifications", json!({"channel_id": "nope", "payload": {}}), "channel_id"),
        ("/v1/notifications", json!({"channel_id": format!("msg_{}", random_hex(16)), "payload": {}}), "channel_id"),
        ("/v1/notifications", json!({"channel_id": nowhere, "payload": {}, "idempotency_key": 5}), "idempotency_key"),
        (
            "/v1/notifications",
            json!({"channel_id": nowhere, "payload": {}, "idempotency_key": ["k"]}),
            "idempotency_key",
        ),
    ];
    for (path, body, mentions) in &invalid {
        let r = c.post(path, body).await;
        let what = format!("POST {path} {body}");
        expect_problem(&what, &r, 422, "invalid_body");
        assert!(
            r.json["detail"].as_str().unwrap().contains(mentions),
            "{what}: the detail should name `{mentions}`: {}",
            r.text
        );
    }

    // Validation beyond types: 422 with a specific code.
    let rejected: Vec<(&str, Value, &str)> = vec![
        ("/v1/api-keys", json!({"name": "", "scopes": ["admin"]}), "invalid_name"),
        ("/v1/api-keys", json!({"name": "   ", "scopes": ["admin"]}), "invalid_name"),
        ("/v1/api-keys", json!({"name": "n".repeat(101), "scopes": ["admin"]}), "invalid_name"),
        ("/v1/api-keys", json!({"name": "line\nbreak", "scopes": ["admin"]}), "invalid_name"),
        ("/v1/api-keys", json!({"name": "nul\u{0}", "scopes": ["admin"]}), "invalid_name"),
        ("/v1/api-keys", json!({"name": "x", "scopes": []}), "invalid_scopes"),
        (
            "/v1/notifications",
            json!({"channel_id": nowhere, "payload": {}, "idempotency_key": ""}),
            "invalid_idempotency_key",
        ),
        (
            "/v1/notifications",
            json!({"channel_id": nowhere, "payload": {}, "idempotency_key": "k".repeat(256)}),
            "invalid_idempotency_key",
        ),
        (
            // Counted in characters, as the document's maxLength counts them.
            "/v1/notifications",
            json!({"channel_id": nowhere, "payload": {}, "idempotency_key": "é".repeat(256)}),
            "invalid_idempotency_key",
        ),
        (
            "/v1/notifications",
            json!({"channel_id": nowhere, "payload": {}, "idempotency_key": ""}),
            "invalid_idempotency_key",
        ),
    ];
    for (path, body, code) in &rejected {
        let r = c.post(path, body).await;
        expect_problem(&format!("POST {path} {body}"), &r, 422, code);
    }
    let bad_urls = [
        "ftp://127.0.0.1/x".to_string(),
        "not-a-url".into(),
        "".into(),
        "/relative/path".into(),
        "127.0.0.1:9/hook".into(),
        "http://user:pass@127.0.0.1:9/hook".into(),
        "http://user@127.0.0.1:9/hook".into(),
        "http://:pass@127.0.0.1:9/hook".into(),
        "file:///etc/passwd".into(),
        "javascript:alert(1)".into(),
        "data:text/plain,hi".into(),
        "gopher://127.0.0.1:70/x".into(),
        "http://".into(),
        format!("http://127.0.0.1:9/{}", "a".repeat(2048)),
    ];
    for url in &bad_urls {
        let r = c.post("/v1/channels", &json!({"type": "webhook", "url": url})).await;
        expect_problem(&format!("channel url {url:.60}"), &r, 422, "invalid_url");
    }

    // Size limits: the body (1 MiB) and the payload (256 KiB).
    for (path, body) in &valid {
        let r = c.post_bytes(path, JSON, padded(body, MIB + 1)).await;
        expect_problem(&format!("POST {path}, body of 1 MiB + 1"), &r, 413, "body_too_large");
    }
    let r = c.post_bytes("/v1/notifications", JSON, padded(&valid[2].1, MIB)).await;
    expect_problem("a body of exactly 1 MiB is read", &r, 404, "not_found");
    let r = c.post("/v1/notifications", &payload_of_len(&nowhere, PAYLOAD_LIMIT + 1)).await;
    expect_problem("payload of 256 KiB + 1", &r, 413, "payload_too_large");
    let r =
        c.post("/v1/notifications", &json!({"channel_id": nowhere, "payload": {"a": "x".repeat(600 * 1024)}})).await;
    expect_problem("payload of 600 KiB", &r, 413, "payload_too_large");
    let r = c.post("/v1/notifications", &payload_of_len(&nowhere, PAYLOAD_LIMIT)).await;
    expect_problem("a payload of exactly 256 KiB is accepted", &r, 404, "not_found");

    // Bad ids in paths: 400, before any lookup.
    let bad_ids = [
        "nope".to_string(),
        "ch_".into(),
        format!("ch_{}", &random_hex(16)[..31]),
        format!("ch_{}0", random_hex(16)),
        format!("ch_{}", "z".repeat(32)),
        format!("ch_{}g", &random_hex(16)[..31]),
        format!("ch_{} ", &random_hex(16)[..31]),
        format!("CH_{}", random_hex(16)),
        format!("ws_{}", random_hex(16)),
        "%00".into(),
        "..%2F..%2Fetc%2Fpasswd".into(),
        "ch_0192f0c1-a2b3-7c4d-8e9f-0a1b2c3d4e5f".into(),
    ];
    for bad in &bad_ids {
        for (method, path) in [
            ("GET", format!("/v1/channels/{bad}")),
            ("GET", format!("/v1/notifications/{bad}")),
            ("POST", format!("/v1/notifications/{bad}/replay")),
            ("DELETE", format!("/v1/api-keys/{bad}")),
        ] {
            let r = c.call(method, &path).await;
            expect_problem(&format!("{method} {path}"), &r, 400, "invalid_id");
        }
    }
    // An id of another kind is not accepted in place of the right one.
    for (method, path) in [
        ("GET", format!("/v1/channels/msg_{}", random_hex(16))),
        ("GET", format!("/v1/notifications/ch_{}", random_hex(16))),
        ("POST", format!("/v1/notifications/key_{}/replay", random_hex(16))),
        ("DELETE", format!("/v1/api-keys/ch_{}", random_hex(16))),
    ] {
        let r = c.call(method, &path).await;
        expect_problem(&format!("{method} {path}"), &r, 400, "invalid_id");
    }

    // Query parameters of GET /v1/channels: 400.
    let bad_queries = [
        "limit=0".to_string(),
        "limit=abc".into(),
        "limit=201".into(),
        "limit=-1".into(),
        "limit=1.5".into(),
        "limit=".into(),
        "limit=99999999999".into(),
        "after=nope".into(),
        "after=".into(),
        format!("after=msg_{}", random_hex(16)),
        "foo=bar".into(),
        "limit=10&limit=20".into(),
    ];
    for q in &bad_queries {
        let r = c.call("GET", &format!("/v1/channels?{q}")).await;
        assert_eq!(r.status, 400, "?{q}: {}", r.text);
        let code = r.json["code"].as_str().unwrap_or_default().to_string();
        assert!(["invalid_query", "invalid_id"].contains(&code.as_str()), "?{q}: {}", r.text);
        expect_problem(&format!("?{q}"), &r, 400, &code);
    }
    for q in ["limit=1".to_string(), "limit=200".into(), format!("after=ch_{}", random_hex(16)), String::new()] {
        let r = c.call("GET", &format!("/v1/channels?{q}")).await;
        assert_eq!(r.status, 200, "?{q}: {}", r.text);
    }

    // No or an invalid Authorization header: 401 with a Bearer challenge, before anything else
    // (a bad id or body is not even looked at).
    let real = ws.key.clone();
    let bad_auth: Vec<Option<Vec<u8>>> = vec![
        None,
        Some(b"".to_vec()),
        Some(b"Bearer".to_vec()),
        Some(b"Bearer ".to_vec()),
        Some(b"Bearer chm_nope".to_vec()),
        Some(format!("Bearer chm_{}", "A".repeat(43)).into_bytes()),
        Some(format!("Bearer {real}x").into_bytes()),
        Some(format!("Bearer {}", &real[..real.len() - 1]).into_bytes()),
        Some(format!("Bearer {}", real.to_uppercase()).into_bytes()),
        Some(real.clone().into_bytes()),
        Some(format!("Token {real}").into_bytes()),
        Some(format!("Basic {real}").into_bytes()),
        Some(b"Basic dXNlcjpwYXNz".to_vec()),
        Some(format!("Bearer {real}, Bearer {real}").into_bytes()),
        Some(b"Bearer \xff\xfe".to_vec()),
    ];
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/channels".into(), None),
        ("POST", "/v1/channels".into(), Some(valid[1].1.clone())),
        ("GET", "/v1/channels/nope".into(), None),
        ("GET", "/v1/api-keys".into(), None),
        ("POST", "/v1/api-keys".into(), Some(valid[0].1.clone())),
        ("DELETE", "/v1/api-keys/nope".into(), None),
        ("POST", "/v1/notifications".into(), Some(json!({"bad": true}))),
        ("GET", "/v1/notifications/nope".into(), None),
        ("POST", "/v1/notifications/nope/replay".into(), None),
    ];
    for (i, auth) in bad_auth.iter().enumerate() {
        // Every header on one route, no header on every route.
        let on: &[(&str, String, Option<Value>)] = if i == 0 { &routes } else { &routes[..1] };
        for (method, path, body) in on {
            let bytes = body.as_ref().map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
            let ct = body.as_ref().and(JSON);
            let r = send_raw(&server, method, path, auth.as_deref(), ct, bytes).await;
            let what = format!("{method} {path} with Authorization {:?}", auth.as_deref().map(String::from_utf8_lossy));
            expect_problem(&what, &r, 401, "unauthorized");
            assert_eq!(r.headers.get("www-authenticate").map(|v| v.as_bytes()), Some(&b"Bearer"[..]), "{what}");
        }
    }

    // Unknown routes: a 404 problem, with or without a key (`/` is the console's).
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/v1"),
        ("GET", "/v1/nope"),
        ("GET", "/v2/channels"),
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/channels/ch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f/extra"),
        ("DELETE", "/v1/workspaces/ws_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f"),
        ("GET", "/V1/CHANNELS"),
    ] {
        for key in [Some(ws.key.as_str()), None] {
            let r = server.call(method, path, key, None).await;
            expect_problem(&format!("{method} {path} (key: {})", key.is_some()), &r, 404, "not_found");
        }
    }

    // Nothing was created.
    let channels = server.get("/v1/channels", &ws.key).await;
    assert_eq!(channels.status, 200, "{}", channels.text);
    assert_eq!(channels.json["data"], json!([]), "{}", channels.text);
    let keys = server.get("/v1/api-keys", &ws.key).await;
    assert_eq!(keys.status, 200, "{}", keys.text);
    let keys = keys.json["data"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1, "only the owner key: {keys:?}");
    assert_eq!(keys[0]["name"], "owner");
    assert_eq!(keys[0]["scopes"], json!(["admin"]));
    assert!(keys[0]["revoked_at"].is_null());
    let probe = server.probe();
    assert_eq!(probe.count(Db::Control, "workspaces"), 1);
    assert_eq!(probe.count(Db::Control, "api_keys"), 1);
    for (table, n) in
        [("channels", 0), ("notifications", 0), ("idempotency_keys", 0), ("delivery_queue", 0), ("attempts", 0)]
    {
        assert_eq!(probe.count(Db::Data, table), n, "rows in {table}");
    }

    // (A workspace on its own KMS key keeps that key's settings in the vault too.)
    assert_eq!(probe.count(Db::Vault, "secrets WHERE kind <> 'workspace_kms'"), 0, "no orphaned signing secret");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_notifications_for_a_real_channel_are_refused_and_never_queued() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("input");
    let c = Client { server: &server, bearer: format!("Bearer {}", ws.key) };
    let receiver = Receiver::start().await;
    let (channel, _) = server.channel(&ws.key, &receiver.url).await;

    let r = c
        .post_bytes("/v1/notifications", JSON, format!(r#"{{"channel_id": "{channel}", "payload": {{"#).into_bytes())
        .await;
    expect_problem("malformed", &r, 400, "malformed_json");
    let ok = json!({"channel_id": channel, "payload": {"n": 1}});
    let r = c.post_bytes("/v1/notifications", Some("text/plain"), serde_json::to_vec(&ok).unwrap()).await;
    expect_problem("text/plain", &r, 415, "unsupported_media_type");
    for (body, code) in [
        (json!({"channel_id": channel, "payload": {"n": 1}, "extra": 1}), "invalid_body"),
        (json!({"channel_id": channel}), "invalid_body"),
        (json!({"channel_id": channel, "payload": {"n": 1}, "idempotency_key": 7}), "invalid_body"),
        (json!({"channel_id": channel, "payload": {"n": 1}, "idempotency_key": ""}), "invalid_idempotency_key"),
        (
            json!({"channel_id": channel, "payload": {"n": 1}, "idempotency_key": "k".repeat(256)}),
            "invalid_idempotency_key",
        ),
    ] {
        let r = c.post("/v1/notifications", &body).await;
        expect_problem(&format!("{body}"), &r, 422, code);
    }
    let r = c.post("/v1/notifications", &payload_of_len(&channel, PAYLOAD_LIMIT + 1)).await;
    expect_problem("payload of 256 KiB + 1", &r, 413, "payload_too_large");
    let r = c.post_bytes("/v1/notifications", JSON, padded(&ok, MIB + 1)).await;
    expect_problem("body of 1 MiB + 1", &r, 413, "body_too_large");

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.received().is_empty(), "a refused notification was delivered");
    let probe = server.probe();
    for table in ["notifications", "delivery_queue", "idempotency_keys", "attempts"] {
        assert_eq!(probe.count(Db::Data, table), 0, "rows in {table} after refused requests");
    }

    // The limits themselves are accepted: a payload of exactly 256 KiB, a key of exactly 255
    // bytes, a body of exactly 1 MiB.
    let r = c.post("/v1/notifications", &payload_of_len(&channel, PAYLOAD_LIMIT)).await;
    assert_eq!(r.status, 202, "{:.300}", r.text);
    let big = r.json["id"].as_str().unwrap().to_string();
    let r = c
        .post(
            "/v1/notifications",
            &json!({"channel_id": channel, "payload": {"n": 2}, "idempotency_key": "k".repeat(255)}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let keyed = r.json["id"].as_str().unwrap().to_string();
    let r = c.post_bytes("/v1/notifications", JSON, padded(&ok, MIB)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let padded_id = r.json["id"].as_str().unwrap().to_string();
    for id in [&big, &keyed, &padded_id] {
        server.wait_notification(&ws.key, id, |n| n["status"] == "delivered").await;
    }
    let seen = receiver.received();
    assert_eq!(seen.len(), 3);
    let big_body = seen.iter().find(|s| s.webhook_id() == big).unwrap();
    assert_eq!(big_body.body.len(), PAYLOAD_LIMIT);
    assert_eq!(probe.count(Db::Data, "notifications"), 3);
}

/// RFC 9110 §11.1: the authentication scheme is case-insensitive.
#[tokio::test(flavor = "multi_thread")]
async fn the_bearer_scheme_is_matched_case_insensitively() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("input");
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r =
            send_raw(&server, "GET", "/v1/channels", Some(format!("{scheme} {}", ws.key).as_bytes()), None, Vec::new())
                .await;
        assert_eq!(r.status, 200, "scheme {scheme:?}: {}", r.text);
    }
}

/// A known path with an unsupported method is an error like any other: 405 problem+json with
/// an `Allow` header.
#[tokio::test(flavor = "multi_thread")]
async fn an_unsupported_method_gets_a_405_problem() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("input");
    for (method, path, allow) in [
        ("PUT", "/v1/channels".to_string(), &["GET", "POST"][..]),
        ("DELETE", format!("/v1/channels/ch_{}", random_hex(16)), &["GET"][..]),
        ("PATCH", "/v1/api-keys".to_string(), &["GET", "POST"][..]),
        ("GET", "/v1/notifications".to_string(), &["POST"][..]),
        ("POST", "/healthz".to_string(), &["GET"][..]),
    ] {
        let r = server.call(method, &path, Some(&ws.key), None).await;
        let what = format!("{method} {path}");
        assert_eq!(r.status, 405, "{what}: {}", r.text);
        let allowed = r.headers.get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        for m in allow {
            assert!(allowed.contains(m), "{what}: Allow is {allowed:?}");
        }
        assert_eq!(r.content_type(), "application/problem+json", "{what}: body {:?}", r.text);
        assert_eq!(r.json["status"], 405, "{what}: {}", r.text);
        assert!(r.json["code"].as_str().is_some_and(|c| !c.is_empty()), "{what}: {}", r.text);
        assert!(r.json["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}: {}", r.text);
    }
}

/// A body that is not valid JSON is a 400 `malformed_json` whatever fields it starts with; it is
/// not reported as a field error (422) just because an unknown or mistyped field comes before the
/// syntax error.
#[tokio::test(flavor = "multi_thread")]
async fn syntax_errors_are_reported_as_such_whatever_the_fields() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("input");
    let c = Client { server: &server, bearer: format!("Bearer {}", ws.key) };
    for (path, body) in [
        ("/v1/channels", r#"{"name": "x", "#),
        ("/v1/channels", r#"{"type": 5, "url": "#),
        ("/v1/api-keys", r#"{"name": 5 "scopes": []}"#),
        ("/v1/notifications", r#"{"channel_id": "nope", "payload": {"#),
    ] {
        let r = c.post_bytes(path, JSON, body.as_bytes().to_vec()).await;
        expect_problem(&format!("POST {path} {body}"), &r, 400, "malformed_json");
    }
}

/// Valid JSON with a value of the wrong type is a 422 `invalid_body` naming the field, also
/// where the field is an enum (a scope, a channel type): the body is well-formed JSON, so it is
/// not a 400 `malformed_json`.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_types_for_enum_fields_are_invalid_body_not_malformed_json() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("input");
    let c = Client { server: &server, bearer: format!("Bearer {}", ws.key) };
    for (path, body, mentions) in [
        ("/v1/api-keys", json!({"name": "x", "scopes": [1]}), "scopes"),
        ("/v1/api-keys", json!({"name": "x", "scopes": [true]}), "scopes"),
        ("/v1/api-keys", json!({"name": "x", "scopes": [["admin"]]}), "scopes"),
        ("/v1/channels", json!({"type": 1, "url": "http://127.0.0.1:9/"}), "type"),
        ("/v1/channels", json!({"type": null, "url": "http://127.0.0.1:9/"}), "type"),
        ("/v1/channels", json!({"type": ["webhook"], "url": "http://127.0.0.1:9/"}), "type"),
    ] {
        let r = c.post(path, &body).await;
        let what = format!("POST {path} {body}");
        expect_problem(&what, &r, 422, "invalid_body");
        assert!(r.json["detail"].as_str().unwrap().contains(mentions), "{what}: {}", r.text);
    }
    let channels = server.get("/v1/channels", &ws.key).await;
    assert_eq!(channels.json["data"], json!([]));
}
