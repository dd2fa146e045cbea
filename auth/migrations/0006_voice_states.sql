-- Voice (issue 18): who is in which voice channel or call. One row per user, so a user is in one
-- channel at a time (joining another moves the row). A row lives as long as the gateway
-- connection that joined (`session_id`): the edge clears it when that connection ends, and the
-- media server's webhooks clear it when the person's media connection goes.

CREATE TABLE voice_states (
    user_id     BIGINT      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    channel_id  BIGINT      NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    -- A server's voice channel: its server; NULL for a call in a DM or group channel.
    guild_id    BIGINT      REFERENCES guilds (id) ON DELETE CASCADE,
    session_id  TEXT        NOT NULL CHECK (char_length(session_id) <= 32),
    self_mute   BOOLEAN     NOT NULL DEFAULT false,
    self_deaf   BOOLEAN     NOT NULL DEFAULT false,
    self_video  BOOLEAN     NOT NULL DEFAULT false,
    self_stream BOOLEAN     NOT NULL DEFAULT false,
    -- Set by moderators (MUTE_MEMBERS, DEAFEN_MEMBERS).
    mute        BOOLEAN     NOT NULL DEFAULT false,
    deaf        BOOLEAN     NOT NULL DEFAULT false,
    joined_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX voice_states_channel_id ON voice_states (channel_id);
CREATE INDEX voice_states_guild_id ON voice_states (guild_id) WHERE guild_id IS NOT NULL;
