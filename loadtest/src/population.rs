//! The people of a run: users signed up through auth, and channels made of them.
//!
//! Sign-up is deliberately slow (Argon2id, about 30 a second on two cores), so a run signs up
//! only as many users as it needs members and gives each several devices (sessions) when it
//! needs more sockets than people.

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

/// Where auth is: every scenario signs up its users there.
#[derive(Debug, Clone, clap::Args)]
pub struct Auth {
    /// Auth's base URL.
    #[arg(long = "auth", default_value = "http://127.0.0.1:8081")]
    pub url: url::Url,
}

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub token: String,
}

/// A channel and its members (indices into the user list).
#[derive(Debug, Clone)]
pub struct Channel {
    pub id: String,
    pub members: Vec<usize>,
}

#[derive(Clone)]
pub struct Population {
    http: reqwest::Client,
    auth: url::Url,
}

impl Population {
    pub fn new(auth: &Auth) -> Self {
        Self {
            http: reqwest::Client::new(),
            auth: auth.url.clone(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, self.auth.join(path)?).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.context("auth is unreachable")?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path} answered {status}: {body}");
        }
        Ok(body)
    }

    /// Signs up `count` fresh users named `{tag}_{i}`, several at a time.
    pub async fn sign_up(&self, tag: &str, count: usize) -> anyhow::Result<Vec<User>> {
        futures::stream::iter(0..count)
            .map(|i| async move {
                let name = format!("{tag}_{i}");
                let body = self
                    .call(
                        reqwest::Method::POST,
                        "/api/v1/auth/sign-up",
                        None,
                        json!({"username": name, "password": format!("loadtest {name} password")}),
                    )
                    .await
                    .context("sign-up (for big runs, raise auth's NATTER_SIGN_UP_RATE)")?;
                let token = body["access_token"]
                    .as_str()
                    .context("no access token")?
                    .to_owned();
                // The load generator's users put each other in channels: each lets anyone add
                // them (people only accept adds from those they share a channel with by default).
                self.call(
                    reqwest::Method::PATCH,
                    "/api/v1/users/@me/settings",
                    Some(&token),
                    json!({"allow_channel_adds_from": "everyone"}),
                )
                .await
                .context("letting anyone add the user to channels")?;
                Ok::<_, anyhow::Error>(User { name, token })
            })
            .buffered(8)
            .try_collect()
            .await
    }

    /// Makes `count` channels of `members` members each from `users`, round robin, so a user is
    /// in `count * members / users` channels. The first member owns the channel.
    pub async fn channels(
        &self,
        users: &[User],
        count: usize,
        members: usize,
    ) -> anyhow::Result<Vec<Channel>> {
        if users.len() < members {
            bail!("{members} members need at least as many users");
        }
        let mut channels = Vec::new();
        for c in 0..count {
            let member_ids: Vec<usize> = (0..members)
                .map(|j| (c * members + j) % users.len())
                .collect();
            let owner = &users[member_ids[0]];
            let created = self
                .call(
                    reqwest::Method::POST,
                    "/api/v1/channels",
                    Some(&owner.token),
                    json!({"name": format!("load {c}")}),
                )
                .await
                .context("creating a channel (for big runs, raise NATTER_CHANNEL_CREATE_RATE)")?;
            let id = created["id"].as_str().context("no channel id")?.to_owned();
            futures::stream::iter(member_ids[1..].iter().copied())
                .map(|m| {
                    let (id, owner) = (&id, &owner.token);
                    async move {
                        self.call(
                            reqwest::Method::POST,
                            &format!("/api/v1/channels/{id}/members"),
                            Some(owner),
                            json!({"username": users[m].name}),
                        )
                        .await
                        .context(
                            "adding a member (for big runs, raise NATTER_MEMBER_LIMIT, \
                             NATTER_MEMBER_ADD_RATE and NATTER_CHANNEL_LIMIT)",
                        )
                    }
                })
                .buffer_unordered(16)
                .try_collect::<Vec<_>>()
                .await?;
            channels.push(Channel {
                id,
                members: member_ids,
            });
        }
        Ok(channels)
    }
}
