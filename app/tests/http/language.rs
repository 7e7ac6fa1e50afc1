//! Japanese by default for farmers, English on request, and the language switch.

use axum::http::StatusCode;
use fieldbook::auth::Role;

use tend_testkit::fieldbook::{Backend, TestApp};
use tend_testkit::on_both_backends;

on_both_backends!(
    farmer_pages_speak_japanese_by_default_and_english_on_request,
    language_switch_sets_the_cookie_and_never_leaves_the_site,
);

/// The farmer-facing pages with a Japanese marker and an English one each.
const FARMER_PAGES: &[(&str, &str, &str)] = &[
    ("/records", "作業記録", "New record"),
    ("/fields", "圃場名", "Field name"),
    ("/help", "よくある質問", "Frequently asked questions"),
    ("/support", "お問い合わせを送る", "Send an inquiry"),
    ("/support/inquiries", "お問い合わせ履歴", "Your inquiries"),
    ("/feedback?kind=bug", "不具合の報告", "Report a bug"),
    (
        "/feedback?kind=feature",
        "機能のご要望",
        "Request a feature",
    ),
    ("/status", "稼働状況", "Service status"),
];

fn assert_japanese(path: &str, text: &str, marker: &str) {
    assert!(text.contains("<html lang=\"ja\">"), "{path}: {text}");
    assert!(
        text.contains(marker) && text.contains("本文へ移動") && text.contains("ヘルプ"),
        "{path} is not Japanese: {text}"
    );
    assert!(!text.contains("Skip to content"), "{path}: {text}");
}

fn assert_english(path: &str, text: &str, marker: &str) {
    assert!(text.contains("<html lang=\"en\">"), "{path}: {text}");
    assert!(
        text.contains(marker) && text.contains("Skip to content"),
        "{path} is not English: {text}"
    );
    assert!(!text.contains("本文へ移動"), "{path}: {text}");
}

async fn farmer_pages_speak_japanese_by_default_and_english_on_request(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.user("taro@example.com", Role::User).await;
    assert_eq!(
        c.post_form("/fields", &[("name", "North paddy")])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let field = sqlx::query("SELECT id FROM fields")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let field_id = sqlx::Row::get::<i64, _>(&field, "id").to_string();
    let r = c
        .post_form("/crops", &[("field_id", &field_id), ("name", "Rice")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let crop = sqlx::query("SELECT id FROM crops")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let crop_id = sqlx::Row::get::<i64, _>(&crop, "id").to_string();
    let r = c
        .post_multipart(
            "/records",
            &[
                ("crop_id", &crop_id),
                ("day", "2026-11-28"),
                ("kind", "harvest"),
                ("notes", "good year"),
            ],
            None,
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);

    // No Accept-Language: Japanese. Accept-Language ranking ja first: Japanese.
    for header in [
        None,
        Some("ja-JP,ja;q=0.9,en;q=0.8"),
        Some("fr, ja;q=0.7, en;q=0.3"),
    ] {
        c.accept_language = header.map(str::to_string);
        for (path, ja, _) in FARMER_PAGES {
            let r = c.get(path).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
            assert_japanese(path, &r.text, ja);
        }
        let records = c.get("/records").await;
        assert!(
            records.text.contains("2026年11月28日") && records.text.contains("収穫"),
            "{}",
            records.text
        );
        assert!(records.text.contains("ログアウト"));
    }
    // Accept-Language ranking en first: English.
    c.accept_language = Some("en-US,en;q=0.9,ja;q=0.8".to_string());
    for (path, _, en) in FARMER_PAGES {
        let r = c.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_english(path, &r.text, en);
    }
    let records = c.get("/records").await;
    assert!(
        records.text.contains(">2026-11-28<") && records.text.contains("Harvest"),
        "{}",
        records.text
    );

    // The cookie wins over Accept-Language.
    c.accept_language = Some("ja".to_string());
    c.cookies.insert("lang".into(), "en".into());
    for (path, _, en) in FARMER_PAGES {
        assert_english(path, &c.get(path).await.text, en);
    }
    c.cookies.insert("lang".into(), "ja".into());
    c.accept_language = Some("en".to_string());
    for (path, ja, _) in FARMER_PAGES {
        assert_japanese(path, &c.get(path).await.text, ja);
    }

    // Form errors are explained in the page's language.
    let bad = c.post_form("/fields", &[("name", "  ")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("名前を入力してください"), "{}", bad.text);
    assert!(
        bad.text.contains("入力内容を確認してください"),
        "{}",
        bad.text
    );
    c.cookies.remove("lang");
    let bad = c.post_form("/fields", &[("name", "  ")]).await;
    assert!(bad.text.contains("name: is required"), "{}", bad.text);

    // Signed-out pages too.
    let mut anon = app.client();
    anon.accept_language = None;
    for (path, ja) in [
        ("/", "農場の作業記録"),
        ("/login", "ログイン"),
        ("/signup", "アカウントを作成"),
    ] {
        let r = anon.get(path).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_japanese(path, &r.text, ja);
    }
    anon.accept_language = Some("en".to_string());
    for (path, en) in [
        ("/", "Crop records for your farm"),
        ("/login", "Sign in"),
        ("/signup", "Create an account"),
    ] {
        assert_english(path, &anon.get(path).await.text, en);
    }
}

async fn language_switch_sets_the_cookie_and_never_leaves_the_site(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut c = app.user("jiro@example.com", Role::User).await;
    c.accept_language = None;
    c.cookies.remove("lang");

    // Every page offers the switch to the other language, back to itself.
    let help = c.get("/help?q=photo").await;
    assert!(
        help.text
            .contains("href=\"/lang?set=en&amp;next=%2Fhelp%3Fq%3Dphoto\""),
        "{}",
        help.text
    );
    assert!(help.text.contains("id=\"lang-switch\"") && help.text.contains("English"));
    assert_eq!(help.headers["vary"], "Accept-Language, Cookie");

    let r = c.get("/lang?set=en&next=%2Fhelp%3Fq%3Dphoto").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/help?q=photo");
    let cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("lang="))
        .expect("lang cookie");
    assert!(
        cookie.starts_with("lang=en;")
            && cookie.contains("Path=/")
            && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let help = c.get("/help?q=photo").await;
    assert!(help.text.contains("<html lang=\"en\">"));
    assert!(
        help.text
            .contains("href=\"/lang?set=ja&amp;next=%2Fhelp%3Fq%3Dphoto\"")
    );

    // Off-site or malformed targets go to the home page instead.
    for next in [
        "%2F%2Fevil.example%2Fx",
        "https%3A%2F%2Fevil.example%2F",
        "%2F%5Cevil.example",
        "evil.example",
        "%2F%0D%0ASet-Cookie%3A%20x%3Dy",
        "",
    ] {
        let r = c.get(&format!("/lang?set=ja&next={next}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(r.location(), "/", "{next}");
    }
    let r = c.get("/lang?set=ja").await;
    assert_eq!(r.location(), "/");
    assert_eq!(c.cookies.get("lang").map(String::as_str), Some("ja"));
    assert!(c.get("/records").await.text.contains("<html lang=\"ja\">"));

    // An unknown language is refused and changes nothing.
    let r = c.get("/lang?set=fr&next=%2Frecords").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(c.cookies.get("lang").map(String::as_str), Some("ja"));
}
