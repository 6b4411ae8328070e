use serde_json::json;

use crate::harness::{Receiver, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_shown_once_scoped_listed_without_secrets_and_revoked_at_once() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    assert!(ws.key.starts_with("chm_") && ws.key.len() == 4 + 43);

    let r = server
        .post("/v1/api-keys", &ws.key, json!({"name": "billing-service", "scopes": ["notifications:write"]}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let key = r.json["key"].as_str().unwrap().to_string();
    let key_id = r.json["id"].as_str().unwrap().to_string();
    assert_eq!(r.json["last4"], &key[key.len() - 4..]);
    assert_eq!(r.json["scopes"], json!(["notifications:write"]));
    assert_eq!(r.headers["cache-control"], "no-store");

    let list = server.get("/v1/api-keys", &ws.key).await;
    assert_eq!(list.status, 200);
    let keys = list.json["data"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(!list.text.contains(&key) && !list.text.contains(&ws.key), "list never shows a key");
    let listed = keys.iter().find(|k| k["id"] == key_id.as_str()).unwrap();
    assert_eq!(listed["name"], "billing-service");
    assert!(listed.get("key").is_none() && listed.get("digest").is_none());
    assert!(listed["revoked_at"].is_null());

    // Scopes are enforced.
    let receiver = Receiver::start().await;
    let (channel, _) = server.channel(&ws.key, &receiver.url).await;
    let sent = server.post("/v1/notifications", &key, json!({"channel_id": channel, "payload": {}})).await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let id = sent.json["id"].as_str().unwrap();
    server.get(&format!("/v1/notifications/{id}"), &key).await.assert_problem(403, "insufficient_scope");
    server.get("/v1/api-keys", &key).await.assert_problem(403, "insufficient_scope");
    server
        .post("/v1/channels", &key, json!({"type": "webhook", "url": receiver.url}))
        .await
        .assert_problem(403, "insufficient_scope");

    // last_used_at is recorded.
    let listed = server.get("/v1/api-keys", &ws.key).await;
    let k = listed.json["data"].as_array().unwrap().iter().find(|k| k["id"] == key_id.as_str()).unwrap().clone();
    assert!(k["last_used_at"].is_string());

    // Revocation is effective on the very next request.
    let del = server.delete(&format!("/v1/api-keys/{key_id}"), &ws.key).await;
    assert_eq!(del.status, 204, "{}", del.text);
    server
        .post("/v1/notifications", &key, json!({"channel_id": channel, "payload": {}}))
        .await
        .assert_problem(401, "unauthorized");
    let listed = server.get("/v1/api-keys", &ws.key).await;
    let k = listed.json["data"].as_array().unwrap().iter().find(|k| k["id"] == key_id.as_str()).unwrap().clone();
    assert!(k["revoked_at"].is_string());
    server.delete("/v1/api-keys/key_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", &ws.key).await.assert_problem(404, "not_found");

    // Only the SHA-256 digest is stored: neither key appears in any file of the store.
    for (_, bytes) in server.probe().files_on_disk() {
        for k in [&key, &ws.key] {
            assert!(!bytes.windows(k.len()).any(|w| w == k.as_bytes()), "an API key is stored in plaintext");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_workspace_has_its_own_request_rate_limit() {
    use crate::harness::ServerOptions;
    let server = TestServer::spawn_with(ServerOptions::default().env("CHIMATIC_RATE_LIMIT_PER_WORKSPACE", "5")).await;
    let (busy, other) = (server.workspace("busy"), server.workspace("other"));
    // The burst is sent all at once: sent one by one on a loaded machine, requests slower than
    // 200 ms would each find a token refilled and the limit would never be reached.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = server.http.get(server.url("/v1/channels")).bearer_auth(&busy.key);
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
    // Another workspace is not affected by the busy one.
    assert_eq!(server.get("/v1/channels", &other.key).await.status, 200);
}
