-- Calls in DMs and group channels (issue 18): one row per channel whose call is on, from its
-- first person joining until its last leaves (or nobody answered). Auth keeps the ringing here,
-- beside `voice_states`, so whichever auth process sweeps first ends a ringing that timed out,
-- and a restart of any process (auth or edge) loses no timer: the deadline is a column.

CREATE TABLE calls (
    channel_id   BIGINT      PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    -- Who started it: the author of its system message.
    caller_id    BIGINT      NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Who it still rings; empty once everyone answered or declined, or it timed out.
    ringing      BIGINT[]    NOT NULL,
    ring_until   TIMESTAMPTZ NOT NULL,
    -- Everyone who was in it, the caller first: the system message's `participants`.
    participants BIGINT[]    NOT NULL
);

-- The sweep reads only calls still ringing.
CREATE INDEX calls_ring_until ON calls (ring_until) WHERE cardinality(ringing) > 0;
