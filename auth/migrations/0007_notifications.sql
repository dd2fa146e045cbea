-- Notifications (issue 19): each user's notification settings per server (and, with guild_id 0,
-- for their DMs and group channels), per-channel overrides, and browsers' Web Push subscriptions.
-- A user who never changed anything has no row: the defaults apply (all messages; only mentions
-- in servers of more than 250 members).

CREATE TABLE user_guild_settings (
    user_id               BIGINT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The server, or 0 for DMs and group channels (0 is never a Snowflake of ours).
    guild_id              BIGINT   NOT NULL,
    -- Discord's message_notifications: 0 all messages, 1 only mentions, 2 nothing.
    message_notifications SMALLINT NOT NULL CHECK (message_notifications BETWEEN 0 AND 2),
    muted                 BOOLEAN  NOT NULL DEFAULT false,
    -- When a mute ends (Unix ms); NULL while muted: until turned back off.
    mute_end_ms           BIGINT,
    suppress_everyone     BOOLEAN  NOT NULL DEFAULT false,
    suppress_roles        BOOLEAN  NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, guild_id)
);

CREATE INDEX user_guild_settings_guild_id ON user_guild_settings (guild_id);

CREATE TABLE channel_notification_overrides (
    user_id               BIGINT   NOT NULL,
    guild_id              BIGINT   NOT NULL,
    channel_id            BIGINT   NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    -- 0 to 2 as above; 3 follows the server's setting.
    message_notifications SMALLINT NOT NULL CHECK (message_notifications BETWEEN 0 AND 3),
    muted                 BOOLEAN  NOT NULL DEFAULT false,
    mute_end_ms           BIGINT,
    PRIMARY KEY (user_id, channel_id),
    FOREIGN KEY (user_id, guild_id) REFERENCES user_guild_settings (user_id, guild_id)
        ON DELETE CASCADE
);

CREATE INDEX channel_notification_overrides_channel_id
    ON channel_notification_overrides (channel_id);

CREATE TABLE push_subscriptions (
    -- The push service's URL for one browser: one subscription, whoever holds it.
    endpoint   TEXT        PRIMARY KEY CHECK (char_length(endpoint) <= 1024),
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    p256dh     TEXT        NOT NULL CHECK (char_length(p256dh) <= 100),
    auth       TEXT        NOT NULL CHECK (char_length(auth) <= 30),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX push_subscriptions_user_id ON push_subscriptions (user_id, created_at);
