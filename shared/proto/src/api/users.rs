//! Profiles: `/api/v1/users/*`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{FieldErrors, Invalid};
use super::names::{Bio, DisplayName};
use crate::Snowflake;

/// The status a user sets for themselves, as shown. Others see `invisible` as `offline`; only the
/// user sees their own `invisible`. `offline` cannot be set.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Status {
    Online,
    Idle,
    /// Do not disturb.
    Dnd,
    Invisible,
    Offline,
}

impl Status {
    /// Parses a status a user may set: `online`, `idle`, `dnd` or `invisible`.
    pub fn parse_settable(s: &str) -> Result<Self, Invalid> {
        match s.parse() {
            Ok(Self::Offline) | Err(_) => Err(Invalid::new(format!(
                "must be one of online, idle, dnd, invisible (not {s:?})"
            ))),
            Ok(status) => Ok(status),
        }
    }

    /// The name as stored and sent.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// How this status looks to someone else.
    pub fn seen_by_others(self) -> Self {
        match self {
            Self::Invisible => Self::Offline,
            other => other,
        }
    }
}

/// A user's profile. Password hashes and sessions never appear in any body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Snowflake,
    /// Unique, lowercase.
    #[schema(example = "alice")]
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    pub status: Status,
}

impl User {
    /// The profile as someone other than its owner sees it.
    pub fn seen_by_others(mut self) -> Self {
        self.status = self.status.seen_by_others();
        self
    }
}

/// Someone's profile card (`GET /api/v1/users/{id}/profile`, Discord's route and shape): the
/// profile, and what the caller shares with them. Only places the caller is in are named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserProfile {
    pub user: User,
    /// The servers both are in, by id, with the user's nickname there.
    pub mutual_guilds: Vec<MutualGuild>,
    /// Natter's addition: the group channels both are in, by id (DMs are not listed: a DM is
    /// only ever with this person).
    pub mutual_channels: Vec<MutualChannel>,
}

/// A server both people are in (Discord's `mutual_guilds` item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MutualGuild {
    pub id: Snowflake,
    /// The user's nickname in it, if they set one.
    pub nick: Option<String>,
}

/// A group channel both people are in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MutualChannel {
    pub id: Snowflake,
    pub name: Option<String>,
}

/// At most this many mutual servers and channels are listed (each list), oldest first.
pub const MAX_MUTUALS: i64 = 100;

/// An avatar image URL: `http` or `https`, with a host, at most 2048 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AvatarUrl(String);

impl AvatarUrl {
    pub const MAX: usize = 2048;

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.len() > Self::MAX {
            return Err(Invalid::new(format!(
                "may be at most {} characters long",
                Self::MAX
            )));
        }
        let url = url::Url::parse(s).map_err(|e| Invalid::new(format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Invalid::new(format!(
                "must be an http or https URL, not {}:",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Invalid::new("must name a host"));
        }
        let normalised = url.to_string();
        if normalised.len() > Self::MAX {
            return Err(Invalid::new(format!(
                "may be at most {} characters long",
                Self::MAX
            )));
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// `PATCH /api/v1/users/@me`: leave a field out to keep it, send `null` to clear it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    /// 1 to 32 characters: any script or emoji; one script per word (no `Аlice` with a Cyrillic
    /// `А`); nothing invisible, blank (U+2800, U+3164, U+FFFC), private-use or direction-changing;
    /// at most five combining marks on a character. Stored trimmed and composed (NFC).
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<DisplayName>)]
    pub display_name: Option<Option<String>>,
    /// An http or https URL of at most 2048 characters.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<AvatarUrl>)]
    pub avatar_url: Option<Option<String>>,
    /// 1 to 190 characters: must show something; no control characters but line breaks, no bidi
    /// overrides or isolates, at most five combining marks on a character. Stored trimmed and
    /// composed (NFC).
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<Bio>)]
    pub bio: Option<Option<String>>,
    /// `online`, `idle`, `dnd` or `invisible`.
    #[serde(default)]
    #[schema(value_type = Option<super::schema::SettableStatus>)]
    pub status: Option<String>,
}

/// A checked profile update: `None` keeps a field, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub display_name: Option<Option<DisplayName>>,
    pub avatar_url: Option<Option<AvatarUrl>>,
    pub bio: Option<Option<Bio>>,
    pub status: Option<Status>,
}

fn parse_clearable<T>(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<&Option<String>>,
    parse: impl Fn(&str) -> Result<T, Invalid>,
) -> Option<Option<T>> {
    match value {
        None => None,
        Some(None) => Some(None),
        Some(Some(s)) => errors.check(field, parse(s)).map(Some),
    }
}

impl UpdateProfileRequest {
    pub fn parse(&self) -> Result<ProfileChanges, FieldErrors> {
        let mut errors = FieldErrors::new();
        let changes = ProfileChanges {
            display_name: parse_clearable(
                &mut errors,
                "display_name",
                self.display_name.as_ref(),
                DisplayName::parse,
            ),
            avatar_url: parse_clearable(
                &mut errors,
                "avatar_url",
                self.avatar_url.as_ref(),
                AvatarUrl::parse,
            ),
            bio: parse_clearable(&mut errors, "bio", self.bio.as_ref(), Bio::parse),
            status: self
                .status
                .as_deref()
                .and_then(|s| errors.check("status", Status::parse_settable(s))),
        };
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_avatar_url_must_be_http_or_https() {
        assert!(AvatarUrl::parse("https://cdn.example.com/a.png").is_ok());
        assert!(AvatarUrl::parse("http://example.com/a.png").is_ok());
        for bad in [
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "file:///etc/passwd",
            "ftp://example.com/a.png",
            "not a url",
            "https://",
        ] {
            assert!(AvatarUrl::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn an_avatar_url_longer_than_2048_characters_is_refused() {
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(AvatarUrl::parse(&long).is_err());
    }

    #[test]
    fn invisible_is_shown_to_others_as_offline() {
        assert_eq!(Status::Invisible.seen_by_others(), Status::Offline);
        assert_eq!(Status::Dnd.seen_by_others(), Status::Dnd);
    }

    #[test]
    fn offline_cannot_be_set_by_hand() {
        assert!(Status::parse_settable("offline").is_err());
        assert_eq!(Status::parse_settable("dnd"), Ok(Status::Dnd));
    }

    #[test]
    fn a_profile_update_tells_absent_from_null() {
        let update: UpdateProfileRequest =
            serde_json::from_str(r#"{"bio": null, "display_name": "Al"}"#).unwrap();
        let changes = update.parse().unwrap();
        assert_eq!(changes.bio, Some(None));
        assert!(changes.avatar_url.is_none());
        assert_eq!(changes.display_name.unwrap().unwrap().as_str(), "Al");
    }
}
