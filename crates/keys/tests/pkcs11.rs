//! `Pkcs11Kek` against a real SoftHSM2 token.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, at C_Initialize. Setting it from inside this process
//! would need `std::env::set_var`, which is `unsafe` in Rust 2024 and the workspace forbids
//! unsafe code; so each test runs its body in a child run of this same binary (`--exact name`)
//! started with that variable, on a token initialized for it in a directory of its own. A
//! process per test also means no test shares another's PKCS#11 login or sees its tokens.

#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use chimatic_crypto::kek::{KekProvider, WrapContext};
use chimatic_crypto::{CryptoError, DEK_LEN};
use chimatic_keys::{Pkcs11Config, Pkcs11Error, Pkcs11Kek};
use secrecy::SecretString;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "chimatic-test";
const PIN: &str = "4711-chimatic-user-pin";
const SO_PIN: &str = "4711-chimatic-so-pin";
/// Set in the child run: it is the one that runs the test body.
const CHILD: &str = "CHIMATIC_TEST_SOFTHSM_CHILD";

/// This run's directory (parent side), after removing those of earlier runs.
fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        assert!(
            Path::new(MODULE).exists(),
            "SoftHSM2 is not installed ({MODULE} missing): install it (Debian: apt-get install softhsm2)"
        );
        let base = std::env::temp_dir();
        remove_stale_dirs(&base);
        let dir = base.join(format!("chimatic-softhsm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// Directories of earlier runs whose process is gone (a static is never dropped).
fn remove_stale_dirs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("chimatic-softhsm-")) else { continue };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A token directory and SoftHSM configuration for one test, with `TOKEN` initialized.
fn fresh_token(test: &str) -> PathBuf {
    let dir = run_dir().join(test);
    std::fs::create_dir_all(dir.join("tokens")).unwrap();
    let conf = dir.join("softhsm2.conf");
    let settings = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
        dir.join("tokens").display()
    );
    std::fs::write(&conf, settings).unwrap();
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", SO_PIN])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run softhsm2-util ({e}): install SoftHSM2 (Debian: apt-get install softhsm2)")
        });
    assert!(out.status.success(), "softhsm2-util --init-token failed: {}", String::from_utf8_lossy(&out.stderr));
    conf
}

/// Runs `body` with a token of its own: in the parent, starts the child run and checks it
/// passed; in the child, runs the body on a Tokio runtime.
fn softhsm_test<F, Fut>(name: &str, body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    if std::env::var_os(CHILD).is_some() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(body(TOKEN.to_owned()));
        return;
    }
    let conf = fresh_token(name);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env("SOFTHSM2_CONF", &conf)
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child run of {name} failed:\n{stdout}\n{stderr}");
    // A filter that matched nothing would also exit 0: make sure the body ran.
    assert!(stdout.contains("1 passed"), "child run of {name} ran no test:\n{stdout}");
}

fn config(token: &str, key: &str) -> Pkcs11Config {
    Pkcs11Config {
        module: MODULE.into(),
        token_label: token.into(),
        key_label: key.into(),
        pin: SecretString::from(PIN),
    }
}

fn ctx(workspace: &str) -> WrapContext<'_> {
    WrapContext { store: "data", workspace, dek_version: 1 }
}

fn dek() -> [u8; DEK_LEN] {
    chimatic_crypto::random::bytes::<DEK_LEN>().unwrap()
}

#[test]
fn round_trip() {
    softhsm_test("round_trip", |token| async move {
        let kek = Pkcs11Kek::create_key(&config(&token, "kek-1")).await.unwrap();
        assert_eq!(kek.kek_id(), format!("pkcs11:{token}/kek-1"));
        let dek = dek();
        let wrapped = kek.wrap(&dek, &ctx("ws_a")).await.unwrap();
        assert_eq!(wrapped.len(), 1 + 12 + DEK_LEN + 16);
        assert!(!wrapped.windows(DEK_LEN).any(|w| w == dek), "the DEK appears in clear");
        assert_eq!(*kek.unwrap(&wrapped, &ctx("ws_a")).await.unwrap(), dek);
        let again = kek.wrap(&dek, &ctx("ws_a")).await.unwrap();
        assert_ne!(wrapped, again, "every wrap uses a fresh IV");
    });
}

#[test]
fn context_binding() {
    softhsm_test("context_binding", |token| async move {
        let kek = Pkcs11Kek::create_key(&config(&token, "kek-1")).await.unwrap();
        let wrapped = kek.wrap(&dek(), &ctx("ws_a")).await.unwrap();
        let others = [
            WrapContext { store: "data", workspace: "ws_b", dek_version: 1 },
            WrapContext { store: "vault", workspace: "ws_a", dek_version: 1 },
            WrapContext { store: "data", workspace: "ws_a", dek_version: 2 },
        ];
        for other in &others {
            assert_eq!(kek.unwrap(&wrapped, other).await.unwrap_err(), CryptoError::Unwrap, "{}", other.workspace);
        }
        // The session pool survives refusals: the right context still works.
        assert!(kek.unwrap(&wrapped, &ctx("ws_a")).await.is_ok());
    });
}

#[test]
fn tampered_wrapped_bytes_fail() {
    softhsm_test("tampered_wrapped_bytes_fail", |token| async move {
        let kek = Pkcs11Kek::create_key(&config(&token, "kek-1")).await.unwrap();
        let wrapped = kek.wrap(&dek(), &ctx("ws_a")).await.unwrap();
        for i in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 0x01;
            assert_eq!(kek.unwrap(&bad, &ctx("ws_a")).await.unwrap_err(), CryptoError::Unwrap, "flip at byte {i}");
        }
        assert_eq!(kek.unwrap(&wrapped[..wrapped.len() - 1], &ctx("ws_a")).await.unwrap_err(), CryptoError::Unwrap);
        assert_eq!(kek.unwrap(&[], &ctx("ws_a")).await.unwrap_err(), CryptoError::Unwrap);
    });
}

#[test]
fn key_is_sensitive_and_not_extractable() {
    softhsm_test("key_is_sensitive_and_not_extractable", |token| async move {
        let kek = Pkcs11Kek::create_key(&config(&token, "kek-1")).await.unwrap();
        let props = kek.key_properties().await.unwrap();
        assert!(props.token && props.private, "{props:?}");
        assert!(props.sensitive && props.always_sensitive, "{props:?}");
        assert!(!props.extractable && props.never_extractable, "{props:?}");
        assert!(props.key_type_aes && props.value_len == 32, "{props:?}");
        assert!(!props.value_readable, "the token handed out the key bytes");
        // A second key with the same label is refused rather than shadowing the first.
        let again = Pkcs11Kek::create_key(&config(&token, "kek-1")).await.unwrap_err();
        assert!(matches!(again, Pkcs11Error::KeyExists { .. }), "{again:?}");
    });
}

#[test]
fn wrong_pin_is_a_clear_error_without_the_pin() {
    softhsm_test("wrong_pin_is_a_clear_error_without_the_pin", |token| async move {
        Pkcs11Kek::create_key(&config(&token, "kek-1")).await.unwrap();
        // No other session of this process is logged in: the token checks this PIN.
        let mut bad = config(&token, "kek-1");
        let wrong = "9999-wrong-pin-canary";
        bad.pin = SecretString::from(wrong);
        let err = Pkcs11Kek::open(&bad).await.unwrap_err();
        assert!(matches!(err, Pkcs11Error::WrongPin(_)), "{err:?}");
        let text = format!("{err} {err:?}");
        assert!(text.contains("PIN") && text.contains(&token), "{text}");
        assert!(!text.contains(wrong) && !text.contains(PIN), "{text}");
    });
}

#[test]
fn unknown_key_and_token_labels() {
    softhsm_test("unknown_key_and_token_labels", |token| async move {
        let err = Pkcs11Kek::open(&config(&token, "no-such-key")).await.unwrap_err();
        assert!(matches!(&err, Pkcs11Error::KeyNotFound { key, .. } if key == "no-such-key"), "{err:?}");
        assert!(err.to_string().contains("no-such-key"), "{err}");
        let err = Pkcs11Kek::open(&config("no-such-token", "kek-1")).await.unwrap_err();
        assert!(matches!(err, Pkcs11Error::TokenNotFound(_)), "{err:?}");
        let mut missing = config(&token, "kek-1");
        missing.module = "/nonexistent/libpkcs11.so".into();
        let err = Pkcs11Kek::open(&missing).await.unwrap_err();
        assert!(matches!(err, Pkcs11Error::Module { .. }), "{err:?}");
    });
}

#[test]
fn concurrent_wraps_and_unwraps() {
    softhsm_test("concurrent_wraps_and_unwraps", |token| async move {
        let kek = std::sync::Arc::new(Pkcs11Kek::create_key(&config(&token, "kek-1")).await.unwrap());
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let kek = kek.clone();
                tokio::spawn(async move {
                    let workspace = format!("ws_{i}");
                    let dek = dek();
                    let wrapped = kek.wrap(&dek, &ctx(&workspace)).await.unwrap();
                    assert_eq!(*kek.unwrap(&wrapped, &ctx(&workspace)).await.unwrap(), dek);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[test]
fn reopened_kek_unwraps_what_the_first_wrapped() {
    softhsm_test("reopened_kek_unwraps_what_the_first_wrapped", |token| async move {
        let first = Pkcs11Kek::create_key(&config(&token, "kek-1")).await.unwrap();
        let dek = dek();
        let wrapped = first.wrap(&dek, &ctx("ws_a")).await.unwrap();
        // Closing every session logs the application out, as a process exit would.
        drop(first);
        let second = Pkcs11Kek::open(&config(&token, "kek-1")).await.unwrap();
        assert_eq!(*second.unwrap(&wrapped, &ctx("ws_a")).await.unwrap(), dek);
        // Another key on the same token cannot unwrap it.
        let other = Pkcs11Kek::create_key(&config(&token, "kek-2")).await.unwrap();
        assert_eq!(other.unwrap(&wrapped, &ctx("ws_a")).await.unwrap_err(), CryptoError::Unwrap);
    });
}

#[test]
fn deleted_token_gives_key_unavailable_not_unwrap() {
    softhsm_test("deleted_token_gives_key_unavailable_not_unwrap", |token| async move {
        let kek = Pkcs11Kek::create_key(&config(&token, "kek-1")).await.unwrap();
        let wrapped = kek.wrap(&dek(), &ctx("ws_a")).await.unwrap();
        // Another process removes the token, as an operator or a failing HSM would.
        let out = Command::new("softhsm2-util").args(["--delete-token", "--token", &token]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(kek.wrap(&dek(), &ctx("ws_a")).await.unwrap_err(), CryptoError::KeyUnavailable);
        // Not `Unwrap`: the wrapped DEK is fine, the key is what is missing.
        assert_eq!(kek.unwrap(&wrapped, &ctx("ws_a")).await.unwrap_err(), CryptoError::KeyUnavailable);
    });
}

/// Empties the token's file, as a SoftHSM2 writer in another process does before it writes
/// the new contents, and puts the contents back after `for_ms`.
fn token_file_rewritten_for(for_ms: u64) -> std::thread::JoinHandle<()> {
    let conf = PathBuf::from(std::env::var_os("SOFTHSM2_CONF").unwrap());
    let tokens = conf.parent().unwrap().join("tokens");
    let token_dir = std::fs::read_dir(&tokens).unwrap().next().unwrap().unwrap().path();
    let file = token_dir.join("token.object");
    let contents = std::fs::read(&file).unwrap();
    std::fs::write(&file, b"").unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(for_ms));
        std::fs::write(&file, contents).unwrap();
    })
}

#[test]
fn a_token_read_while_another_process_rewrites_it_is_read_again() {
    softhsm_test("a_token_read_while_another_process_rewrites_it_is_read_again", |token| async move {
        // The library starts while the file is empty: SoftHSM2 leaves the token out of its slots.
        let rewrite = token_file_rewritten_for(300);
        let first = Pkcs11Kek::create_key(&config(&token, "kek")).await.unwrap();
        rewrite.join().unwrap();
        let second = Pkcs11Kek::create_key(&config(&token, "kek-v2")).await.unwrap();
        let wrapped =
            [first.wrap(&dek(), &ctx("ws_a")).await.unwrap(), second.wrap(&dek(), &ctx("ws_a")).await.unwrap()];
        drop((first, second));

        // Once started, the library reads the token's flags again on each call.
        let rewrite = token_file_rewritten_for(300);
        let versions = Pkcs11Kek::open_versions(&config(&token, "kek")).await.unwrap();
        rewrite.join().unwrap();
        let ids: Vec<_> = versions.iter().map(|k| k.kek_id().to_string()).collect();
        assert_eq!(ids, [format!("pkcs11:{token}/kek"), format!("pkcs11:{token}/kek-v2")]);
        for (kek, wrapped) in versions.iter().zip(&wrapped) {
            kek.unwrap(wrapped, &ctx("ws_a")).await.unwrap();
        }

        // A node's open keys keep the library from restarting, and after a bad read SoftHSM2
        // answers no token lookup until it does: the node still finds a new version, and its
        // keys still work.
        let rewrite = token_file_rewritten_for(300);
        let lookup = Pkcs11Kek::open(&config("another-token", "kek")).await.unwrap_err();
        rewrite.join().unwrap();
        assert!(lookup.to_string().contains("GetTokenInfo"), "the bad read happened: {lookup}");
        Pkcs11Kek::create_key(&config(&token, "kek-v3")).await.unwrap();
        let found = Pkcs11Kek::open_versions(&config(&token, "kek")).await.unwrap();
        assert_eq!(found.len(), 3);
        versions[1].unwrap(&wrapped[1], &ctx("ws_a")).await.unwrap();
    });
}
