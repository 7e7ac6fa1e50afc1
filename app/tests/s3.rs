//! Photos in an S3 bucket (a real S3 API server, moto, on loopback): the
//! upload lands as a content-addressed object, is served back by streaming,
//! and `verify` notices when it disappears.

use axum::http::StatusCode;
use fieldbook::auth::Role;
use fieldbook::config::S3Config;
use tend_testkit::fieldbook::{Backend, TestApp, png};
use tend_testkit::{S3_KEY_ID, S3_SECRET, S3Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_are_stored_in_and_served_from_s3() {
    let server = S3Server::start();
    let s3 = S3Config {
        bucket: "fieldbook-photos".into(),
        prefix: "prod/photos".into(),
        region: "us-east-1".into(),
        endpoint: Some(server.endpoint()),
        path_style: true,
        access_key_id: Some(S3_KEY_ID.into()),
        secret_access_key: Some(S3_SECRET.into()),
    };
    let app = TestApp::with_config(Backend::Sqlite, |c| c.photo_s3 = Some(s3.clone())).await;
    let client = {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(server.endpoint())
                .force_path_style(true)
                .credentials_provider(Credentials::new(S3_KEY_ID, S3_SECRET, None, None, "test"))
                .http_client(
                    aws_smithy_http_client::Builder::new()
                        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                        ))
                        .build_https(),
                )
                .build(),
        )
    };
    client
        .create_bucket()
        .bucket("fieldbook-photos")
        .send()
        .await
        .expect("create bucket");

    let mut user = app.user("farmer@example.com", Role::User).await;
    let cid = app.field_with_crop(&mut user).await;
    let image = png(77);
    for _ in 0..2 {
        let r = user
            .post_multipart(
                "/records",
                &[
                    ("crop_id", &cid.to_string()),
                    ("day", "2024-05-01"),
                    ("kind", "harvest"),
                ],
                Some(("photo", "p.png", &image)),
                true,
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    }
    let key: String = sqlx::Row::get(
        &sqlx::query("SELECT object_key FROM photos ORDER BY id LIMIT 1")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap(),
        "object_key",
    );
    let listed = client
        .list_objects_v2()
        .bucket("fieldbook-photos")
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    assert_eq!(
        keys,
        vec![format!("prod/photos/{key}")],
        "identical photos are stored once"
    );
    // Nothing left on local disk but the staging directory.
    assert!(!app.dir.path().join("photos").join(&key).exists());
    assert_eq!(
        std::fs::read_dir(app.dir.path().join("photos").join("tmp"))
            .unwrap()
            .count(),
        0
    );

    let pid: i64 = sqlx::Row::get(
        &sqlx::query("SELECT id FROM photos ORDER BY id LIMIT 1")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap(),
        "id",
    );
    let served = user.get(&format!("/photos/{pid}")).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.bytes, image);

    let v = app.ops("GET", "/ops/v1/verify", None).await.json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["photos"]["referenced"], 2);
    client
        .delete_object()
        .bucket("fieldbook-photos")
        .key(format!("prod/photos/{key}"))
        .send()
        .await
        .unwrap();
    let v = app.ops("GET", "/ops/v1/verify", None).await.json();
    assert_eq!(v["ok"], false);
    assert_eq!(v["photos"]["missing"].as_array().unwrap().len(), 2);
    assert_eq!(
        user.get(&format!("/photos/{pid}")).await.status,
        StatusCode::NOT_FOUND
    );
}
