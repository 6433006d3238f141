//! The portal's two languages: Japanese first, English on `?lang=en` (kept
//! in a cookie). Every string of every page is a field of [`Texts`], so a
//! string missing in one language does not compile.

/// A portal language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// 日本語 (default).
    #[default]
    Ja,
    /// English.
    En,
}

impl Lang {
    /// `ja` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }

    /// Parses `ja` / `en`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ja" => Some(Self::Ja),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The strings of this language.
    pub fn texts(self) -> &'static Texts {
        match self {
            Self::Ja => &JA,
            Self::En => &EN,
        }
    }

    /// Picks the Japanese or English form.
    pub fn pick<'a>(self, ja: &'a str, en: &'a str) -> &'a str {
        match self {
            Self::Ja => ja,
            Self::En => en,
        }
    }
}

macro_rules! texts {
    ($($field:ident: $ja:expr, $en:expr;)*) => {
        /// Every string of the portal.
        #[derive(Debug)]
        pub struct Texts {
            $(
                #[allow(missing_docs)]
                pub $field: &'static str,
            )*
        }
        /// Japanese.
        pub static JA: Texts = Texts { $($field: $ja,)* };
        /// English.
        pub static EN: Texts = Texts { $($field: $en,)* };
    };
}

texts! {
    app_title: "HER-SYS 処理番号発行", "HER-SYS processing numbers";
    nav_cases: "患者一覧", "Cases";
    nav_new_case: "新規登録", "New case";
    nav_audit: "監査ログ", "Audit log";
    nav_stats: "統計", "Statistics";
    nav_account: "2段階認証", "Two-factor";
    logout: "ログアウト", "Log out";
    login_title: "ログイン", "Log in";
    login_id: "ログインID", "Login ID";
    password: "パスワード", "Password";
    login_button: "ログイン", "Log in";
    login_failed: "ログインIDまたはパスワードが正しくありません。", "Wrong login ID or password.";
    login_throttled: "このログインIDは、この接続元からのログインの失敗が続いたため、しばらくログインできません（{until}まで）。{until}以降に再度お試しください。", "Too many failed logins for this login ID from your network: logging in is refused until {until}. Please try again after that.";
    totp_throttled: "確認コードの誤りが続いたため、このアカウントはしばらく2段階認証ができません（{until}まで）。{until}以降に再度お試しください。", "Too many wrong verification codes for this account: the second step is refused until {until}. Please try again after that.";
    address_throttled: "この接続元からのログインの失敗が続いたため、しばらくログインできません（{until}まで）。{until}以降に再度お試しください。", "Too many failed logins from your network: logging in is refused until {until}. Please try again after that.";
    crowded_throttled: "ただいま多くの接続元からログインが試されているため、初めての接続元からはしばらくログインできません（{until}まで）。{until}以降に再度お試しください。", "Logins are being tried from very many networks right now, so logging in from a new network is refused until {until}. Please try again after that.";
    login_busy: "ただいまログインが混み合っています。数秒おいて再度お試しください。", "The login is busy right now. Please try again in a few seconds.";
    session_expired: "セッションの有効期限が切れました。再度ログインしてください。", "Your session has expired. Please log in again.";
    logged_out: "ログアウトしました。", "You have logged out.";
    totp_title: "2段階認証", "Two-factor authentication";
    totp_code: "確認コード（6桁）", "Verification code (6 digits)";
    totp_button: "確認", "Verify";
    totp_failed: "確認コードが正しくありません。", "Wrong verification code.";
    totp_setup_help: "認証アプリに次のキーを登録し、表示された6桁の確認コードを入力してください。", "Add this key to your authenticator app, then enter the 6-digit code it shows.";
    totp_key: "キー", "Key";
    totp_qr: "認証アプリでこのQRコードを読み取るか、下のキーを入力してください", "Scan this QR code with an authenticator app, or type the key below";
    totp_on: "2段階認証は有効です。", "Two-factor authentication is on.";
    totp_enable: "有効にする", "Turn on";
    totp_enabled_now: "2段階認証を有効にしました。次回のログインから確認コードが必要です。", "Two-factor authentication is now on; the next login will ask for a code.";
    search_label: "検索（氏名・フリガナ・ID）", "Search (name, furigana, ID)";
    search_button: "検索", "Search";
    no_cases: "該当する患者はいません。", "No cases found.";
    col_id: "ID", "ID";
    col_name: "患者名", "Name";
    col_kana: "フリガナ", "Furigana";
    col_birth: "生年月日", "Date of birth";
    col_centre: "担当保健所", "Health centre";
    h_id: "ID", "ID";
    h_sex: "性別", "Sex";
    h_symptoms: "症状", "Symptoms";
    h_status: "現在のステータス", "Current status";
    h_name: "患者名", "Patient";
    h_age: "年齢", "Age";
    h_residence: "居所", "Residence";
    tab_id: "ID管理", "ID management";
    tab_basic: "基礎情報", "Basic information";
    tab_test: "検査", "Tests";
    tab_report: "発生届", "Notification";
    edit: "編集", "Edit";
    save: "保存", "Save";
    cancel: "キャンセル", "Cancel";
    back: "戻る", "Back";
    f_name_kanji: "氏名", "Name (kanji)";
    f_name_kana: "フリガナ", "Furigana (katakana)";
    f_required: "必須", "required";
    f_birth_date: "生年月日", "Date of birth";
    f_sex: "性別", "Sex";
    sex_male: "男性", "Male";
    sex_female: "女性", "Female";
    sex_other: "その他", "Other";
    f_mobile: "携帯電話番号", "Mobile phone";
    f_email: "メールアドレス", "E-mail";
    f_residence: "居所", "Residence";
    f_symptoms: "症状", "Symptoms";
    sym_yes: "有", "Yes";
    sym_no: "無", "No";
    not_entered: "入力なし", "Not entered";
    f_outpatient: "外来機関", "Outpatient facility";
    f_test_positive: "検査陽性", "Positive test";
    f_classification: "患者の分類", "Classification";
    cls_confirmed: "患者（確定例）", "Patient (confirmed)";
    cls_asymptomatic: "無症状病原体保有者", "Asymptomatic carrier";
    cls_clinical: "疑似症患者・臨床診断", "Suspected case / clinical diagnosis";
    f_diagnosis_date: "診断年月日", "Diagnosis date";
    f_reported: "報告（発生届の「報告」済み）", "Reported (notification submitted)";
    f_uses_app: "接触確認アプリを利用し、陽性登録を希望", "Uses COCOA and wants to register";
    f_centre: "担当保健所", "Health centre";
    yes: "はい", "Yes";
    no: "いいえ", "No";
    status_reported: "確定患者（報告済み）", "Confirmed case (reported)";
    status_unreported: "発生届未報告", "Notification not reported";
    status_unknown: "不明", "Unknown";
    new_case_title: "患者の新規登録", "New case";
    edit_case_title: "患者情報の編集", "Edit case";
    form_has_errors: "入力内容に誤りがあります。各項目のメッセージを確認してください。", "Some fields need correcting; see the messages below.";
    date_hint: "例: 2020-12-15", "e.g. 2020-12-15";
    issue_button: "処理番号発行", "Issue processing number";
    reissue_button: "再発行", "Reissue";
    retry_button: "再送信", "Retry";
    st_queued: "送信待ち（自動で再送します）", "Waiting to send (retried automatically)";
    p_attempts: "送信の試行", "Attempts";
    attempts_next: "回（次回 ", " (next ";
    attempts_end: "）", ")";
    queued_help: "SMS・メールの送信先が応答していません。処理番号は有効なまま、自動で再送します。有効期限は送信した時（受信確認がある場合は届いた時）から数えます。", "The gateway is not answering. The number stays valid and is retried automatically; its validity counts from sending (from delivery where the gateway confirms it).";
    dead_title: "送信できなかったメッセージ", "Messages given up";
    dead_help: "送信をあきらめたメッセージです。連絡先を確認し、「再送信」で新しい処理番号を送ってください。", "The send queue gave these up. Check the contact details and use Retry to send a new number.";
    k_number: "処理番号", "Processing number";
    k_fallback: "処理番号（メールへの切替）", "Processing number (e-mail fallback)";
    k_reminder: "リマインダー", "Reminder";
    p_reminder: "リマインダー", "Reminder";
    rm_held: "届いた後、未使用のままなら1回だけ送信します", "Sent once if the number is still unused after delivery";
    rm_queued: "送信予定 ", "Due ";
    rm_sending: "送信中", "Sending";
    rm_sent: "送信済み ", "Sent ";
    rm_delivered: "（届きました）", " (delivered)";
    rm_not_delivered: "（届きませんでした。再送はしません）", " (not delivered; not sent again)";
    rm_dead: "送信できませんでした（再送はしません）", "Could not be sent (not sent again)";
    rm_cancelled: "送信しません（不要になりました）", "Not sent (no longer needed)";
    p_given_up: "時刻", "When";
    times: "回", "";
    confirm_title: "処理番号発行の確認", "Confirm issuance";
    confirm_text: "処理番号を発行し、患者本人に直接送信します。よろしいですか？", "A processing number will be issued and sent directly to the patient. Continue?";
    confirm_reissue_text: "現在の処理番号は直ちに無効になり、新しい処理番号を送信します。よろしいですか？", "The current number stops working at once and a new one is sent. Continue?";
    confirm_send_to: "送信先", "Send to";
    confirm_yes: "発行する", "Issue";
    panel_title: "処理番号の状況", "Processing number status";
    never_shown: "処理番号はHER-SYSのどこにも表示されません。", "The processing number is never shown in HER-SYS.";
    st_none: "未発行", "Not issued";
    st_sent: "送信済み", "Sent";
    st_pending: "送信中", "Sending";
    st_failed: "送信失敗", "Delivery failed";
    st_used: "登録済み", "Registered";
    st_expired: "有効期限切れ", "Expired";
    st_superseded: "再発行により無効", "Replaced by a reissue";
    p_state: "状態", "State";
    p_issued_at: "発行日時", "Issued at";
    p_channel: "送信方法", "Channel";
    p_valid_until: "有効期限", "Valid until";
    p_issued_by: "発行者", "Issued by";
    p_reason: "失敗の理由", "Reason";
    p_used_at: "登録日時", "Registered at";
    ch_sms: "SMS", "SMS";
    ch_email: "メール", "E-mail";
    ch_canary: "カナリア（監視用）", "Canary (monitoring)";
    failed_help: "メッセージを送信できなかったため、この処理番号は無効にしました。連絡先を確認し、再送信してください。", "The message could not be delivered, so this number was withdrawn. Check the contact details and retry.";
    sent_flash: "処理番号を送信しました。", "The processing number was sent.";
    queued_flash: "送信先のゲートウェイが応答しないため、処理番号は送信待ちです。自動で再送します（有効期限は送信した時から数えます）。", "The gateway did not answer: the processing number waits to be sent and is retried automatically (its validity counts from sending).";
    saved_flash: "保存しました。", "Saved.";
    missing_title: "処理番号を発行するには、次の入力が必要です。", "Before a number can be issued:";
    history: "発行履歴", "History";
    expired_help: "処理番号の有効期限が切れています。登録がまだの場合は再発行してください。", "The number has expired. If the patient has not registered yet, reissue it.";
    audit_title: "監査ログ", "Audit log";
    a_at: "日時", "When";
    a_actor: "実行者", "Who";
    a_case: "患者ID", "Case";
    a_action: "操作", "Action";
    a_outcome: "結果", "Outcome";
    a_times: "回数", "Times";
    a_kind: "種類", "Kind";
    a_all: "すべて", "All";
    a_account: "実行者（例: staff:ログインID）", "Who (e.g. staff:login-id)";
    a_from: "開始日", "From";
    a_to: "終了日", "To";
    a_filter: "絞り込む", "Filter";
    a_prev: "新しい記録", "Newer";
    a_next: "古い記録", "Older";
    a_none: "該当する記録はありません。", "No entries.";
    a_bad_date: "日付はYYYY-MM-DDの形式で入力してください（開始日は終了日以前）。", "Dates must be YYYY-MM-DD (from no later than to).";
    a_bad_kind: "種類は一覧から選んでください。", "Choose a kind from the list.";
    a_retention: "記録は365日間保存され、それより古いものは削除されます。ログインの拒否は、アカウント・結果・15分ごとに1行にまとめて回数を表示します。", "Entries are kept for 365 days, then deleted. Refused logins are one line per account, outcome and 15 minutes, with a count.";
    stats_title: "統計", "Statistics";
    stats_centre: "自保健所", "This centre";
    stats_national: "全国", "National";
    s_issued: "発行", "Issued";
    s_delivered: "送信済み", "Delivered";
    s_used: "登録済み", "Used";
    s_expired: "期限切れ", "Expired";
    s_median: "発行から登録までの時間（中央値）", "Median time from issue to registration";
    s_live: "有効（未使用）", "Live (unused)";
    s_superseded: "再発行により無効", "Replaced by a reissue";
    s_failed: "送信失敗（無効化済み）", "Not delivered (withdrawn)";
    s_from: "開始日", "From";
    s_to: "終了日", "To";
    s_show: "表示", "Show";
    s_scope: "対象", "Scope";
    s_period: "集計期間", "Period";
    s_period_note: "（日本時間、処理番号の発行日。監視用（カナリア）の事例は含みません）", "(Japan dates, by day of issue; the canary's synthetic cases are not counted)";
    s_bad_period: "期間はYYYY-MM-DDで、開始日は終了日以前、366日以内で指定してください。既定の期間（直近28日）を表示しています。", "Give the period as YYYY-MM-DD, from no later than to, at most 366 days. Showing the default period (the last 28 days).";
    f_title: "陽性登録までの流れ（ファネル）", "Registration funnel";
    f_intro: "処理番号を受け取った人のうち、実際に陽性登録した人の数です。人ごとに数え（再発行しても1人）、最初の処理番号の発行日に計上します。", "People given a processing number, and how many of them registered. Counted per person (a reissue does not count twice), on the day of their first number.";
    f_day: "日付", "Date";
    f_numbered: "処理番号を発行した人", "People given a number";
    f_delivered: "うち送信済み", "Sent or delivered";
    f_registered: "うち陽性登録", "Registered";
    f_share: "登録率", "Share registered";
    f_to_number: "事例登録から発行まで（中央値）", "Case filed to number (median)";
    f_to_registration: "発行から陽性登録まで（中央値）", "Number to registration (median)";
    f_total: "期間合計", "Period total";
    f_national_total: "全国（期間合計）", "National (period total)";
    f_csv: "CSVで保存", "Download CSV";
    s_none: "—", "—";
    not_found_title: "見つかりません", "Not found";
    not_found_text: "指定されたページまたは患者は見つかりません。", "No such page or case.";
    forbidden_title: "操作を受け付けられません", "Request refused";
    forbidden_text: "フォームの有効期限が切れたか、不正なリクエストです。ページを再読み込みしてやり直してください。", "The form has expired or the request is invalid. Reload the page and try again.";
    error_title: "エラー", "Error";
    error_text: "サーバーでエラーが発生しました。時間をおいて再度お試しください。", "An internal error occurred. Please try again later.";
    all_centres: "全保健所", "All centres";
    confirm_reissue_title: "再発行の確認", "Confirm reissue";
    col_state: "状態", "State";
    l_state: "状態", "State";
    l_all: "すべて", "All";
    l_prev: "前へ", "Previous";
    l_next: "次へ", "Next";
    l_page: "ページ", "Page";
    ls_none: "未発行", "Not issued";
    ls_pending: "送信待ち", "Waiting to send";
    ls_sent: "送信済み", "Sent";
    ls_delivered: "送達済み", "Delivered";
    ls_failed: "送信失敗", "Delivery failed";
    ls_expired: "期限切れ", "Expired";
    ls_used: "登録済み", "Registered";
    report_button: "報告", "Report";
    report_hint: "発生届の4項目（外来機関・検査陽性・確定/無症状/疑似症・診断年月日）を入力したら、「報告」を押してください。入力は「編集」から行います。", "Once the four notification fields (outpatient facility, positive test, classification, diagnosis date) are entered, press Report. Enter them with Edit.";
    reported_flash: "発生届を報告しました。", "The notification was reported.";
    nav_import: "CSV取込", "CSV import";
    imp_title: "CSVファイルの取込", "Import a CSV file";
    imp_intro: "患者管理システムから出力した確定患者のCSVファイルを取り込みます。1行目は見出しで、次の列が必要です（順序は問いません）:", "Imports a CSV file of confirmed cases as the case system exports it. Line 1 is the header and must name these columns (in any order):";
    imp_rules: "文字コードはUTF-8（BOM付きも可）またはShift_JIS、ファイルは2MB・5,000行までです。日付は2026-12-01または2026/12/01の形式です。各行は新規登録の画面と同じ規則で確認され、取り込む前に全行の確認画面が表示されます。", "UTF-8 (with or without BOM) or Shift_JIS, at most 2 MB and 5,000 rows. Dates are 2026-12-01 or 2026/12/01. Every row is checked by the same rules as the New case form, and every row is shown for checking before anything is saved.";
    imp_file: "CSVファイル", "CSV file";
    imp_upload: "確認画面へ", "Check the file";
    imp_no_file: "CSVファイルを選んでください。", "Choose a CSV file.";
    imp_too_large: "ファイルが大きすぎます（2MBまで）。ファイルを分けて取り込んでください。", "The file is too large (2 MB at most). Split it and import the parts.";
    imp_too_many_rows: "行数が多すぎます（5,000行まで）。ファイルを分けて取り込んでください。", "Too many rows (5,000 at most). Split the file and import the parts.";
    imp_encoding: "文字コードを読み取れません。UTF-8またはShift_JISで保存したCSVファイルを選んでください。", "The file's encoding cannot be read: save it as a UTF-8 or Shift_JIS CSV file.";
    imp_empty: "データ行がありません（1行目の見出しの後に患者の行が必要です）。", "The file has no data rows (the patients' rows follow the header line).";
    imp_bad_header: "1行目の見出しが正しくありません。", "The header line (line 1) is wrong. ";
    imp_missing_columns: "次の列がありません: ", "Missing columns: ";
    imp_twice_columns: "次の列が2回以上あります: ", "Columns named more than once: ";
    imp_csv_error: "CSVとして読み取れません（{line}行目）。", "The file cannot be read as CSV (line {line}).";
    imp_system: "CSV取込は保健所の職員が行います（取り込んだ患者はその保健所の患者になります）。", "CSV import is done by a centre's staff (the cases become that centre's).";
    imp_preview_title: "取込内容の確認", "Check the import";
    imp_read_as: "読み込んだ文字コード", "Read as";
    imp_total: "行数", "Rows";
    imp_valid: "取り込める行", "Rows to import";
    imp_invalid: "エラーのある行", "Rows with errors";
    imp_invalid_note: "エラーのある行は取り込まれません（その行のどの項目も保存されません）。ファイルを直して、もう一度選ぶこともできます。", "Rows with errors are not imported (nothing of such a row is saved). You can also fix the file and choose it again.";
    imp_ignored: "使わない列", "Columns not used";
    imp_issue: "有効な行に処理番号を発行する", "Issue processing numbers for the valid rows";
    imp_issue_hint: "アプリ利用が「はい」で携帯電話またはメールのある行に処理番号を発行し、SMSまたはメールで本人に直接送信します。処理番号は画面には表示されません。", "Rows with アプリ利用 = yes and a mobile number or e-mail get a processing number, sent straight to the person by SMS or e-mail. The number is never shown.";
    imp_confirm: "有効な行を取り込む", "Import the valid rows";
    imp_none_valid: "取り込める行がありません。ファイルを直して、もう一度選んでください。", "No row can be imported. Fix the file and choose it again.";
    imp_again: "別のファイルを選ぶ", "Choose another file";
    imp_col_line: "行", "Line";
    imp_col_result: "確認結果", "Check";
    imp_col_contact: "連絡先", "Contact";
    imp_col_app: "アプリ利用", "Uses the app";
    imp_col_errors: "エラー", "Errors";
    imp_ok: "取込可", "OK";
    imp_ng: "エラー", "Error";
    imp_expired: "この取込は有効期限（1時間）が切れました。もう一度ファイルを選んでください。", "This import has expired (after 1 hour). Choose the file again.";
    imp_result_title: "取込の結果", "Import result";
    imp_imported: "取り込んだ行", "Rows imported";
    imp_skipped: "取り込まなかった行（エラー）", "Rows not imported (errors)";
    imp_sent: "処理番号を送信した行", "Rows whose number was sent";
    imp_not_sent: "処理番号を送信できなかった行", "Rows whose number was not sent";
    imp_running: "取込中です。しばらくしてからこのページを再読み込みしてください。", "The import is running. Reload this page in a moment.";
    imp_col_case: "患者ID", "Case";
    imp_col_number: "処理番号", "Processing number";
    imp_not_imported: "取り込みませんでした", "Not imported";
    imp_not_eligible: "対象外（アプリ利用なし、または連絡先なし）", "Not eligible (no app use, or no contact)";
    l_bad_state: "状態は一覧から選んでください。", "Choose a state from the list.";
}
