//! The cases the web client's port of `proto::permissions::effective` is checked against
//! (`web/src/guilds/permissions.test.ts`): subjects and overwrites, each with what the Rust
//! function answers, as committed in `web/src/guilds/permissions.cases.json`. Fails when the
//! function's answers changed and the file was not rewritten (`./natter generate`, which runs this
//! with `NATTER_WRITE_CONTRACT=1`), so the two implementations cannot drift apart unseen.

use proto::Snowflake;
use proto::permissions::{Overwrite, OverwriteType, Permissions, Subject, effective};
use serde_json::{Value, json};

const GUILD: Snowflake = Snowflake::from_u64(100);
const ME: Snowflake = Snowflake::from_u64(7);
const ROLES: [Snowflake; 3] = [
    Snowflake::from_u64(201),
    Snowflake::from_u64(202),
    Snowflake::from_u64(203),
];
const SOMEONE_ELSE: Snowflake = Snowflake::from_u64(8);

/// The permissions whose interplay `effective` decides (the rest only ride along).
const POOL: [Permissions; 13] = [
    Permissions::VIEW_CHANNEL,
    Permissions::SEND_MESSAGES,
    Permissions::READ_MESSAGE_HISTORY,
    Permissions::MENTION_EVERYONE,
    Permissions::ATTACH_FILES,
    Permissions::EMBED_LINKS,
    Permissions::CONNECT,
    Permissions::SPEAK,
    Permissions::STREAM,
    Permissions::MANAGE_MESSAGES,
    Permissions::MODERATE_MEMBERS,
    Permissions::KICK_MEMBERS,
    Permissions::MANAGE_ROLES,
];

/// A small deterministic generator (xorshift64), so the file is the same on every run.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, in_100: u64) -> bool {
        self.next() % 100 < in_100
    }
    fn set(&mut self, density: u64) -> Permissions {
        let mut set = Permissions::empty();
        for p in POOL {
            if self.chance(density) {
                set |= p;
            }
        }
        if self.chance(4) {
            set |= Permissions::ADMINISTRATOR;
        }
        set
    }
}

fn case(name: &str, subject: &Subject, overwrites: Option<&[Overwrite]>) -> Value {
    json!({
        "name": name,
        "subject": {
            "guild_id": subject.guild_id,
            "user_id": subject.user_id,
            "owner": subject.owner,
            "everyone": subject.everyone,
            "roles": subject.roles.iter().map(|(id, p)| json!([id, p])).collect::<Vec<_>>(),
            "timed_out": subject.timed_out,
        },
        "overwrites": overwrites,
        "effective": effective(subject, overwrites),
    })
}

fn subject(dice: &mut Dice) -> Subject {
    let owner = dice.chance(5);
    let everyone = dice.set(50);
    let mut roles = Vec::new();
    for id in ROLES {
        if dice.chance(50) {
            roles.push((id, dice.set(20)));
        }
    }
    Subject {
        guild_id: GUILD,
        user_id: ME,
        owner,
        everyone,
        roles,
        timed_out: dice.chance(15),
    }
}

fn overwrites(dice: &mut Dice) -> Vec<Overwrite> {
    let targets = [
        (GUILD, OverwriteType::Role),
        (ROLES[0], OverwriteType::Role),
        (ROLES[1], OverwriteType::Role),
        (ROLES[2], OverwriteType::Role),
        (ME, OverwriteType::Member),
        (SOMEONE_ELSE, OverwriteType::Member),
        // A member overwrite with a role's id must not apply to that role.
        (ROLES[0], OverwriteType::Member),
    ];
    let mut out = Vec::new();
    for (id, kind) in targets {
        if dice.chance(45) {
            let allow = dice.set(15);
            let deny = dice.set(15);
            out.push(Overwrite {
                id,
                kind,
                allow,
                deny,
            });
        }
    }
    out
}

fn cases() -> Value {
    let view = Permissions::VIEW_CHANNEL;
    let plain = Subject {
        guild_id: GUILD,
        user_id: ME,
        owner: false,
        everyone: Permissions::DEFAULT_EVERYONE,
        roles: vec![(ROLES[0], Permissions::MANAGE_MESSAGES)],
        timed_out: false,
    };
    let hide = [Overwrite {
        id: GUILD,
        kind: OverwriteType::Role,
        allow: Permissions::empty(),
        deny: view,
    }];
    let crew_only = [
        hide[0],
        Overwrite {
            id: ROLES[0],
            kind: OverwriteType::Role,
            allow: view,
            deny: Permissions::empty(),
        },
    ];
    let mut out = vec![
        case("a member in the server", &plain, None),
        case(
            "a member in a channel without overwrites",
            &plain,
            Some(&[]),
        ),
        case("a channel hidden from @everyone", &plain, Some(&hide)),
        case("a channel its role may view", &plain, Some(&crew_only)),
        case(
            "the owner ignores overwrites",
            &Subject {
                owner: true,
                ..plain.clone()
            },
            Some(&hide),
        ),
        case(
            "ADMINISTRATOR ignores overwrites",
            &Subject {
                roles: vec![(ROLES[1], Permissions::ADMINISTRATOR)],
                ..plain.clone()
            },
            Some(&hide),
        ),
        case(
            "a timed-out member may read",
            &Subject {
                timed_out: true,
                ..plain.clone()
            },
            Some(&[]),
        ),
        case(
            "a timed-out administrator is not limited",
            &Subject {
                timed_out: true,
                roles: vec![(ROLES[1], Permissions::ADMINISTRATOR)],
                ..plain.clone()
            },
            Some(&[]),
        ),
    ];
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15);
    for i in 0..300 {
        let s = subject(&mut dice);
        let o = overwrites(&mut dice);
        let name = format!("generated {i}");
        if dice.chance(10) {
            out.push(case(&name, &s, None));
        } else {
            out.push(case(&name, &s, Some(&o)));
        }
    }
    json!({ "cases": out })
}

#[test]
fn the_web_clients_permission_cases_are_what_effective_answers() {
    let json = serde_json::to_string_pretty(&cases()).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../web/src/guilds/permissions.cases.json");
    if std::env::var_os("NATTER_WRITE_CONTRACT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &json).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == json,
        "{} is not what proto::permissions::effective answers: run `./natter generate`",
        path.display()
    );
}
