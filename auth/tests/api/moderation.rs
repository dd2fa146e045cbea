//! Moderating a server through the REST API: roles in a hierarchy, time-outs, kicks and bans, and
//! the audit log that records each with who, what, when and why.

use proto::permissions::Permissions;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{self, assert_error, next_event_named};

fn actions(log: &Value) -> Vec<u64> {
    log["audit_log_entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action_type"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn kicks_time_outs_and_bans_take_effect_and_the_audit_log_says_who_did_what_and_why() {
    let auth = support::start().await;
    let ann = auth.sign_up("ann").await;
    let bob = auth.sign_up("bob").await;
    let mia = auth.sign_up("mia").await;
    let (guild, _) = auth.guild(&ann, "Book club").await;
    auth.join(guild, &ann, &bob).await;
    auth.join(guild, &ann, &mia).await;
    let powers = Permissions::KICK_MEMBERS
        | Permissions::BAN_MEMBERS
        | Permissions::MODERATE_MEMBERS
        | Permissions::VIEW_AUDIT_LOG;
    let mods = auth.role(guild, &ann, "mods", powers.bits()).await;
    auth.give_role(guild, &ann, mia.id, mods).await;
    let mut events = auth.guild_events(guild).await;
    let mut bobs = auth.inbox(bob.id).await;

    // Mia times Bob out for ten minutes.
    let until = proto::clock::unix_ms() + 600_000;
    let (status, member) = auth
        .call_with_reason(
            Method::PATCH,
            &format!("/api/v1/guilds/{guild}/members/{}", bob.id),
            &mia.access,
            Some(json!({"communication_disabled_until": until})),
            "cool%20down",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{member}");
    assert_eq!(member["communication_disabled_until"], until);
    let update = next_event_named(&mut events, "GUILD_MEMBER_UPDATE").await;
    assert_eq!(update["d"]["member"]["user"]["id"], bob.id.to_string());
    // Timed out, Bob may do nothing a permission gates, and is told until when.
    let (status, body) = auth
        .post(
            &format!("/api/v1/guilds/{guild}/invites"),
            Some(&bob.access),
            json!({}),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::FORBIDDEN, "timed_out");
    assert!(message.contains("timed out until"), "{message}");

    // Mia kicks him; he hears his server is gone and may come back by an invite.
    let (status, body) = auth
        .call_with_reason(
            Method::DELETE,
            &format!("/api/v1/guilds/{guild}/members/{}", bob.id),
            &mia.access,
            None,
            "spam",
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    next_event_named(&mut events, "GUILD_MEMBER_REMOVE").await;
    // He is told why, so his client can say "You were removed" rather than lose a server.
    let deleted = next_event_named(&mut bobs, "GUILD_DELETE").await;
    assert_eq!(deleted["d"]["id"], guild.to_string());
    assert_eq!(deleted["d"]["removal"], "kicked", "{deleted}");
    auth.join(guild, &ann, &bob).await;

    // Then bans him: he leaves and no invite brings him back, until he is unbanned.
    let (status, body) = auth
        .call_with_reason(
            Method::PUT,
            &format!("/api/v1/guilds/{guild}/bans/{}", bob.id),
            &mia.access,
            None,
            "spam%20again",
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let ban = next_event_named(&mut events, "GUILD_BAN_ADD").await;
    assert_eq!(ban["d"]["user"]["id"], bob.id.to_string());
    let deleted = next_event_named(&mut bobs, "GUILD_DELETE").await;
    assert_eq!(deleted["d"]["removal"], "banned", "{deleted}");
    let code = auth.invite(guild, &ann).await;
    let (status, body) = auth
        .post(
            &format!("/api/v1/invites/{code}"),
            Some(&bob.access),
            json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "banned");
    let (_, bans) = auth
        .get(&format!("/api/v1/guilds/{guild}/bans"), &mia.access)
        .await;
    assert_eq!(bans[0]["user"]["username"], "bob");
    assert_eq!(bans[0]["reason"], "spam again");
    let (status, _) = auth
        .call(
            Method::DELETE,
            &format!("/api/v1/guilds/{guild}/bans/{}", bob.id),
            Some(&mia.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    next_event_named(&mut events, "GUILD_BAN_REMOVE").await;
    let (status, _) = auth
        .post(
            &format!("/api/v1/invites/{code}"),
            Some(&bob.access),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // The audit log, newest first: who, on whom, what, why.
    let (status, log) = auth
        .get(&format!("/api/v1/guilds/{guild}/audit-logs"), &mia.access)
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let by_mia: Vec<u64> = log["audit_log_entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["user_id"] == mia.id.to_string())
        .map(|e| e["action_type"].as_u64().unwrap())
        .collect();
    assert_eq!(by_mia, [23, 22, 20, 24], "unban, ban, kick, time-out");
    let kick = &log["audit_log_entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action_type"] == 20)
        .unwrap();
    assert_eq!(kick["target_id"], bob.id.to_string());
    assert_eq!(kick["reason"], "spam");
    assert!(
        log["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == "bob")
    );

    // Filtered by action and by who acted, and paged by id.
    let (_, bans_only) = auth
        .get(
            &format!("/api/v1/guilds/{guild}/audit-logs?action_type=22"),
            &mia.access,
        )
        .await;
    assert_eq!(actions(&bans_only), [22]);
    let (_, by_ann) = auth
        .get(
            &format!("/api/v1/guilds/{guild}/audit-logs?user_id={}", ann.id),
            &mia.access,
        )
        .await;
    assert!(
        actions(&by_ann).iter().all(|a| [30, 25, 40].contains(a)),
        "{by_ann}"
    );
    let (_, first) = auth
        .get(
            &format!("/api/v1/guilds/{guild}/audit-logs?limit=2"),
            &mia.access,
        )
        .await;
    let last = first["audit_log_entries"][1]["id"].as_str().unwrap();
    let (_, next) = auth
        .get(
            &format!("/api/v1/guilds/{guild}/audit-logs?limit=2&before={last}"),
            &mia.access,
        )
        .await;
    let all = actions(&log);
    assert_eq!(actions(&first), all[..2]);
    assert_eq!(actions(&next), all[2..4]);

    // Reading it is VIEW_AUDIT_LOG's.
    let (status, body) = auth
        .get(&format!("/api/v1/guilds/{guild}/audit-logs"), &bob.access)
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn nobody_climbs_the_hierarchy_or_grants_what_they_lack() {
    let auth = support::start().await;
    let ann = auth.sign_up("ann").await;
    let mia = auth.sign_up("mia").await;
    let bob = auth.sign_up("bob").await;
    let (guild, _) = auth.guild(&ann, "Book club").await;
    auth.join(guild, &ann, &mia).await;
    auth.join(guild, &ann, &bob).await;
    let manage = Permissions::MANAGE_ROLES | Permissions::KICK_MEMBERS;
    // Each new role goes in at position 1, below the others: "admins" (3) above "mods" (2)
    // above "crew" (1).
    let admins = auth.role(guild, &ann, "admins", manage.bits()).await;
    let mods = auth.role(guild, &ann, "mods", manage.bits()).await;
    let crew = auth.role(guild, &ann, "crew", 0).await;
    auth.give_role(guild, &ann, mia.id, mods).await;
    auth.give_role(guild, &ann, bob.id, crew).await;

    let path =
        |role: proto::Snowflake| format!("/api/v1/guilds/{guild}/members/{}/roles/{role}", mia.id);
    // Mia cannot give herself a role above hers, nor her own.
    for role in [admins, mods] {
        let (status, body) = auth
            .call(Method::PUT, &path(role), Some(&mia.access), None)
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    }
    // Nor edit a role above hers, nor move hers up, nor grant what she lacks.
    for (role, change) in [
        (admins, json!({"name": "mine now"})),
        (crew, json!({"position": 3})),
        (
            crew,
            json!({"permissions": Permissions::BAN_MEMBERS.bits().to_string()}),
        ),
        (
            crew,
            json!({"permissions": Permissions::ADMINISTRATOR.bits().to_string()}),
        ),
    ] {
        let (status, body) = auth
            .call(
                Method::PATCH,
                &format!("/api/v1/guilds/{guild}/roles/{role}"),
                Some(&mia.access),
                Some(change),
            )
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    }
    let (status, body) = auth
        .post(
            &format!("/api/v1/guilds/{guild}/roles"),
            Some(&mia.access),
            json!({"permissions": Permissions::BAN_MEMBERS.bits().to_string()}),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    // Nor kick the owner; but she may edit and give the role below hers.
    let (status, body) = auth
        .call(
            Method::DELETE,
            &format!("/api/v1/guilds/{guild}/members/{}", ann.id),
            Some(&mia.access),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = auth
        .call(
            Method::PATCH,
            &format!("/api/v1/guilds/{guild}/roles/{crew}"),
            Some(&mia.access),
            Some(json!({"name": "readers", "permissions": Permissions::KICK_MEMBERS.bits().to_string()})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Bob, a plain member now able to kick, still cannot kick Mia above him.
    let (status, body) = auth
        .call(
            Method::DELETE,
            &format!("/api/v1/guilds/{guild}/members/{}", mia.id),
            Some(&bob.access),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    // Mia's roles are as they were.
    let (_, member) = auth
        .get(
            &format!("/api/v1/guilds/{guild}/members/{}", mia.id),
            &ann.access,
        )
        .await;
    assert_eq!(member["roles"], json!([mods.to_string()]));
}

#[tokio::test]
async fn a_member_without_kick_members_cannot_kick_and_nothing_changes() {
    let auth = support::start().await;
    let ann = auth.sign_up("ann").await;
    let bob = auth.sign_up("bob").await;
    let cat = auth.sign_up("cat").await;
    let (guild, _) = auth.guild(&ann, "Book club").await;
    auth.join(guild, &ann, &bob).await;
    auth.join(guild, &ann, &cat).await;
    let mut cats = auth.inbox(cat.id).await;

    let (status, body) = auth
        .call(
            Method::DELETE,
            &format!("/api/v1/guilds/{guild}/members/{}", cat.id),
            Some(&bob.access),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    // Cat is still a member and was told nothing.
    let (status, member) = auth
        .get(
            &format!("/api/v1/guilds/{guild}/members/{}", cat.id),
            &ann.access,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{member}");
    support::no_more_events(&mut cats).await;

    // The owner leaving is refused; a member leaving hears it on their other devices as "left".
    let mut bobs = auth.inbox(bob.id).await;
    let (status, body) = auth
        .call(
            Method::DELETE,
            &format!("/api/v1/users/@me/guilds/{guild}"),
            Some(&bob.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let deleted = next_event_named(&mut bobs, "GUILD_DELETE").await;
    assert_eq!(deleted["d"]["removal"], "left", "{deleted}");

    // When the owner deletes the server, everyone still in it is told so.
    let (status, body) = auth
        .call(
            Method::DELETE,
            &format!("/api/v1/guilds/{guild}"),
            Some(&ann.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let deleted = next_event_named(&mut cats, "GUILD_DELETE").await;
    assert_eq!(deleted["d"]["removal"], "deleted", "{deleted}");
}
