//! Message search against the real stack: real auth, an edge, the persister and a search process
//! in this process, over the chat stream and the CQL store. What a user sees: the messages that
//! match, with their context, only from channels they may read now; an edit found by its new
//! words, a delete forgotten; the same answers after the index is lost and rebuilt.

use std::path::Path;
use std::time::Duration;

use proto::Snowflake;
use proto::permissions::Permissions;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::Running;

use crate::support::{User, World};

/// How long an index may take to show what was sent (it commits every second; a loaded machine
/// takes longer).
const INDEXED: Duration = Duration::from_secs(60);

impl World {
    /// Starts a search process over this world's stream and store, its index in `folder`.
    pub(crate) async fn start_search(&self, folder: &Path) -> Running {
        let mut args = vec![
            "search".to_owned(),
            "--http-addr=127.0.0.1:0".to_owned(),
            "--metrics-addr=127.0.0.1:0".to_owned(),
            format!("--index-dir={}", folder.display()),
            "--commit-interval=200ms".to_owned(),
        ];
        args.extend(self.common_args());
        let config: search::Config = kit::config::try_parse_from(args).expect("valid config");
        let search = testkit::spawn(search::Search::build(config).await.expect("search starts"));
        testkit::eventually("the search index ready", INDEXED, || async {
            let ready = reqwest::get(search.url("/readyz")).await.ok()?;
            ready.status().is_success().then_some(())
        })
        .await;
        search
    }

    /// A search as `user` at `path` (`/guilds/{id}` or `/channels/{id}`) with `query`.
    async fn search(&self, user: &User, path: &str, query: &str) -> (u16, Value) {
        let path = format!("/api/v1{path}/messages/search?{query}");
        self.edge_call(0, Method::GET, &path, user, None).await
    }

    /// The ids of the hits of a search that must succeed, newest first.
    async fn hits(&self, user: &User, path: &str, query: &str) -> Vec<Snowflake> {
        let (status, body) = self.search(user, path, query).await;
        assert_eq!(status, 200, "{path}?{query}: {body}");
        hit_ids(&body)
    }

    /// Waits until a search answers exactly `expected`.
    async fn hits_become(&self, user: &User, path: &str, query: &str, expected: &[Snowflake]) {
        testkit::eventually(
            &format!("{path}?{query} to find {expected:?}"),
            INDEXED,
            || async move {
                let (status, body) = self.search(user, path, query).await;
                (status == 200 && hit_ids(&body) == expected).then_some(())
            },
        )
        .await;
    }

    async fn post(&self, user: &User, channel: Snowflake, content: &str) -> Snowflake {
        let (status, body) = self
            .edge_call(
                0,
                Method::POST,
                &format!("/api/v1/channels/{channel}/messages"),
                user,
                Some(json!({ "content": content })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_str().unwrap().parse().unwrap()
    }
}

fn hit_ids(body: &Value) -> Vec<Snowflake> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| {
            let hits: Vec<&Value> = group
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["hit"] == true)
                .collect();
            assert_eq!(hits.len(), 1, "one hit per group: {group}");
            hits[0]["id"].as_str().unwrap().parse().unwrap()
        })
        .collect()
}

#[tokio::test]
async fn search_finds_edits_by_their_new_words_forgets_deletes_and_filters() {
    let world = World::start(1, &[]).await;
    let folder = tempfile::tempdir().unwrap();
    let _search = world.start_search(folder.path()).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, general) = world.guild(&ann, "Book club").await;
    world.join_guild(guild, &ann, &bob).await;
    let g = format!("/guilds/{guild}");

    let before = world.post(&ann, general, "an early word").await;
    let due = world
        .post(&ann, general, &format!("the budget is due, <@{}>", bob.id))
        .await;
    let link = world
        .post(
            &bob,
            general,
            "budget looks fine: https://example.com/sheet",
        )
        .await;
    let edited = world.post(&ann, general, "lunch plans").await;
    let gone = world.post(&ann, general, "delete this budget").await;
    let (status, body) = world
        .edge_call(
            0,
            Method::PATCH,
            &format!("/api/v1/channels/{general}/messages/{edited}"),
            &ann,
            Some(json!({"content": "budget for lunch"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = world
        .edge_call(
            0,
            Method::DELETE,
            &format!("/api/v1/channels/{general}/messages/{gone}"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");

    // Bob reacts to the reminder (a thumbs up, percent-encoded in the path).
    let (status, body) = world
        .edge_call(
            0,
            Method::PUT,
            &format!("/api/v1/channels/{general}/messages/{due}/reactions/%F0%9F%91%8D/@me"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");

    world
        .hits_become(&bob, &g, "content=budget", &[edited, link, due])
        .await;
    // The three hits' contexts overlap (the channel holds four messages): every group shows the
    // reminder whole, with its mention and bob's reaction, however many groups show it.
    let (_, body) = world.search(&bob, &g, "content=budget").await;
    let groups = body["messages"].as_array().unwrap();
    assert_eq!(groups.len(), 3, "{body}");
    for group in groups {
        let reminder = group
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == due.to_string())
            .unwrap_or_else(|| panic!("the reminder in every group: {body}"));
        assert_eq!(
            reminder["mentions"][0]["id"],
            bob.id.to_string(),
            "{reminder}"
        );
        assert_eq!(reminder["reactions"][0]["count"], 1, "{reminder}");
        assert_eq!(reminder["reactions"][0]["me"], true, "{reminder}");
    }
    assert!(
        world.hits(&bob, &g, "content=plans").await.is_empty(),
        "old words are gone"
    );
    assert_eq!(world.hits(&bob, &g, "content=LUNCH").await, [edited]);
    assert!(
        world.hits(&bob, &g, "content=delete").await.is_empty(),
        "deleted"
    );

    // Filters.
    let bob_id = bob.id;
    assert_eq!(
        world.hits(&ann, &g, &format!("author_id={bob_id}")).await,
        [link]
    );
    assert_eq!(
        world.hits(&ann, &g, &format!("mentions={bob_id}")).await,
        [due]
    );
    assert_eq!(world.hits(&ann, &g, "has=link").await, [link]);
    assert!(world.hits(&ann, &g, "has=file").await.is_empty());
    assert_eq!(
        world
            .hits(&ann, &g, &format!("content=budget&channel_id={general}"))
            .await,
        [edited, link, due]
    );
    assert_eq!(
        world
            .hits(&ann, &g, &format!("min_id={before}&max_id={link}"))
            .await,
        [due],
        "a range of ids is a range of time"
    );
    // Paging: the total stays, the page moves.
    let (status, page) = world
        .search(&ann, &g, "content=budget&limit=1&offset=1")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total_results"], 3);
    assert_eq!(hit_ids(&page), [link]);

    // The hit comes with its neighbours, as history shows them, and their authors.
    let (_, body) = world.search(&bob, &g, "content=fine").await;
    let group = body["messages"][0].as_array().unwrap();
    let shown: Vec<&str> = group
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert!(
        shown.contains(&"budget looks fine: https://example.com/sheet"),
        "{body}"
    );
    assert!(group.len() > 1, "context around the hit: {body}");
    let authors: Vec<&str> = body["authors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert!(
        authors.contains(&"bob") && authors.contains(&"ann"),
        "{authors:?}"
    );

    // A DM searches alone, and never shows in a server's search.
    let dm = world.dm(&ann, &bob).await;
    let in_dm = world.post(&ann, dm, "the budget, privately").await;
    world
        .hits_become(&bob, &format!("/channels/{dm}"), "content=budget", &[in_dm])
        .await;
    assert_eq!(
        world.hits(&bob, &g, "content=budget").await,
        [edited, link, due]
    );
}

#[tokio::test]
async fn search_never_returns_a_channel_the_caller_cannot_read_now() {
    let world = World::start(1, &[]).await;
    let folder = tempfile::tempdir().unwrap();
    let _search = world.start_search(folder.path()).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let cat = world.sign_up("cat").await;
    let (guild, general) = world.guild(&ann, "Book club").await;
    world.join_guild(guild, &ann, &bob).await;
    let crew = world.role(guild, &ann, "crew", Permissions::empty()).await;
    let view = Permissions::VIEW_CHANNEL.bits().to_string();
    let hidden = world
        .guild_channel(
            guild,
            &ann,
            "crew-only",
            json!({"permission_overwrites": [
                {"id": guild.to_string(), "type": 0, "deny": view},
                {"id": crew.to_string(), "type": 0, "allow": view},
            ]}),
        )
        .await;
    let open = world.post(&ann, general, "budget for everyone").await;
    let secret = world.post(&ann, hidden, "budget for the crew").await;
    let g = format!("/guilds/{guild}");

    world
        .hits_become(&ann, &g, "content=budget", &[secret, open])
        .await;
    assert_eq!(
        world.hits(&bob, &g, "content=budget").await,
        [open],
        "hidden channel"
    );
    assert!(
        world
            .hits(&bob, &g, &format!("content=budget&channel_id={hidden}"))
            .await
            .is_empty()
    );
    let (status, _) = world
        .search(&bob, &format!("/channels/{hidden}"), "content=budget")
        .await;
    assert_eq!(status, 404, "a channel one cannot see is unknown");
    // Given the role, bob finds it at once; the role taken, it is gone again.
    world.set_role(guild, &ann, &bob, crew, true).await;
    assert_eq!(world.hits(&bob, &g, "content=budget").await, [secret, open]);
    world.set_role(guild, &ann, &bob, crew, false).await;
    assert_eq!(world.hits(&bob, &g, "content=budget").await, [open]);
    // Someone who never joined finds nothing, and learns nothing.
    let (status, _) = world.search(&cat, &g, "content=budget").await;
    assert_eq!(status, 404);

    // A group channel bob was removed from.
    let room = world.channel(&ann, "room", &[&bob]).await;
    let said = world.post(&ann, room, "budget in the room").await;
    let r = format!("/channels/{room}");
    world.hits_become(&bob, &r, "content=budget", &[said]).await;
    world.remove_member(&ann, room, &bob).await;
    let (status, body) = world.search(&bob, &r, "content=budget").await;
    assert_eq!(status, 404, "{body}");

    // Bad input: a clear 400 naming the parameter.
    let long = "a".repeat(600);
    for query in [
        format!("content={long}"),
        "author_id=ann".to_owned(),
        "has=cats".to_owned(),
        "offset=99999".to_owned(),
        "limit=0".to_owned(),
        "min_id=-1".to_owned(),
    ] {
        let (status, body) = world.search(&ann, &g, &query).await;
        assert_eq!(status, 400, "{query}: {body}");
        let name = query.split('=').next().unwrap();
        assert!(body.to_string().contains(name), "{query}: {body}");
    }
    // An id that does not parse names nothing, as everywhere in the API (kit's `ApiPath`).
    let (status, _) = world.search(&ann, "/guilds/nonsense", "content=x").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn search_answers_again_after_its_index_is_lost_and_rebuilt() {
    let world = World::start(1, &[]).await;
    let folder = tempfile::tempdir().unwrap();
    let search = world.start_search(folder.path()).await;
    let ann = world.sign_up("ann").await;
    let (guild, general) = world.guild(&ann, "Book club").await;
    let g = format!("/guilds/{guild}");
    let first = world.post(&ann, general, "budget one").await;
    let second = world.post(&ann, general, "budget two").await;
    let dropped = world.post(&ann, general, "budget three").await;
    world
        .edge_call(
            0,
            Method::DELETE,
            &format!("/api/v1/channels/{general}/messages/{dropped}"),
            &ann,
            None,
        )
        .await;
    world
        .hits_become(&ann, &g, "content=budget", &[second, first])
        .await;

    search.stop().await;
    std::fs::remove_dir_all(folder.path()).unwrap();
    world.persisted().await;
    let _search = world.start_search(folder.path()).await;
    assert_eq!(
        world.hits(&ann, &g, "content=budget").await,
        [second, first],
        "rebuilt from the store"
    );
    // And it goes on following the stream.
    let third = world.post(&ann, general, "budget four").await;
    world
        .hits_become(&ann, &g, "content=budget", &[third, second, first])
        .await;
}

impl World {
    /// `user` pins (or unpins) `message` of `channel`.
    async fn set_pinned(&self, user: &User, channel: Snowflake, message: Snowflake, pinned: bool) {
        let method = if pinned { Method::PUT } else { Method::DELETE };
        let path = format!("/api/v1/channels/{channel}/pins/{message}");
        let (status, body) = self.edge_call(0, method, &path, user, None).await;
        assert_eq!(status, 204, "{path}: {body}");
    }
}

#[tokio::test]
async fn search_finds_pinned_messages_as_they_are_pinned_now_and_after_a_rebuild() {
    let world = World::start(1, &[]).await;
    let folder = tempfile::tempdir().unwrap();
    let search = world.start_search(folder.path()).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, general) = world.guild(&ann, "Book club").await;
    world.join_guild(guild, &ann, &bob).await;
    let g = format!("/guilds/{guild}");
    let draft = world.post(&ann, general, "budget draft").await;
    let last = world.post(&ann, general, "budget final").await;
    world
        .hits_become(&bob, &g, "content=budget", &[last, draft])
        .await;
    assert!(
        world
            .hits(&bob, &g, "content=budget&pinned=true")
            .await
            .is_empty()
    );

    // Pinned after it was indexed: found as pinned, and no longer among the others.
    world.set_pinned(&ann, general, last, true).await;
    world
        .hits_become(&bob, &g, "content=budget&pinned=true", &[last])
        .await;
    assert_eq!(
        world.hits(&bob, &g, "content=budget&pinned=false").await,
        [draft]
    );
    // The pin's system message is no hit; an edit keeps the pin and is found by its new words.
    assert_eq!(world.hits(&bob, &g, "pinned=true").await, [last]);
    let (status, body) = world
        .edge_call(
            0,
            Method::PATCH,
            &format!("/api/v1/channels/{general}/messages/{last}"),
            &ann,
            Some(json!({"content": "budget final, signed"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let c = format!("/channels/{general}");
    world
        .hits_become(&bob, &c, "content=signed&pinned=true", &[last])
        .await;

    // Unpinned: not found as pinned any more.
    world.set_pinned(&ann, general, last, false).await;
    world
        .hits_become(&bob, &g, "content=budget&pinned=true", &[])
        .await;
    assert_eq!(
        world.hits(&bob, &g, "content=budget&pinned=false").await,
        [last, draft]
    );

    // A pin in a channel bob cannot read: ann finds it, bob's server search does not.
    let view = Permissions::VIEW_CHANNEL.bits().to_string();
    let hidden = world
        .guild_channel(
            guild,
            &ann,
            "staff",
            json!({"permission_overwrites": [
                {"id": guild.to_string(), "type": 0, "deny": view},
            ]}),
        )
        .await;
    let secret = world.post(&ann, hidden, "budget for staff").await;
    world.set_pinned(&ann, hidden, secret, true).await;
    world.set_pinned(&ann, general, draft, true).await;
    world
        .hits_become(&ann, &g, "pinned=true", &[secret, draft])
        .await;
    assert_eq!(world.hits(&bob, &g, "pinned=true").await, [draft]);
    assert!(
        world
            .hits(&bob, &g, &format!("pinned=true&channel_id={hidden}"))
            .await
            .is_empty()
    );

    // A bad value: a clear 400 naming the parameter.
    let (status, body) = world.search(&ann, &g, "pinned=yes").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("pinned"), "{body}");

    // The index lost and rebuilt from the store knows the pins as they are now.
    search.stop().await;
    std::fs::remove_dir_all(folder.path()).unwrap();
    world.persisted().await;
    let _search = world.start_search(folder.path()).await;
    assert_eq!(
        world.hits(&ann, &g, "pinned=true").await,
        [secret, draft],
        "rebuilt with the store's pins"
    );
    assert_eq!(world.hits(&bob, &g, "pinned=true").await, [draft]);
    assert_eq!(
        world.hits(&ann, &g, "content=budget&pinned=false").await,
        [last],
        "the unpinned message is not pinned after the rebuild"
    );
}
