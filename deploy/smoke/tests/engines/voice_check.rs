//! `deploy/voice-check.sh`, the operator's check that a call can connect, run against the local
//! stack: it passes with the stack's own values, and names TURN's credentials when the secret is
//! wrong.

use std::path::PathBuf;
use std::time::Duration;

use smoke::Engines;
use tokio::process::Command;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../voice-check.sh")
}

/// Runs the check with `secret`; its exit status and output.
async fn check(secret: &str) -> (Option<i32>, String) {
    let engines = Engines::get();
    let run = Command::new(script())
        .args(["--livekit", &engines.livekit.url])
        .args(["--turn", &engines.turn.url])
        .args(["--turn-secret", secret])
        .env_remove("NATTER_TURN_SECRET")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the check finishes within 3 minutes")
        .expect("run deploy/voice-check.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[tokio::test]
async fn the_voice_check_passes_against_the_local_stack() {
    let turn = Engines::get().turn;
    let (status, output) = check(turn.secret.expose()).await;
    assert_eq!(status, Some(0), "{output}");
    assert!(output.contains("ok    signalling answers"), "{output}");
    assert!(output.contains("ok    TURN over udp"), "{output}");
    assert!(output.contains("ok    TURN over tcp"), "{output}");
    assert!(output.contains("a call can connect from here"), "{output}");
}

#[tokio::test]
async fn the_voice_check_names_turns_credentials_when_the_secret_is_wrong() {
    let (status, output) = check("not-the-shared-secret").await;
    assert_eq!(status, Some(2), "both TURN checks fail:\n{output}");
    assert!(output.contains("ok    signalling answers"), "{output}");
    assert!(
        output.contains("FAIL  TURN over udp: the allocation was refused (wrong credentials?)"),
        "{output}"
    );
    assert!(output.contains("static-auth-secret"), "{output}");
}
