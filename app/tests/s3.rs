//! Photos in an S3 bucket (a real S3 API server, moto, on loopback): the
//! upload lands as a content-addressed object, is served back by streaming,
//! and `verify` notices when it disappears.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use axum::http::StatusCode;
use common::postgres::free_port;
use common::procs::{ChildGuard, wait_for_port};
use common::{Backend, TestApp, png};
use fieldbook::auth::Role;
use fieldbook::config::S3Config;

const INSTALL: &str = "pip install 'moto[server]'";

fn moto_command(port: u16) -> Command {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("moto_server").is_file()))
        .unwrap_or(false);
    if !on_path {
        panic!("the S3 test needs an S3 API server: {INSTALL}");
    }
    let mut c = Command::new("moto_server");
    c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_are_stored_in_and_served_from_s3() {
    let port = free_port();
    let mut server = ChildGuard::spawn(
        moto_command(port)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "s3 service",
    );
    wait_for_port(port, &mut server, "moto_server", Duration::from_secs(90)).await;
    let s3 = S3Config {
        bucket: "fieldbook-photos".into(),
        prefix: "prod/photos".into(),
        region: "us-east-1".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        path_style: true,
        access_key_id: Some("test-access-key".into()),
        secret_access_key: Some("test-secret-key".into()),
    };
    let app = TestApp::with_config(Backend::Sqlite, |c| c.photo_s3 = Some(s3.clone())).await;
    let client = {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(format!("http://127.0.0.1:{port}"))
                .force_path_style(true)
                .credentials_provider(Credentials::new(
                    "test-access-key",
                    "test-secret-key",
                    None,
                    None,
                    "test",
                ))
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
    user.post_form("/fields", &[("name", "North")]).await;
    let fid: i64 = sqlx::Row::get(
        &sqlx::query("SELECT id FROM fields")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap(),
        "id",
    );
    user.post_form(
        "/crops",
        &[("field_id", &fid.to_string()), ("name", "Tomato")],
    )
    .await;
    let cid: i64 = sqlx::Row::get(
        &sqlx::query("SELECT id FROM crops")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap(),
        "id",
    );
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
