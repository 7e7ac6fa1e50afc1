//! Fields, crops and records with photos: listing, search, paging, bad input, privacy.

use axum::http::StatusCode;
use fieldbook::auth::Role;

use tend_testkit::fieldbook::{Backend, TestApp, png};
use tend_testkit::on_both_backends;

on_both_backends!(
    records_with_photos_are_listed_searched_and_paginated,
    bad_record_input_names_the_field_and_stores_nothing,
    users_cannot_see_each_others_records_or_photos,
);

async fn setup_crop(c: &mut tend_testkit::fieldbook::Client, field: &str, crop: &str) -> i64 {
    let r = c
        .post_form("/fields", &[("name", field), ("location", "by the river")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let page = c.get("/fields").await;
    let marker = format!(">{field}</option>");
    let before = &page.text[..page.text.find(&marker).expect("field in select")];
    let field_id = before
        .rsplit("value=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = c
        .post_form(
            "/crops",
            &[
                ("field_id", &field_id),
                ("name", crop),
                ("variety", "Momotaro"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let page = c.get("/records").await;
    let marker = format!(">{crop} (Momotaro) — {field}</option>");
    let before = &page.text[..page.text.find(&marker).expect("crop in select")];
    before
        .rsplit("value=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

async fn records_with_photos_are_listed_searched_and_paginated(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.user("farmer@example.com", Role::User).await;
    let tomato = setup_crop(&mut c, "North", "Tomato").await.to_string();
    let rice = setup_crop(&mut c, "South", "Rice").await.to_string();
    let image = png(1);
    let r = c
        .post_multipart(
            "/records",
            &[
                ("crop_id", &tomato),
                ("day", "2024-05-01"),
                ("kind", "sowing"),
                ("quantity", "2.5"),
                ("unit", "kg"),
                ("notes", "first seeds"),
            ],
            Some(("photo", "seed.png", &image)),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    for day in 1..=25 {
        let d = format!("2024-06-{day:02}");
        let r = c
            .post_multipart(
                "/records",
                &[
                    ("crop_id", &rice),
                    ("day", &d),
                    ("kind", "watering"),
                    ("notes", ""),
                ],
                None,
                true,
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    }
    let page = c.get("/records?crop=tomato").await;
    assert!(
        page.text.contains("first seeds") && page.text.contains("2.5 kg"),
        "{}",
        page.text
    );
    assert!(!page.text.contains("2024-06-01"));
    let photo_path = page
        .text
        .split("src=\"/photos/")
        .nth(1)
        .expect("photo link")
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let photo = c.get(&format!("/photos/{photo_path}")).await;
    assert_eq!(photo.status, StatusCode::OK);
    assert_eq!(photo.bytes, image);
    assert_eq!(photo.headers["content-type"], "image/png");
    // Stored content-addressed on disk.
    let key = sqlx::query("SELECT object_key FROM photos")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let key: String = sqlx::Row::get(&key, "object_key");
    assert_eq!(
        std::fs::read(app.dir.path().join("photos").join(&key)).unwrap(),
        image
    );
    // Date range.
    let page = c
        .get("/records?crop=rice&from=2024-06-10&to=2024-06-12")
        .await;
    assert_eq!(
        page.text.matches("<td>2024-06-1").count(),
        3,
        "{}",
        page.text
    );
    // Pagination: 26 records, 20 per page.
    let first = c.get("/records").await;
    assert_eq!(
        first.text.matches("data-kind=\"watering\"").count()
            + first.text.matches("data-kind=\"sowing\"").count(),
        20
    );
    assert!(first.text.contains("rel=\"next\""));
    let second = c.get("/records?page=2").await;
    assert!(
        second.text.contains("first seeds"),
        "oldest record on page 2"
    );
    assert!(!second.text.contains("rel=\"next\""));
    // Bad search input names the field.
    let bad = c.get("/records?from=yesterday").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("from"));
    // Delete logs the before state.
    let id_row = sqlx::query("SELECT id FROM records ORDER BY id LIMIT 1")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let id: i64 = sqlx::Row::get(&id_row, "id");
    let r = c.post_form(&format!("/records/{id}/delete"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(app.log_count("operation", "record.delete").await, 1);
    assert_eq!(app.log_count("operation", "record.create").await, 26);
}

async fn bad_record_input_names_the_field_and_stores_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.user("farmer@example.com", Role::User).await;
    let crop = setup_crop(&mut c, "North", "Tomato").await.to_string();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("crop_id", &crop),
                ("day", "2024-13-01"),
                ("kind", "sowing"),
            ],
            "day",
        ),
        (
            &[
                ("crop_id", &crop),
                ("day", "2024-05-01"),
                ("kind", "dancing"),
            ],
            "kind",
        ),
        (
            &[
                ("crop_id", &crop),
                ("day", "2024-05-01"),
                ("kind", "harvest"),
                ("quantity", "-3"),
            ],
            "quantity",
        ),
        (
            &[
                ("crop_id", "abc"),
                ("day", "2024-05-01"),
                ("kind", "harvest"),
            ],
            "crop_id",
        ),
        (
            &[
                ("crop_id", "99999"),
                ("day", "2024-05-01"),
                ("kind", "harvest"),
            ],
            "crop_id",
        ),
    ];
    for (fields, name) in cases {
        let r = c
            .post_multipart("/records", fields, Some(("photo", "p.png", &png(2))), true)
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            r.text
        );
        assert!(r.text.contains(name), "{name}: {}", r.text);
    }
    let not_image = c
        .post_multipart(
            "/records",
            &[
                ("crop_id", &crop),
                ("day", "2024-05-01"),
                ("kind", "sowing"),
            ],
            Some(("photo", "x.exe", b"MZ not an image")),
            true,
        )
        .await;
    assert_eq!(not_image.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(not_image.text.contains("photo"));
    let n = sqlx::query("SELECT COUNT(*) AS n FROM records")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(sqlx::Row::get::<i64, _>(&n, "n"), 0);
}

async fn users_cannot_see_each_others_records_or_photos(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut a = app.user("a@example.com", Role::User).await;
    let mut b = app.user("b@example.com", Role::User).await;
    let crop = setup_crop(&mut a, "North", "Tomato").await.to_string();
    a.post_multipart(
        "/records",
        &[
            ("crop_id", &crop),
            ("day", "2024-05-01"),
            ("kind", "sowing"),
            ("notes", "secret plot"),
        ],
        Some(("photo", "p.png", &png(3))),
        true,
    )
    .await;
    let list = b.get("/records").await;
    assert!(!list.text.contains("secret plot"));
    let photo = sqlx::query("SELECT id FROM photos")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let id: i64 = sqlx::Row::get(&photo, "id");
    assert_eq!(
        b.get(&format!("/photos/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    // b cannot record against a's crop.
    let r = b
        .post_multipart(
            "/records",
            &[
                ("crop_id", &crop),
                ("day", "2024-05-01"),
                ("kind", "sowing"),
            ],
            None,
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}
