//! The browser inbox: a short-lived subscriber token reads and marks exactly one subscriber's
//! in-app messages, live over Server-Sent Events, and nothing else; the API key does not work
//! there and the token does not work anywhere else.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{ServerOptions, TestServer};

async fn setup(server: &TestServer, key: &str) -> (String, String) {
    let r = server
        .post(
            "/v1/workflows",
            key,
            json!({"key": "ping", "steps": [{"channel": "inapp", "title": "Ping", "text": "{{ data.n }}"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut ids = Vec::new();
    for name in ["ann", "bob"] {
        let r = server.post("/v1/subscribers", key, json!({"external_id": name})).await;
        let id = r.json["id"].as_str().unwrap().to_string();
        let c = server.post(&format!("/v1/subscribers/{id}/channels"), key, json!({"type": "inapp"})).await;
        assert_eq!(c.status, 201, "{}", c.text);
        ids.push(id);
    }
    (ids[0].clone(), ids[1].clone())
}

async fn with_token(
    server: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = server.http.request(m, server.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_token_reads_one_inbox_live_and_nothing_else() {
    let server = TestServer::spawn_with(ServerOptions::default().log("trace")).await;
    let ws = server.workspace("inbox");
    let key = ws.key.as_str();
    let (ann, bob) = setup(&server, key).await;
    let r = server.post(&format!("/v1/subscribers/{ann}/token"), key, json!({"ttl_seconds": 600})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.json["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("sbt_"));
    server
        .post(&format!("/v1/subscribers/{ann}/token"), key, json!({"ttl_seconds": 5}))
        .await
        .assert_problem(422, "invalid_ttl");

    let (status, inbox, text) = with_token(&server, "GET", "/v1/inbox", &token, None).await;
    assert_eq!((status, &inbox["unread_count"]), (200, &json!(0)), "{text}");

    // The live stream: the unread count at once, then each new message.
    let mut stream = server.http.get(server.url(&format!("/v1/inbox/stream?token={token}"))).send().await.unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains("event: unread") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await.unwrap().unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
        assert!(Instant::now() < deadline, "{seen}");
    }
    let r =
        server.post("/v1/events", key, json!({"name": "ping", "to": ["ann", "bob"], "data": {"n": "live-1"}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    while !seen.contains("live-1") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await.unwrap().unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
        assert!(Instant::now() < deadline, "{seen}");
    }
    assert!(seen.contains("event: message"), "{seen}");
    drop(stream);

    // Reading and marking through the token: only Ann's messages.
    let (_, inbox, _) = with_token(&server, "GET", "/v1/inbox", &token, None).await;
    assert_eq!(inbox["unread_count"], 1);
    let mine = inbox["data"][0]["id"].as_str().unwrap().to_string();
    let (status, marked, text) =
        with_token(&server, "PATCH", &format!("/v1/inbox/{mine}"), &token, Some(json!({"read": true}))).await;
    assert_eq!(status, 200, "{text}");
    assert!(marked["read_at"].is_string());
    let bobs = server.get(&format!("/v1/subscribers/{bob}/inbox"), key).await.json["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, _) =
        with_token(&server, "PATCH", &format!("/v1/inbox/{bobs}"), &token, Some(json!({"read": true}))).await;
    assert_eq!(status, 404, "Ann's token cannot touch Bob's message");
    assert_eq!(server.get(&format!("/v1/subscribers/{bob}/inbox"), key).await.json["unread_count"], 1);

    // Forged, altered or misplaced credentials get 401.
    let (payload, mac) = token.strip_prefix("sbt_").unwrap().split_once('.').unwrap();
    let flipped_mac = format!("sbt_{payload}.{}{}", if mac.starts_with('A') { "B" } else { "A" }, &mac[1..]);
    let claims: Value = serde_json::from_slice(&base64_url(payload)).unwrap();
    let mut as_bob = claims.clone();
    as_bob["s"] = json!(bob);
    let swapped = format!("sbt_{}.{mac}", base64_url_encode(&serde_json::to_vec(&as_bob).unwrap()));
    for bad in [flipped_mac.as_str(), swapped.as_str(), "sbt_e30.AAAA", ws.key.as_str()] {
        let (status, body, text) = with_token(&server, "GET", "/v1/inbox", bad, None).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "{text}");
    }
    let (status, _, _) = with_token(&server, "GET", "/v1/channels", &token, None).await;
    assert_eq!(status, 401, "a subscriber token is no API key");
    let anonymous = server.http.get(server.url("/v1/inbox")).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    // The token never reaches the log, although it travelled in a query string.
    assert!(!server.log().contains(payload), "the token is in the log");
}

fn base64_url(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn base64_url_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_configured_origins_may_call_the_inbox_from_a_browser() {
    let allowed = "https://app.example.com";
    let server = TestServer::spawn_with(ServerOptions::default().env("CHIMATIC_INBOX_ORIGINS", allowed)).await;
    let ws = server.workspace("cors");
    let (ann, _) = setup(&server, &ws.key).await;
    let r = server.post(&format!("/v1/subscribers/{ann}/token"), &ws.key, json!({})).await;
    let token = r.json["token"].as_str().unwrap().to_string();

    let preflight = |origin: &'static str, path: &'static str| {
        server
            .http
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let ok = preflight(allowed, "/v1/inbox").await.unwrap();
    assert_eq!(ok.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap()), Some(allowed));
    let other = preflight("https://evil.example", "/v1/inbox").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // The API-key endpoints are not opened to browsers.
    let api = preflight(allowed, "/v1/channels").await.unwrap();
    assert!(api.headers().get("access-control-allow-origin").is_none());

    let r =
        server.http.get(server.url("/v1/inbox")).header("origin", allowed).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap()), Some(allowed));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_subscriber_token_is_told_when_to_retry() {
    let server = TestServer::spawn_with(ServerOptions::default().env("CHIMATIC_RATE_LIMIT_PER_WORKSPACE", "5")).await;
    let ws = server.workspace("busy-inbox");
    let r = server.post("/v1/subscribers", &ws.key, json!({"external_id": "ann"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ann = r.json["id"].as_str().unwrap().to_string();
    let r = server.post(&format!("/v1/subscribers/{ann}/token"), &ws.key, json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.json["token"].as_str().unwrap().to_string();
    // All at once, as in the API-key test: one by one, a slow machine would refill the bucket.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = server.http.get(server.url("/v1/inbox")).bearer_auth(&token);
        burst.spawn(async move { crate::harness::Resp::from(request.send().await.expect("request")).await });
    }
    let mut limited = None;
    while let Some(r) = burst.join_next().await {
        let r = r.expect("request task");
        match r.status {
            429 => limited = Some(r),
            status => assert_eq!(status, 200, "{}", r.text),
        }
    }
    let r = limited.expect("a burst of 20 simultaneous requests against a limit of 5/s must be limited");
    r.assert_problem(429, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
}
