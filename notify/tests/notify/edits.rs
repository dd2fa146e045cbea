//! Edits follow into the inbox (issues 19 and 17): a mention added by an edit puts the message in
//! that person's inbox without a push, one removed takes it out, the entry's text follows; media's
//! processing updates change nothing, and a deleted message never comes back.

use async_nats::jetstream;
use proto::Snowflake;
use proto::api::messages::Message;
use proto::events::Event;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Club, PushService, User, WAIT, World, inbox};

/// Waits until `user`'s inbox is exactly `expected` (id, text), newest first.
async fn wait_inbox(world: &World, user: &User, expected: &[(Snowflake, &str)], what: &str) {
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(id, text)| (id.to_string(), (*text).to_owned()))
        .collect();
    testkit::eventually(what, WAIT, || async {
        (inbox(world, user).await == expected).then_some(())
    })
    .await;
}

/// `author` edits their `message` to `content` through the edge; the edited message.
async fn edit(
    world: &World,
    author: &User,
    channel: Snowflake,
    message: Snowflake,
    content: &str,
) -> Message {
    let (status, body) = world
        .edge(
            Method::PATCH,
            &format!("/api/v1/channels/{channel}/messages/{message}"),
            author,
            Some(json!({ "content": content })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).expect("a message")
}

/// Publishes `event` into the chat stream as an edge or media would, and waits until notify
/// has looked at one more message update than `before` (`natter_notify_edits_total`).
async fn publish_update(world: &World, message: Message, before: u64) {
    let js = jetstream::new(world.nats.clone());
    js.publish(
        world.subjects.chat_intake(message.channel_id),
        Event::MessageUpdate(message).to_json().into(),
    )
    .await
    .expect("published")
    .await
    .expect("stored");
    testkit::eventually("notify looked at the update", WAIT, || async {
        (edits_seen(world).await > before).then_some(())
    })
    .await;
}

/// Message updates notify has looked at so far (applied or ignored).
async fn edits_seen(world: &World) -> u64 {
    world
        .notify_metric("natter_notify_edits_total", "applied")
        .await
        + world
            .notify_metric("natter_notify_edits_total", "ignored")
            .await
}

#[tokio::test]
async fn an_edit_adding_a_mention_fills_the_inbox_without_a_push_and_one_removing_it_empties_it() {
    let world = World::start("1s").await;
    let push = PushService::start().await;
    let Club {
        ann,
        bob,
        cat,
        guild,
        general,
    } = world.club().await;
    // bob has no session: he is away, and would be pushed a new message that mentions him (and
    // only those: not every message of the server).
    world.subscribe(&bob, &push, "bob-laptop").await;
    world
        .settings(
            &bob,
            &guild.to_string(),
            json!({ "message_notifications": 1 }),
        )
        .await;

    let plan = world.say(&ann, general, "the plan").await;
    let v1 = format!("<@{}> the plan", bob.id);
    let edited = edit(&world, &ann, general, plan, &v1).await;
    assert_eq!(edited.mentioned_ids(), vec![bob.id]);
    wait_inbox(
        &world,
        &bob,
        &[(plan, &v1)],
        "the edit's mention in bob's inbox",
    )
    .await;

    // A new message that mentions bob is pushed; the edit before it was not.
    let later = world
        .say(&ann, general, &format!("<@{}> and one more", bob.id))
        .await;
    let got = push
        .wait_for("bob-laptop", |p| p["message_id"] == later.to_string())
        .await;
    assert_eq!(got.payload["count"], 1, "{}", got.payload);
    assert!(
        push.received()
            .iter()
            .all(|r| r.payload["message_id"] != plan.to_string()),
        "an edit pushes nobody"
    );

    // The mention moves from bob to cat: it leaves bob's inbox and enters cat's.
    let v2 = format!("<@{}> the plan, v2", cat.id);
    edit(&world, &ann, general, plan, &v2).await;
    wait_inbox(
        &world,
        &cat,
        &[(plan, &v2)],
        "the edit's mention in cat's inbox",
    )
    .await;
    wait_inbox(
        &world,
        &bob,
        &[(later, &format!("<@{}> and one more", bob.id))],
        "the edit's removed mention gone from bob's inbox",
    )
    .await;

    // The entry's text follows a further edit.
    let v3 = format!("<@{}> the plan, v3", cat.id);
    edit(&world, &ann, general, plan, &v3).await;
    wait_inbox(
        &world,
        &cat,
        &[(plan, &v3)],
        "cat's entry showing the new text",
    )
    .await;
    assert!(
        world
            .notify_metric("natter_notify_inbox_withdrawn_total", "")
            .await
            >= 1
    );
}

#[tokio::test]
async fn a_processing_update_changes_nothing_and_an_edit_after_the_delete_brings_nothing_back() {
    let world = World::start("30s").await;
    let Club {
        ann,
        bob,
        cat,
        guild: _,
        general,
    } = world.club().await;
    let text = format!("<@{}> hello", bob.id);
    let hello = world.say(&ann, general, &text).await;
    wait_inbox(
        &world,
        &bob,
        &[(hello, &text)],
        "the mention in bob's inbox",
    )
    .await;
    let edited_text = format!("<@{}> hello again", bob.id);
    let edited = edit(&world, &ann, general, hello, &edited_text).await;
    wait_inbox(&world, &bob, &[(hello, &edited_text)], "the edited text").await;
    testkit::eventually("notify counted the edit", WAIT, || async {
        (edits_seen(&world).await >= 1).then_some(())
    })
    .await;

    // A processing update (media's link previews, image sizes): the edit time of the edit before
    // it. Even one that (wrongly) carried other text and mentions changes no inbox.
    let processed = Message {
        content: format!("<@{}> something else", cat.id),
        mentions: vec![cat.id.into()],
        ..edited.clone()
    };
    publish_update(&world, processed, edits_seen(&world).await).await;
    // And one of a message never edited (no edit time) neither.
    let plain = world.say(&ann, general, "nothing for anyone").await;
    let never_edited = Message {
        id: plain,
        content: format!("<@{}> nothing for anyone", cat.id),
        mentions: vec![cat.id.into()],
        edited_at: None,
        ..edited.clone()
    };
    publish_update(&world, never_edited, edits_seen(&world).await).await;
    assert_eq!(
        inbox(&world, &bob).await,
        vec![(hello.to_string(), edited_text)]
    );
    assert!(inbox(&world, &cat).await.is_empty());

    // Deleted, then an edit of it handled late (a retry, or another notify process's): it stays
    // out of every inbox.
    let (status, body) = world
        .edge(
            Method::DELETE,
            &format!("/api/v1/channels/{general}/messages/{hello}"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    wait_inbox(&world, &bob, &[], "the deleted message gone").await;
    let late = Message {
        content: format!("<@{}> <@{}> back from the dead", bob.id, cat.id),
        mentions: vec![bob.id.into(), cat.id.into()],
        edited_at: edited.edited_at.map(|at| at + 60_000),
        ..edited
    };
    publish_update(&world, late, edits_seen(&world).await).await;
    assert!(inbox(&world, &bob).await.is_empty());
    assert!(inbox(&world, &cat).await.is_empty());
}

#[tokio::test]
async fn an_edit_racing_a_delete_leaves_nothing() {
    let world = World::start("30s").await;
    let Club {
        ann,
        bob,
        cat,
        guild: _,
        general,
    } = world.club().await;
    let text = format!("<@{}> the draft", bob.id);
    let draft = world.say(&ann, general, &text).await;
    wait_inbox(
        &world,
        &bob,
        &[(draft, &text)],
        "the mention in bob's inbox",
    )
    .await;

    // The edit (adding cat) and the delete at once: whichever the stream holds first.
    let path = format!("/api/v1/channels/{general}/messages/{draft}");
    let body: Value = json!({ "content": format!("<@{}> <@{}> the draft", bob.id, cat.id) });
    let ((edited, _), (deleted, _)) = tokio::join!(
        world.edge(Method::PATCH, &path, &ann, Some(body)),
        world.edge(Method::DELETE, &path, &ann, None),
    );
    assert!(edited == 200 || edited == 404, "the edit: {edited}");
    assert_eq!(deleted, 204);

    // notify handles the stream in order: once a later message is in both inboxes, the edit
    // and the delete have been handled.
    let after = format!("<@{}> <@{}> after", bob.id, cat.id);
    let sentinel = world.say(&ann, general, &after).await;
    wait_inbox(
        &world,
        &bob,
        &[(sentinel, &after)],
        "only the later message, bob",
    )
    .await;
    wait_inbox(
        &world,
        &cat,
        &[(sentinel, &after)],
        "only the later message, cat",
    )
    .await;
}

#[tokio::test]
async fn an_edit_is_decided_under_the_settings_of_the_edit_not_those_of_the_send() {
    let world = World::start("30s").await;
    let Club {
        ann,
        bob,
        cat,
        guild,
        general,
    } = world.club().await;
    let server = guild.to_string();
    let applied = || world.notify_metric("natter_notify_edits_total", "applied");

    // Sent while bob hears of mentions; he asks for nothing from the server before ann's edit
    // mentions him and cat: only cat is told.
    let plan = world.say(&ann, general, "the plan").await;
    world
        .settings(&bob, &server, json!({ "message_notifications": 2 }))
        .await;
    let before = applied().await;
    let v1 = format!("<@{}> <@{}> the plan", bob.id, cat.id);
    edit(&world, &ann, general, plan, &v1).await;
    wait_inbox(&world, &cat, &[(plan, &v1)], "the edit's mention, cat").await;
    testkit::eventually("notify applied the edit", WAIT, || async {
        (applied().await > before).then_some(())
    })
    .await;
    assert!(
        inbox(&world, &bob).await.is_empty(),
        "bob asked for nothing before the edit"
    );

    // Back to mentions only: the next edit tells him, under the settings he has now.
    world
        .settings(&bob, &server, json!({ "message_notifications": 1 }))
        .await;
    let v2 = format!("<@{}> <@{}> the plan, v2", bob.id, cat.id);
    edit(&world, &ann, general, plan, &v2).await;
    wait_inbox(&world, &bob, &[(plan, &v2)], "the edit's mention, bob").await;

    // Nothing again: an edit decides whole, so the entry bob was given leaves his inbox (the
    // mention is still in the text; cat's entry stays and shows it).
    world
        .settings(&bob, &server, json!({ "message_notifications": 2 }))
        .await;
    let v3 = format!("<@{}> <@{}> the plan, v3", bob.id, cat.id);
    edit(&world, &ann, general, plan, &v3).await;
    wait_inbox(&world, &bob, &[], "bob's entry gone under nothing").await;
    wait_inbox(&world, &cat, &[(plan, &v3)], "cat's entry, v3").await;

    // A DM: told when sent; muted since, an edit takes the entry out; unmuted, the next edit
    // brings it back with its new text.
    let (status, dm) = world
        .auth(
            Method::POST,
            "/api/v1/users/@me/dms",
            &ann,
            Some(json!({ "username": "bob" })),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {dm}");
    let dm: Snowflake = dm["id"].as_str().unwrap().parse().unwrap();
    let psst = world.say(&ann, dm, "psst").await;
    wait_inbox(&world, &bob, &[(psst, "psst")], "the DM in bob's inbox").await;
    world.settings(&bob, "@me", json!({ "muted": true })).await;
    edit(&world, &ann, dm, psst, "psst, edited").await;
    wait_inbox(&world, &bob, &[], "the DM gone once muted").await;
    world.settings(&bob, "@me", json!({ "muted": false })).await;
    edit(&world, &ann, dm, psst, "psst, again").await;
    wait_inbox(
        &world,
        &bob,
        &[(psst, "psst, again")],
        "the DM back once unmuted",
    )
    .await;
}
