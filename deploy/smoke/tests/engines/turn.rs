//! coturn with the TURN REST scheme: a credential is `expiry:name` and the base64 HMAC-SHA1 of
//! it under the shared secret, so Natter hands out credentials that stop working by themselves.
//! `turnutils_uclient` (Debian's coturn package) allocates relays with them and sends through.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use smoke::Engines;
use tokio::process::Command;

/// The TURN REST credential for `name`, valid until `expiry` (seconds since the epoch).
fn credential(secret: &str, expiry: u64, name: &str) -> (String, String) {
    let username = format!("{expiry}:{name}");
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Two clients allocate relays on the server and send 3 messages each to the other through
/// them (`-y`). Returns whether it succeeded, and its output.
async fn relay_round_trip(username: &str, password: &str) -> (bool, String) {
    let (host, port) = Engines::get().turn.host_port();
    let run = Command::new("turnutils_uclient")
        .args(["-y", "-n", "3", "-m", "1", "-p", &port.to_string()])
        .args(["-u", username, "-w", password, &host])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("turnutils_uclient finishes within 2 minutes")
        .expect("run turnutils_uclient (Debian package coturn)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// `tot_send_msgs=N, tot_recv_msgs=M` from uclient's closing lines.
fn sent_and_received(output: &str) -> Option<(u64, u64)> {
    let line = output
        .lines()
        .rev()
        .find(|l| l.contains("tot_send_msgs=") && !l.contains("msz="))?;
    let number = |key: &str| -> Option<u64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some((number("tot_send_msgs=")?, number("tot_recv_msgs=")?))
}

#[tokio::test]
async fn time_limited_credentials_allocate_relays_that_carry_data() {
    let turn = Engines::get().turn;
    let (username, password) = credential(turn.secret.expose(), now() + 600, "smoke");

    let (ok, output) = relay_round_trip(&username, &password).await;
    assert!(
        ok,
        "the allocation with a fresh credential works:\n{output}"
    );
    let (sent, received) =
        sent_and_received(&output).unwrap_or_else(|| panic!("no totals in:\n{output}"));
    assert!(sent > 0, "messages were sent:\n{output}");
    assert_eq!(sent, received, "every message came back through the relays");
}

#[tokio::test]
async fn expired_or_forged_credentials_are_refused() {
    let turn = Engines::get().turn;

    let (username, password) = credential(turn.secret.expose(), now() - 60, "smoke");
    let (ok, output) = relay_round_trip(&username, &password).await;
    assert!(!ok, "an expired credential is refused:\n{output}");
    assert!(output.contains("Cannot complete Allocation"), "{output}");

    let (username, password) = credential("not-the-shared-secret", now() + 600, "smoke");
    let (ok, output) = relay_round_trip(&username, &password).await;
    assert!(
        !ok,
        "a credential from another secret is refused:\n{output}"
    );
    assert!(output.contains("Cannot complete Allocation"), "{output}");
}

#[test]
fn a_credential_follows_the_turn_rest_scheme() {
    let (username, password) = credential("north", 1_334_100_000, "alice");
    assert_eq!(username, "1334100000:alice");
    // printf '1334100000:alice' | openssl dgst -sha1 -hmac north -binary | base64
    assert_eq!(password, "iGebeAvo60yEXimkIT8D8VJsIyw=");
}
