//! Japanese and English UI text.
//!
//! One [`Texts`] struct holds every fixed string of the user-facing pages;
//! [`JA`] and [`EN`] fill it, so a missing or misspelt key is a compile
//! error. Strings with a value in them are small functions on [`Lang`].
//! The language comes from the `lang` cookie (set by `/lang`), else from
//! `Accept-Language`, else Japanese.

use axum::http::{HeaderMap, header};

/// The cookie that remembers the chosen language.
pub const LANG_COOKIE: &str = "lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Ja, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language's own name, as the switch shows it.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::Ja => "日本語",
            Lang::En => "English",
        }
    }

    pub fn t(self) -> &'static Texts {
        match self {
            Lang::Ja => &JA,
            Lang::En => &EN,
        }
    }

    /// Cookie first, then the best-ranked of ja/en in `Accept-Language`,
    /// then Japanese.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        if let Some(lang) = crate::auth::cookie_value(headers, LANG_COOKIE).and_then(Lang::parse) {
            return lang;
        }
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(from_accept_language)
            .unwrap_or(Lang::Ja)
    }

    /// A day stored as `YYYY-MM-DD`, written the way the language reads it.
    pub fn day(self, day: &str) -> String {
        match (self, chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")) {
            (Lang::Ja, Ok(d)) => d.format("%Y年%-m月%-d日").to_string(),
            _ => day.to_string(),
        }
    }

    /// A Unix-millisecond time (shown in UTC).
    pub fn when(self, ms: i64) -> String {
        let format = match self {
            Lang::Ja => "%Y年%-m月%-d日 %H:%M UTC",
            Lang::En => "%Y-%m-%d %H:%M UTC",
        };
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.format(format).to_string())
            .unwrap_or_default()
    }

    pub fn page_n(self, page: i64) -> String {
        match self {
            Lang::Ja => format!("{page}ページ"),
            Lang::En => format!("Page {page}"),
        }
    }

    pub fn photo_alt(self, crop: &str, day: &str) -> String {
        match self {
            Lang::Ja => format!("{}の{crop}の写真", self.day(day)),
            Lang::En => format!("Photo of {crop} on {day}"),
        }
    }

    pub fn delete_record_label(self, day: &str) -> String {
        match self {
            Lang::Ja => format!("{}の記録を削除", self.day(day)),
            Lang::En => format!("Delete record of {day}"),
        }
    }

    pub fn inquiry_number(self, id: i64) -> String {
        match self {
            Lang::Ja => format!("お問い合わせ番号 #{id}。"),
            Lang::En => format!("Inquiry number #{id}."),
        }
    }

    pub fn copy_sent_to(self, email: &str) -> String {
        match self {
            Lang::Ja => format!("控えを {email} に送信しました。"),
            Lang::En => format!(" A copy was sent to {email}."),
        }
    }

    pub fn feedback_received(self, kind: &str, id: i64) -> String {
        match (self, kind) {
            (Lang::Ja, "bug") => {
                format!("不具合の報告を受け付けました（#{id}）。ありがとうございます。")
            }
            (Lang::Ja, _) => {
                format!("機能のご要望を受け付けました（#{id}）。ありがとうございます。")
            }
            (Lang::En, _) => format!("Thank you! Your {kind} report was received as #{id}."),
        }
    }

    /// The label of a record's kind of work (`sowing`, `harvest`, …).
    pub fn kind(self, kind: &str) -> &'static str {
        let t = self.t();
        match kind {
            "sowing" => t.kind_sowing,
            "watering" => t.kind_watering,
            "fertilising" => t.kind_fertilising,
            "spraying" => t.kind_spraying,
            "harvest" => t.kind_harvest,
            _ => t.kind_other,
        }
    }

    /// An inquiry's or incident's status / impact word, translated when known.
    pub fn state_word(self, word: &str) -> String {
        let t = self.t();
        let known = match word {
            "open" => t.state_open,
            "answered" => t.state_answered,
            "closed" => t.state_closed,
            "investigating" => t.state_investigating,
            "identified" => t.state_identified,
            "monitoring" => t.state_monitoring,
            "resolved" => t.state_resolved,
            "none" => t.impact_none,
            "minor" => t.impact_minor,
            "major" => t.impact_major,
            "critical" => t.impact_critical,
            _ => return word.to_string(),
        };
        known.to_string()
    }

    pub fn retry_in(self, secs: u64) -> String {
        match self {
            Lang::Ja => format!("試行回数が多すぎます。{secs}秒後にもう一度お試しください。"),
            Lang::En => format!("too many attempts; try again in {secs} seconds"),
        }
    }

    /// The user-facing text of a form error: English keeps the handler's
    /// `field: message`; Japanese names the field and explains in Japanese.
    pub fn field_error(self, field: &str, message: &str) -> String {
        if self == Lang::En {
            return format!("{field}: {message}");
        }
        let label = match field {
            "email" => "メールアドレス",
            "password" => "パスワード",
            "name" => "名前",
            "location" => "場所",
            "field_id" => "圃場",
            "crop_id" | "crop" => "作物",
            "variety" => "品種",
            "day" => "日付",
            "from" => "開始日",
            "to" => "終了日",
            "kind" => "種類",
            "quantity" => "数量",
            "unit" => "単位",
            "notes" => "メモ",
            "photo" => "写真",
            "screenshot" => "スクリーンショット",
            "category" => "お問い合わせの種類",
            "subject" => "件名",
            "message" | "body" => "内容",
            "title" => "タイトル",
            "score" => "評価",
            "comment" => "コメント",
            "page" => "ページ",
            "lang" => "言語",
            _ => "入力内容",
        };
        let text = if message == "is required" {
            "を入力してください。".to_string()
        } else if let Some(max) = message
            .strip_prefix("must be at most ")
            .and_then(|m| m.strip_suffix(" characters"))
        {
            format!("は{max}文字以内で入力してください。")
        } else if let Some(mib) = message
            .strip_prefix("is larger than ")
            .and_then(|m| m.strip_suffix(" MiB"))
        {
            format!("は{mib}MiB以下にしてください。")
        } else {
            match message {
                "must be chosen from the list" | "must be one of the listed categories" => {
                    "を一覧から選んでください。"
                }
                "is not one of your fields" | "is not one of your crops" => {
                    "が見つかりません。一覧から選び直してください。"
                }
                "must be a date like 2024-05-01" => {
                    "は 2024-05-01 のような日付で入力してください。"
                }
                "must be a number of at least 0" => "は0以上の数で入力してください。",
                "must be a number from 0 to 10" => "は0から10の数で選んでください。",
                "must be a page number" => "の番号が正しくありません。",
                "must be an e-mail address like name@example.com" => {
                    "は name@example.com のような形式で入力してください。"
                }
                "must be 10 to 200 characters long" => "は10文字以上200文字以内にしてください。",
                "an account with this e-mail already exists" => {
                    "はすでに登録されています。ログインしてください。"
                }
                "e-mail or password is wrong" => "またはメールアドレスが正しくありません。",
                "must be a JPEG, PNG, GIF or WebP image" => {
                    "は JPEG・PNG・GIF・WebP の画像にしてください。"
                }
                "must be bug or feature" => "が正しくありません。",
                _ => "が正しくありません。入力内容を確認してください。",
            }
            .to_string()
        };
        format!("{label}{text}")
    }
}

/// The first of ja/en in an `Accept-Language` header by quality (ties keep
/// header order); `None` when neither is acceptable.
pub fn from_accept_language(value: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for part in value.split(',') {
        let mut pieces = part.split(';');
        let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = pieces
            .find_map(|p| p.trim().strip_prefix("q=").map(str::to_string))
            .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        let Some(lang) = Lang::parse(primary) else {
            continue;
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l)
}

/// A same-site path to go back to after switching language: an absolute
/// path on this site, never another host (`//host`, `/\host`, `scheme:`).
pub fn safe_return_path(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 2000
        && !next
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\');
    if ok { next } else { "/" }
}

macro_rules! catalogue {
    ($($key:ident: $ja:expr, $en:expr;)*) => {
        /// Every fixed UI string; one instance per language.
        pub struct Texts {
            $(pub $key: &'static str,)*
        }

        pub static JA: Texts = Texts { $($key: $ja,)* };
        pub static EN: Texts = Texts { $($key: $en,)* };

        impl Texts {
            /// (key, text) of every entry, for checking the catalogue.
            pub fn entries(&self) -> Vec<(&'static str, &'static str)> {
                vec![$((stringify!($key), self.$key),)*]
            }
        }
    };
}

catalogue! {
    // Layout, navigation, help button and panel.
    site_suffix: " · fieldbook（フィールドブック）", " · fieldbook";
    skip_to_content: "本文へ移動", "Skip to content";
    nav_main: "メインメニュー", "Main";
    nav_records: "作業記録", "Records";
    nav_fields: "圃場と作物", "Fields & crops";
    nav_support: "お問い合わせ", "Support";
    nav_admin: "管理", "Admin";
    nav_status: "稼働状況", "Status";
    nav_help: "ヘルプ", "Help";
    sign_out: "ログアウト", "Sign out";
    sign_in: "ログイン", "Sign in";
    create_account: "新規登録", "Create account";
    language: "言語", "Language";
    service_notice: "お知らせ：", "Service notice: ";
    status_details: "詳しくは稼働状況ページへ", "Details on the status page";
    help_button: " ヘルプ", " Help";
    help_panel: "ヘルプ", "Help";
    faq_search_label: "よくある質問を検索", "Search the FAQ";
    guides: "使い方ガイド", "Guides";
    troubleshooting: "困ったときは", "Troubleshooting";
    contact_support: "お問い合わせ", "Contact support";
    faq_panel_empty: "該当する回答がありません。お問い合わせページもご利用ください。",
        "No answer found. Try the support page.";
    pager: "ページ", "Pages";
    newer: "← 新しい記録", "← Newer";
    older: "古い記録 →", "Older →";
    go_back: "前のページに戻る", "Go back";
    send: "送信", "Send";
    search: "検索", "Search";

    // Home, sign-up, sign-in.
    home_title: "農場の作業記録", "Crop records for your farm";
    home_lead: "播種・灌水・施肥・防除・収穫まで、圃場ごとの作業を写真つきで記録できます。",
        "Keep the story of every field: what you sowed, watered, fertilised, sprayed and harvested, with photos.";
    home_create: "アカウントを作成", "Create an account";
    email: "メールアドレス", "E-mail";
    password: "パスワード", "Password";
    signup_title: "アカウントを作成", "Create an account";
    signup_button: "登録する", "Create account";
    password_hint: "パスワードは10文字以上にしてください。", "Passwords need at least 10 characters.";
    login_title: "ログイン", "Sign in";
    login_button: "ログイン", "Sign in";
    no_account: "アカウントをお持ちでない方は ", "No account yet? ";
    create_one: "こちらから登録", "Create one";

    // Fields and crops.
    fields_title: "圃場と作物", "Fields & crops";
    your_fields: "圃場", "Your fields";
    no_fields: "まだ圃場がありません。最初の圃場を追加しましょう。", "No fields yet. Add your first one.";
    field_name: "圃場名", "Field name";
    field_location: "場所（任意）", "Location (optional)";
    add_field: "圃場を追加", "Add field";
    your_crops: "作物", "Your crops";
    no_crops: "まだ作物がありません。", "No crops yet.";
    field: "圃場", "Field";
    crop: "作物", "Crop";
    crop_placeholder: "例：トマト", "e.g. Tomato";
    variety_optional: "品種（任意）", "Variety (optional)";
    add_crop: "作物を追加", "Add crop";

    // Records.
    records_title: "作業記録", "Records";
    nps_title: "ひとつだけ質問させてください", "Quick question";
    nps_scale: "（0＝まったく思わない、10＝とてもそう思う）", " (0 = not at all, 10 = extremely)";
    nps_comment: "ご意見があればお聞かせください（任意）", "Anything you want to tell us? (optional)";
    new_record: "新しい作業記録", "New record";
    need_crops_before: "まず", "First ";
    need_crops_link: "圃場と作物を登録", "add a field and a crop";
    need_crops_after: "してください。", ".";
    date: "日付", "Date";
    work: "作業", "Work";
    quantity_optional: "数量（任意）", "Quantity (optional)";
    unit_optional: "単位（任意）", "Unit (optional)";
    unit_placeholder: "kg、L など", "kg, L, …";
    notes: "メモ", "Notes";
    photo_optional: "写真（任意）", "Photo (optional)";
    save_record: "記録を保存", "Save record";
    search_from: "開始日", "From";
    search_to: "終了日", "To";
    no_records: "記録が見つかりません。", "No records found.";
    quantity: "数量", "Quantity";
    photo: "写真", "Photo";
    delete: "削除", "Delete";
    kind_sowing: "播種", "Sowing";
    kind_watering: "灌水", "Watering";
    kind_fertilising: "施肥", "Fertilising";
    kind_spraying: "防除", "Spraying";
    kind_harvest: "収穫", "Harvest";
    kind_other: "その他", "Other";

    // Help.
    help_title: "ヘルプ", "Help";
    faq_title: "よくある質問", "Frequently asked questions";
    faq_no_match: "該当する回答がありません。", "No answer matches. ";
    ask_support: "お問い合わせください", "Ask support";
    still_stuck: "解決しない場合は ", "Still stuck? ";
    sentence_end: "。", ".";

    // Support, inquiries.
    support_title: "お問い合わせ", "Support";
    help_first_before: "お問い合わせの前に、", "Before writing, the ";
    help_first_link: "ヘルプ", "help pages";
    help_first_after: "もご覧ください。答えが見つかるかもしれません。", " may already have the answer.";
    send_inquiry: "お問い合わせを送る", "Send an inquiry";
    category: "種類", "Category";
    subject: "件名", "Subject";
    message: "内容", "Message";
    screenshot_optional: "スクリーンショット（任意）", "Screenshot (optional)";
    send_inquiry_button: "送信する", "Send inquiry";
    your_inquiries_link: "これまでのお問い合わせと回答", "Your inquiries and answers";
    report_bug: "不具合を報告", "Report a bug";
    request_feature: "機能を要望", "Request a feature";
    inquiry_received: "お問い合わせを受け付けました", "Inquiry received";
    follow_inquiry: "このお問い合わせの状況を見る", "Follow this inquiry";
    your_inquiries: "お問い合わせ履歴", "Your inquiries";
    no_inquiries: "まだお問い合わせはありません。", "You have not sent any inquiry yet.";
    new_inquiry: "新しくお問い合わせ", "New inquiry";
    support_team: "サポート担当", "Support team";
    automatic_ack: "自動受付メッセージ", "Automatic acknowledgement";
    category_label: "種類：", "Category: ";
    status_label: " · 状況：", " · Status: ";
    add_message: "メッセージを追加", "Add a message";
    state_open: "受付中", "open";
    state_answered: "回答済み", "answered";
    state_closed: "完了", "closed";

    // Feedback.
    bug_title: "不具合の報告", "Report a bug";
    bug_hint: "何をしたとき、何が起きると思っていて、実際には何が起きたかを教えてください。",
        "What did you do, what did you expect, and what happened instead?";
    feature_title: "機能のご要望", "Request a feature";
    feature_hint: "fieldbook にしてほしいことと、それが作業にどう役立つかを教えてください。",
        "What would you like fieldbook to do, and why would it help your work?";
    feedback_title_label: "タイトル", "Title";
    feedback_details: "詳しい内容", "Details";
    thank_you: "ありがとうございます", "Thank you";

    // Status page.
    status_title: "稼働状況", "Service status";
    all_ok: "すべてのサービスは正常に稼働しています。", "All systems operational.";
    past_incidents: "過去の障害", "Past incidents";
    no_incidents: "報告された障害はありません。", "No incidents reported.";
    impact: "影響：", "Impact: ";
    incident_status: " · 状況：", " · Status: ";
    started: " · 発生：", " · Started ";
    state_investigating: "調査中", "investigating";
    state_identified: "原因特定", "identified";
    state_monitoring: "経過観察中", "monitoring";
    state_resolved: "解決済み", "resolved";
    impact_none: "なし", "none";
    impact_minor: "軽微", "minor";
    impact_major: "重大", "major";
    impact_critical: "深刻", "critical";

    // Maintenance and error pages.
    maintenance_title: "メンテナンス中", "Maintenance";
    maintenance_body: "ただいまメンテナンス中です。データは安全に保管されています。しばらくしてからもう一度アクセスしてください。",
        "fieldbook is under maintenance. Your data is safe; please come back shortly.";
    err_not_found_title: "ページが見つかりません", "Not found";
    err_forbidden_title: "この操作は許可されていません", "Not allowed";
    err_sign_in_title: "ログインしてください", "Please sign in";
    err_too_many_title: "試行回数が多すぎます", "Too many attempts";
    err_check_form_title: "入力内容を確認してください", "Please check the form";
    err_generic_title: "問題が発生しました", "Something went wrong";
    err_not_found: "お探しのページは見つかりませんでした。", "not found";
    err_forbidden: "この操作を行う権限がありません。", "you do not have permission for this";
    err_sign_in: "ログインが必要です。", "sign in required";
    err_csrf: "フォームの有効期限が切れたか、このサイト以外から送信されました。ページを再読み込みしてもう一度お試しください。",
        "the form expired or did not come from this site; reload the page and try again";
    err_inquiry_closed: "このお問い合わせは完了しています。新しくお問い合わせください。",
        "this inquiry is closed; send a new one";
    err_internal: "内部エラーが発生しました。しばらくしてからもう一度お試しください。", "internal error";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_ranked_supported_language() {
        assert_eq!(from_accept_language("ja,en;q=0.8"), Some(Lang::Ja));
        assert_eq!(
            from_accept_language("en-US,en;q=0.9,ja;q=0.8"),
            Some(Lang::En)
        );
        assert_eq!(from_accept_language("fr, ja-JP;q=0.5"), Some(Lang::Ja));
        assert_eq!(from_accept_language("en;q=0.2, ja;q=0.9"), Some(Lang::Ja));
        assert_eq!(from_accept_language("de, fr"), None);
        assert_eq!(from_accept_language("en;q=0"), None);
    }

    #[test]
    fn return_paths_stay_on_this_site() {
        assert_eq!(
            safe_return_path("/records?crop=rice&page=2"),
            "/records?crop=rice&page=2"
        );
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "records",
            "",
            "/a b",
            "/x\r\nSet-Cookie: a=b",
        ] {
            assert_eq!(safe_return_path(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn every_catalogue_key_has_text_in_both_languages() {
        let (ja, en) = (JA.entries(), EN.entries());
        assert!(ja.len() > 100);
        assert_eq!(ja.len(), en.len());
        for ((key, j), (key_en, e)) in ja.iter().zip(&en) {
            assert_eq!(key, key_en);
            assert!(!j.trim().is_empty(), "{key} has no Japanese text");
            assert!(!e.trim().is_empty(), "{key} has no English text");
        }
        for lang in Lang::ALL {
            assert!(!lang.kind("harvest").is_empty() && !lang.native_name().is_empty());
        }
    }

    #[test]
    fn japanese_dates() {
        assert_eq!(Lang::Ja.day("2026-11-28"), "2026年11月28日");
        assert_eq!(Lang::En.day("2026-11-28"), "2026-11-28");
        assert_eq!(Lang::Ja.when(0), "1970年1月1日 00:00 UTC");
        assert_eq!(Lang::En.when(0), "1970-01-01 00:00 UTC");
    }
}
