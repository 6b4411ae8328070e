//! The console's read pages over real HTTP: notifications (list with filters, a detail with
//! every attempt, masked content, replay for who may), and the audit log (filters, exports in
//! JSON Lines and CSV recorded as the member's, chain verification) — no planted value whole.

use serde_json::json;

use crate::console::{Browser, PASSWORD, create_user};
use crate::harness::{Receiver, TestServer};

const CANARY_PAYLOAD: &str = "canary-payload-5c1d0a";
const CANARY_PATH: &str = "canary-path-77e2b9";

#[tokio::test]
async fn notifications_show_their_attempts_masked_and_replay_for_who_may() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    assert!(create_user(&server, &ws, "dev.one@example.com", "developer", PASSWORD).status.success());
    assert!(create_user(&server, &ws, "vic.viewer@example.com", "viewer", PASSWORD).status.success());
    let receiver = Receiver::start().await;
    receiver.set_status(500);
    let (channel, _) = server.channel(&ws.key, &format!("{}{CANARY_PATH}", receiver.url)).await;
    let sent = server
        .post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": {"secret": CANARY_PAYLOAD}}))
        .await;
    let id = sent.json["id"].as_str().unwrap().to_string();
    server.wait_notification(&ws.key, &id, |n| n["status"] == "failed").await;

    let mut dev = Browser::new(&server);
    assert_eq!(dev.sign_in("dev.one@example.com", PASSWORD).await.status, 303);
    let list = dev.get("/console/notifications?status=failed&type=webhook&days=1").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains(&id), "the failed notification is listed");
    assert!(!dev.get("/console/notifications?status=delivered").await.body.contains(&id), "filtered out");
    assert_eq!(dev.get("/console/notifications?status=bogus").await.status, 400);
    assert_eq!(
        dev.get(&format!("/console/notifications/find?id={id}")).await.location(),
        format!("/console/notifications/{id}")
    );

    let detail = dev.get(&format!("/console/notifications/{id}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_eq!(detail.body.matches("<li class=\"bad\">").count(), 4, "four failed attempts on the timeline");
    assert!(detail.body.contains("HTTP 500"));
    assert!(detail.body.contains("secret"), "the payload's shape is shown");
    for page in [&list.body, &detail.body] {
        assert!(!page.contains(CANARY_PAYLOAD) && !page.contains(CANARY_PATH), "a planted value is shown whole");
    }
    assert!(detail.body.contains("/replay"), "a developer may replay");

    // A viewer sees it but cannot replay, not even with a forged form.
    let mut vic = Browser::new(&server);
    assert_eq!(vic.sign_in("vic.viewer@example.com", PASSWORD).await.status, 303);
    let seen = vic.get(&format!("/console/notifications/{id}")).await;
    assert_eq!(seen.status, 200);
    assert!(!seen.body.contains("/replay"));
    let refused = vic.post(&format!("/console/notifications/{id}/replay"), &[("csrf", &seen.csrf())]).await;
    assert_eq!(refused.status, 403);
    // Another workspace's member cannot open it.
    let other = server.workspace("other");
    assert!(create_user(&server, &other, "eve.other@example.com", "owner", PASSWORD).status.success());
    let mut eve = Browser::new(&server);
    assert_eq!(eve.sign_in("eve.other@example.com", PASSWORD).await.status, 303);
    assert_eq!(eve.get(&format!("/console/notifications/{id}")).await.status, 404);
    assert!(!eve.get("/console/notifications?days=1").await.body.contains(&id));

    receiver.set_status(204);
    let replayed = dev.post(&format!("/console/notifications/{id}/replay"), &[("csrf", &detail.csrf())]).await;
    assert_eq!(replayed.status, 303, "{}", replayed.body);
    server.wait_notification(&ws.key, &id, |n| n["status"] == "delivered").await;
    let detail = dev.get(&format!("/console/notifications/{id}")).await;
    assert_eq!(detail.body.matches("<li class=\"ok\">").count(), 1, "{}", detail.body);
}

#[tokio::test]
async fn the_audit_log_is_filtered_exported_as_the_member_and_verified() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    assert!(create_user(&server, &ws, "aud.owner@example.com", "owner", PASSWORD).status.success());
    let mut owner = Browser::new(&server);
    assert_eq!(owner.sign_in("aud.owner@example.com", PASSWORD).await.status, 303);
    let log = owner.get("/console/audit").await;
    assert_eq!(log.status, 200, "{}", log.body);
    assert!(log.body.contains("console.sign_in") && log.body.contains("user.created"));
    assert!(!log.body.contains("aud.owner@"), "members appear masked");
    let filtered = owner.get("/console/audit?action=user.created").await;
    assert!(filtered.body.contains("user.created") && !filtered.body.contains("<td>console.sign_in</td>"));

    let csrf = log.csrf();
    let jsonl = owner.post("/console/audit/export", &[("csrf", &csrf), ("format", "jsonl")]).await;
    assert_eq!(jsonl.status, 200);
    assert_eq!(jsonl.headers["content-type"], "application/x-ndjson");
    let lines: Vec<serde_json::Value> = jsonl.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().any(|l| l["action"] == "console.sign_in"), "the sign-in is in the export");
    let csv = owner.post("/console/audit/export", &[("csrf", &csrf), ("format", "csv")]).await;
    assert_eq!(csv.status, 200);
    assert!(csv.body.starts_with("stream,seq,at,actor_kind"));
    assert!(csv.body.contains("audit.exported"), "the first export is in the second");
    assert_eq!(
        owner
            .post_from("https://evil.example", "/console/audit/export", &[("csrf", &csrf), ("format", "csv")])
            .await
            .status,
        403
    );
    let exported = owner.get("/console/audit?action=audit.exported").await;
    assert!(exported.body.contains("user "), "{}", exported.body);

    let verified = owner.post("/console/audit/verify", &[("csrf", &csrf)]).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.body.matches("chain: intact").count(), 2, "{}", verified.body);
}
