//! What happens while a session starts: an event for the user published after auth told the edge
//! the user's channels, and before READY, still reaches the session.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::response::Response;
use futures::StreamExt;
use proto::access::StateQuery;
use proto::subjects::Subjects;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::support::{Client, WAIT, World, send_json};

/// Auth's REST API behind a gate: while it is closed, `GET /api/v1/users/@me` (which an edge asks
/// when a client identifies) waits, and says so; everything else passes straight through.
#[derive(Clone)]
struct GatedAuth {
    auth: String,
    http: reqwest::Client,
    open: Arc<watch::Sender<bool>>,
    held: Arc<Notify>,
}

impl GatedAuth {
    /// Starts the gate, open, in front of `auth`; answers it and its URL.
    async fn start(auth: String) -> (Self, String) {
        let gate = Self {
            auth,
            http: reqwest::Client::new(),
            open: Arc::new(watch::channel(true).0),
            held: Arc::new(Notify::new()),
        };
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(gate.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the gate");
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (gate, url)
    }

    fn close(&self) {
        self.open.send_replace(false);
    }

    fn open(&self) {
        self.open.send_replace(true);
    }
}

async fn forward(State(gate): State<GatedAuth>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if parts.method == Method::GET && parts.uri.path() == "/api/v1/users/@me" {
        let mut open = gate.open.subscribe();
        if !*open.borrow_and_update() {
            gate.held.notify_one();
            open.wait_for(|open| *open).await.expect("the gate lives");
        }
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("a request body");
    let mut headers = parts.headers.clone();
    headers.remove(header::HOST);
    let answer = gate
        .http
        .request(parts.method, format!("{}{path}", gate.auth))
        .headers(headers)
        .body(body)
        .send()
        .await
        .expect("auth answers");
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != header::TRANSFER_ENCODING && name != header::CONNECTION {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.expect("auth's whole answer");
    response.body(Body::from(bytes)).expect("a response")
}

#[tokio::test]
async fn a_dm_opened_with_someone_while_their_session_starts_reaches_it_after_ready() {
    let mut world = World::start(0, &[]).await;
    let (gate, gate_url) = GatedAuth::start(world.auth.url("")).await;
    let auth_url = format!("--auth-url={gate_url}");
    world.add_edge(1, &[auth_url.as_str()]).await;
    let (ann, cat) = (world.sign_up("ann").await, world.sign_up("cat").await);

    // Watching NATS as auth and the edge use it: the edge's questions about Cat's session, every
    // answer (replies go to `_INBOX.…` subjects), and Cat's inbox.
    let subjects = Subjects::new(world.prefix.clone());
    let nats = async_nats::connect(&world.engines.nats_url)
        .await
        .expect("NATS");
    let mut questions = nats.subscribe(subjects.auth_state()).await.unwrap();
    let mut answers = nats.subscribe("_INBOX.>").await.unwrap();
    let mut inbox = nats.subscribe(subjects.user_inbox(cat.id)).await.unwrap();
    nats.flush().await.unwrap();

    // Cat identifies; the edge's look at who she is waits at the gate.
    gate.close();
    let (mut socket, _) = Client::open(&world.gateway(0)).await;
    send_json(&mut socket, json!({"op": 2, "d": {"token": cat.token}})).await;
    let wait = WAIT;
    let reply_to = tokio::time::timeout(wait, async {
        loop {
            let question = questions.next().await.expect("a question");
            let query: StateQuery = serde_json::from_slice(&question.payload).unwrap();
            if query.user_id == cat.id && query.channel_id.is_none() {
                break question.reply.expect("a question wants an answer");
            }
        }
    })
    .await
    .expect("the edge asks auth for Cat's channels");
    tokio::time::timeout(wait, async {
        while answers.next().await.expect("an answer").subject != reply_to {}
    })
    .await
    .expect("auth answers with Cat's channels");
    tokio::time::timeout(wait, gate.held.notified())
        .await
        .expect("the edge's look at Cat waits at the gate");

    // Now, after auth's answer and before READY, Ann opens a DM with Cat.
    let dm = world.dm(&ann, &cat).await;
    tokio::time::timeout(wait, async {
        loop {
            let event = inbox.next().await.expect("an event for Cat");
            let event: Value = serde_json::from_slice(&event.payload).unwrap();
            if event["t"] == "CHANNEL_CREATE" && event["d"]["id"] == dm.to_string() {
                break;
            }
        }
    })
    .await
    .expect("auth tells Cat's inbox of the DM");
    gate.open();

    let mut cat_1 = Client::from_socket(socket).await;
    let channels = cat_1.ready["d"]["channels"].as_array().unwrap().clone();
    assert!(
        channels.iter().all(|c| c["id"] != dm.to_string()),
        "the DM is news after READY (else this test proves nothing): {channels:?}"
    );
    let created = cat_1.next_event("CHANNEL_CREATE").await;
    assert_eq!(created["d"]["id"], dm.to_string(), "{created}");
    // And the session is in the DM: what Ann writes there reaches Cat.
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let ack = ann_1.send(dm, "you there?", "n-1").await;
    assert_eq!(ack["op"], 24, "{ack}");
    assert_eq!(cat_1.messages(1).await, ["you there?"]);
}
