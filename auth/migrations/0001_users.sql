-- Accounts. Ids are Snowflakes made by the service (bigint), never serials, so ids sort by
-- creation time and mean the same thing in PostgreSQL, the CQL store and on the wire.
CREATE TABLE users (
    id            BIGINT      PRIMARY KEY,
    -- Stored lowercase; the unique index makes sign-up race-free.
    username      TEXT        NOT NULL CHECK (username ~ '^[a-z0-9_.]{2,32}$'),
    display_name  TEXT,
    password_hash TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_username_key ON users (username);
