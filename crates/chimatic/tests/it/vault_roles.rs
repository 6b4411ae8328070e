//! The credential vault on PostgreSQL lives in its own database, reached with its own role:
//! the role that serves notification data cannot even connect to the vault.

use std::process::Command;

use crate::harness::BIN;
use crate::security::random_hex;

fn admin_url() -> String {
    std::env::var("CHIMATIC_TEST_POSTGRES_URL")
        .expect("CHIMATIC_TEST_POSTGRES_URL must name a PostgreSQL admin URL (scripts/test starts one)")
}

fn psql(url: &str, sql: &str) -> std::process::Output {
    Command::new("psql").args([url, "-v", "ON_ERROR_STOP=1", "-Atqc", sql]).output().expect("psql")
}

fn with_user(admin: &str, user: &str, db: &str) -> String {
    // admin is postgres://USER[:PASSWORD]@HOST:PORT; swap in the role, same host.
    let host = admin.rsplit_once('@').map(|(_, h)| h).unwrap_or(admin);
    format!("postgres://{user}:pw-{user}@{host}/{db}")
}

#[test]
fn the_notification_role_cannot_reach_the_credential_vault() {
    let admin = admin_url();
    let tag = random_hex(4);
    let (data_role, vault_role) = (format!("chim_data_{tag}"), format!("chim_vault_{tag}"));
    let (data_db, vault_db) = (format!("chim_{tag}_data"), format!("chim_{tag}_vault"));
    let root = format!("{admin}/postgres");
    for sql in [
        format!("CREATE ROLE {data_role} LOGIN PASSWORD 'pw-{data_role}'"),
        format!("CREATE ROLE {vault_role} LOGIN PASSWORD 'pw-{vault_role}'"),
        format!("CREATE DATABASE {data_db} OWNER {data_role}"),
        format!("CREATE DATABASE {vault_db} OWNER {vault_role}"),
        format!("REVOKE CONNECT ON DATABASE {data_db} FROM PUBLIC"),
        format!("REVOKE CONNECT ON DATABASE {vault_db} FROM PUBLIC"),
    ] {
        let out = psql(&root, &sql);
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let dir = tempfile::tempdir().unwrap();
    let migrate = |data_url: &str, vault_url: &str| {
        Command::new(BIN)
            .args(["migrate", "--data-dir"])
            .arg(dir.path())
            .env("CHIMATIC_DATABASE_URL", data_url)
            .env("CHIMATIC_VAULT_DATABASE_URL", vault_url)
            .env_remove("CHIMATIC_KEK")
            .env_remove("CHIMATIC_KEK_FILE")
            .output()
            .unwrap()
    };
    let data_url = with_user(&admin, &data_role, &data_db);
    let vault_url = with_user(&admin, &vault_role, &vault_db);
    let ok = migrate(&data_url, &vault_url);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    // The data role, pointed at the vault, is refused; so is a plain query as that role.
    let wrong = migrate(&data_url, &with_user(&admin, &data_role, &vault_db));
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("permission denied for database"), "{err}");
    assert!(!err.contains(&format!("pw-{data_role}")), "no password in errors: {err}");
    let peek = psql(&with_user(&admin, &data_role, &vault_db), "SELECT count(*) FROM secrets");
    assert!(!peek.status.success(), "the data role read the vault");
    // ...and the vault role cannot reach notification data.
    let peek = psql(&with_user(&admin, &vault_role, &data_db), "SELECT count(*) FROM notifications");
    assert!(!peek.status.success(), "the vault role read notification data");

    for sql in [
        format!("DROP DATABASE {data_db} WITH (FORCE)"),
        format!("DROP DATABASE {vault_db} WITH (FORCE)"),
        format!("DROP ROLE {data_role}"),
        format!("DROP ROLE {vault_role}"),
    ] {
        let _ = psql(&root, &sql);
    }
}
