//! The authorization matrix of servers' REST routes: every route, asked by the owner, an
//! administrator, a member with exactly the permission it needs, a member without it, a timed-out
//! member (who has it), a banned user and an outsider, gets exactly the status docs/API.md's
//! table says (the table is rendered from [`CASES`], and a test checks the two agree).

use proto::Snowflake;
use proto::permissions::Permissions;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{self, Account, TestAuth, id_of};

/// Who asks.
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

/// The table's columns.
const COLUMNS: [Actor; 7] = [
    Actor::Owner,
    Actor::Admin,
    Actor::With,
    Actor::Without,
    Actor::TimedOut,
    Actor::Banned,
    Actor::Outsider,
];

/// The order they ask in: the owner last, as some routes change the server for good (delete it,
/// give it away).
const TURNS: [Actor; 7] = [
    Actor::Admin,
    Actor::With,
    Actor::Without,
    Actor::TimedOut,
    Actor::Banned,
    Actor::Outsider,
    Actor::Owner,
];

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy)]
enum Needs {
    /// Being in the server.
    Member,
    /// A permission (and the hierarchy, which every target here satisfies).
    Permission(Permissions),
    /// Being its owner.
    Owner,
    /// Nothing: not even a sign-in.
    Nothing,
    /// Leaving: any member but the owner.
    Leave,
    /// Accepting an invite: anyone not banned.
    Accept,
}

/// One route of the matrix.
#[derive(Debug, Clone, Copy)]
enum Route {
    GetGuild,
    UpdateGuild,
    GiveGuild,
    DeleteGuild,
    Leave,
    ListChannels,
    CreateChannel,
    ReorderChannels,
    GetChannel,
    UpdateChannel,
    DeleteChannel,
    SetOverwrite,
    DeleteOverwrite,
    ListRoles,
    CreateRole,
    UpdateRole,
    DeleteRole,
    ListMembers,
    GetMember,
    OwnNick,
    Nick,
    MemberRoles,
    TimeOut,
    AddRole,
    RemoveRole,
    Kick,
    ListBans,
    Ban,
    Unban,
    ListInvites,
    CreateInvite,
    CreateChannelInvite,
    PreviewInvite,
    AcceptInvite,
    RevokeInvite,
    AuditLog,
}

struct Case {
    route: Route,
    /// As the table shows it.
    name: &'static str,
    needs: Needs,
    ok: u16,
}

const fn case(route: Route, name: &'static str, needs: Needs, ok: u16) -> Case {
    Case {
        route,
        name,
        needs,
        ok,
    }
}

const fn perm(p: Permissions) -> Needs {
    Needs::Permission(p)
}

const CASES: &[Case] = &[
    case(Route::GetGuild, "`GET /guilds/{id}`", Needs::Member, 200),
    case(
        Route::UpdateGuild,
        "`PATCH /guilds/{id}` (name, icon)",
        perm(Permissions::MANAGE_GUILD),
        200,
    ),
    case(
        Route::GiveGuild,
        "`PATCH /guilds/{id}` (`owner_id`)",
        Needs::Owner,
        200,
    ),
    case(
        Route::DeleteGuild,
        "`DELETE /guilds/{id}`",
        Needs::Owner,
        204,
    ),
    case(
        Route::Leave,
        "`DELETE /users/@me/guilds/{id}`",
        Needs::Leave,
        204,
    ),
    case(
        Route::ListChannels,
        "`GET /guilds/{id}/channels`",
        Needs::Member,
        200,
    ),
    case(
        Route::CreateChannel,
        "`POST /guilds/{id}/channels`",
        perm(Permissions::MANAGE_CHANNELS),
        201,
    ),
    case(
        Route::ReorderChannels,
        "`PATCH /guilds/{id}/channels`",
        perm(Permissions::MANAGE_CHANNELS),
        204,
    ),
    case(
        Route::GetChannel,
        "`GET /channels/{id}`",
        Needs::Member,
        200,
    ),
    case(
        Route::UpdateChannel,
        "`PATCH /channels/{id}`",
        perm(Permissions::MANAGE_CHANNELS),
        200,
    ),
    case(
        Route::DeleteChannel,
        "`DELETE /channels/{id}`",
        perm(Permissions::MANAGE_CHANNELS),
        204,
    ),
    case(
        Route::SetOverwrite,
        "`PUT /channels/{id}/permissions/{overwrite_id}`",
        perm(Permissions::MANAGE_ROLES),
        204,
    ),
    case(
        Route::DeleteOverwrite,
        "`DELETE /channels/{id}/permissions/{overwrite_id}`",
        perm(Permissions::MANAGE_ROLES),
        204,
    ),
    case(
        Route::ListRoles,
        "`GET /guilds/{id}/roles`",
        Needs::Member,
        200,
    ),
    case(
        Route::CreateRole,
        "`POST /guilds/{id}/roles`",
        perm(Permissions::MANAGE_ROLES),
        201,
    ),
    case(
        Route::UpdateRole,
        "`PATCH /guilds/{id}/roles/{role}`",
        perm(Permissions::MANAGE_ROLES),
        200,
    ),
    case(
        Route::DeleteRole,
        "`DELETE /guilds/{id}/roles/{role}`",
        perm(Permissions::MANAGE_ROLES),
        204,
    ),
    case(
        Route::ListMembers,
        "`GET /guilds/{id}/members`",
        Needs::Member,
        200,
    ),
    case(
        Route::GetMember,
        "`GET /guilds/{id}/members/{user}`",
        Needs::Member,
        200,
    ),
    case(
        Route::OwnNick,
        "`PATCH /guilds/{id}/members/@me` (`nick`)",
        perm(Permissions::CHANGE_NICKNAME),
        200,
    ),
    case(
        Route::Nick,
        "`PATCH /guilds/{id}/members/{user}` (`nick`)",
        perm(Permissions::MANAGE_NICKNAMES),
        200,
    ),
    case(
        Route::MemberRoles,
        "`PATCH /guilds/{id}/members/{user}` (`roles`)",
        perm(Permissions::MANAGE_ROLES),
        200,
    ),
    case(
        Route::TimeOut,
        "`PATCH /guilds/{id}/members/{user}` (time-out)",
        perm(Permissions::MODERATE_MEMBERS),
        200,
    ),
    case(
        Route::AddRole,
        "`PUT /guilds/{id}/members/{user}/roles/{role}`",
        perm(Permissions::MANAGE_ROLES),
        204,
    ),
    case(
        Route::RemoveRole,
        "`DELETE /guilds/{id}/members/{user}/roles/{role}`",
        perm(Permissions::MANAGE_ROLES),
        204,
    ),
    case(
        Route::Kick,
        "`DELETE /guilds/{id}/members/{user}` (kick)",
        perm(Permissions::KICK_MEMBERS),
        204,
    ),
    case(
        Route::ListBans,
        "`GET /guilds/{id}/bans`",
        perm(Permissions::BAN_MEMBERS),
        200,
    ),
    case(
        Route::Ban,
        "`PUT /guilds/{id}/bans/{user}`",
        perm(Permissions::BAN_MEMBERS),
        204,
    ),
    case(
        Route::Unban,
        "`DELETE /guilds/{id}/bans/{user}`",
        perm(Permissions::BAN_MEMBERS),
        204,
    ),
    case(
        Route::ListInvites,
        "`GET /guilds/{id}/invites`",
        perm(Permissions::MANAGE_GUILD),
        200,
    ),
    case(
        Route::CreateInvite,
        "`POST /guilds/{id}/invites`",
        perm(Permissions::CREATE_INSTANT_INVITE),
        201,
    ),
    case(
        Route::CreateChannelInvite,
        "`POST /channels/{id}/invites`",
        perm(Permissions::CREATE_INSTANT_INVITE),
        201,
    ),
    case(
        Route::PreviewInvite,
        "`GET /invites/{code}`",
        Needs::Nothing,
        200,
    ),
    case(
        Route::AcceptInvite,
        "`POST /invites/{code}`",
        Needs::Accept,
        200,
    ),
    case(
        Route::RevokeInvite,
        "`DELETE /invites/{code}`",
        perm(Permissions::MANAGE_GUILD),
        204,
    ),
    case(
        Route::AuditLog,
        "`GET /guilds/{id}/audit-logs`",
        perm(Permissions::VIEW_AUDIT_LOG),
        200,
    ),
];

/// The status (and, for a refusal that is not 404, its code) `actor` gets.
fn expected(case: &Case, actor: Actor) -> (u16, Option<&'static str>) {
    let ok = (case.ok, None);
    let forbidden = (403, Some("forbidden"));
    let gone = (404, None);
    match (case.needs, actor) {
        (Needs::Nothing, _) => ok,
        (Needs::Accept, Actor::Banned) => (403, Some("banned")),
        (Needs::Accept, _) => ok,
        (_, Actor::Banned | Actor::Outsider) => gone,
        (Needs::Member, _) => ok,
        (Needs::Leave, Actor::Owner) => forbidden,
        (Needs::Leave, _) => ok,
        (Needs::Owner, Actor::Owner) => ok,
        (Needs::Owner, _) => forbidden,
        (Needs::Permission(_), Actor::Owner | Actor::Admin | Actor::With) => ok,
        (Needs::Permission(_), Actor::TimedOut) => (403, Some("timed_out")),
        (Needs::Permission(_), Actor::Without) => forbidden,
    }
}

fn cell((status, code): (u16, Option<&str>)) -> String {
    match code {
        Some(code) => format!("{status} `{code}`"),
        None => status.to_string(),
    }
}

/// The matrix as docs/API.md shows it.
fn table() -> String {
    let mut out = String::from(
        "| route | owner | administrator | member with the permission | member without it | timed-out member (with it) | banned | outsider |\n|---|---|---|---|---|---|---|---|\n",
    );
    for case in CASES {
        let needs = match case.needs {
            Needs::Permission(p) => format!(" ({})", p.names().join(", ")),
            _ => String::new(),
        };
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|actor| cell(expected(case, *actor)))
            .collect();
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

/// Everyone a case needs: the seven who ask, and a target per asker for routes that act on one.
struct People {
    owner: Account,
    admin: Account,
    with: Account,
    without: Account,
    timed_out: Account,
    banned: Account,
    outsider: Account,
    targets: Vec<Account>,
}

impl People {
    async fn sign_up(auth: &TestAuth, tag: &str) -> Self {
        let name = |who: &str| format!("{who}_{tag}");
        let mut targets = Vec::new();
        for i in 0..TURNS.len() {
            targets.push(auth.sign_up(&name(&format!("t{i}"))).await);
        }
        Self {
            owner: auth.sign_up(&name("owner")).await,
            admin: auth.sign_up(&name("admin")).await,
            with: auth.sign_up(&name("with")).await,
            without: auth.sign_up(&name("without")).await,
            timed_out: auth.sign_up(&name("timed")).await,
            banned: auth.sign_up(&name("banned")).await,
            outsider: auth.sign_up(&name("outsider")).await,
            targets,
        }
    }

    fn of(&self, actor: Actor) -> &Account {
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

/// A server set up for one case: @everyone may only view, send and read history; an
/// administrator; a role with exactly the case's permission, held by `with` and `timed_out`
/// (timed out); `banned` banned.
struct Server<'a> {
    auth: &'a TestAuth,
    people: &'a People,
    id: Snowflake,
    general: Snowflake,
    invite: String,
}

impl<'a> Server<'a> {
    async fn new(auth: &'a TestAuth, people: &'a People, needs: Needs) -> Self {
        let owner = &people.owner;
        let (id, body) = auth.guild(owner, "Matrix").await;
        let general = id_of(&body["channels"][0]);
        let everyone = Permissions::VIEW_CHANNEL
            | Permissions::SEND_MESSAGES
            | Permissions::READ_MESSAGE_HISTORY;
        let (status, body) = auth
            .call(
                Method::PATCH,
                &format!("/api/v1/guilds/{id}/roles/{id}"),
                Some(&owner.access),
                Some(json!({"permissions": everyone.bits().to_string()})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, invite) = auth
            .post(
                &format!("/api/v1/guilds/{id}/invites"),
                Some(&owner.access),
                json!({"max_age": 0}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{invite}");
        let invite = invite["code"].as_str().unwrap().to_owned();
        let server = Self {
            auth,
            people,
            id,
            general,
            invite,
        };
        let admin = auth
            .role(id, owner, "admin", Permissions::ADMINISTRATOR.bits())
            .await;
        let granted = match needs {
            Needs::Permission(p) => p,
            _ => Permissions::empty(),
        };
        let with = auth.role(id, owner, "with", granted.bits()).await;
        for who in [
            &people.admin,
            &people.with,
            &people.without,
            &people.timed_out,
            &people.banned,
        ] {
            server.join(who).await;
        }
        auth.give_role(id, owner, people.admin.id, admin).await;
        auth.give_role(id, owner, people.with.id, with).await;
        auth.give_role(id, owner, people.timed_out.id, with).await;
        let until = proto::clock::unix_ms() + 3_600_000;
        server
            .owner_does(
                Method::PATCH,
                &format!("/api/v1/guilds/{id}/members/{}", people.timed_out.id),
                Some(json!({"communication_disabled_until": until})),
                StatusCode::OK,
            )
            .await;
        server
            .owner_does(
                Method::PUT,
                &format!("/api/v1/guilds/{id}/bans/{}", people.banned.id),
                None,
                StatusCode::NO_CONTENT,
            )
            .await;
        server
    }

    async fn join(&self, who: &Account) {
        let (status, body) = self
            .auth
            .post(
                &format!("/api/v1/invites/{}", self.invite),
                Some(&who.access),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn owner_does(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        expected: StatusCode,
    ) -> Value {
        let (status, body) = self
            .auth
            .call(method, path, Some(&self.people.owner.access), body)
            .await;
        assert_eq!(status, expected, "{path}: {body}");
        body
    }

    /// A fresh role at the bottom of the hierarchy.
    async fn role(&self) -> Snowflake {
        self.auth
            .role(self.id, &self.people.owner, "fresh", 0)
            .await
    }

    /// A fresh text channel.
    async fn channel(&self) -> Snowflake {
        let body = self
            .owner_does(
                Method::POST,
                &format!("/api/v1/guilds/{}/channels", self.id),
                Some(json!({"name": "fresh"})),
                StatusCode::CREATED,
            )
            .await;
        id_of(&body)
    }

    /// The request `turn`'s asker makes for `route`, after preparing what it acts on.
    async fn request(&self, route: Route, turn: usize) -> (Method, String, Option<Value>) {
        let g = self.id;
        let target = &self.people.targets[turn];
        let t = target.id;
        match route {
            Route::GetGuild => (Method::GET, format!("/api/v1/guilds/{g}"), None),
            Route::UpdateGuild => (
                Method::PATCH,
                format!("/api/v1/guilds/{g}"),
                Some(json!({"name": format!("Matrix {turn}")})),
            ),
            Route::GiveGuild => {
                self.join(target).await;
                (
                    Method::PATCH,
                    format!("/api/v1/guilds/{g}"),
                    Some(json!({"owner_id": t.to_string()})),
                )
            }
            Route::DeleteGuild => (Method::DELETE, format!("/api/v1/guilds/{g}"), None),
            Route::Leave => (
                Method::DELETE,
                format!("/api/v1/users/@me/guilds/{g}"),
                None,
            ),
            Route::ListChannels => (Method::GET, format!("/api/v1/guilds/{g}/channels"), None),
            Route::CreateChannel => (
                Method::POST,
                format!("/api/v1/guilds/{g}/channels"),
                Some(json!({"name": "new"})),
            ),
            Route::ReorderChannels => (
                Method::PATCH,
                format!("/api/v1/guilds/{g}/channels"),
                Some(json!([{"id": self.general.to_string(), "position": turn}])),
            ),
            Route::GetChannel => (
                Method::GET,
                format!("/api/v1/channels/{}", self.general),
                None,
            ),
            Route::UpdateChannel => (
                Method::PATCH,
                format!("/api/v1/channels/{}", self.channel().await),
                Some(json!({"topic": "changed"})),
            ),
            Route::DeleteChannel => (
                Method::DELETE,
                format!("/api/v1/channels/{}", self.channel().await),
                None,
            ),
            Route::SetOverwrite => (
                Method::PUT,
                format!(
                    "/api/v1/channels/{}/permissions/{}",
                    self.channel().await,
                    self.role().await
                ),
                Some(json!({"type": 0, "deny": Permissions::SEND_MESSAGES.bits().to_string()})),
            ),
            Route::DeleteOverwrite => {
                let (channel, role) = (self.channel().await, self.role().await);
                let path = format!("/api/v1/channels/{channel}/permissions/{role}");
                self.owner_does(
                    Method::PUT,
                    &path,
                    Some(json!({"type": 0, "deny": Permissions::SEND_MESSAGES.bits().to_string()})),
                    StatusCode::NO_CONTENT,
                )
                .await;
                (Method::DELETE, path, None)
            }
            Route::ListRoles => (Method::GET, format!("/api/v1/guilds/{g}/roles"), None),
            Route::CreateRole => (
                Method::POST,
                format!("/api/v1/guilds/{g}/roles"),
                Some(json!({"name": "mine"})),
            ),
            Route::UpdateRole => (
                Method::PATCH,
                format!("/api/v1/guilds/{g}/roles/{}", self.role().await),
                Some(json!({"name": "renamed"})),
            ),
            Route::DeleteRole => (
                Method::DELETE,
                format!("/api/v1/guilds/{g}/roles/{}", self.role().await),
                None,
            ),
            Route::ListMembers => (Method::GET, format!("/api/v1/guilds/{g}/members"), None),
            Route::GetMember => (
                Method::GET,
                format!("/api/v1/guilds/{g}/members/{}", self.people.owner.id),
                None,
            ),
            Route::OwnNick => (
                Method::PATCH,
                format!("/api/v1/guilds/{g}/members/@me"),
                Some(json!({"nick": "me"})),
            ),
            Route::Nick => {
                self.join(target).await;
                (
                    Method::PATCH,
                    format!("/api/v1/guilds/{g}/members/{t}"),
                    Some(json!({"nick": "you"})),
                )
            }
            Route::MemberRoles => {
                self.join(target).await;
                let role = self.role().await;
                (
                    Method::PATCH,
                    format!("/api/v1/guilds/{g}/members/{t}"),
                    Some(json!({"roles": [role.to_string()]})),
                )
            }
            Route::TimeOut => {
                self.join(target).await;
                let until = proto::clock::unix_ms() + 600_000;
                (
                    Method::PATCH,
                    format!("/api/v1/guilds/{g}/members/{t}"),
                    Some(json!({"communication_disabled_until": until})),
                )
            }
            Route::AddRole => {
                self.join(target).await;
                let role = self.role().await;
                (
                    Method::PUT,
                    format!("/api/v1/guilds/{g}/members/{t}/roles/{role}"),
                    None,
                )
            }
            Route::RemoveRole => {
                self.join(target).await;
                let role = self.role().await;
                let path = format!("/api/v1/guilds/{g}/members/{t}/roles/{role}");
                self.owner_does(Method::PUT, &path, None, StatusCode::NO_CONTENT)
                    .await;
                (Method::DELETE, path, None)
            }
            Route::Kick => {
                self.join(target).await;
                (
                    Method::DELETE,
                    format!("/api/v1/guilds/{g}/members/{t}"),
                    None,
                )
            }
            Route::ListBans => (Method::GET, format!("/api/v1/guilds/{g}/bans"), None),
            Route::Ban => {
                self.join(target).await;
                (Method::PUT, format!("/api/v1/guilds/{g}/bans/{t}"), None)
            }
            Route::Unban => {
                let path = format!("/api/v1/guilds/{g}/bans/{t}");
                self.owner_does(Method::PUT, &path, None, StatusCode::NO_CONTENT)
                    .await;
                (Method::DELETE, path, None)
            }
            Route::ListInvites => (Method::GET, format!("/api/v1/guilds/{g}/invites"), None),
            Route::CreateInvite => (
                Method::POST,
                format!("/api/v1/guilds/{g}/invites"),
                Some(json!({})),
            ),
            Route::CreateChannelInvite => (
                Method::POST,
                format!("/api/v1/channels/{}/invites", self.general),
                Some(json!({})),
            ),
            Route::PreviewInvite => (
                Method::GET,
                format!("/api/v1/invites/{}", self.invite),
                None,
            ),
            Route::AcceptInvite => (
                Method::POST,
                format!("/api/v1/invites/{}", self.invite),
                Some(json!({})),
            ),
            Route::RevokeInvite => {
                let invite = self.auth.invite(g, &self.people.owner).await;
                (Method::DELETE, format!("/api/v1/invites/{invite}"), None)
            }
            Route::AuditLog => (Method::GET, format!("/api/v1/guilds/{g}/audit-logs"), None),
        }
    }
}

/// Runs the cases in `range` of [`CASES`], each on a server of its own.
async fn check(tag: &str, range: std::ops::Range<usize>) {
    let auth = support::start_with(&["--invite-create-rate=100000/1m".to_owned()]).await;
    let people = People::sign_up(&auth, tag).await;
    let mut wrong = Vec::new();
    for case in &CASES[range] {
        let server = Server::new(&auth, &people, case.needs).await;
        for (turn, actor) in TURNS.iter().enumerate() {
            let (method, path, body) = server.request(case.route, turn).await;
            let token = match case.needs {
                Needs::Nothing => None,
                _ => Some(people.of(*actor).access.as_str()),
            };
            let (status, answer) = auth.call(method, &path, token, body).await;
            let got = (status.as_u16(), answer["code"].as_str().map(str::to_owned));
            let (want_status, want_code) = expected(case, *actor);
            let code_matches = want_code.is_none_or(|code| got.1.as_deref() == Some(code));
            if got.0 != want_status || !code_matches {
                wrong.push(format!(
                    "{} as {actor:?}: got {} {answer}, want {}",
                    case.name,
                    got.0,
                    cell((want_status, want_code))
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The four tests below split [`CASES`] between them, so they run side by side.
const SPLITS: [usize; 5] = [0, 5, 13, 26, 36];

#[test]
fn the_tests_below_cover_every_case() {
    assert_eq!(SPLITS[4], CASES.len());
}

#[tokio::test]
async fn the_servers_own_routes_answer_each_asker_as_the_matrix_says() {
    check("g", SPLITS[0]..SPLITS[1]).await;
}

#[tokio::test]
async fn channel_and_overwrite_routes_answer_each_asker_as_the_matrix_says() {
    check("c", SPLITS[1]..SPLITS[2]).await;
}

#[tokio::test]
async fn role_and_member_routes_answer_each_asker_as_the_matrix_says() {
    check("r", SPLITS[2]..SPLITS[3]).await;
}

#[tokio::test]
async fn ban_invite_and_audit_routes_answer_each_asker_as_the_matrix_says() {
    check("b", SPLITS[3]..SPLITS[4]).await;
}
