//! LiveKit's server API without LiveKit's SDK, small enough to lift into a voice service.
//!
//! - Access tokens are the JWTs LiveKit documents: HS256 under the API secret, `iss` the API key,
//!   `sub` the participant's identity, `nbf`/`exp` the validity, and the permissions under `video`
//!   (camelCase names, as in LiveKit's `VideoGrant`).
//! - The room service is Twirp: each call is a `POST /twirp/livekit.RoomService/<Method>` of the
//!   request message as JSON, with the token as a bearer. Twirp answers with the proto field
//!   names (snake_case) and every field present; a failure is `{"code": ..., "msg": ...}`.
//!
//! LiveKit's SDK crate (`livekit-api`) would bring protobuf code generation (`prost-build`,
//! `pbjson-build`) and a generated client into the build for these few calls.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Secret;

/// Why a LiveKit call failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveKitError {
    /// LiveKit answered with an error: `code` is Twirp's (`unauthenticated`, `permission_denied`,
    /// `not_found`, ...) or empty when the answer was not a Twirp error (LiveKit's token check
    /// answers 401 in plain text, echoing the token, so that text is not kept).
    #[error("LiveKit answered {status} {code}: {msg}")]
    Refused {
        status: StatusCode,
        code: String,
        msg: String,
    },
    #[error("LiveKit could not be reached: {0}")]
    Http(#[from] reqwest::Error),
    #[error("could not sign a LiveKit token: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
}

/// What a token allows, as LiveKit's `video` claim. Unset fields are left out of the token, and
/// LiveKit reads a missing `canPublish`/`canSubscribe`/`canPublishData` as allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VideoGrants {
    /// Create rooms (room service).
    #[serde(skip_serializing_if = "is_false")]
    pub room_create: bool,
    /// List rooms (room service).
    #[serde(skip_serializing_if = "is_false")]
    pub room_list: bool,
    /// Start recordings.
    #[serde(skip_serializing_if = "is_false")]
    pub room_record: bool,
    /// Administer [`VideoGrants::room`], or every room when it is empty (room service).
    #[serde(skip_serializing_if = "is_false")]
    pub room_admin: bool,
    /// Join [`VideoGrants::room`] as a participant.
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
    /// Track sources (`camera`, `microphone`, `screen_share`, `screen_share_audio`) the
    /// participant may publish; when set, it overrides `can_publish`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub can_publish_sources: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_update_own_metadata: Option<bool>,
    /// Invisible to the room's other participants.
    #[serde(skip_serializing_if = "is_false")]
    pub hidden: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// The claims of a LiveKit access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The API key; LiveKit picks the secret to verify with by it.
    pub iss: String,
    /// The participant's identity.
    pub sub: String,
    pub nbf: u64,
    pub exp: u64,
    /// The participant's display name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    pub video: VideoGrants,
}

/// A token to be signed: who it is for, what it allows and for how long.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub identity: String,
    pub name: String,
    pub metadata: String,
    pub ttl: Duration,
    pub video: VideoGrants,
}

impl AccessToken {
    pub fn new(identity: impl Into<String>, ttl: Duration, video: VideoGrants) -> Self {
        Self {
            identity: identity.into(),
            name: String::new(),
            metadata: String::new(),
            ttl,
            video,
        }
    }

    /// The claims this token carries when signed at `now` (seconds since the epoch) by `api_key`.
    pub fn claims(&self, api_key: &str, now: u64) -> Claims {
        Claims {
            iss: api_key.to_owned(),
            sub: self.identity.clone(),
            nbf: now,
            exp: now + self.ttl.as_secs(),
            name: self.name.clone(),
            metadata: self.metadata.clone(),
            video: self.video.clone(),
        }
    }

    /// The JWT, valid from now for [`AccessToken::ttl`].
    ///
    /// # Errors
    /// When the claims cannot be encoded (they always can).
    pub fn sign(&self, api_key: &str, api_secret: &Secret) -> Result<String, LiveKitError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &self.claims(api_key, now),
            &EncodingKey::from_secret(api_secret.expose().as_bytes()),
        )?)
    }
}

/// A room as the room service describes it (the fields Natter reads; Twirp sends more).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Room {
    /// The server's id for this room (`RM_...`).
    pub sid: String,
    pub name: String,
    pub empty_timeout: u32,
    pub departure_timeout: u32,
    pub max_participants: u32,
    pub num_participants: u32,
    pub num_publishers: u32,
    pub metadata: String,
}

/// `CreateRoom`'s request. Zero means the server's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateRoom {
    pub name: String,
    /// Seconds to keep the room while nobody has joined.
    pub empty_timeout: u32,
    /// Seconds to keep the room after the last participant left.
    pub departure_timeout: u32,
    pub max_participants: u32,
    pub metadata: String,
}

#[derive(Serialize)]
struct ListRooms<'a> {
    names: &'a [String],
}

#[derive(Deserialize)]
struct ListRoomsResponse {
    #[serde(default)]
    rooms: Vec<Room>,
}

#[derive(Serialize)]
struct DeleteRoom<'a> {
    room: &'a str,
}

#[derive(Deserialize)]
struct Empty {}

/// Twirp's error body.
#[derive(Deserialize)]
struct TwirpError {
    code: String,
    #[serde(default)]
    msg: String,
}

/// LiveKit's room service, called with one token.
#[derive(Clone)]
pub struct RoomService {
    /// `http://host:port/twirp/livekit.RoomService/`
    base: String,
    token: Secret,
    http: reqwest::Client,
}

impl std::fmt::Debug for RoomService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomService")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl RoomService {
    /// The room service at `http_url` (LiveKit's HTTP origin, `http://host:port`), called with
    /// `token`, which must carry the grants each call needs (`roomCreate`, `roomList`,
    /// `roomAdmin`).
    ///
    /// # Errors
    /// When reqwest cannot build its client.
    pub fn new(http_url: &str, token: String) -> Result<Self, LiveKitError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            base: format!(
                "{}/twirp/livekit.RoomService/",
                http_url.trim_end_matches('/')
            ),
            token: Secret::new(token),
            http,
        })
    }

    /// Creates the room, or returns it when it exists.
    ///
    /// # Errors
    /// [`LiveKitError::Refused`] when LiveKit refuses (a bad token, a missing grant).
    pub async fn create_room(&self, request: &CreateRoom) -> Result<Room, LiveKitError> {
        self.call("CreateRoom", request).await
    }

    /// The rooms with these names that exist (every room when `names` is empty).
    ///
    /// # Errors
    /// As [`RoomService::create_room`].
    pub async fn list_rooms(&self, names: &[String]) -> Result<Vec<Room>, LiveKitError> {
        let response: ListRoomsResponse = self.call("ListRooms", &ListRooms { names }).await?;
        Ok(response.rooms)
    }

    /// Closes the room, disconnecting everyone in it.
    ///
    /// # Errors
    /// As [`RoomService::create_room`]; `not_found` when there is no such room.
    pub async fn delete_room(&self, name: &str) -> Result<(), LiveKitError> {
        let _: Empty = self.call("DeleteRoom", &DeleteRoom { room: name }).await?;
        Ok(())
    }

    async fn call<Q: Serialize + ?Sized, A: DeserializeOwned>(
        &self,
        method: &str,
        request: &Q,
    ) -> Result<A, LiveKitError> {
        let response = self
            .http
            .post(format!("{}{method}", self.base))
            .bearer_auth(self.token.expose())
            .json(request)
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        let body = response.bytes().await.unwrap_or_default();
        let (code, msg) = match serde_json::from_slice::<TwirpError>(&body) {
            Ok(error) => (error.code, error.msg),
            Err(_) => (String::new(), String::new()),
        };
        Err(LiveKitError::Refused { status, code, msg })
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    #[test]
    fn a_token_carries_livekits_claims_under_their_documented_names() {
        let token = AccessToken {
            name: "Alice".to_owned(),
            ..AccessToken::new(
                "user-1",
                Duration::from_secs(600),
                VideoGrants {
                    room_join: true,
                    room: "voice-7".to_owned(),
                    can_publish: Some(false),
                    ..VideoGrants::default()
                },
            )
        };
        let json = serde_json::to_value(token.claims("APIkey", 1_000)).expect("claims encode");
        assert_eq!(
            json,
            serde_json::json!({
                "iss": "APIkey",
                "sub": "user-1",
                "nbf": 1_000,
                "exp": 1_600,
                "name": "Alice",
                "video": {"roomJoin": true, "room": "voice-7", "canPublish": false},
            })
        );
    }

    #[test]
    fn a_signed_token_verifies_with_the_api_secret_only() {
        let secret = Secret::new("an-api-secret-of-thirty-two-bytes");
        let grants = VideoGrants {
            room_create: true,
            room_list: true,
            ..VideoGrants::default()
        };
        let jwt = AccessToken::new("natter", Duration::from_secs(60), grants.clone())
            .sign("APIkey", &secret)
            .expect("sign");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&["APIkey"]);

        let claims = jsonwebtoken::decode::<Claims>(
            &jwt,
            &DecodingKey::from_secret(secret.expose().as_bytes()),
            &validation,
        )
        .expect("verifies with the secret")
        .claims;
        assert_eq!((claims.sub.as_str(), &claims.video), ("natter", &grants));
        assert_eq!(claims.exp - claims.nbf, 60);

        let other = jsonwebtoken::decode::<Claims>(
            &jwt,
            &DecodingKey::from_secret(b"another-secret"),
            &validation,
        );
        assert!(other.is_err(), "another secret does not verify it");
    }
}
