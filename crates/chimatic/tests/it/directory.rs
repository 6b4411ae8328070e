//! The directory: subscribers and their channels (encrypted under per-subscriber keys, shown
//! masked), and provider integrations whose credentials live only in the credential vault.

use serde_json::{Value, json};

use crate::harness::{Resp, ServerOptions, TestServer};
use crate::security::random_hex;
use crate::store_probe::{Db, files_at};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn no_canary(what: &str, r: &Resp, canaries: &[&str]) {
    for c in canaries {
        assert!(!r.text.contains(c), "{what}: the response shows {c}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribers_and_their_channels_are_encrypted_validated_and_shown_masked() {
    let server = TestServer::spawn_with(ServerOptions::default().log("trace")).await;
    let ws = server.workspace("directory");
    let tag = random_hex(6);
    let external = format!("user-canary-{tag}@customer.example");
    let name = format!("Name Canary {tag}");
    let email = format!("inbox.canary.{tag}@example.com");
    let phone = "+14155550123";
    let hook = format!("http://127.0.0.1:9/hook-canary-{tag}");
    let canaries = [external.as_str(), name.as_str(), email.as_str(), hook.as_str(), "5550123"];

    let r =
        server.post("/v1/subscribers", &ws.key, json!({"external_id": external, "attributes": {"name": name}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    no_canary("create", &r, &canaries);
    let sub = r.json["id"].as_str().unwrap().to_string();
    assert!(sub.starts_with("sub_"));
    assert_eq!(r.json["attributes_masked"]["name"], "Nam…");
    // The same external id is the same subscriber: 200, attributes replaced.
    let again =
        server.post("/v1/subscribers", &ws.key, json!({"external_id": external, "attributes": {"plan": "pro"}})).await;
    assert_eq!((again.status, again.json["id"].as_str()), (200, Some(sub.as_str())), "{}", again.text);
    assert_eq!(again.json["attributes_masked"], json!({"plan": "…"}));
    let r = server
        .call("PATCH", &format!("/v1/subscribers/{sub}"), Some(&ws.key), Some(json!({"attributes": {"name": name}})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let mut created = Vec::new();
    for body in [
        json!({"type": "email", "address": email}),
        json!({"type": "sms", "phone": phone}),
        json!({"type": "slack", "channel_id": "C0123456789"}),
        json!({"type": "slack", "webhook_url": hook}),
        json!({"type": "webhook", "url": hook}),
        json!({"type": "inapp"}),
    ] {
        let r = server.post(&format!("/v1/subscribers/{sub}/channels"), &ws.key, body.clone()).await;
        assert_eq!(r.status, 201, "{body}: {}", r.text);
        no_canary("add channel", &r, &canaries);
        created.push((
            r.json["type"].as_str().unwrap().to_string(),
            r.json["address_masked"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(created[0], ("email".to_string(), "inb…@…".to_string()));
    assert_eq!(created[1], ("sms".to_string(), "+…0123".to_string()));
    assert_eq!(created[2], ("slack".to_string(), "#…789".to_string()));
    assert_eq!(created[5], ("inapp".to_string(), "inbox".to_string()));

    let listed = server.get(&format!("/v1/subscribers/{sub}/channels"), &ws.key).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json["data"].as_array().unwrap().len(), 6);
    no_canary("list channels", &listed, &canaries);
    let one = server.get(&format!("/v1/subscribers/{sub}"), &ws.key).await;
    no_canary("get subscriber", &one, &canaries);
    let all = server.get("/v1/subscribers", &ws.key).await;
    assert_eq!(all.json["data"].as_array().unwrap().len(), 1, "{}", all.text);
    no_canary("list subscribers", &all, &canaries);

    // Bad input: a clear 422 that does not echo the value, and nothing stored.
    let probe = server.probe();
    let before = probe.count(Db::Data, "subscriber_channels");
    for (body, code) in [
        (json!({"type": "email", "address": format!("not-an-address-{tag}")}), "invalid_address"),
        (json!({"type": "sms", "phone": format!("0800{tag}")}), "invalid_address"),
        (json!({"type": "slack", "channel_id": "C0123456789", "webhook_url": hook}), "invalid_address"),
        (json!({"type": "slack"}), "invalid_address"),
        (json!({"type": "webhook", "url": format!("ftp://x/{tag}")}), "invalid_url"),
        (json!({"type": "fax", "number": tag}), "invalid_body"),
        (json!({"type": "email", "address": email, "extra": tag}), "invalid_body"),
    ] {
        let r = server.post(&format!("/v1/subscribers/{sub}/channels"), &ws.key, body.clone()).await;
        r.assert_problem(422, code);
        assert!(!r.text.contains(&tag), "{body}: the error echoes the input: {}", r.text);
    }
    for body in
        [json!({"external_id": ""}), json!({"external_id": "x", "attributes": [1, 2]}), json!({"attributes": {}})]
    {
        let r = server.post("/v1/subscribers", &ws.key, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
    }
    assert_eq!(probe.count(Db::Data, "subscriber_channels"), before);
    assert_eq!(probe.count(Db::Data, "subscribers"), 1);

    // Removing a channel: once, then it is gone.
    let channel_id = listed.json["data"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/subscribers/{sub}/channels/{channel_id}");
    assert_eq!(server.delete(&path, &ws.key).await.status, 204);
    server.delete(&path, &ws.key).await.assert_problem(404, "not_found");

    // Nothing personal in plaintext in any file or in the trace-level log.
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

#[tokio::test(flavor = "multi_thread")]
async fn integration_credentials_live_only_in_the_vault_and_are_never_returned() {
    let server = TestServer::spawn_with(ServerOptions::default().log("trace")).await;
    let ws = server.workspace("integrations");
    let tag = random_hex(8);
    let password = format!("smtp-password-canary-{tag}");
    let token = format!("sms-token-canary-{tag}");
    let canaries = [password.as_str(), token.as_str()];

    let smtp = server
        .post(
            "/v1/integrations",
            &ws.key,
            json!({"kind": "smtp", "name": "mail",
                   "settings": {"host": "smtp.example.com", "port": 587, "security": "starttls", "from": "noreply@example.com"},
                   "credentials": {"username": "mailer", "password": password}}),
        )
        .await;
    assert_eq!(smtp.status, 201, "{}", smtp.text);
    no_canary("create smtp", &smtp, &canaries);
    assert_eq!(smtp.json["credentials_set"], json!(["username", "password"]));
    assert_eq!(smtp.json["settings_masked"]["from"], "nor…@…");
    assert_eq!(smtp.json["settings_masked"]["host"], "smtp.example.com");
    assert!(smtp.json["signing_secret"].is_null());
    let smtp_id = smtp.json["id"].as_str().unwrap().to_string();

    let sms = server
        .post(
            "/v1/integrations",
            &ws.key,
            json!({"kind": "sms", "name": "texts",
                   "settings": {"base_url": "http://127.0.0.1:9/sms", "account_id": "AC0123456789", "from": "+14155550100"},
                   "credentials": {"auth_token": token}}),
        )
        .await;
    assert_eq!(sms.status, 201, "{}", sms.text);
    assert_eq!(sms.json["settings_masked"]["account_id"], "…6789");
    let webhook = server.post("/v1/integrations", &ws.key, json!({"kind": "webhook", "name": "hooks"})).await;
    assert_eq!(webhook.status, 201, "{}", webhook.text);
    let secret = webhook.json["signing_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");

    let list = server.get("/v1/integrations", &ws.key).await;
    assert_eq!(list.json["data"].as_array().unwrap().len(), 3, "{}", list.text);
    no_canary("list", &list, &canaries);
    assert!(!list.text.contains(&secret), "the signing secret is shown again");
    no_canary("get", &server.get(&format!("/v1/integrations/{smtp_id}"), &ws.key).await, &canaries);

    // Bad input: 422 naming the field, never echoing the value; nothing stored.
    let probe = server.probe();
    for body in [
        json!({"kind": "smtp", "name": "x", "settings": {"host": "h.example", "port": "25x", "security": "starttls", "from": "a@b.co"},
               "credentials": {"username": "u", "password": password}}),
        json!({"kind": "smtp", "name": "x", "settings": {"host": "h.example", "port": 25, "security": "starttls", "from": "a@b.co"},
               "credentials": {"password": password}}),
        json!({"kind": "sms", "name": "x", "settings": {"base_url": "http://127.0.0.1:9/", "account_id": "AC1", "from": "+14155550100"},
               "credentials": {"auth_token": token, "note": token}}),
        json!({"kind": "webhook", "name": "x", "credentials": {"signing_secret": token}}),
        json!({"kind": "slack", "name": "x"}),
    ] {
        let r = server.post("/v1/integrations", &ws.key, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        no_canary("refused integration", &r, &canaries);
    }
    assert_eq!(probe.count(Db::Data, "integrations"), 3);
    assert_eq!(probe.count(Db::Vault, "secrets WHERE kind = 'integration_credentials'"), 3);

    // Credentials change in the vault only; the kind cannot change.
    let new_password = format!("rotated-canary-{tag}");
    let before = probe.blob(Db::Vault, "secrets", "secret", "owner_id", &smtp_id);
    let r = server
        .call(
            "PATCH",
            &format!("/v1/integrations/{smtp_id}"),
            Some(&ws.key),
            Some(json!({"name": "mail-2", "credentials": {"username": "mailer", "password": new_password}})),
        )
        .await;
    assert_eq!((r.status, r.json["name"].as_str()), (200, Some("mail-2")), "{}", r.text);
    assert_ne!(probe.blob(Db::Vault, "secrets", "secret", "owner_id", &smtp_id), before);
    let r = server
        .call(
            "PATCH",
            &format!("/v1/integrations/{smtp_id}"),
            Some(&ws.key),
            Some(json!({"credentials": {"bot_token": "x"}})),
        )
        .await;
    r.assert_problem(422, "invalid_integration");

    // Neither store holds the other's data: the vault's sealed credentials are nowhere in the
    // notification store's files, and the integration's sealed settings nowhere in the vault's.
    let sealed_credentials = probe.blob(Db::Vault, "secrets", "secret", "owner_id", &smtp_id);
    let sealed_settings = probe.blob(Db::Data, "integrations", "settings", "id", &smtp_id);
    let (data_url, vault_url) = probe.urls();
    for (path, bytes) in files_at(&data_url) {
        assert!(!contains(&bytes, &sealed_credentials), "vault ciphertext in {}", path.display());
    }
    for (path, bytes) in files_at(&vault_url) {
        assert!(!contains(&bytes, &sealed_settings), "notification-store ciphertext in {}", path.display());
    }
    let canaries = [password.as_str(), token.as_str(), new_password.as_str(), secret.as_str()];
    for (path, bytes) in probe.files_on_disk() {
        for c in &canaries {
            assert!(!contains(&bytes, c.as_bytes()), "{c} is in {}", path.display());
        }
    }
    let log = server.log();
    for c in &canaries {
        assert!(!log.contains(c), "{c} is in the log");
    }

    // Deleting removes the credentials from the vault too.
    assert_eq!(server.delete(&format!("/v1/integrations/{smtp_id}"), &ws.key).await.status, 204);
    server.get(&format!("/v1/integrations/{smtp_id}"), &ws.key).await.assert_problem(404, "not_found");
    assert_eq!(probe.count(Db::Vault, "secrets WHERE kind = 'integration_credentials'"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_workspace_cannot_see_or_change_the_directory() {
    let server = TestServer::spawn().await;
    let a = server.workspace("dir-a");
    let b = server.workspace("dir-b");
    let r = server
        .post("/v1/subscribers", &a.key, json!({"external_id": "shared-id", "attributes": {"tier": "gold"}}))
        .await;
    let a_sub = r.json["id"].as_str().unwrap().to_string();
    let r = server
        .post(&format!("/v1/subscribers/{a_sub}/channels"), &a.key, json!({"type": "sms", "phone": "+14155550123"}))
        .await;
    let a_channel = r.json["id"].as_str().unwrap().to_string();
    let r = server
        .post("/v1/integrations", &a.key, json!({"kind": "slack", "name": "a", "credentials": {"bot_token": "xoxb-a"}}))
        .await;
    let a_int = r.json["id"].as_str().unwrap().to_string();

    let attempts: Vec<(&str, Resp)> = vec![
        ("get subscriber", server.get(&format!("/v1/subscribers/{a_sub}"), &b.key).await),
        (
            "patch subscriber",
            server
                .call("PATCH", &format!("/v1/subscribers/{a_sub}"), Some(&b.key), Some(json!({"attributes": {}})))
                .await,
        ),
        ("list channels", server.get(&format!("/v1/subscribers/{a_sub}/channels"), &b.key).await),
        ("erase subscriber", server.delete(&format!("/v1/subscribers/{a_sub}"), &b.key).await),
        (
            "add channel",
            server.post(&format!("/v1/subscribers/{a_sub}/channels"), &b.key, json!({"type": "inapp"})).await,
        ),
        ("remove channel", server.delete(&format!("/v1/subscribers/{a_sub}/channels/{a_channel}"), &b.key).await),
        ("inbox", server.get(&format!("/v1/subscribers/{a_sub}/inbox"), &b.key).await),
        (
            "mark inbox",
            server
                .call(
                    "PATCH",
                    &format!("/v1/subscribers/{a_sub}/inbox/msg_{}", random_hex(16)),
                    Some(&b.key),
                    Some(json!({"read": true})),
                )
                .await,
        ),
        ("get integration", server.get(&format!("/v1/integrations/{a_int}"), &b.key).await),
        (
            "patch integration",
            server.call("PATCH", &format!("/v1/integrations/{a_int}"), Some(&b.key), Some(json!({"name": "b"}))).await,
        ),
        ("delete integration", server.delete(&format!("/v1/integrations/{a_int}"), &b.key).await),
        ("inbound history", server.get(&format!("/v1/integrations/{a_int}/inbound"), &b.key).await),
    ];
    for (what, r) in &attempts {
        r.assert_problem(404, "not_found");
        for id in [&a_sub, &a_channel, &a_int] {
            assert!(!r.text.contains(id.as_str()), "{what}: names A's {id}");
        }
    }
    // The same external id in B is B's own subscriber.
    let r = server.post("/v1/subscribers", &b.key, json!({"external_id": "shared-id"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_ne!(r.json["id"].as_str(), Some(a_sub.as_str()));
    assert_eq!(server.get("/v1/integrations", &b.key).await.json["data"], json!([]));
    // A is unchanged.
    let sub = server.get(&format!("/v1/subscribers/{a_sub}"), &a.key).await;
    assert_eq!(sub.json["attributes_masked"], json!({"tier": "…"}));
    let channels = server.get(&format!("/v1/subscribers/{a_sub}/channels"), &a.key).await;
    assert_eq!(channels.json["data"].as_array().unwrap().len(), 1);
    let int: Value = server.get(&format!("/v1/integrations/{a_int}"), &a.key).await.json;
    assert_eq!(int["name"], "a");
}
