//! The access matrix, read from the served OpenAPI document so a new endpoint cannot skip it:
//! every operation that takes an API key answers 401 without one, 403 to a key without the
//! scope the document names, and 404 to another workspace's key for this workspace's ids —
//! each as problem+json with a code the document lists for it — and nothing changes. Every
//! request body the document describes carries an example, and the matrix sends it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::harness::{Resp, TestServer};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn created(server: &TestServer, key: &str, path: &str, body: Value) -> String {
    let r = server.post(path, key, body).await;
    assert!(r.status == 201 || r.status == 202 || r.status == 200, "{path}: {}", r.text);
    let id = r.json["id"].as_str().or_else(|| r.json["notifications"][0].as_str());
    id.unwrap_or_else(|| panic!("{path}: no id in {}", r.text)).to_string()
}

/// One resource of each kind in the workspace, by the schema name of its id.
async fn resources(server: &TestServer, key: &str) -> BTreeMap<&'static str, String> {
    let channel =
        created(server, key, "/v1/channels", json!({"type": "webhook", "url": "http://127.0.0.1:9/hook"})).await;
    let notification =
        created(server, key, "/v1/notifications", json!({"channel_id": channel, "payload": {"n": 1}})).await;
    let subscriber = created(server, key, "/v1/subscribers", json!({"external_id": "ann"})).await;
    let subscriber_channel =
        created(server, key, &format!("/v1/subscribers/{subscriber}/channels"), json!({"type": "inapp"})).await;
    let integration = created(server, key, "/v1/integrations", json!({"kind": "webhook", "name": "hooks"})).await;
    let step = json!({"channel": "inapp", "title": "Hi", "text": "Hello"});
    let workflow = created(server, key, "/v1/workflows", json!({"key": "matrix.event", "steps": [step]})).await;
    let message = created(server, key, "/v1/events", json!({"name": "matrix.event", "to": ["ann"]})).await;
    let topic = created(server, key, "/v1/topics", json!({"key": "matrix.topic"})).await;
    let suppression =
        created(server, key, "/v1/suppressions", json!({"type": "email", "address": "gone@example.com"})).await;
    let api_key = created(server, key, "/v1/api-keys", json!({"name": "spare", "scopes": ["channels:read"]})).await;
    let mut ids = BTreeMap::from([
        ("ChannelId", channel),
        ("SubscriberId", subscriber),
        ("SubscriberChannelId", subscriber_channel),
        ("IntegrationId", integration),
        ("WorkflowId", workflow),
        ("TopicId", topic),
        ("SuppressionId", suppression),
        ("ApiKeyId", api_key),
    ]);
    // A path's `message_id` is an inbox message; another `NotificationId` any notification.
    ids.insert("NotificationId", notification);
    ids.insert("MessageId", message);
    ids
}

fn schema_name(schema: &Value) -> Option<&str> {
    schema["$ref"].as_str().and_then(|r| r.rsplit('/').next())
}

/// The path with its parameters filled in, and whether any of them is a resource id.
fn fill(path: &str, op: &Value, ids: &BTreeMap<&str, String>) -> (String, bool) {
    let mut url = path.to_string();
    let mut has_ids = false;
    for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "path") {
        let name = p["name"].as_str().unwrap();
        let value = match (name, schema_name(&p["schema"])) {
            ("message_id", _) => ids["MessageId"].clone(),
            (_, Some(kind)) if ids.contains_key(kind) => ids[kind].clone(),
            ("provider", _) => "slack".to_string(),
            (other, kind) => panic!("{path}: no value for path parameter `{other}` ({kind:?}); add one to the matrix"),
        };
        has_ids |= name != "provider";
        url = url.replace(&format!("{{{name}}}"), &value);
    }
    (url, has_ids)
}

/// The documented example of the operation's JSON request body.
fn example_body(doc: &Value, path: &str, method: &str, op: &Value) -> Option<Value> {
    let content = op["requestBody"]["content"].as_object()?;
    let json = content.get("application/json")?;
    let name = schema_name(&json["schema"]).unwrap_or_else(|| panic!("{method} {path}: an inline request body"));
    let example = doc["components"]["schemas"][name]["example"].clone();
    assert!(!example.is_null(), "{method} {path}: the request body `{name}` has no example in the document");
    Some(example)
}

/// A problem+json answer with this status and a code the document lists for it there.
fn assert_problem(r: &Resp, op: &Value, what: &str, status: u16) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    assert!(r.content_type().starts_with("application/problem+json"), "{what}: {}", r.content_type());
    let documented = &op["responses"][status.to_string()]["content"]["application/problem+json"]["schema"]["allOf"][1]
        ["properties"]["code"]["enum"];
    let code = r.json["code"].as_str().unwrap_or_default();
    assert!(
        documented.as_array().is_some_and(|codes| codes.iter().any(|c| c == code)),
        "{what}: `{code}` is not documented for {status} ({documented})"
    );
}

/// Subscriber tokens of another subscriber of the workspace: one per scope, and one with both.
struct OtherSubscriber {
    inbox: String,
    portal: String,
    both: String,
}

/// An inbox or portal operation (subscriber token): 401 without a token or with a made-up one,
/// 403 to a token without the scope the document names, and 404 for another subscriber's
/// messages or endpoints. A live stream is only asked for without a valid token.
async fn check_subscriber_operation(
    server: &TestServer,
    doc: &Value,
    path: &str,
    method: &str,
    op: &Value,
    ids: &BTreeMap<&str, String>,
    other: &OtherSubscriber,
) {
    let what = format!("{} {path}", method.to_uppercase());
    let (url, has_ids) = fill(path, op, ids);
    let body = example_body(doc, path, method, op);
    let m = method.to_uppercase();
    assert_problem(&server.call(&m, &url, None, body.clone()).await, op, &format!("{what} without a token"), 401);
    let made_up = server.call(&m, &url, Some("sbt_not-a-token"), body.clone()).await;
    assert_problem(&made_up, op, &format!("{what} with a made-up token"), 401);
    let scopes = op["security"][0]["subscriber"].as_array().cloned().unwrap_or_default();
    let lacking = match scopes.first().and_then(Value::as_str) {
        Some("inbox") => &other.portal,
        Some("portal") => &other.inbox,
        scope => panic!("{what}: names no subscriber scope ({scope:?})"),
    };
    let r = server.call(&m, &url, Some(lacking), body.clone()).await;
    assert_problem(&r, op, &format!("{what} with a token lacking `{}`", scopes[0]), 403);
    let other_subscriber = other.both.as_str();
    if has_ids {
        let r = server.call(&m, &url, Some(other_subscriber), body).await;
        assert_problem(&r, op, &format!("{what} with another subscriber's token"), 404);
    }
}

async fn count(server: &TestServer, key: &str, path: &str) -> usize {
    let r = server.get(path, key).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.json["data"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_refuses_no_key_a_key_without_its_scope_and_another_workspaces_ids() {
    let server = TestServer::spawn().await;
    let a = server.workspace("matrix-a");
    let b = server.workspace("matrix-b");
    let ids = resources(&server, &a.key).await;
    let narrow = |scopes: Value| {
        let (server, key) = (&server, a.key.clone());
        async move {
            let r = server.post("/v1/api-keys", &key, json!({"name": "narrow", "scopes": scopes})).await;
            r.json["key"].as_str().unwrap().to_string()
        }
    };
    let (only_audit, only_channels) = (narrow(json!(["audit:read"])).await, narrow(json!(["channels:read"])).await);
    // Another subscriber of the same workspace, with its own tokens.
    let bob = created(&server, &a.key, "/v1/subscribers", json!({"external_id": "bob"})).await;
    let token = |scopes: Value| {
        let (server, key, path) = (&server, a.key.clone(), format!("/v1/subscribers/{bob}/token"));
        async move { server.post(&path, &key, json!({"scopes": scopes})).await.json["token"].as_str().unwrap().to_string() }
    };
    let other_subscriber = OtherSubscriber {
        inbox: token(json!(["inbox"])).await,
        portal: token(json!(["portal"])).await,
        both: token(json!(["inbox", "portal"])).await,
    };
    let lists =
        ["/v1/channels", "/v1/subscribers", "/v1/integrations", "/v1/workflows", "/v1/topics", "/v1/suppressions"];
    let mut before = Vec::new();
    for list in lists {
        before.push(count(&server, &a.key, list).await);
    }

    let doc = server.get("/v1/openapi.json", &a.key).await.json;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let security = op.get("security").cloned().unwrap_or_else(|| doc["security"].clone());
            if security[0].get("subscriber").is_some() {
                check_subscriber_operation(&server, &doc, path, method, op, &ids, &other_subscriber).await;
                checked += 1;
                continue;
            }
            let Some(scopes) = security[0].get("bearer").and_then(Value::as_array) else { continue };
            let what = format!("{} {path}", method.to_uppercase());
            let (url, has_ids) = fill(path, op, &ids);
            let body = example_body(&doc, path, method, op);
            let call = |key: Option<String>| {
                let (server, url, body, method) = (&server, url.clone(), body.clone(), method.to_uppercase());
                async move { server.call(&method, &url, key.as_deref(), body).await }
            };

            assert_problem(&call(None).await, op, &format!("{what} without a key"), 401);
            assert_problem(&call(Some("chm_not-a-key".into())).await, op, &format!("{what} with a made-up key"), 401);
            match scopes.first().and_then(Value::as_str) {
                Some(scope) => {
                    let key = if scope == "audit:read" { &only_channels } else { &only_audit };
                    assert_problem(&call(Some(key.clone())).await, op, &format!("{what} without `{scope}`"), 403);
                }
                // The document says any key will do: so must the server.
                None => {
                    let r = call(Some(only_audit.clone())).await;
                    assert!(
                        !matches!(r.status, 401 | 403),
                        "{what} needs a scope the document does not name: {}",
                        r.text
                    );
                }
            }
            if has_ids {
                assert_problem(&call(Some(b.key.clone())).await, op, &format!("{what} from another workspace"), 404);
            }
            checked += 1;
        }
    }
    assert!(checked >= 55, "only {checked} operations were checked");

    // Nothing any of it asked for happened.
    for (list, n) in lists.iter().zip(before) {
        assert_eq!(count(&server, &a.key, list).await, n, "{list} changed");
    }
    let channel = server.get(&format!("/v1/channels/{}", ids["ChannelId"]), &a.key).await;
    assert_eq!(channel.json["status"], "active", "{}", channel.text);
    assert_eq!(server.get(&format!("/v1/subscribers/{}", ids["SubscriberId"]), &a.key).await.status, 200);
    let keys = server.get("/v1/api-keys", &a.key).await;
    let spare = keys.json["data"].as_array().unwrap().iter().find(|k| k["id"] == ids["ApiKeyId"].as_str()).cloned();
    assert!(spare.is_some_and(|k| k["revoked_at"].is_null()), "{}", keys.text);
}
