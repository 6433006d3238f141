//! CSV import of confirmed cases (issue 13): a file as a case system
//! exports it (a header row of Japanese column names, UTF-8 with or without
//! BOM, or Shift_JIS) → a preview of every row with its errors → a
//! confirmation that saves the valid rows once (optionally issuing their
//! processing numbers through the normal issuance) → a result page.
//!
//! Every row is checked by the case form's own code ([`forms::check`]); the
//! import adds only what a file needs: the case system's ID (required,
//! unique within the centre) and a name (a file's row without 氏名 is a
//! broken line, not a case to fill in later). The parsed rows wait
//! server-side (table `case_imports`) under the hash of an unguessable id,
//! tied to the staff member, their session and their centre, for
//! [`IMPORT_TTL_SECONDS`]; never in the page.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use api_types::cases::CreateCaseRequest;
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::forms::{self, CaseForm};
use super::i18n::Lang;
use super::session::Viewer;
use super::views::{ImportPage, ImportResultPage, Layout, PreviewPage, PreviewRow, ResultRow};
use super::{Failure, OrPage, page, redirect};
use crate::domain::codes::CodeKind;
use crate::error::Error;
use crate::state::App;
use crate::store::ImportRow;

/// Largest file accepted, bytes.
pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;
/// Largest upload body (the file and the multipart envelope), bytes.
pub const MAX_UPLOAD_BODY_BYTES: usize = MAX_FILE_BYTES + 64 * 1024;
/// Most data rows in one file.
pub const MAX_ROWS: usize = 5_000;
/// How long an uploaded file waits for its confirmation, seconds.
pub const IMPORT_TTL_SECONDS: i64 = 60 * 60;
/// Longest cell kept, characters (validation refuses far shorter ones).
const MAX_CELL_CHARS: usize = 1_000;
/// Longest case system ID, characters.
const MAX_ID_CHARS: usize = 64;
/// The path of the upload form.
pub const UPLOAD_PATH: &str = "/portal/import";

/// One column of the file: its header, the case field it fills, and its
/// name in English.
struct Column {
    header: &'static str,
    field: &'static str,
    en: &'static str,
}

/// The columns, in the order the case systems export them.
const COLUMNS: [Column; 13] = [
    Column {
        header: "ID",
        field: "external_id",
        en: "ID",
    },
    Column {
        header: "氏名",
        field: "name_kanji",
        en: "name",
    },
    Column {
        header: "フリガナ",
        field: "name_kana",
        en: "furigana",
    },
    Column {
        header: "生年月日",
        field: "birth_date",
        en: "date of birth",
    },
    Column {
        header: "性別",
        field: "sex",
        en: "sex",
    },
    Column {
        header: "携帯電話",
        field: "mobile",
        en: "mobile phone",
    },
    Column {
        header: "メール",
        field: "email",
        en: "e-mail",
    },
    Column {
        header: "外来機関",
        field: "outpatient_facility",
        en: "outpatient facility",
    },
    Column {
        header: "検査陽性",
        field: "test_positive",
        en: "positive test",
    },
    Column {
        header: "確定/無症状/疑似症",
        field: "classification",
        en: "classification",
    },
    Column {
        header: "診断日",
        field: "diagnosis_date",
        en: "diagnosis date",
    },
    Column {
        header: "報告",
        field: "reported",
        en: "reported",
    },
    Column {
        header: "アプリ利用",
        field: "uses_app",
        en: "uses the app",
    },
];

/// The header names, for the docs and the upload page.
pub fn column_names() -> Vec<&'static str> {
    COLUMNS.iter().map(|c| c.header).collect()
}

fn column_of(field: &str) -> (&'static str, &'static str) {
    COLUMNS
        .iter()
        .find(|c| c.field == field)
        .map_or(("", ""), |c| (c.header, c.en))
}

/// The encoding a file was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 without a byte order mark.
    Utf8,
    /// UTF-8 with a byte order mark (Excel's 「CSV UTF-8」).
    Utf8Bom,
    /// Shift_JIS (Excel's 「CSV」 on Japanese Windows).
    ShiftJis,
}

impl Encoding {
    fn as_str(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Utf8Bom => "utf-8-bom",
            Self::ShiftJis => "shift_jis",
        }
    }

    fn label(code: &str, lang: Lang) -> &'static str {
        match code {
            "utf-8" => "UTF-8",
            "utf-8-bom" => lang.pick("UTF-8（BOM付き）", "UTF-8 (with BOM)"),
            _ => "Shift_JIS",
        }
    }
}

/// Why a whole file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    /// No file was chosen (or it was empty).
    NoFile,
    /// Larger than [`MAX_FILE_BYTES`].
    TooLarge,
    /// More than [`MAX_ROWS`] data rows.
    TooManyRows,
    /// Neither UTF-8 nor Shift_JIS.
    Encoding,
    /// A header only.
    Empty,
    /// The header lacks columns, or names one twice.
    Header {
        missing: Vec<&'static str>,
        twice: Vec<&'static str>,
    },
    /// Not CSV at this line.
    Csv(u64),
}

impl FileError {
    /// The message for people.
    pub fn message(&self, lang: Lang) -> String {
        let t = lang.texts();
        match self {
            Self::NoFile => t.imp_no_file.to_owned(),
            Self::TooLarge => t.imp_too_large.to_owned(),
            Self::TooManyRows => t.imp_too_many_rows.to_owned(),
            Self::Encoding => t.imp_encoding.to_owned(),
            Self::Empty => t.imp_empty.to_owned(),
            Self::Header { missing, twice } => {
                let mut m = t.imp_bad_header.to_owned();
                if !missing.is_empty() {
                    m.push_str(t.imp_missing_columns);
                    m.push_str(&missing.join(lang.pick("、", ", ")));
                    m.push_str(lang.pick("。", ". "));
                }
                if !twice.is_empty() {
                    m.push_str(t.imp_twice_columns);
                    m.push_str(&twice.join(lang.pick("、", ", ")));
                    m.push_str(lang.pick("。", "."));
                }
                m
            }
            Self::Csv(line) => t.imp_csv_error.replace("{line}", &line.to_string()),
        }
    }
}

/// Decodes a file: valid UTF-8 (after an optional BOM) is UTF-8, anything
/// else is read as Shift_JIS, and refused when it is not that either.
pub fn decode(bytes: &[u8]) -> Result<(String, Encoding), FileError> {
    let (body, bom) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (rest, true),
        None => (bytes, false),
    };
    if let Ok(s) = std::str::from_utf8(body) {
        let e = if bom {
            Encoding::Utf8Bom
        } else {
            Encoding::Utf8
        };
        return Ok((s.to_owned(), e));
    }
    let (text, had_errors) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(FileError::Encoding);
    }
    Ok((text.into_owned(), Encoding::ShiftJis))
}

/// One data row of a file: its line number (the header is line 1) and its
/// cells in [`COLUMNS`] order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRow {
    pub line: u64,
    pub cells: Vec<String>,
    /// How many cells the line had (≠ the header's: an error).
    pub width: usize,
}

/// The parsed file, as kept server-side until the confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedFile {
    /// Columns of the header line.
    pub columns: usize,
    /// Header names the import does not use.
    pub ignored: Vec<String>,
    pub rows: Vec<FileRow>,
}

fn normal_header(s: &str) -> String {
    s.trim().replace('／', "/").replace(' ', "")
}

/// Reads the CSV text: the header (every column of [`COLUMNS`], in any
/// order, others ignored), then at most [`MAX_ROWS`] non-blank rows.
pub fn parse(text: &str) -> Result<ParsedFile, FileError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = rdr.records();
    let header = match records.next() {
        None => return Err(FileError::Empty),
        Some(Err(e)) => return Err(FileError::Csv(csv_line(&e))),
        Some(Ok(h)) => h,
    };
    let names: Vec<String> = header.iter().map(normal_header).collect();
    let mut index = Vec::with_capacity(COLUMNS.len());
    let (mut missing, mut twice) = (Vec::new(), Vec::new());
    for c in &COLUMNS {
        let at: Vec<usize> = names
            .iter()
            .enumerate()
            .filter(|(_, n)| *n == c.header)
            .map(|(i, _)| i)
            .collect();
        match at.as_slice() {
            [] => missing.push(c.header),
            [i] => index.push(*i),
            _ => twice.push(c.header),
        }
    }
    if !missing.is_empty() || !twice.is_empty() {
        return Err(FileError::Header { missing, twice });
    }
    let ignored = names
        .iter()
        .filter(|n| !n.is_empty() && !COLUMNS.iter().any(|c| c.header == n.as_str()))
        .cloned()
        .collect();
    let mut rows = Vec::new();
    for r in records {
        let r = r.map_err(|e| FileError::Csv(csv_line(&e)))?;
        if r.iter().all(str::is_empty) {
            continue;
        }
        if rows.len() == MAX_ROWS {
            return Err(FileError::TooManyRows);
        }
        let cells = index
            .iter()
            .map(|i| {
                r.get(*i)
                    .unwrap_or("")
                    .chars()
                    .take(MAX_CELL_CHARS)
                    .collect()
            })
            .collect();
        rows.push(FileRow {
            line: r.position().map_or(0, csv::Position::line),
            cells,
            width: r.len(),
        });
    }
    if rows.is_empty() {
        return Err(FileError::Empty);
    }
    Ok(ParsedFile {
        columns: names.len(),
        ignored,
        rows,
    })
}

fn csv_line(e: &csv::Error) -> u64 {
    e.position().map_or(0, csv::Position::line)
}

/// A 「はい／いいえ」 cell; empty is no.
fn yes_no(s: &str) -> Option<bool> {
    match s.trim().to_lowercase().as_str() {
        "はい" | "有" | "あり" | "陽性" | "済" | "報告済" | "報告済み" | "利用" | "利用する"
        | "○" | "〇" | "1" | "yes" | "y" | "true" => Some(true),
        "" | "いいえ" | "無" | "なし" | "陰性" | "未" | "未報告" | "利用しない" | "×" | "0"
        | "no" | "n" | "false" => Some(false),
        _ => None,
    }
}

fn sex(s: &str) -> Option<&'static str> {
    match s.trim().to_lowercase().as_str() {
        "男" | "男性" | "m" | "male" => Some("male"),
        "女" | "女性" | "f" | "female" => Some("female"),
        "その他" | "other" => Some("other"),
        _ => None,
    }
}

fn classification(s: &str) -> Option<&'static str> {
    match s.trim().to_lowercase().as_str() {
        "確定" | "確定例" | "患者" | "患者（確定例）" | "confirmed" => {
            Some("confirmed")
        }
        "無症状" | "無症状病原体保有者" | "asymptomatic" => Some("asymptomatic"),
        "疑似症" | "疑似症患者" | "疑似症患者・臨床診断" | "clinical" => {
            Some("clinical")
        }
        _ => None,
    }
}

/// A row's error in both languages, with its line and column named
/// (「3行目: 生年月日: …」).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub ja: String,
    pub en: String,
}

impl RowError {
    fn new(line: u64, field: &str, ja: &str, en: &str) -> Self {
        let (h, e) = column_of(field);
        let sep = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{s}: ")
            }
        };
        Self {
            ja: format!("{line}行目: {}{ja}", sep(h)),
            en: format!("Line {line}: {}{en}", sep(e)),
        }
    }

    /// In `lang`.
    pub fn text(&self, lang: Lang) -> &str {
        lang.pick(&self.ja, &self.en)
    }
}

/// What the check of one row found.
#[derive(Debug, Clone)]
pub struct Checked {
    pub errors: Vec<RowError>,
    /// The case to create, with the case system's ID (no errors only).
    pub case: Option<(CreateCaseRequest, String)>,
}

/// Checks one row with the case form's rules, plus the import's own: an
/// ID (unique in the file and in the centre) and a name.
fn check_row(
    row: &FileRow,
    columns: usize,
    today: NaiveDate,
    existing: &HashSet<String>,
    seen: &mut HashMap<String, u64>,
) -> Checked {
    let line = row.line;
    let cell = |field: &str| -> String {
        COLUMNS
            .iter()
            .position(|c| c.field == field)
            .and_then(|i| row.cells.get(i))
            .cloned()
            .unwrap_or_default()
    };
    let mut errors = Vec::new();
    let mut bad_fields: Vec<&'static str> = Vec::new();
    let mut fail = |errors: &mut Vec<RowError>, field: &'static str, ja: &str, en: &str| {
        bad_fields.push(field);
        errors.push(RowError::new(line, field, ja, en));
    };
    if row.width != columns {
        errors.push(RowError::new(
            line,
            "",
            &format!(
                "列の数が見出しと違います（見出し{columns}列、この行{}列）",
                row.width
            ),
            &format!("the line has {} cells, the header {columns}", row.width),
        ));
    }
    let external_id = cell("external_id");
    if external_id.is_empty() {
        fail(
            &mut errors,
            "external_id",
            "入力されていません",
            "is missing",
        );
    } else if external_id.chars().count() > MAX_ID_CHARS
        || external_id
            .chars()
            .any(|c| c.is_control() || crate::domain::validate::is_format_char(c))
    {
        fail(
            &mut errors,
            "external_id",
            &format!("{MAX_ID_CHARS}文字以内で入力してください"),
            &format!("must be at most {MAX_ID_CHARS} characters"),
        );
    } else if existing.contains(&external_id) {
        fail(
            &mut errors,
            "external_id",
            "このIDの患者は既に登録されています（重複のため取り込みません）",
            "a case with this ID already exists (not imported again)",
        );
    } else if let Some(first) = seen.get(&external_id) {
        fail(
            &mut errors,
            "external_id",
            &format!("同じIDが{first}行目にもあります"),
            &format!("the same ID is on line {first} too"),
        );
    } else {
        seen.insert(external_id.clone(), line);
    }
    if cell("name_kanji").is_empty() {
        fail(
            &mut errors,
            "name_kanji",
            "入力されていません",
            "is missing",
        );
    }
    let mut flag =
        |field: &'static str, raw: String, errors: &mut Vec<RowError>| -> Option<String> {
            match yes_no(&raw) {
                Some(true) => Some("on".to_owned()),
                Some(false) => None,
                None => {
                    fail(
                        errors,
                        field,
                        "「はい」か「いいえ」で入力してください",
                        "must be yes or no",
                    );
                    None
                }
            }
        };
    let test_positive = flag("test_positive", cell("test_positive"), &mut errors);
    let reported = flag("reported", cell("reported"), &mut errors);
    let uses_app = flag("uses_app", cell("uses_app"), &mut errors);
    let sex_value = match sex(&cell("sex")) {
        Some(s) => s.to_owned(),
        None => {
            fail(
                &mut errors,
                "sex",
                "「男性」「女性」「その他」のいずれかで入力してください",
                "must be 男性 (male), 女性 (female) or その他 (other)",
            );
            String::new()
        }
    };
    let class_value = match classification(&cell("classification")) {
        Some(s) => s.to_owned(),
        None => {
            fail(
                &mut errors,
                "classification",
                "「確定」「無症状」「疑似症」のいずれかで入力してください",
                "must be 確定 (confirmed), 無症状 (asymptomatic) or 疑似症 (suspected)",
            );
            String::new()
        }
    };
    let form = CaseForm {
        name_kanji: cell("name_kanji"),
        name_kana: cell("name_kana"),
        birth_date: cell("birth_date"),
        sex: sex_value,
        mobile: cell("mobile"),
        email: cell("email"),
        outpatient_facility: cell("outpatient_facility"),
        test_positive,
        classification: class_value,
        diagnosis_date: cell("diagnosis_date"),
        reported,
        uses_app,
        ..CaseForm::default()
    };
    // The case form's own check, in both languages (the same fields in the
    // same order); a field the import already named is not named twice.
    let ja = forms::check(Lang::Ja, &form, today, &[]);
    let case = match ja {
        Ok(ok) => Some(ok.0),
        Err(ja) => {
            let en = forms::check(Lang::En, &form, today, &[])
                .err()
                .unwrap_or_default();
            for (i, (field, msg_ja)) in ja.iter().enumerate() {
                if bad_fields.contains(field) {
                    continue;
                }
                let msg_en = en.get(i).map_or(msg_ja.as_str(), |(_, m)| m.as_str());
                errors.push(RowError::new(line, field, msg_ja, msg_en));
            }
            None
        }
    };
    Checked {
        case: match (case, errors.is_empty()) {
            (Some(c), true) => Some((c, external_id)),
            _ => None,
        },
        errors,
    }
}

/// Checks every row of a file; `existing` are the file's IDs already cases
/// of the centre.
pub fn check_rows(file: &ParsedFile, today: NaiveDate, existing: &HashSet<String>) -> Vec<Checked> {
    let mut seen = HashMap::new();
    file.rows
        .iter()
        .map(|r| check_row(r, file.columns, today, existing, &mut seen))
        .collect()
}

async fn existing_ids(
    app: &App,
    centre_id: i64,
    file: &ParsedFile,
) -> crate::Result<HashSet<String>> {
    let ids: Vec<String> = file
        .rows
        .iter()
        .filter_map(|r| r.cells.first())
        .filter(|s| !s.is_empty())
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    Ok(app
        .issuer
        .store()
        .existing_external_ids(centre_id, &ids)
        .await?
        .into_iter()
        .collect())
}

/// The upload, parsed from the multipart body by the CSRF guard.
#[derive(Clone, Default)]
pub struct Upload {
    /// The form's CSRF token.
    pub csrf: String,
    /// The chosen file's bytes (empty: none chosen).
    pub file: Vec<u8>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The file holds personal data: only its size in a debug line.
        f.debug_struct("Upload")
            .field("file_bytes", &self.file.len())
            .finish_non_exhaustive()
    }
}

/// Reads a `multipart/form-data` body: the `csrf` field and the `file`.
pub async fn read_upload(content_type: &str, body: axum::body::Bytes) -> Option<Upload> {
    let boundary = multer::parse_boundary(content_type).ok()?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut m = multer::Multipart::new(stream, boundary);
    let mut up = Upload::default();
    while let Ok(Some(field)) = m.next_field().await {
        match field.name() {
            Some("csrf") => up.csrf = field.text().await.ok()?,
            Some("file") => up.file = field.bytes().await.ok()?.to_vec(),
            _ => {}
        }
    }
    Some(up)
}

fn upload_page(v: &Viewer, error: String) -> ImportPage {
    let t = v.lang.texts();
    ImportPage {
        l: Layout::of(v, t.imp_title, UPLOAD_PATH),
        error,
        allowed: !v.is_system(),
        columns: column_names().join(", "),
    }
}

/// `GET /portal/import`: the upload form.
pub async fn form(v: Viewer) -> Response {
    let status = if v.is_system() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let error = if v.is_system() {
        v.lang.texts().imp_system.to_owned()
    } else {
        String::new()
    };
    page(status, &upload_page(&v, error))
}

/// The import id's stored key.
fn key(app: &App, id: &str) -> String {
    app.issuer
        .hash_code(CodeKind::Form, &format!("import\0{id}"))
}

/// `POST /portal/import` (multipart): reads and checks the file, keeps
/// its rows server-side and shows the preview.
pub async fn upload(
    State(app): State<Arc<App>>,
    v: Viewer,
    up: Option<Extension<Upload>>,
) -> Result<Response, Failure> {
    if v.is_system() {
        return Ok(form(v).await);
    }
    let refuse = |status, e: FileError| Ok(page(status, &upload_page(&v, e.message(v.lang))));
    let file = up.map(|Extension(u)| u.file).unwrap_or_default();
    if file.is_empty() {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, FileError::NoFile);
    }
    if file.len() > MAX_FILE_BYTES {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, FileError::TooLarge);
    }
    let parsed = decode(&file).and_then(|(text, enc)| parse(&text).map(|p| (p, enc)));
    let (parsed, encoding) = match parsed {
        Ok(x) => x,
        Err(e) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    let now = app.issuer.now();
    let id = app.issuer.random_secret(24);
    let rows_json = serde_json::to_string(&parsed)
        .map_err(|e| Failure(v.lang, Error::from(anyhow::Error::from(e))))?;
    let row = ImportRow {
        staff_id: v.staff.id,
        session_hash: v.session.id_hash.clone(),
        centre_id: v.staff.centre_id,
        encoding: encoding.as_str().to_owned(),
        rows_json,
        created_at: now,
        expires_at: now + IMPORT_TTL_SECONDS,
        consumed_at: None,
        result_json: None,
    };
    app.issuer
        .store()
        .insert_import(&key(&app, &id), &row)
        .await
        .or_page(v.lang)?;
    tracing::info!(
        rows = parsed.rows.len(),
        encoding = encoding.as_str(),
        "csv import uploaded"
    );
    Ok(redirect(&format!("/portal/import/{id}")))
}

/// The import `raw` of the viewer: their own, of this session and centre.
async fn owned(app: &App, v: &Viewer, raw: &str) -> Result<(String, ImportRow), Failure> {
    let not_found = || Failure(v.lang, Error::CaseNotFound);
    if raw.is_empty() || raw.len() > 100 || v.is_system() {
        return Err(not_found());
    }
    let k = key(app, raw);
    match app.issuer.store().import(&k).await.or_page(v.lang)? {
        Some(r)
            if r.staff_id == v.staff.id
                && r.session_hash == v.session.id_hash
                && r.centre_id == v.staff.centre_id =>
        {
            Ok((k, r))
        }
        _ => Err(not_found()),
    }
}

fn expired_page(v: &Viewer) -> Response {
    page(
        StatusCode::GONE,
        &upload_page(v, v.lang.texts().imp_expired.to_owned()),
    )
}

fn parsed_of(v: &Viewer, r: &ImportRow) -> Result<ParsedFile, Failure> {
    serde_json::from_str(&r.rows_json)
        .map_err(|e| Failure(v.lang, Error::from(anyhow::Error::from(e))))
}

fn contact(cells: &[String]) -> String {
    let get = |field: &str| {
        COLUMNS
            .iter()
            .position(|c| c.field == field)
            .and_then(|i| cells.get(i))
            .cloned()
            .unwrap_or_default()
    };
    let (m, e) = (get("mobile"), get("email"));
    match (m.is_empty(), e.is_empty()) {
        (false, false) => format!("{m} / {e}"),
        (false, true) => m,
        _ => e,
    }
}

/// `GET /portal/import/{id}`: every row with its errors, and the
/// confirmation form.
pub async fn preview(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, Failure> {
    let (_, r) = owned(&app, &v, &raw).await?;
    if r.consumed_at.is_some() {
        return Ok(redirect(&format!("/portal/import/{raw}/result")));
    }
    if r.expires_at <= app.issuer.now() {
        return Ok(expired_page(&v));
    }
    let parsed = parsed_of(&v, &r)?;
    let existing = existing_ids(&app, r.centre_id, &parsed)
        .await
        .or_page(v.lang)?;
    let checked = check_rows(&parsed, super::cases::today(&app), &existing);
    let t = v.lang.texts();
    let cell = |row: &FileRow, i: usize| row.cells.get(i).cloned().unwrap_or_default();
    let rows: Vec<PreviewRow> = parsed
        .rows
        .iter()
        .zip(&checked)
        .map(|(row, c)| PreviewRow {
            line: row.line,
            ok: c.errors.is_empty(),
            id: cell(row, 0),
            name: cell(row, 1),
            kana: cell(row, 2),
            birth: cell(row, 3),
            sex: cell(row, 4),
            contact: contact(&row.cells),
            uses_app: cell(row, 12),
            errors: c.errors.iter().map(|e| e.text(v.lang).to_owned()).collect(),
        })
        .collect();
    let valid = rows.iter().filter(|r| r.ok).count();
    let p = PreviewPage {
        l: Layout::of(&v, t.imp_preview_title, &format!("/portal/import/{raw}")),
        action: format!("/portal/import/{raw}"),
        encoding: Encoding::label(&r.encoding, v.lang),
        total: rows.len(),
        valid,
        invalid: rows.len() - valid,
        ignored: parsed.ignored.join(", "),
        rows,
    };
    Ok(page(StatusCode::OK, &p))
}

/// The posted confirmation.
#[derive(Debug, Default, Deserialize)]
pub struct ConfirmForm {
    /// 「有効な行に処理番号を発行する」 ticked.
    issue: Option<String>,
}

/// What happened to one row at the confirmation (kept for the result
/// page: no personal data, only line numbers, case ids and messages).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RowOutcome {
    pub line: u64,
    pub case_id: Option<i64>,
    pub errors: Vec<RowError>,
    /// `""` (not asked), `sent`, `failed`, `blocked`, `not_eligible`.
    pub number: String,
    /// Why a number was not sent (both languages), when it was not.
    pub number_note: Option<RowError>,
}

/// The result of a confirmed import.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub issue: bool,
    pub rows: Vec<RowOutcome>,
}

impl Outcome {
    fn imported(&self) -> usize {
        self.rows.iter().filter(|r| r.case_id.is_some()).count()
    }
    fn count(&self, number: &str) -> usize {
        self.rows.iter().filter(|r| r.number == number).count()
    }
}

/// Saves the valid rows (and issues their numbers when asked); records
/// the result and audits the import by counts.
async fn run(
    app: Arc<App>,
    v: Viewer,
    key: String,
    r: ImportRow,
    issue: bool,
) -> crate::Result<()> {
    let parsed: ParsedFile =
        serde_json::from_str(&r.rows_json).map_err(|e| Error::from(anyhow::Error::from(e)))?;
    let existing = existing_ids(&app, r.centre_id, &parsed).await?;
    let checked = check_rows(&parsed, super::cases::today(&app), &existing);
    let mut out = Outcome {
        issue,
        rows: Vec::with_capacity(checked.len()),
    };
    for (row, c) in parsed.rows.iter().zip(checked) {
        let mut o = RowOutcome {
            line: row.line,
            errors: c.errors,
            ..RowOutcome::default()
        };
        if let Some((req, external_id)) = c.case {
            match app
                .issuer
                .create_imported_case(&v.actor, &req, &external_id)
                .await
            {
                Ok(Some(id)) => o.case_id = Some(id),
                Ok(None) => o.errors.push(RowError::new(
                    row.line,
                    "external_id",
                    "このIDの患者は既に登録されています（重複のため取り込みません）",
                    "a case with this ID already exists (not imported again)",
                )),
                Err(Error::Field(e)) => o.errors.push(RowError::new(
                    row.line,
                    e.field,
                    &e.message_ja,
                    &e.message_en,
                )),
                Err(e) => return Err(e),
            }
            if let (Some(id), true) = (o.case_id, issue) {
                issue_for(&app, &v, id, &req, &mut o).await;
            }
        }
        out.rows.push(o);
    }
    let json = serde_json::to_string(&out).map_err(|e| Error::from(anyhow::Error::from(e)))?;
    app.issuer.store().finish_import(&key, &json).await?;
    let (imported, invalid) = (out.imported(), out.rows.len() - out.imported());
    let (sent, failed) = (
        out.count("sent") + out.count("queued"),
        out.count("failed") + out.count("blocked"),
    );
    app.issuer
        .audit(
            &v.actor,
            Some(r.centre_id),
            None,
            "import_cases",
            "ok",
            format!(
                "rows={} imported={imported} invalid={invalid} numbers_sent={sent} numbers_not_sent={failed} encoding={}",
                out.rows.len(),
                r.encoding
            ),
        )
        .await;
    tracing::info!(
        rows = out.rows.len(),
        imported,
        invalid,
        numbers_sent = sent,
        numbers_not_sent = failed,
        "csv import confirmed"
    );
    Ok(())
}

/// Issues the number of an imported case through the normal issuance
/// (delivery, audit) when the row asks for the app and has a contact.
async fn issue_for(app: &App, v: &Viewer, id: i64, req: &CreateCaseRequest, o: &mut RowOutcome) {
    let has_contact = req.mobile.is_some() || req.email.is_some();
    if !req.uses_app || !has_contact {
        o.number = "not_eligible".into();
        return;
    }
    // A centre that issues automatically has already sent one.
    if let Ok(h) = app
        .issuer
        .store()
        .issuance_history(id, app.issuer.now())
        .await
        && !h.is_empty()
    {
        o.number = "sent".into();
        return;
    }
    match app.issuer.issue(&v.actor, id).await {
        Ok(i) if i.queued => o.number = "queued".into(),
        Ok(_) => o.number = "sent".into(),
        Err(Error::Blocked(bs)) => {
            o.number = "blocked".into();
            let ja: Vec<&str> = bs.iter().map(|b| b.message_ja()).collect();
            let en: Vec<&str> = bs.iter().map(|b| b.message_en()).collect();
            o.number_note = Some(RowError {
                ja: ja.join(" "),
                en: en.join(" "),
            });
        }
        Err(Error::DeliveryFailed(reason)) => {
            o.number = "failed".into();
            o.number_note = Some(RowError {
                ja: format!("送信失敗: {reason}"),
                en: format!("delivery failed: {reason}"),
            });
        }
        Err(e) => {
            tracing::error!(error = %e, "issuance of an imported case failed");
            o.number = "failed".into();
            o.number_note = Some(RowError {
                ja: "サーバーでエラーが発生しました".into(),
                en: "internal error".into(),
            });
        }
    }
}

/// How long a repeated confirmation waits for the first one's result.
const REPEAT_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// `POST /portal/import/{id}`: imports the valid rows, once. The import
/// id is consumed atomically first; a repeat (a double click, a second
/// tab) imports nothing and lands on the same result. The work runs
/// detached from the connection, so a closed tab does not stop it.
pub async fn confirm(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(raw): Path<String>,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, Failure> {
    let (k, r) = owned(&app, &v, &raw).await?;
    let result = format!("/portal/import/{raw}/result");
    let store = app.issuer.store();
    let mine = store
        .consume_import(&k, v.staff.id, &v.session.id_hash, app.issuer.now())
        .await
        .or_page(v.lang)?;
    if !mine {
        if r.consumed_at.is_none() && r.expires_at <= app.issuer.now() {
            return Ok(expired_page(&v));
        }
        // Another post took it: wait for its result.
        let started = tokio::time::Instant::now();
        while started.elapsed() < REPEAT_WAIT {
            match store.import(&k).await.or_page(v.lang)? {
                Some(x) if x.result_json.is_some() => break,
                Some(x) if x.consumed_at.is_none() => return Ok(expired_page(&v)),
                _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        return Ok(redirect(&result));
    }
    let task = {
        let (app, v, k) = (app.clone(), v.clone(), k.clone());
        tokio::spawn(async move { run(app, v, k, r, f.issue.is_some()).await })
    };
    match task.await {
        Ok(Ok(())) => Ok(redirect(&result)),
        Ok(Err(e)) => Err(Failure(v.lang, e)),
        Err(e) => Err(Failure(v.lang, Error::from(anyhow::Error::from(e)))),
    }
}

/// `GET /portal/import/{id}/result`.
pub async fn result(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, Failure> {
    let (_, r) = owned(&app, &v, &raw).await?;
    if r.consumed_at.is_none() {
        return Ok(redirect(&format!("/portal/import/{raw}")));
    }
    let t = v.lang.texts();
    let out: Option<Outcome> = match &r.result_json {
        Some(j) => Some(
            serde_json::from_str(j)
                .map_err(|e| Failure(v.lang, Error::from(anyhow::Error::from(e))))?,
        ),
        None => None,
    };
    let mut rows = Vec::new();
    if let Some(out) = &out {
        for o in &out.rows {
            let name = match o.case_id {
                Some(id) => app
                    .issuer
                    .case_for(&v.actor, id)
                    .await
                    .map(|c| c.data.name_kanji)
                    .unwrap_or_default(),
                None => String::new(),
            };
            let number = match o.number.as_str() {
                "sent" => t.st_sent.to_owned(),
                "queued" => t.ls_pending.to_owned(),
                "not_eligible" => t.imp_not_eligible.to_owned(),
                "" => String::new(),
                _ => o
                    .number_note
                    .as_ref()
                    .map(|n| n.text(v.lang).to_owned())
                    .unwrap_or_else(|| t.st_failed.to_owned()),
            };
            rows.push(ResultRow {
                line: o.line,
                case_id: o.case_id.unwrap_or_default(),
                name,
                errors: o.errors.iter().map(|e| e.text(v.lang).to_owned()).collect(),
                number,
                number_ok: o.number == "sent" || o.number == "queued",
                number_bad: matches!(o.number.as_str(), "failed" | "blocked"),
            });
        }
    }
    let out = out.unwrap_or_default();
    let p = ImportResultPage {
        l: Layout::of(
            &v,
            t.imp_result_title,
            &format!("/portal/import/{raw}/result"),
        ),
        done: r.result_json.is_some(),
        issue: out.issue,
        imported: out.imported(),
        skipped: out.rows.len() - out.imported(),
        sent: out.count("sent") + out.count("queued"),
        not_sent: out.count("failed") + out.count("blocked"),
        rows,
    };
    Ok(page(StatusCode::OK, &p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "ID,氏名,フリガナ,生年月日,性別,携帯電話,メール,外来機関,検査陽性,確定/無症状/疑似症,診断日,報告,アプリ利用";

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 4).unwrap()
    }

    #[test]
    fn encodings_are_told_apart() {
        let text = format!("{HEADER}\n");
        assert_eq!(decode(text.as_bytes()).unwrap().1, Encoding::Utf8);
        let bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        let (s, e) = decode(&bom).unwrap();
        assert_eq!((s.starts_with("ID,"), e), (true, Encoding::Utf8Bom));
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
        assert_eq!(decode(&sjis).unwrap(), (text.clone(), Encoding::ShiftJis));
        assert_eq!(decode(b"\xff\xff\xff"), Err(FileError::Encoding));
    }

    #[test]
    fn rows_are_checked_by_the_form_rules_with_line_and_column() {
        let text = format!(
            "{HEADER}\n\
             A-1,横口 健太,ヨコグチ ケンタ,1998/09/09,男性,090-1234-5678,,港区外来,はい,確定,2026/12/01,はい,はい\n\
             A-2,,ヨコグチ ハナ,1998-13-40,女性,,,港区外来,はい,確定,2026-12-01,はい,いいえ\n\
             A-1,山田 花子,ヤマダ ハナコ,1990-01-01,女,,,港区外来,はい,無症状,,いいえ,いいえ\n\
             A-4,山田 次郎,やまだ,1990-01-01,不明,,,港区外来,たぶん,確定,,はい,はい\n"
        );
        let file = parse(&text).unwrap();
        assert_eq!(file.rows.len(), 4);
        let c = check_rows(&file, today(), &HashSet::new());
        assert!(c[0].errors.is_empty(), "{:?}", c[0].errors);
        let req = &c[0].case.as_ref().map(|x| x.0.clone());
        assert_eq!(
            req.as_ref().map(|r| r.birth_date.as_str()),
            Some("1998-09-09")
        );
        let ja: Vec<&str> = c[1].errors.iter().map(|e| e.ja.as_str()).collect();
        assert_eq!(ja.len(), 2, "{ja:?}");
        assert!(ja[0].starts_with("3行目: 氏名: "), "{ja:?}");
        assert!(ja[1].starts_with("3行目: 生年月日: "), "{ja:?}");
        assert!(c[1].errors[1].en.starts_with("Line 3: date of birth: "));
        assert!(c[2].errors[0].ja.contains("同じIDが2行目にもあります"));
        let ja: Vec<&str> = c[3].errors.iter().map(|e| e.ja.as_str()).collect();
        assert_eq!(ja.len(), 3, "{ja:?}");
        assert!(ja.iter().any(|e| e.starts_with("5行目: 性別: ")));
        assert!(ja.iter().any(|e| e.starts_with("5行目: 検査陽性: ")));
        assert!(ja.iter().any(|e| e.starts_with("5行目: フリガナ: ")));
        let existing: HashSet<String> = ["A-1".to_owned()].into();
        let c = check_rows(&file, today(), &existing);
        assert!(c[0].errors[0].ja.contains("既に登録されています"));
    }

    #[test]
    fn the_documented_example_file_has_two_good_rows() {
        let text = include_str!("../../tests/data/cases_import_example.csv");
        let file = parse(text).unwrap();
        let c = check_rows(&file, today(), &HashSet::new());
        let bad: Vec<u64> = file
            .rows
            .iter()
            .zip(&c)
            .filter(|(_, c)| !c.errors.is_empty())
            .map(|(r, _)| r.line)
            .collect();
        assert_eq!(bad, [4, 5], "{c:?}");
        assert!(c[2].errors[0].ja.starts_with("4行目: 生年月日: "));
        assert_eq!(c[3].errors[0].ja, "5行目: 氏名: 入力されていません");
    }

    #[test]
    fn headers_must_name_every_column() {
        assert_eq!(
            parse("ID,氏名\nA-1,横口\n").map(|_| ()),
            Err(FileError::Header {
                missing: COLUMNS[2..].iter().map(|c| c.header).collect(),
                twice: vec![]
            })
        );
        assert_eq!(
            parse(&format!("{HEADER}\n\n")).map(|_| ()),
            Err(FileError::Empty)
        );
        let many = format!("{HEADER}\n{}", "A,B,,,,,,,,,,,\n".repeat(MAX_ROWS + 1));
        assert_eq!(parse(&many).map(|_| ()), Err(FileError::TooManyRows));
    }
}
