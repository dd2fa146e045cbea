//! A server (guild) built over REST for a scenario, as people make one: its owner creates it and
//! its channels, makes an invite, and everyone else joins by it. And [`Rest`], the edges' REST
//! routes (messages, reactions, acks, search) called as a signed-in person calls them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use crate::population::{Population, User};

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A server and the people in it, in the order of the users it was built from.
#[derive(Debug, Clone)]
pub struct Server {
    pub id: String,
    /// Its text channels, #general first.
    pub channels: Vec<String>,
    /// Each member's user id, in the order of the users (the owner first).
    pub user_ids: Vec<String>,
}

impl Server {
    /// `users[0]` creates a server of `channels` text channels (#general and more), and every
    /// other user joins it by an invite, `joins` at a time.
    pub async fn build(
        people: &Population,
        users: &[User],
        name: &str,
        channels: usize,
        joins: usize,
    ) -> anyhow::Result<Self> {
        let owner = users.first().context("a server needs an owner")?;
        let post = |path: String, body: Value| {
            let people = people.clone();
            let token = owner.token.clone();
            async move {
                people
                    .call::<Value>(reqwest::Method::POST, &path, Some(&token), &body)
                    .await
            }
        };
        let guild = post("/api/v1/guilds".into(), json!({ "name": name })).await?;
        let id = guild["id"].as_str().context("a server id")?.to_owned();
        let mut channel_ids = vec![
            guild["channels"][0]["id"]
                .as_str()
                .context("#general")?
                .to_owned(),
        ];
        for i in 1..channels {
            let created = post(
                format!("/api/v1/guilds/{id}/channels"),
                json!({ "name": format!("channel-{i}") }),
            )
            .await
            .context("creating a channel (NATTER_GUILD_CHANNEL_LIMIT)")?;
            channel_ids.push(created["id"].as_str().context("a channel id")?.to_owned());
        }
        let mut user_ids = vec![
            guild["member"]["user"]["id"]
                .as_str()
                .context("the owner's id")?
                .to_owned(),
        ];
        if users.len() > 1 {
            let invite = post(
                format!("/api/v1/guilds/{id}/invites"),
                json!({"max_age": 0, "max_uses": 0}),
            )
            .await?;
            let code = invite["code"]
                .as_str()
                .context("an invite code")?
                .to_owned();
            let joined: Vec<String> = futures::stream::iter(users[1..].iter())
                .map(|u| {
                    let (people, code) = (people.clone(), code.clone());
                    async move {
                        let g: Value = people
                            .call(
                                reqwest::Method::POST,
                                &format!("/api/v1/invites/{code}"),
                                Some(&u.token),
                                &json!({}),
                            )
                            .await?;
                        Ok::<_, anyhow::Error>(
                            g["member"]["user"]["id"]
                                .as_str()
                                .context("a member id")?
                                .to_owned(),
                        )
                    }
                })
                .buffered(joins.max(1))
                .try_collect()
                .await?;
            user_ids.extend(joined);
        }
        Ok(Self {
            id,
            channels: channel_ids,
            user_ids,
        })
    }
}

/// An edge's HTTP origin (its REST routes) from its gateway URL.
pub fn edge_http(gateway: &url::Url) -> anyhow::Result<url::Url> {
    let mut url = gateway.clone();
    url.set_scheme(if gateway.scheme() == "wss" {
        "https"
    } else {
        "http"
    })
    .map_err(|()| anyhow::anyhow!("bad gateway URL {gateway}"))?;
    url.set_path("/");
    Ok(url)
}

/// The edges' REST routes, spread over the edges by the caller's choice of `edge`.
#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    edges: Vec<url::Url>,
}

/// How long one request may take before it counts as failed (status 0).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl Rest {
    pub fn new(gateways: &[url::Url]) -> anyhow::Result<Self> {
        anyhow::ensure!(!gateways.is_empty(), "give at least one --gateway");
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()?,
            edges: gateways
                .iter()
                .map(edge_http)
                .collect::<anyhow::Result<_>>()?,
        })
    }

    pub fn edges(&self) -> usize {
        self.edges.len()
    }

    /// The URL of `path` (with `query`) on edge `edge` (modulo the number of edges).
    pub fn url(&self, edge: usize, path: &str, query: &[(&str, &str)]) -> anyhow::Result<url::Url> {
        let mut url = self.edges[edge % self.edges.len()].join(path)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// One request as `token`: its status (0 when it got no answer) and its body (null when
    /// empty or not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        url: url::Url,
        token: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let Ok(response) = request.send().await else {
            return (0, Value::Null);
        };
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        (status, body)
    }

    /// Sends `content` to `channel` on edge `edge`; the new message's id.
    pub async fn send(
        &self,
        edge: usize,
        channel: &str,
        token: &str,
        content: &str,
    ) -> anyhow::Result<String> {
        let url = self.url(edge, &format!("/api/v1/channels/{channel}/messages"), &[])?;
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                url,
                token,
                Some(&json!({ "content": content })),
            )
            .await;
        anyhow::ensure!(
            status == 200,
            "sending a message answered {status}: {body} (for big runs, raise the edges' NATTER_SEND_RATE)"
        );
        Ok(body["id"].as_str().context("a message id")?.to_owned())
    }
}
