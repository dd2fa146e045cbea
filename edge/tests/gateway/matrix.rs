//! The authorization matrix of the message routes and gateway ops in a server's channel: each
//! asked by the owner, an administrator, a member with exactly the permission it needs, a member
//! without it, a timed-out member (who has it), a banned user and an outsider, answers exactly as
//! docs/API.md's table says (the table is rendered from [`CASES`]; a test checks the two agree).

use std::time::Duration;

use proto::Snowflake;
use proto::permissions::Permissions;
use reqwest::Method;
use serde_json::json;

use crate::support::{Client, User, World};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    Owner,
    Admin,
    With,
    Without,
    TimedOut,
    Banned,
    Outsider,
}

const ACTORS: [Actor; 7] = [
    Actor::Owner,
    Actor::Admin,
    Actor::With,
    Actor::Without,
    Actor::TimedOut,
    Actor::Banned,
    Actor::Outsider,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Send,
    EditOwn,
    DeleteOthers,
    Typing,
    RequestMembers,
    History,
    RestSend,
    RestEdit,
    RestDelete,
    Ack,
}

struct Case {
    op: Op,
    name: &'static str,
    /// What it needs beyond being in the server.
    needs: Permissions,
}

const CASES: &[Case] = &[
    Case {
        op: Op::Send,
        name: "op 20 MESSAGE_SEND",
        needs: Permissions::SEND_MESSAGES,
    },
    Case {
        op: Op::EditOwn,
        name: "op 21 MESSAGE_EDIT (one's own)",
        needs: Permissions::SEND_MESSAGES,
    },
    Case {
        op: Op::DeleteOthers,
        name: "op 22 MESSAGE_DELETE (someone else's)",
        needs: Permissions::MANAGE_MESSAGES,
    },
    Case {
        op: Op::Typing,
        name: "op 23 TYPING_START",
        needs: Permissions::SEND_MESSAGES,
    },
    Case {
        op: Op::RequestMembers,
        name: "op 8 with `guild_id`",
        needs: Permissions::empty(),
    },
    Case {
        op: Op::History,
        name: "`GET /channels/{id}/messages`",
        needs: Permissions::READ_MESSAGE_HISTORY,
    },
    Case {
        op: Op::RestSend,
        name: "`POST /channels/{id}/messages`",
        needs: Permissions::SEND_MESSAGES,
    },
    Case {
        op: Op::RestEdit,
        name: "`PATCH /channels/{id}/messages/{message}` (one's own)",
        needs: Permissions::SEND_MESSAGES,
    },
    Case {
        op: Op::RestDelete,
        name: "`DELETE /channels/{id}/messages/{message}` (someone else's)",
        needs: Permissions::MANAGE_MESSAGES,
    },
    Case {
        op: Op::Ack,
        name: "`POST /channels/{id}/messages/{message}/ack`",
        needs: Permissions::VIEW_CHANNEL,
    },
];

fn rest(op: Op) -> bool {
    matches!(
        op,
        Op::History | Op::RestSend | Op::RestEdit | Op::RestDelete | Op::Ack
    )
}

/// What `actor` gets, as the table shows it.
fn expected(case: &Case, actor: Actor) -> String {
    let outside = matches!(actor, Actor::Banned | Actor::Outsider);
    match case.op {
        Op::RequestMembers if outside => "ERROR `unknown_guild`".to_owned(),
        Op::RequestMembers => "GUILD_MEMBERS_CHUNK".to_owned(),
        Op::Typing => match actor {
            Actor::Owner | Actor::Admin | Actor::With => "delivered",
            _ => "dropped",
        }
        .to_owned(),
        op if rest(op) => {
            let ok = match op {
                Op::History | Op::RestSend | Op::RestEdit => "200",
                _ => "204",
            };
            match actor {
                _ if outside => "404".to_owned(),
                Actor::Owner | Actor::Admin | Actor::With => ok.to_owned(),
                // A time-out keeps VIEW_CHANNEL and READ_MESSAGE_HISTORY.
                Actor::TimedOut if matches!(op, Op::History | Op::Ack) => ok.to_owned(),
                Actor::TimedOut => "403 `timed_out`".to_owned(),
                // Without VIEW_CHANNEL the channel is not there at all.
                _ if op == Op::Ack => "404".to_owned(),
                _ => "403 `forbidden`".to_owned(),
            }
        }
        _ => match actor {
            _ if outside => "ERROR `unknown_channel`".to_owned(),
            Actor::Owner | Actor::Admin | Actor::With => "ACK".to_owned(),
            Actor::TimedOut => "ERROR `timed_out`".to_owned(),
            _ => "ERROR `forbidden`".to_owned(),
        },
    }
}

fn table() -> String {
    let mut out = String::from(
        "| in a server's channel | owner | administrator | member with the permission | member without it | timed-out member (with it) | banned | outsider |\n|---|---|---|---|---|---|---|---|\n",
    );
    for case in CASES {
        let needs = if case.needs.is_empty() {
            String::new()
        } else {
            format!(" ({})", case.needs.names().join(", "))
        };
        let cells: Vec<String> = ACTORS.iter().map(|a| expected(case, *a)).collect();
        out.push_str(&format!(
            "| {}{needs} | {} |\n",
            case.name,
            cells.join(" | ")
        ));
    }
    out
}

#[test]
fn the_table_in_api_md_is_the_matrix_the_tests_check() {
    let doc = std::fs::read_to_string(testkit::checkout().join("docs/API.md")).unwrap();
    let table = table();
    assert!(
        doc.contains(&table),
        "docs/API.md does not hold the matrix the tests check; it should read:\n\n{table}"
    );
}

struct People {
    owner: User,
    admin: User,
    with: User,
    without: User,
    timed_out: User,
    banned: User,
    outsider: User,
    /// Writes the messages others delete.
    author: User,
    /// Watches for typing.
    observer: User,
}

impl People {
    fn of(&self, actor: Actor) -> &User {
        match actor {
            Actor::Owner => &self.owner,
            Actor::Admin => &self.admin,
            Actor::With => &self.with,
            Actor::Without => &self.without,
            Actor::TimedOut => &self.timed_out,
            Actor::Banned => &self.banned,
            Actor::Outsider => &self.outsider,
        }
    }
}

/// A message sent over REST by `by`: its id.
async fn message(world: &World, by: &User, channel: Snowflake, content: &str) -> String {
    let (status, body) = world
        .edge_call(
            0,
            Method::POST,
            &format!("/api/v1/channels/{channel}/messages"),
            by,
            Some(json!({"content": content})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The answer to a request frame carrying `nonce`: its dispatch named `t`, or its ERROR.
async fn answer(client: &mut Client, t: &str, nonce: &str) -> String {
    loop {
        let frame = client.next().await.expect("an answer");
        if frame["d"]["nonce"] != nonce {
            continue;
        }
        if frame["op"] == 25 {
            return format!("ERROR `{}`", frame["d"]["code"].as_str().unwrap());
        }
        if frame["op"] == 24 {
            return "ACK".to_owned();
        }
        if frame["t"] == t {
            return t.to_owned();
        }
    }
}

async fn run(world: &World, people: &People, case: &Case) -> Vec<String> {
    let owner = &people.owner;
    let (guild, channel) = world.guild(owner, "Matrix").await;
    let admin = world
        .role(guild, owner, "admin", Permissions::ADMINISTRATOR)
        .await;
    let with = world.role(guild, owner, "with", case.needs).await;
    for who in [
        &people.admin,
        &people.with,
        &people.without,
        &people.timed_out,
        &people.banned,
        &people.author,
        &people.observer,
    ] {
        world.join_guild(guild, owner, who).await;
    }
    world
        .set_role(guild, owner, &people.admin, admin, true)
        .await;
    world.set_role(guild, owner, &people.with, with, true).await;
    world
        .set_role(guild, owner, &people.timed_out, with, true)
        .await;
    world
        .set_role(guild, owner, &people.observer, with, true)
        .await;
    // Everyone's own message, and one of the author's per asker, while @everyone may send.
    let mut own = Vec::new();
    let mut theirs = Vec::new();
    for actor in ACTORS {
        own.push(match actor {
            Actor::Outsider => theirs.first().cloned().unwrap_or_else(|| "1".to_owned()),
            _ => message(world, people.of(actor), channel, "mine").await,
        });
        theirs.push(message(world, &people.author, channel, "theirs").await);
    }
    let everyone = Permissions::DEFAULT_EVERYONE - case.needs;
    let (status, body) = world
        .auth_call(
            Method::PATCH,
            &format!("/api/v1/guilds/{guild}/roles/{guild}"),
            owner,
            Some(json!({"permissions": everyone.bits().to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let until = proto::clock::unix_ms() + 3_600_000;
    let (status, body) = world
        .auth_call(
            Method::PATCH,
            &format!("/api/v1/guilds/{guild}/members/{}", people.timed_out.id),
            owner,
            Some(json!({"communication_disabled_until": until})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = world
        .auth_call(
            Method::PUT,
            &format!("/api/v1/guilds/{guild}/bans/{}", people.banned.id),
            owner,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");

    let mut observer = Client::connect(&world.gateway(0), &people.observer).await;
    let mut got = Vec::new();
    for (i, actor) in ACTORS.iter().enumerate() {
        let user = people.of(*actor);
        let nonce = format!("n{i}");
        let outcome = match case.op {
            Op::Send | Op::EditOwn | Op::DeleteOthers | Op::Typing | Op::RequestMembers => {
                let mut client = Client::connect(&world.gateway(0), user).await;
                let frame = match case.op {
                    Op::Send => {
                        json!({"op": 20, "d": {"channel_id": channel, "content": "hi", "nonce": nonce}})
                    }
                    Op::EditOwn => {
                        json!({"op": 21, "d": {"channel_id": channel, "message_id": own[i], "content": "edited", "nonce": nonce}})
                    }
                    Op::DeleteOthers => {
                        json!({"op": 22, "d": {"channel_id": channel, "message_id": theirs[i], "nonce": nonce}})
                    }
                    Op::Typing => json!({"op": 23, "d": {"channel_id": channel}}),
                    _ => json!({"op": 8, "d": {"guild_id": guild, "limit": 10, "nonce": nonce}}),
                };
                client.send_raw(frame).await;
                match case.op {
                    Op::Typing => typing_reached(&mut observer, user).await,
                    Op::RequestMembers => answer(&mut client, "GUILD_MEMBERS_CHUNK", &nonce).await,
                    _ => answer(&mut client, "", &nonce).await,
                }
            }
            _ => {
                let (method, path, body) = match case.op {
                    Op::History => (
                        Method::GET,
                        format!("/api/v1/channels/{channel}/messages"),
                        None,
                    ),
                    Op::RestSend => (
                        Method::POST,
                        format!("/api/v1/channels/{channel}/messages"),
                        Some(json!({"content": "hi"})),
                    ),
                    Op::RestEdit => (
                        Method::PATCH,
                        format!("/api/v1/channels/{channel}/messages/{}", own[i]),
                        Some(json!({"content": "edited"})),
                    ),
                    Op::RestDelete => (
                        Method::DELETE,
                        format!("/api/v1/channels/{channel}/messages/{}", theirs[i]),
                        None,
                    ),
                    _ => (
                        Method::POST,
                        format!("/api/v1/channels/{channel}/messages/{}/ack", own[0]),
                        None,
                    ),
                };
                let (status, body) = world.edge_call(0, method, &path, user, body).await;
                match (status, body["code"].as_str()) {
                    (403, Some(code)) => format!("403 `{code}`"),
                    (status, _) => status.to_string(),
                }
            }
        };
        got.push(outcome);
    }
    got
}

/// Whether `user`'s typing reaches the observer within a second.
async fn typing_reached(observer: &mut Client, user: &User) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match observer.next_within(left).await {
            Some(frame)
                if frame["t"] == "TYPING_START" && frame["d"]["user_id"] == user.id.to_string() =>
            {
                return "delivered".to_owned();
            }
            Some(_) => {}
            None => return "dropped".to_owned(),
        }
    }
}

async fn check(cases: &[Case]) {
    let world = World::start(1, &["--send-rate=1000/1s"]).await;
    let mut names = vec![
        "owner", "admin", "with", "without", "timed", "banned", "outsider",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    names.extend(["author".to_owned(), "observer".to_owned()]);
    let mut users = Vec::new();
    for name in &names {
        users.push(world.sign_up(name).await);
    }
    let mut users = users.into_iter();
    let mut next = || users.next().unwrap();
    let people = People {
        owner: next(),
        admin: next(),
        with: next(),
        without: next(),
        timed_out: next(),
        banned: next(),
        outsider: next(),
        author: next(),
        observer: next(),
    };
    let mut wrong = Vec::new();
    for case in cases {
        let got = run(&world, &people, case).await;
        for (actor, outcome) in ACTORS.iter().zip(got) {
            let want = expected(case, *actor);
            if outcome != want {
                wrong.push(format!(
                    "{} as {actor:?}: got {outcome}, want {want}",
                    case.name
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn gateway_ops_in_a_servers_channel_answer_each_asker_as_the_matrix_says() {
    check(&CASES[..5]).await;
}

#[tokio::test]
async fn message_routes_in_a_servers_channel_answer_each_asker_as_the_matrix_says() {
    check(&CASES[5..]).await;
}

#[test]
fn the_two_tests_cover_every_case() {
    assert_eq!(CASES.len(), 10);
}
