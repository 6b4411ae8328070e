//! Topics: an event to a topic reaches every member exactly once through the background
//! fan-out, which pages through the members (here 1,100 in batches of 500) instead of loading
//! the topic, each member's message rendered with that member's attributes; membership is per
//! workspace, and a member erased before the event is skipped.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::store_probe::count_at;

#[tokio::test(flavor = "multi_thread")]
async fn an_event_to_a_topic_reaches_every_member_once() {
    let server = std::sync::Arc::new(TestServer::spawn().await);
    let ws = server.workspace("topics");
    let key = ws.key.clone();
    let r = server
        .post(
            "/v1/workflows",
            &key,
            json!({"key": "digest.ready", "steps": [
            {"channel": "inapp", "title": "Digest", "text": "Hi {{ subscriber.name }}: {{ data.count }} new"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    const MEMBERS: usize = 1100;
    let mut ids = Vec::with_capacity(MEMBERS);
    for chunk in (0..MEMBERS).collect::<Vec<_>>().chunks(50) {
        let mut set = tokio::task::JoinSet::new();
        for &i in chunk {
            let (server, key) = (server.clone(), key.clone());
            set.spawn(async move {
                let r = server
                    .post(
                        "/v1/subscribers",
                        &key,
                        json!({"external_id": format!("member-{i}"), "attributes": {"name": format!("m{i}")}}),
                    )
                    .await;
                assert_eq!(r.status, 201, "{}", r.text);
                let id = r.json["id"].as_str().unwrap().to_string();
                let c = server.post(&format!("/v1/subscribers/{id}/channels"), &key, json!({"type": "inapp"})).await;
                assert_eq!(c.status, 201, "{}", c.text);
                (i, id)
            });
        }
        while let Some(id) = set.join_next().await {
            ids.push(id.unwrap());
        }
    }
    ids.sort();
    let ids: Vec<String> = ids.into_iter().map(|(_, id)| id).collect();
    let r = server.post("/v1/topics", &key, json!({"key": "all"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let topic = r.json["id"].as_str().unwrap().to_string();
    server.post("/v1/topics", &key, json!({"key": "all"})).await.assert_problem(409, "conflict");
    for chunk in ids.chunks(1000) {
        let r = server.post(&format!("/v1/topics/{topic}/subscribers"), &key, json!({"subscriber_ids": chunk})).await;
        assert_eq!((r.status, r.json["changed"].as_u64()), (200, Some(chunk.len() as u64)), "{}", r.text);
    }
    // Adding again changes nothing.
    let r = server.post(&format!("/v1/topics/{topic}/subscribers"), &key, json!({"subscriber_ids": &ids[..10]})).await;
    assert_eq!(r.json["changed"], 0);
    assert_eq!(server.get(&format!("/v1/topics/{topic}"), &key).await.json["subscriber_count"], MEMBERS);
    let page = server.get(&format!("/v1/topics/{topic}/subscribers?limit=1000"), &key).await;
    assert_eq!(page.json["data"].as_array().unwrap().len(), 1000);
    let rest = server
        .get(
            &format!("/v1/topics/{topic}/subscribers?limit=1000&after={}", page.json["next_cursor"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(rest.json["data"].as_array().unwrap().len(), MEMBERS - 1000);

    // A member erased before the event is not sent it.
    const ERASED: usize = 5;
    let r = server.call("DELETE", &format!("/v1/subscribers/{}", ids[ERASED]), Some(&key), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent_to = MEMBERS - 1;

    let r = server
        .post("/v1/events", &key, json!({"name": "digest.ready", "to": [{"topic": "all"}], "data": {"count": 3}}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["fanouts"], json!(["all"]));
    assert_eq!(r.json["notifications"], json!([]));

    // Every member left gets exactly one message, all delivered.
    let (data_url, _) = server.probe().urls();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let delivered =
            count_at(&data_url, "SELECT COUNT(*) FROM notifications WHERE kind = 'inapp' AND status = 'delivered'");
        if delivered as usize == sent_to {
            break;
        }
        assert!(Instant::now() < deadline, "{delivered} of {sent_to} delivered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(count_at(&data_url, "SELECT COUNT(*) FROM notifications") as usize, sent_to, "no duplicates");
    assert_eq!(count_at(&data_url, "SELECT COUNT(DISTINCT subscriber_id) FROM notifications") as usize, sent_to);
    assert_eq!(count_at(&data_url, "SELECT COUNT(*) FROM fanouts WHERE done_at IS NOT NULL"), 1);
    // Each message was rendered for its own member (batches open members together).
    for i in [0, 499, 500, 777, MEMBERS - 1] {
        let inbox: Value = server.get(&format!("/v1/subscribers/{}/inbox", ids[i]), &key).await.json;
        assert_eq!(inbox["unread_count"], 1, "member {i}: {inbox}");
        assert_eq!(inbox["data"][0]["text"], format!("Hi m{i}: 3 new"), "member {i}");
    }

    // Removing members; another workspace sees none of it.
    let r = server
        .post(&format!("/v1/topics/{topic}/subscribers/remove"), &key, json!({"subscriber_ids": &ids[..100]}))
        .await;
    assert_eq!(r.json["changed"], 99, "the erased member had left already");
    let b = server.workspace("other");
    server.get(&format!("/v1/topics/{topic}"), &b.key).await.assert_problem(404, "not_found");
    server
        .post(&format!("/v1/topics/{topic}/subscribers"), &b.key, json!({"subscriber_ids": &ids[..5]}))
        .await
        .assert_problem(404, "not_found");
    let r = server.post("/v1/topics", &b.key, json!({"key": "all"})).await;
    let b_topic = r.json["id"].as_str().unwrap().to_string();
    let r =
        server.post(&format!("/v1/topics/{b_topic}/subscribers"), &b.key, json!({"subscriber_ids": &ids[..5]})).await;
    assert_eq!(r.json["changed"], 0, "A's subscribers cannot join B's topic");
    let r = server
        .post("/v1/workflows", &b.key, json!({"key": "digest.ready", "steps": [{"channel": "inapp", "text": "x"}]}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    server
        .post("/v1/events", &b.key, json!({"name": "digest.ready", "to": [{"topic": "nope"}]}))
        .await
        .assert_problem(422, "unknown_topic");
}
