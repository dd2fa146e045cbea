//! Channels and DMs: who may do what (the authorization matrix), the events each change
//! publishes, and the rules that must hold under concurrent requests.

use std::collections::HashSet;

use proto::Snowflake;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{self, Account, TestAuth, assert_error, id_of, next_event, no_more_events};

struct Cast {
    owner: Account,
    moderator: Account,
    moderator2: Account,
    member: Account,
    member2: Account,
    outsider: Account,
}

/// A channel owned by `owner`, with two moderators and two members.
async fn channel_with_cast(auth: &TestAuth, cast: &Cast) -> Snowflake {
    let (status, channel) = auth
        .post(
            "/api/v1/channels",
            Some(&cast.owner.access),
            json!({"name": "the club", "topic": "secret plans"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let id = id_of(&channel);
    for who in [
        &cast.moderator,
        &cast.moderator2,
        &cast.member,
        &cast.member2,
    ] {
        auth.allow_adds(who).await;
        let (status, body) = auth
            .post(
                &format!("/api/v1/channels/{id}/members"),
                Some(&cast.owner.access),
                json!({"username": who.username}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for who in [&cast.moderator, &cast.moderator2] {
        let (status, body) = auth
            .call(
                Method::PUT,
                &format!("/api/v1/channels/{id}/moderators/{}", who.username),
                Some(&cast.owner.access),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    id
}

/// Everything about a channel in the database, to tell whether a refused request changed it.
async fn snapshot(auth: &TestAuth, id: Snowflake) -> String {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT concat_ws('|', c.name, c.topic, c.owner_id,
                (SELECT string_agg(user_id || ':' || role, ',' ORDER BY user_id)
                 FROM channel_members WHERE channel_id = c.id))
         FROM channels c WHERE c.id = $1",
    )
    .bind(id.as_i64())
    .fetch_optional(&auth.db)
    .await
    .unwrap();
    row.map_or_else(|| "deleted".to_owned(), |(s,)| s)
}

#[tokio::test]
async fn every_channel_endpoint_answers_each_kind_of_caller_as_designed_and_tells_outsiders_nothing()
 {
    let auth = support::start().await;
    let cast = Cast {
        owner: auth.sign_up("owner").await,
        moderator: auth.sign_up("moderator").await,
        moderator2: auth.sign_up("moderator2").await,
        member: auth.sign_up("member").await,
        member2: auth.sign_up("member2").await,
        outsider: auth.sign_up("outsider").await,
    };
    let newcomer = auth.sign_up("newcomer").await;
    auth.allow_adds(&newcomer).await;

    // (what, method, path after /api/v1/channels/{id}, body, [owner, moderator, member, outsider,
    // signed out])
    type Case = (&'static str, Method, &'static str, Option<Value>, [u16; 5]);
    let cases: Vec<Case> = vec![
        ("read", Method::GET, "", None, [200, 200, 200, 404, 401]),
        (
            "rename",
            Method::PATCH,
            "",
            Some(json!({"name": "renamed", "topic": null})),
            [200, 200, 403, 404, 401],
        ),
        (
            "delete",
            Method::DELETE,
            "",
            None,
            [204, 403, 403, 404, 401],
        ),
        (
            "add a member",
            Method::POST,
            "/members",
            Some(json!({"username": "newcomer"})),
            [201, 201, 403, 404, 401],
        ),
        (
            "remove a member",
            Method::DELETE,
            "/members/member2",
            None,
            [204, 204, 403, 404, 401],
        ),
        (
            "remove a moderator",
            Method::DELETE,
            "/members/moderator2",
            None,
            [204, 403, 403, 404, 401],
        ),
        (
            "remove the owner",
            Method::DELETE,
            "/members/owner",
            None,
            [403, 403, 403, 404, 401],
        ),
        (
            "leave",
            Method::DELETE,
            "/members/@me",
            None,
            [204, 204, 204, 404, 401],
        ),
        (
            "appoint a moderator",
            Method::PUT,
            "/moderators/member2",
            None,
            [204, 403, 403, 404, 401],
        ),
        (
            "demote a moderator",
            Method::DELETE,
            "/moderators/moderator2",
            None,
            [204, 403, 403, 404, 401],
        ),
    ];
    let callers: [(&str, Option<&Account>); 5] = [
        ("owner", Some(&cast.owner)),
        ("moderator", Some(&cast.moderator)),
        ("member", Some(&cast.member)),
        ("outsider", Some(&cast.outsider)),
        ("signed out", None),
    ];
    let missing = Snowflake::from_u64(1 << 40);
    let mut failures = Vec::new();
    for (what, method, suffix, body, expected) in &cases {
        for ((caller, account), want) in callers.iter().zip(expected) {
            let id = channel_with_cast(&auth, &cast).await;
            let before = snapshot(&auth, id).await;
            let token = account.map(|a| a.access.as_str());
            let path = format!("/api/v1/channels/{id}{suffix}");
            let (status, answer) = auth.call(method.clone(), &path, token, body.clone()).await;
            if status.as_u16() != *want {
                failures.push(format!(
                    "{what} by {caller}: {status} (wanted {want}) {answer}"
                ));
                continue;
            }
            if status.is_client_error() {
                assert!(
                    answer["code"].is_string() && answer["message"].is_string(),
                    "{what} by {caller}: {answer}"
                );
                assert_eq!(
                    snapshot(&auth, id).await,
                    before,
                    "{what} by {caller} was refused but changed the channel"
                );
            }
            if *caller == "outsider" {
                // Exactly what a channel that does not exist gets: nothing about this one leaks.
                let ghost = format!("/api/v1/channels/{missing}{suffix}");
                let (ghost_status, ghost_answer) =
                    auth.call(method.clone(), &ghost, token, body.clone()).await;
                assert_eq!((status, &answer), (ghost_status, &ghost_answer), "{what}");
                let text = answer.to_string();
                assert!(
                    !text.contains("club")
                        && !text.contains("secret")
                        && !text.contains(&id.to_string()),
                    "{text}"
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} unexpected answers:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Listing: members see the channel as they are in it (its size, their role, not its
    // members); the outsider's list does not have it.
    let id = channel_with_cast(&auth, &cast).await;
    let (_, mine) = auth
        .get("/api/v1/users/@me/channels", &cast.member.access)
        .await;
    let listed = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|c| id_of(c) == id)
        .expect("listed");
    assert_eq!(listed["member_count"], 5);
    assert_eq!(listed["role"], "member");
    assert!(listed.get("members").is_none(), "{listed}");
    let (_, moderator_view) = auth
        .get(&format!("/api/v1/channels/{id}"), &cast.moderator.access)
        .await;
    assert_eq!(moderator_view["role"], "moderator");
    let (_, theirs) = auth
        .get("/api/v1/users/@me/channels", &cast.outsider.access)
        .await;
    assert_eq!(theirs, json!([]));
    let (status, _) = auth
        .call(Method::GET, "/api/v1/users/@me/channels", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_channel_change_is_published_to_the_channel_and_the_affected_inboxes() {
    let auth = support::start().await;
    let rita = auth.sign_up("rita").await;
    let sam = auth.sign_up("sam").await;
    let tom = auth.sign_up("tom").await;
    auth.allow_adds(&sam).await;
    auth.allow_adds(&tom).await;
    let mut rita_inbox = auth.inbox(rita.id).await;
    let mut sam_inbox = auth.inbox(sam.id).await;
    let mut tom_inbox = auth.inbox(tom.id).await;

    // Created: the owner's inbox (a new subscription), as the owner sees it.
    let (_, channel) = auth
        .post(
            "/api/v1/channels",
            Some(&rita.access),
            json!({"name": "plans"}),
        )
        .await;
    let id = id_of(&channel);
    let event = next_event(&mut rita_inbox).await;
    assert_eq!(event, json!({"t": "CHANNEL_CREATE", "d": channel}));
    let mut ch = auth.channel_events(id).await;

    let base = format!("/api/v1/channels/{id}");
    // Member added: the channel hears of the newcomer; the newcomer's inbox gets the channel.
    let (_, member) = auth
        .post(
            &format!("{base}/members"),
            Some(&rita.access),
            json!({"username": "sam"}),
        )
        .await;
    let event = next_event(&mut ch).await;
    assert_eq!(event["t"], "CHANNEL_MEMBER_ADD");
    assert_eq!(event["d"]["channel_id"], id.to_string());
    assert_eq!(event["d"]["member"], member);
    assert_eq!(event["d"]["member"]["user"]["id"], sam.id.to_string());
    assert_eq!(event["d"]["member"]["role"], "member");
    let event = next_event(&mut sam_inbox).await;
    assert_eq!(event["t"], "CHANNEL_CREATE");
    assert_eq!(event["d"]["id"], id.to_string());
    assert_eq!(event["d"]["member_count"], 2);
    assert_eq!(event["d"]["role"], "member");
    // Members come in pages, not with the channel.
    let (status, members) = auth.get(&format!("{base}/members"), &sam.access).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&Value> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["user"]["id"])
        .collect();
    let mut want = [rita.id, sam.id];
    want.sort();
    assert_eq!(
        ids,
        [&json!(want[0].to_string()), &json!(want[1].to_string())]
    );

    // Renamed: the channel subject, with the whole new channel as every member shares it.
    let (_, renamed) = auth
        .call(
            Method::PATCH,
            &base,
            Some(&rita.access),
            Some(json!({"name": "better plans", "topic": "tuesdays"})),
        )
        .await;
    let event = next_event(&mut ch).await;
    let mut shared = renamed.clone();
    shared.as_object_mut().unwrap().remove("role");
    assert_eq!(event, json!({"t": "CHANNEL_UPDATE", "d": shared}));
    assert_eq!(event["d"]["name"], "better plans");
    assert_eq!(event["d"]["topic"], "tuesdays");

    // Moderator appointed and demoted: their inbox and the channel.
    for (method, name) in [
        (Method::PUT, "CHANNEL_MODERATOR_ADD"),
        (Method::DELETE, "CHANNEL_MODERATOR_REMOVE"),
    ] {
        auth.call(
            method,
            &format!("{base}/moderators/sam"),
            Some(&rita.access),
            None,
        )
        .await;
        for sub in [&mut sam_inbox, &mut ch] {
            let event = next_event(sub).await;
            assert_eq!(
                event,
                json!({"t": name, "d": {"channel_id": id.to_string(), "user_id": sam.id.to_string()}})
            );
        }
    }

    // Removed: their inbox (so their edge unsubscribes them, and their client tells them who
    // removed them) and the channel.
    auth.call(
        Method::DELETE,
        &format!("{base}/members/sam"),
        Some(&rita.access),
        None,
    )
    .await;
    for sub in [&mut sam_inbox, &mut ch] {
        let event = next_event(sub).await;
        assert_eq!(
            event,
            json!({"t": "CHANNEL_MEMBER_REMOVE", "d": {"channel_id": id.to_string(),
                "user_id": sam.id.to_string(), "removed_by": rita.id.to_string()}})
        );
    }

    // Owner leaves: ownership passes to the remaining member, announced as an update.
    auth.post(
        &format!("{base}/members"),
        Some(&rita.access),
        json!({"username": "tom"}),
    )
    .await;
    next_event(&mut tom_inbox).await;
    next_event(&mut ch).await;
    auth.call(
        Method::DELETE,
        &format!("{base}/members/@me"),
        Some(&rita.access),
        None,
    )
    .await;
    let event = next_event(&mut rita_inbox).await;
    assert_eq!(event["t"], "CHANNEL_MEMBER_REMOVE");
    // She left: nobody removed her.
    assert!(event["d"]["removed_by"].is_null(), "{event}");
    assert_eq!(next_event(&mut ch).await["t"], "CHANNEL_MEMBER_REMOVE");
    let event = next_event(&mut ch).await;
    assert_eq!(event["t"], "CHANNEL_UPDATE");
    assert_eq!(event["d"]["owner_id"], tom.id.to_string());

    // Deleted: every member's inbox and the channel.
    auth.call(Method::DELETE, &base, Some(&tom.access), None)
        .await;
    assert_eq!(
        next_event(&mut tom_inbox).await,
        json!({"t": "CHANNEL_DELETE", "d": {"channel_id": id.to_string()}})
    );
    assert_eq!(
        next_event(&mut ch).await,
        json!({"t": "CHANNEL_DELETE", "d": {"channel_id": id.to_string()}})
    );

    // A DM: created once, announced to both, each as they see it (sam opened it; to tom it is a
    // request). Opened by tom too: tom's sessions hear it is open, and the DM (sam's edge) that
    // tom opened it.
    let (status, dm) = auth
        .post(
            "/api/v1/users/@me/dms",
            Some(&sam.access),
            json!({"username": "tom"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(dm["kind"], "dm");
    assert_eq!(dm["opened"], true);
    assert_eq!(dm["recipients"][0]["id"], tom.id.to_string());
    assert_eq!(
        next_event(&mut sam_inbox).await,
        json!({"t": "CHANNEL_CREATE", "d": dm})
    );
    let to_tom = next_event(&mut tom_inbox).await;
    assert_eq!(to_tom["t"], "CHANNEL_CREATE");
    assert_eq!(to_tom["d"]["opened"], false);
    assert_eq!(to_tom["d"]["recipients"][0]["id"], sam.id.to_string());
    let mut dm_events = auth.channel_events(id_of(&dm)).await;
    let (status, again) = auth
        .post(
            "/api/v1/users/@me/dms",
            Some(&tom.access),
            json!({"username": "SAM"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(id_of(&again), id_of(&dm));
    assert_eq!(again["opened"], true);
    assert_eq!(
        next_event(&mut tom_inbox).await,
        json!({"t": "CHANNEL_CREATE", "d": again})
    );
    assert_eq!(
        next_event(&mut dm_events).await,
        json!({"t": "DM_OPEN", "d": {"channel_id": id_of(&dm).to_string(), "user_id": tom.id.to_string()}})
    );
    // Opened again: nothing new.
    let (status, _) = auth
        .post(
            "/api/v1/users/@me/dms",
            Some(&sam.access),
            json!({"username": "tom"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    no_more_events(&mut dm_events).await;

    for sub in [&mut rita_inbox, &mut sam_inbox, &mut tom_inbox, &mut ch] {
        no_more_events(sub).await;
    }
}

#[tokio::test]
async fn a_dm_can_be_read_but_not_renamed_joined_or_left() {
    let auth = support::start().await;
    let uma = auth.sign_up("uma").await;
    auth.sign_up("vic").await;
    auth.sign_up("wes").await;
    let (_, dm) = auth
        .post(
            "/api/v1/users/@me/dms",
            Some(&uma.access),
            json!({"username": "vic"}),
        )
        .await;
    let base = format!("/api/v1/channels/{}", id_of(&dm));
    assert_eq!(auth.get(&base, &uma.access).await.0, StatusCode::OK);
    let (status, body) = auth
        .call(
            Method::PATCH,
            &base,
            Some(&uma.access),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = auth
        .post(
            &format!("{base}/members"),
            Some(&uma.access),
            json!({"username": "wes"}),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = auth
        .call(
            Method::DELETE,
            &format!("{base}/members/@me"),
            Some(&uma.access),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = auth
        .post(
            "/api/v1/users/@me/dms",
            Some(&uma.access),
            json!({"username": "uma"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    let (status, body) = auth
        .post(
            "/api/v1/users/@me/dms",
            Some(&uma.access),
            json!({"username": "nobody"}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn twenty_concurrent_adds_to_a_channel_limited_to_five_leave_exactly_five_members() {
    let auth = support::start_with(&["--member-limit=5".to_owned()]).await;
    let owner = auth.sign_up("boss").await;
    let mut names = Vec::new();
    for i in 0..20 {
        let name = format!("joiner{i}");
        let joiner = auth.sign_up(&name).await;
        auth.allow_adds(&joiner).await;
        names.push(name);
    }
    let (_, channel) = auth
        .post(
            "/api/v1/channels",
            Some(&owner.access),
            json!({"name": "small room"}),
        )
        .await;
    let path = format!("/api/v1/channels/{}/members", id_of(&channel));
    let answers = futures::future::join_all(
        names
            .iter()
            .map(|name| auth.post(&path, Some(&owner.access), json!({"username": name}))),
    )
    .await;
    let added = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let full: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .collect();
    assert_eq!(added, 4, "the owner plus four make five");
    assert_eq!(full.len(), 16);
    for (_, body) in full {
        assert_eq!(body["code"], "member_limit_reached");
    }
    let (members,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM channel_members WHERE channel_id = $1")
            .bind(id_of(&channel).as_i64())
            .fetch_one(&auth.db)
            .await
            .unwrap();
    assert_eq!(members, 5);
}

#[tokio::test]
async fn twenty_concurrent_first_dms_between_two_people_make_one_channel() {
    let auth = support::start().await;
    let xena = auth.sign_up("xena").await;
    let yuri = auth.sign_up("yuri").await;
    let answers = futures::future::join_all((0..20).map(|i| {
        let (me, other) = if i % 2 == 0 {
            (&xena, "yuri")
        } else {
            (&yuri, "xena")
        };
        auth.post(
            "/api/v1/users/@me/dms",
            Some(&me.access),
            json!({"username": other}),
        )
    }))
    .await;
    let ids: HashSet<Snowflake> = answers.iter().map(|(_, body)| id_of(body)).collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(
        answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count(),
        1
    );
    assert_eq!(auth.count("channels").await, 1);
    assert_eq!(auth.count("dm_pairs").await, 1);
    assert_eq!(auth.count("channel_members").await, 2);
}
