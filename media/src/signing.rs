//! Signed URLs: what media hands out (an upload slot, a file in a message) carries an expiry and
//! an HMAC-SHA256 of what it grants, so media serves it without asking anyone, from `<img>` tags
//! and CDNs alike, and nobody can forge or stretch one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use kit::config::Secret;
use sha2::Sha256;

/// Signs and checks URLs with the deployment's secret (the same on every media instance).
#[derive(Clone)]
pub struct UrlSigner {
    key: Secret<Vec<u8>>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(***)")
    }
}

/// Why a signed URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the link has expired")]
    Expired,
    #[error("the link's signature is wrong")]
    Forged,
}

impl UrlSigner {
    pub fn new(secret: &Secret<String>) -> Self {
        Self {
            key: Secret::new(secret.expose().as_bytes().to_vec()),
        }
    }

    /// The Unix second `valid_for` from now.
    pub fn expiry(valid_for: Duration) -> u64 {
        unix_now() + valid_for.as_secs()
    }

    /// The signature (hex) of `what` until `expires` (Unix seconds).
    pub fn sign(&self, what: &[&str], expires: u64) -> String {
        let mac = self.mac(what, expires).finalize().into_bytes();
        mac.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Checks a signature made by [`sign`](Self::sign), in constant time.
    pub fn verify(
        &self,
        what: &[&str],
        expires: u64,
        signature: &str,
    ) -> Result<(), SignatureError> {
        let bytes = decode_hex(signature).ok_or(SignatureError::Forged)?;
        self.mac(what, expires)
            .verify_slice(&bytes)
            .map_err(|_| SignatureError::Forged)?;
        if expires < unix_now() {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }

    fn mac(&self, what: &[&str], expires: u64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.key.expose()).expect("HMAC takes any key length");
        for part in what {
            // Each part's length first: ("ab", "c") and ("a", "bc") sign differently.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.update(&expires.to_be_bytes());
        mac
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> UrlSigner {
        UrlSigner::new(&Secret::new("a test secret".to_owned()))
    }

    #[test]
    fn a_signature_checks_for_what_it_signed_until_it_expires() {
        let expires = UrlSigner::expiry(Duration::from_secs(60));
        let signature = signer().sign(&["PUT", "a/b", "10"], expires);
        assert_eq!(
            signer().verify(&["PUT", "a/b", "10"], expires, &signature),
            Ok(())
        );
    }

    #[test]
    fn a_signature_for_anything_else_is_forged() {
        let expires = UrlSigner::expiry(Duration::from_secs(60));
        let signature = signer().sign(&["PUT", "a/b", "10"], expires);
        let forged = Err(SignatureError::Forged);
        assert_eq!(
            signer().verify(&["PUT", "a/b", "11"], expires, &signature),
            forged
        );
        assert_eq!(
            signer().verify(&["PUT", "a", "b/10"], expires, &signature),
            forged
        );
        assert_eq!(
            signer().verify(&["PUT", "a/b", "10"], expires + 1, &signature),
            forged
        );
        assert_eq!(
            signer().verify(&["PUT", "a/b", "10"], expires, "zz"),
            forged
        );
        let other = UrlSigner::new(&Secret::new("another".to_owned()));
        assert_eq!(
            other.verify(&["PUT", "a/b", "10"], expires, &signature),
            forged
        );
    }

    #[test]
    fn an_expired_signature_is_refused() {
        let expires = unix_now() - 1;
        let signature = signer().sign(&["GET", "x"], expires);
        assert_eq!(
            signer().verify(&["GET", "x"], expires, &signature),
            Err(SignatureError::Expired)
        );
    }
}
