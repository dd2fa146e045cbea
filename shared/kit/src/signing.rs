//! Signed URLs: what media hands out (an upload slot, a file in a message) carries an expiry and
//! an HMAC-SHA256 of what it grants, so media serves it without asking anyone, from `<img>` tags
//! and CDNs alike, and nobody can forge or stretch one.
//!
//! A message's files are linked by [`FileLinks`]: media signs them when a message takes its
//! uploads, and edges sign them again each time they hand the message out (history, a resume's
//! replay, live delivery), with the same secret, so a link never expires in the hands of someone
//! who can still read the message.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proto::Snowflake;
use sha2::Sha256;

use crate::config::Secret;

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

/// Links to a message's files: `{public_url}/attachments/{channel}/{message}/{id}/{filename}`,
/// signed for GET until an expiry between `ttl` and `ttl` plus [`FileLinks::ROUNDING`] from now.
/// Expiries are rounded up, so every reader in the same few minutes gets the same URL for a file
/// and browsers and CDNs cache it once.
#[derive(Debug, Clone)]
pub struct FileLinks {
    public_url: String,
    signer: UrlSigner,
    ttl: Duration,
}

impl FileLinks {
    /// Expiries are multiples of this many seconds.
    pub const ROUNDING: u64 = 600;

    pub fn new(public_url: &str, signer: UrlSigner, ttl: Duration) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
            signer,
            ttl,
        }
    }

    /// The signed URL of one file of a message.
    pub fn attachment(
        &self,
        channel: Snowflake,
        message: Snowflake,
        id: Snowflake,
        filename: &str,
    ) -> String {
        let expires = UrlSigner::expiry(self.ttl).next_multiple_of(Self::ROUNDING);
        let path = Self::signed_path(channel, message, id, filename);
        let signature = self.signer.sign(&["GET", &path], expires);
        format!(
            "{}/attachments/{channel}/{message}/{id}/{}?ex={expires:x}&hm={signature}",
            self.public_url,
            utf8_percent_encode(filename, NON_ALPHANUMERIC),
        )
    }

    /// What a file's signature covers besides the method and expiry.
    pub fn signed_path(
        channel: Snowflake,
        message: Snowflake,
        id: Snowflake,
        filename: &str,
    ) -> String {
        format!("{channel}/{message}/{id}/{filename}")
    }

    pub fn signer(&self) -> &UrlSigner {
        &self.signer
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
    fn a_file_link_is_the_same_for_every_reader_of_the_same_minutes_and_verifies() {
        let links = FileLinks::new("http://media/", signer(), Duration::from_secs(3600));
        let id = Snowflake::from_u64;
        let first = links.attachment(id(1), id(2), id(3), "a b.png");
        assert_eq!(first, links.attachment(id(1), id(2), id(3), "a b.png"));
        assert!(
            first.starts_with("http://media/attachments/1/2/3/a%20b%2Epng?ex="),
            "{first}"
        );
        let query = first.split_once('?').unwrap().1;
        let (ex, hm) = query.split_once("&hm=").unwrap();
        let expires = u64::from_str_radix(ex.trim_start_matches("ex="), 16).unwrap();
        assert_eq!(expires % FileLinks::ROUNDING, 0);
        let path = FileLinks::signed_path(id(1), id(2), id(3), "a b.png");
        assert_eq!(signer().verify(&["GET", &path], expires, hm), Ok(()));
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
