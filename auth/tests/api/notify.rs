//! Whom a message concerns (`{p}.auth.notify`, asked by the notification worker): a big group
//! channel is told as a server's channel is, so its every message is not an inbox entry (and a
//! push) for each of its members.

use proto::access::{
    MAX_NOTIFY_QUERIES, NotifyAnswer, NotifyAnswers, NotifyQueries, NotifyQuery, Reply,
};
use proto::api::notifications::{LARGE_GUILD_MEMBERS, NotifyReason};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{self, TestAuth, id_of};

/// Auth's answers to `queries` asked together, as notify asks about the messages it handles at
/// once: one per query, in order.
async fn ask(auth: &TestAuth, queries: &[NotifyQuery]) -> Vec<NotifyAnswer> {
    let answers = ask_as_many(auth, queries).await;
    assert_eq!(answers.len(), queries.len(), "small answers: all in one");
    answers
}

/// Auth's answers to the first of `queries`, as many as one answer holds.
async fn ask_as_many(auth: &TestAuth, queries: &[NotifyQuery]) -> Vec<NotifyAnswer> {
    let asked = NotifyQueries {
        queries: queries.to_vec(),
    };
    let reply = auth
        .nats
        .request(
            auth.subjects.auth_notify(),
            serde_json::to_vec(&asked).unwrap().into(),
        )
        .await
        .expect("auth answers");
    let Ok(Reply::Ok(NotifyAnswers { answers })) = serde_json::from_slice(&reply.payload) else {
        panic!("answers: {}", String::from_utf8_lossy(&reply.payload));
    };
    answers
}

/// Who each answer tells, and why, in user-id order.
fn told(answer: &NotifyAnswer) -> Vec<(String, NotifyReason)> {
    let mut told: Vec<_> = answer
        .recipients
        .iter()
        .map(|r| (r.user_id.to_string(), r.reason))
        .collect();
    told.sort_by(|a, b| a.0.cmp(&b.0));
    told
}

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
        let answer = ask(auth, std::slice::from_ref(&query)).await.remove(0);
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

    // Messages asked about together are each decided on their own: bob blocks ann, so ann's
    // messages are not for him, and cat's still are; a mention counts in its own message only.
    let (status, body) = auth
        .call(
            Method::PUT,
            &format!("/api/v1/users/@me/relationships/{}", ann.id),
            Some(&bob.access),
            Some(json!({"type": 2})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let from_cat = NotifyQuery {
        author_id: cat.id,
        ..plain.clone()
    };
    let cat_to_bob = NotifyQuery {
        mentions: vec![bob.id],
        ..from_cat.clone()
    };
    let answers = ask(
        &auth,
        &[plain.clone(), from_cat.clone(), cat_to_bob, plain.clone()],
    )
    .await;
    let cat_only = vec![(cat.id.to_string(), NotifyReason::Direct)];
    let mut ann_and_bob = vec![
        (ann.id.to_string(), NotifyReason::Direct),
        (bob.id.to_string(), NotifyReason::Direct),
    ];
    ann_and_bob.sort_by(|a, b| a.0.cmp(&b.0));
    let mut mentioned = ann_and_bob.clone();
    for (who, reason) in &mut mentioned {
        if *who == bob.id.to_string() {
            *reason = NotifyReason::Mention;
        }
    }
    assert_eq!(
        answers.iter().map(told).collect::<Vec<_>>(),
        vec![cat_only.clone(), ann_and_bob, mentioned, cat_only],
    );
    assert!(answers.iter().all(|a| a.guild_id.is_none()));
    assert_eq!(answers[0].author_name, answers[3].author_name);
    assert_ne!(answers[0].author_name, answers[1].author_name);
    let (status, body) = auth
        .call(
            Method::DELETE,
            &format!("/api/v1/users/@me/relationships/{}", ann.id),
            Some(&bob.access),
            None,
        )
        .await;
    assert!(status.is_success(), "{body}");
    assert_eq!(concerned(&auth, &plain).await, who, "unblocked");

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
    // As many messages as notify asks about at once, each an @everyone to 252 people: auth
    // answers those that fit in one answer (the last of them may be a first page, with `next`),
    // and notify asks again for the rest.
    let many = vec![everyone.clone(); MAX_NOTIFY_QUERIES];
    let answered = ask_as_many(&auth, &many).await;
    assert!(
        answered.len() > 1 && answered.len() < many.len(),
        "{} answers",
        answered.len()
    );
    let (last, whole) = answered.split_last().unwrap();
    for answer in whole {
        assert_eq!((told(answer), answer.next), (paged.clone(), None));
    }
    let first_page = told(last);
    assert!(!first_page.is_empty() && first_page.iter().all(|one| paged.contains(one)));
    assert_eq!(last.next.is_some(), first_page.len() < paged.len());
}
