//! Connecting Slack and Google accounts over OAuth through a real authorization server (npm
//! `oidc-provider` in tests/oidc, PKCE required, exact redirect URIs) with stand-ins of the
//! Slack Web API and the Gmail API that check the bearer token and the request shape: from the
//! console and from the API, messages sent through each, a token refreshed before it expires
//! and after a refusal, a failed refresh marking the integration unhealthy, revocation at the
//! provider on disconnect, a teammate signing in through OpenID Connect — and every refusal
//! (redirect URI outside the allowlist, replayed or foreign state, injected code) with nothing
//! stored. Start-up refuses a wildcard redirect URI.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::console::{Browser, PASSWORD, audit_actions, create_user};
use crate::harness::{ServerOptions, TestServer};
use crate::store_probe::Db;
use crate::test_provider::{Provider, consent, path_of, query};

const SLACK_ID: &str = "chimatic-slack";
const SLACK_SECRET: &str = "slack-client-secret-of-the-test-provider";
const GOOGLE_ID: &str = "chimatic-google";
const GOOGLE_SECRET: &str = "google-client-secret-of-the-test-provider";
const CONSOLE_ID: &str = "chimatic-console";
const CONSOLE_SECRET: &str = "console-client-secret-of-the-test-provider";
/// A headless set-up's own page, where the provider sends the browser with code and state.
const HEADLESS: &str = "https://ops.example.com/oauth/callback";
const CALLBACK: &str = "/console/integrations/connect/callback";
const GMAIL_SEND: &str = "https://www.googleapis.com/auth/gmail.send";

fn secret_file(dir: &std::path::Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_str().unwrap().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Chimatic and the provider, each knowing the other's address: ports are reserved first, and
/// both start again if another test took one meanwhile.
async fn start(secrets: &std::path::Path) -> (TestServer, Provider) {
    let accounts = json!([
        {"sub": "ann-1", "email": "ann.owner@example.com", "email_verified": true},
        {"sub": "tess-2", "email": "tess.teammate@example.com", "email_verified": true},
    ]);
    for _ in 0..5 {
        let (server_port, idp_port) = (free_port(), free_port());
        let base = format!("http://127.0.0.1:{server_port}");
        let console_callback = format!("{base}{CALLBACK}");
        let client = |id: &str, secret: &str, redirects: Value, scope: &str| json!({"client_id": id, "client_secret": secret, "redirect_uris": redirects, "scope": scope});
        let mut google = client(GOOGLE_ID, GOOGLE_SECRET, json!([console_callback, HEADLESS]), GMAIL_SEND);
        // Shorter than the minute before expiry at which Chimatic refreshes: every use refreshes.
        google["access_token_ttl"] = json!(30);
        let config = json!({"clients": [
            client(SLACK_ID, SLACK_SECRET, json!([console_callback, HEADLESS]), "chat:write"),
            google,
            client(CONSOLE_ID, CONSOLE_SECRET, json!([format!("{base}/console/sign-in/oidc/callback")]), "openid email"),
        ], "accounts": accounts});
        let Some(provider) = Provider::start(idp_port, config) else { continue };
        let issuer = provider.issuer.clone();
        let uris = format!("{console_callback},{HEADLESS}");
        let options = ServerOptions::default()
            .listen(&format!("127.0.0.1:{server_port}"))
            .env("CHIMATIC_OAUTH_SLACK_CLIENT_ID", SLACK_ID)
            .env("CHIMATIC_OAUTH_SLACK_CLIENT_SECRET_FILE", &secret_file(secrets, "slack", SLACK_SECRET))
            .env("CHIMATIC_OAUTH_SLACK_REDIRECT_URIS", &uris)
            .env("CHIMATIC_OAUTH_SLACK_AUTHORIZE_URL", &format!("{issuer}/auth"))
            .env("CHIMATIC_OAUTH_SLACK_TOKEN_URL", &format!("{issuer}/token"))
            .env("CHIMATIC_OAUTH_SLACK_API_BASE", &format!("{issuer}/slack/api"))
            .env("CHIMATIC_OAUTH_GOOGLE_CLIENT_ID", GOOGLE_ID)
            .env("CHIMATIC_OAUTH_GOOGLE_CLIENT_SECRET_FILE", &secret_file(secrets, "google", GOOGLE_SECRET))
            .env("CHIMATIC_OAUTH_GOOGLE_REDIRECT_URIS", &uris)
            .env("CHIMATIC_OAUTH_GOOGLE_AUTHORIZE_URL", &format!("{issuer}/auth"))
            .env("CHIMATIC_OAUTH_GOOGLE_TOKEN_URL", &format!("{issuer}/token"))
            .env("CHIMATIC_OAUTH_GOOGLE_REVOKE_URL", &format!("{issuer}/google/revoke"))
            .env("CHIMATIC_OAUTH_GOOGLE_API_BASE", &issuer)
            .env("CHIMATIC_OIDC_ISSUER", &issuer)
            .env("CHIMATIC_OIDC_CLIENT_ID", CONSOLE_ID)
            .env("CHIMATIC_OIDC_CLIENT_SECRET_FILE", &secret_file(secrets, "console", CONSOLE_SECRET))
            .env("CHIMATIC_OIDC_NAME", "Test IdP");
        if let Ok(server) = TestServer::try_spawn_with(options).await {
            return (server, provider);
        }
    }
    panic!("the server and the test provider did not start");
}

/// The authorization URL behind the connect page's "Continue" link.
fn continue_link(body: &str) -> String {
    let at = body.find("id=\"continue\" href=\"").expect("a continue link") + 20;
    let raw: String = body[at..].chars().take_while(|c| *c != '"').collect();
    raw.replace("&amp;", "&").replace("&#x2f;", "/").replace("&#38;", "&")
}

/// Starts a connection from the console's integrations page; the provider's authorization URL.
async fn connect_from_console(b: &mut Browser, which: &str, name: &str, send_as: Option<&str>) -> String {
    let list = b.get("/console/integrations").await;
    assert!(list.body.contains(&format!("id=\"connect-{which}\"")), "{}", list.body);
    let csrf = list.csrf();
    let mut form = vec![("csrf", csrf.as_str()), ("provider", which), ("name", name)];
    if let Some(address) = send_as {
        form.push(("send_as", address));
    }
    let page = b.post("/console/integrations/connect", &form).await;
    assert_eq!(page.status, 200, "{}", page.body);
    continue_link(&page.body)
}

/// Log entries after the first `skip`.
async fn log_since(provider: &Provider, skip: usize) -> Vec<Value> {
    provider.log().await.into_iter().skip(skip).collect()
}

fn endpoints(log: &[Value], client: &str) -> Vec<String> {
    log.iter()
        .filter(|e| e["client_id"] == client)
        .map(|e| {
            let what = e["endpoint"].as_str().unwrap_or("?");
            let ok = if e["ok"] == true { "ok" } else { "refused" };
            match e["grant_type"].as_str() {
                Some(grant) => format!("{what}:{grant}:{ok}"),
                None => format!("{what}:{ok}"),
            }
        })
        .collect()
}

async fn send_event(server: &TestServer, key: &str, order: u32) -> Vec<String> {
    let event = json!({"name": "order.shipped", "to": ["ann"], "data": {"order": order}});
    let r = server.post("/v1/events", key, event).await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.json["notifications"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

async fn messages(provider: &Provider) -> Vec<Value> {
    provider.read("messages").await.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_and_google_are_connected_used_refreshed_and_revoked_through_a_real_authorization_server() {
    let secrets = tempfile::tempdir().unwrap();
    let (server, provider) = start(secrets.path()).await;
    let ws = server.workspace("acme");
    assert!(create_user(&server, &ws, "ann.owner@example.com", "owner", PASSWORD).status.success());
    let probe = server.probe();
    let mut ann = Browser::new(&server);
    assert_eq!(ann.sign_in("ann.owner@example.com", PASSWORD).await.status, 303);

    // Slack from the console: PKCE S256, the one scope, a 256-bit state, no OpenID nonce.
    let authorize = connect_from_console(&mut ann, "slack", "Team Slack", None).await;
    assert!(authorize.starts_with(&format!("{}/auth?", provider.issuer)), "{authorize}");
    assert_eq!(query(&authorize, "code_challenge_method"), "S256");
    assert_eq!(query(&authorize, "scope"), "chat%3Awrite");
    assert_eq!(query(&authorize, "state").len(), 64);
    assert!(!authorize.contains("nonce="), "{authorize}");
    let back = consent(&provider, &authorize, "ann.owner@example.com").await;
    assert!(back.starts_with(&format!("{}{CALLBACK}?", server.base)), "{back}");
    // Another signed-in member's session cannot finish Ann's flow; Ann's still can.
    assert!(create_user(&server, &ws, "dev@example.com", "developer", PASSWORD).status.success());
    let mut dev = Browser::new(&server);
    assert_eq!(dev.sign_in("dev@example.com", PASSWORD).await.status, 303);
    assert_eq!(dev.get(&path_of(&back)).await.status, 400);
    assert_eq!(probe.count(Db::Data, "integrations"), 0);
    let made = ann.get(&path_of(&back)).await;
    assert_eq!(made.status, 303, "{}", made.body);
    let slack = made.location().strip_prefix("/console/integrations/").unwrap().to_string();
    let page = ann.get(&format!("/console/integrations/{slack}")).await;
    assert!(page.body.contains("Disconnect and delete"), "{}", page.body);
    // The same callback again: the state was used.
    assert_eq!(ann.get(&path_of(&back)).await.status, 400);

    // A refusal at the provider uses the flow up.
    let authorize = connect_from_console(&mut ann, "google", "Ops Gmail", Some("ann.owner@example.com")).await;
    assert_eq!(query(&authorize, "scope"), "https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fgmail.send");
    assert_eq!(query(&authorize, "access_type"), "offline");
    let state = query(&authorize, "state");
    let denied = ann.get(&format!("{CALLBACK}?error=access_denied&state={state}")).await;
    assert_eq!(denied.status, 400, "{}", denied.body);
    let late = consent(&provider, &authorize, "ann.owner@example.com").await;
    assert_eq!(ann.get(&path_of(&late)).await.status, 400, "the denied flow is gone");
    // Google, with the sender's address.
    let authorize = connect_from_console(&mut ann, "google", "Ops Gmail", Some("ann.owner@example.com")).await;
    let back = consent(&provider, &authorize, "ann.owner@example.com").await;
    let made = ann.get(&path_of(&back)).await;
    assert_eq!(made.status, 303, "{}", made.body);
    let gmail = made.location().strip_prefix("/console/integrations/").unwrap().to_string();

    let view = server.get(&format!("/v1/integrations/{gmail}"), &ws.key).await;
    assert_eq!(view.json["kind"], "gmail", "{}", view.text);
    assert_eq!(view.json["connected_through"], "google");
    assert_eq!(view.json["credentials_set"], json!(["access_token", "refresh_token"]));
    assert_eq!(view.json["settings_masked"]["from"], "ann…@…");
    assert_eq!(server.get(&format!("/v1/integrations/{slack}"), &ws.key).await.json["connected_through"], "slack");

    // A workflow's message through each: Gmail's raw message and Slack's JSON, as the bearer.
    let steps = json!([
        {"channel": "email", "integration_id": gmail, "subject": "Order {{ data.order }} shipped", "text": "Hi {{ subscriber.name }}"},
        {"channel": "slack", "integration_id": slack, "text": "Order {{ data.order }} for {{ subscriber.name }}"},
    ]);
    let r = server.post("/v1/workflows", &ws.key, json!({"key": "order.shipped", "steps": steps})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = server.post("/v1/subscribers", &ws.key, json!({"external_id": "ann", "attributes": {"name": "Ann"}})).await;
    let ann_id = r.json["id"].as_str().unwrap().to_string();
    for body in [
        json!({"type": "email", "address": "ann.customer@example.net"}),
        json!({"type": "slack", "channel_id": "C0123456789"}),
    ] {
        let r = server.post(&format!("/v1/subscribers/{ann_id}/channels"), &ws.key, body).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let before = provider.log().await.len();
    for id in send_event(&server, &ws.key, 1).await {
        server.wait_notification(&ws.key, &id, |n| n["status"] == "delivered").await;
    }
    let sent = messages(&provider).await;
    let mail = sent.iter().find(|m| m["api"] == "gmail").expect("a Gmail message");
    assert_eq!((mail["to"].as_str(), mail["client_id"].as_str()), (Some("ann.customer@example.net"), Some(GOOGLE_ID)));
    assert_eq!(mail["subject_decoded"], "Order 1 shipped");
    assert!(mail["raw"].as_str().unwrap().contains("Hi Ann"), "{mail}");
    let post = sent.iter().find(|m| m["api"] == "slack").expect("a Slack message");
    assert_eq!((post["channel"].as_str(), post["text"].as_str()), (Some("C0123456789"), Some("Order 1 for Ann")));
    assert_eq!(post["client_id"], SLACK_ID);
    // Google's token lives 30 s: refreshed before it was used, never refused.
    let log = log_since(&provider, before).await;
    assert_eq!(endpoints(&log, GOOGLE_ID), ["token:refresh_token:ok", "gmail.send:ok"], "{log:?}");
    assert_eq!(endpoints(&log, SLACK_ID), ["slack.chat.postMessage:ok"], "{log:?}");

    // A Slack token the provider no longer takes: refreshed once, the message sent.
    provider.control("expire-access", json!({"client_id": SLACK_ID})).await;
    let before = provider.log().await.len();
    let ids = send_event(&server, &ws.key, 2).await;
    for id in &ids {
        server.wait_notification(&ws.key, id, |n| n["status"] == "delivered").await;
    }
    let log = log_since(&provider, before).await;
    let slack_calls: Vec<String> =
        endpoints(&log, SLACK_ID).into_iter().filter(|e| !e.starts_with("slack.chat.postMessage:ok")).collect();
    assert_eq!(slack_calls, ["token:refresh_token:ok"], "{log:?}");
    let refused_post = log.iter().filter(|e| e["endpoint"] == "slack.chat.postMessage" && e["ok"] == false).count();
    assert_eq!(refused_post, 1, "one refusal, then the refreshed token: {log:?}");

    // A refresh the provider refuses (the grant revoked there): the integration is unhealthy.
    provider.control("revoke-grants", json!({"client_id": SLACK_ID})).await;
    let ids = send_event(&server, &ws.key, 3).await;
    let mut failed = 0;
    for id in &ids {
        let n = server.wait_notification(&ws.key, id, |n| n["status"] == "delivered" || n["status"] == "failed").await;
        if n["status"] == "failed" {
            failed += 1;
            assert_eq!(n["type"], "slack", "{n}");
        }
    }
    assert_eq!(failed, 1);
    let view = server.get(&format!("/v1/integrations/{slack}"), &ws.key).await;
    assert_eq!(view.json["last_check"]["healthy"], false, "{}", view.text);
    assert_eq!(view.json["last_check"]["error_class"], "oauth_refresh_failed");
    let check = server.post(&format!("/v1/integrations/{slack}/check"), &ws.key, json!({})).await;
    assert_eq!(
        (check.json["healthy"].clone(), check.json["error_class"].clone()),
        (json!(false), json!("oauth_refresh_failed"))
    );
    assert!(ann.get("/console/integrations").await.body.contains("false"));
    // Gmail's check is its refresh.
    let check = server.post(&format!("/v1/integrations/{gmail}/check"), &ws.key, json!({})).await;
    assert_eq!(check.json["healthy"], true, "{}", check.text);

    // A connected integration's tokens come only from the connection.
    let patch = json!({"credentials": {"bot_token": "xoxb-by-hand"}});
    server
        .call("PATCH", &format!("/v1/integrations/{slack}"), Some(&ws.key), Some(patch))
        .await
        .assert_problem(409, "conflict");
    let renamed =
        server.call("PATCH", &format!("/v1/integrations/{slack}"), Some(&ws.key), Some(json!({"name": "Slack"}))).await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    let by_hand = [
        json!({"kind": "gmail", "name": "g", "settings": {"from": "a@example.com"}, "credentials": {"access_token": "t", "grant": {"provider": "google", "scope": "x"}}}),
        json!({"kind": "slack", "name": "s", "credentials": {"bot_token": "xoxb-1", "grant": {"provider": "slack", "scope": "chat:write"}}}),
        json!({"kind": "slack", "name": "s", "settings": {"connected": true}, "credentials": {"bot_token": "xoxb-1"}}),
    ];
    for body in by_hand {
        server.post("/v1/integrations", &ws.key, body).await.assert_problem(422, "invalid_integration");
    }

    // Disconnecting Google from the console revokes the grant at Google, then deletes.
    let vault_before =
        probe.count_sql(Db::Vault, "SELECT COUNT(*) FROM secrets WHERE kind = 'integration_credentials'");
    assert_eq!(provider.read(&format!("live-tokens?client_id={GOOGLE_ID}")).await["refresh"], 1);
    let page = ann.get(&format!("/console/integrations/{gmail}")).await;
    let deleted = ann.post(&format!("/console/integrations/{gmail}/delete"), &[("csrf", &page.csrf())]).await;
    assert_eq!((deleted.status, deleted.location()), (303, "/console/integrations"), "{}", deleted.body);
    assert_eq!(provider.read(&format!("live-tokens?client_id={GOOGLE_ID}")).await, json!({"access": 0, "refresh": 0}));
    assert!(provider.log().await.iter().any(|e| e["endpoint"] == "google.revoke" && e["ok"] == true));
    server.get(&format!("/v1/integrations/{gmail}"), &ws.key).await.assert_problem(404, "not_found");
    let vault_after = probe.count_sql(Db::Vault, "SELECT COUNT(*) FROM secrets WHERE kind = 'integration_credentials'");
    assert_eq!(vault_after, vault_before - 1);
    // Slack's grant is already gone at the provider: recorded as such, and deleted.
    assert_eq!(server.delete(&format!("/v1/integrations/{slack}"), &ws.key).await.status, 204);

    // A teammate signs in through the same provider's OpenID Connect.
    assert!(create_user(&server, &ws, "tess.teammate@example.com", "developer", PASSWORD).status.success());
    let mut tess = Browser::new(&server);
    let form = tess.get("/console/sign-in").await;
    let started = tess.get(&format!("/console/sign-in/oidc?csrf={}", form.csrf())).await;
    assert_eq!(started.status, 303, "{}", started.body);
    let back = consent(&provider, started.location(), "tess.teammate@example.com").await;
    assert_eq!(tess.get(&path_of(&back)).await.location(), "/console/");

    // Every step is in the audit log, naming the provider; no secret anywhere.
    let entries = audit_actions(&server, &ws.key).await;
    let connected: Vec<&Value> = entries.iter().filter(|e| e["action"] == "integration.created").collect();
    let through: Vec<&str> = connected.iter().filter_map(|e| e["detail"]["connected_through"].as_str()).collect();
    assert_eq!(through.len(), 2, "{connected:?}");
    assert!(through.contains(&"slack") && through.contains(&"google"));
    let revoked: Vec<(Value, Value)> = entries
        .iter()
        .filter(|e| e["action"] == "integration.token_revoked")
        .map(|e| (e["detail"]["provider"].clone(), e["detail"]["already_invalid"].clone()))
        .collect();
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    assert!(revoked.contains(&(json!("google"), json!(false))) && revoked.contains(&(json!("slack"), json!(true))));
    assert_eq!(entries.iter().filter(|e| e["action"] == "integration.deleted").count(), 2);
    assert!(entries.iter().any(|e| e["action"] == "console.sign_in" && e["detail"]["provider"] == "Test IdP"));
    // Every access and refresh token the provider issued (also the refreshed and revoked ones)
    // was kept only in the vault, encrypted: in no log line and no database file.
    let issued = provider.read("issued-tokens").await;
    let tokens: Vec<String> = issued.as_array().unwrap().iter().map(|t| t["value"].as_str().unwrap().into()).collect();
    assert!(tokens.len() >= 8, "{issued}");
    let log = server.log();
    let files = probe.files_on_disk();
    let secrets = [SLACK_SECRET, GOOGLE_SECRET, CONSOLE_SECRET, "Bearer "].map(String::from);
    for secret in tokens.iter().chain(&secrets) {
        assert!(!log.contains(secret.as_str()), "`{secret}` is in the log");
        for (path, bytes) in &files {
            assert!(!String::from_utf8_lossy(bytes).contains(secret.as_str()), "`{secret}` is in {}", path.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn headless_connections_refuse_foreign_redirects_states_and_codes_with_nothing_stored() {
    let secrets = tempfile::tempdir().unwrap();
    let (server, provider) = start(secrets.path()).await;
    let ws = server.workspace("headless");
    let other = server.workspace("elsewhere");
    let probe = server.probe();
    let flows = || probe.count(Db::Control, "connect_flows");
    let start = |key: &str, body: Value| {
        let key = key.to_string();
        let server = &server;
        async move { server.post("/v1/integrations/oauth/slack/start", &key, body).await }
    };

    // Redirect URIs outside the allowlist, however close: refused before any redirect.
    for uri in [
        "https://ops.example.com/oauth/callback/",
        "https://ops.example.com/oauth/Callback",
        "https://ops.example.com/oauth",
        "https://ops.example.com/oauth/callback?x=1",
        "https://OPS.example.com/oauth/callback",
        "http://ops.example.com/oauth/callback",
        "https://ops.example.com:8443/oauth/callback",
        "https://evil.example.com/oauth/callback",
        "",
    ] {
        let r = start(&ws.key, json!({"name": "s", "redirect_uri": uri})).await;
        r.assert_problem(422, "redirect_uri_not_allowed");
    }
    start(&ws.key, json!({"name": "s", "redirect_uri": HEADLESS, "send_as": "a@example.com"}))
        .await
        .assert_problem(422, "invalid_request");
    server
        .post("/v1/integrations/oauth/google/start", &ws.key, json!({"name": "g", "redirect_uri": HEADLESS}))
        .await
        .assert_problem(422, "invalid_address");
    server
        .post("/v1/integrations/oauth/github/start", &ws.key, json!({"name": "g", "redirect_uri": HEADLESS}))
        .await
        .assert_problem(404, "not_found");
    let r = server.post("/v1/api-keys", &ws.key, json!({"name": "reader", "scopes": ["integrations:read"]})).await;
    let reader = r.json["key"].as_str().unwrap().to_string();
    start(&reader, json!({"name": "s", "redirect_uri": HEADLESS})).await.assert_problem(403, "insufficient_scope");
    assert_eq!(flows(), 0);

    // A flow bound to its API key: another key of the workspace, or another workspace's, is
    // refused and leaves it; the key that started it finishes it, once.
    let r = start(&ws.key, json!({"name": "Team Slack", "redirect_uri": HEADLESS})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let authorize = r.json["authorization_url"].as_str().unwrap().to_string();
    assert_eq!(query(&authorize, "code_challenge_method"), "S256");
    assert_eq!(flows(), 1);
    let back = consent(&provider, &authorize, "ann.owner@example.com").await;
    assert!(back.starts_with(&format!("{HEADLESS}?")), "{back}");
    let finish = json!({"state": query(&back, "state"), "code": query(&back, "code")});
    let r = server.post("/v1/api-keys", &ws.key, json!({"name": "writer", "scopes": ["integrations:write"]})).await;
    let writer = r.json["key"].as_str().unwrap().to_string();
    for key in [&writer, &other.key] {
        let r = server.post("/v1/integrations/oauth/slack/finish", key, finish.clone()).await;
        r.assert_problem(400, "oauth_state_invalid");
    }
    assert_eq!((flows(), probe.count(Db::Data, "integrations")), (1, 0));
    let r = server.post("/v1/integrations/oauth/google/finish", &ws.key, finish.clone()).await;
    r.assert_problem(400, "oauth_state_invalid");
    let r = server.post("/v1/integrations/oauth/slack/finish", &ws.key, finish.clone()).await;
    // The wrong provider's finish above took the flow: it is used once, whoever asks.
    r.assert_problem(400, "oauth_state_invalid");
    assert_eq!((flows(), probe.count(Db::Data, "integrations")), (0, 0));

    let connect = |name: &'static str| {
        let server = &server;
        let provider = &provider;
        let key = ws.key.clone();
        async move {
            let r = server
                .post("/v1/integrations/oauth/slack/start", &key, json!({"name": name, "redirect_uri": HEADLESS}))
                .await;
            assert_eq!(r.status, 201, "{}", r.text);
            consent(provider, r.json["authorization_url"].as_str().unwrap(), "ann.owner@example.com").await
        }
    };
    let back = connect("Team Slack").await;
    let finish = json!({"state": query(&back, "state"), "code": query(&back, "code")});
    let made = server.post("/v1/integrations/oauth/slack/finish", &ws.key, finish.clone()).await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!((made.json["kind"].as_str(), made.json["connected_through"].as_str()), (Some("slack"), Some("slack")));
    assert!(!made.text.contains("token\":"), "no token in the answer: {}", made.text);
    // Replayed: refused, nothing more stored.
    server
        .post("/v1/integrations/oauth/slack/finish", &ws.key, finish)
        .await
        .assert_problem(400, "oauth_state_invalid");
    assert_eq!(probe.count(Db::Data, "integrations"), 1);

    // A code injected into another flow: that flow's PKCE verifier does not fit, the provider
    // refuses the exchange, nothing is stored and the flow is used up.
    let victim = connect("victim").await;
    let attacker = connect("attacker").await;
    let injected = json!({"state": query(&victim, "state"), "code": query(&attacker, "code")});
    let before = provider.log().await.len();
    server.post("/v1/integrations/oauth/slack/finish", &ws.key, injected).await.assert_problem(400, "oauth_refused");
    let log = log_since(&provider, before).await;
    let exchange = log.iter().find(|e| e["endpoint"] == "token").expect("an exchange");
    assert_eq!((exchange["had_code_verifier"].clone(), exchange["ok"].clone()), (json!(true), json!(false)), "{log:?}");
    assert_eq!((flows(), probe.count(Db::Data, "integrations")), (1, 1), "the attacker's own flow is left");
    let victims_own = json!({"state": query(&victim, "state"), "code": query(&victim, "code")});
    let r = server.post("/v1/integrations/oauth/slack/finish", &ws.key, victims_own).await;
    r.assert_problem(400, "oauth_state_invalid");
    server
        .post("/v1/integrations/oauth/slack/finish", &ws.key, json!({"state": "", "code": "x"}))
        .await
        .assert_problem(400, "oauth_state_invalid");
    assert_eq!(probe.count(Db::Data, "integrations"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wildcard_or_loose_redirect_uri_stops_the_server_at_start_up() {
    let secrets = tempfile::tempdir().unwrap();
    let secret = secret_file(secrets.path(), "slack", SLACK_SECRET);
    for (uris, says) in [
        ("https://*.example.com/cb", "wildcard"),
        ("https://app.example.com/*", "wildcard"),
        ("HTTPS://App.example.com/cb", "canonical"),
        ("https://app.example.com/cb#x", "canonical"),
        ("http://app.example.com/cb", "https"),
    ] {
        let options = ServerOptions::default()
            .env("CHIMATIC_OAUTH_SLACK_CLIENT_ID", SLACK_ID)
            .env("CHIMATIC_OAUTH_SLACK_CLIENT_SECRET_FILE", &secret)
            .env("CHIMATIC_OAUTH_SLACK_REDIRECT_URIS", uris);
        let log = match TestServer::try_spawn_with(options).await {
            Ok(_) => panic!("started with {uris}"),
            Err(log) => log,
        };
        assert!(log.contains("CHIMATIC_OAUTH_SLACK") && log.contains(says), "{uris}: {log}");
        assert!(!log.contains(SLACK_SECRET));
    }
}
