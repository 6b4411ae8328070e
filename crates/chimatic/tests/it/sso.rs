//! Console sign-in through a real OpenID Connect provider (npm `oidc-provider`, the certified
//! implementation, in tests/oidc: PKCE required, exact redirect URIs) on 127.0.0.1: a linked
//! existing user, a pending invitation becoming an account, and every refusal — a replayed
//! state, another browser's state, a code injected into another flow (PKCE), an ID token with a
//! wrong nonce, audience, signature or expiry, an unverified email, an unknown person — with
//! nobody signed in and nothing stored.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::console::{Browser, PASSWORD, Page, audit_actions, create_user};
use crate::harness::{ServerOptions, TestServer};
use crate::test_provider::{Provider, consent, path_of, query};

const SESSION: &str = "__Host-chimatic_session";
const CLIENT_ID: &str = "chimatic-console";
const CLIENT_SECRET: &str = "a-client-secret-of-the-test-provider";

/// Starts a flow on the console's sign-in page; the provider's authorization URL.
async fn start(console: &mut Browser) -> String {
    let form = console.get("/console/sign-in").await;
    assert!(form.body.contains("Sign in with Test IdP"), "{}", form.body);
    let started = console.get(&format!("/console/sign-in/oidc?csrf={}", form.csrf())).await;
    assert_eq!(started.status, 303, "{}", started.body);
    started.location().to_string()
}

/// Signs in at the provider as `email`; the callback URL (path and query) it sends back.
async fn at_provider(provider: &Provider, authorize: &str, email: &str) -> String {
    path_of(&consent(provider, authorize, email).await)
}

/// Signs in with the password, enrols a TOTP factor; one of its recovery codes.
async fn enrol_second_factor(server: &TestServer, email: &str) -> String {
    let mut b = Browser::new(server);
    assert_eq!(b.sign_in(email, PASSWORD).await.status, 303);
    let enrol = b.get("/console/account/two-factor").await;
    let marker = "id=\"manual-key\">";
    let at = enrol.body.find(marker).expect("the manual key") + marker.len();
    let key: String = enrol.body[at..].chars().take_while(|c| *c != '<').collect();
    let code = crate::console_team::totp_of(&key).generate(crate::console_team::now_secs()).to_string();
    let on = b.post("/console/account/two-factor", &[("csrf", &enrol.csrf()), ("code", &code)]).await;
    assert_eq!(on.status, 200, "{}", on.body);
    on.body.split("<li><code>").nth(1).expect("recovery codes").chars().take_while(|c| *c != '<').collect()
}

fn refused(page: &Page, status: u16) {
    assert_eq!(page.status, status, "{}", page.body);
    assert!(page.set_cookies().iter().all(|c| !c.starts_with(SESSION)), "no session for a refusal");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_signs_people_in_through_an_openid_provider_and_refuses_every_forgery() {
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("client-secret");
    std::fs::write(&secret_file, CLIENT_SECRET).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let accounts = json!([
        {"sub": "ann-1", "email": "Ann.Owner@example.com", "email_verified": true},
        {"sub": "ivy-2", "email": "ivy.invited@example.com", "email_verified": true},
        {"sub": "una-3", "email": "una.unverified@example.com", "email_verified": false},
        {"sub": "nob-4", "email": "nobody@example.com", "email_verified": true},
        {"sub": "dor-5", "email": "dora@example.org", "email_verified": true},
    ]);
    // The server names the provider's port before the provider can name the server's callback:
    // a port reserved for the provider, taken by another test meanwhile, means both again.
    let (server, provider) = {
        let mut tries = 0;
        loop {
            let idp_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let options = ServerOptions::default()
                .env("CHIMATIC_OIDC_ISSUER", &format!("http://127.0.0.1:{idp_port}"))
                .env("CHIMATIC_OIDC_CLIENT_ID", CLIENT_ID)
                .env("CHIMATIC_OIDC_CLIENT_SECRET_FILE", secret_file.to_str().unwrap())
                .env("CHIMATIC_OIDC_NAME", "Test IdP");
            let server = TestServer::spawn_with(options).await;
            let callback = format!("{}/console/sign-in/oidc/callback", server.base);
            let config = json!({"clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "redirect_uris": [callback], "scope": "openid email"}], "accounts": accounts});
            if let Some(provider) = Provider::start(idp_port, config) {
                break (server, provider);
            }
            tries += 1;
            assert!(tries < 5, "the test provider did not start");
        }
    };
    let ws = server.workspace("acme");
    assert!(create_user(&server, &ws, "ann.owner@example.com", "owner", PASSWORD).status.success());

    // A start without this browser's token (a link planted elsewhere) stores no flow.
    let mut planted = Browser::new(&server);
    planted.get("/console/sign-in").await;
    assert_eq!(planted.get("/console/sign-in/oidc?csrf=0").await.status, 403);
    assert_eq!(planted.get("/console/sign-in/oidc").await.status, 403);

    // An existing user, found by the verified email (any case) and linked: signed in.
    let mut ann = Browser::new(&server);
    let authorize = start(&mut ann).await;
    assert!(authorize.contains("code_challenge_method=S256") && authorize.contains("nonce="), "{authorize}");
    let callback = at_provider(&provider, &authorize, "Ann.Owner@example.com").await;
    let signed = ann.get(&callback).await;
    assert_eq!((signed.status, signed.location()), (303, "/console/"), "{}", signed.body);
    assert!(ann.get("/console/").await.body.contains("owner"));
    // The same callback again (a replayed state): refused, the session it made untouched.
    let mut replay = Browser::new(&server);
    replay.cookies = ann.cookies.clone();
    refused(&replay.get(&callback).await, 400);
    assert_eq!(ann.get("/console/").await.status, 200);

    // A state started in another browser: refused there, and still good for its own browser.
    let mut mine = Browser::new(&server);
    let callback = at_provider(&provider, &start(&mut mine).await, "ann.owner@example.com").await;
    let mut other = Browser::new(&server);
    other.get("/console/sign-in").await;
    refused(&other.get(&callback).await, 400);
    assert_eq!(mine.get(&callback).await.status, 303, "the flow's own browser still completes it");

    // A code injected into another flow: that flow's PKCE verifier does not fit it, so the
    // provider refuses it and nobody is signed in.
    let mut victim = Browser::new(&server);
    let victims = at_provider(&provider, &start(&mut victim).await, "ann.owner@example.com").await;
    let mut attacker = Browser::new(&server);
    let attackers = at_provider(&provider, &start(&mut attacker).await, "ann.owner@example.com").await;
    let injected =
        format!("/console/sign-in/oidc/callback?code={}&state={}", query(&attackers, "code"), query(&victims, "state"));
    refused(&victim.get(&injected).await, 401);
    let log = provider.log().await;
    let last = log.iter().rev().find(|e| e["endpoint"] == "token").unwrap().clone();
    assert_eq!((last["had_code_verifier"].clone(), last["ok"].clone()), (json!(true), json!(false)), "{log:?}");

    // ID tokens that are not right: nobody signed in.
    for mode in ["nonce", "aud", "signature", "expired"] {
        provider.tamper(Some(mode)).await;
        let mut b = Browser::new(&server);
        let callback = at_provider(&provider, &start(&mut b).await, "ann.owner@example.com").await;
        refused(&b.get(&callback).await, 401);
        assert_eq!(b.get("/console/").await.location(), "/console/sign-in", "{mode}");
    }
    provider.tamper(None).await;
    let log = server.log();
    let invalid = log.lines().filter(|l| l.contains("sign-in refused") && l.contains("ID token is not valid")).count();
    assert_eq!(invalid, 4, "each forged ID token is refused as such: {log}");
    assert!(log.contains("the authorization code was refused"), "the injected code: {log}");
    assert!(!log.contains(CLIENT_SECRET), "the client secret is logged");

    // An unverified email, and a person with neither an account nor an invitation.
    for email in ["una.unverified@example.com", "nobody@example.com"] {
        let mut b = Browser::new(&server);
        let callback = at_provider(&provider, &start(&mut b).await, email).await;
        let page = b.get(&callback).await;
        refused(&page, if email.starts_with("una") { 401 } else { 403 });
    }

    // A pending invitation: the first sign-in makes the account and the membership.
    let mut owner = Browser::new(&server);
    assert_eq!(owner.sign_in("ann.owner@example.com", PASSWORD).await.status, 303);
    let csrf = owner.get("/console/members").await.csrf();
    let invited = owner
        .post("/console/members/invite", &[("csrf", &csrf), ("email", "ivy.invited@example.com"), ("role", "viewer")])
        .await;
    assert_eq!(invited.status, 200);
    let mut ivy = Browser::new(&server);
    let callback = at_provider(&provider, &start(&mut ivy).await, "ivy.invited@example.com").await;
    assert_eq!(ivy.get(&callback).await.location(), "/console/");
    assert!(ivy.get("/console/").await.body.contains("viewer"));
    assert_eq!(Browser::new(&server).sign_in("ivy.invited@example.com", "").await.status, 401, "no password");

    // A break-glass owner enrols a second factor while passwords still work.
    assert!(create_user(&server, &ws, "bree.glass@example.com", "owner", PASSWORD).status.success());
    let recovery = enrol_second_factor(&server, "bree.glass@example.com").await;

    // The owner's policy: people of example.org join as developers; sign-on required.
    let csrf = owner.get("/console/members").await.csrf();
    let policy = |domains: &'static str, role: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("domains", domains.to_string()),
            ("role", role.to_string()),
            ("required", "on".into()),
        ]
    };
    for (domains, role) in [("gmail.com", "developer"), ("*.example.org", "developer"), ("example.org", "owner")] {
        let form = policy(domains, role);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(owner.post("/console/members/sso", &form).await.status, 400, "{domains} as {role}");
    }
    let form = policy("Example.org", "developer");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(owner.post("/console/members/sso", &form).await.status, 303);
    // Password sessions end at once; the ones that came through the provider stay.
    assert_eq!(owner.get("/console/").await.location(), "/console/sign-in", "ann's password session ended");
    assert_eq!(ann.get("/console/").await.status, 200, "ann's provider session stays");
    let refused_password = Browser::new(&server).sign_in("ann.owner@example.com", PASSWORD).await;
    assert_eq!(refused_password.status, 403, "{}", refused_password.body);
    assert!(refused_password.body.contains("Sign in with Test IdP"));
    // The break-glass owner: password and a recovery code still work.
    let mut bree = Browser::new(&server);
    let first = bree.sign_in("bree.glass@example.com", PASSWORD).await;
    assert_eq!(first.status, 200, "the code step: {}", first.body);
    let code = bree.post("/console/sign-in/two-factor", &[("csrf", &first.csrf()), ("code", &recovery)]).await;
    assert_eq!(code.status, 303, "{}", code.body);
    assert!(bree.get("/console/members").await.body.contains("id=\"sso-policy\""));
    // Someone of the allowed domain becomes a developer at their first sign-in.
    let mut dora = Browser::new(&server);
    let callback = at_provider(&provider, &start(&mut dora).await, "dora@example.org").await;
    assert_eq!(dora.get(&callback).await.location(), "/console/");
    assert!(dora.get("/console/").await.body.contains("developer"));

    let entries = audit_actions(&server, &ws.key).await;
    let through_idp = entries
        .iter()
        .filter(|e| e["action"] == "console.sign_in" && e["detail"]["method"] == "oidc")
        .filter(|e| e["detail"]["provider"] == "Test IdP")
        .count();
    assert_eq!(through_idp, 4, "ann twice, ivy and dora, named with the provider");
    assert!(entries.iter().any(|e| e["action"] == "workspace.sso_policy_changed" && e["detail"]["required"] == true));
    assert!(entries.iter().any(|e| e["action"] == "member.joined" && e["detail"]["new_user"] == true));
    for (path, bytes) in server.probe().files_on_disk() {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(CLIENT_SECRET), "the client secret is in {}", path.display());
    }
}
