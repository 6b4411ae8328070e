//! Control/data plane split and data residency: a control-plane node's store holds no
//! notification data, and a workspace's data is written only to its region's store.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Receiver, ServerOptions, TestServer, Workspace, cli};
use crate::store_probe::{count_at, drop_store, extra_store_url, files_at, tables_at};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn create_workspace_in(dir: &Path, env: &[(String, String)], region: Option<&str>) -> (Workspace, Value) {
    let mut cmd = cli(dir);
    cmd.args(["workspace", "create", "--name", "resident", "--data-dir"]).arg(dir).envs(env.iter().cloned());
    if let Some(r) = region {
        cmd.args(["--region", r]);
    }
    let out = cmd.env_remove("CHIMATIC_KEK").env_remove("CHIMATIC_KEK_FILE").output().unwrap();
    assert!(out.status.success(), "workspace create: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (Workspace { id: v["workspace_id"].as_str().unwrap().into(), key: v["api_key"].as_str().unwrap().into() }, v)
}

fn options(env: &[(String, String)]) -> ServerOptions {
    env.iter().fold(ServerOptions::default(), |o, (k, v)| o.env(k, v))
}

async fn wait_for_stats(control: &TestServer, key: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = control.get("/v1/stats?days=1", key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if pred(&r.json["totals"]) {
            return r.json;
        }
        assert!(Instant::now() < deadline, "stats never arrived: {}", r.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_control_plane_node_holds_no_notification_data_and_the_data_plane_delivers() {
    let control_tmp = tempfile::tempdir().unwrap();
    let data_tmp = tempfile::tempdir().unwrap();
    let (control_dir, data_dir) = (control_tmp.path().join("control"), data_tmp.path().join("data"));
    std::fs::create_dir_all(&control_dir).unwrap();
    let control_url = extra_store_url(&control_dir, "control");
    let env = vec![("CHIMATIC_CONTROL_DATABASE_URL".to_string(), control_url.clone())];

    let control = TestServer::spawn_in(&control_dir, options(&env).env("CHIMATIC_ROLE", "control")).await;
    // A control-plane node opens nothing but its own store: no key, no region data files.
    let mut files: Vec<String> =
        std::fs::read_dir(&control_dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    if control_url.starts_with("sqlite://") {
        assert!(files.iter().all(|f| f.starts_with("control.db")), "{files:?}");
    } else {
        assert!(files.is_empty(), "{files:?}");
    }
    let data = TestServer::spawn_in(&data_dir, options(&env).env("CHIMATIC_ROLE", "data")).await;
    let (ws, _) = create_workspace_in(&data_dir, &env, None);

    // Workspace configuration and API keys are served by the control plane only.
    let about = control.get("/v1/workspace", &ws.key).await;
    assert_eq!(about.status, 200, "{}", about.text);
    assert_eq!((about.json["id"].as_str(), about.json["region"].as_str()), (Some(ws.id.as_str()), Some("default")));
    let created = control
        .post(
            "/v1/api-keys",
            &ws.key,
            json!({"name": "svc", "scopes": ["channels:write", "notifications:write", "notifications:read"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let svc = created.json["key"].as_str().unwrap().to_string();
    data.get("/v1/api-keys", &ws.key).await.assert_problem(404, "not_found");
    data.get("/v1/stats", &ws.key).await.assert_problem(404, "not_found");
    // A data node serves only the deletion of the workspace (it needs the region's stores).
    data.get("/v1/workspace", &ws.key).await.assert_problem(405, "method_not_allowed");

    // Channels and notifications are served by the data plane only.
    let receiver = Receiver::start().await;
    control
        .post("/v1/channels", &svc, json!({"type": "webhook", "url": receiver.url}))
        .await
        .assert_problem(404, "not_found");
    let (channel, _) = data.channel(&svc, &receiver.url).await;
    let canary = "canary-7f3e1b9c-residency";
    let sent = data.post("/v1/notifications", &svc, json!({"channel_id": channel, "payload": {"note": canary}})).await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    control
        .post("/v1/notifications", &svc, json!({"channel_id": channel, "payload": {}}))
        .await
        .assert_problem(404, "not_found");
    let got = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert!(contains(&got[0].body, canary.as_bytes()));

    // Analytics reach the control plane: counts only.
    let stats = wait_for_stats(&control, &svc, |t| t["delivered"] == 1).await;
    assert_eq!(stats["totals"]["accepted"], 1, "{stats}");
    assert_eq!(stats["totals"]["attempts"], 1, "{stats}");
    assert_eq!(stats["totals"]["failed"], 0, "{stats}");
    assert_eq!(stats["days"].as_array().unwrap().len(), 1, "{stats}");

    // The control store has exactly the control tables, and no notification content.
    let mut expected = vec![
        "api_keys",
        "chimatic_control_migrations",
        "console_sessions",
        "control_audit_chains",
        "control_audit_heads",
        "control_audit_log",
        "delivery_stats",
        "invitations",
        "memberships",
        "password_resets",
        "recovery_codes",
        "second_factors",
        "sign_in_challenges",
        "sign_in_failures",
        "console_form_uses",
        "connect_flows",
        "sso_domains",
        "sso_flows",
        "user_identities",
        "users",
        "workspaces",
    ];
    expected.sort();
    assert_eq!(tables_at(&control_url), expected);
    assert_eq!(count_at(&control_url, "SELECT COUNT(*) FROM api_keys"), 2);
    for (path, bytes) in files_at(&control_url) {
        assert!(!contains(&bytes, canary.as_bytes()), "the canary is in {}", path.display());
        assert!(!contains(&bytes, receiver.url.as_bytes()), "the channel URL is in {}", path.display());
    }

    drop(control);
    drop(data);
    drop_store(&control_dir);
    drop_store(&data_dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspaces_data_is_written_only_to_its_regions_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let (eu_data, eu_vault) = (extra_store_url(&dir, "eu_data"), extra_store_url(&dir, "eu_vault"));
    let env = vec![
        ("CHIMATIC_PRIMARY_REGION".to_string(), "us".to_string()),
        ("CHIMATIC_REGION_EU_DATABASE_URL".to_string(), eu_data.clone()),
        ("CHIMATIC_REGION_EU_VAULT_DATABASE_URL".to_string(), eu_vault.clone()),
    ];
    let server = TestServer::spawn_in(&dir, options(&env)).await;
    let (us, us_out) = create_workspace_in(&dir, &env, None);
    let (eu, eu_out) = create_workspace_in(&dir, &env, Some("eu"));
    assert_eq!((us_out["region"].as_str(), eu_out["region"].as_str()), (Some("us"), Some("eu")));
    assert_eq!(server.get("/v1/workspace", &eu.key).await.json["region"], "eu");

    let receiver = Receiver::start().await;
    let mut sent: std::collections::HashMap<String, Vec<String>> = Default::default();
    for ws in [&us, &eu] {
        let (channel, _) = server.channel(&ws.key, &receiver.url).await;
        for i in 0..3 {
            let r = server
                .post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": {"ws": ws.id, "i": i}}))
                .await;
            assert_eq!(r.status, 202, "{}", r.text);
            sent.entry(ws.id.clone()).or_default().push(r.json["id"].as_str().unwrap().to_string());
        }
    }
    let got = receiver.wait_for(6, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 6);
    // An attempt is recorded after its receiver answered: wait until every one is.
    for ws in [&us, &eu] {
        for id in &sent[&ws.id] {
            server.wait_notification(&ws.key, id, |n| n["status"] == "delivered").await;
        }
    }

    // Each region's stores hold exactly their own workspace's rows.
    let probe = server.probe();
    let (us_data_url, us_vault_url) = probe.urls();
    let rows = |url: &str, table: &str, ws: &Workspace| {
        count_at(url, &format!("SELECT COUNT(*) FROM {table} WHERE workspace_id = '{}'", ws.id))
    };
    for (table, n) in [("notifications", 3), ("channels", 1), ("attempts", 3), ("data_keys", 1)] {
        assert_eq!(rows(&eu_data, table, &eu), n, "eu {table}");
        assert_eq!(rows(&eu_data, table, &us), 0, "us rows in the eu store: {table}");
        assert_eq!(rows(&us_data_url, table, &us), n, "us {table}");
        assert_eq!(rows(&us_data_url, table, &eu), 0, "eu rows in the us store: {table}");
    }
    for (table, n) in [("secrets", 1), ("vault_keys", 1)] {
        assert_eq!(rows(&eu_vault, table, &eu), n, "eu vault {table}");
        assert_eq!(rows(&eu_vault, table, &us), 0, "us rows in the eu vault: {table}");
        assert_eq!(rows(&us_vault_url, table, &us), n, "us vault {table}");
        assert_eq!(rows(&us_vault_url, table, &eu), 0, "eu rows in the us vault: {table}");
    }

    // A node that serves only the us region refuses eu workspaces' data requests (421).
    let us_only = TestServer::spawn_in(&dir, options(&env).env("CHIMATIC_SERVE_REGIONS", "us")).await;
    us_only.get("/v1/channels", &eu.key).await.assert_problem(421, "region_not_served");
    assert_eq!(us_only.get("/v1/channels", &us.key).await.status, 200);

    // An unconfigured region is refused, and nothing is created.
    let before = probe.count(crate::store_probe::Db::Control, "workspaces");
    let out = cli(&dir)
        .args(["workspace", "create", "--name", "x", "--region", "mars", "--data-dir"])
        .arg(&dir)
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CHIMATIC_REGION_MARS_DATABASE_URL"));
    assert_eq!(probe.count(crate::store_probe::Db::Control, "workspaces"), before);

    // A region's database cannot be mistaken for another region's: naming the us store `eu`
    // is refused at start.
    drop(us_only);
    let swapped =
        cli(&dir).args(["migrate", "--data-dir"]).arg(&dir).env("CHIMATIC_PRIMARY_REGION", "eu").output().unwrap();
    assert!(!swapped.status.success());
    let stderr = String::from_utf8_lossy(&swapped.stderr);
    assert!(stderr.contains("belongs to region `us`"), "{stderr}");

    drop(server);
    drop_store(&dir);
}
