//! Link previews' fetcher against real sockets (a page cut off after `unfurl::MAX_PAGE` bytes, a
//! slow one given up at the time allowed): a fixture site on loopback that the test-only
//! allowance lets through, and a second server that only counts requests: every address the
//! guard refuses must leave its count at zero.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Redirect;
use axum::routing::get;
use media::unfurl::guard::Refused;
use media::unfurl::{Settings, UnfurlError, Unfurler};
use proto::api::embeds::EmbedType;
use url::Url;

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width, height, image::Rgb([10, 120, 200]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
        .expect("a PNG");
    out
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The server that only counts.
async fn counter() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let app = Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            (
                [(header::CONTENT_TYPE, "text/html")],
                r#"<meta property="og:title" content="internal secret">"#,
            )
        }
    });
    (serve(app).await, hits)
}

/// The fixture site; its redirects lead to `elsewhere` (the counter).
async fn site(elsewhere: SocketAddr) -> SocketAddr {
    let page = r#"<html><head><meta property="og:title" content="Fixture">
        <meta property="og:type" content="article">
        <meta property="og:image" content="/big.png"></head></html>"#;
    let big = png(1600, 900);
    let head = r#"<html><head><meta property="og:title" content="Endless"></head><body>"#;
    let app = Router::new()
        .route(
            "/page",
            get(move || async move { ([(header::CONTENT_TYPE, "text/html")], page) }),
        )
        .route(
            "/big.png",
            get(move || {
                let big = big.clone();
                async move { ([(header::CONTENT_TYPE, "image/png")], big) }
            }),
        )
        .route(
            "/photo",
            get(|| async { ([(header::CONTENT_TYPE, "image/png")], png(30, 20)) }),
        )
        .route(
            "/to-private",
            get(move || async move { Redirect::temporary(&format!("http://{elsewhere}/inside")) }),
        )
        .route(
            "/to-localhost",
            get(move || async move {
                Redirect::temporary(&format!("http://localhost:{}/inside", elsewhere.port()))
            }),
        )
        .route(
            "/to-metadata",
            get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }),
        )
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .route(
            "/endless",
            get(move || async move {
                // The head, then filler for ever: the reader must stop on its own.
                let filler = futures::stream::repeat_with(|| {
                    Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 64 * 1024]))
                });
                let body = futures::stream::once(async move {
                    Ok::<_, std::io::Error>(bytes::Bytes::from_static(head.as_bytes()))
                });
                use futures::StreamExt;
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    Body::from_stream(body.chain(filler)),
                )
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(120)).await;
                (StatusCode::OK, "too late")
            }),
        )
        .route(
            "/file.zip",
            get(|| async { ([(header::CONTENT_TYPE, "application/zip")], "PK") }),
        );
    serve(app).await
}

struct Fixture {
    site: SocketAddr,
    private: SocketAddr,
    hits: Arc<AtomicUsize>,
    unfurler: Unfurler,
}

impl Fixture {
    async fn start(timeout: Duration) -> Self {
        let (private, hits) = counter().await;
        let site = site(private).await;
        let unfurler = Unfurler::new(&Settings {
            timeout,
            allow: Some(site),
        })
        .expect("a client");
        Self {
            site,
            private,
            hits,
            unfurler,
        }
    }

    async fn unfurl(&self, url: &str) -> Result<media::unfurl::Unfurled, UnfurlError> {
        self.unfurler.unfurl(&Url::parse(url).expect("a URL")).await
    }
}

/// Whether the guard refused it (directly, or as the reason a connection was not made).
fn refused(result: &Result<media::unfurl::Unfurled, UnfurlError>) -> bool {
    match result {
        Err(UnfurlError::Refused(_)) => true,
        Err(UnfurlError::Http(e)) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
            while let Some(e) = source {
                if e.downcast_ref::<Refused>().is_some() {
                    return true;
                }
                source = e.source();
            }
            false
        }
        _ => false,
    }
}

#[tokio::test]
async fn a_page_gives_its_title_kind_and_a_shrunk_copy_of_its_image() {
    let fixture = Fixture::start(Duration::from_secs(20)).await;
    let found = fixture
        .unfurl(&format!("http://{}/page", fixture.site))
        .await
        .expect("a preview");
    assert_eq!(found.embed.title.as_deref(), Some("Fixture"));
    assert_eq!(found.embed.kind, EmbedType::Article);
    assert_eq!(
        found.embed.provider.as_ref().map(|p| p.name.as_str()),
        Some("127.0.0.1")
    );
    let thumbnail = found.thumbnail.expect("its image");
    assert_eq!((thumbnail.width, thumbnail.height), (400, 225));
    let copy = image::load_from_memory(&thumbnail.bytes).expect("an image");
    assert_eq!((copy.width(), copy.height()), (400, 225));

    // A link straight to an image is previewed as the image.
    let photo = fixture
        .unfurl(&format!("http://{}/photo", fixture.site))
        .await
        .expect("a preview");
    assert_eq!(photo.embed.kind, EmbedType::Image);
    assert_eq!(photo.thumbnail.map(|t| (t.width, t.height)), Some((30, 20)));

    // Anything else gets none.
    assert!(matches!(
        fixture
            .unfurl(&format!("http://{}/file.zip", fixture.site))
            .await,
        Err(UnfurlError::Type(_))
    ));
}

#[tokio::test]
async fn private_loopback_and_link_local_addresses_are_refused_and_never_contacted() {
    let fixture = Fixture::start(Duration::from_secs(20)).await;
    let port = fixture.private.port();
    for url in [
        // The counter itself: loopback, and not the allowed address.
        format!("http://{}/", fixture.private),
        format!("http://127.0.0.2:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://2130706433:{port}/"),
        // A name that resolves to loopback.
        format!("http://localhost:{port}/"),
        "http://10.0.0.1/".to_owned(),
        "http://192.168.1.1/".to_owned(),
        "http://100.64.0.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00::1]/".to_owned(),
        // Redirects from the allowed site to each of those kinds.
        format!("http://{}/to-private", fixture.site),
        format!("http://{}/to-localhost", fixture.site),
        format!("http://{}/to-metadata", fixture.site),
    ] {
        let result = fixture.unfurl(&url).await;
        assert!(refused(&result), "{url}: {result:?}");
    }
    assert!(matches!(
        fixture
            .unfurl(&format!("http://{}/loop", fixture.site))
            .await,
        Err(UnfurlError::TooManyRedirects)
    ));
    for url in ["ftp://127.0.0.1/", "file:///etc/passwd"] {
        assert!(matches!(
            fixture.unfurl(url).await,
            Err(UnfurlError::Refused(Refused::Scheme))
        ));
    }
    assert_eq!(
        fixture.hits.load(Ordering::SeqCst),
        0,
        "a refused address was contacted"
    );
}

#[tokio::test]
async fn an_endless_page_is_cut_off_and_a_slow_one_given_up() {
    let fixture = Fixture::start(Duration::from_secs(3)).await;
    // Cut off after MAX_PAGE bytes: what the head said still makes the preview.
    let endless = fixture
        .unfurl(&format!("http://{}/endless", fixture.site))
        .await
        .expect("a preview of what was read");
    assert_eq!(endless.embed.title.as_deref(), Some("Endless"));

    // Given up at the time allowed, not when the server would answer (two minutes on).
    assert!(matches!(
        fixture
            .unfurl(&format!("http://{}/slow", fixture.site))
            .await,
        Err(UnfurlError::Timeout)
    ));
}
