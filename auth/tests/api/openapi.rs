//! The OpenAPI document describes what the server really refuses: each request field names the
//! schema of its rule, and the lengths, patterns and values there agree with the validators (and
//! with what the running service answers); every route that takes a body lists its 413 and 415.

use proto::api::auth::Password;
use proto::api::error::Invalid;
use proto::api::names::{Bio, ChannelName, DisplayName, Topic, Username};
use proto::api::users::{AvatarUrl, Status};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support;

async fn document() -> Value {
    let auth = support::start().await;
    let response = auth
        .http
        .get(auth.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The schema a `$ref` (possibly behind a nullable `oneOf`) points at.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return &doc["components"]["schemas"][name];
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let typed = options.iter().find(|o| o["type"] != "null").unwrap();
        return resolve(doc, typed);
    }
    schema
}

fn field<'a>(doc: &'a Value, body: &str, name: &str) -> &'a Value {
    let property = &doc["components"]["schemas"][body]["properties"][name];
    assert!(!property.is_null(), "{body}.{name} is not in the document");
    resolve(doc, property)
}

fn length(schema: &Value, bound: &str) -> usize {
    schema[bound]
        .as_u64()
        .unwrap_or_else(|| panic!("no {bound} in {schema}")) as usize
}

/// A field's validator, its value thrown away.
type Validator = fn(&str) -> Result<(), Invalid>;

/// The document's length bounds of `schema` are exactly where `parse` starts and stops
/// accepting `fill` repeated.
fn lengths_agree(schema: &Value, fill: &str, parse: Validator) {
    let (min, max) = (length(schema, "minLength"), length(schema, "maxLength"));
    assert!(parse(&fill.repeat(min)).is_ok(), "{min} refused: {schema}");
    assert!(parse(&fill.repeat(max)).is_ok(), "{max} refused: {schema}");
    assert!(
        parse(&fill.repeat(max + 1)).is_err(),
        "{} accepted: {schema}",
        max + 1
    );
    if min > 0 {
        assert!(
            parse(&fill.repeat(min - 1)).is_err(),
            "{} accepted: {schema}",
            min - 1
        );
    }
}

#[tokio::test]
async fn the_username_schema_is_what_the_validator_and_the_server_accept() {
    let auth = support::start().await;
    let doc: Value = auth
        .http
        .get(auth.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (body, name) in [
        ("SignUpRequest", "username"),
        ("SignInRequest", "username"),
        ("UsernameRequest", "username"),
    ] {
        let schema = field(&doc, body, name);
        let (min, max) = (length(schema, "minLength"), length(schema, "maxLength"));
        let pattern = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
        let documented = |s: &str| (min..=max).contains(&s.chars().count()) && pattern.is_match(s);
        // Every string of up to four characters from letters of both cases, digits, the allowed
        // punctuation and some that is not allowed.
        let alphabet = ["a", "Z", "0", "_", ".", "é", " ", "-"];
        let mut words = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = words
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            words.extend(longer);
        }
        words.extend([
            "a".repeat(max),
            "a".repeat(max + 1),
            format!("{}..", "b".repeat(8)),
        ]);
        words.sort();
        words.dedup();
        for word in &words {
            assert_eq!(
                Username::parse(word).is_ok(),
                documented(word),
                "{body}.{name}: {word:?} (pattern {pattern})"
            );
        }
        // And the running server agrees at the edges of the length.
        for (username, expected) in [
            ("a".repeat(max), StatusCode::CREATED),
            ("b".repeat(max + 1), StatusCode::BAD_REQUEST),
            ("c".repeat(min), StatusCode::CREATED),
            ("d".repeat(min - 1), StatusCode::BAD_REQUEST),
            ("e..e".to_owned(), StatusCode::BAD_REQUEST),
        ] {
            if body != "SignUpRequest" {
                break;
            }
            let (status, answer) = auth
                .post(
                    "/api/v1/auth/sign-up",
                    None,
                    json!({"username": username, "password": "a long enough password"}),
                )
                .await;
            assert_eq!(status, expected, "{username:?}: {answer}");
        }
    }
}

#[tokio::test]
async fn every_text_fields_lengths_are_where_its_validator_starts_and_stops_accepting() {
    let doc = document().await;
    let checks: [(&str, &str, Validator); 9] = [
        ("SignUpRequest", "password", |s| {
            Password::parse(s).map(drop)
        }),
        ("SignInRequest", "password", |s| {
            Password::parse(s).map(drop)
        }),
        ("SignUpRequest", "display_name", |s| {
            DisplayName::parse(s).map(drop)
        }),
        ("UpdateProfileRequest", "display_name", |s| {
            DisplayName::parse(s).map(drop)
        }),
        ("UpdateProfileRequest", "bio", |s| Bio::parse(s).map(drop)),
        ("CreateChannelRequest", "name", |s| {
            ChannelName::parse(s).map(drop)
        }),
        ("UpdateChannelRequest", "name", |s| {
            ChannelName::parse(s).map(drop)
        }),
        ("CreateChannelRequest", "topic", |s| {
            Topic::parse(s).map(drop)
        }),
        ("UpdateChannelRequest", "topic", |s| {
            Topic::parse(s).map(drop)
        }),
    ];
    for (body, name, parse) in checks {
        // Multi-byte letters: lengths count characters, as JSON Schema does.
        lengths_agree(field(&doc, body, name), "é", parse);
    }

    let avatar = field(&doc, "UpdateProfileRequest", "avatar_url");
    let max = length(avatar, "maxLength");
    let url = |len: usize| format!("https://example.com/{}", "a".repeat(len - 20));
    assert!(AvatarUrl::parse(&url(max)).is_ok());
    assert!(AvatarUrl::parse(&url(max + 1)).is_err());
    let scheme = regex::Regex::new(avatar["pattern"].as_str().unwrap()).unwrap();
    for candidate in [
        "https://a.example/x.png",
        "HTTP://a.example/",
        "ftp://a.example/",
        "javascript:alert(1)",
    ] {
        assert_eq!(
            AvatarUrl::parse(candidate).is_ok(),
            scheme.is_match(candidate),
            "{candidate}"
        );
    }

    let statuses: Vec<&str> = field(&doc, "UpdateProfileRequest", "status")["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for status in ["online", "idle", "dnd", "invisible", "offline", "away"] {
        assert_eq!(
            Status::parse_settable(status).is_ok(),
            statuses.contains(&status),
            "{status}"
        );
    }
}

#[tokio::test]
async fn every_route_that_takes_a_body_documents_its_400_413_and_415() {
    let doc = document().await;
    let mut with_bodies = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation["requestBody"].is_null() {
                continue;
            }
            with_bodies += 1;
            for status in ["400", "413", "415"] {
                let answer = &operation["responses"][status];
                assert!(!answer.is_null(), "{method} {path} lists no {status}");
                let body = &answer["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    body, "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }
    // Sign-up, sign-in, refresh, the profile, a channel made or changed, a member, a DM.
    assert!(with_bodies >= 8, "{with_bodies} routes with bodies");
}

/// The contract the web client's TypeScript types and validators are generated from: the REST
/// document with every gateway type merged in, as committed in `web/src/api/generated/`. Fails
/// when the code changed it and it was not regenerated (`./natter generate`, which runs this with
/// `NATTER_WRITE_CONTRACT=1` to write it).
#[test]
fn the_web_clients_contract_is_what_the_code_says() {
    use utoipa::OpenApi;
    let mut doc = auth::routes::ApiDoc::openapi();
    doc.merge(proto::gateway::GatewaySchemas::openapi());
    let json = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    let path = testkit::checkout().join("web/src/api/generated/contract.json");
    if std::env::var_os("NATTER_WRITE_CONTRACT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &json).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == json,
        "{} is not what the code says: run `./natter generate`",
        path.display()
    );
}
