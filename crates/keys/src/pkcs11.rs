//! A KEK inside a PKCS#11 token. The AES-256 key is generated on the token as sensitive and
//! non-extractable; wrapping and unwrapping are AES-GCM encryptions the token performs, so the
//! KEK's bytes never exist in this process.
//!
//! Wrapped layout: `0x01 | iv (12) | ciphertext (32) ‖ tag (16)`; the associated data is the
//! [`WrapContext`] encoding, so a wrapped DEK moved to another workspace, store or version fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use chimatic_crypto::kek::{KekProvider, WrapContext};
use chimatic_crypto::{CryptoError, DEK_LEN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::Ulong;
use secrecy::SecretString;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

const FORMAT_V1: u8 = 1;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
const TAG_BITS: Ulong = Ulong::new(128);
const WRAPPED_LEN: usize = 1 + IV_LEN + DEK_LEN + TAG_LEN;
/// Sessions are cheap but tokens limit them; four keep two cores busy with room for bursts.
const MAX_SESSIONS: usize = 4;

/// Where the KEK lives. `pin` is the token's user PIN.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    pub token_label: String,
    pub key_label: String,
    pub pin: SecretString,
}

impl std::fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("key_label", &self.key_label)
            .field("pin", &"[redacted]")
            .finish()
    }
}

/// Why a PKCS#11 KEK could not be created, opened or inspected. Never contains the PIN.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs11Error {
    #[error("cannot load the PKCS#11 module {path}: {source}")]
    Module { path: PathBuf, source: CkError },
    #[error("no initialized PKCS#11 token is labelled {0:?}")]
    TokenNotFound(String),
    #[error("the user PIN for PKCS#11 token {0:?} is incorrect")]
    WrongPin(String),
    #[error("the user PIN for PKCS#11 token {0:?} is locked")]
    PinLocked(String),
    #[error("no secret key labelled {key:?} on PKCS#11 token {token:?}")]
    KeyNotFound { token: String, key: String },
    #[error("{count} secret keys are labelled {key:?} on PKCS#11 token {token:?}; labels must be unique")]
    AmbiguousKey { token: String, key: String, count: usize },
    #[error("a key labelled {key:?} already exists on PKCS#11 token {token:?}")]
    KeyExists { token: String, key: String },
    #[error("key {key:?} on PKCS#11 token {token:?} is not usable as a KEK: {reason}")]
    KeyNotProtected { token: String, key: String, reason: &'static str },
    #[error("PKCS#11 call failed: {0}")]
    Token(#[from] CkError),
    #[error("the PKCS#11 worker thread failed")]
    Worker,
}

/// Protection attributes of the KEK object as the token reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyProperties {
    pub token: bool,
    pub private: bool,
    pub sensitive: bool,
    pub always_sensitive: bool,
    pub extractable: bool,
    pub never_extractable: bool,
    pub key_type_aes: bool,
    pub value_len: u64,
    /// Whether the token handed out CKA_VALUE (the key bytes) when asked; must be false.
    pub value_readable: bool,
}

pub struct Pkcs11Kek {
    inner: Arc<Inner>,
    /// Bounds the sessions (and blocking threads) in use at once.
    permits: Arc<Semaphore>,
    id: String,
}

struct Inner {
    ctx: Arc<Pkcs11>,
    slot: Slot,
    token_label: String,
    key_label: String,
    /// Object handles are per application and die with its last session (SoftHSM forgets
    /// them then): looked up again by label when the token says this one is stale.
    key: Mutex<ObjectHandle>,
    /// Kept to log in again: a token logs the application out when its last session closes.
    pin: SecretString,
    /// Logged-in sessions not in use; a `Session` is Send but not Sync, so one thread at a time.
    idle: Mutex<Vec<Session>>,
}

impl std::fmt::Debug for Pkcs11Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkcs11Kek({})", self.id)
    }
}

impl Pkcs11Kek {
    /// Generates the KEK on the token (AES-256, sensitive, non-extractable) and opens it.
    /// Refuses if a secret key with that label already exists.
    pub async fn create_key(config: &Pkcs11Config) -> Result<Self, Pkcs11Error> {
        let config = config.clone();
        blocking(move || on_token(&config, |ctx, slot| Self::create_key_in(ctx, slot, &config))).await
    }

    fn create_key_in(ctx: &Arc<Pkcs11>, slot: Slot, config: &Pkcs11Config) -> Result<Self, Pkcs11Error> {
        let config = config.clone();
        let session = ctx.open_rw_session(slot)?;
        login(&session, &config)?;
        let existing = session.find_objects(&key_template(&config.key_label))?;
        if !existing.is_empty() {
            return Err(Pkcs11Error::KeyExists { token: config.token_label, key: config.key_label });
        }
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            // Only encrypt/decrypt: C_WrapKey or C_DeriveKey could otherwise move the key's
            // secret into another object.
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(config.key_label.as_bytes().to_vec()),
        ];
        let key = session.generate_key(&Mechanism::AesKeyGen, &template)?;
        Ok(Self::with_key(ctx.clone(), slot, key, session, config))
    }

    /// Opens an existing KEK by token and key label, checking the PIN and that the key is an
    /// AES-256 key the token will not let out.
    pub async fn open(config: &Pkcs11Config) -> Result<Self, Pkcs11Error> {
        let config = config.clone();
        blocking(move || on_token(&config, |ctx, slot| Self::open_in(ctx, slot, &config))).await
    }

    /// Opens every version of a KEK, oldest first: `key_label`, then `key_label-v2`, `-v3`, …
    /// up to the first one missing. One unit for the retry, so a token read badly while opening
    /// version 3 can still restart the library: the versions already opened are dropped first.
    pub async fn open_versions(config: &Pkcs11Config) -> Result<Vec<Self>, Pkcs11Error> {
        let config = config.clone();
        blocking(move || {
            on_token(&config, |ctx, slot| {
                let mut keks = Vec::new();
                for version in 1.. {
                    let versioned =
                        Pkcs11Config { key_label: version_label(&config.key_label, version), ..config.clone() };
                    match Self::open_in(ctx, slot, &versioned) {
                        Ok(kek) => keks.push(kek),
                        Err(Pkcs11Error::KeyNotFound { .. }) if version > 1 => break,
                        Err(e) => return Err(e),
                    }
                }
                Ok(keks)
            })
        })
        .await
    }

    fn open_in(ctx: &Arc<Pkcs11>, slot: Slot, config: &Pkcs11Config) -> Result<Self, Pkcs11Error> {
        let config = config.clone();
        let session = ctx.open_ro_session(slot)?;
        login(&session, &config)?;
        let key = find_key(&session, &config.token_label, &config.key_label)?;
        let props = read_properties(&session, key)?;
        let refuse = |reason| Pkcs11Error::KeyNotProtected {
            token: config.token_label.clone(),
            key: config.key_label.clone(),
            reason,
        };
        if !props.key_type_aes || props.value_len != DEK_LEN as u64 {
            return Err(refuse("not an AES-256 key"));
        }
        if !props.sensitive || props.extractable || props.value_readable {
            return Err(refuse("the key can leave the token (CKA_SENSITIVE false or CKA_EXTRACTABLE true)"));
        }
        Ok(Self::with_key(ctx.clone(), slot, key, session, config))
    }

    /// `session` goes to the pool: while one stays open the login and the key handle hold.
    fn with_key(ctx: Arc<Pkcs11>, slot: Slot, key: ObjectHandle, session: Session, config: Pkcs11Config) -> Self {
        let id = format!("pkcs11:{}/{}", config.token_label, config.key_label);
        let inner = Inner {
            ctx,
            slot,
            token_label: config.token_label,
            key_label: config.key_label,
            key: Mutex::new(key),
            pin: config.pin,
            idle: Mutex::new(vec![session]),
        };
        Self { inner: Arc::new(inner), permits: Arc::new(Semaphore::new(MAX_SESSIONS)), id }
    }

    /// Reads the KEK object's protection attributes from the token.
    pub async fn key_properties(&self) -> Result<KeyProperties, Pkcs11Error> {
        self.run(read_properties).await
    }

    /// Runs one PKCS#11 operation on a pooled session in a blocking thread. If the token says
    /// the session or key handle is stale (token reinserted, HSM restarted, every session
    /// closed), the pool is emptied and the operation runs once more on a fresh login.
    async fn run<T, F>(&self, op: F) -> Result<T, Pkcs11Error>
    where
        T: Send + 'static,
        F: Fn(&Session, ObjectHandle) -> Result<T, CkError> + Send + 'static,
    {
        // The semaphore is never closed, so acquiring only waits.
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| Pkcs11Error::Worker)?;
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            // Held until the token call returns, even if the caller's future was dropped.
            let _permit = permit;
            let session = match inner.idle().pop() {
                Some(session) => session,
                None => inner.fresh_session()?,
            };
            match inner.attempt(session, &op) {
                Err(e) if is_stale(&e) => {
                    inner.idle().clear();
                    let session = inner.fresh_session()?;
                    let key = find_key(&session, &inner.token_label, &inner.key_label)?;
                    *inner.key.lock().unwrap_or_else(PoisonError::into_inner) = key;
                    Ok(inner.attempt(session, &op)?)
                }
                other => Ok(other?),
            }
        })
        .await
    }
}

impl Inner {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Session>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fresh_session(&self) -> Result<Session, Pkcs11Error> {
        let session = self.ctx.open_ro_session(self.slot)?;
        match session.login(UserType::User, Some(&self.pin)) {
            // Logins are per application, not per session: another session may hold it already.
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `op`; the session goes back to the pool unless the token called it stale. A failed
    /// single-part C_Encrypt/C_Decrypt ends its operation, so the session stays usable, and
    /// keeping it keeps the login and key handle alive (they die with the last session).
    fn attempt<T>(
        &self,
        session: Session,
        op: &impl Fn(&Session, ObjectHandle) -> Result<T, CkError>,
    ) -> Result<T, CkError> {
        let key = *self.key.lock().unwrap_or_else(PoisonError::into_inner);
        let out = op(&session, key);
        match &out {
            Err(e) if is_stale(e) => drop(session),
            _ => self.idle().push(session),
        }
        out
    }
}

/// Errors after which a fresh session, login and key lookup may succeed.
fn is_stale(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid,
            _
        )
    )
}

#[async_trait::async_trait]
impl KekProvider for Pkcs11Kek {
    fn kek_id(&self) -> &str {
        &self.id
    }

    async fn wrap(&self, dek: &[u8; DEK_LEN], ctx: &WrapContext<'_>) -> Result<Vec<u8>, CryptoError> {
        let iv = chimatic_crypto::random::bytes::<IV_LEN>()?;
        let aad = ctx.encode();
        let dek = Zeroizing::new(*dek);
        let sealed = self
            .run(move |session, key| {
                let mut iv = iv;
                let params = GcmParams::new(&mut iv, &aad, TAG_BITS)?;
                session.encrypt(&Mechanism::AesGcm(params), key, dek.as_ref())
            })
            .await
            .map_err(|e| unavailable("wrap", &e))?;
        if sealed.len() != DEK_LEN + TAG_LEN {
            tracing::warn!(len = sealed.len(), "PKCS#11 token returned an AES-GCM output of unexpected length");
            return Err(CryptoError::KeyUnavailable);
        }
        let mut out = Vec::with_capacity(WRAPPED_LEN);
        out.push(FORMAT_V1);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    async fn unwrap(&self, wrapped: &[u8], ctx: &WrapContext<'_>) -> Result<Zeroizing<[u8; DEK_LEN]>, CryptoError> {
        if wrapped.len() != WRAPPED_LEN || wrapped[0] != FORMAT_V1 {
            return Err(CryptoError::Unwrap);
        }
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&wrapped[1..1 + IV_LEN]);
        let sealed = wrapped[1 + IV_LEN..].to_vec();
        let aad = ctx.encode();
        let plain = self
            .run(move |session, key| {
                let mut iv = iv;
                let params = GcmParams::new(&mut iv, &aad, TAG_BITS)?;
                session.decrypt(&Mechanism::AesGcm(params), key, &sealed).map(Zeroizing::new)
            })
            .await
            .map_err(|e| match &e {
                Pkcs11Error::Token(ck) if is_rejected_ciphertext(ck) => CryptoError::Unwrap,
                _ => unavailable("unwrap", &e),
            })?;
        if plain.len() != DEK_LEN {
            return Err(CryptoError::Unwrap);
        }
        let mut out = Zeroizing::new([0u8; DEK_LEN]);
        out.copy_from_slice(&plain);
        Ok(out)
    }
}

/// A decryption the token refused because of the data rather than its own state. SoftHSM2
/// reports a failed GCM tag as CKR_GENERAL_ERROR; other tokens use the ENCRYPTED_DATA codes.
fn is_rejected_ciphertext(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::GeneralError | RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange,
            Function::Decrypt
        )
    )
}

fn unavailable(operation: &'static str, e: &Pkcs11Error) -> CryptoError {
    tracing::warn!(operation, error = %e, "PKCS#11 KEK unavailable");
    CryptoError::KeyUnavailable
}

async fn blocking<T, F>(f: F) -> Result<T, Pkcs11Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Pkcs11Error> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|_| Pkcs11Error::Worker)?
}

/// One context per module for the life of the process: C_Initialize may run once per
/// application, and all sessions on a module share that state.
fn contexts() -> MutexGuard<'static, HashMap<PathBuf, Arc<Pkcs11>>> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Arc<Pkcs11>>>> = OnceLock::new();
    CONTEXTS.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner)
}

fn initialize(ctx: &Pkcs11) -> Result<(), CkError> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Another path to the same library, or another user in this process, initialized it.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

fn context(module: &Path) -> Result<Arc<Pkcs11>, Pkcs11Error> {
    let mut contexts = contexts();
    if let Some(ctx) = contexts.get(module) {
        return Ok(ctx.clone());
    }
    let err = |source| Pkcs11Error::Module { path: module.into(), source };
    let ctx = Arc::new(Pkcs11::new(module).map_err(err)?);
    initialize(&ctx).map_err(err)?;
    contexts.insert(module.into(), ctx.clone());
    Ok(ctx)
}

/// The slot each token (module, label) was found in. Looking a token up again is avoided:
/// after one bad read SoftHSM2 answers every later lookup with a general error until the library
/// restarts, while sessions on the slot keep working, so a node whose keys hold the library
/// could otherwise never open a new KEK version.
fn known_slots() -> MutexGuard<'static, HashMap<(PathBuf, String), Slot>> {
    static SLOTS: OnceLock<Mutex<HashMap<(PathBuf, String), Slot>>> = OnceLock::new();
    SLOTS.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner)
}

fn token_slot(ctx: &Pkcs11, module: &Path, label: &str) -> Result<Slot, Pkcs11Error> {
    let key = (module.to_path_buf(), label.to_string());
    if let Some(slot) = known_slots().get(&key) {
        return Ok(*slot);
    }
    let slot = find_token(ctx, label)?;
    known_slots().insert(key, slot);
    Ok(slot)
}

/// Starts the library afresh, so it reads its token state again, if no KEK of this process uses
/// it (only the cache and the caller hold it); returns whether it did. SoftHSM2 keeps a token it
/// once failed to read (another process rewrote its files, as every login does) unusable until
/// then. Slot numbers may change with a restart, so those found are forgotten.
fn restart_if_unused(ctx: &Arc<Pkcs11>, module: &Path) -> bool {
    let contexts = contexts();
    if Arc::strong_count(ctx) > 2 {
        return false;
    }
    let _ = (**ctx).clone().finalize();
    let restarted = initialize(ctx).is_ok();
    known_slots().retain(|(m, _), _| m != module);
    drop(contexts);
    restarted
}

/// Runs `open` on the configured token's slot; while it fails as a token read mid-rewrite does,
/// tries again, backing off for about 3 s in all and restarting the library in between when
/// nothing else in this process uses it. SoftHSM2 reads a token whose file another process is
/// rewriting (every login rewrites it) as broken, and keeps it so in this process until the
/// library is restarted: left out of the slot list if the library was starting, otherwise a
/// general error, or a user PIN "not initialized" at login. A token or PIN that is really
/// missing is therefore reported after the retries. A slot that is gone is looked up again.
fn on_token<T>(
    config: &Pkcs11Config,
    open: impl Fn(&Arc<Pkcs11>, Slot) -> Result<T, Pkcs11Error>,
) -> Result<T, Pkcs11Error> {
    let (module, label) = (config.module.as_path(), config.token_label.as_str());
    let ctx = context(module)?;
    let attempt = || open(&ctx, token_slot(&ctx, module, label)?);
    let mut result = attempt();
    for pause_ms in [20, 50, 100, 200, 400, 800, 1600] {
        let slot_gone = matches!(
            &result,
            Err(Pkcs11Error::Token(CkError::Pkcs11(
                RvError::SlotIdInvalid
                    | RvError::TokenNotPresent
                    | RvError::TokenNotRecognized
                    | RvError::DeviceRemoved,
                _
            )))
        );
        let read_mid_rewrite = matches!(
            &result,
            Err(Pkcs11Error::TokenNotFound(_)
                | Pkcs11Error::Token(CkError::Pkcs11(RvError::GeneralError | RvError::UserPinNotInitialized, _)))
        );
        if slot_gone {
            known_slots().remove(&(module.to_path_buf(), label.to_string()));
        } else if !read_mid_rewrite {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(pause_ms));
        restart_if_unused(&ctx, module);
        result = attempt();
    }
    result
}

/// The key label of a KEK's `version` in its token: the configured label for the first, then
/// `-v2`, `-v3`, … appended for each rotation.
pub fn version_label(base: &str, version: u32) -> String {
    if version == 1 { base.to_string() } else { format!("{base}-v{version}") }
}

fn find_token(ctx: &Pkcs11, label: &str) -> Result<Slot, Pkcs11Error> {
    // A slot whose token cannot be read must not hide ours; if ours is not found, that error
    // says more than "not found" (and is retried by the caller).
    let mut unreadable = None;
    for slot in ctx.get_slots_with_initialized_token()? {
        match ctx.get_token_info(slot) {
            Ok(info) if info.label() == label => return Ok(slot),
            Ok(_) => {}
            Err(e) => unreadable = Some(e),
        }
    }
    Err(unreadable.map_or_else(|| Pkcs11Error::TokenNotFound(label.into()), Pkcs11Error::Token))
}

fn login(session: &Session, config: &Pkcs11Config) -> Result<(), Pkcs11Error> {
    match session.login(UserType::User, Some(&config.pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange | RvError::PinInvalid, _)) => {
            Err(Pkcs11Error::WrongPin(config.token_label.clone()))
        }
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(Pkcs11Error::PinLocked(config.token_label.clone())),
        Err(e) => Err(e.into()),
    }
}

fn find_key(session: &Session, token: &str, label: &str) -> Result<ObjectHandle, Pkcs11Error> {
    match session.find_objects(&key_template(label))?.as_slice() {
        [key] => Ok(*key),
        [] => Err(Pkcs11Error::KeyNotFound { token: token.into(), key: label.into() }),
        many => Err(Pkcs11Error::AmbiguousKey { token: token.into(), key: label.into(), count: many.len() }),
    }
}

fn key_template(label: &str) -> [Attribute; 2] {
    [Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(label.as_bytes().to_vec())]
}

fn read_properties(session: &Session, key: ObjectHandle) -> Result<KeyProperties, CkError> {
    let mut props = KeyProperties {
        token: false,
        private: false,
        sensitive: false,
        always_sensitive: false,
        extractable: true,
        never_extractable: false,
        key_type_aes: false,
        value_len: 0,
        value_readable: false,
    };
    let wanted = [
        AttributeType::Token,
        AttributeType::Private,
        AttributeType::Sensitive,
        AttributeType::AlwaysSensitive,
        AttributeType::Extractable,
        AttributeType::NeverExtractable,
        AttributeType::KeyType,
        AttributeType::ValueLen,
    ];
    for attribute in session.get_attributes(key, &wanted)? {
        match attribute {
            Attribute::Token(v) => props.token = v,
            Attribute::Private(v) => props.private = v,
            Attribute::Sensitive(v) => props.sensitive = v,
            Attribute::AlwaysSensitive(v) => props.always_sensitive = v,
            Attribute::Extractable(v) => props.extractable = v,
            Attribute::NeverExtractable(v) => props.never_extractable = v,
            Attribute::KeyType(t) => props.key_type_aes = t == KeyType::AES,
            Attribute::ValueLen(len) => props.value_len = len.into(),
            _ => {}
        }
    }
    // Asked separately: a sensitive key's token withholds CKA_VALUE, which is the point.
    for attribute in session.get_attributes(key, &[AttributeType::Value])? {
        if let Attribute::Value(bytes) = attribute {
            props.value_readable = true;
            drop(Zeroizing::new(bytes));
        }
    }
    Ok(props)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_hides_the_pin() {
        let config = Pkcs11Config {
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            token_label: "chimatic".into(),
            key_label: "kek-1".into(),
            pin: SecretString::from("pin-canary"),
        };
        let text = format!("{config:?}");
        assert!(text.contains("kek-1"));
        assert!(!text.contains("pin-canary"), "{text}");
    }
}
