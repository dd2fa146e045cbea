//! `guild`: one server (guild) of many members, their sessions spread over the edges, with many
//! channels; a role ("inner") that alone may view one private channel; messages in a channel
//! everyone sees and in the private one at a steady rate, while the role is given and taken from
//! one member ("role changes while chatting"); then a change that hides a channel from every
//! member at once (an @everyone overwrite denying VIEW_CHANNEL), timed until the last session was
//! told (CHANNEL_DELETE).
//!
//! It checks, and fails the command on: a message lost or doubled for a session that may see it,
//! any delivery of the private channel to a session that may not (the one member whose role
//! flips is left out of both counts), and any message of the hidden channel reaching a session
//! after its CHANNEL_DELETE.
//!
//! Sessions are held in this process (one task each), not by workers: a server's figures need
//! thousands of members, not the hundreds of thousands of sockets the chat scenarios hold.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::client::{self, Source};
use crate::population::{Population, User};
use crate::report::{self, Baseline, Percentiles};
use crate::run::Target;
use crate::server::{edge_http, now_us};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Members of the server, the owner included (each signs up: auth's NATTER_SIGN_UP_RATE).
    #[arg(long, default_value_t = 200)]
    pub members: usize,
    /// Text channels everyone may view (the first is #general), besides the private one and the
    /// one hidden at the end.
    #[arg(long, default_value_t = 20)]
    pub channels: usize,
    /// Members with the role that alone may view the private channel.
    #[arg(long, default_value_t = 20)]
    pub role_members: usize,
    /// Messages per second, half in #general (sent by every member in turn), half in the private
    /// channel (sent by the role's members in turn).
    #[arg(long, default_value_t = 20)]
    pub rate: u64,
    #[arg(long, default_value = "20s", value_parser = kit::config::duration)]
    pub duration: Duration,
    /// How often the role is given to or taken from one member while the chat runs.
    #[arg(long, default_value = "2s", value_parser = kit::config::duration)]
    pub role_change_every: Duration,
}

/// What one session saw.
#[derive(Default)]
struct Seen {
    /// Message ids received, per channel.
    messages: HashMap<String, Vec<String>>,
    /// When the hidden channel's CHANNEL_DELETE arrived (microseconds since the Unix epoch).
    hidden_at: Option<u64>,
    /// Messages of the hidden channel received after its CHANNEL_DELETE.
    after_hidden: u64,
    /// Send-to-receive times of every message received, in microseconds.
    latencies: Vec<u64>,
}

struct Session {
    user: usize,
    seen: Arc<Mutex<Seen>>,
}

#[derive(Debug, Serialize)]
struct GuildResult {
    members: usize,
    channels: usize,
    role_members: usize,
    offered_rate: u64,
    seconds: f64,
    sent: u64,
    acknowledged: u64,
    send_errors: u64,
    role_changes: u64,
    expected_deliveries: u64,
    delivered: u64,
    missing: u64,
    duplicated: u64,
    /// Private-channel messages delivered to sessions that may not view it: must be 0.
    forbidden_deliveries: u64,
    deliveries_per_second: f64,
    send_to_receive: Percentiles,
    /// From the overwrite's request to each session's CHANNEL_DELETE of the hidden channel.
    hide_to_told: Percentiles,
    /// Sessions told the hidden channel is gone, of those that should be.
    hidden_told: usize,
    hidden_expected: usize,
    /// Messages of the hidden channel that reached a session after its CHANNEL_DELETE: must be 0.
    after_hidden_deliveries: u64,
    services: Vec<report::ServiceDelta>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.members < args.role_members + 2 {
        bail!(
            "--members must exceed --role-members by at least 2 (the owner, the flipping member)"
        );
    }
    let target = &args.target;
    let people = Population::new(&target.auth);
    let tag = format!("g{}", now_us() % 1_000_000_000);
    println!("guild: signing up {} members", args.members);
    let users = people.sign_up(&tag, args.members).await?;
    let owner = &users[0];
    let post = |path: String, token: String, body: Value| {
        let people = people.clone();
        async move {
            people
                .call::<Value>(reqwest::Method::POST, &path, Some(&token), &body)
                .await
        }
    };

    // The server, its channels, the role and the private channel, and the invite.
    let guild = post(
        "/api/v1/guilds".into(),
        owner.token.clone(),
        json!({"name": "loadtest guild"}),
    )
    .await?;
    let guild_id = guild["id"].as_str().context("a server id")?.to_owned();
    let general = guild["channels"][0]["id"]
        .as_str()
        .context("#general")?
        .to_owned();
    let mut user_ids = vec![
        guild["member"]["user"]["id"]
            .as_str()
            .context("the owner's id")?
            .to_owned(),
    ];
    let channel = |name: String, overwrites: Value| {
        post(
            format!("/api/v1/guilds/{guild_id}/channels"),
            owner.token.clone(),
            json!({"name": name, "permission_overwrites": overwrites}),
        )
    };
    for i in 1..args.channels {
        channel(format!("channel-{i}"), json!([])).await?;
    }
    let role: Created = serde_json::from_value(
        post(
            format!("/api/v1/guilds/{guild_id}/roles"),
            owner.token.clone(),
            json!({"name": "inner", "hoist": true}),
        )
        .await?,
    )?;
    let view = proto::permissions::Permissions::VIEW_CHANNEL.to_string();
    let private: Created = serde_json::from_value(
        channel(
            "inner".into(),
            json!([{"id": guild_id, "type": 0, "deny": view},
                   {"id": role.id, "type": 0, "allow": view}]),
        )
        .await?,
    )?;
    let hidden: Created = serde_json::from_value(channel("hidden-later".into(), json!([])).await?)?;
    let invite = post(
        format!("/api/v1/guilds/{guild_id}/invites"),
        owner.token.clone(),
        json!({"max_age": 0, "max_uses": 0}),
    )
    .await?;
    let code = invite["code"]
        .as_str()
        .context("an invite code")?
        .to_owned();

    println!("guild: {} members join by the invite", args.members - 1);
    let joined: Vec<String> = futures::stream::iter(users[1..].iter())
        .map(|u| {
            let join = post(
                format!("/api/v1/invites/{code}"),
                u.token.clone(),
                json!({}),
            );
            async move {
                let g = join.await?;
                Ok::<_, anyhow::Error>(
                    g["member"]["user"]["id"]
                        .as_str()
                        .context("a member id")?
                        .to_owned(),
                )
            }
        })
        .buffered(16)
        .try_collect()
        .await?;
    user_ids.extend(joined);
    let put = |path: String| {
        let people = people.clone();
        let token = owner.token.clone();
        async move {
            people
                .call::<Value>(reqwest::Method::PUT, &path, Some(&token), &json!({}))
                .await
        }
    };
    // Users 1..=role_members have the role; the next one is the member whose role flips.
    for id in &user_ids[1..=args.role_members] {
        put(format!(
            "/api/v1/guilds/{guild_id}/members/{id}/roles/{}",
            role.id
        ))
        .await?;
    }
    let flipper = args.role_members + 1;

    // Every member's session, alternating edges.
    println!("guild: {} sessions connect", users.len());
    let sessions = connect_all(target, &users, &hidden.id).await?;

    // Chat, with the role flipping on one member.
    let baseline = Baseline::take(&target.metrics).await;
    let sent = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let acked_general = Arc::new(AtomicU64::new(0));
    let acked_private = Arc::new(AtomicU64::new(0));
    let edges: Vec<url::Url> = target
        .gateway
        .iter()
        .map(edge_http)
        .collect::<anyhow::Result<_>>()?;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(1) as f64));
    let mut sends = Vec::new();
    let mut role_changes = 0u64;
    let mut next_flip = started + args.role_change_every;
    let mut i = 0usize;
    while started.elapsed() < args.duration {
        tick.tick().await;
        if Instant::now() >= next_flip {
            next_flip += args.role_change_every;
            let path = format!(
                "/api/v1/guilds/{guild_id}/members/{}/roles/{}",
                user_ids[flipper], role.id
            );
            let method = if role_changes.is_multiple_of(2) {
                reqwest::Method::PUT
            } else {
                reqwest::Method::DELETE
            };
            people
                .call::<Value>(method, &path, Some(&owner.token), &json!({}))
                .await?;
            role_changes += 1;
        }
        let (sender, channel_id, counter) = if i.is_multiple_of(2) {
            // #general: every member in turn (the flipping one too: it always may).
            (
                (i / 2) % users.len(),
                general.clone(),
                acked_general.clone(),
            )
        } else {
            (
                1 + (i / 2) % args.role_members,
                private.id.clone(),
                acked_private.clone(),
            )
        };
        let url =
            edges[sender % edges.len()].join(&format!("/api/v1/channels/{channel_id}/messages"))?;
        let request = http
            .post(url)
            .bearer_auth(&users[sender].token)
            .json(&json!({"content": format!("t{}", now_us())}));
        let (acked, errors) = (acked.clone(), errors.clone());
        sent.fetch_add(1, Ordering::Relaxed);
        sends.push(tokio::spawn(async move {
            match request.send().await {
                Ok(r) if r.status().is_success() => {
                    acked.fetch_add(1, Ordering::Relaxed);
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        i += 1;
    }
    for s in sends {
        let _ = s.await;
    }
    let seconds = started.elapsed().as_secs_f64();
    // Let the last deliveries land before counting.
    let (general_n, private_n) = (
        acked_general.load(Ordering::Relaxed),
        acked_private.load(Ordering::Relaxed),
    );
    let may_see_private = |s: &Session| s.user <= args.role_members;
    let counted = |s: &Session| s.user != flipper;
    let expected: u64 = sessions
        .iter()
        .filter(|s| counted(s))
        .map(|s| general_n + if may_see_private(s) { private_n } else { 0 })
        .sum();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut got = 0u64;
        for s in sessions.iter().filter(|s| counted(s)) {
            let seen = s.seen.lock().await;
            got += seen.messages.get(&general).map_or(0, |m| m.len() as u64);
            if may_see_private(s) {
                got += seen.messages.get(&private.id).map_or(0, |m| m.len() as u64);
            }
        }
        if got >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Hide a channel from everyone (the owner sees all) while the owner writes in it.
    let writing = {
        let url = edges[0].join(&format!("/api/v1/channels/{}/messages", hidden.id))?;
        let (http, token) = (http.clone(), owner.token.clone());
        tokio::spawn(async move {
            loop {
                let _ = http
                    .post(url.clone())
                    .bearer_auth(&token)
                    .json(&json!({"content": format!("t{}", now_us())}))
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hide_at = now_us();
    people
        .call::<Value>(
            reqwest::Method::PUT,
            &format!("/api/v1/channels/{}/permissions/{guild_id}", hidden.id),
            Some(&owner.token),
            &json!({"type": 0, "allow": "0", "deny": view}),
        )
        .await?;
    let hidden_expected = sessions.iter().filter(|s| s.user != 0).count();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut told = 0;
        for s in sessions.iter().filter(|s| s.user != 0) {
            told += usize::from(s.seen.lock().await.hidden_at.is_some());
        }
        if told == hidden_expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A second of writing after the last was told, to catch any delivery that should not come.
    tokio::time::sleep(Duration::from_secs(1)).await;
    writing.abort();

    // The accounts.
    let mut latency = Histogram::<u64>::new(3)?;
    let mut hide = Histogram::<u64>::new(3)?;
    let (mut delivered, mut duplicated, mut forbidden, mut after_hidden, mut hidden_told) =
        (0u64, 0u64, 0u64, 0u64, 0usize);
    for s in &sessions {
        let seen = s.seen.lock().await;
        after_hidden += seen.after_hidden;
        if s.user != 0
            && let Some(at) = seen.hidden_at
        {
            hidden_told += 1;
            hide.record(at.saturating_sub(hide_at))?;
        }
        if !counted(s) {
            continue;
        }
        for (channel, ids) in &seen.messages {
            let private_here = *channel == private.id;
            if *channel != general && !private_here {
                continue;
            }
            if private_here && !may_see_private(s) {
                forbidden += ids.len() as u64;
                continue;
            }
            let mut unique: Vec<&String> = ids.iter().collect();
            unique.sort();
            unique.dedup();
            duplicated += (ids.len() - unique.len()) as u64;
            delivered += unique.len() as u64;
        }
        for sample in &seen.latencies {
            latency.record(*sample)?;
        }
    }
    let result = GuildResult {
        members: args.members,
        channels: args.channels + 2,
        role_members: args.role_members,
        offered_rate: args.rate,
        seconds,
        sent: sent.load(Ordering::Relaxed),
        acknowledged: acked.load(Ordering::Relaxed),
        send_errors: errors.load(Ordering::Relaxed),
        role_changes,
        expected_deliveries: expected,
        delivered,
        missing: expected.saturating_sub(delivered),
        duplicated,
        forbidden_deliveries: forbidden,
        deliveries_per_second: delivered as f64 / seconds,
        send_to_receive: (&latency).into(),
        hide_to_told: (&hide).into(),
        hidden_told,
        hidden_expected,
        after_hidden_deliveries: after_hidden,
        services: baseline.deltas().await,
    };
    println!(
        "guild: {} members ({} with the role) in {} channels, {}/s for {:.1} s, {} role changes",
        result.members,
        result.role_members,
        result.channels,
        result.offered_rate,
        result.seconds,
        result.role_changes
    );
    println!(
        "sent {}, acknowledged {} ({} errors); deliveries {} of {} expected: {} missing, {} duplicated; {:.0} deliveries/s; {} to sessions that may not see them",
        result.sent,
        result.acknowledged,
        result.send_errors,
        result.delivered,
        result.expected_deliveries,
        result.missing,
        result.duplicated,
        result.deliveries_per_second,
        result.forbidden_deliveries
    );
    println!(
        "hiding a channel: {} of {} sessions told; {} of its messages arrived after",
        result.hidden_told, result.hidden_expected, result.after_hidden_deliveries
    );
    report::print_percentiles(&[
        ("send -> receive", &result.send_to_receive),
        ("hide -> told", &result.hide_to_told),
    ]);
    report::print_deltas(&result.services);
    let path = target
        .out
        .clone()
        .unwrap_or_else(|| "loadtest-guild.json".into());
    report::write_json(&path, &result)?;
    println!("result written to {}", path.display());
    if result.missing > 0
        || result.duplicated > 0
        || result.forbidden_deliveries > 0
        || result.after_hidden_deliveries > 0
        || result.hidden_told < result.hidden_expected
    {
        bail!(
            "a message was lost or doubled, reached someone who may not see it, or a hidden channel kept talking"
        );
    }
    Ok(())
}

/// Connects every user's session (users alternate between the edges) and starts reading.
async fn connect_all(
    target: &Target,
    users: &[User],
    hidden: &str,
) -> anyhow::Result<Vec<Session>> {
    futures::stream::iter(users.iter().enumerate())
        .map(|(i, user)| {
            let gateway = target.gateway[i % target.gateway.len()].clone();
            let sources = target.sources.max(1);
            let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % sources as usize) as u8));
            let hidden = hidden.to_owned();
            async move {
                let source = Source { ip, port: 0 };
                let (socket, _ready) = client::connect(&gateway, source, &user.token)
                    .await
                    .with_context(|| format!("{} connecting to {gateway}", user.name))?;
                let seen = Arc::new(Mutex::new(Seen::default()));
                tokio::spawn(read(socket, seen.clone(), hidden));
                Ok::<_, anyhow::Error>(Session { user: i, seen })
            }
        })
        .buffered(32)
        .try_collect()
        .await
}

/// Reads one session's frames until its socket closes: its messages (latency from the time in
/// their text) and when the hidden channel went.
async fn read(socket: client::Socket, seen: Arc<Mutex<Seen>>, hidden: String) {
    let mut frames = std::pin::pin!(client::dispatches(socket));
    while let Some((frame, at)) = frames.next().await {
        let channel = frame.d["channel_id"].as_str().unwrap_or_default();
        match frame.t.as_deref() {
            Some("MESSAGE_CREATE") => {
                let mut seen = seen.lock().await;
                if channel == hidden && seen.hidden_at.is_some() {
                    seen.after_hidden += 1;
                }
                if let Some(sent) = frame.d["content"]
                    .as_str()
                    .and_then(|c| c.strip_prefix('t'))
                    .and_then(|t| t.parse::<u64>().ok())
                {
                    seen.latencies.push(at.saturating_sub(sent));
                }
                let id = frame.d["id"].as_str().unwrap_or_default().to_owned();
                seen.messages
                    .entry(channel.to_owned())
                    .or_default()
                    .push(id);
            }
            Some("CHANNEL_DELETE") if channel == hidden => {
                let mut seen = seen.lock().await;
                seen.hidden_at.get_or_insert(at);
            }
            _ => {}
        }
    }
}
