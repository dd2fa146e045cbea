//! A short run of every scenario against a real system (auth, two edges and a persister in this
//! process, on the real stack): each must finish with nothing lost and write a well-formed result.
//! Timings are not asserted here; docs/BENCHMARKS.md has the full runs.
//!
//! And the proof that the harness notices loss: against edges built to drop one message, a run
//! fails and reports it missing.

#[allow(dead_code)]
#[path = "../../edge/tests/gateway/support.rs"]
mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::World;

fn result_file(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}.json", testkit::unique(tag)))
}

/// The arguments that point a scenario at `world`.
fn target(world: &World, out: &Path) -> Vec<String> {
    let metrics: Vec<String> = world
        .edges
        .iter()
        .chain([&world.auth])
        .chain(world.persister.as_ref())
        .map(|s| s.metrics_url())
        .collect();
    vec![
        format!("--auth={}", world.auth.url("")),
        format!("--gateway={},{}", world.gateway(0), world.gateway(1)),
        format!("--metrics={}", metrics.join(",")),
        format!("--out={}", out.display()),
        // The devices live in worker processes of the real binary, two of them.
        format!("--worker-exe={}", env!("CARGO_BIN_EXE_loadtest")),
        "--workers=2".to_owned(),
    ]
}

async fn run(args: Vec<String>) -> anyhow::Result<()> {
    let cli: loadtest::Cli =
        kit::config::try_parse_from(std::iter::once("loadtest".to_owned()).chain(args))
            .expect("valid loadtest arguments");
    loadtest::run(cli).await
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("a result file");
    serde_json::from_str(&text).expect("the result is JSON")
}

fn assert_nothing_lost(result: &Value) {
    assert_eq!(result["missing"], 0, "{result}");
    assert_eq!(result["duplicated_or_reordered"], 0, "{result}");
    assert_eq!(result["send_errors"], 0, "{result}");
    assert!(result["acknowledged"].as_u64().unwrap() > 0, "{result}");
    assert_eq!(result["acknowledged"], result["sent"], "{result}");
    assert_eq!(
        result["delivered"], result["expected_deliveries"],
        "{result}"
    );
    for latency in ["send_to_ack", "send_to_receive"] {
        assert!(result[latency]["p50_us"].as_u64().unwrap() > 0, "{result}");
    }
    // The kernel's receipt of every frame is taken too, never after the generator read it.
    for (read, arrival) in [
        ("send_to_ack", "send_to_ack_arrival"),
        ("send_to_receive", "send_to_arrival"),
    ] {
        assert_eq!(result[read]["count"], result[arrival]["count"], "{result}");
        assert!(result[arrival]["p50_us"].as_u64().unwrap() > 0, "{result}");
        assert!(
            result[arrival]["max_us"].as_u64() <= result[read]["max_us"].as_u64(),
            "{result}"
        );
    }
    assert!(
        result["services"].as_array().unwrap().len() >= 3,
        "{result}"
    );
}

const FAST: &[&str] = &["--send-rate=1000/1s", "--frames-per-minute=100000"];

#[tokio::test]
async fn chat_at_two_rates_loses_nothing_and_plots() {
    let world = World::start(2, FAST).await;
    let out = result_file("chat");
    let plot = out.with_extension("svg");
    let plot_arg = format!("--plot={}", plot.display());
    let timeline = out.with_extension("csv");
    let timeline_arg = format!("--timeline={}", timeline.display());
    let args = command(
        &world,
        &out,
        &[
            "chat",
            "--channels=3",
            "--members=3",
            "--rate=20,40",
            "--duration=2s",
            &plot_arg,
            &timeline_arg,
        ],
    );
    run(args).await.expect("the chat run passes");
    let results = read(&out);
    assert_eq!(results.as_array().unwrap().len(), 2);
    for result in results.as_array().unwrap() {
        assert_nothing_lost(result);
    }
    let svg = std::fs::read_to_string(&plot).expect("a plot");
    assert!(svg.contains("<svg") && svg.contains("p99"), "{svg}");

    // Each rate's course, window by window: every delivery counted in the window of its send,
    // beside the CPU of the processes on the machine.
    for (rate, result) in [20, 40].iter().zip(results.as_array().unwrap()) {
        let path = timeline.with_file_name(format!(
            "{}-{rate}.csv",
            timeline.file_stem().unwrap().to_string_lossy()
        ));
        let csv = std::fs::read_to_string(&path).expect("a timeline per rate");
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(
            header[..6],
            [
                "seconds",
                "deliveries",
                "slowest_ms",
                "over_25ms",
                "over_50ms",
                "machine_cpu"
            ]
        );
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert!(rows.iter().all(|row| row.len() == header.len()), "{csv}");
        let counted: u64 = rows.iter().map(|row| row[1].parse::<u64>().unwrap()).sum();
        assert_eq!(counted, result["delivered"].as_u64().unwrap(), "{csv}");
    }
}

/// `scenario` then its arguments, then the target's.
fn command(world: &World, out: &Path, scenario: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = scenario.iter().map(|s| (*s).to_owned()).collect();
    args.extend(target(world, out));
    args
}

#[tokio::test]
async fn fanout_to_a_channel_of_devices_loses_nothing() {
    let world = World::start(2, FAST).await;
    let out = result_file("fanout");
    let probe = format!("--jetstream-probe={}", world.engines.nats_url);
    // The sender on one edge and in a worker of its own, the others spread over both.
    let sender_gateway = format!("--sender-gateway={}", world.gateway(1));
    let args = command(
        &world,
        &out,
        &[
            "fanout",
            "--members=8",
            "--devices=2",
            "--rate=10",
            "--duration=2s",
            &probe,
            &sender_gateway,
            "--senders-apart",
        ],
    );
    run(args).await.expect("the fanout run passes");
    let result = read(&out);
    assert_nothing_lost(&result);
    assert_eq!(result["members_per_channel"], 8);
    // The probe timed JetStream's acknowledgements while the run sent.
    let probed = result["jetstream_probe"]["count"].as_u64().unwrap_or(0);
    assert!(probed > 0, "{}", result["jetstream_probe"]);
}

#[tokio::test]
async fn history_reads_beside_chat_all_succeed() {
    let world = World::start(2, FAST).await;
    let out = result_file("history");
    let args = command(
        &world,
        &out,
        &[
            "history",
            "--channels=2",
            "--members=2",
            "--rate=20",
            "--reads=10",
            "--duration=2s",
        ],
    );
    run(args).await.expect("the history run passes");
    let result = read(&out);
    assert_nothing_lost(&result);
    assert_eq!(result["history"]["errors"], 0, "{result}");
    assert!(
        result["history"]["reads"].as_u64().unwrap() >= 10,
        "{result}"
    );
}

#[tokio::test]
async fn a_reconnect_storm_resumes_every_device_and_misses_nothing() {
    let world = World::start(2, FAST).await;
    let out = result_file("storm");
    let args = command(
        &world,
        &out,
        &[
            "storm",
            "--channels=2",
            "--members=3",
            "--devices=2",
            "--rate=20",
            "--duration=4s",
            "--storm-after=1500ms",
        ],
    );
    run(args).await.expect("the storm run passes");
    let result = read(&out);
    assert_nothing_lost(&result);
    let storm = &result["storm"];
    assert_eq!(storm["failed"], 0, "{result}");
    assert_eq!(storm["resumed"], storm["devices"], "{result}");
}

#[tokio::test]
async fn persist_counts_every_acknowledged_message_in_the_store() {
    let world = World::start(2, FAST).await;
    let out = result_file("persist");
    let persister = world.persister.as_ref().unwrap().metrics_url();
    let nodes = format!("--cql-nodes={}", world.stack.cql_nodes);
    let keyspace = format!("--cql-keyspace={}", world.keyspace);
    let persister = format!("--persister={persister}");
    let args = command(
        &world,
        &out,
        &[
            "persist",
            "--channels=3",
            "--rate=100",
            "--duration=2s",
            &persister,
            &nodes,
            &keyspace,
        ],
    );
    run(args).await.expect("the persist run passes");
    let result = read(&out);
    assert_nothing_lost(&result);
    assert_eq!(result["stored"], result["acknowledged"], "{result}");
    assert_eq!(result["missing_in_store"], 0, "{result}");
    assert!(!result["lag"].as_array().unwrap().is_empty(), "{result}");
}

#[tokio::test]
async fn drain_writes_a_backlog_into_the_store_and_compares_it_with_the_raw_loop() {
    let world = World::start(2, FAST).await;
    let out = result_file("drain");
    let persister = world.persister.as_ref().unwrap().metrics_url();
    let args = vec![
        "drain".to_owned(),
        format!("--nats-url={}", world.engines.nats_url),
        format!("--nats-prefix={}", world.prefix),
        format!("--persister={persister}"),
        format!("--cql-nodes={}", world.stack.cql_nodes),
        format!("--cql-keyspace={}", world.keyspace),
        "--messages=20000".to_owned(),
        "--channels=5".to_owned(),
        "--no-settle".to_owned(),
        format!("--out={}", out.display()),
    ];
    run(args).await.expect("the drain run passes");
    let result = read(&out);
    assert_eq!(result["stored"], 20000, "{result}");
    assert_eq!(result["missing_in_store"], 0, "{result}");
    for rate in [
        "persisted_per_second",
        "raw_rows_per_second",
        "raw_burst_rows_per_second",
    ] {
        assert!(result[rate].as_f64().unwrap() > 0.0, "{rate}: {result}");
    }
    assert!(result["raw_rows"].as_u64().unwrap() > 0, "{result}");
}

#[tokio::test]
async fn idle_connections_are_held_and_measured() {
    let world = World::start(2, FAST).await;
    let out = result_file("idle");
    let mut args = vec![
        "idle".to_owned(),
        format!("--auth={}", world.auth.url("")),
        format!("--gateway={},{}", world.gateway(0), world.gateway(1)),
        format!(
            "--metrics={},{}",
            world.edges[0].metrics_url(),
            world.edges[1].metrics_url()
        ),
        "--connections=20".to_owned(),
        "--hold=1s".to_owned(),
        format!("--worker-exe={}", env!("CARGO_BIN_EXE_loadtest")),
        "--workers=2".to_owned(),
    ];
    args.push(format!("--out={}", out.display()));
    run(args).await.expect("the idle run passes");
    let result = read(&out);
    assert_eq!(result["connections"], 20, "{result}");
    assert_eq!(result["edges"].as_array().unwrap().len(), 2, "{result}");
}

#[tokio::test]
async fn an_edge_that_drops_one_message_fails_the_run_as_loss() {
    let world = World::start(
        2,
        &[
            "--send-rate=1000/1s",
            "--frames-per-minute=100000",
            "--fault-drop-message=7",
        ],
    )
    .await;
    let out = result_file("fault");
    let args = command(
        &world,
        &out,
        &[
            "chat",
            "--channels=2",
            "--members=3",
            "--rate=30",
            "--duration=2s",
        ],
    );
    let failed = run(args)
        .await
        .expect_err("a run with a dropped message fails");
    assert!(format!("{failed:#}").contains("loss"), "{failed:#}");
    let result = read(&out);
    // Each of the two edges dropped one delivery.
    assert_eq!(result["missing"], 2, "{result}");
    assert_eq!(
        result["delivered"].as_u64().unwrap() + 2,
        result["expected_deliveries"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn every_reaction_to_a_hot_message_is_counted_once_and_reaches_the_watchers() {
    let world = World::start(2, FAST).await;
    let out = result_file("react");
    let args = command(
        &world,
        &out,
        &["react", "--members=6", "--watchers=2", "--concurrency=3"],
    );
    run(args).await.expect("the react run passes");
    let result = read(&out);
    assert_eq!(result["accepted"], 6, "{result}");
    assert_eq!(result["final_count"], 6, "{result}");
    assert_eq!(
        result["events_per_watcher"],
        serde_json::json!([6, 6]),
        "{result}"
    );
    assert!(
        result["errors_by_status"].as_object().unwrap().is_empty(),
        "{result}"
    );
    assert_eq!(result["request_to_event"]["count"], 12, "{result}");
}

#[tokio::test]
async fn ready_counts_every_unread_mention_and_none_once_read() {
    let world = World::start(2, FAST).await;
    let out = result_file("ready-mentions");
    let args = command(
        &world,
        &out,
        &[
            "ready-mentions",
            "--channels=3",
            "--mentions=2",
            "--repeats=3",
        ],
    );
    run(args).await.expect("the ready-mentions run passes");
    let result = read(&out);
    // The run waited for a READY counting all 6 before timing; a READY the edge sent without
    // counts (the store slow on a loaded machine) has no count to check.
    assert_eq!(result["expected_mentions"], 6, "{result}");
    for (reader, expected) in [("unread", 6), ("read", 0)] {
        assert_eq!(result[reader]["wrong_counts"], 0, "{result}");
        let count = &result[reader]["mention_count"];
        assert!(count.is_null() || *count == expected, "{result}");
    }
    for reader in ["unread", "read"] {
        assert_eq!(result[reader]["identify_to_ready"]["count"], 3, "{result}");
        assert!(
            result[reader]["ready_bytes"].as_u64().unwrap() > 0,
            "{result}"
        );
    }
}

#[tokio::test]
async fn ready_names_every_server_a_member_is_in_with_its_member_count() {
    let world = World::start(2, FAST).await;
    let out = result_file("ready-servers");
    let args = command(
        &world,
        &out,
        &[
            "ready-servers",
            "--members=6",
            "--servers=3",
            "--channels=2",
            "--repeats=4",
        ],
    );
    // The run itself fails unless every READY names all 3 servers with 6 members and both
    // channels of each.
    run(args).await.expect("the ready-servers run passes");
    let result = read(&out);
    assert_eq!(result["ready_channels"], 6, "{result}");
    for round in ["identify_to_ready_cold", "identify_to_ready_warm"] {
        assert_eq!(result[round]["count"], 4, "{result}");
    }
    assert!(result["ready_bytes"].as_u64().unwrap() > 0, "{result}");
}

#[tokio::test]
async fn a_backlog_is_indexed_searched_and_a_live_message_found() {
    let world = World::start(2, FAST).await;
    let folder = tempfile::tempdir().unwrap();
    let search = start_search(&world, folder.path()).await;
    let out = result_file("search");
    let nats = format!("--nats-url={}", world.engines.nats_url);
    let prefix = format!("--nats-prefix={}", world.prefix);
    let search_metrics = format!("--search={}", search.metrics_url());
    let persister = format!(
        "--persister={}",
        world.persister.as_ref().unwrap().metrics_url()
    );
    let args = command(
        &world,
        &out,
        &[
            "search",
            "--messages=300",
            "--channels=3",
            "--authors=2",
            "--clients=2",
            "--duration=2s",
            "--lag-samples=2",
            "--chat-rate=5",
            "--index-timeout=5m",
            &nats,
            &prefix,
            &search_metrics,
            &persister,
        ],
    );
    run(args).await.expect("the search run passes");
    let result = read(&out);
    assert_eq!(result["messages"], 300, "{result}");
    assert!(
        result["indexed_per_second"].as_f64().unwrap() > 0.0,
        "{result}"
    );
    let kinds = result["kinds"].as_array().unwrap();
    assert_eq!(kinds.len(), 6, "{result}");
    // One-word queries of the vocabulary's common words find something in 300 messages.
    assert!(kinds[0]["mean_hits"].as_f64().unwrap() > 0.0, "{result}");
    for kind in kinds {
        assert!(kind["queries"].as_u64().unwrap() > 0, "{result}");
    }
    assert_eq!(result["lag"]["never_found"], 0, "{result}");
    assert_eq!(result["lag"]["ack_to_shown"]["count"], 2, "{result}");
}

/// A search process over `world`'s stream and store, its index in `folder`, once ready.
async fn start_search(world: &World, folder: &Path) -> testkit::Running {
    let mut args = vec![
        "search".to_owned(),
        "--http-addr=127.0.0.1:0".to_owned(),
        "--metrics-addr=127.0.0.1:0".to_owned(),
        format!("--index-dir={}", folder.display()),
        "--commit-interval=200ms".to_owned(),
    ];
    args.extend(world.common_args());
    let config: search::Config = kit::config::try_parse_from(args).expect("valid config");
    let search = testkit::spawn(search::Search::build(config).await.expect("search starts"));
    testkit::eventually(
        "the search index ready",
        std::time::Duration::from_secs(120),
        || async {
            let ready = reqwest::get(search.url("/readyz")).await.ok()?;
            ready.status().is_success().then_some(())
        },
    )
    .await;
    search
}
