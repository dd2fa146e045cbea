//! Avatars and server icons on both stores: squared and resized, set through auth, served to
//! anyone for good; what auth refuses leaves nothing stored.

use media::storage::Storage;
use object_store::path::Path;
use serde_json::{Value, json};

use crate::support::World;

/// A 600 by 300 PNG.
fn wide_png() -> Vec<u8> {
    let image = image::DynamicImage::new_rgba8(600, 300);
    let mut out = Vec::new();
    image
        .write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
        .unwrap();
    out
}

impl World {
    /// A `PUT` of `body` to media's `path` as `user`.
    async fn put_image(&self, token: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .http
            .put(self.media.url(path))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .expect("media answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn ann_uploads_an_avatar_and_anyone_sees_it_squared_on_either_store() {
    let (_dir, configs) = super::backends();
    for config in configs {
        let world = World::start(config.clone(), &[]).await;
        let ann = world.sign_up("ann").await;
        let (status, me) = world
            .put_image(&ann.token, "/api/v1/users/@me/avatar", wide_png())
            .await;
        assert_eq!(status, 200, "{:?}: {me}", config.backend);
        let url = me["avatar_url"]
            .as_str()
            .expect("the avatar is set")
            .to_owned();
        let path = url::Url::parse(&url).unwrap().path().to_owned();
        assert!(path.starts_with(&format!("/avatars/{}/", ann.id)), "{url}");

        // Anyone, without a token, for good.
        let response = world.http.get(world.media.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "image/png");
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        let served = image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
        assert_eq!((served.width(), served.height()), (256, 256));
        let (status, profile) = world
            .auth_call(
                reqwest::Method::GET,
                "/api/v1/users/@me",
                Some(&ann.token),
                json!(null),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(profile["avatar_url"], url);
    }
}

#[tokio::test]
async fn bad_images_and_icons_of_others_servers_are_refused_and_nothing_is_stored() {
    let (_dir, configs) = super::backends();
    let config = configs[0].clone();
    let world = World::start(config.clone(), &[]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    for bad in [Vec::new(), b"not an image at all".to_vec()] {
        let (status, body) = world
            .put_image(&ann.token, "/api/v1/users/@me/avatar", bad)
            .await;
        assert_eq!(status, 400, "{body}");
    }
    let (status, body) = world
        .put_image(
            &ann.token,
            "/api/v1/users/@me/avatar",
            vec![0; 10 * 1024 * 1024 + 1],
        )
        .await;
    assert_eq!(status, 413, "{body}");
    let (status, _) = world
        .put_image("not a token", "/api/v1/users/@me/avatar", wide_png())
        .await;
    assert_eq!(status, 401);

    let (status, guild) = world
        .auth_call(
            reqwest::Method::POST,
            "/api/v1/guilds",
            Some(&ann.token),
            json!({"name": "club"}),
        )
        .await;
    assert_eq!(status, 201, "{guild}");
    let id = guild["id"].as_str().unwrap();
    let icon_path = format!("/api/v1/guilds/{id}/icon");
    let (status, body) = world.put_image(&bob.token, &icon_path, wide_png()).await;
    assert!(status == 403 || status == 404, "{status}: {body}");
    let storage = Storage::open(&config).unwrap();
    let stored = storage
        .delete_under(&Path::from_iter(["icons", id]), None)
        .await
        .unwrap();
    assert_eq!(stored, 0, "a refused icon was kept");
    let (status, body) = world.put_image(&ann.token, &icon_path, wide_png()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["icon"]
            .as_str()
            .unwrap()
            .contains(&format!("/icons/{id}/")),
        "{body}"
    );
}
