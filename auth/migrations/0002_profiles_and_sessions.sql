-- Profiles: what a user shows others. `status` is the one they set; presence (connected or not)
-- is the presence service's, not stored here.
ALTER TABLE users
    ADD COLUMN avatar_url TEXT CHECK (char_length(avatar_url) <= 2048),
    ADD COLUMN bio        TEXT CHECK (char_length(bio) <= 190),
    ADD COLUMN status     TEXT NOT NULL DEFAULT 'online'
        CHECK (status IN ('online', 'idle', 'dnd', 'invisible'));

-- A session is one sign-in: a family of refresh tokens, each traded for the next. Its id is the
-- `sid` claim of every access token issued in it. Revoked by sign-out or by reuse of a rotated
-- refresh token (theft detection).
CREATE TABLE sessions (
    id             BIGINT      PRIMARY KEY,
    user_id        BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at     TIMESTAMPTZ,
    revoked_reason TEXT CHECK (revoked_reason IN ('sign_out', 'reuse'))
);

CREATE INDEX sessions_user_id ON sessions (user_id);

-- Refresh tokens are stored only as SHA-256 hashes (the token is 256 random bits, so a plain
-- hash is enough: there is nothing to brute-force). A used (rotated) token is kept until it
-- expires so that presenting it again is recognised as reuse.
CREATE TABLE refresh_tokens (
    token_hash BYTEA       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    session_id BIGINT      NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);

CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
