//! The service itself: it starts on either store and says so on `/readyz`.

use media::Media;

#[tokio::test]
async fn the_service_is_ready_on_either_store_once_its_consumer_is_made() {
    let (_dir, configs) = super::backends();
    let nats = async_nats::connect(testkit::Stack::get().nats_url.as_str())
        .await
        .expect("NATS reachable");
    let js = async_nats::jetstream::new(nats);
    for storage in configs {
        // Readiness asks only the store and NATS: auth need not run, nor anything that makes
        // the chat stream (media makes it).
        let prefix = testkit::fresh_prefix();
        let config =
            crate::support::media_config("http://127.0.0.1:9", &prefix.to_string(), storage, &[]);
        let media = testkit::spawn(Media::build(config).await.expect("media starts"));
        let report = testkit::wait_ready(&media).await;
        assert!(report.to_string().contains("storage"), "{report}");
        assert!(report.to_string().contains("chat stream"), "{report}");
        // Ready means a message sent now is processed: the durable consumer already holds it.
        let stream = js
            .get_stream(proto::subjects::Subjects::new(prefix).chat_stream_name())
            .await
            .expect("the chat stream made by media");
        stream
            .consumer_info(media::processing::DURABLE)
            .await
            .expect("media's consumer made before it is ready");
        media.stop().await;
    }
}
