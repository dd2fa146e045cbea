//! A world for media's tests: auth in process (tokens, channels), media on one store, and people.

use serde_json::{Value, json};

use media::storage::StorageConfig;
use media::{Config, Media};

pub(crate) struct World {
    pub(crate) prefix: String,
    pub(crate) nats: async_nats::Client,
    pub(crate) auth: testkit::Running,
    pub(crate) media: testkit::Running,
    pub(crate) http: reqwest::Client,
}

pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) token: String,
}

fn key_file() -> std::path::PathBuf {
    static KEY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("{}.pem", testkit::unique("mediakey")));
        auth::keys::write_new_key(&path).expect("write a signing key");
        path
    })
    .clone()
}

/// Media's settings for a test: the given store, and `extra` flags.
pub(crate) fn media_config(
    auth_url: &str,
    prefix: &str,
    storage: StorageConfig,
    extra: &[&str],
) -> Config {
    let mut args = vec![
        "media".to_owned(),
        format!("--nats-url={}", testkit::Stack::get().nats_url),
        format!("--nats-prefix={prefix}"),
        "--http-addr=127.0.0.1:0".to_owned(),
        "--metrics-addr=127.0.0.1:0".to_owned(),
        format!("--auth-url={auth_url}"),
        "--url-signing-secret=a secret for the tests only, 32+ chars".to_owned(),
        "--log-filter=warn".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let mut config: Config = kit::config::try_parse_from(args).expect("valid media config");
    config.storage = storage;
    config
}

impl World {
    pub(crate) async fn start(storage: StorageConfig, extra: &[&str]) -> Self {
        let stack = testkit::Stack::get();
        let database_url = stack.fresh_database().await;
        let prefix = testkit::fresh_prefix().to_string();
        let auth_config: auth::Config = kit::config::try_parse_from([
            "auth".to_owned(),
            "--http-addr=127.0.0.1:0".to_owned(),
            "--metrics-addr=127.0.0.1:0".to_owned(),
            format!("--database-url={database_url}"),
            format!("--nats-url={}", stack.nats_url),
            format!("--nats-prefix={prefix}"),
            format!("--redis-url={}", stack.redis_url),
            format!("--signing-key={}", key_file().display()),
            "--sign-up-rate=1000/1m".to_owned(),
            "--channel-create-rate=10000/1m".to_owned(),
            "--member-add-rate=10000/1m".to_owned(),
            "--log-filter=warn".to_owned(),
        ])
        .expect("valid auth config");
        let auth = testkit::spawn(auth::Auth::build(auth_config).await.expect("auth starts"));
        testkit::wait_ready(&auth).await;
        // The public URL is only known once bound: a second media on the same store would do,
        // but upload URLs are followed by path here, so the default is replaced in `upload_url`.
        let config = media_config(&auth.url(""), &prefix, storage, extra);
        let media = testkit::spawn(Media::build(config).await.expect("media starts"));
        testkit::wait_ready(&media).await;
        let nats = async_nats::connect(&stack.nats_url).await.expect("NATS");
        Self {
            prefix,
            nats,
            auth,
            media,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) async fn auth_call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.auth.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("auth answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn sign_up(&self, name: &str) -> User {
        let (status, body) = self
            .auth_call(
                reqwest::Method::POST,
                "/api/v1/auth/sign-up",
                None,
                json!({"username": name, "password": format!("{name} likes violet kettle drums")}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        User {
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            token: body["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A group channel of `owner`'s alone.
    pub(crate) async fn channel(&self, owner: &User) -> String {
        let (status, body) = self
            .auth_call(
                reqwest::Method::POST,
                "/api/v1/channels",
                Some(&owner.token),
                json!({"name": "photos"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// `POST /api/v1/channels/{channel}/attachments` with `files`.
    pub(crate) async fn slots(&self, user: &User, channel: &str, files: Value) -> (u16, Value) {
        let response = self
            .http
            .post(
                self.media
                    .url(&format!("/api/v1/channels/{channel}/attachments")),
            )
            .bearer_auth(&user.token)
            .json(&json!({ "files": files }))
            .send()
            .await
            .expect("media answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A URL media handed out as this test reaches it: media's own at the address it is bound to
    /// (the path and query of the one handed out), a presigned one to the store as it is.
    pub(crate) fn upload_url(&self, handed_out: &str) -> String {
        let url = url::Url::parse(handed_out).expect("an upload URL");
        if presigned(&url) {
            return handed_out.to_owned();
        }
        self.media.url(&format!(
            "{}?{}",
            url.path(),
            url.query().unwrap_or_default()
        ))
    }

    /// PUTs `body` to a handed-out upload URL: the status, and media's JSON answer (`Null` for
    /// the store's XML).
    pub(crate) async fn put(&self, handed_out: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .http
            .put(self.upload_url(handed_out))
            .body(body)
            .send()
            .await
            .expect("media or the store answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Whether an upload URL is a presigned PUT straight to the store (S3), not media's own route.
pub(crate) fn presigned(url: &url::Url) -> bool {
    url.query_pairs().any(|(name, _)| name == "X-Amz-Signature")
}

impl World {
    /// Asks media to take `attachments` into a message of `author`'s, as an edge does.
    pub(crate) async fn claim(
        &self,
        channel: &str,
        author: &User,
        message: u64,
        attachments: Value,
    ) -> Value {
        let claim = json!({
            "channel_id": channel,
            "author_id": author.id,
            "message_id": message.to_string(),
            "attachments": attachments,
        });
        let answer = self
            .nats
            .request(
                format!("{}.media.claim", self.prefix),
                serde_json::to_vec(&claim).unwrap().into(),
            )
            .await
            .expect("media answers the claim");
        serde_json::from_slice(&answer.payload).expect("a JSON answer")
    }

    /// Uploads `bytes` as `filename` into `channel`, returning the upload's name.
    pub(crate) async fn upload(
        &self,
        user: &User,
        channel: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> String {
        let (status, body) = self
            .slots(
                user,
                channel,
                json!([{"id": "0", "filename": filename, "file_size": bytes.len()}]),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let slot = &body["attachments"][0];
        let (status, answer) = self.put(slot["upload_url"].as_str().unwrap(), bytes).await;
        assert!((200..300).contains(&status), "{status}: {answer}");
        slot["upload_filename"].as_str().unwrap().to_owned()
    }

    /// GETs a handed-out file URL (as this test reaches media), with extra headers.
    pub(crate) async fn fetch(
        &self,
        handed_out: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.http.get(self.upload_url(handed_out));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("media answers")
    }
}
