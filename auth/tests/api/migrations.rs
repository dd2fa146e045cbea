//! Schema migrations keep what people already have: a database made before servers existed,
//! holding group channels and DMs, migrates and reads back as it did.

use std::path::PathBuf;

use reqwest::StatusCode;

use crate::support::{self, password_of};

/// A folder holding the migrations up to and including `last` (a prefix like `0004`): the
/// schema as an older auth left it.
fn migrations_up_to(last: &str) -> PathBuf {
    let source = testkit::checkout().join("auth/migrations");
    let dir = std::env::temp_dir().join(testkit::unique("migrations"));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.as_str() <= last || name.starts_with(last) {
            std::fs::copy(&path, dir.join(&name)).unwrap();
        }
    }
    dir
}

#[tokio::test]
async fn group_channels_and_dms_made_before_servers_existed_survive_the_migration() {
    let stack = testkit::Stack::get();
    let url = stack.fresh_database().await;
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let before = sqlx::migrate::Migrator::new(migrations_up_to("0004").as_path())
        .await
        .unwrap();
    before.run(&db).await.unwrap();

    // Ann and Bob as the schema before servers held them: a group channel of theirs and a DM.
    let histogram =
        prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("hash", "hash")).unwrap();
    let passwords = auth::passwords::Passwords::new(1, histogram).await.unwrap();
    let hash_of = |name: &str| {
        let password = proto::api::auth::Password::parse(&password_of(name)).unwrap();
        passwords.hash(password)
    };
    let hash = hash_of("ann").await.unwrap();
    let bob_hash = hash_of("bob").await.unwrap();
    let (ann, bob, group, dm) = (1_000_001_i64, 1_000_002_i64, 1_000_010_i64, 1_000_011_i64);
    for (id, name, hash) in [(ann, "ann", &hash), (bob, "bob", &bob_hash)] {
        sqlx::query("INSERT INTO users (id, username, password_hash) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name)
            .bind(hash)
            .execute(&db)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO channels (id, kind, name, topic, owner_id) VALUES ($1, 'group', 'book club', 'Tuesdays', $2)",
    )
    .bind(group)
    .bind(ann)
    .execute(&db)
    .await
    .unwrap();
    sqlx::query("INSERT INTO channels (id, kind) VALUES ($1, 'dm')")
        .bind(dm)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO dm_pairs (low_user_id, high_user_id, channel_id) VALUES ($1, $2, $3)")
        .bind(ann)
        .bind(bob)
        .bind(dm)
        .execute(&db)
        .await
        .unwrap();
    for (channel, user, role) in [
        (group, ann, "owner"),
        (group, bob, "moderator"),
        (dm, ann, "member"),
        (dm, bob, "member"),
    ] {
        sqlx::query("INSERT INTO channel_members (channel_id, user_id, role) VALUES ($1, $2, $3)")
            .bind(channel)
            .bind(user)
            .bind(role)
            .execute(&db)
            .await
            .unwrap();
    }

    // Auth starts on that database and applies what came since.
    let auth = support::start_with(&[format!("--database-url={url}")]).await;
    let ann_account = auth.sign_in("ann").await;
    let (status, channels) = auth
        .get("/api/v1/users/@me/channels", &ann_account.access)
        .await;
    assert_eq!(status, StatusCode::OK, "{channels}");
    let channels = channels.as_array().unwrap();
    assert_eq!(channels.len(), 2, "{channels:?}");
    let group_seen = &channels[0];
    assert_eq!(group_seen["kind"], "group");
    assert_eq!(group_seen["name"], "book club");
    assert_eq!(group_seen["topic"], "Tuesdays");
    assert_eq!(group_seen["role"], "owner");
    assert_eq!(group_seen["member_count"], 2);
    assert!(group_seen.get("guild_id").is_none(), "{group_seen}");
    let dm_seen = &channels[1];
    assert_eq!(dm_seen["kind"], "dm");
    assert_eq!(dm_seen["recipients"][0]["username"], "bob");
    assert_eq!(dm_seen["opened"], true);

    // They still work as before: Bob, a moderator, renames the group; the DM stays a DM.
    let bob_account = auth.sign_in("bob").await;
    let (status, renamed) = auth
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/channels/{group}"),
            Some(&bob_account.access),
            Some(serde_json::json!({"name": "Book club"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    let (status, members) = auth
        .get(
            &format!("/api/v1/channels/{dm}/members"),
            &bob_account.access,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{members}");
    let names: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ann", "bob"]);
    let kinds: Vec<(i64, String)> = sqlx::query_as("SELECT id, kind FROM channels ORDER BY id")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(
        kinds,
        [(group, "group".to_owned()), (dm, "dm".to_owned())],
        "the rows keep their kinds"
    );
}

/// A table whose rows keep a count of their members, and how to make rows of it.
struct Kept {
    /// The last migration before counts were kept.
    before: &'static str,
    table: &'static str,
    members: &'static str,
    key: &'static str,
    /// Inserts a row: `$1` its id, `$2` the user who owns it.
    make: &'static str,
    /// How an insert of members that are already there ends.
    on_conflict: &'static str,
}

/// Rows made before their member counts were kept get theirs counted by the migration; from then
/// on every way members come and go keeps them exact: many added in one statement, members that
/// were already there, one leaving, an account deleted, a row deleted.
async fn counts_are_counted_by_the_migration_and_kept(kept: Kept) {
    let stack = testkit::Stack::get();
    let url = stack.fresh_database().await;
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(migrations_up_to(kept.before).as_path())
        .await
        .unwrap()
        .run(&db)
        .await
        .unwrap();
    for id in 1..=5_i64 {
        sqlx::query("INSERT INTO users (id, username, password_hash) VALUES ($1, $2, 'x')")
            .bind(id)
            .bind(format!("user{id}"))
            .execute(&db)
            .await
            .unwrap();
    }
    for (id, owner) in [(100_i64, 1_i64), (200, 2)] {
        sqlx::query(kept.make)
            .bind(id)
            .bind(owner)
            .execute(&db)
            .await
            .unwrap();
    }
    // (Every statement below is made of this test's own constants.)
    let counts = || {
        let db = db.clone();
        let read = format!("SELECT id, member_count FROM {} ORDER BY id", kept.table);
        async move {
            sqlx::query_as::<_, (i64, i32)>(sqlx::AssertSqlSafe(read))
                .fetch_all(&db)
                .await
                .unwrap()
        }
    };
    // Members added in one statement, as (row, user).
    let add = |members: &'static [(i64, i64)]| {
        let db = db.clone();
        let insert = format!(
            "INSERT INTO {} ({}, user_id) SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[]) {}",
            kept.members, kept.key, kept.on_conflict
        );
        async move {
            let (rows, users): (Vec<i64>, Vec<i64>) = members.iter().copied().unzip();
            sqlx::query(sqlx::AssertSqlSafe(insert))
                .bind(rows)
                .bind(users)
                .execute(&db)
                .await
                .unwrap();
        }
    };
    let run = |sql: String| {
        let db = db.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&db)
                .await
                .unwrap()
        }
    };
    add(&[(100, 1), (100, 2), (100, 3), (200, 2)]).await;

    sqlx::migrate::Migrator::new(testkit::checkout().join("auth/migrations").as_path())
        .await
        .unwrap()
        .run(&db)
        .await
        .unwrap();
    assert_eq!(counts().await, [(100, 3), (200, 1)]);

    add(&[(100, 4), (100, 5), (200, 3)]).await;
    assert_eq!(counts().await, [(100, 5), (200, 2)]);
    add(&[(100, 1), (200, 2)]).await;
    assert_eq!(counts().await, [(100, 5), (200, 2)], "already members");
    let (members, key, table) = (kept.members, kept.key, kept.table);
    run(format!(
        "DELETE FROM {members} WHERE {key} = 100 AND user_id = 2"
    ))
    .await;
    assert_eq!(counts().await, [(100, 4), (200, 2)]);
    run("DELETE FROM users WHERE id = 3".to_owned()).await;
    assert_eq!(counts().await, [(100, 3), (200, 1)]);
    run(format!("DELETE FROM {table} WHERE id = 200")).await;
    assert_eq!(counts().await, [(100, 3)]);
}

#[tokio::test]
async fn member_counts_are_counted_by_the_migration_and_kept_through_joins_and_leaves() {
    counts_are_counted_by_the_migration_and_kept(Kept {
        before: "0008",
        table: "guilds",
        members: "guild_members",
        key: "guild_id",
        make: "INSERT INTO guilds (id, name, owner_id) VALUES ($1, 'a server', $2)",
        on_conflict: "ON CONFLICT DO NOTHING",
    })
    .await;
}

/// A group channel's count too; a DM's upsert that finds its row (opening it) adds nobody.
#[tokio::test]
async fn channel_member_counts_are_counted_by_the_migration_and_kept_through_joins_and_leaves() {
    counts_are_counted_by_the_migration_and_kept(Kept {
        before: "0009",
        table: "channels",
        members: "channel_members",
        key: "channel_id",
        make: "INSERT INTO channels (id, kind, name, owner_id) VALUES ($1, 'group', 'a room', $2)",
        on_conflict: "ON CONFLICT (channel_id, user_id) DO UPDATE SET opened = true",
    })
    .await;
}
