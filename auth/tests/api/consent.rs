//! Consent: nobody is added to a channel or DMed against their settings or across a block, and
//! a block or a settings change is told to the user's own sessions.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    self, Account, TestAuth, assert_error, id_of, next_event, next_event_named, no_more_events,
};

async fn group(auth: &TestAuth, owner: &Account, name: &str) -> String {
    let (status, channel) = auth
        .post(
            "/api/v1/channels",
            Some(&owner.access),
            json!({"name": name}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    format!("/api/v1/channels/{}", id_of(&channel))
}

async fn add(auth: &TestAuth, by: &Account, channel: &str, who: &Account) -> (StatusCode, Value) {
    auth.post(
        &format!("{channel}/members"),
        Some(&by.access),
        json!({"username": who.username}),
    )
    .await
}

async fn dm(auth: &TestAuth, from: &Account, to: &Account) -> (StatusCode, Value) {
    auth.post(
        "/api/v1/users/@me/dms",
        Some(&from.access),
        json!({"username": to.username}),
    )
    .await
}

async fn set(auth: &TestAuth, who: &Account, settings: Value) -> Value {
    let (status, body) = auth
        .call(
            Method::PATCH,
            "/api/v1/users/@me/settings",
            Some(&who.access),
            Some(settings),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn block(auth: &TestAuth, who: &Account, whom: &Account) -> (StatusCode, Value) {
    auth.call(
        Method::PUT,
        &format!("/api/v1/users/@me/relationships/{}", whom.id),
        Some(&who.access),
        Some(json!({"type": 2})),
    )
    .await
}

async fn members_of(auth: &TestAuth, channel: &str, viewer: &Account) -> Vec<String> {
    let (status, members) = auth
        .get(&format!("{channel}/members"), &viewer.access)
        .await;
    assert_eq!(status, StatusCode::OK, "{members}");
    members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["username"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_stranger_cannot_add_someone_to_a_channel_until_they_reply_to_the_strangers_dm() {
    let auth = support::start().await;
    let mal = auth.sign_up("mal").await;
    let vic = auth.sign_up("vic").await;
    let room = group(&auth, &mal, "trap").await;

    let (status, body) = add(&auth, &mal, &room, &vic).await;
    let refusal = assert_error(status, &body, StatusCode::FORBIDDEN, "consent_required");
    assert!(refusal.contains("vic"), "{refusal}");
    assert_eq!(members_of(&auth, &room, &mal).await, ["mal"]);

    // A DM of mal's own making is not vic's consent.
    assert_eq!(dm(&auth, &mal, &vic).await.0, StatusCode::CREATED);
    let (status, body) = add(&auth, &mal, &room, &vic).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "consent_required");

    // Vic replies (opens the DM on their side, here by Discord's route, by id): now they share
    // a channel of vic's choosing.
    let (status, body) = auth
        .post(
            "/api/v1/users/@me/channels",
            Some(&vic.access),
            json!({"recipient_id": "not an id"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    let (status, opened) = auth
        .post(
            "/api/v1/users/@me/channels",
            Some(&vic.access),
            json!({"recipient_id": mal.id.to_string()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(opened["opened"], true);
    let (status, body) = add(&auth, &mal, &room, &vic).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Nobody: not even people one shares channels with.
    let eve = auth.sign_up("eve").await;
    set(&auth, &vic, json!({"allow_channel_adds_from": "nobody"})).await;
    let other = group(&auth, &mal, "another").await;
    let (status, body) = add(&auth, &mal, &other, &vic).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "consent_required");
    // Everyone: a stranger may.
    set(&auth, &vic, json!({"allow_channel_adds_from": "everyone"})).await;
    let eves = group(&auth, &eve, "eve's").await;
    assert_eq!(add(&auth, &eve, &eves, &vic).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn who_may_open_a_dm_with_someone_follows_their_settings() {
    let auth = support::start().await;
    let (amy, ben, cal) = (
        auth.sign_up("amy").await,
        auth.sign_up("ben").await,
        auth.sign_up("cal").await,
    );
    // The default: anyone may.
    let (_, settings) = auth.get("/api/v1/users/@me/settings", &amy.access).await;
    assert_eq!(
        settings,
        json!({"allow_dms_from": "everyone", "allow_channel_adds_from": "shared"})
    );
    set(&auth, &amy, json!({"allow_dms_from": "shared"})).await;
    let (status, body) = dm(&auth, &ben, &amy).await;
    let refusal = assert_error(status, &body, StatusCode::FORBIDDEN, "consent_required");
    assert_eq!(refusal, "amy does not accept DMs from you");
    // Someone amy shares a group channel with may.
    auth.allow_adds(&cal).await;
    let room = group(&auth, &amy, "amy's").await;
    assert_eq!(add(&auth, &amy, &room, &cal).await.0, StatusCode::CREATED);
    assert_eq!(dm(&auth, &cal, &amy).await.0, StatusCode::CREATED);
    // Nobody: no new DM, but one that exists stays.
    set(&auth, &amy, json!({"allow_dms_from": "nobody"})).await;
    assert_eq!(dm(&auth, &cal, &amy).await.0, StatusCode::OK);
    assert_eq!(dm(&auth, &ben, &amy).await.0, StatusCode::FORBIDDEN);
    // Bad settings change nothing.
    let (status, body) = auth
        .call(
            Method::PATCH,
            "/api/v1/users/@me/settings",
            Some(&amy.access),
            Some(json!({"allow_dms_from": "friends"})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    let (_, settings) = auth.get("/api/v1/users/@me/settings", &amy.access).await;
    assert_eq!(settings["allow_dms_from"], "nobody");
}

#[tokio::test]
async fn a_block_refuses_dms_and_adds_both_ways_and_reads_as_the_blocked_persons_settings() {
    let auth = support::start().await;
    let (ann, bob, cy) = (
        auth.sign_up("ann").await,
        auth.sign_up("bob").await,
        auth.sign_up("cy").await,
    );
    auth.allow_adds(&ann).await;
    auth.allow_adds(&bob).await;
    let mut ann_inbox = auth.inbox(ann.id).await;
    let mut bob_inbox = auth.inbox(bob.id).await;

    assert_eq!(block(&auth, &ann, &bob).await.0, StatusCode::NO_CONTENT);
    let added = next_event_named(&mut ann_inbox, "RELATIONSHIP_ADD").await;
    assert_eq!(added["t"], "RELATIONSHIP_ADD");
    assert_eq!(added["d"]["id"], bob.id.to_string());
    assert_eq!(added["d"]["type"], 2);
    assert_eq!(added["d"]["user"]["username"], "bob");
    let update = next_event_named(&mut bob_inbox, "BLOCK_UPDATE").await;
    assert_eq!(update["d"]["user_id"], ann.id.to_string());
    assert_eq!(update["d"]["target_id"], bob.id.to_string());
    assert_eq!(update["d"]["blocked"], true);
    // Blocking twice is blocking once, and says nothing more.
    assert_eq!(block(&auth, &ann, &bob).await.0, StatusCode::NO_CONTENT);
    no_more_events(&mut ann_inbox).await;
    let (_, listed) = auth
        .get("/api/v1/users/@me/relationships", &ann.access)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], bob.id.to_string());
    assert_eq!(listed[0]["type"], 2);
    let (_, theirs) = auth
        .get("/api/v1/users/@me/relationships", &bob.access)
        .await;
    assert_eq!(theirs, json!([]), "nobody is shown who blocks them");

    // Bob is refused exactly as by settings that exclude him: the block is not named.
    let (status, body) = dm(&auth, &bob, &ann).await;
    let blocked = assert_error(status, &body, StatusCode::FORBIDDEN, "consent_required");
    set(&auth, &cy, json!({"allow_dms_from": "nobody"})).await;
    let (status, body) = dm(&auth, &bob, &cy).await;
    let by_settings = assert_error(status, &body, StatusCode::FORBIDDEN, "consent_required");
    assert_eq!(blocked.replace("ann", "cy"), by_settings);
    let bobs = group(&auth, &bob, "bob's").await;
    let (status, body) = add(&auth, &bob, &bobs, &ann).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "consent_required");
    // Ann is told it is her own block.
    let (status, body) = dm(&auth, &ann, &bob).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "user_blocked");
    let anns = group(&auth, &ann, "ann's").await;
    let (status, body) = add(&auth, &ann, &anns, &bob).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "user_blocked");

    // Unblocked: told to her sessions, and DMs work again.
    let (status, _) = auth
        .call(
            Method::DELETE,
            &format!("/api/v1/users/@me/relationships/{}", bob.id),
            Some(&ann.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        next_event_named(&mut ann_inbox, "RELATIONSHIP_REMOVE").await,
        json!({"t": "RELATIONSHIP_REMOVE", "d": {"id": bob.id.to_string(), "type": 2}})
    );
    let lifted = next_event_named(&mut bob_inbox, "BLOCK_UPDATE").await;
    assert_eq!(lifted["d"]["blocked"], false);
    assert_eq!(dm(&auth, &bob, &ann).await.0, StatusCode::CREATED);

    // What cannot be blocked.
    let (status, body) = auth
        .call(
            Method::PUT,
            &format!("/api/v1/users/@me/relationships/{}", bob.id),
            Some(&ann.access),
            Some(json!({"type": 1})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    let (status, body) = block(&auth, &ann, &ann).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    let (status, body) = auth
        .call(
            Method::PUT,
            "/api/v1/users/@me/relationships/12345",
            Some(&ann.access),
            Some(json!({"type": 2})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(auth.count("relationships").await, 0);
}

#[tokio::test]
async fn blocking_the_sender_of_a_dm_one_never_opened_takes_it_off_ones_list_only() {
    let auth = support::start().await;
    let (spam, vic) = (auth.sign_up("spam").await, auth.sign_up("vic").await);
    let (_, channel) = dm(&auth, &spam, &vic).await;
    let (_, listed) = auth.get("/api/v1/users/@me/channels", &vic.access).await;
    assert_eq!(listed[0]["opened"], false, "a request until vic opens it");
    let mut vic_inbox = auth.inbox(vic.id).await;
    let mut spam_inbox = auth.inbox(spam.id).await;

    assert_eq!(block(&auth, &vic, &spam).await.0, StatusCode::NO_CONTENT);
    let gone = next_event_named(&mut vic_inbox, "CHANNEL_MEMBER_REMOVE").await;
    assert_eq!(gone["d"]["channel_id"], channel["id"]);
    assert_eq!(gone["d"]["user_id"], vic.id.to_string());
    let (_, listed) = auth.get("/api/v1/users/@me/channels", &vic.access).await;
    assert_eq!(listed, json!([]));
    // Spam keeps the DM, hears only that a block now stands (its edge closes the DM to sends),
    // and cannot bring vic back into it.
    let (_, theirs) = auth.get("/api/v1/users/@me/channels", &spam.access).await;
    assert_eq!(theirs[0]["id"], channel["id"]);
    assert_eq!(
        next_event(&mut spam_inbox).await["t"],
        "BLOCK_UPDATE",
        "nothing else"
    );
    no_more_events(&mut spam_inbox).await;
    let (status, body) = dm(&auth, &spam, &vic).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "consent_required");
}

#[tokio::test]
async fn a_settings_change_is_told_to_the_users_own_sessions() {
    let auth = support::start().await;
    let dot = auth.sign_up("dot").await;
    let mut inbox = auth.inbox(dot.id).await;
    let after = set(&auth, &dot, json!({"allow_channel_adds_from": "everyone"})).await;
    assert_eq!(
        after,
        json!({"allow_dms_from": "everyone", "allow_channel_adds_from": "everyone"})
    );
    assert_eq!(
        next_event(&mut inbox).await,
        json!({"t": "USER_SETTINGS_UPDATE", "d": after})
    );
    let (status, _) = auth
        .call(Method::GET, "/api/v1/users/@me/settings", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn members_come_in_pages_in_user_id_order_to_members_only() {
    let auth = support::start().await;
    let owner = auth.sign_up("host").await;
    let room = group(&auth, &owner, "big").await;
    let mut everyone = vec![owner.id];
    for i in 0..5 {
        let guest = auth.sign_up(&format!("guest{i}")).await;
        auth.allow_adds(&guest).await;
        assert_eq!(
            add(&auth, &owner, &room, &guest).await.0,
            StatusCode::CREATED
        );
        everyone.push(guest.id);
    }
    everyone.sort();
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = auth
            .get(&format!("{room}/members?limit=2{after}"), &owner.access)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let page = page.as_array().unwrap().clone();
        for member in &page {
            seen.push(id_of(&member["user"]));
        }
        if page.len() < 2 {
            break;
        }
        after = format!("&after={}", seen.last().unwrap());
    }
    assert_eq!(seen, everyone);
    let (_, some) = auth
        .get(
            &format!("{room}/members?user_ids={},{},1", everyone[5], owner.id),
            &owner.access,
        )
        .await;
    assert_eq!(some.as_array().unwrap().len(), 2);
    let owner_entry = some
        .as_array()
        .unwrap()
        .iter()
        .find(|m| id_of(&m["user"]) == owner.id)
        .unwrap();
    assert_eq!(owner_entry["role"], "owner");
    for bad in [
        "limit=0",
        "limit=1001",
        "after=x",
        "user_ids=1,x",
        "user_ids=1&limit=2",
    ] {
        let (status, body) = auth
            .get(&format!("{room}/members?{bad}"), &owner.access)
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    }
    let outsider = auth.sign_up("outsider").await;
    let (status, body) = auth.get(&format!("{room}/members"), &outsider.access).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}
