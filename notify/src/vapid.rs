//! The VAPID key (RFC 8292): a P-256 key that signs every push's `Authorization` header, so the
//! push services know pushes to a subscription come from the server the browser subscribed
//! with. Browsers subscribe with its public key (`GET /api/v1/push/vapid`), so it must outlive
//! restarts: it is made on first start, written to `--vapid-key` (a PEM file, mode 0600, like
//! auth's token signing key) and read from there after. Every notify instance of a deployment
//! shares the file (a Secret in the Helm chart). A new key orphans every subscription.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use web_push::{PartialVapidSignatureBuilder, VapidSignatureBuilder};

/// The key, loaded.
#[derive(Clone)]
pub struct VapidKey {
    builder: PartialVapidSignatureBuilder,
    public: String,
}

impl fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl VapidKey {
    /// Reads the key at `path`, making it first when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        if !path.exists() {
            write_new(path)?;
            tracing::info!(path = %path.display(), "made a new VAPID key");
        }
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let builder = VapidSignatureBuilder::from_pem_no_sub(pem)
            .map_err(|e| format!("not a P-256 private key in PEM ({e})"))?;
        let public = URL_SAFE_NO_PAD.encode(builder.get_public_key());
        Ok(Self { builder, public })
    }

    /// The public key, base64url (the browser's `applicationServerKey`).
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// A signer for one subscription.
    pub fn builder(&self) -> PartialVapidSignatureBuilder {
        self.builder.clone()
    }
}

/// A new P-256 private key in PEM (SEC1).
pub fn new_pem() -> Result<Vec<u8>, String> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(|e| e.to_string())?;
    let key = EcKey::generate(&group).map_err(|e| e.to_string())?;
    key.private_key_to_pem().map_err(|e| e.to_string())
}

fn write_new(path: &Path) -> Result<(), String> {
    let pem = new_pem()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // `create_new`: two instances starting at once cannot both write; the loser reads the
    // winner's key.
    match options.open(path) {
        Ok(mut file) => file
            .write_all(&pem)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_made_once_and_read_back_the_same() {
        let dir = std::env::temp_dir().join(format!("vapid-{}", std::process::id()));
        let path = dir.join("vapid.pem");
        let _ = std::fs::remove_file(&path);
        let first = VapidKey::load_or_create(&path).unwrap();
        let second = VapidKey::load_or_create(&path).unwrap();
        assert_eq!(first.public_key(), second.public_key());
        // An uncompressed P-256 point: 65 bytes.
        assert_eq!(
            URL_SAFE_NO_PAD.decode(first.public_key()).unwrap().len(),
            65
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
