//! Invites to servers: `POST /api/v1/channels/{id}/invites`, `GET|POST /api/v1/guilds/{id}/invites`
//! and `GET|POST|DELETE /api/v1/invites/{code}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::channels::id_field;
use super::error::FieldErrors;
use crate::Snowflake;

/// An invite, as those who manage the server see it (and INVITE_CREATE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Invite {
    pub code: String,
    pub guild_id: Snowflake,
    /// Where the invite lands its user, if it names a channel.
    pub channel_id: Option<Snowflake>,
    pub inviter_id: Option<Snowflake>,
    /// How many have joined by it.
    pub uses: u32,
    /// How many may (0: any number).
    pub max_uses: u32,
    /// Seconds it lasts from its creation (0: for ever).
    pub max_age: u32,
    /// Unix milliseconds.
    pub created_at: u64,
    /// Unix milliseconds; `null` for an invite that never expires.
    pub expires_at: Option<u64>,
}

/// What anyone with the code may see before joining (`GET /api/v1/invites/{code}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvitePreview {
    pub code: String,
    pub guild: InviteGuild,
    pub channel_id: Option<Snowflake>,
    pub expires_at: Option<u64>,
}

/// The server an invite leads to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InviteGuild {
    pub id: Snowflake,
    pub name: String,
    pub icon: Option<String>,
    pub member_count: u32,
}

/// `POST /api/v1/channels/{id}/invites` and `POST /api/v1/guilds/{id}/invites`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// Seconds it lasts, 0 (for ever) to 604800 (a week); a day by default.
    #[serde(default)]
    pub max_age: Option<u32>,
    /// How many may join by it, 0 (any number) to 100; any number by default.
    #[serde(default)]
    pub max_uses: Option<u32>,
    /// `POST /api/v1/guilds/{id}/invites` only: the channel it lands its users in.
    #[serde(default)]
    pub channel_id: Option<String>,
}

/// A checked invite request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvite {
    pub max_age: u32,
    pub max_uses: u32,
    pub channel_id: Option<Snowflake>,
}

/// The longest an invite may last: a week.
pub const MAX_INVITE_AGE: u32 = 604_800;
/// The most uses an invite may be limited to.
pub const MAX_INVITE_USES: u32 = 100;
/// How long an invite lasts when the request does not say: a day.
pub const DEFAULT_INVITE_AGE: u32 = 86_400;

impl CreateInviteRequest {
    pub fn parse(&self) -> Result<NewInvite, FieldErrors> {
        let mut errors = FieldErrors::new();
        let max_age = self.max_age.unwrap_or(DEFAULT_INVITE_AGE);
        if max_age > MAX_INVITE_AGE {
            errors.add("max_age", format!("must be 0 to {MAX_INVITE_AGE} seconds"));
        }
        let max_uses = self.max_uses.unwrap_or(0);
        if max_uses > MAX_INVITE_USES {
            errors.add("max_uses", format!("must be 0 to {MAX_INVITE_USES}"));
        }
        let channel_id = self
            .channel_id
            .as_deref()
            .and_then(|raw| errors.check("channel_id", id_field(raw)));
        if errors.is_empty() {
            Ok(NewInvite {
                max_age,
                max_uses,
                channel_id,
            })
        } else {
            Err(errors)
        }
    }
}

/// An invite code: 10 characters of base62 (a-z, A-Z, 0-9) from the operating system's CSPRNG,
/// about 59.5 bits, so codes cannot be guessed. Codes are case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InviteCode(String);

impl InviteCode {
    /// The length of every code made.
    pub const LEN: usize = 10;
    const ALPHABET: &'static [u8; 62] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    /// A new code from `random` bytes (one per character, at least [`Self::LEN`] of them): each
    /// byte below 248 (62 × 4) picks a character without bias; the rest are skipped. `None` when
    /// too many were skipped (ask again with fresh bytes).
    pub fn from_random(random: &[u8]) -> Option<Self> {
        let code: String = random
            .iter()
            .filter(|b| **b < 248)
            .take(Self::LEN)
            .map(|b| char::from(Self::ALPHABET[usize::from(*b % 62)]))
            .collect();
        (code.len() == Self::LEN).then_some(Self(code))
    }

    /// A code as it comes in a path: 1 to 32 letters and digits (older or custom codes may have
    /// other lengths); anything else names no invite.
    pub fn parse(raw: &str) -> Option<Self> {
        ((1..=32).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invite_lasts_a_day_by_default_and_at_most_a_week() {
        let default = CreateInviteRequest::default().parse().unwrap();
        assert_eq!((default.max_age, default.max_uses), (86_400, 0));
        let bad = CreateInviteRequest {
            max_age: Some(MAX_INVITE_AGE + 1),
            max_uses: Some(101),
            channel_id: Some("x".into()),
        };
        let fields = bad.parse().unwrap_err().into_map();
        assert_eq!(fields.len(), 3, "{fields:?}");
    }

    #[test]
    fn a_code_is_ten_base62_characters_without_bias() {
        let bytes: Vec<u8> = (0..=255).collect();
        let code = InviteCode::from_random(&bytes).unwrap();
        assert_eq!(code.as_str().len(), InviteCode::LEN);
        assert!(code.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(
            InviteCode::from_random(&[250; 40]),
            None,
            "biased bytes are skipped"
        );
        assert!(InviteCode::parse("abc DEF").is_none());
        assert!(InviteCode::parse("../x").is_none());
        assert!(InviteCode::parse("aB3dE5gH9k").is_some());
    }
}
