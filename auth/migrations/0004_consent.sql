-- Consent and limits (issue 12): who may DM a user or add them to channels, whom they block,
-- whether each side of a DM opened it, and the actions counted against hourly limits.

-- Who may open a new DM with a user, and who may add them to group channels: 'everyone',
-- 'shared' (people they share a group channel with, or whose DM they opened) or 'nobody'.
ALTER TABLE users
    ADD COLUMN allow_dms_from TEXT NOT NULL DEFAULT 'everyone'
        CHECK (allow_dms_from IN ('everyone', 'shared', 'nobody')),
    ADD COLUMN allow_channel_adds_from TEXT NOT NULL DEFAULT 'shared'
        CHECK (allow_channel_adds_from IN ('everyone', 'shared', 'nobody'));

-- In a DM: whether this member opened it themselves. A DM someone else opened is a request until
-- they do, and the opener does not see their presence meanwhile. Always true in group channels
-- (joining one is consent: its creator, or added as the member's settings allow). Existing DMs
-- count as opened by both sides.
ALTER TABLE channel_members ADD COLUMN opened BOOLEAN NOT NULL DEFAULT true;

-- Discord's relationships; type 2 is a block, the only kind so far. `user_id` blocks `target_id`.
CREATE TABLE relationships (
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_id  BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type       SMALLINT    NOT NULL CHECK (type = 2),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, target_id),
    CHECK (user_id <> target_id)
);

-- "Who blocks me" reads by target.
CREATE INDEX relationships_target_id ON relationships (target_id, user_id);

-- Actions counted against hourly limits (channels created, members added), per user. Rows older
-- than the longest window are deleted by auth's housekeeping.
CREATE TABLE user_actions (
    user_id BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    action  TEXT        NOT NULL CHECK (action IN ('channel_create', 'member_add')),
    at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX user_actions_by_user ON user_actions (user_id, action, at);
CREATE INDEX user_actions_at ON user_actions (at);
