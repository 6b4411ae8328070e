//! GDPR erasure with crypto-shredding: erasing a subscriber destroys its key (kept in the vault,
//! away from the data it protects) and deletes its channels, messages, attempts, inbox and
//! memberships; a copy of the notification store taken before the erasure can no longer be
//! decrypted for that subscriber, while every other subscriber in it still can.

use serde_json::{Value, json};

use crate::harness::{ServerOptions, TestServer};
use crate::store_probe::{Db, restore_data_store, snapshot_data_store};

async fn created(server: &TestServer, key: &str, path: &str, body: Value) -> String {
    let r = server.post(path, key, body).await;
    assert!(r.status == 201 || r.status == 200, "{path}: {}", r.text);
    r.json["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erased_subscriber_is_gone_and_unreadable_even_in_an_older_copy_of_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut server = TestServer::spawn_in(&dir, ServerOptions::default()).await;
    let ws = crate::harness::create_workspace(&dir, "erasure");
    let key = ws.key.as_str();
    created(
        &server,
        key,
        "/v1/workflows",
        json!({"key": "news", "steps": [{"channel": "inapp", "title": "News", "text": "Hello {{ subscriber.name }}"}]}),
    )
    .await;
    let topic = created(&server, key, "/v1/topics", json!({"key": "all"})).await;
    let mut ids = Vec::new();
    for name in ["ann", "bob"] {
        let id =
            created(&server, key, "/v1/subscribers", json!({"external_id": name, "attributes": {"name": name}})).await;
        created(&server, key, &format!("/v1/subscribers/{id}/channels"), json!({"type": "inapp"})).await;
        created(
            &server,
            key,
            &format!("/v1/subscribers/{id}/channels"),
            json!({"type": "email", "address": format!("{name}@example.com")}),
        )
        .await;
        ids.push(id);
    }
    let (ann, bob) = (ids[0].clone(), ids[1].clone());
    server.post(&format!("/v1/topics/{topic}/subscribers"), key, json!({"subscriber_ids": ids})).await;
    let r = server.post("/v1/events", key, json!({"name": "news", "to": ["ann", "bob"]})).await;
    for id in r.json["notifications"].as_array().unwrap() {
        server.wait_notification(key, id.as_str().unwrap(), |n| n["status"] == "delivered").await;
    }

    // A backup of the notification store, taken before the erasure.
    server.terminate();
    snapshot_data_store(&dir);
    let mut server = TestServer::spawn_in(&dir, ServerOptions::default()).await;

    let r = server.delete(&format!("/v1/subscribers/{ann}"), key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["key_destroyed"], true);
    assert_eq!((r.json["channels"].as_u64(), r.json["messages"].as_u64()), (Some(2), Some(1)), "{}", r.text);
    assert_eq!((r.json["attempts"].as_u64(), r.json["topic_memberships"].as_u64()), (Some(1), Some(1)), "{}", r.text);
    // Gone from use: 404 everywhere, nothing left in the store; a second erasure finds nothing.
    server.get(&format!("/v1/subscribers/{ann}"), key).await.assert_problem(404, "not_found");
    server.get(&format!("/v1/subscribers/{ann}/inbox"), key).await.assert_problem(404, "not_found");
    server.delete(&format!("/v1/subscribers/{ann}"), key).await.assert_problem(404, "not_found");
    let probe = server.probe();
    for table in ["notifications", "subscriber_channels", "topic_subscribers"] {
        assert_eq!(probe.count(Db::Data, &format!("{table} WHERE subscriber_id = '{ann}'")), 0, "{table}");
    }
    assert_eq!(probe.count(Db::Data, &format!("subscribers WHERE id = '{ann}'")), 0);
    assert_eq!(probe.count(Db::Vault, &format!("secrets WHERE owner_id = '{ann}'")), 0, "the key is destroyed");
    // Bob is untouched.
    let inbox = server.get(&format!("/v1/subscribers/{bob}/inbox"), key).await;
    assert_eq!(inbox.json["data"][0]["text"], "Hello bob", "{}", inbox.text);
    assert_eq!(server.get(&format!("/v1/topics/{topic}"), key).await.json["subscriber_count"], 1);

    // The old copy comes back (a restored backup), with today's vault: ann's rows are in it, but
    // nothing opens them any more; bob's still open.
    server.terminate();
    restore_data_store(&dir);
    let server = TestServer::spawn_in(&dir, ServerOptions::default()).await;
    let probe = server.probe();
    assert_eq!(probe.count(Db::Data, &format!("subscribers WHERE id = '{ann}'")), 1, "the copy holds ann's row");
    assert_eq!(probe.count(Db::Data, &format!("notifications WHERE subscriber_id = '{ann}'")), 1);
    server.get(&format!("/v1/subscribers/{ann}"), key).await.assert_problem(404, "not_found");
    server.get(&format!("/v1/subscribers/{ann}/inbox"), key).await.assert_problem(404, "not_found");
    server.get(&format!("/v1/subscribers/{ann}/channels"), key).await.assert_problem(404, "not_found");
    let bob_now = server.get(&format!("/v1/subscribers/{bob}"), key).await;
    assert_eq!((bob_now.status, &bob_now.json["attributes_masked"]), (200, &json!({"name": "…"})), "{}", bob_now.text);
    let inbox = server.get(&format!("/v1/subscribers/{bob}/inbox"), key).await;
    assert_eq!(inbox.json["data"][0]["text"], "Hello bob", "{}", inbox.text);
}
