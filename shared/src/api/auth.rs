//! Sign-up, sign-in, refresh: the bodies of `/api/v1/auth/*`.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{FieldErrors, Invalid};
use super::names::{DisplayName, Username};
use super::users::User;

/// A password as typed: 8 to 128 characters, any characters, never trimmed or truncated. Never
/// printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 128;

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let chars = s.chars().count();
        if chars < Self::MIN {
            return Err(Invalid::new(format!(
                "must be at least {} characters long",
                Self::MIN
            )));
        }
        if chars > Self::MAX {
            return Err(Invalid::new(format!(
                "may be at most {} characters long",
                Self::MAX
            )));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// `POST /api/v1/auth/sign-up`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    /// 2 to 32 of a-z, 0-9, `_` and `.`; case-insensitive.
    #[schema(value_type = Username)]
    pub username: String,
    /// 8 to 128 characters.
    #[schema(value_type = Password)]
    pub password: String,
    /// 1 to 32 characters; defaults to none (clients show the username).
    #[serde(default)]
    #[schema(value_type = Option<DisplayName>)]
    pub display_name: Option<String>,
}

/// A checked sign-up.
#[derive(Debug, Clone)]
pub struct SignUp {
    pub username: Username,
    pub password: Password,
    pub display_name: Option<DisplayName>,
}

impl SignUpRequest {
    pub fn parse(&self) -> Result<SignUp, FieldErrors> {
        let mut errors = FieldErrors::new();
        let username = errors.check("username", Username::parse(&self.username));
        let password = errors.check("password", Password::parse(&self.password));
        let display_name = match &self.display_name {
            None => Some(None),
            Some(name) => errors
                .check("display_name", DisplayName::parse(name))
                .map(Some),
        };
        match (username, password, display_name) {
            (Some(username), Some(password), Some(display_name)) if errors.is_empty() => {
                Ok(SignUp {
                    username,
                    password,
                    display_name,
                })
            }
            _ => Err(errors),
        }
    }
}

/// `POST /api/v1/auth/sign-in`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    #[schema(value_type = Username)]
    pub username: String,
    #[schema(value_type = Password)]
    pub password: String,
}

/// A checked sign-in.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub username: Username,
    pub password: Password,
}

impl SignInRequest {
    pub fn parse(&self) -> Result<SignIn, FieldErrors> {
        let mut errors = FieldErrors::new();
        let username = errors.check("username", Username::parse(&self.username));
        let password = errors.check("password", Password::parse(&self.password));
        match (username, password) {
            (Some(username), Some(password)) => Ok(SignIn { username, password }),
            _ => Err(errors),
        }
    }
}

/// `POST /api/v1/auth/refresh`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last sign-in or refresh. Each can be used once.
    pub refresh_token: String,
}

/// What sign-up, sign-in and refresh answer: a new access token and a new refresh token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Tokens {
    /// A JWT (EdDSA) to send as `Authorization: Bearer <token>` to the REST API and in the
    /// gateway's IDENTIFY.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
    /// Opaque; trade it for new tokens at `/api/v1/auth/refresh` before `refresh_expires_in`
    /// seconds pass. Using one twice signs the whole session out.
    pub refresh_token: String,
    pub refresh_expires_in: u64,
    /// The signed-in user, as they see themselves.
    pub user: User,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_kept_exactly_as_typed_with_its_spaces() {
        let typed = "  spaced out  ";
        assert_eq!(Password::parse(typed).unwrap().expose(), typed);
    }

    #[test]
    fn a_password_of_129_characters_is_refused_rather_than_truncated() {
        assert!(Password::parse(&"p".repeat(128)).is_ok());
        assert!(Password::parse(&"p".repeat(129)).is_err());
        assert!(Password::parse("short").is_err());
    }

    #[test]
    fn a_password_never_shows_in_debug_output() {
        let p = Password::parse("hunter2hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn a_sign_up_names_every_bad_field_at_once() {
        let request = SignUpRequest {
            username: "x".into(),
            password: "short".into(),
            display_name: Some(" ".into()),
        };
        let fields = request.parse().unwrap_err().into_map();
        assert_eq!(
            fields.keys().collect::<Vec<_>>(),
            ["display_name", "password", "username"]
        );
    }
}
