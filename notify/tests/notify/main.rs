//! Notifications end to end against the real stack: real auth, presence, persister, an edge and
//! notify, and a push service under the test's control that decrypts what it receives (RFC 8291).

mod edits;
mod support;

use proto::Snowflake;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Club, PushService, Session, User, WAIT, World, inbox};

fn id_of(value: &Value) -> Snowflake {
    value.as_str().unwrap().parse().unwrap()
}

/// Waits until `viewer` sees `who` with `status` (the edge reported the session to presence).
async fn wait_status(world: &World, viewer: &User, who: &User, status: &str) {
    let path = format!("/api/v1/presences?user_ids={}", who.id);
    testkit::eventually(&format!("{} {status}", who.name), WAIT, || async {
        let (code, body) = world.edge(Method::GET, &path, viewer, None).await;
        let shown = body
            .as_array()
            .or_else(|| body["presences"].as_array())
            .and_then(|all| all.first().cloned())?;
        (code == 200 && shown["status"] == status).then_some(())
    })
    .await;
}

/// A channel of `guild` that `owner` makes.
async fn channel(world: &World, guild: Snowflake, owner: &User, name: &str) -> Snowflake {
    let (status, body) = world
        .auth(
            Method::POST,
            &format!("/api/v1/guilds/{guild}/channels"),
            owner,
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    id_of(&body["id"])
}

#[tokio::test]
async fn an_away_user_gets_a_decrypted_push_an_active_one_none_and_a_busy_channel_is_batched() {
    let world = World::start("10s").await;
    let push = PushService::start().await;
    let Club {
        ann,
        bob,
        cat,
        guild,
        general,
    } = world.club().await;
    world.subscribe(&bob, &push, "bob-laptop").await;
    world.subscribe(&bob, &push, "gone-phone").await;
    world.subscribe(&cat, &push, "cat-laptop").await;
    let _cat_here = Session::open(&world, &cat, "online").await;
    wait_status(&world, &ann, &cat, "online").await;

    // bob has no session: away. cat is active. ann mentions both.
    let text = format!("hey <@{}> and <@{}>, the budget?", bob.id, cat.id);
    let message = world.say(&ann, general, &text).await;
    let got = push
        .wait_for("bob-laptop", |p| p["message_id"] == message.to_string())
        .await;
    assert_eq!(got.payload["channel_id"], general.to_string());
    assert_eq!(got.payload["guild_id"], guild.to_string());
    assert_eq!(got.payload["author_id"], ann.id.to_string());
    assert_eq!(got.payload["author"], "ann");
    assert!(
        got.payload["body"]
            .as_str()
            .unwrap()
            .contains("the budget?"),
        "{}",
        got.payload
    );
    assert!(
        got.authorization.starts_with("vapid t="),
        "VAPID (RFC 8292): {}",
        got.authorization
    );
    assert_eq!(got.topic.as_deref(), Some(general.to_string().as_str()));

    // cat was considered and not pushed: active.
    testkit::eventually("cat counted as active", WAIT, || async {
        (world
            .notify_metric("natter_notify_pushes_total", "outcome=\"active\"")
            .await
            >= 1)
            .then_some(())
    })
    .await;
    assert!(
        push.received()
            .iter()
            .all(|r| r.endpoint != push.endpoint("cat-laptop")),
        "an active user got a push"
    );

    // The push service said the phone's subscription is gone: it is removed.
    push.wait_for("gone-phone", |_| true).await;
    testkit::eventually("the gone subscription pruned", WAIT, || async {
        (world
            .notify_metric("natter_notify_subscriptions_pruned_total", "")
            .await
            >= 1)
            .then_some(())
    })
    .await;
    let (status, body) = world
        .auth(
            Method::DELETE,
            "/api/v1/users/@me/push-subscriptions",
            &bob,
            Some(json!({"endpoint": push.endpoint("gone-phone")})),
        )
        .await;
    assert_eq!(status, 404, "the pruned subscription is gone: {body}");

    // A busy channel: five mentions in a row reach bob as two pushes, the first at once and
    // the rest collapsed into one when the window ends, carrying the newest.
    let busy = channel(&world, guild, &ann, "busy").await;
    let mut last = Snowflake::from_u64(0);
    for i in 0..5 {
        last = world
            .say(&ann, busy, &format!("<@{}> ping {i}", bob.id))
            .await;
    }
    let collapsed = push
        .wait_for("bob-laptop", |p| p["message_id"] == last.to_string())
        .await;
    let to_bob_in_busy: Vec<_> = push
        .received()
        .into_iter()
        .filter(|r| {
            r.endpoint == push.endpoint("bob-laptop") && r.payload["channel_id"] == busy.to_string()
        })
        .collect();
    assert_eq!(
        to_bob_in_busy.len(),
        2,
        "one push at once, one for the rest: {to_bob_in_busy:?}"
    );
    assert_eq!(collapsed.payload["count"], 4, "{}", collapsed.payload);
}

#[tokio::test]
async fn settings_are_honoured_muted_mentions_only_suppressed_everyone_and_dnd() {
    let world = World::start("1s").await;
    let push = PushService::start().await;
    let Club {
        ann,
        bob,
        cat,
        guild,
        general: _,
    } = world.club().await;
    world.subscribe(&bob, &push, "bob-laptop").await;
    world.subscribe(&cat, &push, "cat-laptop").await;
    let guild_key = guild.to_string();
    let first_to = |name: &str, channel: Snowflake| {
        push.received()
            .into_iter()
            .find(|r| {
                r.endpoint == push.endpoint(name) && r.payload["channel_id"] == channel.to_string()
            })
            .map(|r| r.payload["message_id"].clone())
    };

    // A muted channel tells bob of mentions only (as on Discord); the plain message is silent.
    let muted = channel(&world, guild, &ann, "muted").await;
    let settings = world
        .settings(
            &bob,
            &guild_key,
            json!({"channel_overrides": [{"channel_id": muted, "message_notifications": 3, "muted": true}]}),
        )
        .await;
    assert_eq!(
        settings["channel_overrides"][0]["muted"], true,
        "{settings}"
    );
    world.say(&ann, muted, "lunch anyone?").await;
    let mention = world
        .say(&ann, muted, &format!("<@{}> lunch?", bob.id))
        .await;
    push.wait_for("bob-laptop", |p| p["message_id"] == mention.to_string())
        .await;
    assert_eq!(
        first_to("bob-laptop", muted),
        Some(json!(mention.to_string()))
    );

    // Only mentions for the whole server, and @everyone suppressed.
    world
        .settings(
            &bob,
            &guild_key,
            json!({"message_notifications": 1, "suppress_everyone": true}),
        )
        .await;
    let quiet = channel(&world, guild, &ann, "quiet").await;
    world.say(&ann, quiet, "just chatting").await;
    world.say(&ann, quiet, "@everyone meeting at noon").await;
    let mention = world
        .say(&ann, quiet, &format!("<@{}> you too", bob.id))
        .await;
    push.wait_for("bob-laptop", |p| p["message_id"] == mention.to_string())
        .await;
    assert_eq!(
        first_to("bob-laptop", quiet),
        Some(json!(mention.to_string()))
    );

    // cat on Do Not Disturb: mentioned, no push, but the inbox has it. Once cat has gone, the
    // next mention is pushed (and is the first).
    let dnd = channel(&world, guild, &ann, "dnd").await;
    let session = Session::open(&world, &cat, "dnd").await;
    wait_status(&world, &ann, &cat, "dnd").await;
    let while_dnd = world
        .say(&ann, dnd, &format!("<@{}> urgent?", cat.id))
        .await;
    testkit::eventually("cat's inbox entry", WAIT, || async {
        let (_, inbox) = world
            .notify(Method::GET, "/api/v1/users/@me/mentions", &cat)
            .await;
        inbox
            .as_array()?
            .iter()
            .any(|e| e["id"] == while_dnd.to_string())
            .then_some(())
    })
    .await;
    drop(session);
    wait_status(&world, &ann, &cat, "offline").await;
    let after = world
        .say(&ann, dnd, &format!("<@{}> still there?", cat.id))
        .await;
    push.wait_for("cat-laptop", |p| p["message_id"] == after.to_string())
        .await;
    assert_eq!(first_to("cat-laptop", dnd), Some(json!(after.to_string())));

    // Settings reach every device and READY.
    let (status, all) = world
        .auth(Method::GET, "/api/v1/users/@me/guilds/settings", &bob, None)
        .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all[0]["guild_id"], guild_key, "{all}");
    assert_eq!(all[0]["message_notifications"], 1);
    assert_eq!(all[0]["suppress_everyone"], true);
}

#[tokio::test]
async fn the_inbox_lists_mentions_and_dms_marks_them_read_from_any_device_and_forgets_what_one_cannot_read()
 {
    let world = World::start("30s").await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let (guild, general) = world.guild(&ann, &[&bob]).await;
    let mention = world
        .say(&ann, general, &format!("<@{}> see the plan", bob.id))
        .await;
    let (status, dm) = world
        .auth(
            Method::POST,
            "/api/v1/users/@me/dms",
            &ann,
            Some(json!({"username": "bob"})),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {dm}");
    let dm = id_of(&dm["id"]);
    let direct = world.say(&ann, dm, "psst").await;

    let inbox = |wanted: usize| {
        let world = &world;
        let bob = &bob;
        async move {
            testkit::eventually(&format!("{wanted} inbox entries"), WAIT, || async {
                let (status, inbox) = world
                    .notify(Method::GET, "/api/v1/users/@me/mentions", bob)
                    .await;
                let entries = inbox.as_array()?.clone();
                (status == 200 && entries.len() == wanted).then_some(entries)
            })
            .await
        }
    };
    let entries = inbox(2).await;
    assert_eq!(entries[0]["id"], direct.to_string(), "newest first");
    assert_eq!(entries[0]["reason"], "direct");
    assert_eq!(entries[0]["read"], false);
    assert_eq!(entries[1]["id"], mention.to_string());
    assert_eq!(entries[1]["reason"], "mention");
    assert_eq!(entries[1]["guild_id"], guild.to_string());
    assert_eq!(entries[1]["content"], format!("<@{}> see the plan", bob.id));

    // While auth cannot say which channels bob may read, the list says so rather than showing
    // nothing; it is whole again once auth is.
    world.auth_database.cut();
    let (status, body) = world
        .notify(Method::GET, "/api/v1/users/@me/mentions", &bob)
        .await;
    assert_eq!(status, 503, "{body}");
    world.auth_database.restore();
    inbox(2).await;

    // bob reads the server's channel on another device (the edge's read marker).
    let (status, body) = world
        .edge(
            Method::POST,
            &format!("/api/v1/channels/{general}/messages/{mention}/ack"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (_, now) = world
        .notify(Method::GET, "/api/v1/users/@me/mentions", &bob)
        .await;
    assert_eq!(now[1]["read"], true, "{now}");
    assert_eq!(now[0]["read"], false, "{now}");

    // Removing one.
    let (status, _) = world
        .notify(
            Method::DELETE,
            &format!("/api/v1/users/@me/mentions/{direct}"),
            &bob,
        )
        .await;
    assert_eq!(status, 204);
    inbox(1).await;

    // bob leaves the server: its channel's entries are no longer shown.
    let (status, body) = world
        .auth(
            Method::DELETE,
            &format!("/api/v1/users/@me/guilds/{guild}"),
            &bob,
            None,
        )
        .await;
    assert!(status == 204 || status == 200, "{status} {body}");
    inbox(0).await;

    // Only a signed-in caller has an inbox.
    let stranger = User {
        token: "not a token".into(),
        ..bob.clone()
    };
    let (status, _) = world
        .notify(Method::GET, "/api/v1/users/@me/mentions", &stranger)
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_deleted_message_leaves_every_inbox_and_the_others_stay() {
    let world = World::start("30s").await;
    let Club {
        ann,
        bob,
        cat,
        guild: _,
        general,
    } = world.club().await;
    let doomed = world
        .say(
            &ann,
            general,
            &format!("<@{}> <@{}> the old plan", bob.id, cat.id),
        )
        .await;
    let kept = world
        .say(&ann, general, &format!("<@{}> the new plan", bob.id))
        .await;
    let ids = |user: &User| {
        let (world, user) = (&world, user.clone());
        async move {
            inbox(world, &user)
                .await
                .into_iter()
                .map(|(id, _)| id)
                .collect::<Vec<_>>()
        }
    };
    testkit::eventually("both inboxes filled", WAIT, || async {
        let (bobs, cats) = (ids(&bob).await, ids(&cat).await);
        (bobs.len() == 2 && cats.len() == 1).then_some(())
    })
    .await;

    let (status, body) = world
        .edge(
            Method::DELETE,
            &format!("/api/v1/channels/{general}/messages/{doomed}"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    testkit::eventually(
        "the deleted message gone from both inboxes",
        WAIT,
        || async {
            let (bobs, cats) = (ids(&bob).await, ids(&cat).await);
            (bobs == vec![kept.to_string()] && cats.is_empty()).then_some(())
        },
    )
    .await;
    assert!(
        world
            .notify_metric("natter_notify_inbox_forgotten_total", "")
            .await
            >= 2
    );
}

#[tokio::test]
async fn notify_is_ready_once_its_consumer_is_made_and_reads_on_after_it_is_deleted() {
    let world = World::start("30s").await;
    // Ready means the durable consumer is made, so a message sent from now on waits for notify
    // however late its worker first pulls (CI once sent the first mentions before that).
    let js = async_nats::jetstream::new(world.nats.clone());
    let stream = js
        .get_stream(world.subjects.chat_stream_name())
        .await
        .expect("the chat stream");
    stream
        .consumer_info(notify::worker::DURABLE)
        .await
        .expect("the consumer made before notify is ready");
    let Club {
        ann, bob, general, ..
    } = world.club().await;
    world
        .say(&ann, general, &format!("<@{}> before", bob.id))
        .await;
    testkit::eventually("the first mention in bob's inbox", WAIT, || async {
        (inbox(&world, &bob).await.len() == 1).then_some(())
    })
    .await;

    // An operator (or a stream restored from nothing) takes the consumer away under notify,
    // which must not stop reading: it makes the consumer again and goes on.
    stream
        .delete_consumer(notify::worker::DURABLE)
        .await
        .expect("the consumer deleted");
    testkit::eventually("notify's consumer made again", WAIT, || async {
        js.get_stream(world.subjects.chat_stream_name())
            .await
            .ok()?
            .consumer_info(notify::worker::DURABLE)
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    world
        .say(&ann, general, &format!("<@{}> after", bob.id))
        .await;
    testkit::eventually("the second mention in bob's inbox", WAIT, || async {
        (inbox(&world, &bob).await.len() == 2).then_some(())
    })
    .await;
}
