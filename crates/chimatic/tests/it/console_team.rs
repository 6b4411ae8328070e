//! The console's team features over real HTTP: invitations (single use, revocable, for one
//! email), roles and removals counting on the member's next request, TOTP second factors (a
//! code accepted once, recovery codes used up, secrets in no control-plane file), an owner's
//! two-factor requirement, password changes and reset links — each audited.

use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::console::{Browser, PASSWORD, Page, audit_actions, create_user};
use crate::harness::TestServer;

const SESSION: &str = "__Host-chimatic_session";

/// The text of the element with this id (`<code … id="ID">TEXT<`).
fn shown(page: &Page, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let at = page.body.find(&marker).unwrap_or_else(|| panic!("no #{id} in {}", page.body)) + marker.len();
    page.body[at..].chars().take_while(|c| *c != '<').collect()
}

/// The path and query of a shown link, without the origin.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].replace("&amp;", "&")
}

fn actions(entries: &[serde_json::Value]) -> Vec<String> {
    entries.iter().map(|e| e["action"].as_str().unwrap().to_string()).collect()
}

/// The id of the member with this masked-email prefix, from the members page.
fn member_id(page: &Page, masked_start: &str) -> String {
    let row = page.body.split("<tr>").find(|r| r.contains(masked_start)).expect("the member's row");
    assert!(row.contains("name=\"user\""), "not a member row: {row} in {}", page.body);
    let at = row.find("name=\"user\" value=\"").unwrap() + 19;
    row[at..].chars().take_while(|c| *c != '"').collect()
}

#[tokio::test]
async fn an_invitation_works_once_for_its_email_and_roles_count_on_the_next_request() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    assert!(create_user(&server, &ws, "olive.owner@example.com", "owner", PASSWORD).status.success());
    let mut owner = Browser::new(&server);
    assert_eq!(owner.sign_in("olive.owner@example.com", PASSWORD).await.status, 303);
    let members = owner.get("/console/members").await;
    assert_eq!(members.status, 200, "{}", members.body);
    let csrf = members.csrf();

    let invited = owner
        .post("/console/members/invite", &[("csrf", &csrf), ("email", "vera.viewer@example.com"), ("role", "viewer")])
        .await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    let link = shown(&invited, "shown-link");
    assert!(link.starts_with(&server.base) && link.contains("/console/join?token="), "{link}");
    assert!(!invited.body.contains("vera.viewer@"), "the invited address is shown masked");
    assert!(!owner.get("/console/members").await.body.contains(&link), "the link is shown once");

    let mut vera = Browser::new(&server);
    let join = vera.get(&path_of(&link)).await;
    assert_eq!(join.status, 200, "{}", join.body);
    assert!(join.body.contains("viewer") && join.body.contains("acme"));
    let token = link.split("token=").nth(1).unwrap().to_string();
    let join_csrf = join.csrf();
    let attempt = |email: &str, password: &str| {
        let fields = [
            ("csrf", &join_csrf),
            ("token", &token),
            ("email", &email.to_string()),
            ("password", &password.to_string()),
            ("confirm", &password.to_string()),
        ];
        fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()
    };
    // Another address, or a weak password: refused, nobody created.
    for (email, password) in [("mallory@example.com", PASSWORD), ("vera.viewer@example.com", "vera.viewer-pass")] {
        let fields = attempt(email, password);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = vera.post("/console/join", &fields).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(r.body.contains("nothing was changed"));
    }
    assert_eq!(vera.sign_in("mallory@example.com", PASSWORD).await.status, 401);
    let fields = attempt("Vera.Viewer@example.com", PASSWORD);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let joined = vera.post("/console/join", &fields).await;
    assert_eq!((joined.status, joined.location()), (303, "/console/"), "{}", joined.body);
    assert!(vera.cookies.contains_key(SESSION));
    // Once only, from anyone.
    let mut again = Browser::new(&server);
    assert_eq!(again.get(&path_of(&link)).await.status, 410);
    assert_eq!(again.get("/console/join?token=nonsense").await.status, 410);

    // The viewer looks but cannot change.
    let seen = vera.get("/console/members").await;
    assert_eq!(seen.status, 200);
    assert!(seen.body.contains("oli…@…"), "the owner is listed, masked: {}", seen.body);
    assert!(!seen.body.contains("/console/members/invite"), "no invite form for a viewer");
    let own = seen.csrf();
    let refused = vera
        .post("/console/members/invite", &[("csrf", &own), ("email", "friend@example.com"), ("role", "owner")])
        .await;
    assert_eq!(refused.status, 403);

    // A role change ends the member's sessions: they sign in again with the new role.
    let vera_id = member_id(&owner.get("/console/members").await, "<td>Ver…");
    let changed =
        owner.post("/console/members/role", &[("csrf", &csrf), ("user", &vera_id), ("role", "developer")]).await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(vera.get("/console/members").await.location(), "/console/sign-in");
    assert_eq!(vera.sign_in("vera.viewer@example.com", PASSWORD).await.status, 303);
    assert!(vera.get("/console/").await.body.contains("developer"));
    // The last owner cannot be demoted.
    let olive_id = member_id(&owner.get("/console/members").await, "(you)");
    let demoted = owner.post("/console/members/role", &[("csrf", &csrf), ("user", &olive_id), ("role", "admin")]).await;
    assert_eq!(demoted.status, 400);

    // Removal ends the session at once.
    let removed = owner.post("/console/members/remove", &[("csrf", &csrf), ("user", &vera_id)]).await;
    assert_eq!(removed.status, 303);
    assert_eq!(vera.get("/console/").await.location(), "/console/sign-in");
    assert_eq!(vera.sign_in("vera.viewer@example.com", PASSWORD).await.status, 401, "a member of nothing");

    // A revoked invitation is worthless.
    let second = owner
        .post("/console/members/invite", &[("csrf", &csrf), ("email", "ned.new@example.com"), ("role", "developer")])
        .await;
    let second_link = shown(&second, "shown-link");
    let list = owner.get("/console/members").await;
    let row = list.body.split("<tr>").find(|r| r.contains("/console/invitations/revoke")).unwrap();
    let at = row.find("name=\"id\" value=\"").unwrap() + 17;
    let id: String = row[at..].chars().take_while(|c| *c != '"').collect();
    let revoked = owner.post("/console/invitations/revoke", &[("csrf", &csrf), ("id", &id)]).await;
    assert_eq!(revoked.status, 303);
    assert_eq!(Browser::new(&server).get(&path_of(&second_link)).await.status, 410);

    let all = actions(&audit_actions(&server, &ws.key).await);
    for action in ["member.invited", "member.joined", "member.role_changed", "member.removed", "invitation.revoked"] {
        assert!(all.iter().any(|a| a == action), "{action} not audited: {all:?}");
    }
    for (path, bytes) in server.probe().files_on_disk() {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&token), "the invitation token is in {}", path.display());
        assert!(!text.to_lowercase().contains("vera.viewer"), "the address is in {}", path.display());
    }
}

pub(crate) fn totp_of(manual_key: &str) -> Totp {
    let secret = Secret::try_from_base32(manual_key.replace(' ', "")).unwrap();
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_account_name("test")
        .build()
        .unwrap()
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Signs in with the password, then the code.
async fn sign_in_with(browser: &mut Browser, email: &str, code: &str) -> Page {
    let first = browser.sign_in(email, PASSWORD).await;
    assert_eq!(first.status, 200, "the password opens the code step: {}", first.body);
    assert!(!browser.cookies.contains_key(SESSION), "no session before the second factor");
    let csrf = first.csrf();
    browser.post("/console/sign-in/two-factor", &[("csrf", &csrf), ("code", code)]).await
}

#[tokio::test]
async fn a_second_factor_accepts_each_code_once_and_each_recovery_code_once() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    let email = "tess.totp@example.com";
    assert!(create_user(&server, &ws, email, "owner", PASSWORD).status.success());
    let mut tess = Browser::new(&server);
    assert_eq!(tess.sign_in(email, PASSWORD).await.status, 303);
    let before = tess.cookies[SESSION].clone();

    let enrol = tess.get("/console/account/two-factor").await;
    assert_eq!(enrol.status, 200, "{}", enrol.body);
    assert!(enrol.body.contains("<svg"), "the QR code is drawn on the server");
    let csrf = enrol.csrf();
    let wrong = tess.post("/console/account/two-factor", &[("csrf", &csrf), ("code", "000000")]).await;
    assert_eq!(wrong.status, 422);
    // A wrong code draws a new secret: the one shown now is the one to confirm.
    let key = shown(&wrong, "manual-key");
    let totp = totp_of(&key);
    let now = now_secs();
    let code = totp.generate(now).to_string();
    let on = tess.post("/console/account/two-factor", &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(on.status, 200, "{}", on.body);
    let codes: Vec<String> =
        on.body.split("<li><code>").skip(1).map(|c| c.chars().take_while(|ch| *ch != '<').collect()).collect();
    assert_eq!(codes.len(), 10, "{}", on.body);
    assert_ne!(tess.cookies[SESSION], before, "a new session identifier after enrolling");
    let mut stale = Browser::new(&server);
    stale.cookies.insert(SESSION.into(), before);
    assert_eq!(stale.get("/console/").await.location(), "/console/sign-in", "the old identifier is worthless");

    // Next sign-in: the password alone is not enough; the enrolment's code is spent, the next
    // step's code works once.
    let out = tess.get("/console/account").await.csrf();
    tess.post("/console/sign-out", &[("csrf", &out)]).await;
    let replayed = sign_in_with(&mut tess, email, &code).await;
    assert_eq!(replayed.status, 401, "the enrolment code was used");
    assert!(!tess.cookies.contains_key(SESSION));
    let next = totp.generate(now + 30).to_string();
    let signed_in = sign_in_with(&mut tess, email, &next).await;
    assert_eq!((signed_in.status, signed_in.location()), (303, "/console/"), "{}", signed_in.body);
    let out = tess.get("/console/account").await;
    assert!(out.body.contains("10 recovery codes left"), "{}", out.body);
    tess.post("/console/sign-out", &[("csrf", &out.csrf())]).await;
    assert_eq!(sign_in_with(&mut tess, email, &next).await.status, 401, "a code counts once");

    // A recovery code works once, however typed.
    let sloppy = codes[0].to_lowercase().replace('-', " ");
    assert_eq!(sign_in_with(&mut tess, email, &sloppy).await.status, 303);
    let account = tess.get("/console/account").await;
    assert!(account.body.contains("9 recovery codes left"), "{}", account.body);
    tess.post("/console/sign-out", &[("csrf", &account.csrf())]).await;
    assert_eq!(sign_in_with(&mut tess, email, &codes[0]).await.status, 401);
    assert_eq!(sign_in_with(&mut tess, email, &codes[1]).await.status, 303);

    // Turning it off takes a fresh factor.
    let account = tess.get("/console/account").await;
    let csrf = account.csrf();
    let kept = tess.post("/console/account/two-factor/disable", &[("csrf", &csrf), ("code", "123456")]).await;
    assert_eq!(kept.status, 400);
    let off = tess.post("/console/account/two-factor/disable", &[("csrf", &csrf), ("code", &codes[2])]).await;
    assert_eq!(off.status, 303, "{}", off.body);
    assert!(tess.get("/console/account").await.body.contains("Set up an authenticator app"));

    let all = actions(&audit_actions(&server, &ws.key).await);
    for action in ["user.two_factor_enrolled", "user.recovery_code_used", "user.two_factor_disabled"] {
        assert!(all.iter().any(|a| a == action), "{action} not audited: {all:?}");
    }
    // Neither the secret nor a recovery code is in any file in plaintext.
    let raw_secret = Secret::try_from_base32(key.replace(' ', "")).unwrap().as_bytes().to_vec();
    for (path, bytes) in server.probe().files_on_disk() {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&key.replace(' ', "")), "the TOTP key is in {}", path.display());
        assert!(!bytes.windows(raw_secret.len()).any(|w| w == raw_secret), "the raw secret is in {}", path.display());
        for code in &codes {
            assert!(!text.contains(code.as_str()), "a recovery code is in {}", path.display());
        }
    }
}

#[tokio::test]
async fn an_owner_can_require_a_second_factor_and_members_must_enrol_first() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    assert!(create_user(&server, &ws, "otto.owner@example.com", "owner", PASSWORD).status.success());
    assert!(create_user(&server, &ws, "dora.dev@example.com", "developer", PASSWORD).status.success());
    let mut otto = Browser::new(&server);
    assert_eq!(otto.sign_in("otto.owner@example.com", PASSWORD).await.status, 303);
    let csrf = otto.get("/console/members").await.csrf();

    let mut dora = Browser::new(&server);
    assert_eq!(dora.sign_in("dora.dev@example.com", PASSWORD).await.status, 303);
    let dora_csrf = dora.get("/console/members").await.csrf();
    let refused = dora.post("/console/members/two-factor", &[("csrf", &dora_csrf), ("required", "on")]).await;
    assert_eq!(refused.status, 403, "only owners decide");
    let required = otto.post("/console/members/two-factor", &[("csrf", &csrf), ("required", "on")]).await;
    assert_eq!(required.status, 303);
    // On her next request, only enrolment is open to her (and to Otto, who has none either).
    for path in ["/console/", "/console/members", "/console/api-keys"] {
        assert_eq!(dora.get(path).await.location(), "/console/account/two-factor", "{path}");
    }
    let enrol = dora.get("/console/account/two-factor").await;
    assert_eq!(enrol.status, 200);
    assert!(enrol.body.contains("requires a second factor"));
    let totp = totp_of(&shown(&enrol, "manual-key"));
    let on = dora
        .post(
            "/console/account/two-factor",
            &[("csrf", &enrol.csrf()), ("code", &totp.generate(now_secs()).to_string())],
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.body);
    assert_eq!(dora.get("/console/members").await.status, 200, "enrolled: the console opens");
    let account = dora.get("/console/account").await;
    assert!(!account.body.contains("/console/account/two-factor/disable"), "cannot be turned off while required");
    assert_eq!(otto.get("/console/").await.location(), "/console/account/two-factor");
    let all = actions(&audit_actions(&server, &ws.key).await);
    assert!(all.iter().any(|a| a == "workspace.two_factor_requirement_changed"), "{all:?}");
}

#[tokio::test]
async fn passwords_change_with_the_current_one_and_reset_links_work_once() {
    let server = TestServer::spawn().await;
    let ws = server.workspace("acme");
    assert!(create_user(&server, &ws, "ada.admin@example.com", "admin", PASSWORD).status.success());
    assert!(create_user(&server, &ws, "paul.dev@example.com", "developer", PASSWORD).status.success());
    let mut ada = Browser::new(&server);
    let mut ada_elsewhere = Browser::new(&server);
    assert_eq!(ada.sign_in("ada.admin@example.com", PASSWORD).await.status, 303);
    assert_eq!(ada_elsewhere.sign_in("ada.admin@example.com", PASSWORD).await.status, 303);
    let csrf = ada.get("/console/account").await.csrf();
    let new = "marble cactus lantern 7";
    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        [("csrf", csrf.clone()), ("current", current.into()), ("new", new.into()), ("confirm", confirm.into())]
    };
    for (fields, why) in [
        (change("not my password!", new, new), "current password is not right"),
        (change(PASSWORD, "qwertyuiop123", "qwertyuiop123"), "common"),
        (change(PASSWORD, new, "marble cactus lantern 8"), "differ"),
    ] {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = ada.post("/console/account/password", &fields).await;
        assert_eq!(r.status, 422, "{why}");
        assert!(r.body.contains(why) && r.body.contains("nothing was changed"), "{}", r.body);
    }
    assert_eq!(ada_elsewhere.get("/console/").await.status, 200, "nothing changed");
    let before = ada.cookies[SESSION].clone();
    let fields = change(PASSWORD, new, new);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let changed = ada.post("/console/account/password", &fields).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_ne!(ada.cookies[SESSION], before, "this session got a new identifier");
    assert_eq!(ada.get("/console/").await.status, 200, "and goes on");
    assert_eq!(ada_elsewhere.get("/console/").await.location(), "/console/sign-in", "the others ended");
    assert_eq!(Browser::new(&server).sign_in("ada.admin@example.com", PASSWORD).await.status, 401);
    assert_eq!(Browser::new(&server).sign_in("ada.admin@example.com", new).await.status, 303);

    // An admin issues Paul a reset link; it works once and ends his sessions.
    let mut paul = Browser::new(&server);
    assert_eq!(paul.sign_in("paul.dev@example.com", PASSWORD).await.status, 303);
    let members = ada.get("/console/members").await;
    let paul_id = member_id(&members, "<td>pau…");
    let issued = ada.post("/console/members/reset-password", &[("csrf", &members.csrf()), ("user", &paul_id)]).await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let link = path_of(&shown(&issued, "shown-link"));
    let mut stranger = Browser::new(&server);
    let form = stranger.get(&link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let token = link.split("token=").nth(1).unwrap().to_string();
    let reset_to = "orchid ferry window 3";
    let fields =
        [("csrf", form.csrf()), ("token", token.clone()), ("password", reset_to.into()), ("confirm", reset_to.into())];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = stranger.post("/console/reset-password", &fields).await;
    assert_eq!((done.status, done.location()), (303, "/console/sign-in"), "{}", done.body);
    assert_eq!(paul.get("/console/").await.location(), "/console/sign-in", "his sessions ended");
    assert_eq!(stranger.get(&link).await.status, 410, "once");
    assert_eq!(stranger.post("/console/reset-password", &fields).await.status, 410);
    assert_eq!(Browser::new(&server).sign_in("paul.dev@example.com", reset_to).await.status, 303);

    let all = actions(&audit_actions(&server, &ws.key).await);
    for action in ["user.password_changed", "user.password_reset_issued", "user.password_reset"] {
        assert!(all.iter().any(|a| a == action), "{action} not audited: {all:?}");
    }
}

/// A person in two workspaces joins the second with their existing account, then switches
/// between them: a new session identifier each time, recorded as a sign-in where they arrive,
/// and only into a workspace they belong to.
#[tokio::test]
async fn a_person_in_two_workspaces_switches_between_them() {
    let server = TestServer::spawn().await;
    let (acme, beta, gamma) = (server.workspace("acme"), server.workspace("beta"), server.workspace("gamma"));
    assert!(create_user(&server, &acme, "olive.owner@example.com", "owner", PASSWORD).status.success());
    assert!(create_user(&server, &beta, "bob.beta@example.com", "owner", PASSWORD).status.success());
    let mut bob = Browser::new(&server);
    assert_eq!(bob.sign_in("bob.beta@example.com", PASSWORD).await.status, 303);
    let csrf = bob.get("/console/members").await.csrf();
    let invited = bob
        .post("/console/members/invite", &[("csrf", &csrf), ("email", "olive.owner@example.com"), ("role", "viewer")])
        .await;
    let link = shown(&invited, "shown-link");

    let mut olive = Browser::new(&server);
    assert_eq!(olive.sign_in("olive.owner@example.com", PASSWORD).await.status, 303);
    assert!(!olive.get("/console/").await.body.contains("/console/switch-workspace"), "one workspace, no switcher");
    let join = olive.get(&path_of(&link)).await;
    let token = link.split("token=").nth(1).unwrap().to_string();
    let accepted = olive.post("/console/join/accept", &[("csrf", &join.csrf()), ("token", &token)]).await;
    assert_eq!((accepted.status, accepted.location()), (303, "/console/"), "{}", accepted.body);
    let in_beta = olive.get("/console/").await;
    assert!(in_beta.body.contains("viewer") && in_beta.body.contains("/console/switch-workspace"));
    assert!(in_beta.body.contains(&format!("<option value=\"{}\">acme</option>", acme.id)), "{}", in_beta.body);

    let before = olive.cookies[SESSION].clone();
    let switched = olive.post("/console/switch-workspace", &[("csrf", &in_beta.csrf()), ("workspace", &acme.id)]).await;
    assert_eq!((switched.status, switched.location()), (303, "/console/"), "{}", switched.body);
    assert_ne!(olive.cookies[SESSION], before, "a new session identifier");
    let in_acme = olive.get("/console/members").await;
    assert!(in_acme.body.contains("owner") && in_acme.body.contains("/console/members/invite"), "{}", in_acme.body);
    let mut stale = Browser::new(&server);
    stale.cookies.insert(SESSION.into(), before);
    assert_eq!(stale.get("/console/").await.location(), "/console/sign-in", "the old identifier is dead");

    // Not into a workspace she does not belong to, and the session she has stays where it is.
    let refused = olive.post("/console/switch-workspace", &[("csrf", &in_acme.csrf()), ("workspace", &gamma.id)]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(olive.get("/console/members").await.body.contains("/console/members/invite"), "still in acme");
    assert!(audit_actions(&server, &gamma.key).await.iter().all(|e| e["action"] != "console.sign_in"));

    let arrivals: Vec<serde_json::Value> = audit_actions(&server, &acme.key)
        .await
        .into_iter()
        .filter(|e| e["action"] == "console.sign_in" && e["detail"]["switched_from"] == beta.id.as_str())
        .collect();
    assert_eq!(arrivals.len(), 1, "the switch is recorded where she arrived");
}

/// With the operator's SMTP relay configured, an invitation is emailed (over TLS, with AUTH)
/// as well as shown; with the relay down the inviter is told, and the link still works.
#[tokio::test(flavor = "multi_thread")]
async fn invitations_are_emailed_through_the_operators_relay() {
    use std::os::unix::fs::PermissionsExt;

    use crate::harness::ServerOptions;
    use crate::providers::{Pki, SmtpServer};

    let pki = Pki::new();
    let relay = SmtpServer::start(&pki, "starttls", false);
    let password_file = pki.path("relay-password");
    std::fs::write(&password_file, "right-password\n").unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let options = ServerOptions::default()
        .env("CHIMATIC_OUTBOUND_CA_FILE", pki.path("ca.pem").to_str().unwrap())
        .env("CHIMATIC_SYSTEM_SMTP_HOST", "localhost")
        .env("CHIMATIC_SYSTEM_SMTP_PORT", &relay.port.to_string())
        .env("CHIMATIC_SYSTEM_SMTP_FROM", "Chimatic <noreply@example.com>")
        .env("CHIMATIC_SYSTEM_SMTP_USERNAME", "mailer")
        .env("CHIMATIC_SYSTEM_SMTP_PASSWORD_FILE", password_file.to_str().unwrap());
    let server = TestServer::spawn_with(options).await;
    let ws = server.workspace("acme");
    assert!(create_user(&server, &ws, "olive.owner@example.com", "owner", PASSWORD).status.success());
    let mut owner = Browser::new(&server);
    assert_eq!(owner.sign_in("olive.owner@example.com", PASSWORD).await.status, 303);
    let csrf = owner.get("/console/members").await.csrf();
    let invite = |email: &'static str| [("csrf", csrf.clone()), ("email", email.into()), ("role", "viewer".into())];
    let form = invite("vera.viewer@example.com");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let invited = owner.post("/console/members/invite", &form).await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    assert!(shown(&invited, "mailed").starts_with("An email with this link was sent to ver"), "{}", invited.body);
    let link = shown(&invited, "shown-link");

    let events = relay.events();
    assert!(events.iter().any(|e| e["event"] == "auth" && e["ok"] == true && e["tls"] == true), "{events:?}");
    let mail = events.iter().find(|e| e["event"] == "message").expect("the invitation was mailed");
    assert_eq!(mail["to"], serde_json::json!(["vera.viewer@example.com"]));
    assert_eq!(mail["tls"], true);
    let data = mail["data"].as_str().unwrap();
    assert!(data.contains("Subject: Join acme on Chimatic"), "{data}");
    // Quoted-printable: soft line breaks and `=` written as `=3D`.
    let decoded = data.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    assert!(decoded.contains(&link), "the mail carries the shown link: {data}");

    // The relay gone: the invitation is made, the inviter told, the link shown to copy.
    drop(relay);
    let form = invite("ned.new@example.com");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let invited = owner.post("/console/members/invite", &form).await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    assert!(shown(&invited, "mailed").contains("could not be sent"), "{}", invited.body);
    let link = shown(&invited, "shown-link");
    assert_eq!(Browser::new(&server).get(&path_of(&link)).await.status, 200);
}
