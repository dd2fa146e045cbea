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

/// A password chosen for an account (sign-up, or a future password change): a [`Password`] that
/// is also hard to guess. Dropbox's zxcvbn estimates how many guesses an attacker who knows
/// common passwords, words, names, keyboard patterns, dates and the account's own username and
/// display name would need; [`NewPassword::MIN_SCORE`] is the least it accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(Password);

impl NewPassword {
    /// zxcvbn's score 3: at least 10^8 guesses. Online guessing is throttled to a few guesses
    /// an hour per account and address (auth's sign-in throttle), so score 2 (10^6 guesses)
    /// would already outlast an online attacker; the score that matters is for an offline
    /// attacker holding a copy of the database. With Argon2id at OWASP's parameters (~35 ms and
    /// 19 MiB a guess on one core), 10^8 guesses cost about 40 core-days per account, where a
    /// score-2 password (10^6 guesses) can fall in 10 core-hours. Score 4 (10^10) would refuse
    /// most passwords people can remember and push them to reuse one. See docs/SECURITY.md.
    pub const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

    /// Words an attacker would try first for this service, beside the account's own names.
    const SERVICE_WORDS: [&'static str; 1] = ["natter"];

    /// Checks `s` as a password for the account named `username` (and `display_name`).
    pub fn parse(s: &str, username: &str, display_name: Option<&str>) -> Result<Self, Invalid> {
        let password = Password::parse(s)?;
        let mut inputs: Vec<&str> = vec![username];
        if let Some(name) = display_name {
            inputs.push(name);
            inputs.extend(name.split_whitespace());
        }
        inputs.extend(Self::SERVICE_WORDS);
        let estimate = zxcvbn::zxcvbn(s, &inputs);
        if estimate.score() >= Self::MIN_SCORE {
            return Ok(Self(password));
        }
        let advice = estimate
            .feedback()
            .map(ToString::to_string)
            .map(|advice| advice.trim().to_owned())
            .filter(|advice| !advice.is_empty())
            .unwrap_or_else(|| "Use a few words, avoid common phrases.".to_owned());
        Err(Invalid::new(format!("is too easy to guess. {advice}")))
    }

    pub fn into_password(self) -> Password {
        self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

/// `POST /api/v1/auth/sign-up`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    /// 2 to 32 of a-z, 0-9, `_` and `.`; case-insensitive.
    #[schema(value_type = Username)]
    pub username: String,
    /// 8 to 128 characters, and hard to guess: zxcvbn must score it at least 3 of 4 (about 10^8
    /// guesses), with the username and display name counted as known to the attacker. Common and
    /// breached passwords (`password`, `qwerty123`), repeats (eight spaces), keyboard patterns,
    /// dates and anything built from the username or display name are refused, with advice.
    #[schema(value_type = Password)]
    pub password: String,
    /// 1 to 32 characters: any script or emoji, one script per word, nothing invisible or blank,
    /// at most five combining marks on a character. Defaults to none (clients show the username).
    #[serde(default)]
    #[schema(value_type = Option<DisplayName>)]
    pub display_name: Option<String>,
}

/// A checked sign-up.
#[derive(Debug, Clone)]
pub struct SignUp {
    pub username: Username,
    pub password: NewPassword,
    pub display_name: Option<DisplayName>,
}

impl SignUpRequest {
    pub fn parse(&self) -> Result<SignUp, FieldErrors> {
        let mut errors = FieldErrors::new();
        let username = errors.check("username", Username::parse(&self.username));
        let display_name = match &self.display_name {
            None => Some(None),
            Some(name) => errors
                .check("display_name", DisplayName::parse(name))
                .map(Some),
        };
        // Judged against the names as typed, so a refused name still counts as known.
        let password = errors.check(
            "password",
            NewPassword::parse(&self.password, &self.username, self.display_name.as_deref()),
        );
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

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user.
    pub sub: crate::Snowflake,
    /// The session (refresh-token family) the token was issued in; sign-out revokes it.
    pub sid: crate::Snowflake,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    pub aud: String,
    pub iss: String,
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

    fn refusal(password: &str, username: &str, display_name: Option<&str>) -> String {
        match NewPassword::parse(password, username, display_name) {
            Ok(_) => panic!("{password:?} accepted for {username}"),
            Err(Invalid(message)) => message,
        }
    }

    #[test]
    fn password_eight_spaces_and_the_username_itself_are_refused_as_new_passwords() {
        assert!(refusal("password", "ann", None).contains("top-10 common password"));
        assert!(refusal("        ", "ann", None).contains("Repeats"));
        refusal("brightotter", "brightotter", None);
        refusal("BrightOtter", "brightotter", None);
    }

    #[test]
    fn common_breached_style_and_keyboard_passwords_are_refused() {
        for weak in [
            "qwerty123",
            "P@ssw0rd!",
            "iloveyou1",
            "12345678",
            "asdfghjkl",
        ] {
            refusal(weak, "ann", None);
        }
    }

    #[test]
    fn a_password_built_from_the_username_or_display_name_is_refused() {
        refusal("brightotter2024", "brightotter", None);
        refusal("Quentin Zabriskie", "qz", Some("Quentin Zabriskie"));
        refusal("zabriskie1990!", "qz", Some("Quentin Zabriskie"));
        refusal("natter123", "ann", None);
    }

    #[test]
    fn a_refusal_says_what_to_do() {
        let message = refusal("another one", "erin", None);
        assert!(message.starts_with("is too easy to guess."), "{message}");
        assert!(message.contains("Add another word or two"), "{message}");
    }

    #[test]
    fn passphrases_and_random_passwords_are_accepted() {
        for strong in [
            "correct horse battery",
            "violet kettle maple drum",
            "Tr0ub4dor&3",
            "tZ8#qP2!vLm",
            "ложка кошка окно",
            "猫と犬と鳥と魚の歌",
        ] {
            assert!(
                NewPassword::parse(strong, "ann", Some("Ann")).is_ok(),
                "{strong:?} refused"
            );
        }
    }

    #[test]
    fn a_new_password_keeps_the_rules_of_a_password() {
        refusal("Zq8!x", "ann", None);
        refusal(&"violet kettle ".repeat(10), "ann", None);
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
