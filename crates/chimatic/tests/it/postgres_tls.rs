//! Database connections over mutual TLS: a PostgreSQL server that demands a client certificate
//! (`hostssl … cert clientcert=verify-full`, TLS 1.3 minimum) refuses a node without one and
//! accepts a node with one; a server that offers only TLS 1.2 is refused by the node. The test
//! runs its own PostgreSQL with its own CA.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::BIN;

fn pg_bin(tool: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries are required (Debian: apt-get install postgresql)")
        .map(|e| e.unwrap().path().join("bin"))
        .collect();
    dirs.sort();
    dirs.pop().expect("no PostgreSQL version under /usr/lib/postgresql").join(tool)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// Runs a PostgreSQL tool as the owner of the cluster (PostgreSQL refuses to run as root).
fn as_cluster_owner(tool: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_bin(tool));
        c
    } else {
        Command::new(pg_bin(tool))
    }
}

struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki(user: &str) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "chimatic test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf = |sans: Vec<String>, cn: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        (p.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
    };
    Pki {
        ca: ca_cert.pem(),
        server: leaf(vec!["127.0.0.1".into(), "localhost".into()], "localhost"),
        client: leaf(Vec::new(), user),
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn a_node_without_a_client_certificate_is_refused_and_one_with_it_connects() {
    let user = if is_root() {
        "postgres".to_string()
    } else {
        String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap().trim().to_string()
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let pg = root.join("pg");
    std::fs::create_dir(&pg).unwrap();
    let pki = pki(&user);
    write(&pg.join("ca.pem"), &pki.ca);
    write(&pg.join("server.pem"), &pki.server.0);
    write(&pg.join("server.key"), &pki.server.1);
    write(&root.join("ca.pem"), &pki.ca);
    write(&root.join("client.pem"), &pki.client.0);
    write(&root.join("client.key"), &pki.client.1);
    if is_root() {
        assert!(Command::new("chown").args(["-R", "postgres"]).arg(&pg).status().unwrap().success());
    }
    let data = pg.join("data");
    let out = as_cluster_owner("initdb")
        .arg("-D")
        .arg(&data)
        .args(["-U", &user, "--auth-local=trust", "--auth-host=reject"])
        .output()
        .unwrap();
    assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
    // Only TLS connections with a verified client certificate, over loopback.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 cert clientcert=verify-full\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = format!(
        "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{sock}'\nssl = on\n\
         ssl_cert_file = '{dir}/server.pem'\nssl_key_file = '{dir}/server.key'\nssl_ca_file = '{dir}/ca.pem'\n\
         ssl_min_protocol_version = 'TLSv1.3'\n",
        sock = pg.display(),
        dir = pg.display()
    );
    let mut pg_conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
    pg_conf.push_str(&conf);
    std::fs::write(data.join("postgresql.conf"), pg_conf).unwrap();
    let out = as_cluster_owner("pg_ctl")
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(pg.join("log"))
        .args(["-w", "start"])
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
    let stop = Stop(data.clone());

    for db in ["tls_data", "tls_vault"] {
        let out = Command::new("psql")
            .args(["-h", pg.to_str().unwrap(), "-p", &port.to_string(), "-U", &user, "-d", "postgres", "-c"])
            .arg(format!("CREATE DATABASE {db}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "create database: {}", String::from_utf8_lossy(&out.stderr));
    }

    let url = |db: &str, params: &str| format!("postgres://{user}@127.0.0.1:{port}/{db}?{params}");
    let ca = root.join("ca.pem");
    let verify = format!("sslmode=verify-full&sslrootcert={}", ca.display());
    let with_cert =
        format!("{verify}&sslcert={}&sslkey={}", root.join("client.pem").display(), root.join("client.key").display());
    let migrate = |params: &str| {
        Command::new(BIN)
            .args(["migrate", "--data-dir"])
            .arg(root.join("node"))
            .env("CHIMATIC_DATABASE_URL", url("tls_data", params))
            .env("CHIMATIC_VAULT_DATABASE_URL", url("tls_vault", params))
            .env_remove("CHIMATIC_KEK")
            .env_remove("CHIMATIC_KEK_FILE")
            .output()
            .unwrap()
    };

    let refused = migrate(&verify);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a node without a client certificate must be refused");
    let plaintext = migrate("sslmode=disable");
    assert!(!plaintext.status.success(), "a node without TLS must be refused");
    assert!(!err.contains("BEGIN"), "no key material in errors: {err}");
    assert!(err.contains("requires a valid client certificate"), "refused for the wrong reason: {err}");

    let ok = migrate(&with_cert);
    assert!(ok.status.success(), "with the client certificate: {}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "schema is up to date");

    // A server that offers only TLS 1.2 is refused by the node, certificate or not.
    let psql_local = |sql: &str| {
        let out = Command::new("psql")
            .args(["-h", pg.to_str().unwrap(), "-p", &port.to_string(), "-U", &user, "-d", "postgres", "-c", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    };
    psql_local("ALTER SYSTEM SET ssl_min_protocol_version = 'TLSv1.2'");
    psql_local("ALTER SYSTEM SET ssl_max_protocol_version = 'TLSv1.2'");
    psql_local("SELECT pg_reload_conf()");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let old_tls = migrate(&with_cert);
    let err = String::from_utf8_lossy(&old_tls.stderr);
    assert!(!old_tls.status.success(), "a TLS 1.2-only database must be refused");
    assert!(err.contains("requires TLS 1.3"), "refused for the wrong reason: {err}");
    drop(stop);
}

/// Stops the test's PostgreSQL however the test ends.
struct Stop(PathBuf);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = as_cluster_owner("pg_ctl").arg("-D").arg(&self.0).args(["-m", "immediate", "stop"]).output();
    }
}
