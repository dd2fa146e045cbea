//! Sessions starting at an edge, asked about together (`{p}.auth.starts`): each is answered as
//! it would be alone, a signed-out one (or one named with someone else's account) is refused
//! without touching the others, and a resume leaves out what only READY shows: the calls and
//! notification settings, read once for all the fresh starts and shared out by user.

use proto::Snowflake;
use proto::access::{
    Reply, SessionStart, SessionStartAnswers, SessionStarts, SessionState, StateQuery,
};
use proto::api::notifications::UserGuildSettings;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::support::{Account, TestAuth, id_of};

const WATCH_MAX: u32 = 50;

async fn ask<Q: serde::Serialize, T: DeserializeOwned>(
    auth: &TestAuth,
    subject: String,
    question: &Q,
) -> Reply<T> {
    let body = serde_json::to_vec(question).unwrap();
    let reply = auth
        .nats
        .request(subject, body.into())
        .await
        .expect("auth answers");
    serde_json::from_slice(&reply.payload)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&reply.payload)))
}

async fn starts(auth: &TestAuth, starts: &[SessionStart]) -> Vec<Reply<SessionState>> {
    let asked = SessionStarts {
        starts: starts.to_vec(),
        watch_max_members: WATCH_MAX,
    };
    match ask::<_, SessionStartAnswers>(auth, auth.subjects.auth_starts(), &asked).await {
        Reply::Ok(answers) => answers.answers,
        other => panic!("{other:?}"),
    }
}

/// The newest session of `who` still signed in (the one their latest sign-in or sign-up made).
async fn session_of(auth: &TestAuth, who: &Account) -> Snowflake {
    let (id,): (i64,) = sqlx::query_as(
        "SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL
             ORDER BY id DESC LIMIT 1",
    )
    .bind(who.id.as_i64())
    .fetch_one(&auth.db)
    .await
    .unwrap();
    Snowflake::from_i64(id)
}

fn start(who: &Account, session: Snowflake, resuming: bool) -> SessionStart {
    SessionStart {
        user_id: who.id,
        session_id: session,
        resuming,
    }
}

#[tokio::test]
async fn sessions_starting_together_are_each_answered_as_alone_and_a_signed_out_one_is_refused() {
    let auth = crate::support::start().await;
    let (ann, bob, cat) = (
        auth.sign_up("ann").await,
        auth.sign_up("bob").await,
        auth.sign_up("cat").await,
    );
    for who in [&bob, &cat] {
        auth.allow_adds(who).await;
    }
    // A group of three, a DM Ann and Bob both opened, and a DM closed by Cat's block of Ann.
    let (status, crew) = auth
        .post(
            "/api/v1/channels",
            Some(&ann.access),
            json!({"name": "crew"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{crew}");
    for who in [&bob, &cat] {
        let (status, body) = auth
            .post(
                &format!("/api/v1/channels/{}/members", id_of(&crew)),
                Some(&ann.access),
                json!({"username": who.username}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for (from, to) in [(&ann, &bob), (&bob, &ann), (&ann, &cat)] {
        let (status, body) = auth
            .post(
                "/api/v1/users/@me/dms",
                Some(&from.access),
                json!({"username": to.username}),
            )
            .await;
        assert!(status.is_success(), "{body}");
    }
    let (status, body) = auth
        .call(
            Method::PUT,
            &format!("/api/v1/users/@me/relationships/{}", ann.id),
            Some(&cat.access),
            Some(json!({"type": 2})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    // Ann on two devices; Bob's phone signed out, his laptop still in.
    let ann_phone = session_of(&auth, &ann).await;
    auth.sign_in("ann").await;
    let ann_laptop = session_of(&auth, &ann).await;
    let phone = auth.sign_in("bob").await;
    let bob_phone = session_of(&auth, &bob).await;
    let (status, _) = auth
        .call(
            Method::POST,
            "/api/v1/auth/sign-out",
            Some(&phone.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let bob_laptop = session_of(&auth, &bob).await;
    let cat_session = session_of(&auth, &cat).await;

    let asked = [
        start(&ann, ann_phone, false),
        start(&bob, bob_phone, true),
        start(&ann, ann_laptop, true),
        // Cat's session named with Bob's account: nobody's.
        start(&bob, cat_session, false),
        start(&bob, bob_laptop, true),
        start(&cat, cat_session, false),
    ];
    let together = starts(&auth, &asked).await;
    assert_eq!(together.len(), asked.len());
    assert_eq!(together[1], Reply::SignedOut, "Bob's phone signed out");
    assert_eq!(together[3], Reply::SignedOut, "a session is its own user's");
    for (i, one) in asked.iter().enumerate() {
        let alone = starts(&auth, std::slice::from_ref(one)).await;
        assert_eq!(alone, [together[i].clone()], "start {i} asked alone");
    }

    // Each answer is the user's own, as a channel-less state question reads it, with their
    // profile; Ann's resume (her laptop) leaves out READY's parts but nothing else.
    let state_of = async |who: &Account| -> SessionState {
        let query = StateQuery {
            user_id: who.id,
            channel_id: None,
            watch_max_members: WATCH_MAX,
            guilds_only: false,
        };
        match ask(&auth, auth.subjects.auth_state(), &query).await {
            Reply::Ok(state) => state,
            other => panic!("{other:?}"),
        }
    };
    let answer = |i: usize| match &together[i] {
        Reply::Ok(state) => state.clone(),
        other => panic!("start {i}: {other:?}"),
    };
    for (i, who) in [(0, &ann), (2, &ann), (4, &bob), (5, &cat)] {
        let mut state = answer(i);
        assert_eq!(state.user.take().map(|u| u.id), Some(who.id), "start {i}");
        state.voice_states.clear();
        state.user_guild_settings.clear();
        assert_eq!(state, state_of(who).await, "start {i}");
    }
    let (anns, cats) = (answer(0), answer(5));
    assert_eq!(
        anns.channels.len(),
        3,
        "crew and two DMs: {:?}",
        anns.channels
    );
    assert_eq!(anns.closed.len(), 1, "the DM with Cat is closed");
    assert_eq!(anns.closed, cats.closed);
    let crew_watch = anns
        .watch
        .iter()
        .find(|w| w.channel_id == id_of(&crew))
        .expect("a watch list for crew");
    assert_eq!(
        crew_watch.user_ids,
        [bob.id],
        "Cat's block hides her from Ann"
    );
}

#[tokio::test]
async fn fresh_starts_asked_together_each_get_their_own_users_calls_and_settings() {
    let auth = crate::support::start().await;
    let (ann, bob, cat, dan) = (
        auth.sign_up("ann").await,
        auth.sign_up("bob").await,
        auth.sign_up("cat").await,
        auth.sign_up("dan").await,
    );
    for who in [&bob, &dan] {
        auth.allow_adds(who).await;
    }
    // Two groups, Ann's with Bob and Cat's with Dan; Bob is in a call in the first, Dan in one
    // in the second.
    let mut calls = Vec::new();
    for (owner, other, caller) in [(&ann, &bob, "b1"), (&cat, &dan, "d1")] {
        let (status, group) = auth
            .post(
                "/api/v1/channels",
                Some(&owner.access),
                json!({"name": format!("{}'s", owner.username)}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{group}");
        let (status, body) = auth
            .post(
                &format!("/api/v1/channels/{}/members", id_of(&group)),
                Some(&owner.access),
                json!({"username": other.username}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        sqlx::query(
            "INSERT INTO voice_states (user_id, channel_id, session_id) VALUES ($1, $2, $3)",
        )
        .bind(other.id.as_i64())
        .bind(id_of(&group).as_i64())
        .bind(caller)
        .execute(&auth.db)
        .await
        .unwrap();
        calls.push((other.id, id_of(&group)));
    }
    // Ann and Cat each change their notification settings, differently; Bob and Dan do not.
    for (who, body) in [
        (
            &ann,
            json!({"message_notifications": 1, "channel_overrides": [
                {"channel_id": calls[0].1.to_string(), "muted": true}
            ]}),
        ),
        (&cat, json!({"message_notifications": 2})),
    ] {
        let (status, answer) = auth
            .call(
                Method::PATCH,
                "/api/v1/users/@me/guilds/@me/settings",
                Some(&who.access),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }

    let ann_phone = session_of(&auth, &ann).await;
    auth.sign_in("ann").await;
    let ann_laptop = session_of(&auth, &ann).await;
    let asked = [
        start(&ann, ann_phone, false),
        start(&cat, session_of(&auth, &cat).await, false),
        start(&bob, session_of(&auth, &bob).await, true),
        start(&ann, ann_laptop, false),
        start(&dan, session_of(&auth, &dan).await, false),
    ];
    let together = starts(&auth, &asked).await;
    let answer = |i: usize| match &together[i] {
        Reply::Ok(state) => state.clone(),
        other => panic!("start {i}: {other:?}"),
    };
    let settings_of = async |who: &Account| -> Vec<UserGuildSettings> {
        let (status, body) = auth
            .get("/api/v1/users/@me/guilds/settings", &who.access)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_value(body).unwrap()
    };
    // Each READY shows the calls of its own user's channels and its own user's settings.
    for (i, who, call) in [(0, &ann, 0), (1, &cat, 1), (3, &ann, 0), (4, &dan, 1)] {
        let state = answer(i);
        let shown: Vec<(Snowflake, Option<Snowflake>)> = (state.voice_states.iter())
            .map(|voice| (voice.user_id, voice.channel_id))
            .collect();
        assert_eq!(shown, [(calls[call].0, Some(calls[call].1))], "start {i}");
        assert_eq!(
            state.user_guild_settings,
            settings_of(who).await,
            "start {i}"
        );
    }
    assert_eq!(answer(0).user_guild_settings[0].channel_overrides.len(), 1);
    assert!(
        answer(4).user_guild_settings.is_empty(),
        "Dan changed nothing"
    );
    // A resume shows neither; and each start is answered as it would be alone.
    let bobs = answer(2);
    assert!(bobs.voice_states.is_empty() && bobs.user_guild_settings.is_empty());
    for (i, one) in asked.iter().enumerate() {
        let alone = starts(&auth, std::slice::from_ref(one)).await;
        assert_eq!(alone, [together[i].clone()], "start {i} asked alone");
    }
}
