-- A group channel's member count, kept by the database as members come and go (as a server's
-- is, 0009). It is read with the channel on every session start, on the REST routes that ask
-- for a channel, and for every message the notification worker asks about: counting the
-- members each time read every member's row (1,000 rows per message in a channel of 1,000).
ALTER TABLE channels ADD COLUMN member_count INTEGER NOT NULL DEFAULT 0;

UPDATE channels c
SET member_count = (SELECT count(*) FROM channel_members m WHERE m.channel_id = c.id);

CREATE FUNCTION channel_members_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE channels c SET member_count = c.member_count + added.n
    FROM (SELECT channel_id, count(*) AS n FROM added_members GROUP BY channel_id) added
    WHERE c.id = added.channel_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION channel_members_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE channels c SET member_count = c.member_count - removed.n
    FROM (SELECT channel_id, count(*) AS n FROM removed_members GROUP BY channel_id) removed
    WHERE c.id = removed.channel_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER channel_members_added AFTER INSERT ON channel_members
    REFERENCING NEW TABLE AS added_members
    FOR EACH STATEMENT EXECUTE FUNCTION channel_members_added();

CREATE TRIGGER channel_members_removed AFTER DELETE ON channel_members
    REFERENCING OLD TABLE AS removed_members
    FOR EACH STATEMENT EXECUTE FUNCTION channel_members_removed();
