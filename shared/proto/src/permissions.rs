//! Permissions in a server (guild): Discord's 64-bit permission set, per-channel overwrites, and
//! the one function that says what a member may do ([`effective`]), in Discord's documented order.
//! Auth (deciding REST requests) and the edges (deciding what a socket may see and send) both
//! call it, so the two can never disagree.
//!
//! ```text
//! base      = @everyone's permissions | every role of the member's permissions
//! owner, or ADMINISTRATOR in base                               -> everything (overwrites ignored)
//! in a channel: base, then the @everyone overwrite (deny, then allow),
//!               then the member's roles' overwrites together (every deny, then every allow),
//!               then the member's own overwrite (deny, then allow)
//!               no VIEW_CHANNEL -> nothing; no SEND_MESSAGES -> no MENTION_EVERYONE,
//!               ATTACH_FILES, EMBED_LINKS; no CONNECT -> no SPEAK, STREAM
//! timed out (and neither owner nor ADMINISTRATOR)               -> only VIEW_CHANNEL and
//!                                                                  READ_MESSAGE_HISTORY remain
//! ```
//!
//! Hierarchy ([`Rank`]): a member's rank is the position of their highest role (the owner is above
//! everyone). Nobody manages a role at or above their own highest, nor a member ranked at or above
//! them, nor grants a permission they lack ([`Rank::may_not_grant`]).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_repr::{Deserialize_repr, Serialize_repr};

use crate::Snowflake;

bitflags::bitflags! {
    /// A set of permissions, at Discord's bit positions. On the wire a decimal string (as on
    /// Discord: the set does not fit a JavaScript number).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Permissions: u64 {
        /// Create invites to the server.
        const CREATE_INSTANT_INVITE = 1 << 0;
        const KICK_MEMBERS = 1 << 1;
        const BAN_MEMBERS = 1 << 2;
        /// Every permission, in every channel, whatever the overwrites say.
        const ADMINISTRATOR = 1 << 3;
        /// Create, edit, reorder and delete channels.
        const MANAGE_CHANNELS = 1 << 4;
        /// Edit the server's name and icon; list and revoke invites.
        const MANAGE_GUILD = 1 << 5;
        const ADD_REACTIONS = 1 << 6;
        const VIEW_AUDIT_LOG = 1 << 7;
        const STREAM = 1 << 9;
        /// See a channel at all (its messages, typing and read receipts included).
        const VIEW_CHANNEL = 1 << 10;
        const SEND_MESSAGES = 1 << 11;
        /// Delete others' messages.
        const MANAGE_MESSAGES = 1 << 13;
        const EMBED_LINKS = 1 << 14;
        const ATTACH_FILES = 1 << 15;
        /// Read what was said before (history pages).
        const READ_MESSAGE_HISTORY = 1 << 16;
        const MENTION_EVERYONE = 1 << 17;
        const CONNECT = 1 << 20;
        const SPEAK = 1 << 21;
        const MUTE_MEMBERS = 1 << 22;
        const DEAFEN_MEMBERS = 1 << 23;
        const MOVE_MEMBERS = 1 << 24;
        /// Change one's own nickname.
        const CHANGE_NICKNAME = 1 << 26;
        /// Change others' nicknames.
        const MANAGE_NICKNAMES = 1 << 27;
        /// Create, edit and delete roles below one's own, give and take them, and set channel
        /// overwrites.
        const MANAGE_ROLES = 1 << 28;
        /// Time members out.
        const MODERATE_MEMBERS = 1 << 40;
    }
}

impl Permissions {
    /// What @everyone may do in a new server: see, talk, read back, invite, react, join voice.
    pub const DEFAULT_EVERYONE: Self = Self::VIEW_CHANNEL
        .union(Self::SEND_MESSAGES)
        .union(Self::READ_MESSAGE_HISTORY)
        .union(Self::CREATE_INSTANT_INVITE)
        .union(Self::ADD_REACTIONS)
        .union(Self::EMBED_LINKS)
        .union(Self::ATTACH_FILES)
        .union(Self::CHANGE_NICKNAME)
        .union(Self::CONNECT)
        .union(Self::SPEAK)
        .union(Self::STREAM);

    /// What a timed-out member keeps.
    pub const WHILE_TIMED_OUT: Self = Self::VIEW_CHANNEL.union(Self::READ_MESSAGE_HISTORY);

    /// Whether every permission of `needed` is in the set.
    pub fn has(self, needed: Self) -> bool {
        self.contains(needed)
    }

    /// The names of the permissions in the set, as Discord spells them.
    pub fn names(self) -> Vec<&'static str> {
        self.iter_names().map(|(name, _)| name).collect()
    }

    /// Parses a decimal string (or a number from a lenient client). Bits Natter does not know
    /// are refused, so a client cannot store a permission that means something only later.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bits: u64 = raw
            .trim()
            .parse()
            .map_err(|_| format!("{raw:?} is not a permission set (a decimal string)"))?;
        Self::from_bits(bits).ok_or_else(|| {
            format!(
                "{raw:?} holds bits that are not permissions (unknown: {})",
                bits & !Self::all().bits()
            )
        })
    }

    /// The set as the signed 64-bit integer PostgreSQL stores.
    pub const fn as_i64(self) -> i64 {
        self.bits() as i64
    }

    /// A set read back from PostgreSQL (unknown bits dropped).
    pub const fn from_i64(raw: i64) -> Self {
        Self::from_bits_truncate(raw as u64)
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.bits(), f)
    }
}

impl Serialize for Permissions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.bits())
    }
}

impl<'de> Deserialize<'de> for Permissions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::Number(n) => n.to_string(),
        };
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Permissions {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9]{1,20}$"))
            .description(Some(
                "A permission set: the sum of Discord's permission bits, as a decimal string \
                 (VIEW_CHANNEL 1024, SEND_MESSAGES 2048, ADMINISTRATOR 8, ...; docs/API.md lists \
                 them all)",
            ))
            .examples(["3072"])
            .into()
    }
}

impl utoipa::ToSchema for Permissions {}

/// Whom an overwrite is for: a role (0) or a member (1), as on Discord.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize_repr, Deserialize_repr, utoipa::ToSchema,
)]
#[repr(u8)]
pub enum OverwriteType {
    Role = 0,
    Member = 1,
}

/// A channel's permission overwrite for one role or one member: what it adds (`allow`) and takes
/// away (`deny`) from what they may do elsewhere in the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Overwrite {
    /// The role's id (the server's id for @everyone) or the member's user id.
    pub id: Snowflake,
    #[serde(rename = "type")]
    pub kind: OverwriteType,
    pub allow: Permissions,
    pub deny: Permissions,
}

/// Who is asking, as far as permissions go: whether they own the server, what @everyone may do,
/// and their roles (id and permissions); and whether they are timed out now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The server's id: also its @everyone role's id.
    pub guild_id: Snowflake,
    pub user_id: Snowflake,
    pub owner: bool,
    pub everyone: Permissions,
    /// The member's roles other than @everyone, with their permissions.
    pub roles: Vec<(Snowflake, Permissions)>,
    /// `communication_disabled_until` is in the future.
    pub timed_out: bool,
}

/// What `subject` may do in the server (`channel: None`) or in one channel of it, given the
/// channel's overwrites: Discord's documented computation, step for step (see the module's
/// comment). The one place this is decided.
pub fn effective(subject: &Subject, channel: Option<&[Overwrite]>) -> Permissions {
    if subject.owner {
        return Permissions::all();
    }
    let base = subject
        .roles
        .iter()
        .fold(subject.everyone, |set, (_, role)| set | *role);
    if base.contains(Permissions::ADMINISTRATOR) {
        return Permissions::all();
    }
    let mut set = base;
    if let Some(overwrites) = channel {
        let find = |id: Snowflake, kind: OverwriteType| {
            overwrites.iter().find(|o| o.id == id && o.kind == kind)
        };
        if let Some(everyone) = find(subject.guild_id, OverwriteType::Role) {
            set = (set - everyone.deny) | everyone.allow;
        }
        let (mut allow, mut deny) = (Permissions::empty(), Permissions::empty());
        for (role, _) in &subject.roles {
            if *role == subject.guild_id {
                continue;
            }
            if let Some(o) = find(*role, OverwriteType::Role) {
                allow |= o.allow;
                deny |= o.deny;
            }
        }
        set = (set - deny) | allow;
        if let Some(member) = find(subject.user_id, OverwriteType::Member) {
            set = (set - member.deny) | member.allow;
        }
        if !set.contains(Permissions::VIEW_CHANNEL) {
            return Permissions::empty();
        }
        if !set.contains(Permissions::SEND_MESSAGES) {
            set -= Permissions::MENTION_EVERYONE
                | Permissions::ATTACH_FILES
                | Permissions::EMBED_LINKS;
        }
        if !set.contains(Permissions::CONNECT) {
            set -= Permissions::SPEAK | Permissions::STREAM;
        }
    }
    if subject.timed_out {
        set &= Permissions::WHILE_TIMED_OUT;
    }
    set
}

/// Where someone stands in a server's hierarchy: the owner above all, everyone else at the
/// position of their highest role (0: only @everyone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rank {
    pub owner: bool,
    pub highest: i32,
}

impl Rank {
    /// Whether this member may manage (edit, delete, give, take) a role at `position`.
    pub fn above_role(self, position: i32) -> bool {
        self.owner || self.highest > position
    }

    /// Whether this member may act on `other` (kick, ban, time out, change their roles or
    /// nickname): never on the owner, nor on anyone ranked at or above them.
    pub fn above(self, other: Rank) -> bool {
        !other.owner && (self.owner || self.highest > other.highest)
    }

    /// The permissions in `wanted` that someone who may do `mine` may not hand out (in a role or
    /// an overwrite): a permission one lacks cannot be granted. Empty when all may be.
    pub fn may_not_grant(self, mine: Permissions, wanted: Permissions) -> Permissions {
        if self.owner || mine.contains(Permissions::ADMINISTRATOR) {
            Permissions::empty()
        } else {
            wanted - mine
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const GUILD: Snowflake = Snowflake::from_u64(100);
    const ME: Snowflake = Snowflake::from_u64(7);
    const CREW: Snowflake = Snowflake::from_u64(201);
    const MODS: Snowflake = Snowflake::from_u64(202);

    fn member(roles: &[(Snowflake, Permissions)]) -> Subject {
        Subject {
            guild_id: GUILD,
            user_id: ME,
            owner: false,
            everyone: Permissions::DEFAULT_EVERYONE,
            roles: roles.to_vec(),
            timed_out: false,
        }
    }

    fn overwrite(
        id: Snowflake,
        kind: OverwriteType,
        allow: Permissions,
        deny: Permissions,
    ) -> Overwrite {
        Overwrite {
            id,
            kind,
            allow,
            deny,
        }
    }

    #[test]
    fn permissions_are_a_decimal_string_at_discords_bit_positions() {
        let set = Permissions::VIEW_CHANNEL | Permissions::SEND_MESSAGES;
        assert_eq!(serde_json::to_value(set).unwrap(), "3072");
        assert_eq!(Permissions::MODERATE_MEMBERS.bits(), 1_099_511_627_776);
        assert_eq!(Permissions::ADMINISTRATOR.bits(), 8);
        assert_eq!(Permissions::MANAGE_ROLES.bits(), 268_435_456);
        let back: Permissions = serde_json::from_str("\"3072\"").unwrap();
        assert_eq!(back, set);
        let lenient: Permissions = serde_json::from_str("3072").unwrap();
        assert_eq!(lenient, set);
        assert_eq!(Permissions::from_i64(set.as_i64()), set);
    }

    #[test]
    fn a_set_with_bits_natter_does_not_know_or_that_is_not_a_number_is_refused() {
        assert!(Permissions::parse(&(1u64 << 12).to_string()).is_err());
        assert!(Permissions::parse("-1").is_err());
        assert!(Permissions::parse("lots").is_err());
        assert!(Permissions::parse("").is_err());
    }

    #[test]
    fn the_owner_may_do_everything_everywhere() {
        let mut owner = member(&[]);
        owner.owner = true;
        owner.everyone = Permissions::empty();
        owner.timed_out = true;
        let deny_all = [overwrite(
            ME,
            OverwriteType::Member,
            Permissions::empty(),
            Permissions::all(),
        )];
        assert_eq!(effective(&owner, Some(&deny_all)), Permissions::all());
    }

    #[test]
    fn a_member_without_roles_has_what_everyone_has() {
        assert_eq!(effective(&member(&[]), None), Permissions::DEFAULT_EVERYONE);
    }

    #[test]
    fn roles_add_to_everyone() {
        let subject = member(&[(MODS, Permissions::KICK_MEMBERS)]);
        assert!(
            effective(&subject, None).has(Permissions::KICK_MEMBERS | Permissions::SEND_MESSAGES)
        );
    }

    #[test]
    fn the_everyone_overwrite_then_roles_then_the_member_apply_in_that_order() {
        let subject = member(&[(CREW, Permissions::empty())]);
        let overwrites = [
            overwrite(
                GUILD,
                OverwriteType::Role,
                Permissions::empty(),
                Permissions::VIEW_CHANNEL,
            ),
            overwrite(
                CREW,
                OverwriteType::Role,
                Permissions::VIEW_CHANNEL,
                Permissions::SEND_MESSAGES,
            ),
        ];
        let set = effective(&subject, Some(&overwrites));
        assert!(
            set.has(Permissions::VIEW_CHANNEL),
            "the role's allow beats @everyone's deny"
        );
        assert!(!set.has(Permissions::SEND_MESSAGES));
        let outsider = member(&[]);
        assert_eq!(
            effective(&outsider, Some(&overwrites)),
            Permissions::empty(),
            "a private channel"
        );
        let mut with_member = overwrites.to_vec();
        with_member.push(overwrite(
            ME,
            OverwriteType::Member,
            Permissions::SEND_MESSAGES,
            Permissions::empty(),
        ));
        assert!(effective(&subject, Some(&with_member)).has(Permissions::SEND_MESSAGES));
    }

    #[test]
    fn role_overwrites_allow_over_each_others_denies() {
        let subject = member(&[(CREW, Permissions::empty()), (MODS, Permissions::empty())]);
        let overwrites = [
            overwrite(
                CREW,
                OverwriteType::Role,
                Permissions::empty(),
                Permissions::SEND_MESSAGES,
            ),
            overwrite(
                MODS,
                OverwriteType::Role,
                Permissions::SEND_MESSAGES,
                Permissions::empty(),
            ),
        ];
        assert!(effective(&subject, Some(&overwrites)).has(Permissions::SEND_MESSAGES));
    }

    #[test]
    fn without_view_channel_nothing_else_counts_and_without_send_no_attachments() {
        let subject = member(&[]);
        let hidden = [overwrite(
            GUILD,
            OverwriteType::Role,
            Permissions::empty(),
            Permissions::VIEW_CHANNEL,
        )];
        assert_eq!(effective(&subject, Some(&hidden)), Permissions::empty());
        let read_only = [overwrite(
            GUILD,
            OverwriteType::Role,
            Permissions::empty(),
            Permissions::SEND_MESSAGES,
        )];
        let set = effective(&subject, Some(&read_only));
        assert!(set.has(Permissions::VIEW_CHANNEL | Permissions::READ_MESSAGE_HISTORY));
        assert!(!set.intersects(Permissions::ATTACH_FILES | Permissions::EMBED_LINKS));
    }

    #[test]
    fn a_timed_out_member_may_read_but_not_send_react_or_speak() {
        let mut subject = member(&[(
            MODS,
            Permissions::MANAGE_MESSAGES | Permissions::KICK_MEMBERS,
        )]);
        subject.timed_out = true;
        assert_eq!(effective(&subject, None), Permissions::WHILE_TIMED_OUT);
        assert_eq!(effective(&subject, Some(&[])), Permissions::WHILE_TIMED_OUT);
    }

    #[test]
    fn the_hierarchy_puts_the_owner_above_all_and_equals_beside_each_other() {
        let owner = Rank {
            owner: true,
            highest: 0,
        };
        let moderator = Rank {
            owner: false,
            highest: 5,
        };
        let peer = Rank {
            owner: false,
            highest: 5,
        };
        let member = Rank {
            owner: false,
            highest: 0,
        };
        assert!(owner.above(moderator) && owner.above_role(100));
        assert!(!moderator.above(owner), "nobody acts on the owner");
        assert!(!moderator.above(peer), "nor on an equal");
        assert!(moderator.above(member));
        assert!(moderator.above_role(4) && !moderator.above_role(5));
        assert_eq!(
            moderator.may_not_grant(
                Permissions::KICK_MEMBERS,
                Permissions::KICK_MEMBERS | Permissions::BAN_MEMBERS
            ),
            Permissions::BAN_MEMBERS
        );
        assert!(
            owner
                .may_not_grant(Permissions::empty(), Permissions::all())
                .is_empty()
        );
    }

    fn any_set() -> impl Strategy<Value = Permissions> {
        any::<u64>().prop_map(Permissions::from_bits_truncate)
    }

    fn any_overwrites() -> impl Strategy<Value = Vec<Overwrite>> {
        let ids = prop_oneof![Just(GUILD), Just(CREW), Just(MODS), Just(ME)];
        let kinds = prop_oneof![Just(OverwriteType::Role), Just(OverwriteType::Member)];
        proptest::collection::vec((ids, kinds, any_set(), any_set()), 0..6).prop_map(|raw| {
            let mut seen = std::collections::HashSet::new();
            raw.into_iter()
                .filter(|(id, kind, _, _)| seen.insert((*id, *kind)))
                .map(|(id, kind, allow, deny)| Overwrite {
                    id,
                    kind,
                    allow,
                    deny,
                })
                .collect()
        })
    }

    fn any_subject() -> impl Strategy<Value = Subject> {
        (
            any_set(),
            proptest::option::of(any_set()),
            proptest::option::of(any_set()),
            any::<bool>(),
        )
            .prop_map(|(everyone, crew, mods, timed_out)| {
                let mut roles = Vec::new();
                roles.extend(crew.map(|p| (CREW, p)));
                roles.extend(mods.map(|p| (MODS, p)));
                Subject {
                    guild_id: GUILD,
                    user_id: ME,
                    owner: false,
                    everyone,
                    roles,
                    timed_out,
                }
            })
    }

    fn admin(subject: &Subject) -> bool {
        subject
            .roles
            .iter()
            .fold(subject.everyone, |s, (_, p)| s | *p)
            .has(Permissions::ADMINISTRATOR)
    }

    proptest! {
        #[test]
        fn a_deny_on_the_members_own_overwrite_always_wins(
            subject in any_subject(), mut overwrites in any_overwrites(), denied in any_set()
        ) {
            prop_assume!(!admin(&subject));
            overwrites.retain(|o| !(o.id == ME && o.kind == OverwriteType::Member));
            overwrites.push(Overwrite { id: ME, kind: OverwriteType::Member, allow: Permissions::empty(), deny: denied });
            let set = effective(&subject, Some(&overwrites));
            prop_assert!(!set.intersects(denied), "{set:?} kept some of {denied:?}");
        }

        #[test]
        fn administrator_ignores_every_overwrite_and_time_out(
            mut subject in any_subject(), overwrites in any_overwrites()
        ) {
            subject.roles.push((MODS, Permissions::ADMINISTRATOR));
            prop_assert_eq!(effective(&subject, Some(&overwrites)), Permissions::all());
            prop_assert_eq!(effective(&subject, None), Permissions::all());
        }

        #[test]
        fn a_channel_never_gives_what_its_overwrites_do_not_allow_and_the_server_does_not(
            subject in any_subject(), overwrites in any_overwrites()
        ) {
            prop_assume!(!admin(&subject));
            let allowed = overwrites.iter().fold(effective(&subject, None), |s, o| s | o.allow);
            prop_assert!(allowed.contains(effective(&subject, Some(&overwrites))));
        }

        #[test]
        fn a_timed_out_member_keeps_at_most_view_and_history(
            mut subject in any_subject(), overwrites in any_overwrites()
        ) {
            prop_assume!(!admin(&subject));
            subject.timed_out = true;
            prop_assert!(Permissions::WHILE_TIMED_OUT.contains(effective(&subject, Some(&overwrites))));
        }

        #[test]
        fn nothing_is_granted_in_a_channel_one_cannot_view(
            subject in any_subject(), overwrites in any_overwrites()
        ) {
            let set = effective(&subject, Some(&overwrites));
            prop_assert!(set.is_empty() || set.has(Permissions::VIEW_CHANNEL));
        }

        #[test]
        fn a_set_survives_the_wire_and_the_database(set in any_set()) {
            let json = serde_json::to_string(&set).unwrap();
            prop_assert_eq!(serde_json::from_str::<Permissions>(&json).unwrap(), set);
            prop_assert_eq!(Permissions::from_i64(set.as_i64()), set);
        }
    }
}
