//! Limits on growing anyone's channels: how many one may be in, how many channels one creates and
//! members one adds per hour. Each refusal has its own code and changes nothing, and the limits
//! hold under concurrent requests.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{self, assert_error, id_of};

#[tokio::test]
async fn nobody_is_in_more_channels_than_the_limit_by_their_own_choice_or_anyone_elses() {
    let auth = support::start_with(&["--channel-limit=3".to_owned()]).await;
    let (pat, quinn) = (auth.sign_up("pat").await, auth.sign_up("quinn").await);
    auth.allow_adds(&pat).await;
    let mut rooms = Vec::new();
    for i in 0..3 {
        let (status, room) = auth
            .post(
                "/api/v1/channels",
                Some(&pat.access),
                json!({"name": format!("r{i}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{room}");
        rooms.push(room);
    }
    let (status, body) = auth
        .post(
            "/api/v1/channels",
            Some(&pat.access),
            json!({"name": "one more"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "channel_limit_reached");
    // Nor can anyone else add pat to a fourth, nor can pat open a DM of their own.
    let (_, quinns) = auth
        .post(
            "/api/v1/channels",
            Some(&quinn.access),
            json!({"name": "q"}),
        )
        .await;
    let (status, body) = auth
        .post(
            &format!("/api/v1/channels/{}/members", id_of(&quinns)),
            Some(&quinn.access),
            json!({"username": "pat"}),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::CONFLICT, "channel_limit_reached");
    assert!(message.contains("pat"), "{message}");
    let (status, body) = auth
        .post(
            "/api/v1/users/@me/dms",
            Some(&pat.access),
            json!({"username": "quinn"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "channel_limit_reached");
    assert_eq!(auth.count("channels").await, 4);

    // DMs others open with pat are requests with a budget of their own: they do not crowd pat
    // out of their channels, and the fourth waits.
    for i in 0..3 {
        let stranger = auth.sign_up(&format!("stranger{i}")).await;
        let (status, body) = auth
            .post(
                "/api/v1/users/@me/dms",
                Some(&stranger.access),
                json!({"username": "pat"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let late = auth.sign_up("late").await;
    let (status, body) = auth
        .post(
            "/api/v1/users/@me/dms",
            Some(&late.access),
            json!({"username": "pat"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "channel_limit_reached");
    // Answering one is choosing it, which pat's limit does not allow until pat leaves a channel.
    let (status, body) = auth
        .post(
            "/api/v1/users/@me/dms",
            Some(&pat.access),
            json!({"username": "stranger0"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "channel_limit_reached");
    let (status, _) = auth
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/channels/{}/members/@me", id_of(&rooms[0])),
            Some(&pat.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = auth
        .post(
            "/api/v1/users/@me/dms",
            Some(&pat.access),
            json!({"username": "stranger0"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn twenty_owners_adding_one_person_at_once_leave_them_in_exactly_the_limit() {
    let auth = support::start_with(&["--channel-limit=5".to_owned()]).await;
    let star = auth.sign_up("star").await;
    auth.allow_adds(&star).await;
    let mut adds = Vec::new();
    for i in 0..20 {
        let owner = auth.sign_up(&format!("fan{i}")).await;
        let (_, room) = auth
            .post(
                "/api/v1/channels",
                Some(&owner.access),
                json!({"name": "fans"}),
            )
            .await;
        adds.push((owner, format!("/api/v1/channels/{}/members", id_of(&room))));
    }
    let answers =
        futures::future::join_all(adds.iter().map(|(owner, path)| {
            auth.post(path, Some(&owner.access), json!({"username": "star"}))
        }))
        .await;
    let added = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(added, 5, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_error(*status, body, StatusCode::CONFLICT, "channel_limit_reached");
    }
    let (_, mine) = auth.get("/api/v1/users/@me/channels", &star.access).await;
    assert_eq!(mine.as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn channels_created_and_members_added_per_hour_are_limited_with_a_time_to_wait() {
    let auth = support::start_with(&[
        "--channel-create-rate=2/1h".to_owned(),
        "--member-add-rate=2/1h".to_owned(),
    ])
    .await;
    let boss = auth.sign_up("boss").await;
    let mut rooms = Vec::new();
    for name in ["a", "b"] {
        let (status, room) = auth
            .post(
                "/api/v1/channels",
                Some(&boss.access),
                json!({"name": name}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        rooms.push(room);
    }
    let response = reqwest::Client::new()
        .post(auth.url("/api/v1/channels"))
        .bearer_auth(&boss.access)
        .json(&json!({"name": "c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3500..=3600).contains(&wait), "{wait}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("channels you may create")
    );

    let path = format!("/api/v1/channels/{}/members", id_of(&rooms[0]));
    for i in 0..3 {
        let guest = auth.sign_up(&format!("guest{i}")).await;
        auth.allow_adds(&guest).await;
        let (status, body) = auth
            .post(
                &path,
                Some(&boss.access),
                json!({"username": guest.username}),
            )
            .await;
        if i < 2 {
            assert_eq!(status, StatusCode::CREATED, "{body}");
        } else {
            let message =
                assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
            assert!(message.contains("members you may add"), "{message}");
        }
    }
    assert_eq!(auth.count("channels").await, 2);
    assert_eq!(auth.count("channel_members").await, 4);
}
