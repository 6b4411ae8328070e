//! Key encryption keys. A KEK only wraps and unwraps DEKs; it never touches data.
//! The local KEK is injected at runtime (`CHIMATIC_KEK` or `CHIMATIC_KEK_FILE`) or, in the
//! embedded development default, generated once into the data directory with mode 0600.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::{CryptoError, DEK_LEN};

/// What a DEK is bound to when wrapped: the store ("data" or "vault"), the workspace, the version.
pub struct WrapContext<'a> {
    pub store: &'static str,
    pub workspace: &'a str,
    pub dek_version: u32,
}

impl WrapContext<'_> {
    /// The associated data a wrapped DEK is bound to; public so that KEKs kept outside this
    /// crate (HSMs) bind to exactly the same bytes.
    pub fn encode(&self) -> Vec<u8> {
        format!("chimatic.dek.v1\0{}\0{}\0{}", self.store, self.workspace, self.dek_version).into_bytes()
    }
}

#[async_trait::async_trait]
pub trait KekProvider: Send + Sync + 'static {
    /// Identifies the KEK (and its version) a DEK was wrapped with.
    fn kek_id(&self) -> &str;
    async fn wrap(&self, dek: &[u8; DEK_LEN], ctx: &WrapContext<'_>) -> Result<Vec<u8>, CryptoError>;
    async fn unwrap(&self, wrapped: &[u8], ctx: &WrapContext<'_>) -> Result<Zeroizing<[u8; DEK_LEN]>, CryptoError>;
}

/// Where the local KEK came from; logged (never the key) and reported by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KekSource {
    Environment,
    File(PathBuf),
    /// Generated on first run in the data directory: a development key.
    Generated(PathBuf),
    /// An existing development key file in the data directory.
    DataDir(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum KekLoadError {
    #[error("the KEK must be 32 bytes, base64-encoded")]
    Malformed,
    #[error("cannot read KEK file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot create KEK file {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("KEK file {path} is readable by group or others (mode {mode:o}); chmod 600 it")]
    Permissions { path: PathBuf, mode: u32 },
}

pub const DEV_KEK_FILE: &str = "kek.key";

pub struct LocalKek {
    key: LessSafeKey,
    id: String,
}

impl std::fmt::Debug for LocalKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalKek({})", self.id)
    }
}

impl LocalKek {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KekLoadError> {
        if bytes.len() != DEK_LEN {
            return Err(KekLoadError::Malformed);
        }
        let mut id_input = Zeroizing::new(b"chimatic.kek-id.v1\0".to_vec());
        id_input.extend_from_slice(bytes);
        let fp = digest::digest(&digest::SHA256, &id_input);
        let id = format!("local:{}", hex8(fp.as_ref()));
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KekLoadError::Malformed)?;
        Ok(Self { key: LessSafeKey::new(unbound), id })
    }

    pub fn from_base64(text: &str) -> Result<Self, KekLoadError> {
        let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| KekLoadError::Malformed)?);
        Self::from_bytes(&bytes)
    }

    pub fn from_file(path: &Path) -> Result<Self, KekLoadError> {
        let meta = std::fs::metadata(path).map_err(|source| KekLoadError::Read { path: path.into(), source })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KekLoadError::Permissions { path: path.into(), mode });
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| KekLoadError::Read { path: path.into(), source })?,
        );
        Self::from_base64(&text)
    }

    /// Resolution order: `CHIMATIC_KEK` (base64), `CHIMATIC_KEK_FILE`, then the development key in
    /// the data directory, generated there with mode 0600 if it does not exist yet.
    pub fn resolve(
        env_kek: Option<&str>,
        kek_file: Option<&Path>,
        data_dir: &Path,
    ) -> Result<(Self, KekSource), KekLoadError> {
        if let Some(text) = env_kek {
            return Ok((Self::from_base64(text)?, KekSource::Environment));
        }
        if let Some(path) = kek_file {
            return Ok((Self::from_file(path)?, KekSource::File(path.into())));
        }
        let path = data_dir.join(DEV_KEK_FILE);
        match Self::generate_file(&path) {
            Ok(kek) => Ok((kek, KekSource::Generated(path))),
            Err(KekLoadError::Create { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((Self::from_file(&path)?, KekSource::DataDir(path)))
            }
            Err(e) => Err(e),
        }
    }

    /// Generates a new key into `path` (mode 0600); refuses if the file exists.
    pub fn generate_file(path: &Path) -> Result<Self, KekLoadError> {
        let create = |source| KekLoadError::Create { path: path.into(), source };
        // create_new: two processes starting at once cannot both generate a key.
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(create)?;
        let key = Zeroizing::new(crate::random::bytes::<DEK_LEN>().map_err(|_| KekLoadError::Malformed)?);
        let text = Zeroizing::new(STANDARD.encode(key.as_ref()));
        file.write_all(text.as_bytes()).map_err(create)?;
        file.sync_all().map_err(create)?;
        Self::from_bytes(key.as_ref())
    }
}

#[async_trait::async_trait]
impl KekProvider for LocalKek {
    fn kek_id(&self) -> &str {
        &self.id
    }

    async fn wrap(&self, dek: &[u8; DEK_LEN], ctx: &WrapContext<'_>) -> Result<Vec<u8>, CryptoError> {
        let nonce = crate::random::bytes::<NONCE_LEN>()?;
        let mut body = dek.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(ctx.encode()), &mut body)
            .map_err(|_| CryptoError::InvalidKey)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&body);
        Ok(out)
    }

    async fn unwrap(&self, wrapped: &[u8], ctx: &WrapContext<'_>) -> Result<Zeroizing<[u8; DEK_LEN]>, CryptoError> {
        if wrapped.len() != NONCE_LEN + DEK_LEN + 16 {
            return Err(CryptoError::Unwrap);
        }
        let (nonce, body) = wrapped.split_at(NONCE_LEN);
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(nonce);
        let mut buf = Zeroizing::new(body.to_vec());
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(n), Aad::from(ctx.encode()), buf.as_mut_slice())
            .map_err(|_| CryptoError::Unwrap)?;
        let mut out = Zeroizing::new([0u8; DEK_LEN]);
        out.copy_from_slice(plain);
        Ok(out)
    }
}

fn hex8(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(ws: &str) -> WrapContext<'_> {
        WrapContext { store: "data", workspace: ws, dek_version: 1 }
    }

    #[tokio::test]
    async fn wraps_and_unwraps_bound_to_context() {
        let kek = LocalKek::from_bytes(&[7u8; 32]).unwrap();
        let dek = [9u8; 32];
        let w = kek.wrap(&dek, &ctx("ws_a")).await.unwrap();
        assert_eq!(*kek.unwrap(&w, &ctx("ws_a")).await.unwrap(), dek);
        assert_eq!(kek.unwrap(&w, &ctx("ws_b")).await.unwrap_err(), CryptoError::Unwrap);
        let vault = WrapContext { store: "vault", workspace: "ws_a", dek_version: 1 };
        assert_eq!(kek.unwrap(&w, &vault).await.unwrap_err(), CryptoError::Unwrap);
        let other = LocalKek::from_bytes(&[8u8; 32]).unwrap();
        assert_ne!(other.kek_id(), kek.kek_id());
        assert_eq!(other.unwrap(&w, &ctx("ws_a")).await.unwrap_err(), CryptoError::Unwrap);
    }

    #[test]
    fn generates_a_0600_dev_key_once_then_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, src1) = LocalKek::resolve(None, None, dir.path()).unwrap();
        let path = dir.path().join(DEV_KEK_FILE);
        assert_eq!(src1, KekSource::Generated(path.clone()));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (k2, src2) = LocalKek::resolve(None, None, dir.path()).unwrap();
        assert_eq!(src2, KekSource::DataDir(path));
        assert_eq!(k1.kek_id(), k2.kek_id());
    }

    #[test]
    fn injected_keys_win_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let b64 = STANDARD.encode([1u8; 32]);
        let (_, src) = LocalKek::resolve(Some(&b64), None, dir.path()).unwrap();
        assert_eq!(src, KekSource::Environment);
        assert!(!dir.path().join(DEV_KEK_FILE).exists(), "no dev key when one is injected");
        assert!(matches!(LocalKek::resolve(Some("short"), None, dir.path()), Err(KekLoadError::Malformed)));

        let file = dir.path().join("injected.key");
        std::fs::write(&file, &b64).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(LocalKek::resolve(None, Some(&file), dir.path()), Err(KekLoadError::Permissions { .. })));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (_, src) = LocalKek::resolve(None, Some(&file), dir.path()).unwrap();
        assert_eq!(src, KekSource::File(file));
    }
}
