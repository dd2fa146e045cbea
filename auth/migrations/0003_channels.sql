-- Channels: group channels and DMs. Built so that servers (guilds) come later by adding tables: a
-- `guilds` table, a `guild_channels (guild_id, channel_id)` link, and `roles` /
-- `member_roles` beside `channel_members`; nothing here needs to change shape.
CREATE TABLE channels (
    id         BIGINT      PRIMARY KEY,
    kind       TEXT        NOT NULL CHECK (kind IN ('group', 'dm')),
    name       TEXT        CHECK (char_length(name) BETWEEN 1 AND 100),
    topic      TEXT        CHECK (char_length(topic) <= 1024),
    -- The group's owner; NULL for DMs. Also present in channel_members with role 'owner'.
    owner_id   BIGINT      REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((kind = 'group') = (name IS NOT NULL AND owner_id IS NOT NULL))
);

CREATE TABLE channel_members (
    channel_id BIGINT      NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT        NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'moderator', 'member')),
    joined_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, user_id)
);

-- "My channels" reads by user.
CREATE INDEX channel_members_user_id ON channel_members (user_id, channel_id);

-- One group owner per channel, enforced by the database.
CREATE UNIQUE INDEX channel_members_one_owner ON channel_members (channel_id) WHERE role = 'owner';

-- At most one DM per pair of users: the pair is stored ordered (low < high) under a primary key,
-- and a DM is created with INSERT ... ON CONFLICT DO NOTHING, so concurrent first messages
-- between the same two people make one channel.
CREATE TABLE dm_pairs (
    low_user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    high_user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id   BIGINT NOT NULL UNIQUE REFERENCES channels (id) ON DELETE CASCADE,
    PRIMARY KEY (low_user_id, high_user_id),
    CHECK (low_user_id < high_user_id)
);
