//! Presence's own contract over NATS, without edges: reports in, changes out, expiry, grace and
//! resync. Timings are shortened; the sweep runs every 100 ms.

use std::time::Duration;

use futures::StreamExt;
use proto::Snowflake;
use proto::api::presence::{Presence, PresenceStatus};
use proto::events::Event;
use proto::subjects::Subjects;
use proto::tracker::{
    Heartbeat, HeartbeatReply, Query, QueryReply, Report, SessionEntry, SessionStatus, Sync,
};
use testkit::{RedisServer, Running, Stack};

/// How long a test waits for a change it expects (a bound, not a timing: on a busy machine a
/// sweep, or presence itself, can be late).
const WAIT: Duration = Duration::from_secs(15);

struct World {
    nats: async_nats::Client,
    subjects: Subjects,
    _presence: Running,
}

async fn start(redis_url: &str) -> World {
    let stack = Stack::get();
    let prefix = testkit::fresh_prefix();
    let config: presence::Config = kit::config::try_parse_from([
        "presence".to_owned(),
        "--http-addr=127.0.0.1:0".to_owned(),
        "--metrics-addr=127.0.0.1:0".to_owned(),
        format!("--nats-url={}", stack.nats_url),
        format!("--nats-prefix={prefix}"),
        format!("--redis-url={redis_url}"),
        "--expiry=1s".to_owned(),
        "--reconnect-grace=1s".to_owned(),
        "--sweep-interval=100ms".to_owned(),
        "--log-filter=warn".to_owned(),
    ])
    .unwrap();
    let presence = testkit::spawn(presence::Presence::build(config).await.unwrap());
    testkit::wait_ready(&presence).await;
    World {
        nats: async_nats::connect(&stack.nats_url).await.unwrap(),
        subjects: Subjects::new(prefix),
        _presence: presence,
    }
}

impl World {
    /// Publishes without waiting for presence.
    async fn send<T: serde::Serialize>(&self, subject: String, body: &T) {
        let body = serde_json::to_vec(body).unwrap();
        self.nats.publish(subject, body.into()).await.unwrap();
    }

    async fn report(&self, report: &Report) {
        self.send(self.subjects.presence_report(), report).await;
        self.nats.flush().await.unwrap();
    }

    /// Publishes reports back to back, as an edge does when many of its sessions change at
    /// once, then flushes.
    async fn reports(&self, reports: impl IntoIterator<Item = Report>) {
        for report in reports {
            self.send(self.subjects.presence_report(), &report).await;
        }
        self.nats.flush().await.unwrap();
    }

    async fn ask<T: serde::de::DeserializeOwned>(&self, subject: String, body: Vec<u8>) -> T {
        let reply = self.nats.request(subject, body.into()).await.unwrap();
        serde_json::from_slice(&reply.payload).unwrap()
    }

    async fn heartbeat(&self, edge: Snowflake) -> HeartbeatReply {
        let body = serde_json::to_vec(&Heartbeat { edge }).unwrap();
        self.ask(self.subjects.presence_heartbeat(), body).await
    }

    async fn query(&self, user: Snowflake) -> Presence {
        let body = serde_json::to_vec(&Query {
            user_ids: vec![user],
        })
        .unwrap();
        let reply: QueryReply = self.ask(self.subjects.presence_query(), body).await;
        reply.presences[0].clone()
    }

    /// Heartbeats for `edges` every 200 ms (well within the 1 s expiry) until dropped, so their
    /// sessions end only by report.
    fn keep_alive(&self, edges: Vec<Snowflake>) -> KeepAlive {
        let nats = self.nats.clone();
        let subject = self.subjects.presence_heartbeat();
        KeepAlive(tokio::spawn(async move {
            loop {
                for edge in &edges {
                    let body = serde_json::to_vec(&Heartbeat { edge: *edge }).unwrap();
                    nats.publish(subject.clone(), body.into()).await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }))
    }

    /// Others' view of `user`'s changes.
    async fn watch(&self, user: Snowflake) -> async_nats::Subscriber {
        let sub = self
            .nats
            .subscribe(self.subjects.presence(user))
            .await
            .unwrap();
        self.nats.flush().await.unwrap();
        sub
    }
}

struct KeepAlive(tokio::task::JoinHandle<()>);

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn next(sub: &mut async_nats::Subscriber, within: Duration) -> Option<Presence> {
    let message = tokio::time::timeout(within, sub.next()).await.ok()??;
    match serde_json::from_slice(&message.payload).unwrap() {
        Event::PresenceUpdate(p) => Some(p),
        other => panic!("unexpected {other:?}"),
    }
}

fn session(edge: u64, session: u64, user: Snowflake, status: SessionStatus) -> Report {
    Report::Session {
        edge: Snowflake::from_u64(edge),
        entry: SessionEntry {
            session,
            user,
            status,
        },
    }
}

#[tokio::test]
async fn sessions_on_two_edges_combine_and_a_silent_edge_expires() {
    let world = start(&Stack::get().redis_url).await;
    let user = Snowflake::from_u64(1001);
    let mut others = world.watch(user).await;

    world
        .report(&session(1, 1, user, SessionStatus::Idle))
        .await;
    let seen = next(&mut others, WAIT).await.unwrap();
    assert_eq!(seen.status, PresenceStatus::Idle);
    // An active device on another edge outweighs the idle one.
    world
        .report(&session(2, 7, user, SessionStatus::Online))
        .await;
    let seen = next(&mut others, WAIT).await.unwrap();
    assert_eq!(seen.status, PresenceStatus::Online);

    // Edge 2 keeps heartbeating; edge 1 goes silent. Only edge 1's idle session goes.
    for _ in 0..15 {
        world.heartbeat(Snowflake::from_u64(2)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        next(&mut others, Duration::from_millis(100))
            .await
            .is_none()
    );
    assert_eq!(world.query(user).await.status, PresenceStatus::Online);

    // Now edge 2 goes silent too: offline once its deadline passes, with a last-seen time.
    let offline = next(&mut others, WAIT).await.unwrap();
    assert_eq!(offline.status, PresenceStatus::Offline);
    assert!(offline.last_seen.is_some());
    assert_eq!(world.query(user).await, offline);
}

#[tokio::test]
async fn a_session_that_ends_is_offline_only_after_the_grace() {
    let world = start(&Stack::get().redis_url).await;
    let user = Snowflake::from_u64(1002);
    let edge = Snowflake::from_u64(3);
    let mut others = world.watch(user).await;
    let _alive = world.keep_alive(vec![edge]);
    world
        .report(&session(3, 1, user, SessionStatus::Online))
        .await;
    assert!(next(&mut others, WAIT).await.is_some());

    let end = Report::End {
        edge,
        session: 1,
        user,
    };
    world.report(&end).await;
    // Back within the grace: nobody hears a thing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    world
        .report(&session(3, 2, user, SessionStatus::Online))
        .await;
    assert!(
        next(&mut others, Duration::from_millis(1300))
            .await
            .is_none()
    );

    world
        .report(&Report::End {
            edge,
            session: 2,
            user,
        })
        .await;
    let started = std::time::Instant::now();
    let offline = next(&mut others, WAIT).await.unwrap();
    assert_eq!(offline.status, PresenceStatus::Offline);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_edge_is_asked_to_resync_when_redis_lost_its_sessions() {
    let stack = Stack::get();
    let mut redis = RedisServer::start(&stack).await;
    let world = start(&redis.url()).await;
    let user = Snowflake::from_u64(1003);
    let edge = Snowflake::from_u64(4);

    // New to presence: resync; once synced: no more.
    assert!(world.heartbeat(edge).await.resync);
    let sync = Sync {
        edge,
        sessions: vec![SessionEntry {
            session: 1,
            user,
            status: SessionStatus::Dnd,
        }],
    };
    let _: () = world
        .ask(
            world.subjects.presence_sync(),
            serde_json::to_vec(&sync).unwrap(),
        )
        .await;
    assert!(!world.heartbeat(edge).await.resync);
    assert_eq!(world.query(user).await.status, PresenceStatus::Dnd);

    // Redis restarts empty: presence says unknown while it is gone, then asks for the sessions.
    redis.stop();
    testkit::eventually(
        "unknown while Redis is down",
        Duration::from_secs(10),
        || async { (world.query(user).await.status == PresenceStatus::Unknown).then_some(()) },
    )
    .await;
    redis.resume().await;
    testkit::eventually("a resync request", Duration::from_secs(15), || async {
        world.heartbeat(edge).await.resync.then_some(())
    })
    .await;
    let _: () = world
        .ask(
            world.subjects.presence_sync(),
            serde_json::to_vec(&sync).unwrap(),
        )
        .await;
    assert_eq!(world.query(user).await.status, PresenceStatus::Dnd);
}

#[tokio::test]
async fn what_an_edge_sends_is_applied_in_the_order_it_sent_it() {
    let world = start(&Stack::get().redis_url).await;
    let users: Vec<Snowflake> = (0..100).map(|i| Snowflake::from_u64(2000 + i)).collect();
    let mut changes = world
        .nats
        .subscribe(format!("{}.presence.*", world.subjects.prefix()))
        .await
        .unwrap();
    world.nats.flush().await.unwrap();
    // Keep presence busy for a while (one user at a time, in Redis), so what follows queues.
    let busy = Sync {
        edge: Snowflake::from_u64(4999),
        sessions: (0..2000)
            .map(|i| SessionEntry {
                session: i,
                user: Snowflake::from_u64(10_000 + i),
                status: SessionStatus::Online,
            })
            .collect(),
    };
    world.send(world.subjects.presence_sync(), &busy).await;
    // Then for each user, on an edge of their own, back to back: the edge's session list that
    // still holds the user's session, then that session's end. Applied in the other order the
    // session would outlive its end.
    for (i, user) in users.iter().enumerate() {
        let edge = Snowflake::from_u64(5000 + i as u64);
        let entry = SessionEntry {
            session: i as u64,
            user: *user,
            status: SessionStatus::Online,
        };
        let sync = Sync {
            edge,
            sessions: vec![entry],
        };
        world.send(world.subjects.presence_sync(), &sync).await;
        let end = Report::End {
            edge,
            session: entry.session,
            user: *user,
        };
        world.send(world.subjects.presence_report(), &end).await;
    }
    world.nats.flush().await.unwrap();
    // The edges stay alive (so no session ends by expiry, only by its report).
    let _alive = world.keep_alive((0..100).map(|i| Snowflake::from_u64(5000 + i)).collect());
    // Each user shows online, then offline once the grace (1 s) is over.
    let mut offline = std::collections::HashSet::new();
    while offline.len() < users.len() {
        let Some(seen) = next(&mut changes, Duration::from_secs(10)).await else {
            panic!("{} of {} users shown offline", offline.len(), users.len());
        };
        if seen.status == PresenceStatus::Offline && users.contains(&seen.user_id) {
            offline.insert(seen.user_id);
        }
    }
    for user in &users {
        assert_eq!(world.query(*user).await.status, PresenceStatus::Offline);
    }
}

#[tokio::test]
async fn thousands_of_sessions_of_one_user_add_up_to_one_presence() {
    let world = start(&Stack::get().redis_url).await;
    let user = Snowflake::from_u64(1005);
    let edge = Snowflake::from_u64(6);
    let _alive = world.keep_alive(vec![edge]);
    let mut others = world.watch(user).await;

    // 3,000 devices, one of them do-not-disturb, the rest idle: one change for the others.
    let sync = Sync {
        edge,
        sessions: (0..3000)
            .map(|i| SessionEntry {
                session: i,
                user,
                status: if i == 0 {
                    SessionStatus::Dnd
                } else {
                    SessionStatus::Idle
                },
            })
            .collect(),
    };
    let _: () = world
        .ask(
            world.subjects.presence_sync(),
            serde_json::to_vec(&sync).unwrap(),
        )
        .await;
    let seen = next(&mut others, WAIT).await.unwrap();
    assert_eq!(seen.status, PresenceStatus::Dnd);

    // The do-not-disturb device leaves: idle. Then the others, one report each: nothing until
    // the last has gone and the grace is over.
    world
        .reports((0..3000).map(|session| Report::End {
            edge,
            session,
            user,
        }))
        .await;
    let seen = next(&mut others, WAIT).await.unwrap();
    assert_eq!(seen.status, PresenceStatus::Idle);
    let seen = next(&mut others, WAIT).await.unwrap();
    assert_eq!(seen.status, PresenceStatus::Offline);
    assert!(
        next(&mut others, Duration::from_millis(500))
            .await
            .is_none()
    );
    assert_eq!(world.query(user).await.status, PresenceStatus::Offline);
}

#[tokio::test]
async fn devices_that_move_edges_together_are_seen_as_where_they_end() {
    let world = start(&Stack::get().redis_url).await;
    let user = Snowflake::from_u64(1006);
    let (from, to) = (Snowflake::from_u64(7), Snowflake::from_u64(8));
    let _alive = world.keep_alive(vec![from, to]);
    let mut others = world.watch(user).await;
    world
        .reports((0..10).map(|s| session(7, s, user, SessionStatus::Online)))
        .await;
    let seen = next(&mut others, WAIT).await.unwrap();
    assert_eq!(seen.status, PresenceStatus::Online);

    // A reconnect storm in small: every device's end on one edge and its new session on the
    // other, back to back (taken together by presence when they arrive together).
    let ends = (0..10).map(|session| Report::End {
        edge: from,
        session,
        user,
    });
    let starts = (10..20).map(|s| session(8, s, user, SessionStatus::Idle));
    world.reports(ends.chain(starts)).await;
    // Back within the grace, so the others never see them offline: idle, where they ended.
    let seen = next(&mut others, WAIT).await.unwrap();
    assert_eq!(seen.status, PresenceStatus::Idle);
    assert_eq!(world.query(user).await.status, PresenceStatus::Idle);

    // And every device gone at once: offline, after the grace.
    world
        .reports((10..20).map(|session| Report::End {
            edge: to,
            session,
            user,
        }))
        .await;
    let seen = next(&mut others, WAIT).await.unwrap();
    assert_eq!(seen.status, PresenceStatus::Offline);
    assert_eq!(world.query(user).await.status, PresenceStatus::Offline);
}

#[tokio::test]
async fn users_whose_reports_arrive_together_each_end_with_their_own_presence() {
    let world = start(&Stack::get().redis_url).await;
    let edge = Snowflake::from_u64(9);
    let _alive = world.keep_alive(vec![edge]);
    let [online, dnd, invisible, left, idle] =
        [1101, 1102, 1103, 1104, 1105].map(Snowflake::from_u64);
    let mut watched = Vec::new();
    for user in [online, dnd, invisible, left, idle] {
        watched.push(world.watch(user).await);
    }
    // Back to back, as an edge reports a storm's sessions: devices of five users, one of whom
    // comes and goes at once.
    world
        .reports([
            session(9, 1, online, SessionStatus::Online),
            session(9, 2, dnd, SessionStatus::Idle),
            session(9, 3, dnd, SessionStatus::Dnd),
            session(9, 4, invisible, SessionStatus::Invisible),
            session(9, 5, left, SessionStatus::Online),
            Report::End {
                edge,
                session: 5,
                user: left,
            },
            session(9, 6, idle, SessionStatus::Idle),
            session(9, 7, idle, SessionStatus::Idle),
        ])
        .await;
    let [online_seen, dnd_seen, invisible_seen, left_seen, idle_seen] = &mut watched[..] else {
        unreachable!()
    };
    assert_eq!(
        next(online_seen, WAIT).await.unwrap().status,
        PresenceStatus::Online
    );
    assert_eq!(
        next(dnd_seen, WAIT).await.unwrap().status,
        PresenceStatus::Dnd
    );
    assert_eq!(
        next(idle_seen, WAIT).await.unwrap().status,
        PresenceStatus::Idle
    );
    assert_eq!(world.query(online).await.status, PresenceStatus::Online);
    assert_eq!(world.query(dnd).await.status, PresenceStatus::Dnd);
    assert_eq!(world.query(idle).await.status, PresenceStatus::Idle);
    // The invisible user's real status (which edges show to the user alone): nothing for
    // anyone else, nor for the user who left, who never showed.
    assert_eq!(
        world.query(invisible).await.status,
        PresenceStatus::Invisible
    );
    assert_eq!(world.query(left).await.status, PresenceStatus::Offline);
    assert!(
        next(invisible_seen, Duration::from_millis(500))
            .await
            .is_none()
    );
    assert!(next(left_seen, Duration::from_millis(500)).await.is_none());
}
