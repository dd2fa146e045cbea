//! What presence and discovery tests add to the gateway tests' world: a presence service, edges as
//! real processes (to SIGKILL), and the REST calls they make.

use std::time::Duration;

use serde_json::Value;
use shared::testing::{self, Running};

pub(crate) use crate::edge_process::EdgeProcess;
use crate::support::{Client, User, WAIT, World};

/// Shortened timings, so a test sees an expiry in seconds. The grace is long enough for a
/// reconnect to finish on a loaded CI machine.
pub(crate) const EXPIRY: Duration = Duration::from_secs(2);
pub(crate) const GRACE: Duration = Duration::from_secs(3);

/// How long a test keeps listening after what it expected has come, to catch anything extra.
pub(crate) const QUIET: Duration = Duration::from_millis(500);

/// Edge flags every test edge gets: heartbeat well within the shortened expiry.
pub(crate) const EDGE: &[&str] = &["--presence-heartbeat=250ms"];

/// A presence service on the world's prefix, with the shortened expiry and grace.
pub(crate) async fn start_presence(world: &World, redis_url: &str) -> Running {
    let config: presence::Config = shared::config::try_parse_from([
        "presence".to_owned(),
        "--http-addr=127.0.0.1:0".to_owned(),
        "--metrics-addr=127.0.0.1:0".to_owned(),
        format!("--nats-url={}", world.engines.nats_url),
        format!("--nats-prefix={}", world.prefix),
        format!("--redis-url={redis_url}"),
        format!("--expiry={}ms", EXPIRY.as_millis()),
        format!("--reconnect-grace={}ms", GRACE.as_millis()),
        "--sweep-interval=100ms".to_owned(),
        "--log-filter=warn".to_owned(),
    ])
    .expect("valid presence config");
    let presence = testing::spawn(
        presence::Presence::build(config)
            .await
            .expect("presence starts"),
    );
    testing::wait_ready(&presence).await;
    presence
}

/// `GET /api/v1/presences` on an edge, as `user`.
pub(crate) async fn presences(edge_port: u16, user: &User, ids: &[&User]) -> (u16, Value) {
    let ids: Vec<String> = ids.iter().map(|u| u.id.to_string()).collect();
    let response = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{edge_port}/api/v1/presences?user_ids={}",
            ids.join(",")
        ))
        .bearer_auth(&user.token)
        .send()
        .await
        .expect("the edge answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The presences that come with a channel's members when a client lists them (op 8 with
/// `presences`), as a client does when it opens a channel.
pub(crate) async fn member_presences(client: &mut Client, channel: shared::Snowflake) -> Value {
    client
        .send_raw(serde_json::json!({"op": 8, "d": {
            "channel_id": channel, "limit": 100, "presences": true, "nonce": "members"}}))
        .await;
    let chunk = client.next_event("CHANNEL_MEMBERS_CHUNK").await;
    assert_eq!(chunk["d"]["nonce"], "members", "{chunk}");
    chunk["d"]["presences"].clone()
}

/// One user's status as `viewer` sees it over REST.
pub(crate) async fn status_of(edge_port: u16, viewer: &User, user: &User) -> Value {
    let (status, body) = presences(edge_port, viewer, &[user]).await;
    assert_eq!(status, 200, "{body}");
    body[0].clone()
}

/// The next PRESENCE_UPDATE's payload that `wanted` accepts, before `deadline`, skipping other
/// frames; `None` when the deadline passes first.
async fn next_presence(
    client: &mut Client,
    deadline: tokio::time::Instant,
    wanted: impl Fn(&Value) -> bool,
) -> Option<Value> {
    loop {
        match tokio::time::timeout_at(deadline, client.next()).await {
            Ok(Some(frame)) if frame["t"] == "PRESENCE_UPDATE" => {
                assert_eq!(frame["s"], Value::Null, "{frame}");
                if wanted(&frame["d"]) {
                    return Some(frame["d"].clone());
                }
            }
            Ok(Some(_)) => {}
            // Nothing for a while, or the socket closed: keep waiting out the window.
            Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => return None,
        }
    }
}

/// Every PRESENCE_UPDATE that arrives within `within`, with when it arrived.
pub(crate) async fn updates(
    client: &mut Client,
    within: Duration,
) -> Vec<(tokio::time::Instant, Value)> {
    let deadline = tokio::time::Instant::now() + within;
    let mut updates = Vec::new();
    while let Some(d) = next_presence(client, deadline, |_| true).await {
        updates.push((tokio::time::Instant::now(), d));
    }
    updates
}

/// Every PRESENCE_UPDATE until each of `users` has had one (waiting at most [`WAIT`]), then any
/// more that come within [`QUIET`]: what a watcher sees of changes it knows are coming.
pub(crate) async fn updates_about(
    client: &mut Client,
    users: &[&User],
) -> Vec<(tokio::time::Instant, Value)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    while users.iter().any(|u| statuses(&seen, u).is_empty()) {
        let Some(d) = next_presence(client, deadline, |_| true).await else {
            break;
        };
        seen.push((tokio::time::Instant::now(), d));
    }
    seen.extend(updates(client, QUIET).await);
    seen
}

/// The statuses of `user` among `updates`, in order.
pub(crate) fn statuses(updates: &[(tokio::time::Instant, Value)], user: &User) -> Vec<String> {
    updates
        .iter()
        .filter(|(_, d)| d["user_id"] == user.id.to_string())
        .map(|(_, d)| d["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The next PRESENCE_UPDATE about `user` (within `within`), skipping other frames.
pub(crate) async fn next_update(client: &mut Client, user: &User, within: Duration) -> Value {
    let id = user.id.to_string();
    next_presence(client, tokio::time::Instant::now() + within, |d| {
        d["user_id"] == id
    })
    .await
    .unwrap_or_else(|| panic!("no PRESENCE_UPDATE about {} within {within:?}", user.name))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
