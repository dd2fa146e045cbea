//! The people of a run: users signed up through auth, and channels made of them.
//!
//! Sign-up is deliberately slow (Argon2id, about 30 a second on two cores), so a run signs up
//! only as many users as it needs members and gives each several devices (sessions) when it
//! needs more sockets than people.

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use proto::api::auth::{SignInRequest, SignUpRequest, Tokens};
use proto::api::channels::{self, CreateChannelRequest, UsernameRequest};
use proto::api::consent::{Audience, UpdateSettingsRequest};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};

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

    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        let mut request = self.http.request(method, self.auth.join(path)?).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.context("auth is unreachable")?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{path} answered {status}: {text}");
        }
        // An empty answer (204) reads as null, which a caller ignoring the body takes.
        let body = if text.is_empty() { "null" } else { &text };
        serde_json::from_str(body).with_context(|| format!("{path} answered {text}"))
    }

    /// Signs up `count` fresh users named `{tag}_{i}`, several at a time.
    pub async fn sign_up(&self, tag: &str, count: usize) -> anyhow::Result<Vec<User>> {
        futures::stream::iter(0..count)
            .map(|i| async move {
                let name = format!("{tag}_{i}");
                let sign_up = SignUpRequest {
                    username: name.clone(),
                    password: password_of(&name),
                    display_name: None,
                };
                let tokens: Tokens = self
                    .call(
                        reqwest::Method::POST,
                        "/api/v1/auth/sign-up",
                        None,
                        &sign_up,
                    )
                    .await
                    .context("sign-up (for big runs, raise auth's NATTER_SIGN_UP_RATE)")?;
                let token = tokens.access_token;
                // The load generator's users put each other in channels: each lets anyone add
                // them (people only accept adds from those they share a channel with by default).
                let settings = UpdateSettingsRequest {
                    allow_dms_from: None,
                    allow_channel_adds_from: Some(Audience::Everyone),
                };
                self.call::<IgnoredAny>(
                    reqwest::Method::PATCH,
                    "/api/v1/users/@me/settings",
                    Some(&token),
                    &settings,
                )
                .await
                .context("letting anyone add the user to channels")?;
                Ok::<_, anyhow::Error>(User { name, token })
            })
            .buffered(8)
            .try_collect()
            .await
    }

    /// Signs in the `count` users an earlier run signed up as `{tag}_{i}` (sign-ins are not
    /// held to auth's sign-up rate, 10 an hour per address by default).
    pub async fn sign_in(&self, tag: &str, count: usize) -> anyhow::Result<Vec<User>> {
        futures::stream::iter(0..count)
            .map(|i| async move {
                let name = format!("{tag}_{i}");
                let sign_in = SignInRequest {
                    username: name.clone(),
                    password: password_of(&name),
                };
                let tokens: Tokens = self
                    .call(
                        reqwest::Method::POST,
                        "/api/v1/auth/sign-in",
                        None,
                        &sign_in,
                    )
                    .await
                    .with_context(|| format!("signing in {name}, signed up by an earlier run"))?;
                Ok::<_, anyhow::Error>(User {
                    name,
                    token: tokens.access_token,
                })
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
            let create = CreateChannelRequest {
                name: format!("load {c}"),
                topic: None,
            };
            let created: channels::Channel = self
                .call(
                    reqwest::Method::POST,
                    "/api/v1/channels",
                    Some(&owner.token),
                    &create,
                )
                .await
                .context("creating a channel (for big runs, raise NATTER_CHANNEL_CREATE_RATE)")?;
            let id = created.id.to_string();
            futures::stream::iter(member_ids[1..].iter().copied())
                .map(|m| {
                    let (id, owner) = (&id, &owner.token);
                    async move {
                        let member = UsernameRequest {
                            username: users[m].name.clone(),
                        };
                        self.call::<IgnoredAny>(
                            reqwest::Method::POST,
                            &format!("/api/v1/channels/{id}/members"),
                            Some(owner),
                            &member,
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

/// The password a load-test user `name` signs up and signs in with.
fn password_of(name: &str) -> String {
    format!("loadtest {name} password")
}
