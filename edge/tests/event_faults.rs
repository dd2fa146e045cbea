//! What auth tells users, servers and channels survives messaging faults: while an edge is cut
//! off from NATS, or NATS is SIGKILLed and restarted, auth edits a role so that a member no longer
//! sees a channel, adds a member to a group channel, renames the role and signs a session out.
//! Afterwards every device on the edge has received each of those events once and in order, the
//! session signed out is closed, and the member who lost VIEW_CHANNEL hears nothing more of the
//! channel: the edge's copy of the server's permissions is right again.
//!
//! Each test runs its own NATS server (its own port and store), never the stack's.

#[allow(dead_code)]
#[path = "gateway/support.rs"]
mod support;

use std::time::Duration;

use proto::Snowflake;
use proto::permissions::Permissions;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{NatsServer, Stack, TcpProxy};

use support::{Client, Engines, User, World};

/// A periodic check every 2 s; devices that do not heartbeat for the length of a test.
const EDGE: &[&str] = &["--delivery-check-interval=2s", "--heartbeat-interval=300s"];

/// How long a device may wait for what the fault held up (the edge's reconnect comes after a
/// random backoff of up to 4 s, and the machine may be loaded).
const PATIENCE: Duration = Duration::from_secs(60);

/// A server whose channel `general` bob sees only through the role `crew`, a group channel
/// `room` of ann and bob, and the devices: ann's on the edge that stays connected, bob's two and
/// cat's on the edge the fault hits.
struct Scene {
    guild: Snowflake,
    general: Snowflake,
    crew: Snowflake,
    room: Snowflake,
    ann: User,
    cat: User,
    ann_0: Client,
    bob_1: Client,
    /// Bob's second device's session, signed out during the fault.
    phone: User,
    bob_phone: Client,
    cat_1: Client,
}

impl Scene {
    async fn start(world: &World) -> Self {
        let ann = world.sign_up("ann").await;
        let bob = world.sign_up("bob").await;
        let cat = world.sign_up("cat").await;
        let (guild, general) = world.guild(&ann, "Guild").await;
        let (status, body) = world
            .auth_call(
                Method::PATCH,
                &format!("/api/v1/guilds/{guild}/roles/{guild}"),
                &ann,
                Some(json!({"permissions":
                    (Permissions::DEFAULT_EVERYONE - Permissions::VIEW_CHANNEL).bits().to_string()})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let crew = world
            .role(guild, &ann, "crew", Permissions::DEFAULT_EVERYONE)
            .await;
        world.join_guild(guild, &ann, &bob).await;
        world.set_role(guild, &ann, &bob, crew, true).await;
        let room = world.channel(&ann, "room", &[&bob]).await;
        world.allow_adds(&cat).await;

        let ann_0 = Client::connect(&world.gateway(0), &ann).await;
        let bob_1 = Client::connect(&world.gateway(1), &bob).await;
        let phone = sign_in(world, &bob).await;
        let bob_phone = Client::connect(&world.gateway(1), &phone).await;
        let cat_1 = Client::connect(&world.gateway(1), &cat).await;
        let sees = |ready: &Value| {
            ready["d"]["guilds"][0]["channels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == general.to_string())
        };
        assert!(sees(&bob_1.ready), "bob sees general through crew");
        Self {
            guild,
            general,
            crew,
            room,
            ann,
            cat,
            ann_0,
            bob_1,
            phone,
            bob_phone,
            cat_1,
        }
    }

    /// The changes auth makes while the edge cannot hear them.
    async fn change(&self, world: &World) {
        let without_view = Permissions::DEFAULT_EVERYONE - Permissions::VIEW_CHANNEL;
        self.edit_crew(
            world,
            json!({"permissions": without_view.bits().to_string()}),
        )
        .await;
        world.add_member(&self.ann, self.room, &self.cat).await;
        self.edit_crew(world, json!({"name": "former crew"})).await;
        let (status, body) = world
            .auth_call(Method::POST, "/api/v1/auth/sign-out", &self.phone, None)
            .await;
        assert_eq!(status, 204, "{body}");
    }

    async fn edit_crew(&self, world: &World, body: Value) {
        let (status, body) = world
            .auth_call(
                Method::PATCH,
                &format!("/api/v1/guilds/{}/roles/{}", self.guild, self.crew),
                &self.ann,
                Some(body),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// After the fault: every device got what it should, once and in order.
    async fn check(mut self) {
        let (general, room, crew) = (self.general, self.room, self.crew.to_string());
        // Bob: the role edit, the channel gone, the newcomer in his group channel, the rename.
        let got = until(&mut self.bob_1, "bob", |seen| {
            seen.iter()
                .any(|f| f["t"] == "GUILD_ROLE_UPDATE" && f["d"]["role"]["name"] == "former crew")
                && seen.iter().any(|f| f["t"] == "CHANNEL_MEMBER_ADD")
        })
        .await;
        let mut got = settle(&mut self.bob_1, got).await;
        got.retain(|f| {
            matches!(
                f["t"].as_str(),
                Some("GUILD_ROLE_UPDATE" | "CHANNEL_DELETE" | "CHANNEL_MEMBER_ADD")
            )
        });
        let role_updates: Vec<&Value> = got
            .iter()
            .filter(|f| f["t"] == "GUILD_ROLE_UPDATE" && f["d"]["role"]["id"] == crew)
            .collect();
        assert_eq!(role_updates.len(), 2, "each role update once: {got:?}");
        assert_eq!(role_updates[0]["d"]["role"]["name"], "crew", "in order");
        assert_eq!(role_updates[1]["d"]["role"]["name"], "former crew");
        let deletes: Vec<&Value> = got.iter().filter(|f| f["t"] == "CHANNEL_DELETE").collect();
        assert_eq!(deletes.len(), 1, "{got:?}");
        assert_eq!(deletes[0]["d"]["channel_id"], general.to_string());
        let position = |t: &str| got.iter().position(|f| f["t"] == t).unwrap();
        assert!(position("GUILD_ROLE_UPDATE") < position("CHANNEL_DELETE"));
        let adds: Vec<&Value> = got
            .iter()
            .filter(|f| f["t"] == "CHANNEL_MEMBER_ADD")
            .collect();
        assert_eq!(adds.len(), 1, "{got:?}");
        assert_eq!(
            adds[0]["d"]["member"]["user"]["id"],
            self.cat.id.to_string()
        );

        // Cat: the group channel, once.
        let got = until(&mut self.cat_1, "cat", |seen| {
            seen.iter().any(|f| f["t"] == "CHANNEL_CREATE")
        })
        .await;
        let got = settle(&mut self.cat_1, got).await;
        let creates = got
            .iter()
            .filter(|f| f["t"] == "CHANNEL_CREATE" && f["d"]["id"] == room.to_string())
            .count();
        assert_eq!(creates, 1, "{got:?}");

        // Bob's phone: told it was signed out, then closed.
        let got = until(&mut self.bob_phone, "bob's phone", |seen| {
            seen.iter().any(|f| f["t"] == "SESSION_REVOKED")
        })
        .await;
        assert_eq!(
            got.iter().filter(|f| f["t"] == "SESSION_REVOKED").count(),
            1
        );
        assert_eq!(self.bob_phone.closed().await, Some(4004));

        // What ann says in general no longer reaches bob; what she says in the room reaches
        // bob and cat, whose session joined it.
        let ack = self.ann_0.send(general, "crew only", "g1").await;
        assert_eq!(ack["op"], 24, "{ack}");
        let ack = self.ann_0.send(room, "welcome cat", "r1").await;
        assert_eq!(ack["op"], 24, "{ack}");
        for (name, client) in [("bob", &mut self.bob_1), ("cat", &mut self.cat_1)] {
            let got = until(client, name, |seen| {
                seen.iter().any(|f| f["d"]["content"] == "welcome cat")
            })
            .await;
            let contents: Vec<&Value> = got
                .iter()
                .filter(|f| f["t"] == "MESSAGE_CREATE")
                .map(|f| &f["d"]["content"])
                .collect();
            assert_eq!(contents, ["welcome cat"], "{name}");
        }
        self.bob_1.no_messages().await;
    }
}

/// A second session of `user` (another device signing in).
async fn sign_in(world: &World, user: &User) -> User {
    let (status, body) = world
        .call(
            Method::POST,
            "/api/v1/auth/sign-in",
            None,
            json!({"username": user.name,
                   "password": format!("{} likes violet kettle drums", user.name)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    User {
        token: body["access_token"].as_str().unwrap().to_owned(),
        ..user.clone()
    }
}

/// Reads a device's frames until `done` says what it has seen is enough; the socket must stay
/// open meanwhile (a repair, not a resume).
async fn until(client: &mut Client, name: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while !done(&seen) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "{name} still lacks events; got {seen:?}");
        if let Some(frame) = client.next_within(left).await {
            seen.push(frame);
        } else if tokio::time::Instant::now() < deadline {
            panic!("{name}'s socket closed; got {seen:?}");
        }
    }
    seen
}

/// What arrives for a few seconds more (a copy, if the edge handed one out twice).
async fn settle(client: &mut Client, mut seen: Vec<Value>) -> Vec<Value> {
    while let Some(frame) = client.next_within(Duration::from_secs(3)).await {
        seen.push(frame);
    }
    seen
}

/// `NATTER_TEST_LOG=edge=info` shows the services' logs.
use testkit::logs;

/// ann's edge reaches NATS directly; bob's and cat's through `proxy`.
async fn world_with_cut_edge(nats: &NatsServer, proxy: &TcpProxy) -> World {
    let mut world = World::start_on(Engines::nats(nats.url()), 1, EDGE).await;
    let through = format!("--nats-url={}", proxy.nats_url());
    let mut args = EDGE.to_vec();
    args.push(&through);
    world.add_edge(2, &args).await;
    world
}

#[tokio::test]
async fn an_edge_cut_off_from_nats_misses_no_server_inbox_or_channel_event() {
    logs();
    let nats = NatsServer::start(&Stack::get()).await;
    let proxy = TcpProxy::start(nats.addr()).await;
    let world = world_with_cut_edge(&nats, &proxy).await;
    let scene = Scene::start(&world).await;

    proxy.cut();
    scene.change(&world).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.restore();

    scene.check().await;
}

#[tokio::test]
async fn nats_killed_and_restarted_while_auth_changes_things_loses_no_event() {
    logs();
    let mut nats = NatsServer::start(&Stack::get()).await;
    let proxy = TcpProxy::start(nats.addr()).await;
    let world = world_with_cut_edge(&nats, &proxy).await;
    let scene = Scene::start(&world).await;

    // NATS goes down as auth starts changing things: auth's publishes wait for JetStream,
    // retried, until it is back. The edge behind the proxy comes back only after every change,
    // so all of them reach it through the repair.
    nats.kill();
    proxy.cut();
    let restart = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        nats.resume().await;
    };
    tokio::join!(scene.change(&world), restart);
    proxy.restore();

    scene.check().await;
}

/// How the events stream comes to no longer hold what the cut-off edge missed.
#[derive(Clone, Copy, Debug)]
enum Loss {
    /// Its limits (one event, here) push it out: a later event of another subject takes its
    /// place, and nothing later of its own subject reveals the gap.
    PushedOut,
    /// An operator purges the stream.
    Purged,
}

/// Bob's edge is cut off from NATS while his role loses VIEW_CHANNEL on `general`, and the events
/// stream drops that event before the edge is back: no repair can bring it, so the edge must
/// not carry on with bob's stale access. His session is closed with the resumable code, RESUMED
/// no longer lists the channel, and what ann says there does not reach him.
async fn an_event_the_events_stream_no_longer_holds_makes_the_session_start_over(loss: Loss) {
    logs();
    let nats = NatsServer::start(&Stack::get()).await;
    let proxy = TcpProxy::start(nats.addr()).await;
    let world = world_with_cut_edge(&nats, &proxy).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, general) = world.guild(&ann, "Guild").await;
    let without_view = Permissions::DEFAULT_EVERYONE - Permissions::VIEW_CHANNEL;
    let (status, body) = world
        .auth_call(
            Method::PATCH,
            &format!("/api/v1/guilds/{guild}/roles/{guild}"),
            &ann,
            Some(json!({"permissions": without_view.bits().to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let crew = world
        .role(guild, &ann, "crew", Permissions::DEFAULT_EVERYONE)
        .await;
    world.join_guild(guild, &ann, &bob).await;
    world.set_role(guild, &ann, &bob, crew, true).await;
    let mut ann_0 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(1), &bob).await;
    let sees_general = |guilds: &Value| {
        guilds[0]["channels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == general.to_string())
    };
    assert!(sees_general(&bob_1.ready["d"]["guilds"]), "through crew");

    let subjects = proto::subjects::Subjects::new(world.prefix.clone());
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let stream = js
        .get_stream(subjects.events_stream_name())
        .await
        .expect("this world's events stream");
    if let Loss::PushedOut = loss {
        let mut config = stream.cached_info().config.clone();
        config.max_messages = 1;
        js.update_stream(config).await.expect("tiny limits");
    }

    proxy.cut();
    let (status, body) = world
        .auth_call(
            Method::PATCH,
            &format!("/api/v1/guilds/{guild}/roles/{crew}"),
            &ann,
            Some(json!({"permissions": without_view.bits().to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    match loss {
        // Ann's new server is told to her inbox: the stream keeps that alone.
        Loss::PushedOut => {
            world.guild(&ann, "Another").await;
        }
        Loss::Purged => {
            stream.purge().await.expect("purge the events stream");
        }
    }
    assert!(
        stream
            .get_last_raw_message_by_subject(&subjects.guild_intake(guild))
            .await
            .is_err(),
        "the stream still holds the server's events ({loss:?})"
    );
    proxy.restore();

    // Told to start over, then resumed: the channel is gone from what RESUMED lists.
    let session = bob_1.session_id();
    assert_eq!(bob_1.closed_within(PATIENCE).await, Some(4000), "{loss:?}");
    let (mut bob_again, _) = Client::resume(&world.gateway(1), &bob, &session, bob_1.seq).await;
    assert!(
        !sees_general(&bob_again.ready["d"]["guilds"]),
        "RESUMED still lists general: {}",
        bob_again.ready
    );
    let ack = ann_0.send(general, "crew only", "g1").await;
    assert_eq!(ack["op"], 24, "{ack}");
    bob_again.no_messages().await;
}

#[tokio::test]
async fn an_event_pushed_out_of_the_events_stream_makes_the_session_start_over() {
    Box::pin(
        an_event_the_events_stream_no_longer_holds_makes_the_session_start_over(Loss::PushedOut),
    )
    .await;
}

#[tokio::test]
async fn an_event_purged_from_the_events_stream_makes_the_session_start_over() {
    Box::pin(an_event_the_events_stream_no_longer_holds_makes_the_session_start_over(Loss::Purged))
        .await;
}
