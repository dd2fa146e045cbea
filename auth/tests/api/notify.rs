//! Whom a message concerns (`{p}.auth.notify`, asked by the notification worker): a big group
//! channel is told as a server's channel is, so its every message is not an inbox entry (and a
//! push) for each of its members.

use proto::access::{NotifyAnswer, NotifyQuery, Reply};
use proto::api::notifications::{LARGE_GUILD_MEMBERS, NotifyReason};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{self, TestAuth, id_of};

async fn concerned(auth: &TestAuth, query: &NotifyQuery) -> Vec<(String, NotifyReason)> {
    concerned_in_pages(auth, query).await.0
}

/// Everyone `query` concerns, asked page after page as notify asks, and how many answers it took.
async fn concerned_in_pages(
    auth: &TestAuth,
    query: &NotifyQuery,
) -> (Vec<(String, NotifyReason)>, usize) {
    let mut told: Vec<(String, NotifyReason)> = Vec::new();
    let mut query = query.clone();
    let mut answers = 0;
    loop {
        let reply = auth
            .nats
            .request(
                auth.subjects.auth_notify(),
                serde_json::to_vec(&query).unwrap().into(),
            )
            .await
            .expect("auth answers");
        let Ok(Reply::Ok(answer)) = serde_json::from_slice::<Reply<NotifyAnswer>>(&reply.payload)
        else {
            panic!("an answer: {}", String::from_utf8_lossy(&reply.payload));
        };
        answers += 1;
        assert!(
            answer.recipients.len() <= query.page as usize,
            "a page holds at most `page`"
        );
        told.extend(
            answer
                .recipients
                .into_iter()
                .map(|r| (r.user_id.to_string(), r.reason)),
        );
        match answer.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    told.sort_by(|a, b| a.0.cmp(&b.0));
    (told, answers)
}

#[tokio::test]
async fn a_group_past_the_large_size_tells_only_mentions_and_those_who_chose_every_message() {
    let auth = support::start().await;
    let ann = auth.sign_up("ann").await;
    let bob = auth.sign_up("bob").await;
    let cat = auth.sign_up("cat").await;
    let (status, channel) = auth
        .post(
            "/api/v1/channels",
            Some(&ann.access),
            json!({"name": "crowd"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let crowd = id_of(&channel);
    for who in [&bob, &cat] {
        auth.allow_adds(who).await;
        let (status, body) = auth
            .post(
                &format!("/api/v1/channels/{crowd}/members"),
                Some(&ann.access),
                json!({"username": who.username}),
            )
            .await;
        assert!(status.is_success(), "{body}");
    }
    let plain = NotifyQuery {
        channel_id: crowd,
        author_id: ann.id,
        mentions: Vec::new(),
        mention_roles: Vec::new(),
        mention_everyone: false,
        after: None,
        page: proto::access::RECIPIENTS_PAGE,
    };
    let mut who = vec![
        (bob.id.to_string(), NotifyReason::Direct),
        (cat.id.to_string(), NotifyReason::Direct),
    ];
    who.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        concerned(&auth, &plain).await,
        who,
        "a small group: every message is for every other member, as in a DM"
    );

    // The group grows past the size (quiet members written straight into the database: 250
    // sign-ups would only cost the test time).
    let extra = i64::from(LARGE_GUILD_MEMBERS);
    sqlx::query(
        "INSERT INTO users (id, username, password_hash)
         SELECT 900000000 + g, 'quiet' || g, 'x' FROM generate_series(1, $1) g",
    )
    .bind(extra)
    .execute(&auth.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO channel_members (channel_id, user_id)
         SELECT $1, 900000000 + g FROM generate_series(1, $2) g",
    )
    .bind(crowd.as_i64())
    .bind(extra)
    .execute(&auth.db)
    .await
    .unwrap();
    assert_eq!(
        concerned(&auth, &plain).await,
        Vec::new(),
        "a large group: a plain message concerns nobody by default"
    );
    let to_bob = NotifyQuery {
        mentions: vec![bob.id],
        ..plain.clone()
    };
    assert_eq!(
        concerned(&auth, &to_bob).await,
        vec![(bob.id.to_string(), NotifyReason::Mention)]
    );

    // "All messages" for DMs and groups at large does not reach a large group; the group's own
    // override does, and such a message is a push, not an inbox entry (AllMessages).
    let settings = |body: serde_json::Value| {
        let auth = &auth;
        let token = cat.access.clone();
        async move {
            let (status, answer) = auth
                .call(
                    Method::PATCH,
                    "/api/v1/users/@me/guilds/@me/settings",
                    Some(&token),
                    Some(body),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
    };
    settings(json!({"message_notifications": 0})).await;
    assert_eq!(concerned(&auth, &plain).await, Vec::new());
    settings(json!({"channel_overrides": [
        {"channel_id": crowd.to_string(), "message_notifications": 0}
    ]}))
    .await;
    assert_eq!(
        concerned(&auth, &plain).await,
        vec![(cat.id.to_string(), NotifyReason::AllMessages)]
    );
    assert!(!NotifyReason::AllMessages.is_inbox());
    let everyone = NotifyQuery {
        mention_everyone: true,
        ..plain.clone()
    };
    assert_eq!(
        concerned(&auth, &everyone).await.len(),
        LARGE_GUILD_MEMBERS as usize + 2,
        "@everyone reaches every other member"
    );
    // Asked seven at a time, as notify asks in pages: the same people, each once.
    let (paged, answers) = concerned_in_pages(
        &auth,
        &NotifyQuery {
            page: 7,
            ..everyone.clone()
        },
    )
    .await;
    assert_eq!(paged, concerned(&auth, &everyone).await);
    assert!(answers >= paged.len() / 7, "{answers} answers");
}
