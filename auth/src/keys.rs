//! The keys access tokens are signed with: Ed25519, PKCS#8 PEM files named by `--signing-key`.
//!
//! The first key signs; every key is published in the JWKS, so a rotation is: add the new key
//! second and deploy (verifiers learn it), swap the order and deploy (it signs), and once the
//! old key's last tokens have expired (the access-token lifetime), remove it.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kit::tokens::AccessClaims;
use proto::Snowflake;

/// One signing key, loaded and checked.
#[derive(Clone)]
pub struct SigningKey {
    path: PathBuf,
    kid: String,
    encoding: EncodingKey,
    public: Jwk,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("path", &self.path)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads an Ed25519 private key in PKCS#8 PEM (`auth keygen` or `openssl genpkey -algorithm
    /// ed25519` writes one). The message names the file and what is wrong, on one line.
    pub fn load(path: &str) -> Result<Self, String> {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        Self::from_pem(&pem)
            .map(|mut key| {
                key.path = PathBuf::from(path);
                key
            })
            .map_err(|e| format!("{path}: {e}"))
    }

    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let encoding = EncodingKey::from_ed_pem(pem)
            .map_err(|e| format!("not an Ed25519 private key in PKCS#8 PEM ({e})"))?;
        let mut public = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA)
            .map_err(|e| format!("not a usable Ed25519 key ({e})"))?;
        let kid = public
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| format!("cannot compute the key id ({e})"))?;
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            path: PathBuf::new(),
            kid,
            encoding,
            public,
        })
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// Signs an access token for `user` in `session`.
    pub fn sign(
        &self,
        user: Snowflake,
        session: Snowflake,
        ttl: Duration,
        audience: &str,
        issuer: &str,
    ) -> String {
        let now = proto::clock::since_epoch().as_secs();
        let claims = AccessClaims {
            sub: user,
            sid: session,
            iat: now,
            exp: now + ttl.as_secs(),
            aud: audience.to_owned(),
            iss: issuer.to_owned(),
        };
        self.sign_claims(&claims)
    }

    /// Signs any claims: for tests that need a token expired or for another audience.
    pub fn sign_claims(&self, claims: &AccessClaims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .expect("an Ed25519 key signs any claims")
    }
}

/// The configured keys: the first signs, all are published.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// # Panics
    /// When `keys` is empty; the configuration requires at least one.
    pub fn new(keys: Vec<SigningKey>) -> Self {
        assert!(!keys.is_empty(), "at least one signing key");
        Self { keys }
    }

    pub fn signer(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// The public keys, for `/api/v1/auth/jwks`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.iter().map(|k| k.public.clone()).collect(),
        }
    }
}

/// A new Ed25519 private key in PKCS#8 PEM.
pub fn generate_pem() -> String {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the OS random number generator works");
    // PKCS#8 v1 for Ed25519 (RFC 8410): a fixed 16-byte DER prefix, then the 32-byte seed.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    let body = STANDARD.encode(&der);
    format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
}

/// Writes a new key to `path`, readable by its owner only; refuses to overwrite a file.
pub fn write_new_key(path: &Path) -> std::io::Result<String> {
    let pem = generate_pem();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(pem.as_bytes())?;
    file.sync_all()?;
    let key = SigningKey::from_pem(pem.as_bytes()).expect("a generated key loads");
    Ok(key.kid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_loads_and_its_id_is_its_thumbprint() {
        let key = SigningKey::from_pem(generate_pem().as_bytes()).unwrap();
        assert_eq!(key.kid().len(), 43, "base64url of a SHA-256");
        let again = key.public_jwk().thumbprint(ThumbprintHash::SHA256).unwrap();
        assert_eq!(again, key.kid());
    }

    #[test]
    fn two_generated_keys_differ() {
        let a = SigningKey::from_pem(generate_pem().as_bytes()).unwrap();
        let b = SigningKey::from_pem(generate_pem().as_bytes()).unwrap();
        assert_ne!(a.kid(), b.kid());
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused_naming_the_file() {
        let dir = std::env::temp_dir().join(shared_unique());
        std::fs::write(&dir, "hello").unwrap();
        let err = SigningKey::load(dir.to_str().unwrap()).unwrap_err();
        assert!(
            err.contains(dir.to_str().unwrap()) && err.contains("PKCS#8"),
            "{err}"
        );
        assert!(!err.contains('\n'));
        let _ = std::fs::remove_file(dir);
    }

    #[test]
    fn a_missing_file_is_refused_naming_it() {
        let err = SigningKey::load("/nonexistent/auth.pem").unwrap_err();
        assert!(err.contains("/nonexistent/auth.pem"), "{err}");
    }

    #[test]
    fn a_written_key_is_private_to_its_owner_and_never_overwritten() {
        let path = std::env::temp_dir().join(shared_unique());
        write_new_key(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(write_new_key(&path).is_err());
        let _ = std::fs::remove_file(path);
    }

    fn shared_unique() -> String {
        format!("natter-key-test-{}-{}", std::process::id(), rand_suffix())
    }

    fn rand_suffix() -> usize {
        let mut b = [0u8; 4];
        getrandom::fill(&mut b).unwrap();
        u32::from_le_bytes(b) as usize
    }
}
