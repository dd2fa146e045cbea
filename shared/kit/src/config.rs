//! Typed configuration: command-line flags with environment fallbacks, checked once at start.
//!
//! Each service declares a `clap` struct that flattens the groups below. [`parse`] turns any
//! problem into one line naming the setting and exits non-zero, so a bad deploy fails loudly at
//! start instead of at the first request.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, Parser, ValueEnum};

/// Parses the process's arguments and environment into `T`, or prints one clear line and exits
/// (status 2 for a configuration error, 0 for `--help` and `--version`).
pub fn parse<T: Parser>() -> T {
    match T::try_parse() {
        Ok(config) => config,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            err.exit()
        }
        Err(err) => {
            eprintln!("{}: {}", binary_name(), one_line(&err));
            std::process::exit(2);
        }
    }
}

/// Like [`parse`] from explicit arguments, returning the one-line message instead of exiting.
pub fn try_parse_from<T, I, S>(args: I) -> Result<T, String>
where
    T: Parser,
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    T::try_parse_from(args).map_err(|err| one_line(&err))
}

/// clap renders an error over several lines with usage and a hint; operators want the first
/// sentence and the setting it names, on one line a log collector keeps together.
fn one_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let message = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more"))
        .filter(|line| !line.is_empty() && !line.starts_with("tip:"))
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    format!("configuration error: {message}")
}

fn binary_name() -> String {
    std::env::args()
        .next()
        .as_deref()
        .and_then(|arg0| {
            std::path::Path::new(arg0)
                .file_name()?
                .to_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "natter".to_owned())
}

/// A value that must never reach a log line: database URLs with passwords, signing keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<T: FromStr> FromStr for Secret<T> {
    type Err = T::Err;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// A URL whose scheme is checked at start (`nats://`, `redis://`, `postgres://`).
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceUrl(url::Url);

impl ServiceUrl {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }

    fn parse_with(s: &str, schemes: &[&str]) -> Result<Self, String> {
        let url = url::Url::parse(s).map_err(|e| format!("not a URL ({e})"))?;
        if !schemes.contains(&url.scheme()) {
            return Err(format!(
                "scheme '{}' is not one of {}",
                url.scheme(),
                schemes.join(", ")
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("the URL has no host".to_owned());
        }
        Ok(Self(url))
    }
}

/// Shows the URL without its password.
impl fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        write!(f, "{shown}")
    }
}

impl fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

fn nats_url(s: &str) -> Result<ServiceUrl, String> {
    ServiceUrl::parse_with(s, &["nats", "tls", "ws", "wss"])
}

fn redis_url(s: &str) -> Result<ServiceUrl, String> {
    ServiceUrl::parse_with(s, &["redis", "rediss"])
}

pub fn postgres_url(s: &str) -> Result<ServiceUrl, String> {
    ServiceUrl::parse_with(s, &["postgres", "postgresql"])
}

/// A duration written as numbers with units (humantime's syntax): `500ms`, `30s`, `5m`, `2h`,
/// `7d`, `1h 30m`. A bare number has no unit and is refused; so is one too large to hold.
pub fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("'{s}' is not a duration like 500ms, 30s, 5m, 2h or 7d ({e})"))
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for collectors.
    Json,
    /// Human-readable lines, for a terminal.
    Text,
}

#[derive(Debug, Clone, Args)]
pub struct LogConfig {
    /// Log line format.
    #[arg(
        long = "log-format",
        env = "NATTER_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    pub format: LogFormat,

    /// Which events to log, in `tracing` filter syntax (`info`, `auth=debug,sqlx=warn`).
    #[arg(long = "log-filter", env = "NATTER_LOG", default_value = "info")]
    pub filter: String,
}

#[derive(Debug, Clone, Args)]
pub struct NatsConfig {
    /// NATS server URLs (JetStream enabled), comma separated: on a cluster, the seed list of
    /// several nodes, so a service starts (and reconnects) while any one of them is down. The
    /// client also learns the rest of the cluster from whichever node it reaches.
    #[arg(id = "nats-url", long = "nats-url", env = "NATTER_NATS_URL", value_parser = nats_url,
          value_delimiter = ',', required = true)]
    pub urls: Vec<ServiceUrl>,

    /// First token of every subject and name of every stream, so several deployments (or test
    /// runs) can share one NATS cluster without seeing each other.
    #[arg(long = "nats-prefix", env = "NATTER_NATS_PREFIX", default_value = "natter",
          value_parser = proto::subjects::Prefix::parse)]
    pub prefix: proto::subjects::Prefix,
}

#[derive(Debug, Clone, Args)]
pub struct RedisConfig {
    /// Redis URL.
    #[arg(id = "redis-url", long = "redis-url", env = "NATTER_REDIS_URL", value_parser = redis_url)]
    pub url: ServiceUrl,
}

impl NatsConfig {
    /// Connects with the options every service uses: a name that shows in the server's
    /// connection list, and unbounded reconnects (a service outlives NATS restarts).
    pub async fn connect(
        &self,
        name: &str,
    ) -> Result<async_nats::Client, async_nats::ConnectError> {
        Self::options(name).connect(self.seeds()).await
    }

    /// The seed list as async-nats takes it.
    fn seeds(&self) -> Vec<&str> {
        self.urls.iter().map(ServiceUrl::as_str).collect()
    }

    /// Like [`NatsConfig::connect`], and also hands out the connection's events (reconnected,
    /// a subscription dropped messages as a slow consumer, ...): what was published meanwhile
    /// never reached this client's subscriptions, and a service that must not miss it looks.
    /// Events that find the receiver full are dropped: one is enough to start looking.
    pub async fn connect_with_events(
        &self,
        name: &str,
    ) -> Result<
        (
            async_nats::Client,
            tokio::sync::mpsc::Receiver<async_nats::Event>,
        ),
        async_nats::ConnectError,
    > {
        let (events, received) = tokio::sync::mpsc::channel(16);
        let client = Self::options(name)
            .event_callback(move |event| {
                let _ = events.try_send(event);
                std::future::ready(())
            })
            .connect(self.seeds())
            .await?;
        Ok((client, received))
    }

    fn options(name: &str) -> async_nats::ConnectOptions {
        async_nats::ConnectOptions::new()
            .name(name)
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .reconnect_delay_callback(reconnect_delay)
    }
}

/// How long a client waits before its `attempts`th try to reconnect: a random part of async-nats'
/// own exponential ceiling (0 ms, then 2, 4, 8 ... up to 4 s). Without the randomness every
/// service and edge comes back to a restarted NATS in the same instant, and does so again at each
/// try; with it they spread out (full jitter, as the web client reconnects to the gateway).
pub fn reconnect_delay(attempts: usize) -> Duration {
    let ceiling = match attempts {
        0 | 1 => Duration::ZERO,
        n => crate::retry::nth_delay(Duration::from_millis(2), Duration::from_secs(4), n - 2),
    };
    crate::retry::full_jitter(ceiling)
}

/// `N/duration`: a budget of N that refills evenly over the duration (`5/15m`, `30/1m`, `5/5s`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    pub count: std::num::NonZeroU32,
    pub per: Duration,
}

impl RateSpec {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (count, per) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not N/duration, like 5/15m"))?;
        let count: std::num::NonZeroU32 = count
            .trim()
            .parse()
            .map_err(|_| format!("'{count}' is not a whole number above 0"))?;
        let per = duration(per.trim())?;
        if per.is_zero() {
            return Err(format!("'{s}' has a zero duration"));
        }
        Ok(Self { count, per })
    }

    /// The GCRA quota: a burst of N, refilled one at a time every duration/N.
    pub fn quota(self) -> governor::Quota {
        governor::Quota::with_period(self.per / self.count.get())
            .expect("a non-zero period")
            .allow_burst(self.count)
    }
}

impl fmt::Debug for RateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.count, self.per.as_secs_f64())
    }
}

/// A Snowflake worker id (0..=1023). Each process that makes ids needs its own.
pub fn worker_id(s: &str) -> Result<u16, String> {
    let n: u16 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number"))?;
    if n > proto::snowflake::MAX_WORKER_ID {
        return Err(format!(
            "{n} is above the largest worker id {}",
            proto::snowflake::MAX_WORKER_ID
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Example {
        #[command(flatten)]
        nats: NatsConfig,
        #[arg(long, value_parser = duration, default_value = "30s")]
        expiry: Duration,
    }

    /// A setting with no environment fallback, so no caller's environment can fill it in.
    #[derive(Debug, Parser)]
    struct NeedsAWorker {
        #[arg(long, value_parser = worker_id)]
        worker_id: u16,
    }

    #[test]
    fn a_missing_setting_is_named_on_one_line() {
        let err = try_parse_from::<NeedsAWorker, _, _>(["example"]).unwrap_err();
        assert!(!err.contains('\n'), "{err}");
        assert!(err.contains("--worker-id"), "{err}");
        assert!(err.starts_with("configuration error: "), "{err}");
    }

    #[test]
    fn a_malformed_url_is_named_with_the_reason() {
        let err =
            try_parse_from::<Example, _, _>(["example", "--nats-url", "http://x"]).unwrap_err();
        assert!(!err.contains('\n'), "{err}");
        assert!(
            err.contains("--nats-url") && err.contains("scheme 'http'"),
            "{err}"
        );
    }

    #[test]
    fn a_cluster_is_given_as_a_seed_list_each_url_checked() {
        let config = try_parse_from::<Example, _, _>([
            "e",
            "--nats-url",
            "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://n3:4222",
        ])
        .unwrap();
        assert_eq!(
            config.nats.seeds(),
            [
                "nats://127.0.0.1:4222",
                "nats://127.0.0.1:4223",
                "nats://n3:4222"
            ]
        );
        let err = try_parse_from::<Example, _, _>(["e", "--nats-url", "nats://a:1,http://b:2"])
            .unwrap_err();
        assert!(err.contains("scheme 'http'"), "{err}");
    }

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert!(duration("10").is_err());
        assert!(duration("1x").is_err());
        let err = try_parse_from::<Example, _, _>(["e", "--nats-url", "nats://h", "--expiry", "5"])
            .unwrap_err();
        assert!(err.contains("--expiry"), "{err}");
    }

    #[test]
    fn a_duration_too_large_to_hold_is_refused_not_wrapped() {
        // 300,000,000,000,000 days is more seconds than a u64 holds: the hand-written parser
        // multiplied and overflowed (a panic in debug builds, a wrapped, short duration in
        // release ones).
        let err = duration("300000000000000d").unwrap_err();
        assert!(err.contains("300000000000000d"), "{err}");
    }

    #[test]
    fn reconnect_delays_are_random_under_an_exponential_ceiling() {
        assert_eq!(reconnect_delay(1), Duration::ZERO);
        for attempts in 2..40 {
            let ceiling = Duration::from_millis(2u64.pow((attempts as u32 - 1).min(12)).min(4_000));
            assert!(reconnect_delay(attempts) <= ceiling, "{attempts}");
        }
        let delays: std::collections::HashSet<Duration> =
            (0..20).map(|_| reconnect_delay(30)).collect();
        assert!(
            delays.len() > 1,
            "twenty clients would all come back at once"
        );
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let url = postgres_url("postgres://u:hunter2@db:5432/x").unwrap();
        assert!(!format!("{url:?} {url}").contains("hunter2"));
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
