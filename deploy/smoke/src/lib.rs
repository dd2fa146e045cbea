//! Where the stack's media and voice engines answer, as `deploy/stack.sh up` wrote them to
//! `.natter/env`: SeaweedFS (S3), LiveKit and coturn; and the small clients Natter uses with them:
//! [`s3`] (requests presigned with `rusty-s3`, sent with reqwest) and [`livekit`] (access tokens as
//! HS256 JWTs, the room service over Twirp's JSON). The tests in `tests/engines/` prove each engine
//! works with those clients and with the TURN REST credential scheme, so the media and voice work
//! starts from a stack known to be good and clients it can lift.
//!
//! Values come from the environment first and `.natter/env` second, as in `shared::testing`.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

pub mod livekit;
pub mod s3;

/// A credential that never prints: `{:?}` shows `***`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// SeaweedFS's S3 gateway and the identity and bucket `deploy/stack.sh` made for Natter.
#[derive(Debug, Clone)]
pub struct S3 {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub bucket: String,
    pub region: String,
}

/// The LiveKit server and the API key pair its tokens are signed with.
#[derive(Debug, Clone)]
pub struct LiveKit {
    /// `ws://127.0.0.1:PORT`: what clients connect to.
    pub url: String,
    pub api_key: String,
    pub api_secret: Secret,
    /// The Redis LiveKit keeps its rooms and nodes in (`redis://…/DB`).
    pub redis_url: String,
}

impl LiveKit {
    /// The same server's HTTP origin, where its Twirp room API answers.
    pub fn http_url(&self) -> String {
        match self.url.strip_prefix("ws") {
            Some(rest) => format!("http{rest}"),
            None => self.url.clone(),
        }
    }
}

/// coturn, taking time-limited credentials derived from a shared secret (TURN REST scheme).
#[derive(Debug, Clone)]
pub struct Turn {
    /// `turn:127.0.0.1:PORT`
    pub url: String,
    pub secret: Secret,
}

impl Turn {
    /// The host and port of [`Turn::url`].
    pub fn host_port(&self) -> (String, u16) {
        let address = self
            .url
            .split_once(':')
            .map_or(self.url.as_str(), |(_, rest)| rest)
            .split('?')
            .next()
            .unwrap_or_default();
        let (host, port) = address
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("NATTER_TURN_URL {:?} has no port", self.url));
        let port = port
            .parse()
            .unwrap_or_else(|_| panic!("NATTER_TURN_URL {:?} has a bad port", self.url));
        (host.to_owned(), port)
    }
}

#[derive(Debug, Clone)]
pub struct Engines {
    pub s3: S3,
    pub livekit: LiveKit,
    pub turn: Turn,
}

impl Engines {
    /// # Panics
    /// When a value is missing: the message says how to start the stack.
    pub fn get() -> Self {
        let file = env_file();
        let from_file: HashMap<String, String> = std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .or_else(|| from_file.get(name).cloned())
                .unwrap_or_else(|| {
                    panic!(
                        "{name} is not set and {} has no value for it: start the stack with \
                         `./natter up --stack` (or run the tests with `./natter test`)",
                        file.display()
                    )
                })
        };
        Self {
            s3: S3 {
                endpoint: var("NATTER_S3_ENDPOINT"),
                access_key_id: var("NATTER_S3_ACCESS_KEY_ID"),
                secret_access_key: Secret(var("NATTER_S3_SECRET_ACCESS_KEY")),
                bucket: var("NATTER_S3_BUCKET"),
                region: var("NATTER_S3_REGION"),
            },
            livekit: LiveKit {
                url: var("NATTER_LIVEKIT_URL"),
                api_key: var("NATTER_LIVEKIT_API_KEY"),
                api_secret: Secret(var("NATTER_LIVEKIT_API_SECRET")),
                redis_url: var("NATTER_LIVEKIT_REDIS_URL"),
            },
            turn: Turn {
                url: var("NATTER_TURN_URL"),
                secret: Secret(var("NATTER_TURN_SECRET")),
            },
        }
    }
}

/// `.natter/env` in the checkout (this crate lives in `deploy/smoke/`).
fn env_file() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("../..")
        .join(".natter")
        .join("env")
}

/// A name no other run uses (lowercase letters, digits and `-`: valid as an S3 key part and a
/// LiveKit room name).
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "smoke-{tag}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(url: &str) -> Turn {
        Turn {
            url: url.to_owned(),
            secret: Secret("s".to_owned()),
        }
    }

    #[test]
    fn a_turn_url_gives_its_host_and_port() {
        assert_eq!(
            turn("turn:127.0.0.1:13478").host_port(),
            ("127.0.0.1".to_owned(), 13478)
        );
        assert_eq!(
            turn("turn:127.0.0.1:13478?transport=udp").host_port(),
            ("127.0.0.1".to_owned(), 13478)
        );
    }

    #[test]
    fn the_livekit_http_origin_follows_its_websocket_url() {
        let livekit = LiveKit {
            url: "ws://127.0.0.1:17880".to_owned(),
            api_key: "k".to_owned(),
            api_secret: Secret("s".to_owned()),
            redis_url: "redis://127.0.0.1:16379/1".to_owned(),
        };
        assert_eq!(livekit.http_url(), "http://127.0.0.1:17880");
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret("hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), "***");
    }
}
