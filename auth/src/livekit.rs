//! The media server (LiveKit), as auth speaks to it: join tokens for clients, its room service
//! (take someone out of a room, change what they may publish or hear) and its webhooks.
//!
//! - Access tokens are the JWTs LiveKit documents: HS256 under the API secret, `iss` the API key,
//!   `sub` the participant's identity, `nbf`/`exp`, and the grants under `video` (camelCase).
//! - The room service is Twirp: `POST /twirp/livekit.RoomService/<Method>` with the request as
//!   JSON and a token carrying `roomAdmin` for that room as the bearer.
//! - A webhook is a POST whose `Authorization` is a token signed the same way, whose `sha256`
//!   claim is the body's SHA-256 in base64: a body that does not match, or a token signed with
//!   another secret, is refused.
//!
//! Signed with jsonwebtoken rather than LiveKit's `livekit-api` crate: that crate brings
//! livekit-protocol's generated protobuf code (about 4.6 MB of Rust), a second major version of
//! jsonwebtoken and an OpenAPI client generator into every build of auth, for four calls
//! (deploy/smoke tests the same calls against the stack's LiveKit).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use kit::config::Secret;
use proto::api::voice::PublishGrants;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a join token may be used to connect (LiveKit refreshes a connected participant's
/// token itself).
pub const JOIN_TOKEN_TTL: Duration = Duration::from_secs(5 * 60);

/// Why a call to LiveKit failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveKitError {
    #[error("LiveKit answered {status}: {code}")]
    Refused { status: u16, code: String },
    #[error("LiveKit could not be reached: {0}")]
    Http(#[from] reqwest::Error),
    #[error("could not sign a LiveKit token: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
}

/// Where LiveKit is and the key Natter signs with.
#[derive(Clone)]
pub struct LiveKit {
    /// LiveKit's HTTP origin as auth reaches it (`http://127.0.0.1:7880`).
    api_url: String,
    /// LiveKit's URL as clients reach it (`wss://voice.example.com`): VOICE_SERVER_UPDATE's
    /// `endpoint`.
    public_url: String,
    api_key: String,
    api_secret: Secret<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for LiveKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveKit")
            .field("api_url", &self.api_url)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// LiveKit's `video` claim: the grants Natter uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VideoGrants {
    #[serde(skip_serializing_if = "is_false")]
    pub room_admin: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub room_join: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub room: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_publish: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_subscribe: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_publish_data: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_publish_sources: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_update_own_metadata: Option<bool>,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// The claims of a LiveKit token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    #[serde(default)]
    pub sub: String,
    pub nbf: u64,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    #[serde(default)]
    pub video: VideoGrants,
}

/// The claims of a webhook's token.
#[derive(Debug, Deserialize)]
struct WebhookClaims {
    sha256: String,
}

/// A webhook's event (the fields Natter reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WebhookEvent {
    /// `participant_joined`, `participant_left`, `room_finished`, ...
    pub event: String,
    pub room: Option<WebhookRoom>,
    pub participant: Option<WebhookParticipant>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WebhookRoom {
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WebhookParticipant {
    pub identity: String,
    /// The gateway connection that joined (Natter puts it in the token's metadata).
    pub metadata: String,
}

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("the webhook's token is missing or not signed with the API key")]
    BadToken,
    #[error("the webhook's body is not the one its token signs")]
    BadDigest,
    #[error("the webhook's body is not LiveKit's event")]
    BadBody,
}

/// What a participant may do, as the room service's `ParticipantPermission`.
#[derive(Debug, Serialize)]
struct ParticipantPermission {
    can_subscribe: bool,
    can_publish: bool,
    can_publish_data: bool,
    can_publish_sources: Vec<&'static str>,
}

#[derive(Serialize)]
struct UpdateParticipant<'a> {
    room: &'a str,
    identity: &'a str,
    permission: ParticipantPermission,
}

#[derive(Serialize)]
struct RoomParticipant<'a> {
    room: &'a str,
    identity: &'a str,
}

#[derive(Deserialize)]
struct Empty {}

#[derive(Serialize)]
struct ListParticipants<'a> {
    room: &'a str,
}

#[derive(Deserialize)]
struct ListParticipantsResponse {
    #[serde(default)]
    participants: Vec<Participant>,
}

/// Someone in a room, as the room service lists them (the fields Natter reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Participant {
    pub identity: String,
    pub metadata: String,
    pub permission: Permission,
}

/// What a participant may do, as the room service lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Permission {
    pub can_subscribe: bool,
    pub can_publish: bool,
    /// `MICROPHONE`, `CAMERA`, `SCREEN_SHARE`, `SCREEN_SHARE_AUDIO`.
    pub can_publish_sources: Vec<String>,
}

#[derive(Deserialize)]
struct TwirpError {
    #[serde(default)]
    code: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl LiveKit {
    /// # Errors
    /// When reqwest cannot build its client.
    pub fn new(
        api_url: &str,
        public_url: &str,
        api_key: String,
        api_secret: Secret<String>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            api_url: api_url.trim_end_matches('/').to_owned(),
            public_url: public_url.to_owned(),
            api_key,
            api_secret,
            http,
        })
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    fn sign(&self, identity: &str, metadata: &str, ttl: Duration, video: VideoGrants) -> String {
        let now = now();
        let claims = Claims {
            iss: self.api_key.clone(),
            sub: identity.to_owned(),
            nbf: now,
            exp: now + ttl.as_secs(),
            metadata: metadata.to_owned(),
            video,
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(self.api_secret.expose().as_bytes()),
        )
        .expect("HS256 claims always encode")
    }

    /// A token to join `room` as `identity`, publishing only what `grants` allow and hearing
    /// nothing when `deaf`. `session` (the gateway connection) rides in its metadata, so the
    /// webhooks name it.
    pub fn join_token(
        &self,
        identity: &str,
        session: &str,
        room: &str,
        grants: PublishGrants,
        deaf: bool,
    ) -> String {
        let sources: Vec<String> = grants.sources().into_iter().map(str::to_owned).collect();
        let video = VideoGrants {
            room_join: true,
            room: room.to_owned(),
            can_publish: Some(!sources.is_empty()),
            can_subscribe: Some(!deaf),
            can_publish_data: Some(false),
            can_publish_sources: Some(sources),
            can_update_own_metadata: Some(false),
            ..VideoGrants::default()
        };
        self.sign(identity, session, JOIN_TOKEN_TTL, video)
    }

    /// Takes `identity` out of `room` (nothing when they are not in it).
    ///
    /// # Errors
    /// When LiveKit cannot be reached or refuses.
    pub async fn remove(&self, room: &str, identity: &str) -> Result<(), LiveKitError> {
        let request = RoomParticipant { room, identity };
        match self
            .call::<_, Empty>(room, "RemoveParticipant", &request)
            .await
        {
            Err(LiveKitError::Refused { code, .. }) if code == "not_found" => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Who is in `room` (nobody when there is no such room).
    ///
    /// # Errors
    /// As [`LiveKit::remove`].
    pub async fn participants(&self, room: &str) -> Result<Vec<Participant>, LiveKitError> {
        match self
            .call::<_, ListParticipantsResponse>(
                room,
                "ListParticipants",
                &ListParticipants { room },
            )
            .await
        {
            Ok(listed) => Ok(listed.participants),
            Err(LiveKitError::Refused { code, .. }) if code == "not_found" => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Changes what `identity` may publish and whether they hear anything, at once (a server
    /// mute or deafen): tracks they may no longer publish are unpublished by LiveKit.
    ///
    /// # Errors
    /// As [`LiveKit::remove`].
    pub async fn restrict(
        &self,
        room: &str,
        identity: &str,
        grants: PublishGrants,
        deaf: bool,
    ) -> Result<(), LiveKitError> {
        let sources = grants.sources();
        let request = UpdateParticipant {
            room,
            identity,
            permission: ParticipantPermission {
                can_subscribe: !deaf,
                can_publish: !sources.is_empty(),
                can_publish_data: false,
                can_publish_sources: sources
                    .into_iter()
                    .map(|s| match s {
                        "microphone" => "MICROPHONE",
                        "camera" => "CAMERA",
                        "screen_share" => "SCREEN_SHARE",
                        _ => "SCREEN_SHARE_AUDIO",
                    })
                    .collect(),
            },
        };
        match self
            .call::<_, serde_json::Value>(room, "UpdateParticipant", &request)
            .await
        {
            Err(LiveKitError::Refused { code, .. }) if code == "not_found" => Ok(()),
            other => other.map(|_| ()),
        }
    }

    async fn call<Q: Serialize, A: serde::de::DeserializeOwned>(
        &self,
        room: &str,
        method: &str,
        request: &Q,
    ) -> Result<A, LiveKitError> {
        let admin = VideoGrants {
            room_admin: true,
            room: room.to_owned(),
            ..VideoGrants::default()
        };
        let token = self.sign("natter", "", Duration::from_secs(60), admin);
        let response = self
            .http
            .post(format!(
                "{}/twirp/livekit.RoomService/{method}",
                self.api_url
            ))
            .bearer_auth(token)
            .json(request)
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        let body = response.bytes().await.unwrap_or_default();
        let code = serde_json::from_slice::<TwirpError>(&body)
            .map(|e| e.code)
            .unwrap_or_default();
        Err(LiveKitError::Refused {
            status: status.as_u16(),
            code,
        })
    }

    /// A webhook's event, once its token is checked: signed with the API secret under the API
    /// key, and naming this very body's digest.
    ///
    /// # Errors
    /// [`WebhookError`] says which check failed.
    pub fn webhook(
        &self,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<WebhookEvent, WebhookError> {
        let token = authorization
            .map(|a| a.strip_prefix("Bearer ").unwrap_or(a).trim())
            .filter(|t| !t.is_empty())
            .ok_or(WebhookError::BadToken)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.api_key]);
        validation.set_required_spec_claims(&["iss", "exp"]);
        let claims = jsonwebtoken::decode::<WebhookClaims>(
            token,
            &DecodingKey::from_secret(self.api_secret.expose().as_bytes()),
            &validation,
        )
        .map_err(|_| WebhookError::BadToken)?
        .claims;
        let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body));
        if claims.sha256 != digest {
            return Err(WebhookError::BadDigest);
        }
        serde_json::from_slice(body).map_err(|_| WebhookError::BadBody)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn livekit(secret: &str) -> LiveKit {
        LiveKit::new(
            "http://127.0.0.1:1",
            "ws://127.0.0.1:1",
            "APIkey".to_owned(),
            Secret::new(secret.to_owned()),
        )
        .unwrap()
    }

    fn decode(livekit: &LiveKit, token: &str) -> Claims {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&["APIkey"]);
        jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(livekit.api_secret.expose().as_bytes()),
            &validation,
        )
        .unwrap()
        .claims
    }

    #[test]
    fn a_join_token_grants_only_the_sources_allowed() {
        let lk = livekit("a-secret-of-some-length-for-hs256");
        let listener = decode(
            &lk,
            &lk.join_token("7", "s1", "42", PublishGrants::default(), false),
        );
        assert_eq!(listener.sub, "7");
        assert_eq!(listener.metadata, "s1");
        assert_eq!(listener.video.room, "42");
        assert!(listener.video.room_join);
        assert_eq!(listener.video.can_publish, Some(false));
        assert_eq!(listener.video.can_subscribe, Some(true));
        assert_eq!(listener.video.can_publish_sources, Some(vec![]));
        assert_eq!(listener.exp - listener.nbf, JOIN_TOKEN_TTL.as_secs());

        let speaker = decode(
            &lk,
            &lk.join_token(
                "7",
                "s1",
                "42",
                PublishGrants {
                    audio: true,
                    video: false,
                },
                true,
            ),
        );
        assert_eq!(speaker.video.can_publish, Some(true));
        assert_eq!(speaker.video.can_subscribe, Some(false));
        assert_eq!(
            speaker.video.can_publish_sources,
            Some(vec!["microphone".to_owned()])
        );
    }

    fn webhook_token(secret: &str, body: &[u8]) -> String {
        #[derive(Serialize)]
        struct Hook {
            iss: &'static str,
            exp: u64,
            sha256: String,
        }
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Hook {
                iss: "APIkey",
                exp: now() + 60,
                sha256: base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body)),
            },
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn a_webhook_is_read_only_when_signed_with_the_secret_for_its_body() {
        let secret = "a-secret-of-some-length-for-hs256";
        let lk = livekit(secret);
        let body = br#"{"event":"participant_left","room":{"name":"42"},"participant":{"identity":"7","metadata":"s1"}}"#;
        let event = lk
            .webhook(Some(&webhook_token(secret, body)), body)
            .unwrap();
        assert_eq!(event.event, "participant_left");
        assert_eq!(event.room.unwrap().name, "42");
        assert_eq!(event.participant.unwrap().metadata, "s1");

        assert_eq!(
            lk.webhook(Some(&webhook_token("another-secret", body)), body)
                .unwrap_err(),
            WebhookError::BadToken
        );
        assert_eq!(
            lk.webhook(Some(&webhook_token(secret, b"{}")), body)
                .unwrap_err(),
            WebhookError::BadDigest
        );
        assert_eq!(lk.webhook(None, body).unwrap_err(), WebhookError::BadToken);
    }
}
