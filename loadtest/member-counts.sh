#!/usr/bin/env bash
# What a server's member count costs auth to read, counted (before migration 0009) and kept (a
# column the database maintains), on the stack's PostgreSQL with pgbench: 50 servers of 10,000
# members, and one user in all 50 (READY's list of servers, `guilds::of_user`); one server's count
# (shown with every channel of it, `guilds::member_count`); and joins and leaves in one server with
# the triggers that keep the count, and without them.
#
# Usage: loadtest/member-counts.sh [SECONDS per figure, default 10]
# Needs `./natter up --stack` (or `./natter up`). Makes and drops a database `natter_counts`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_EACH=${1:-10}
admin=$(sed -n 's/^NATTER_DATABASE_URL=//p' "$ROOT/.natter/env")
[[ -n $admin ]] || { echo "member-counts: no stack (./natter up --stack)" >&2; exit 1; }
db="${admin%/*}/natter_counts"
PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench | tail -1)
work=$(mktemp -d)
trap 'rm -rf "$work"; psql "$admin" -qc "DROP DATABASE IF EXISTS natter_counts" >/dev/null 2>&1 || true' EXIT

psql "$admin" -qc "DROP DATABASE IF EXISTS natter_counts" -c "CREATE DATABASE natter_counts" 2>/dev/null
for migration in "$ROOT"/auth/migrations/*.sql; do
  psql "$db" -q -v ON_ERROR_STOP=1 -f "$migration" >/dev/null
done
psql "$db" -q -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO users (id, username, password_hash)
SELECT i, 'user' || i, 'x' FROM generate_series(1, 10050) i;
INSERT INTO guilds (id, name, owner_id)
SELECT 1000000 + g, 'server ' || g, 10000 + g FROM generate_series(1, 50) g;
INSERT INTO guild_members (guild_id, user_id)
SELECT 1000000 + g, u FROM generate_series(1, 50) g, generate_series(1, 10000) u;
ANALYZE;
SQL

cat >"$work/ready-counted.sql" <<'SQL'
SELECT g.id, g.name, g.icon, g.owner_id,
       (SELECT count(*) FROM guild_members n WHERE n.guild_id = g.id) AS member_count
FROM guild_members me JOIN guilds g ON g.id = me.guild_id WHERE me.user_id = 1 ORDER BY g.id;
SQL
cat >"$work/ready-kept.sql" <<'SQL'
SELECT g.id, g.name, g.icon, g.owner_id, g.member_count
FROM guild_members me JOIN guilds g ON g.id = me.guild_id WHERE me.user_id = 1 ORDER BY g.id;
SQL
echo "SELECT count(*) FROM guild_members WHERE guild_id = 1000001;" >"$work/count-counted.sql"
echo "SELECT member_count FROM guilds WHERE id = 1000001;" >"$work/count-kept.sql"
cat >"$work/join-leave.sql" <<'SQL'
\set u random(10001, 10050)
INSERT INTO guild_members (guild_id, user_id) VALUES (1000001, :u) ON CONFLICT DO NOTHING;
DELETE FROM guild_members WHERE guild_id = 1000001 AND user_id = :u;
SQL

# run LABEL SCRIPT CLIENTS: transactions per second and mean latency.
run() {
  "$PGBENCH" -n -c "$3" -T "$SECONDS_EACH" -f "$work/$2.sql" "$db" 2>&1 |
    awk -v label="$1" '/latency average/ {lat = $4} /^tps/ {tps = $3}
      END {printf "%-44s %9.1f per s   mean %8.3f ms\n", label, tps, lat}'
}
run "READY's servers, counted (50 x 10,000)" ready-counted 1
run "READY's servers, kept" ready-kept 1
run "one server's count, counted (10,000)" count-counted 1
run "one server's count, kept" count-kept 1
run "join + leave, 4 at once, with the triggers" join-leave 4
psql "$db" -tAc "SELECT 'after them: kept ' || member_count || ', counted ' ||
  (SELECT count(*) FROM guild_members WHERE guild_id = 1000001) FROM guilds WHERE id = 1000001"
psql "$db" -qc "ALTER TABLE guild_members DISABLE TRIGGER USER"
run "join + leave, 4 at once, without them" join-leave 4
