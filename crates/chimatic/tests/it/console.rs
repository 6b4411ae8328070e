//! The console over real HTTP: the first owner from the CLI (password on standard input,
//! checked against the standard), sign-in with generic failures and throttling, session cookies
//! and their attributes, security headers, CSRF (a forged origin or token changes nothing),
//! API keys shown once and revoked, roles enforced, and every step in the audit log.

use std::collections::HashMap;
use std::io::Write;
use std::process::Stdio;

use serde_json::Value;

use crate::harness::{TestServer, Workspace, cli};

pub const PASSWORD: &str = "violet staple quarry 42";

/// Creates a console user with `chimatic user create`, the password on standard input.
pub fn create_user(
    server: &TestServer,
    ws: &Workspace,
    email: &str,
    role: &str,
    password: &str,
) -> std::process::Output {
    let mut child = cli(&server.data_dir)
        .args(["user", "create", "--email", email, "--workspace", &ws.id, "--role", role, "--data-dir"])
        .arg(&server.data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run user create");
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A browser, by hand: its own cookie jar, the console's origin on every change, no redirects
/// followed (so each one is seen).
pub struct Browser {
    pub http: reqwest::Client,
    base: String,
    pub cookies: HashMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The value of the first `name="csrf"` field.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        self.body[at..at + 64].to_string()
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }
}

impl Browser {
    pub fn new(server: &TestServer) -> Self {
        Self::at(&server.base)
    }

    /// A browser on another origin (e.g. an identity provider's).
    pub fn at(base: &str) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, base: base.to_string(), cookies: HashMap::new() }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn finish(&mut self, resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for c in headers.get_all("set-cookie") {
            let text = c.to_str().unwrap();
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Page { status, headers, body: resp.text().await.unwrap() }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let resp =
            self.http.get(format!("{}{path}", self.base)).header("cookie", self.cookie_header()).send().await.unwrap();
        self.finish(resp).await
    }

    pub async fn post_from(&mut self, origin: &str, path: &str, form: &[(&str, &str)]) -> Page {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("origin", origin)
            .form(form)
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post_from(&origin, path, form).await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/console/sign-in").await;
        self.post("/console/sign-in", &[("csrf", &form.csrf()), ("email", email), ("password", password)]).await
    }
}

/// The single-use nonce of a page's create form.
fn form_once(page: &Page) -> String {
    let at = page.body.find("name=\"once\" value=\"").expect("a once field") + 19;
    page.body[at..].chars().take_while(|c| *c != '"').collect()
}

pub async fn audit_actions(server: &TestServer, key: &str) -> Vec<Value> {
    let r = server.get("/v1/audit?limit=500", key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_owner_signs_in_and_out_and_every_step_is_audited() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    let email = "rosalind.owner@example.com";

    // The password standard, at the CLI: a common password and one with the email's name are
    // refused and create nobody.
    for weak in ["qwertyuiop123", "xx Rosalind.Owner xx", "short"] {
        let out = create_user(&server, &ws, email, "owner", weak);
        assert!(!out.status.success(), "{weak} was accepted");
    }
    let out = create_user(&server, &ws, email, "owner", PASSWORD);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!create_user(&server, &ws, email, "viewer", PASSWORD).status.success(), "one account per email");
    // Neither the address nor the password is in any store file, in any case.
    for (path, bytes) in server.probe().files_on_disk() {
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        assert!(!text.contains("rosalind.owner"), "the email is in {}", path.display());
        assert!(!text.contains(PASSWORD), "the password is in {}", path.display());
    }

    let mut browser = Browser::new(&server);
    let r = browser.get("/").await;
    assert_eq!((r.status, r.location()), (303, "/console/"));
    let r = browser.get("/console/").await;
    assert_eq!((r.status, r.location()), (303, "/console/sign-in"), "no session: sign in");

    let form = browser.get("/console/sign-in").await;
    assert_eq!(form.status, 200);
    let csp = form.headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "CSP lacks {directive}: {csp}");
    }
    assert_eq!(form.headers["x-content-type-options"], "nosniff");
    assert!(form.headers.contains_key("referrer-policy") && form.headers.contains_key("permissions-policy"));
    assert_eq!(form.headers["cache-control"], "no-store");
    // One script, the console's own file; nothing inline.
    let scripts: Vec<&str> = form.body.split("<script").skip(1).collect();
    assert_eq!(scripts.len(), 1, "{}", form.body);
    assert!(scripts[0].starts_with(" src=\"/console/assets/console.js\" defer></script>"), "{}", scripts[0]);
    let script = browser.get("/console/assets/console.js").await;
    assert_eq!(script.status, 200);
    assert!(script.headers["content-type"].to_str().unwrap().starts_with("text/javascript"));

    // Wrong password and unknown account: the same answer.
    let wrong = browser.sign_in(email, "violet staple quarry 43").await;
    let unknown = browser.sign_in("nobody@example.com", PASSWORD).await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert!(wrong.body.contains("The email or password is not right."));
    assert_eq!(wrong.body.replace(&wrong.csrf(), ""), unknown.body.replace(&unknown.csrf(), ""));

    // A sign-in from another origin, or without the form's token, is refused.
    let form = browser.get("/console/sign-in").await;
    let fields = [("csrf", form.csrf()), ("email", email.to_string()), ("password", PASSWORD.to_string())];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(browser.post_from("https://evil.example", "/console/sign-in", &fields).await.status, 403);
    let tokenless = [("csrf", "0".repeat(64)), ("email", email.to_string()), ("password", PASSWORD.to_string())];
    let tokenless: Vec<(&str, &str)> = tokenless.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(browser.post("/console/sign-in", &tokenless).await.status, 403);

    let signed_in = browser.sign_in(email, PASSWORD).await;
    assert_eq!((signed_in.status, signed_in.location()), (303, "/console/"), "{}", signed_in.body);
    let cookie = signed_in.set_cookies().into_iter().find(|c| c.starts_with("__Host-chimatic_session=")).unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(attr), "session cookie lacks {attr}: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let session = browser.cookies["__Host-chimatic_session"].clone();
    assert_eq!(session.len(), 64);
    assert!(!browser.cookies.contains_key("__Host-chimatic_presession"), "the pre-session ends at sign-in");

    let overview = browser.get("/console/").await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(overview.body.contains("acme") && overview.body.contains("owner"));
    assert!(overview.body.contains("<svg"), "the chart is drawn on the server");
    assert!(!overview.body.contains(email), "the email is never shown whole");
    assert!(!overview.body.contains(&session), "the session id is not in the page");
    assert_eq!(overview.headers["cache-control"], "no-store");

    // Sign-out needs the session's token and the console's origin; forged, nothing changes.
    let token = overview.csrf();
    assert_eq!(browser.post("/console/sign-out", &[("csrf", &"0".repeat(64))]).await.status, 403);
    assert_eq!(browser.post_from("https://evil.example", "/console/sign-out", &[("csrf", &token)]).await.status, 403);
    assert_eq!(browser.get("/console/").await.status, 200, "still signed in");
    let out = browser.post("/console/sign-out", &[("csrf", &token)]).await;
    assert_eq!((out.status, out.location()), (303, "/console/sign-in"));
    // The old cookie is worthless now, even if a copy was kept.
    browser.cookies.insert("__Host-chimatic_session".into(), session);
    assert_eq!(browser.get("/console/").await.location(), "/console/sign-in");

    let entries = audit_actions(&server, &ws.key).await;
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in ["user.created", "console.sign_in_failed", "console.sign_in", "console.sign_out"] {
        assert!(actions.contains(&action), "{action} not audited: {actions:?}");
    }
    let sign_in = entries.iter().find(|e| e["action"] == "console.sign_in").unwrap();
    assert_eq!(sign_in["actor"]["kind"], "user");
    assert!(!sign_in.to_string().contains(email), "the audit log holds the masked email only");
    assert!(sign_in["ip"].as_str().unwrap().starts_with("127."));
}

#[tokio::test]
async fn sign_in_is_throttled_the_same_for_known_and_unknown_accounts() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    assert!(create_user(&server, &ws, "ada.lock@example.com", "owner", PASSWORD).status.success());
    let mut browser = Browser::new(&server);
    for email in ["ada.lock@example.com", "ghost@example.com"] {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(browser.sign_in(email, "not the password at all").await.status);
        }
        // Locked after five failures: even the right password is not checked now.
        let right = browser.sign_in(email, PASSWORD).await;
        statuses.push(right.status);
        assert_eq!(statuses, [401, 401, 401, 401, 401, 429], "{email}");
        assert!(right.body.contains("Too many failed attempts"));
    }
    let actions: Vec<String> =
        audit_actions(&server, &ws.key).await.iter().map(|e| e["action"].as_str().unwrap().to_string()).collect();
    assert!(actions.iter().any(|a| a == "console.sign_in_locked"), "{actions:?}");
}

#[tokio::test]
async fn api_keys_are_shown_once_revoked_from_the_console_and_out_of_a_viewers_reach() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    assert!(create_user(&server, &ws, "olga.admin@example.com", "admin", PASSWORD).status.success());
    assert!(create_user(&server, &ws, "victor.viewer@example.com", "viewer", PASSWORD).status.success());

    let mut admin = Browser::new(&server);
    assert_eq!(admin.sign_in("olga.admin@example.com", PASSWORD).await.status, 303);
    let keys = admin.get("/console/api-keys").await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    let token = keys.csrf();
    let once = form_once(&keys);
    let form = [("csrf", token.as_str()), ("name", "ci deploys"), ("access", "send"), ("once", once.as_str())];
    let created = admin.post("/console/api-keys", &form).await;
    assert_eq!(created.status, 200, "{}", created.body);
    // The same form sent again (a reload) makes no second key.
    let again = admin.post("/console/api-keys", &form).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(!again.body.contains("class=\"secret\""));
    let at = created.body.find("class=\"secret\">").unwrap() + 15;
    let key: String = created.body[at..].chars().take_while(|c| *c != '<').collect();
    assert!(key.len() > 20, "{key}");
    assert_eq!(created.headers["cache-control"], "no-store");
    // It works on the API with the scopes chosen, and is never shown again.
    let sent = server.get("/v1/notifications/msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", &key).await;
    assert_eq!(sent.status, 404, "{}", sent.text);
    assert_eq!(server.get("/v1/api-keys", &key).await.status, 403, "send access is not admin");
    let listed = admin.get("/console/api-keys").await;
    assert!(!listed.body.contains(&key) && listed.body.contains(&key[key.len() - 4..]));

    // A viewer cannot see or change keys, even with a valid token of their own.
    let mut viewer = Browser::new(&server);
    assert_eq!(viewer.sign_in("victor.viewer@example.com", PASSWORD).await.status, 303);
    assert_eq!(viewer.get("/console/api-keys").await.status, 403);
    let own = viewer.get("/console/").await.csrf();
    assert!(!viewer.get("/console/").await.body.contains("/console/api-keys"), "no link to what they cannot open");
    let refused = viewer
        .post(
            "/console/api-keys",
            &[("csrf", &own), ("name", "sneaky"), ("access", "admin"), ("once", &form_once(&keys))],
        )
        .await;
    assert_eq!(refused.status, 403);
    // The admin's token does not work in the viewer's session either.
    let crossed = viewer
        .post(
            "/console/api-keys",
            &[("csrf", &token), ("name", "sneaky"), ("access", "admin"), ("once", &form_once(&keys))],
        )
        .await;
    assert_eq!(crossed.status, 403);
    let names: Vec<String> = server.get("/v1/api-keys", &ws.key).await.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!names.iter().any(|n| n == "sneaky"), "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "ci deploys").count(), 1, "one key for one form: {names:?}");

    let id = server.get("/v1/api-keys", &ws.key).await.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ci deploys")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let revoked = admin.post("/console/api-keys/revoke", &[("csrf", &token), ("id", &id)]).await;
    assert_eq!((revoked.status, revoked.location()), (303, "/console/api-keys"));
    assert_eq!(server.get("/v1/notifications/msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", &key).await.status, 401);
    let revoke = audit_actions(&server, &ws.key).await.into_iter().find(|e| e["action"] == "api_key.revoked").unwrap();
    assert_eq!(revoke["actor"]["kind"], "user");
}
