//! The service itself: it starts on either store and says so on `/readyz`.

use media::{Config, Media};

#[tokio::test]
async fn the_service_is_ready_on_either_store() {
    let (_dir, configs) = super::backends();
    for storage in configs {
        let mut config: Config = kit::config::try_parse_from([
            "media",
            "--http-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .expect("the defaults parse");
        config.storage = storage;
        let media = testkit::spawn(Media::build(config).await.expect("media starts"));
        let report = testkit::wait_ready(&media).await;
        assert!(report.to_string().contains("storage"), "{report}");
        media.stop().await;
    }
}
