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
    let replays: Vec<_> = crate::console::audit_actions(&server, &ws.key)
        .await
        .into_iter()
        .filter(|e| e["action"] == "notification.replayed" && e["target"]["id"] == id.as_str())
        .collect();
    assert_eq!(replays.len(), 1, "the replay is audited");
    assert_eq!(replays[0]["actor"]["kind"], "user", "{:?}", replays[0]);
    let detail = dev.get(&format!("/console/notifications/{id}")).await;
    assert_eq!(detail.body.matches("<li class=\"ok\">").count(), 1, "{}", detail.body);

    // Filtered by where it went: its channel, not another one, not a malformed id.
    assert!(dev.get(&format!("/console/notifications?to={channel}")).await.body.contains(&id));
    let (elsewhere, _) = server.channel(&ws.key, &receiver.url).await;
    assert!(!dev.get(&format!("/console/notifications?to={elsewhere}")).await.body.contains(&id));
    assert_eq!(dev.get("/console/notifications?to=a%20b").await.status, 400);

    // The overview charts this hour: the final failure and then the delivery of the replay
    // (counts reach the control store every few seconds), with nothing left in the queue.
    let overview = wait_for_page(&mut dev, "/console/", |b| {
        b.contains("Z delivered: 1</title>") && b.contains("Z failed: 1</title>")
    })
    .await;
    assert!(overview.contains("<dt>Queued</dt><dd>0</dd>"), "{overview}");
}

/// Reloads a console page until `ready` holds on its body (within 30 s).
async fn wait_for_page(browser: &mut Browser, path: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        if ready(&page.body) {
            return page.body;
        }
        assert!(std::time::Instant::now() < deadline, "{path} never got ready: {}", page.body);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
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

#[tokio::test]
async fn directory_pages_show_the_apis_masked_views_and_settings_delete_only_by_name() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    assert!(create_user(&server, &ws, "own.er@example.com", "owner", PASSWORD).status.success());
    assert!(create_user(&server, &ws, "vee.viewer@example.com", "viewer", PASSWORD).status.success());
    let canaries = ["canary-ext-3f0a", "canary-attr-91bc", "canary-mail-77d1", "canary-pass-0e2f"];
    let sub = server
        .post("/v1/subscribers", &ws.key, json!({"external_id": canaries[0], "attributes": {"name": canaries[1]}}))
        .await;
    assert_eq!(sub.status, 201, "{}", sub.text);
    let sub = sub.json["id"].as_str().unwrap().to_string();
    let r = server
        .post(
            &format!("/v1/subscribers/{sub}/channels"),
            &ws.key,
            json!({"type": "email", "address": format!("{}@example.com", canaries[2])}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let int = server
        .post(
            "/v1/integrations",
            &ws.key,
            json!({"kind": "smtp", "name": "mail",
                   "settings": {"host": "smtp.example.com", "port": 587, "security": "starttls", "from": "noreply@example.com"},
                   "credentials": {"username": "u", "password": canaries[3]}}),
        )
        .await;
    assert_eq!(int.status, 201, "{}", int.text);
    let int = int.json["id"].as_str().unwrap().to_string();
    let wf = server
        .post("/v1/workflows", &ws.key, json!({"key": "welcome", "steps": [{"channel": "inapp", "title": "Hi", "text": "Hello {{ subscriber.first_name }}"}]}))
        .await;
    assert_eq!(wf.status, 201, "{}", wf.text);
    let wf = wf.json["id"].as_str().unwrap().to_string();

    let mut vee = Browser::new(&server);
    assert_eq!(vee.sign_in("vee.viewer@example.com", PASSWORD).await.status, 303);
    let mut seen = Vec::new();
    for path in [
        "/console/subscribers".to_string(),
        format!("/console/subscribers/{sub}"),
        "/console/topics".into(),
        "/console/suppressions".into(),
        "/console/workflows".into(),
        format!("/console/workflows/{wf}"),
        "/console/integrations".into(),
        format!("/console/integrations/{int}"),
    ] {
        let p = vee.get(&path).await;
        assert_eq!(p.status, 200, "{path}: {}", p.body);
        seen.push((path, p.body));
    }
    assert!(seen[0].1.contains(&sub), "the subscriber is listed");
    assert!(seen[1].1.contains("email"), "with their channel");
    assert!(seen[7].1.contains("password") || seen[7].1.contains("username"), "which credentials are set");
    assert!(!seen[7].1.contains("Check now"), "a viewer cannot check");
    for (path, body) in &seen {
        for c in canaries {
            assert!(!body.contains(c), "{c} shown whole on {path}");
        }
    }
    // A workflow preview renders the sample data, nothing else.
    let csrf = vee.get("/console/").await.csrf();
    let preview = vee
        .post(
            &format!("/console/workflows/{wf}/preview"),
            &[("csrf", &csrf), ("data", "{}"), ("subscriber", "{\"first_name\": \"Quincy\"}")],
        )
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(preview.body.contains("Hello Quincy"));
    assert_eq!(
        vee.post(
            &format!("/console/workflows/{wf}/preview"),
            &[("csrf", &csrf), ("data", "nope"), ("subscriber", "{}")]
        )
        .await
        .status,
        400
    );
    assert_eq!(vee.get("/console/settings").await.status, 403, "a viewer has no settings page");

    // An integration whose server is down is named on the overview once its check fails.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = server
        .post(
            "/v1/integrations",
            &ws.key,
            json!({"kind": "smtp", "name": "mail-down",
                   "settings": {"host": "localhost", "port": closed_port, "security": "starttls", "from": "noreply@example.com"},
                   "credentials": {"username": "u", "password": "p"}}),
        )
        .await;
    assert_eq!(down.status, 201, "{}", down.text);
    let down = down.json["id"].as_str().unwrap().to_string();
    let checked = server.call("POST", &format!("/v1/integrations/{down}/check"), Some(&ws.key), None).await;
    assert_eq!(checked.json["healthy"], false, "{}", checked.text);
    let overview = vee.get("/console/").await.body;
    let failing = &overview[overview.find("id=\"failing\"").unwrap()..];
    assert!(failing.contains(&format!("/console/integrations/{down}")) && failing.contains("mail-down"), "{failing}");
    assert!(!failing.contains(&format!("/console/integrations/{int}")), "an unchecked one is not failing");

    let mut owner = Browser::new(&server);
    assert_eq!(owner.sign_in("own.er@example.com", PASSWORD).await.status, 303);
    let settings = owner.get("/console/settings").await;
    assert_eq!(settings.status, 200, "{}", settings.body);
    assert!(settings.body.contains("Delete acme") && settings.body.contains(&ws.id));
    let csrf = settings.csrf();
    let wrong = owner.post("/console/settings/delete", &[("csrf", &csrf), ("confirm", "ACME")]).await;
    assert_eq!(wrong.status, 400);
    assert_eq!(server.get("/v1/workspace", &ws.key).await.status, 200, "nothing was deleted");
    let gone = owner.post("/console/settings/delete", &[("csrf", &csrf), ("confirm", "acme")]).await;
    assert_eq!((gone.status, gone.location()), (303, "/console/sign-in"), "{}", gone.body);
    assert_eq!(server.get("/v1/workspace", &ws.key).await.status, 401, "its keys stop at once");
    assert_eq!(owner.get("/console/").await.location(), "/console/sign-in");
}

/// Every state-changing console route, forged three ways (another origin, no origin at all, a
/// wrong token), is refused with nothing changed: not a row, not an audit entry.
#[tokio::test]
async fn every_change_is_refused_when_forged_and_nothing_changes() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    assert!(create_user(&server, &ws, "fran.forge@example.com", "owner", PASSWORD).status.success());
    let mut owner = Browser::new(&server);
    assert_eq!(owner.sign_in("fran.forge@example.com", PASSWORD).await.status, 303);
    let csrf = owner.get("/console/").await.csrf();
    let before = crate::console::audit_actions(&server, &ws.key).await.len();
    let some_id = "msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f";
    let routes = [
        "/console/sign-in".to_string(),
        "/console/sign-in/two-factor".into(),
        "/console/sign-out".into(),
        "/console/sign-out-everywhere".into(),
        "/console/api-keys".into(),
        "/console/api-keys/revoke".into(),
        "/console/account/password".into(),
        "/console/account/two-factor".into(),
        "/console/account/two-factor/disable".into(),
        format!("/console/notifications/{some_id}/replay"),
        "/console/workflows/wf_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f/preview".into(),
        "/console/integrations/int_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f/check".into(),
        "/console/settings/delete".into(),
        "/console/audit/export".into(),
        "/console/audit/verify".into(),
        "/console/members/invite".into(),
        "/console/members/role".into(),
        "/console/members/remove".into(),
        "/console/members/reset-password".into(),
        "/console/members/two-factor".into(),
        "/console/invitations/revoke".into(),
        "/console/join".into(),
        "/console/join/accept".into(),
        "/console/reset-password".into(),
        "/console/switch-workspace".into(),
        "/console/members/sso".into(),
    ];
    // Every field any console form has, so only the forgery can be the reason for a refusal.
    let fields = |token: &str| -> Vec<(String, String)> {
        [
            ("csrf", token),
            ("email", "x.y@example.com"),
            ("password", PASSWORD),
            ("name", "acme"),
            ("access", "admin"),
            ("role", "owner"),
            ("user", "usr_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f"),
            ("id", "key_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f"),
            ("current", PASSWORD),
            ("new", "granite puffin meadow 9"),
            ("confirm", "acme"),
            ("code", "123456"),
            ("format", "jsonl"),
            ("data", "{}"),
            ("subscriber", "{}"),
            ("required", "on"),
            ("token", &"0".repeat(64)),
            ("once", &"1".repeat(43)),
            ("workspace", "ws_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f"),
            ("domains", "example.com"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    for route in &routes {
        let good = fields(&csrf);
        let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = owner.post_from("https://evil.example", route, &good).await;
        assert_eq!(r.status, 403, "{route} from another origin: {}", r.body);
        let bad = fields(&"0".repeat(64));
        let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = owner.post(route, &bad).await;
        assert_eq!(r.status, 403, "{route} with a wrong token: {}", r.body);
        let resp = owner
            .http
            .post(format!("{}{route}", server.base))
            .header("cookie", owner.cookie_header())
            .form(&good)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{route} without an origin");
    }
    assert_eq!(owner.get("/console/").await.status, 200, "still signed in");
    assert_eq!(server.get("/v1/workspace", &ws.key).await.status, 200, "the workspace is there");
    let after = crate::console::audit_actions(&server, &ws.key).await.len();
    assert_eq!(after, before, "a forged request left an audit entry");
    let keys = server.get("/v1/api-keys", &ws.key).await.json["data"].as_array().unwrap().len();
    assert_eq!(keys, 1, "no key was made");
}
