//! The service itself: it starts on either store and says so on `/readyz`.

use media::Media;

#[tokio::test]
async fn the_service_is_ready_on_either_store() {
    let (_dir, configs) = super::backends();
    for storage in configs {
        // Readiness asks only the store: auth need not run.
        let config = crate::support::media_config(
            "http://127.0.0.1:9",
            &testkit::fresh_prefix().to_string(),
            storage,
            &[],
        );
        let media = testkit::spawn(Media::build(config).await.expect("media starts"));
        let report = testkit::wait_ready(&media).await;
        assert!(report.to_string().contains("storage"), "{report}");
        media.stop().await;
    }
}
