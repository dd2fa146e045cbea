//! Sign-in throttling: failed sign-ins slow the guesser down with growing waits, and nobody can
//! use them to keep an account's owner out.
//!
//! A hard lock ("five failures lock the account for 15 minutes") is a weapon: anyone who knows a
//! username can lock its owner out, forever if they keep at it. So nothing here ever refuses the
//! owner for long:
//!
//! - **Per account and address**: each pair has its own back-off. After `free` failures an attempt
//!   must wait `first`, doubling with each failure up to `cap`. A guesser at one address slows
//!   only themselves.
//! - **Per address**, across accounts: the same back-off against one address trying many
//!   accounts (password spraying).
//! - **Per account**, across addresses: against many addresses guessing one account. Its back-off
//!   never gates the account as a whole (the attacker would win every race for the one slot the
//!   wait leaves open, and the owner would never get in). It gives every address its own turn
//!   instead: while an account is under pressure, an address that has not tried it must first
//!   wait the account's current delay, and after each attempt waits again. An attacker with many
//!   addresses gets one guess per address per delay; the owner, at any address, gets their turn
//!   after at most `cap` whatever anyone else does.
//! - **Known addresses**: an address that has signed in to an account (or signed it up) is
//!   trusted for that account for `trust_for`. A trusted pair ignores the account's and the
//!   address's back-off and is slowed only by its own failures, so the owner at their usual
//!   address gets in at once even when an attacker shares it (behind one NAT) and sprays other
//!   accounts, or guesses theirs from elsewhere.
//!
//! Failures are forgotten one per `cap` of quiet, so a guesser who keeps trying at the slowest
//! pace stays at it, and an account or address that is left alone returns to normal.
//!
//! Attempts in flight count as failures until they end (a success takes its count back), so a
//! burst of concurrent requests cannot get more guesses than the free ones. State lives in this
//! process, like the request limits; several auth processes each keep their own.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// `FREE/FIRST..CAP`: `FREE` failures are free, then each attempt waits `FIRST`, doubling with
/// every further failure up to `CAP` (`5/1s..15m`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BackoffSpec {
    pub free: u32,
    pub first: Duration,
    pub cap: Duration,
}

impl BackoffSpec {
    pub fn parse(s: &str) -> Result<Self, String> {
        let shape = || format!("'{s}' is not FREE/FIRST..CAP, like 5/1s..15m");
        let (free, delays) = s.split_once('/').ok_or_else(shape)?;
        let (first, cap) = delays.split_once("..").ok_or_else(shape)?;
        let free = free
            .trim()
            .parse()
            .map_err(|_| format!("'{free}' is not a whole number"))?;
        let first = kit::config::duration(first.trim())?;
        let cap = kit::config::duration(cap.trim())?;
        if first.is_zero() || cap < first {
            return Err(format!(
                "'{s}': the first wait must be above zero and the cap at least the first wait"
            ));
        }
        Ok(Self { free, first, cap })
    }

    /// The wait after `failures` failures.
    pub fn delay(&self, failures: u32) -> Duration {
        let Some(doublings) = failures.checked_sub(self.free) else {
            return Duration::ZERO;
        };
        let factor = 1u32.checked_shl(doublings.min(31)).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.cap)
    }
}

impl fmt::Debug for BackoffSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:?}..{:?}", self.free, self.first, self.cap)
    }
}

/// The back-offs of [`SignInThrottle`].
#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    pub per_pair: BackoffSpec,
    pub per_address: BackoffSpec,
    pub per_account: BackoffSpec,
    /// How long a successful sign-in makes its address trusted for its account.
    pub trust_for: Duration,
}

/// One key's failures, forgotten one per `cap` of quiet.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// When `count` was last brought up to date.
    at: Instant,
    /// No attempt before this.
    until: Instant,
    /// A pair given a turn under pressure that has not come back yet: its `until` is a promise
    /// that later failures elsewhere do not move.
    awaiting_turn: bool,
}

impl Failures {
    fn new(now: Instant) -> Self {
        Self {
            count: 0,
            at: now,
            until: now,
            awaiting_turn: false,
        }
    }

    /// `count` as of `now`, with the quiet time since `at` taken off.
    fn current(&self, now: Instant, spec: &BackoffSpec) -> u32 {
        let forgotten =
            now.saturating_duration_since(self.at).as_nanos() / spec.cap.as_nanos().max(1);
        self.count
            .saturating_sub(u32::try_from(forgotten).unwrap_or(u32::MAX))
    }

    fn add(&mut self, now: Instant, spec: &BackoffSpec) -> u32 {
        self.count = self.current(now, spec).saturating_add(1);
        self.at = now;
        self.count
    }

    fn take_back(&mut self, now: Instant, spec: &BackoffSpec) {
        self.count = self.current(now, spec).saturating_sub(1);
        self.at = now;
    }

    /// Nothing left to remember.
    fn idle(&self, now: Instant, spec: &BackoffSpec) -> bool {
        self.current(now, spec) == 0 && self.until <= now
    }
}

type Pair = (String, IpAddr);

#[derive(Default)]
struct State {
    pairs: HashMap<Pair, Failures>,
    addresses: HashMap<IpAddr, Failures>,
    accounts: HashMap<String, Failures>,
    /// Pairs that signed in, until when they are trusted.
    trusted: HashMap<Pair, Instant>,
}

/// The sign-in throttle (see the module's documentation).
#[derive(Clone)]
pub struct SignInThrottle {
    config: ThrottleConfig,
    state: Arc<Mutex<State>>,
}

/// Why an attempt must wait, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub Duration);

/// An admitted sign-in attempt. It counts as a failure until [`Attempt::succeeded`] takes that
/// back; dropping it without an outcome (our own error) takes it back too.
pub struct Attempt {
    throttle: SignInThrottle,
    pair: Pair,
    trusted: bool,
    outcome: Option<bool>,
}

/// An address as the throttle keys it: IPv6 by its /64, the block one subscriber gets, so one
/// machine cannot be a billion addresses; an IPv4-mapped IPv6 address as the IPv4 it is.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(network.into())
            }
        },
    }
}

impl SignInThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            state: Arc::default(),
        }
    }

    /// Admits an attempt to sign in to `account` from `ip`, or says how long to wait.
    pub fn admit(&self, account: &str, ip: IpAddr) -> Result<Attempt, Wait> {
        let now = Instant::now();
        let config = &self.config;
        let pair: Pair = (account.to_owned(), address_key(ip));
        let mut guard = self.state.lock().expect("never poisoned");
        let state = &mut *guard;
        let trusted = state.trusted.get(&pair).is_some_and(|until| *until > now);

        let mut until = state.pairs.get(&pair).map_or(now, |p| p.until);
        if !trusted {
            if let Some(address) = state.addresses.get(&pair.1) {
                until = until.max(address.until);
            }
            let account_delay = state.accounts.get(account).map_or(Duration::ZERO, |a| {
                config
                    .per_account
                    .delay(a.current(now, &config.per_account))
            });
            if !account_delay.is_zero() {
                match state.pairs.get(&pair) {
                    // An address that has tried waits the account's current delay after its
                    // last attempt.
                    Some(p) if !p.awaiting_turn => until = until.max(p.at + account_delay),
                    Some(_) => {}
                    // A new address waits its turn before its first attempt.
                    None => {
                        let mut turn = Failures::new(now);
                        turn.until = now + account_delay;
                        turn.awaiting_turn = true;
                        state.pairs.insert(pair.clone(), turn);
                        until = until.max(turn.until);
                    }
                }
            }
        }
        if until > now {
            return Err(Wait(until - now));
        }

        let pair_entry = state
            .pairs
            .entry(pair.clone())
            .or_insert_with(|| Failures::new(now));
        let mut wait = config.per_pair.delay(pair_entry.add(now, &config.per_pair));
        if !trusted {
            let address = state
                .addresses
                .entry(pair.1)
                .or_insert_with(|| Failures::new(now));
            let failures = address.add(now, &config.per_address);
            address.until = now + config.per_address.delay(failures);
            let account_entry = state
                .accounts
                .entry(pair.0.clone())
                .or_insert_with(|| Failures::new(now));
            wait = wait.max(
                config
                    .per_account
                    .delay(account_entry.add(now, &config.per_account)),
            );
        }
        if let Some(entry) = state.pairs.get_mut(&pair) {
            entry.until = now + wait;
            entry.awaiting_turn = false;
        }
        drop(guard);
        Ok(Attempt {
            throttle: self.clone(),
            pair,
            trusted,
            outcome: None,
        })
    }

    /// Whether `ip` has signed in to `account` recently: only its own failures slow it down.
    pub fn is_trusted(&self, account: &str, ip: IpAddr) -> bool {
        let now = Instant::now();
        self.state
            .lock()
            .expect("never poisoned")
            .trusted
            .get(&(account.to_owned(), address_key(ip)))
            .is_some_and(|until| *until > now)
    }

    /// Trusts `ip` for `account` after a sign-up (which proves the password as a sign-in does).
    pub fn trust(&self, account: &str, ip: IpAddr) {
        let until = Instant::now() + self.config.trust_for;
        self.state
            .lock()
            .expect("never poisoned")
            .trusted
            .insert((account.to_owned(), address_key(ip)), until);
    }

    /// Forgets what no longer slows anyone down, so memory follows recent failures.
    pub fn retain_recent(&self) {
        let now = Instant::now();
        let config = &self.config;
        let mut state = self.state.lock().expect("never poisoned");
        // A pair is kept while its last attempt could still set its next turn.
        state.pairs.retain(|_, f| {
            !f.idle(now, &config.per_pair)
                || now.saturating_duration_since(f.at) < config.per_account.cap
        });
        state
            .addresses
            .retain(|_, f| !f.idle(now, &config.per_address));
        state
            .accounts
            .retain(|_, f| !f.idle(now, &config.per_account));
        state.trusted.retain(|_, until| *until > now);
    }

    /// Ends an attempt: a success takes back its provisional failures, clears the pair's own
    /// back-off and trusts the pair.
    fn end(&self, attempt: &Attempt, succeeded: bool) {
        let now = Instant::now();
        let config = &self.config;
        let mut state = self.state.lock().expect("never poisoned");
        if !attempt.trusted {
            if let Some(address) = state.addresses.get_mut(&attempt.pair.1) {
                address.take_back(now, &config.per_address);
            }
            if let Some(account) = state.accounts.get_mut(&attempt.pair.0) {
                account.take_back(now, &config.per_account);
            }
        }
        if succeeded {
            state.pairs.remove(&attempt.pair);
            state
                .trusted
                .insert(attempt.pair.clone(), now + config.trust_for);
        } else if let Some(pair) = state.pairs.get_mut(&attempt.pair) {
            pair.take_back(now, &config.per_pair);
        }
    }
}

impl Attempt {
    /// The password was right.
    pub fn succeeded(mut self) {
        self.outcome = Some(true);
    }

    /// The password (or the username) was wrong: the failure stands.
    pub fn failed(mut self) {
        self.outcome = Some(false);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        match self.outcome {
            Some(false) => {}
            Some(true) => self.throttle.end(self, true),
            None => self.throttle.end(self, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> BackoffSpec {
        BackoffSpec::parse(s).unwrap()
    }

    fn throttle() -> SignInThrottle {
        SignInThrottle::new(ThrottleConfig {
            per_pair: spec("3/1s..60s"),
            per_address: spec("10/1s..60s"),
            per_account: spec("5/1s..30s"),
            trust_for: Duration::from_secs(3600),
        })
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    /// Fails once from `ip` if admitted; the wait otherwise.
    fn fail(throttle: &SignInThrottle, account: &str, ip: IpAddr) -> Option<Duration> {
        match throttle.admit(account, ip) {
            Ok(attempt) => {
                attempt.failed();
                None
            }
            Err(Wait(wait)) => Some(wait),
        }
    }

    #[test]
    fn a_backoff_is_free_then_doubles_up_to_its_cap() {
        let s = spec("3/1s..60s");
        let secs: Vec<u64> = (0..12).map(|n| s.delay(n).as_secs()).collect();
        assert_eq!(secs, [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(s.delay(u32::MAX), Duration::from_secs(60));
        for bad in ["5", "5/1s", "x/1s..2s", "5/0s..1s", "5/2s..1s", "5/1..2s"] {
            assert!(BackoffSpec::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_address_guessing_one_account_waits_longer_after_each_failure() {
        let t = throttle();
        for _ in 0..3 {
            assert_eq!(fail(&t, "ann", ip(1)), None, "three free failures");
        }
        let mut waits = Vec::new();
        for _ in 0..4 {
            let wait = fail(&t, "ann", ip(1)).expect("must wait now");
            waits.push(wait.as_secs());
            tokio::time::advance(wait).await;
            assert_eq!(fail(&t, "ann", ip(1)), None, "admitted after the wait");
        }
        assert_eq!(waits, [1, 2, 4, 8]);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_from_other_addresses_never_delay_the_owner_at_a_known_address() {
        let t = throttle();
        t.admit("ann", ip(1)).unwrap().succeeded();
        for attacker in 2..40 {
            let _ = fail(&t, "ann", ip(attacker));
            let _ = fail(&t, "bob", ip(attacker));
        }
        assert!(t.admit("ann", ip(1)).is_ok(), "the owner's usual address");
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_address_waits_one_turn_under_pressure_however_hard_others_keep_trying() {
        let t = throttle();
        // Attackers at many addresses keep the account under pressure.
        for attacker in 2..20 {
            let _ = fail(&t, "ann", ip(attacker));
        }
        let wait = match t.admit("ann", ip(99)) {
            Err(Wait(wait)) => wait,
            Ok(_) => panic!("a new address under pressure waits its turn"),
        };
        assert!(wait <= Duration::from_secs(30), "at most the cap: {wait:?}");
        // While the owner waits, the attackers try again at every moment.
        let step = Duration::from_millis(250);
        let mut waited = Duration::ZERO;
        while waited < wait {
            tokio::time::advance(step).await;
            waited += step;
            for attacker in 2..20 {
                let _ = fail(&t, "ann", ip(attacker));
            }
        }
        let attempt = t.admit("ann", ip(99)).expect("the owner's turn came");
        attempt.succeeded();
        assert!(
            t.admit("ann", ip(99)).is_ok(),
            "and the address is known now"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn under_pressure_each_address_gets_one_guess_per_account_delay() {
        let t = throttle();
        for attacker in 1..=5 {
            assert_eq!(fail(&t, "ann", ip(attacker)), None);
        }
        // Five failures: the account's delay is 1 s, so new addresses wait before guessing.
        let admitted = (6..=50)
            .filter(|&a| fail(&t, "ann", ip(a)).is_none())
            .count();
        assert_eq!(admitted, 0, "new addresses must wait their turn");
        // The old addresses wait too: their last attempt set their next turn.
        assert!(fail(&t, "ann", ip(1)).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn one_address_spraying_many_accounts_is_slowed() {
        let t = throttle();
        let checked = (0..100)
            .filter(|n| fail(&t, &format!("user{n}"), ip(7)).is_none())
            .count();
        assert_eq!(checked, 10, "the address's free failures, then it waits");
        let wait = fail(&t, "someone", ip(7)).unwrap();
        assert_eq!(wait, Duration::from_secs(1));
        // Others at other addresses are not slowed by it.
        assert_eq!(fail(&t, "user1", ip(8)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_concurrent_attempts_gets_no_more_than_the_free_guesses() {
        let t = throttle();
        let in_flight: Vec<Attempt> = (0..20).filter_map(|_| t.admit("ann", ip(1)).ok()).collect();
        assert_eq!(in_flight.len(), 3);
        for attempt in in_flight {
            attempt.failed();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_clears_the_pairs_backoff_and_an_abandoned_attempt_counts_for_nothing() {
        let t = throttle();
        for _ in 0..3 {
            fail(&t, "ann", ip(1));
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        t.admit("ann", ip(1)).unwrap().succeeded();
        for _ in 0..3 {
            assert_eq!(fail(&t, "ann", ip(1)), None, "a fresh start");
        }
        let t = throttle();
        for _ in 0..10 {
            drop(t.admit("bob", ip(2)).unwrap());
        }
        assert!(t.admit("bob", ip(2)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_forgotten_one_per_cap_of_quiet() {
        let t = throttle();
        for _ in 0..3 {
            fail(&t, "ann", ip(1));
        }
        assert!(fail(&t, "ann", ip(1)).is_some());
        tokio::time::advance(Duration::from_secs(60)).await;
        // One failure forgotten: one free attempt, then the wait is back.
        assert_eq!(fail(&t, "ann", ip(1)), None);
        assert!(fail(&t, "ann", ip(1)).is_some());
        tokio::time::advance(Duration::from_secs(600)).await;
        t.retain_recent();
        assert!(t.state.lock().unwrap().pairs.is_empty(), "all forgotten");
    }

    #[test]
    fn an_ipv6_address_is_throttled_by_its_64_bit_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
