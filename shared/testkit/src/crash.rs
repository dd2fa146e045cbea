//! A service a test can crash: it runs on a tokio runtime of its own, and [`Crashable::crash`]
//! drops that runtime at once. Every task of the service stops at its next await and every socket
//! it holds closes, and none of its shutdown code runs (no drain, no goodbye, nothing flushed or
//! acknowledged), which is what a SIGKILL does to a process, without building the service as one.

use std::time::Duration;

/// A service on a runtime of its own; crashed when dropped.
pub struct Crashable {
    pub port: u16,
    pub metrics_port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Crashable {
    /// Builds the service on a new runtime (one worker thread) and runs it there. Waits until it
    /// is built and listening; `/readyz` is the caller's to wait for.
    pub async fn start<S, F>(build: F) -> Self
    where
        F: Future<Output = S> + Send + 'static,
        S: kit::lifecycle::Service + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("crashable")
            .enable_all()
            .build()
            .expect("a runtime for the service");
        let (port, metrics_port) = runtime
            .spawn(async move {
                let service = build.await;
                let ports = (service.port(), service.metrics_port());
                let shutdown = kit::lifecycle::Shutdown::new();
                tokio::spawn(async move {
                    if let Err(e) = service.run_until_stopped(shutdown).await {
                        panic!("service failed: {e}");
                    }
                });
                ports
            })
            .await
            .expect("the service builds");
        Self {
            port,
            metrics_port,
            runtime: Some(runtime),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Drops the service's runtime: everything it was doing stops where it was.
    pub fn crash(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Polls `/readyz` until it answers 200 (within 30 s).
    pub async fn wait_ready(&self) {
        let url = self.url("/readyz");
        super::eventually(
            "the service to report ready",
            Duration::from_secs(30),
            || async { (reqwest::get(&url).await.ok()?.status() == 200).then_some(()) },
        )
        .await;
    }
}

impl Drop for Crashable {
    fn drop(&mut self) {
        self.crash();
    }
}
