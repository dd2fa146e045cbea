//! Every service's HTTP listeners: the public one (REST, WebSocket upgrades, `/livez`, `/readyz`)
//! and a separate one serving only `/metrics`, both defended the same way against connections
//! that cost the server without ever asking it anything.
//!
//! `axum::serve` reads request headers with no deadline, so a client that opens a connection and
//! never finishes its headers holds a socket and a file descriptor for as long as it likes (1,000
//! of them were all still open after 90 s). Here each connection is served by hyper's HTTP/1.1
//! connection directly, with:
//!
//! - a **header-read timeout** (`--header-read-timeout`): the request line and headers must have
//!   arrived within it, or the connection is closed. A kept-alive connection waiting for its next
//!   request is on the same clock, so idle connections go too.
//! - a **cap on connections open at once per client address** (`--max-connections-per-address`;
//!   IPv6 clients counted per /64, as one host holds a whole /64): the next one is answered 429
//!   in the one error shape and closed, while every other address is served as before. A
//!   WebSocket counts until it closes, as its socket is the connection's.
//!
//! The protocol is HTTP/1.1, as it was with axum built without HTTP/2. (hyper-util's auto builder,
//! which would add h2c, first waits for bytes to tell the protocols apart, with no deadline: the
//! very hole this closes.) Graceful shutdown, TCP_NODELAY and upgrades work as they did.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use clap::Args;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::telemetry::Metrics;
use proto::api::error::{ErrorBody, ErrorCode};

/// How every HTTP listener of a service treats its connections.
#[derive(Debug, Clone, Copy, Args)]
pub struct ListenerLimits {
    /// How long a client may take to send a request's line and headers; a kept-alive connection
    /// that sends no next request within it is closed too.
    #[arg(long = "header-read-timeout", env = "NATTER_HEADER_READ_TIMEOUT", default_value = "10s",
          value_parser = crate::config::duration)]
    pub header_read_timeout: Duration,

    /// Most connections one client address may hold open at once (IPv6: per /64), WebSockets
    /// included; more are answered 429 and closed. 0 for no cap (behind a proxy, every
    /// connection comes from the proxy's address).
    #[arg(
        long = "max-connections-per-address",
        env = "NATTER_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,
}

/// Where a service listens, and the limits every one of its listeners applies.
#[derive(Debug, Clone, Copy)]
pub struct Listen {
    /// The public address: the service's routes, `/livez` and `/readyz`.
    pub http: SocketAddr,
    /// `/metrics` only, kept off the public port.
    pub metrics: SocketAddr,
    pub limits: ListenerLimits,
}

/// A service's HTTP side, bound: its router on the public address (with request metrics) and its
/// metrics on their own.
pub struct HttpServer {
    public: Listener,
    metrics: Listener,
}

impl HttpServer {
    /// Binds both addresses (port 0 picks a free port) and adds request metrics to every route of
    /// `router`, naming the address when it cannot listen.
    pub async fn bind(listen: Listen, router: Router, metrics: &Metrics) -> io::Result<Self> {
        let tracked = |router: Router| {
            router.route_layer(axum::middleware::from_fn_with_state(
                metrics.clone(),
                crate::telemetry::track_http,
            ))
        };
        let public = Listener::bind(
            "public",
            listen.http,
            tracked(router),
            listen.limits,
            metrics,
        );
        let scrape = tracked(crate::health::metrics_router(metrics.clone()));
        let metrics = Listener::bind("metrics", listen.metrics, scrape, listen.limits, metrics);
        Ok(Self {
            public: public.await?,
            metrics: metrics.await?,
        })
    }

    /// The public port (useful after binding port 0).
    pub fn port(&self) -> u16 {
        self.public.port()
    }

    /// The port `/metrics` is served on.
    pub fn metrics_port(&self) -> u16 {
        self.metrics.port()
    }

    /// Serves both listeners until `shutdown`, then stops accepting, lets in-flight requests
    /// finish and returns once every connection has closed. Upgraded connections (WebSockets)
    /// are their handlers' to end.
    pub async fn serve(self, shutdown: CancellationToken) -> io::Result<()> {
        let (public, metrics) = tokio::join!(
            self.public.serve(shutdown.clone()),
            self.metrics.serve(shutdown)
        );
        public.and(metrics)
    }
}

/// One bound address and what it serves.
struct Listener {
    name: &'static str,
    tcp: TcpListener,
    router: Router,
    limits: ListenerLimits,
    counters: ListenerCounters,
}

#[derive(Clone)]
struct ListenerCounters {
    open: IntGauge,
    refused: prometheus::IntCounter,
    header_timeouts: prometheus::IntCounter,
}

impl Listener {
    async fn bind(
        name: &'static str,
        addr: SocketAddr,
        router: Router,
        limits: ListenerLimits,
        metrics: &Metrics,
    ) -> io::Result<Self> {
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let counters = ListenerCounters {
            open: metrics.http_connections.with_label_values(&[name]),
            refused: metrics.http_connections_refused.with_label_values(&[name]),
            header_timeouts: metrics.http_header_timeouts.with_label_values(&[name]),
        };
        Ok(Self {
            name,
            tcp,
            router,
            limits,
            counters,
        })
    }

    fn port(&self) -> u16 {
        self.tcp.local_addr().map_or(0, |a| a.port())
    }

    async fn serve(self, shutdown: CancellationToken) -> io::Result<()> {
        let occupancy = Arc::new(Occupancy::new(self.limits.max_connections_per_address));
        let refusal = refusal_response();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout);
        let connections = TaskTracker::new();
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        pause_after_accept_error(&e, &shutdown).await;
                        continue;
                    }
                },
                () = shutdown.cancelled() => break,
            };
            let Some(slot) = occupancy.admit(peer.ip(), &self.counters.open) else {
                self.counters.refused.inc();
                tracing::debug!(%peer, listener = self.name, "too many connections from this address; refused");
                // A fresh socket's send buffer is empty, so this never waits; a client that does
                // not read it loses nothing but the explanation.
                let _ = stream.try_write(&refusal);
                continue;
            };
            // Small, interactive writes (gateway frames, short JSON answers) must not wait for the
            // peer's delayed ACK (Nagle): measured here, it added one client send interval to
            // every ACK frame on the gateway.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            let io = TokioIo::new(Counted {
                stream,
                _slot: slot,
            });
            let service = PeerService {
                router: self.router.clone(),
                peer,
            };
            let connection = http.serve_connection(io, service).with_upgrades();
            let counters = self.counters.clone();
            let shutdown = shutdown.clone();
            connections.spawn(async move {
                let mut connection = std::pin::pin!(connection);
                let ended = tokio::select! {
                    ended = connection.as_mut() => ended,
                    () = shutdown.cancelled() => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                match ended {
                    Ok(()) => {}
                    Err(e) if e.is_timeout() => counters.header_timeouts.inc(),
                    Err(e) => tracing::debug!(error = %e, %peer, "connection ended with an error"),
                }
            });
        }
        drop(self.tcp);
        connections.close();
        connections.wait().await;
        Ok(())
    }
}

/// Errors of one connection (it was reset before we took it) are nobody's business; anything
/// else (out of file descriptors) would repeat at once, so wait a moment before accepting again.
async fn pause_after_accept_error(e: &io::Error, shutdown: &CancellationToken) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections; trying again in a second");
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(1)) => {}
        () = shutdown.cancelled() => {}
    }
}

/// What a connection past its address's cap is told before it is closed.
fn refusal_response() -> Vec<u8> {
    let body = serde_json::to_string(&ErrorBody::new(
        ErrorCode::RateLimited,
        "too many connections from your address; close some and try again",
    ))
    .expect("an error body serialises");
    format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The router, told who the peer is: handlers read it as `ConnectInfo<SocketAddr>` (auth's rate
/// limits are per client address).
#[derive(Clone)]
struct PeerService {
    router: Router,
    peer: SocketAddr,
}

impl hyper::service::Service<hyper::Request<Incoming>> for PeerService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        // A router is always ready: no poll_ready needed before calling it.
        tower_service::Service::call(&mut self.router.clone(), request)
    }
}

/// Which connections count together: one IPv4 address, or one IPv6 /64 (a host is given a whole
/// /64, so counting single IPv6 addresses would cap nothing).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// Connections open right now, per address key.
struct Occupancy {
    /// 0: no cap (nothing is counted).
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Occupancy {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            open: Mutex::default(),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open
            .lock()
            .expect("no code panics while holding the connection table")
    }

    /// A slot for one more connection from `ip`, held until the connection closes, or `None` when
    /// the address already holds its cap.
    fn admit(self: &Arc<Self>, ip: IpAddr, gauge: &IntGauge) -> Option<Slot> {
        let key = address_key(ip);
        if self.cap > 0 {
            let mut table = self.table();
            let open = table.entry(key).or_insert(0);
            if *open >= self.cap {
                return None;
            }
            *open += 1;
        }
        gauge.inc();
        Some(Slot {
            occupancy: Arc::clone(self),
            key,
            gauge: gauge.clone(),
        })
    }
}

/// One connection's place in its address's count, given back when dropped.
struct Slot {
    occupancy: Arc<Occupancy>,
    key: IpAddr,
    gauge: IntGauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gauge.dec();
        if self.occupancy.cap == 0 {
            return;
        }
        let mut table = self.occupancy.table();
        if let Some(open) = table.get_mut(&self.key) {
            *open -= 1;
            if *open == 0 {
                table.remove(&self.key);
            }
        }
    }
}

/// A connection's socket with its slot: the slot goes back when the socket closes, whether hyper
/// closed it or a WebSocket handler that took it over by upgrading. What an upgrade hands over
/// is this, in hyper's `TokioIo`: a handler may downcast to it to own the socket itself.
pub struct Counted {
    stream: TcpStream,
    _slot: Slot,
}

impl Counted {
    /// The same connection, its readiness watched from now on by the reactor of the runtime this
    /// is called on rather than the one that accepted it: a task moving to another runtime takes
    /// its socket along this way. The connection must not be in the middle of a read or write.
    pub fn rebind(self) -> io::Result<Self> {
        let Self { stream, _slot } = self;
        let stream = TcpStream::from_std(stream.into_std()?)?;
        Ok(Self { stream, _slot })
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge() -> IntGauge {
        IntGauge::new("open", "open connections").unwrap()
    }

    #[test]
    fn an_address_gets_its_cap_and_its_slots_back_when_they_close() {
        let occupancy = Arc::new(Occupancy::new(2));
        let (ip, other): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let gauge = gauge();
        let first = occupancy.admit(ip, &gauge).unwrap();
        let _second = occupancy.admit(ip, &gauge).unwrap();
        assert!(occupancy.admit(ip, &gauge).is_none());
        assert!(occupancy.admit(other, &gauge).is_some());
        drop(first);
        assert!(occupancy.admit(ip, &gauge).is_some());
    }

    #[test]
    fn a_closed_addresses_entry_is_forgotten() {
        let occupancy = Arc::new(Occupancy::new(2));
        let gauge = gauge();
        drop(occupancy.admit("10.0.0.1".parse().unwrap(), &gauge));
        assert!(occupancy.table().is_empty());
        assert_eq!(gauge.get(), 0);
    }

    #[test]
    fn no_cap_admits_everyone_and_counts_nothing_per_address() {
        let occupancy = Arc::new(Occupancy::new(0));
        let gauge = gauge();
        let ip = "10.0.0.1".parse().unwrap();
        let slots: Vec<_> = (0..1_000)
            .map(|_| occupancy.admit(ip, &gauge).unwrap())
            .collect();
        assert!(occupancy.table().is_empty());
        assert_eq!(gauge.get(), 1_000);
        drop(slots);
        assert_eq!(gauge.get(), 0);
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_refusal_is_a_whole_http_answer_in_the_one_error_shape() {
        let refusal = String::from_utf8(refusal_response()).unwrap();
        let (head, body) = refusal.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 429 "), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let body: ErrorBody = serde_json::from_str(body).unwrap();
        assert_eq!(body.code, ErrorCode::RateLimited);
    }
}
