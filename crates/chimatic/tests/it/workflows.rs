//! Workflows: validated against the workspace's integrations and the template syntax before
//! anything is stored, stored encrypted, previewed with sample data only.

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::security::random_hex;
use crate::store_probe::Db;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn integration(server: &TestServer, key: &str, body: Value) -> String {
    let r = server.post("/v1/integrations", key, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json["id"].as_str().unwrap().to_string()
}

async fn smtp_and_slack(server: &TestServer, key: &str) -> (String, String) {
    let smtp = integration(
        server,
        key,
        json!({"kind": "smtp", "name": "mail",
               "settings": {"host": "smtp.example.com", "port": 587, "security": "starttls", "from": "noreply@example.com"},
               "credentials": {"username": "u", "password": "p"}}),
    )
    .await;
    let slack =
        integration(server, key, json!({"kind": "slack", "name": "s", "credentials": {"bot_token": "xoxb-1"}})).await;
    (smtp, slack)
}

#[tokio::test(flavor = "multi_thread")]
async fn workflows_are_validated_stored_encrypted_and_previewed() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("workflows");
    let (smtp, slack) = smtp_and_slack(&server, &ws.key).await;
    let canary = format!("template-canary-{}", random_hex(6));
    let email_step = json!({"channel": "email", "integration_id": smtp, "subject": "Order {{ data.order }} shipped",
                            "text": format!("Hi {{{{ subscriber.name }}}}, {canary}: {{{{ data.note }}}}"),
                            "html": "<p>{{ data.note }}</p>"});
    let inapp_step = json!({"channel": "inapp", "title": "Shipped", "text": "Order {{ data.order }} is on its way"});
    let r = server
        .post(
            "/v1/workflows",
            &ws.key,
            json!({"key": "order.shipped", "category": "orders", "steps": [email_step, inapp_step]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("wf_"));
    assert_eq!(r.json["steps"][0]["integration_id"], smtp.as_str());
    server
        .post("/v1/workflows", &ws.key, json!({"key": "order.shipped", "steps": [inapp_step]}))
        .await
        .assert_problem(409, "conflict");

    // Everything wrong is refused with a clear 422, and nothing is stored.
    let probe = server.probe();
    let bad_cases = [
        (json!({"key": "Order Shipped", "steps": [inapp_step]}), "invalid_workflow"),
        (json!({"key": "a", "steps": []}), "invalid_workflow"),
        (json!({"key": "a", "steps": vec![inapp_step.clone(); 11]}), "invalid_workflow"),
        (json!({"key": "a", "steps": [{"channel": "email", "integration_id": smtp, "text": "x"}]}), "invalid_workflow"),
        (json!({"key": "a", "steps": [{"channel": "sms", "text": "x"}]}), "invalid_workflow"),
        (
            json!({"key": "a", "steps": [{"channel": "email", "integration_id": slack, "subject": "s", "text": "x"}]}),
            "invalid_workflow",
        ),
        (
            json!({"key": "a", "steps": [{"channel": "email", "integration_id": format!("int_{}", random_hex(16)), "subject": "s", "text": "x"}]}),
            "invalid_workflow",
        ),
        (json!({"key": "a", "steps": [{"channel": "inapp", "integration_id": smtp, "text": "x"}]}), "invalid_workflow"),
        (
            json!({"key": "a", "steps": [{"channel": "slack", "integration_id": slack, "text": "x", "html": "<b>"}]}),
            "invalid_workflow",
        ),
        (json!({"key": "a", "steps": [{"channel": "inapp", "text": "{{ unclosed"}]}), "invalid_template"),
        (json!({"key": "a", "steps": [{"channel": "inapp", "text": "x", "colour": "red"}]}), "invalid_body"),
    ];
    for (body, code) in bad_cases {
        let r = server.post("/v1/workflows", &ws.key, body.clone()).await;
        r.assert_problem(422, code);
    }
    assert_eq!(probe.count(Db::Data, "workflows"), 1);

    // A preview renders with sample data only; HTML is escaped, text is not.
    let r = server
        .post(
            &format!("/v1/workflows/{id}/preview"),
            &ws.key,
            json!({"data": {"order": 42, "note": "<script>x</script>"}, "subscriber": {"name": "Ann"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["steps"][0]["subject"], "Order 42 shipped");
    assert_eq!(r.json["steps"][0]["text"], format!("Hi Ann, {canary}: <script>x</script>"));
    assert_eq!(r.json["steps"][0]["html"], "<p>&lt;script&gt;x&lt;&#x2f;script&gt;</p>");
    assert_eq!(r.json["steps"][1]["title"], "Shipped");

    // The definition is stored encrypted.
    for (path, bytes) in probe.files_on_disk() {
        assert!(!contains(&bytes, canary.as_bytes()), "a template is in plaintext in {}", path.display());
    }

    // Replace keeps the key; delete removes it.
    let r =
        server.call("PUT", &format!("/v1/workflows/{id}"), Some(&ws.key), Some(json!({"steps": [inapp_step]}))).await;
    assert_eq!((r.status, r.json["key"].as_str()), (200, Some("order.shipped")), "{}", r.text);
    assert_eq!(r.json["steps"].as_array().unwrap().len(), 1);
    assert_eq!(server.get("/v1/workflows", &ws.key).await.json["data"].as_array().unwrap().len(), 1);
    assert_eq!(server.delete(&format!("/v1/workflows/{id}"), &ws.key).await.status, 204);
    server.get(&format!("/v1/workflows/{id}"), &ws.key).await.assert_problem(404, "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_workspace_cannot_see_use_or_change_a_workflow() {
    let server = TestServer::spawn().await;
    let a = server.workspace("wf-a");
    let b = server.workspace("wf-b");
    let (a_smtp, _) = smtp_and_slack(&server, &a.key).await;
    let step = json!({"channel": "inapp", "text": "hello"});
    let r = server.post("/v1/workflows", &a.key, json!({"key": "welcome", "steps": [step]})).await;
    let a_wf = r.json["id"].as_str().unwrap().to_string();

    for r in [
        server.get(&format!("/v1/workflows/{a_wf}"), &b.key).await,
        server.call("PUT", &format!("/v1/workflows/{a_wf}"), Some(&b.key), Some(json!({"steps": [step]}))).await,
        server.delete(&format!("/v1/workflows/{a_wf}"), &b.key).await,
        server.post(&format!("/v1/workflows/{a_wf}/preview"), &b.key, json!({})).await,
    ] {
        r.assert_problem(404, "not_found");
        assert!(!r.text.contains(&a_wf));
    }
    // B cannot point a step at A's integration.
    let r = server
        .post(
            "/v1/workflows",
            &b.key,
            json!({"key": "welcome", "steps": [{"channel": "email", "integration_id": a_smtp, "subject": "s", "text": "t"}]}),
        )
        .await;
    r.assert_problem(422, "invalid_workflow");
    // The same key in B is B's own.
    assert_eq!(server.post("/v1/workflows", &b.key, json!({"key": "welcome", "steps": [step]})).await.status, 201);
    assert_eq!(server.get(&format!("/v1/workflows/{a_wf}"), &a.key).await.json["steps"][0]["text"], "hello");
}
