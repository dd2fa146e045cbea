-- Servers (issue 14), Discord's guilds: an owner, roles, members, text and voice channels in
-- categories with per-channel permission overwrites, invites, bans and an audit log.
--
-- A server's channels are rows of `channels` (kinds 'text', 'voice', 'category') with a
-- `guild_id`, so one channel id names history, read markers and the chat stream's subject
-- whatever kind of channel it is. They have no `channel_members` rows: who sees one follows from
-- the server's members, roles and the channel's overwrites (proto::permissions). Group channels
-- and DMs keep their rows and their shape.

CREATE TABLE guilds (
    id         BIGINT      PRIMARY KEY,
    name       TEXT        NOT NULL CHECK (char_length(name) BETWEEN 2 AND 100),
    icon       TEXT        CHECK (char_length(icon) <= 2048),
    owner_id   BIGINT      NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX guilds_owner_id ON guilds (owner_id);

ALTER TABLE channels
    DROP CONSTRAINT channels_kind_check,
    DROP CONSTRAINT channels_check,
    ADD COLUMN guild_id            BIGINT  REFERENCES guilds (id) ON DELETE CASCADE,
    -- A text or voice channel's category; deleting the category leaves its channels uncategorised.
    ADD COLUMN parent_id           BIGINT  REFERENCES channels (id) ON DELETE SET NULL,
    ADD COLUMN position            INTEGER NOT NULL DEFAULT 0,
    -- Slowmode: seconds between one member's messages.
    ADD COLUMN rate_limit_per_user INTEGER NOT NULL DEFAULT 0
        CHECK (rate_limit_per_user BETWEEN 0 AND 21600),
    ADD CONSTRAINT channels_kind_check
        CHECK (kind IN ('group', 'dm', 'text', 'voice', 'category')),
    -- A group channel has a name and an owner; a DM neither owner nor server; a server's channel
    -- a name and a server, and no owner (the server's owner owns it).
    ADD CONSTRAINT channels_shape CHECK (CASE kind
        WHEN 'group' THEN name IS NOT NULL AND owner_id IS NOT NULL AND guild_id IS NULL
        WHEN 'dm' THEN owner_id IS NULL AND guild_id IS NULL
        ELSE name IS NOT NULL AND owner_id IS NULL AND guild_id IS NOT NULL
    END),
    ADD CONSTRAINT channels_parent_kind CHECK (parent_id IS NULL OR kind IN ('text', 'voice'));

CREATE INDEX channels_guild_id ON channels (guild_id, position, id) WHERE guild_id IS NOT NULL;

CREATE TABLE guild_members (
    guild_id                     BIGINT      NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    user_id                      BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    nick                         TEXT        CHECK (char_length(nick) BETWEEN 1 AND 32),
    -- Timed out until then: may read, not send, react or speak.
    communication_disabled_until TIMESTAMPTZ,
    joined_at                    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, user_id)
);

-- "My servers" reads by user.
CREATE INDEX guild_members_user_id ON guild_members (user_id, guild_id);

-- Roles. @everyone has the server's id and position 0, and every member has it without a
-- member_roles row; every other role sits at 1 or above.
CREATE TABLE roles (
    id          BIGINT  PRIMARY KEY,
    guild_id    BIGINT  NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    color       INTEGER NOT NULL DEFAULT 0 CHECK (color BETWEEN 0 AND 16777215),
    hoist       BOOLEAN NOT NULL DEFAULT false,
    mentionable BOOLEAN NOT NULL DEFAULT false,
    position    INTEGER NOT NULL CHECK (position >= 0),
    -- Discord's permission bits (proto::permissions::Permissions).
    permissions BIGINT  NOT NULL DEFAULT 0,
    CHECK ((id = guild_id) = (position = 0))
);

CREATE INDEX roles_guild_id ON roles (guild_id, position);

CREATE TABLE member_roles (
    guild_id BIGINT NOT NULL,
    user_id  BIGINT NOT NULL,
    role_id  BIGINT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (guild_id, user_id, role_id),
    FOREIGN KEY (guild_id, user_id) REFERENCES guild_members (guild_id, user_id) ON DELETE CASCADE
);

CREATE INDEX member_roles_role_id ON member_roles (role_id);

-- A channel's overwrite for a role (type 0; the server's id for @everyone) or a member (type 1).
-- A role's overwrites are deleted with the role; a member's stay if they leave (as on Discord).
CREATE TABLE permission_overwrites (
    channel_id BIGINT   NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    target_id  BIGINT   NOT NULL,
    type       SMALLINT NOT NULL CHECK (type IN (0, 1)),
    allow      BIGINT   NOT NULL DEFAULT 0,
    deny       BIGINT   NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, target_id)
);

CREATE INDEX permission_overwrites_target_id ON permission_overwrites (target_id);

-- Invites: unguessable codes (10 base62 characters from the OS's CSPRNG). An expired or used-up
-- invite is deleted when next read, and by auth's housekeeping.
CREATE TABLE invites (
    code       TEXT        PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9]{1,32}$'),
    guild_id   BIGINT      NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    channel_id BIGINT      REFERENCES channels (id) ON DELETE CASCADE,
    inviter_id BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    max_age    INTEGER     NOT NULL CHECK (max_age BETWEEN 0 AND 604800),
    max_uses   INTEGER     NOT NULL CHECK (max_uses BETWEEN 0 AND 100),
    uses       INTEGER     NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ
);

CREATE INDEX invites_guild_id ON invites (guild_id);
CREATE INDEX invites_expires_at ON invites (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE bans (
    guild_id   BIGINT      NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reason     TEXT        CHECK (char_length(reason) <= 512),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, user_id)
);

-- The audit log, written in the transaction of the change it records (docs/ARCHITECTURE.md says
-- why it lives here). Ids are Snowflakes: their time is when it happened, and pages go by id.
CREATE TABLE audit_log (
    id          BIGINT   PRIMARY KEY,
    guild_id    BIGINT   NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    -- Who did it.
    user_id     BIGINT   REFERENCES users (id) ON DELETE SET NULL,
    target_id   BIGINT,
    -- Discord's action type numbers (proto::api::audit::AuditLogEvent).
    action_type SMALLINT NOT NULL,
    changes     JSONB    NOT NULL DEFAULT '[]',
    options     JSONB,
    reason      TEXT     CHECK (char_length(reason) <= 512)
);

CREATE INDEX audit_log_by_guild ON audit_log (guild_id, id);
CREATE INDEX audit_log_by_user ON audit_log (guild_id, user_id, id);
CREATE INDEX audit_log_by_action ON audit_log (guild_id, action_type, id);

-- Invites created count against an hourly limit, as channels created and members added do.
ALTER TABLE user_actions
    DROP CONSTRAINT user_actions_action_check,
    ADD CONSTRAINT user_actions_action_check
        CHECK (action IN ('channel_create', 'member_add', 'invite_create'));
