//! Every service's HTTP listener, over real TCP: connections that never finish their headers are
//! closed after the header-read timeout while a normal client is served throughout, an address
//! past its connection cap is refused while another address is served, `/metrics` lives on its
//! own listener, and a shutdown lets in-flight requests finish.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use kit::lifecycle::{HttpServer, Shutdown};
use kit::listener::{Listen, ListenerLimits};
use kit::telemetry::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Long enough for any wait on a loaded machine; nothing is timed against it.
const PATIENCE: Duration = Duration::from_secs(60);

/// Told when a request reaches `/slow`.
static SLOW_ARRIVED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Polls `check` until it answers `Some`, or panics naming `what` after [`PATIENCE`].
async fn eventually<T, Fut: Future<Output = Option<T>>>(what: &str, check: impl Fn() -> Fut) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Server {
    port: u16,
    metrics_port: u16,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: ListenerLimits) -> Self {
        let router =
            Router::new()
                .route("/hello", get(|| async { "hello" }))
                .route(
                    "/peer",
                    get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                        peer.ip().to_string()
                    }),
                )
                .route(
                    "/slow",
                    get(|| async {
                        SLOW_ARRIVED.notify_one();
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        "finally"
                    }),
                );
        let listen = Listen {
            http: "127.0.0.1:0".parse().unwrap(),
            metrics: "127.0.0.1:0".parse().unwrap(),
            limits,
        };
        let http = HttpServer::bind(listen, router, &Metrics::new("test"))
            .await
            .unwrap();
        let (port, metrics_port) = (http.port(), http.metrics_port());
        let shutdown = Shutdown::new();
        let task = tokio::spawn(http.serve(shutdown.clone()));
        Self {
            port,
            metrics_port,
            shutdown,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn metric(&self, line_start: &str) -> Option<f64> {
        let url = format!("http://127.0.0.1:{}/metrics", self.metrics_port);
        let text = reqwest::get(url).await.ok()?.text().await.ok()?;
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }
}

/// Reads until the server closes the connection; what it said before closing.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut said = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return String::from_utf8_lossy(&said).into_owned(),
            Ok(Ok(n)) => said.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the connection was still open after {PATIENCE:?}"),
        }
    }
}

async fn connect_from(source: IpAddr, port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
}

fn client_from(source: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source)
        .build()
        .unwrap()
}

#[tokio::test]
async fn header_less_connections_are_closed_after_the_timeout_while_a_normal_client_is_served() {
    let server = Server::start(ListenerLimits {
        header_read_timeout: Duration::from_secs(1),
        max_connections_per_address: 0,
    })
    .await;
    // Half say nothing at all; half start a request and never finish its headers.
    let mut pile = Vec::new();
    for i in 0..300 {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port))
            .await
            .unwrap();
        if i % 2 == 1 {
            stream
                .write_all(b"GET /hello HTTP/1.1\r\nHost: slow\r\nX-Wait: ")
                .await
                .unwrap();
        }
        pile.push(stream);
    }
    let closing = futures::future::join_all(pile.iter_mut().map(until_closed));

    // Meanwhile, someone who asks properly is answered every time.
    let served = async {
        let http = reqwest::Client::new();
        let mut answered = 0;
        loop {
            let response = http.get(server.url("/hello")).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.text().await.unwrap(), "hello");
            answered += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            if answered >= 10_000 {
                return answered;
            }
        }
    };
    tokio::select! {
        said = closing => {
            // Closed without being served: nothing they asked for was answered.
            assert!(said.iter().all(|s| !s.contains("hello")), "{said:?}");
        }
        _ = served => unreachable!("the pile is closed long before"),
    }
    let response = reqwest::get(server.url("/hello")).await.unwrap();
    assert_eq!(response.status(), 200, "still serving after the pile went");
    let timeouts = "natter_http_header_timeouts_total{listener=\"public\"";
    let counted = eventually("the timeouts to be counted", || async {
        server.metric(timeouts).await.filter(|n| *n >= 300.0)
    })
    .await;
    assert!(counted >= 300.0);
}

#[tokio::test]
async fn connections_past_the_per_address_cap_are_refused_while_another_address_is_served() {
    let server = Server::start(ListenerLimits {
        header_read_timeout: Duration::from_secs(120),
        max_connections_per_address: 5,
    })
    .await;
    let (crowded, other): (IpAddr, IpAddr) =
        ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut stream = connect_from(crowded, server.port).await;
        stream.write_all(b"GET /hello HTTP/1.1\r\n").await.unwrap();
        held.push(stream);
    }

    let mut sixth = connect_from(crowded, server.port).await;
    let said = until_closed(&mut sixth).await;
    assert!(said.starts_with("HTTP/1.1 429 "), "{said}");
    assert!(said.contains("\"code\":\"rate_limited\""), "{said}");

    // Another address is served as if nothing happened, and is told who it is.
    let response = client_from(other)
        .get(server.url("/peer"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "127.0.0.2");

    // One of the five closes: the crowded address has room for one again.
    drop(held.pop());
    let crowded_client = client_from(crowded);
    eventually("a slot to come back", || async {
        let response = crowded_client.get(server.url("/hello")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    let refused = "natter_http_connections_refused_total{listener=\"public\"";
    assert!(server.metric(refused).await.unwrap_or(0.0) >= 1.0);
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_and_not_on_the_public_one() {
    let server = Server::start(ListenerLimits {
        header_read_timeout: Duration::from_secs(10),
        max_connections_per_address: 256,
    })
    .await;
    let public = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(public.status(), 404);
    let open = "natter_http_connections{listener=\"public\"";
    assert!(server.metric(open).await.is_some());
}

#[tokio::test]
async fn a_shutdown_lets_an_in_flight_request_finish_and_then_stops_listening() {
    let server = Server::start(ListenerLimits {
        header_read_timeout: Duration::from_secs(10),
        max_connections_per_address: 256,
    })
    .await;
    let slow = tokio::spawn(reqwest::get(server.url("/slow")));
    tokio::time::timeout(PATIENCE, SLOW_ARRIVED.notified())
        .await
        .expect("the slow request arrives");
    server.shutdown.cancel();
    let answer = slow.await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "finally");
    server.task.await.unwrap().unwrap();
    assert!(
        TcpStream::connect(("127.0.0.1", server.port))
            .await
            .is_err(),
        "nothing listens after the shutdown"
    );
}
