//! One error body for every REST answer that is not a success, with a stable machine code.
//!
//! The table of codes and their HTTP statuses is [`ErrorCode::status`]: clients switch on `code`,
//! show `message`, and put each entry of `fields` next to the input it names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What went wrong, for machines. New codes may be added; clients should treat an unknown code by
/// its HTTP status.
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
    strum::Display,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ErrorCode {
    /// The body is well-formed but some fields break the rules; see `fields`.
    ValidationFailed,
    /// The body is not JSON, or not the JSON shape this route takes (wrong types, missing fields).
    InvalidBody,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// The body is larger than the service accepts.
    PayloadTooLarge,
    /// No valid access token (missing, expired, revoked, or not one of ours).
    Unauthorized,
    /// Sign-in failed: the username or the password is wrong (never said which).
    InvalidCredentials,
    /// Signed in, but not allowed to do this.
    Forbidden,
    /// No such thing, or not one the caller may see.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The change clashes with the current state (a taken username, a duplicate member).
    Conflict,
    /// The channel has as many members as it may have.
    MemberLimitReached,
    /// Someone (the caller, or the person being added or DMed) is in as many channels as one
    /// may be.
    ChannelLimitReached,
    /// The caller is in as many servers as one may be.
    GuildLimitReached,
    /// The server has as many channels, or roles, as it may have; or a channel as many pins.
    LimitReached,
    /// The caller is banned from this server.
    Banned,
    /// The caller is timed out in this server: they may read, not send.
    TimedOut,
    /// The other person does not allow this from the caller: their settings (who may DM them or
    /// add them to channels) or a block of theirs. Which of the two is never said.
    ConsentRequired,
    /// The caller blocks the other person: unblock them first.
    UserBlocked,
    /// Too many requests; see the `Retry-After` header.
    RateLimited,
    /// A dependency this route needs is not available right now (no edge answered).
    ServiceUnavailable,
    /// Our fault; the details are in our logs.
    Internal,
    /// A code this client does not know yet.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status each code is sent with: the one table.
    pub const fn status(self) -> u16 {
        match self {
            Self::ValidationFailed | Self::InvalidBody => 400,
            Self::Unauthorized | Self::InvalidCredentials => 401,
            Self::Forbidden
            | Self::ConsentRequired
            | Self::UserBlocked
            | Self::Banned
            | Self::TimedOut => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict
            | Self::MemberLimitReached
            | Self::ChannelLimitReached
            | Self::GuildLimitReached
            | Self::LimitReached => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::RateLimited => 429,
            Self::Internal | Self::Unknown => 500,
            Self::ServiceUnavailable => 503,
        }
    }

    /// The code as sent (`validation_failed`, ...).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "code": "validation_failed",
    "message": "some fields are not valid",
    "fields": {"username": "use 2 to 32 of a-z, 0-9, '_' and '.'"}
}))]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// For people: what went wrong and, where it helps, what to do.
    pub message: String,
    /// For validation errors: each offending field and what is wrong with it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }
}

/// Why a value was refused, in words for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Per-field problems found while parsing a request, collected so one answer names all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value, or notes why `field` was refused and gives `None`.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, Invalid>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(Invalid(message)) => {
                self.0.insert(field.to_owned(), message);
                None
            }
        }
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.insert(field.to_owned(), message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }

    /// The error body naming every refused field.
    pub fn into_body(self) -> ErrorBody {
        let message = match self.0.keys().collect::<Vec<_>>().as_slice() {
            [one] => format!("'{one}' is not valid: {}", self.0[one.as_str()]),
            many => format!(
                "{} fields are not valid: {}",
                many.len(),
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        ErrorBody {
            code: ErrorCode::ValidationFailed,
            message,
            fields: self.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_strings_on_the_wire() {
        let body = ErrorBody::new(ErrorCode::MemberLimitReached, "full");
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["code"], "member_limit_reached");
        assert!(json.get("fields").is_none(), "empty fields are left out");
    }

    #[test]
    fn an_unknown_code_from_a_newer_server_still_parses() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"code":"brand_new","message":"m"}"#).unwrap();
        assert_eq!(body.code, ErrorCode::Unknown);
    }

    #[test]
    fn the_wire_name_and_as_str_agree_for_every_code() {
        use strum::IntoEnumIterator;
        for code in ErrorCode::iter() {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
            assert_eq!(code.to_string(), code.as_str());
            assert!((400..600).contains(&code.status()));
        }
    }

    #[test]
    fn one_bad_field_is_named_in_the_message() {
        let mut errors = FieldErrors::new();
        errors.add("username", "too short");
        let body = errors.into_body();
        assert_eq!(body.code, ErrorCode::ValidationFailed);
        assert!(body.message.contains("username") && body.message.contains("too short"));
        assert_eq!(body.fields["username"], "too short");
    }
}
