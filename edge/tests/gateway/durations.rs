//! Recordings in messages: ann sends a voice message (Ogg Opus, two and a half seconds), and once
//! media has read its headers bob sees its duration arrive as MESSAGE_UPDATE; history has it
//! from then on. A file whose headers say nothing gets none, and is still delivered.

use serde_json::json;

use crate::attachments::{Files, named};
use crate::previews::update_of;
use crate::support::Client;

/// Made by media/tests/fixtures/make.sh: 2.5 s of a tone, Opus in Ogg, 2 KB.
const VOICE: &[u8] = include_bytes!("../../../media/tests/fixtures/voice.ogg");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_sees_the_duration_of_anns_voice_message_arrive_and_history_keeps_it() {
    let files = Files::start().await;
    let world = &files.world;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let channel = world.channel(&ann, "voices", &[&bob]).await;
    let mut bob_socket = Client::connect(&world.gateway(0), &bob).await;

    // A file of the sniffed type whose headers are cut short comes first: it is delivered as
    // sent, and gets no duration (so no update of its own).
    let name = files
        .upload(&ann, channel, "cut.ogg", &VOICE[..VOICE.len() / 4])
        .await;
    let (status, cut) = files
        .post(
            &ann,
            channel,
            json!({"content": "cut", "attachments": named(&name, "cut.ogg")}),
        )
        .await;
    assert_eq!(status, 200, "{cut}");

    let name = files.upload(&ann, channel, "voice.ogg", VOICE).await;
    let (status, sent) = files
        .post(
            &ann,
            channel,
            json!({"content": "", "attachments": named(&name, "voice.ogg")}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let file = &sent["attachments"][0];
    assert_eq!(file["content_type"], "audio/opus", "{sent}");
    assert!(
        file.get("duration_secs").is_none(),
        "read by processing, not as it is sent: {sent}"
    );

    let updated = update_of(&mut bob_socket, &sent["id"]).await;
    let seconds = updated["attachments"][0]["duration_secs"]
        .as_f64()
        .unwrap_or_else(|| panic!("a duration: {updated}"));
    assert!((seconds - 2.5).abs() < 0.15, "{seconds} s: {updated}");
    assert!(updated["edited_at"].is_null(), "{updated}");
    assert_eq!(
        files
            .fetch(updated["attachments"][0]["url"].as_str().unwrap())
            .await,
        (200, VOICE.to_vec()),
        "the file is served as it was sent"
    );

    world.persisted().await;
    let history = files.history(&bob, channel).await;
    let stored = history
        .iter()
        .find(|m| m["id"] == sent["id"])
        .expect("the voice message is in the history");
    assert_eq!(
        stored["attachments"][0]["duration_secs"].as_f64(),
        Some(seconds),
        "{stored}"
    );
    let cut = history
        .iter()
        .find(|m| m["id"] == cut["id"])
        .expect("the cut file's message is in the history");
    assert_eq!(cut["attachments"][0]["filename"], "cut.ogg", "{cut}");
    assert!(
        cut["attachments"][0].get("duration_secs").is_none(),
        "{cut}"
    );
}
