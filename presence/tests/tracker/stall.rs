//! Presence itself stalls (its process stopped, as a machine starved of CPU stops it) for longer
//! than the expiry while an edge keeps heartbeating. When presence runs again, the heartbeats are
//! waiting for it: the live edge is not declared dead and its user never shows offline.
//!
//! Presence runs as its own process here, so the test can stop it (SIGSTOP) and let it go on.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use proto::Snowflake;
use proto::api::presence::PresenceStatus;
use proto::events::Event;
use proto::subjects::Subjects;
use proto::tracker::{Heartbeat, Report, SessionEntry, SessionStatus};
use testkit::{ServiceProcess, Stack};

const EXPIRY: Duration = Duration::from_secs(1);

/// The presence binary, killed when dropped.
struct PresenceProcess {
    process: ServiceProcess,
}

impl PresenceProcess {
    async fn start(stack: &Stack, subjects: &Subjects) -> Self {
        let args = [
            format!("--nats-url={}", stack.nats_url),
            format!("--nats-prefix={}", subjects.prefix()),
            format!("--redis-url={}", stack.redis_url),
            format!("--expiry={}ms", EXPIRY.as_millis()),
            "--reconnect-grace=1s".to_owned(),
            "--sweep-interval=100ms".to_owned(),
            "--log-filter=warn".to_owned(),
        ];
        let binary = Path::new(env!("CARGO_BIN_EXE_presence"));
        Self {
            process: ServiceProcess::start_binary(binary, &args).await,
        }
    }

    async fn dead_edges(&self) -> u64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.process.metrics_port);
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        text.lines()
            .find(|l| l.starts_with("natter_presence_dead_edges_total"))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .expect("the dead edges counter")
    }
}

impl Drop for PresenceProcess {
    fn drop(&mut self) {
        self.process.signal("CONT");
    }
}

#[tokio::test]
async fn a_presence_stalled_longer_than_the_expiry_declares_no_heartbeating_edge_dead() {
    let stack = Stack::get();
    let subjects = Subjects::new(testkit::fresh_prefix());
    let presence = PresenceProcess::start(&stack, &subjects).await;
    let nats = async_nats::connect(&stack.nats_url).await.unwrap();
    let (edge, user) = (Snowflake::from_u64(7), Snowflake::from_u64(7001));
    let mut others = nats.subscribe(subjects.presence(user)).await.unwrap();
    nats.flush().await.unwrap();

    // A live edge: one session, and a heartbeat every 200 ms (well within the expiry) throughout.
    let report = Report::Session {
        edge,
        entry: SessionEntry {
            session: 1,
            user,
            status: SessionStatus::Online,
        },
    };
    let body = serde_json::to_vec(&report).unwrap();
    nats.publish(subjects.presence_report(), body.into())
        .await
        .unwrap();
    let heartbeats = {
        let (nats, subject) = (nats.clone(), subjects.presence_heartbeat());
        tokio::spawn(async move {
            loop {
                let body = serde_json::to_vec(&Heartbeat { edge }).unwrap();
                nats.publish(subject.clone(), body.into()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let online = next_update(&mut others, Duration::from_secs(10))
        .await
        .expect("the user comes online");
    assert_eq!(online, PresenceStatus::Online);

    // Presence stops for three expiries; the edge goes on heartbeating into its queue.
    presence.process.signal("STOP");
    tokio::time::sleep(EXPIRY * 3).await;
    presence.process.signal("CONT");

    // Long enough for a sweep that trusted the stale deadlines to have said offline.
    let after = next_update(&mut others, EXPIRY * 3).await;
    assert_eq!(after, None, "the user of a live edge was shown {after:?}");
    assert_eq!(
        presence.dead_edges().await,
        0,
        "a live edge was declared dead"
    );

    // And a silent edge is still noticed: stop heartbeating, and the user goes offline.
    heartbeats.abort();
    let offline = next_update(&mut others, Duration::from_secs(10)).await;
    assert_eq!(offline, Some(PresenceStatus::Offline));
    assert_eq!(presence.dead_edges().await, 1);
}

/// The next status others see of the user, if one comes within `within`.
async fn next_update(
    others: &mut async_nats::Subscriber,
    within: Duration,
) -> Option<PresenceStatus> {
    let message = tokio::time::timeout(within, others.next()).await.ok()??;
    match serde_json::from_slice(&message.payload).unwrap() {
        Event::PresenceUpdate(presence) => Some(presence.status),
        other => panic!("unexpected {other:?}"),
    }
}
