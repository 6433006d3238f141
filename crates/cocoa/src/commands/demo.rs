//! `cocoa demo`: the whole story in one command, against a fresh in-process
//! deployment (every role of `cocoa serve --demo` on 127.0.0.1, SQLite in a
//! temporary folder), narrated step by step in Japanese and English.
//!
//! Phone A met phone B for 20 minutes at 1 m two days before A's symptoms
//! began, and phone C three days before the window opened. The clinic reports
//! A's case, staff press 「処理番号発行」 in the portal, the SMS lands in the
//! outbox, A registers with the number, the exporter runs, B is told of one
//! contact on the right date with the consultation centre, C is told of
//! none. The clock is injected (the days pass at once); phones talk to the
//! servers over real HTTP. Every step says what it checked (✓/✗); the
//! command exits non-zero when any check fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use clap::{Args, ValueEnum};
use device::{Phone, RegistrationInput, Settings};
use en_protocol::time::jst;
use en_protocol::time::{Clock, FixedClock};
use serde::Serialize;
use serde_json::{Value, json};

use super::bad_input;
use tools::{Browser, newest_message};

mod tools;
use crate::server::config::CocoaConfig;
use crate::server::{self as serve, demo as serve_demo};

/// `cocoa demo` flags.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the deployment's files (server data, outbox, phones) in this
    /// folder, which must be empty or absent; a temporary folder when absent.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Language of the narration.
    #[arg(long, value_enum, default_value = "both")]
    pub lang: NarrationLang,
    /// Print one JSON object with every step instead of the narration.
    #[arg(long)]
    pub json: bool,
}

/// `--lang`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NarrationLang {
    /// 日本語.
    Ja,
    /// English.
    En,
    /// 日本語 and English.
    Both,
}

/// One thing a step checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Whether it held.
    pub ok: bool,
    /// What was checked, in Japanese.
    pub ja: String,
    /// What was checked, in English.
    pub en: String,
}

/// One step of the story.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Number, from 1.
    pub n: usize,
    /// Stable id (`deploy`, `issue`, `register`, `notified`, …).
    pub id: &'static str,
    /// The story's time of the step (RFC 3339, Japan time).
    pub at: String,
    /// What happens, in Japanese.
    pub ja: String,
    /// What happens, in English.
    pub en: String,
    /// Whether every check held.
    pub ok: bool,
    /// The checks.
    pub checks: Vec<Check>,
}

/// A time of the story, given in Japan time.
fn jst_at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    jst()
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// Writes the narration as the story goes (or collects it for `--json`).
struct Story {
    lang: NarrationLang,
    json: bool,
    clock: Arc<FixedClock>,
    steps: Vec<Step>,
    /// Whether the files live in a temporary folder deleted at exit (no `--data`).
    temporary: bool,
}

impl Story {
    fn say(&self, ja: &str, en: &str) {
        if self.json {
            return;
        }
        match self.lang {
            NarrationLang::Ja => println!("{ja}"),
            NarrationLang::En => println!("{en}"),
            NarrationLang::Both => println!("{ja}\n{en}"),
        }
    }

    /// Starts a step at the story's current time.
    fn step(&mut self, id: &'static str, ja: impl Into<String>, en: impl Into<String>) {
        let at = self.clock.now().with_timezone(&jst());
        let s = Step {
            n: self.steps.len() + 1,
            id,
            at: at.to_rfc3339(),
            ja: ja.into(),
            en: en.into(),
            ok: true,
            checks: Vec::new(),
        };
        if !self.json {
            let when = at.format("%Y-%m-%d %H:%M JST");
            println!();
            match self.lang {
                NarrationLang::Ja => println!("{:>2}. [{when}] {}", s.n, s.ja),
                NarrationLang::En => println!("{:>2}. [{when}] {}", s.n, s.en),
                NarrationLang::Both => println!("{:>2}. [{when}] {}\n    {}", s.n, s.ja, s.en),
            }
        }
        self.steps.push(s);
    }

    /// Records a check of the current step.
    fn check(&mut self, ok: bool, ja: impl Into<String>, en: impl Into<String>) -> bool {
        let c = Check {
            ok,
            ja: ja.into(),
            en: en.into(),
        };
        if !self.json {
            let mark = if ok { "✓" } else { "✗" };
            match self.lang {
                NarrationLang::Ja => println!("    {mark} {}", c.ja),
                NarrationLang::En => println!("    {mark} {}", c.en),
                NarrationLang::Both => println!("    {mark} {}\n      {}", c.ja, c.en),
            }
        }
        if let Some(s) = self.steps.last_mut() {
            s.ok &= ok;
            s.checks.push(c);
        }
        ok
    }

    /// Records an error that ends the story.
    fn fail(&mut self, e: &anyhow::Error) {
        let msg = format!("{e:#}");
        self.check(
            false,
            format!("失敗しました: {msg}"),
            format!("failed: {msg}"),
        );
    }

    fn set_time(&self, t: DateTime<Utc>) {
        self.clock.set(t);
    }

    fn failures(&self) -> usize {
        self.steps.iter().filter(|s| !s.ok).count()
    }
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    if std::env::var_os("COCOA_LOG").is_some() {
        serve::init_logging();
    }
    let (_tmp, root) = match &args.data {
        Some(d) => {
            if std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some()) {
                return Err(bad_input(format!(
                    "--data {} は空ではありません。空のフォルダを指定してください。 / --data {} is not empty: give an empty folder.",
                    d.display(),
                    d.display()
                )));
            }
            std::fs::create_dir_all(d)?;
            (None, d.clone())
        }
        None => {
            let t = tempfile::tempdir()?;
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };
    let clock = Arc::new(FixedClock::new(jst_at(2020, 12, 8, 10, 0)));
    let mut story = Story {
        lang: args.lang,
        json: args.json,
        clock: clock.clone(),
        steps: Vec::new(),
        temporary: args.data.is_none(),
    };
    story.say(
        "cocoa-rs デモ: 処理番号の発行から接触の通知まで（時計は注入、日付は一瞬で進みます）",
        "cocoa-rs demo: from the processing number to the exposure notification (injected clock: the days pass at once)",
    );
    // The narration shows paths under `root` (the outbox, the phones): say
    // where they are and that a temporary folder does not outlive the demo.
    if story.temporary {
        story.say(
            &format!(
                "※ サーバーのデータ・送信箱・スマートフォンは一時フォルダ {} にあり、デモの終了時に削除されます。残すには --data DIR を指定してください。",
                root.display()
            ),
            &format!(
                "Note: the server data, the outbox and the phones are in the temporary folder {}, deleted when the demo exits; keep them with --data DIR.",
                root.display()
            ),
        );
    } else {
        story.say(
            &format!(
                "※ サーバーのデータ・送信箱・スマートフォンは {} に残ります。",
                root.display()
            ),
            &format!(
                "Note: the server data, the outbox and the phones are kept in {}.",
                root.display()
            ),
        );
    }
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(tell(&mut story, &root, clock));
    if let Err(e) = &result {
        story.fail(e);
    }
    let failures = story.failures();
    if args.json {
        super::print_json(&json!({
            "ok": failures == 0,
            "data": args.data.as_ref().map(|d| d.display().to_string()),
            "steps": story.steps,
        }))?;
    } else {
        println!();
        if failures == 0 {
            story.say(
                "✓ 全ての手順が期待どおりに進みました。",
                "✓ Every step happened as it should.",
            );
        } else {
            story.say(
                &format!("✗ {failures} 個の手順が期待どおりではありませんでした。"),
                &format!(
                    "✗ {} did not happen as they should.",
                    en_count(failures as u64, "step")
                ),
            );
        }
        if let Some(d) = &args.data {
            story.say(
                &format!("ファイルは {} に残しました。", d.display()),
                &format!("The files are kept in {}.", d.display()),
            );
        } else {
            story.say(
                &format!(
                    "一時フォルダ {} は削除します（残すには --data DIR）。",
                    root.display()
                ),
                &format!(
                    "The temporary folder {} is deleted now (keep it with --data DIR).",
                    root.display()
                ),
            );
        }
    }
    if failures == 0 {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "デモの {failures} 個の手順が失敗しました / {}",
            en_count(failures as u64, "demo step") + " failed"
        ))
    }
}

fn phone_rng() -> device::Rng {
    Box::new(rand::rngs::OsRng)
}

async fn tell(story: &mut Story, root: &Path, clock: Arc<FixedClock>) -> anyhow::Result<()> {
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let data = root.join("data");
    let mut c = CocoaConfig {
        listen: "127.0.0.1:0".into(),
        data: data.clone(),
        ..CocoaConfig::default()
    };
    serve_demo::apply_settings(&mut c);

    // 1. The deployment.
    story.step(
        "deploy",
        "保健所側（HER-SYS・処理番号）、通知サーバー、書き出しを1つのプロセスで起動",
        "Start the health-centre side (HER-SYS, processing numbers), the notification server and the exporter in one process",
    );
    let roles = serve::build_roles(&c, dyn_clock.clone()).await?;
    let info = serve_demo::seed(&c, &roles).await?;
    let exporter = roles.exporter.clone().context("no exporter")?;
    let listener = tokio::net::TcpListener::bind(&c.listen).await?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(issuer::http::serve_router(roles.router, listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let health = http.get(format!("{url}/healthz")).send().await?;
    story.check(
        health.status() == 200,
        format!("{url}/healthz が HTTP で応答（{}）", health.status()),
        format!("{url}/healthz answers over HTTP ({})", health.status()),
    );
    story.check(
        info.seed.centre_id > 0 && info.credentials.staff_password.is_some(),
        format!(
            "保健所「{}」と職員アカウント「{}」を用意",
            issuer::demo::DEMO_CENTRE_NAME,
            info.credentials.staff_login
        ),
        format!(
            "health centre {} and staff account {:?} ready",
            issuer::demo::DEMO_CENTRE_NAME,
            info.credentials.staff_login
        ),
    );
    let export_pem = std::fs::read_to_string(&info.export_key)?;

    // 2. Three phones.
    story.step(
        "phones",
        "スマートフォン A・B・C にアプリを設定（東京都）",
        "Set up the app on phones A, B and C (Tokyo)",
    );
    let home = |p: &str| root.join("phones").join(p);
    for p in ["a", "b", "c"] {
        let settings = Settings {
            prefecture: Some("13".into()),
            server: Some(url.clone()),
            api_key: Some(info.credentials.device_api_key.clone()),
            export_public_keys: vec![export_pem.clone()],
            ..Settings::default()
        };
        let phone = Phone::init(&home(p), settings, dyn_clock.clone(), phone_rng())?;
        let st = phone.status()?;
        story.check(
            st.keys == 1,
            format!("{} に設定、今日の鍵を1つ生成", p.to_uppercase()),
            format!("{} set up with today's key", p.to_uppercase()),
        );
    }
    let open = |p: &str| Phone::open(&home(p), dyn_clock.clone(), phone_rng());

    // 3. A meets C, three days before the window.
    let met_c = jst_at(2020, 12, 9, 14, 0);
    story.set_time(met_c + chrono::Duration::minutes(40));
    story.step(
        "meet_c",
        "A と C が 1 m の距離で30分間一緒に過ごす（通知対象期間の3日前）",
        "A and C spend 30 minutes 1 m apart (three days before the notification window)",
    );
    let (mut a, mut cph) = (open("a")?, open("c")?);
    let r = device::meet(&mut a, &mut cph, met_c, 30, 1.0)?;
    story.check(
        r.scans > 0,
        format!("互いに{}回記録（減衰 {} dB）", r.scans, r.attenuation_db),
        format!(
            "each phone recorded the other {} times (attenuation {} dB)",
            r.scans, r.attenuation_db
        ),
    );
    drop((a, cph));

    // 4. A meets B, two days before A's symptoms.
    let met_b = jst_at(2020, 12, 12, 14, 0);
    story.set_time(met_b + chrono::Duration::minutes(30));
    story.step(
        "meet_b",
        "A と B が 1 m の距離で20分間一緒に過ごす（A の発症の2日前）",
        "A and B spend 20 minutes 1 m apart (two days before A's symptoms begin)",
    );
    let (mut a, mut b) = (open("a")?, open("b")?);
    let r = device::meet(&mut a, &mut b, met_b, 20, 1.0)?;
    story.check(
        r.scans > 0,
        format!("互いに{}回記録（減衰 {} dB）", r.scans, r.attenuation_db),
        format!(
            "each phone recorded the other {} times (attenuation {} dB)",
            r.scans, r.attenuation_db
        ),
    );
    drop((a, b));

    // 5. The clinic reports A's case.
    story.set_time(jst_at(2020, 12, 16, 9, 0));
    story.step(
        "case",
        "帰国者・接触者外来が A を確定患者として HER-SYS に報告（機械API）: 12月14日発症、12月15日診断",
        "The outpatient clinic reports A as a confirmed case to HER-SYS (machine API): symptoms from 14 Dec, diagnosed 15 Dec",
    );
    let mobile = "090-1234-5678";
    let case = issuer::demo::demo_case(
        (
            "横口 健太",
            "ヨコグチ ケンタ",
            "1998-09-09",
            api_types::cases::Sex::Male,
            mobile,
        ),
        "2020-12-15",
    );
    let resp = http
        .post(format!("{url}/api/v1/cases"))
        .header("X-API-Key", &info.credentials.admin_api_key)
        .header("Idempotency-Key", "demo-case-a")
        .json(&case)
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let case_id = body["case_id"].as_i64().unwrap_or(0);
    story.check(
        status == 201 && case_id > 0,
        format!("HTTP {status}、患者ID {case_id}（氏名・フリガナ・携帯電話・担当保健所あり）"),
        format!("HTTP {status}, case {case_id} (name in kanji and kana, mobile, health centre)"),
    );

    // 6. Staff press 処理番号発行.
    story.set_time(jst_at(2020, 12, 16, 9, 30));
    story.step(
        "issue",
        "保健所の職員がポータルにログインし、ID管理タブで「処理番号発行」を押す",
        "Health-centre staff log in to the portal and press 処理番号発行 on the ID管理 tab",
    );
    let mut browser = Browser::new(&url)?;
    let login = browser
        .submit(
            "/portal/login",
            "/portal/login",
            &[
                ("login", info.credentials.staff_login.as_str()),
                (
                    "password",
                    info.credentials
                        .staff_password
                        .as_deref()
                        .unwrap_or_default(),
                ),
            ],
        )
        .await?;
    story.check(
        login.status == 303 && login.location == "/portal/cases",
        format!("ログイン成功（HTTP {} → {}）", login.status, login.location),
        format!("logged in (HTTP {} → {})", login.status, login.location),
    );
    let case_path = format!("/portal/cases/{case_id}");
    let issued = browser
        .submit(
            &format!("{case_path}/issue"),
            &format!("{case_path}/issue"),
            &[],
        )
        .await?;
    story.check(
        issued.status == 303 && issued.location.contains("msg=sent"),
        format!(
            "確認画面を経て発行（HTTP {} → {}）",
            issued.status, issued.location
        ),
        format!(
            "issued after the confirmation page (HTTP {} → {})",
            issued.status, issued.location
        ),
    );
    let screen = browser.get(&format!("{case_path}?tab=id&msg=sent")).await?;
    story.check(
        screen.status == 200 && screen.body.contains("処理番号を送信しました"),
        "画面には「処理番号を送信しました。」とだけ表示",
        "the screen says only that the number was sent",
    );

    // 7. The SMS.
    story.step(
        "sms",
        "A の携帯電話に HER-SYS から SMS が届く（ここでは送信箱のファイル）",
        "A's phone receives the SMS from HER-SYS (here: a file in the outbox)",
    );
    let (file, to, text) = newest_message(&info.outbox)?;
    let number = text
        .lines()
        .find_map(|l| l.strip_prefix("処理番号: "))
        .map(|n| n.trim().to_owned())
        .unwrap_or_default();
    let (where_ja, where_en) = if story.temporary {
        (
            "（一時フォルダ、終了時に削除）",
            " (a temporary folder, deleted at exit)",
        )
    } else {
        ("", "")
    };
    story.check(
        to.chars().filter(char::is_ascii_digit).collect::<String>() == "09012345678",
        format!(
            "送信箱 {}{where_ja} に {file}（宛先 {to}）",
            info.outbox.display()
        ),
        format!(
            "{file} in the outbox {}{where_en} (to {to})",
            info.outbox.display()
        ),
    );
    story.check(
        number.len() == 8 && number.bytes().all(|b| b.is_ascii_digit()),
        "本文に8桁の処理番号とアプリへのリンク",
        "the text holds an 8-digit processing number and the app link",
    );
    story.check(
        !number.is_empty() && !screen.body.contains(&number),
        "処理番号は職員の画面に表示されていない",
        "the number never appeared on the staff screen",
    );

    // 8. A registers.
    story.set_time(jst_at(2020, 12, 16, 10, 0));
    story.step(
        "register",
        "A が陽性登録: ① 症状あり ② 最初の日 12月14日 ③ 処理番号（全角で入力）→ 登録する",
        "A registers: ① symptoms yes ② first day 14 Dec ③ the number (typed in full-width digits) → 登録する",
    );
    let full_width: String = number
        .chars()
        .map(|c| char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap_or(c))
        .collect();
    let input = RegistrationInput {
        symptoms: true,
        date: date(2020, 12, 14),
        code: device::normalise_number(&full_width)
            .map_err(|e| anyhow::anyhow!("{}", e.text().en))?,
    };
    let mut a = open("a")?;
    let outcome = a
        .register(Some(&input))
        .await
        .map_err(|e| anyhow::anyhow!("[{}] {}", e.code(), e.text().en))?;
    drop(a);
    let from = outcome.contacts_from.with_timezone(&jst());
    story.check(
        outcome.stage == device::Stage::Published,
        format!(
            "確認 → 証明書 → 公開まで完了、鍵 {} 個送信・{} 個受理",
            outcome.keys, outcome.inserted
        ),
        format!(
            "verify → certificate → publish done: {} keys sent, {} accepted",
            outcome.keys, outcome.inserted
        ),
    );
    story.check(
        from == jst_at(2020, 12, 12, 0, 0),
        format!(
            "通知対象は {} 以降の接触（発症日の2日前から）",
            from.format("%Y-%m-%d %H:%M JST")
        ),
        format!(
            "contacts from {} on are notified (2 days before the first day)",
            from.format("%Y-%m-%d %H:%M JST")
        ),
    );

    // 9. Export.
    story.set_time(jst_at(2020, 12, 16, 10, 5));
    story.step(
        "export",
        "通知サーバーが署名付きの書き出しファイルを公開",
        "The notification server publishes signed export files",
    );
    let r = exporter
        .run_cycle(keyserver::export::CycleOptions { min_age: 0 })
        .await?;
    let index = http
        .get(format!("{url}/exports/index.txt"))
        .send()
        .await?
        .text()
        .await?;
    story.check(
        !r.files.is_empty() && r.files.iter().all(|f| index.contains(f.as_str())),
        format!("{} 個のファイルを書き出し、index.txt に掲載", r.files.len()),
        format!(
            "{} written and listed in index.txt",
            en_count(r.files.len() as u64, "file")
        ),
    );

    // 10. B is notified.
    story.set_time(jst_at(2020, 12, 16, 12, 0));
    story.step(
        "notified",
        "B のアプリが接触を確認する",
        "B's app checks for exposure",
    );
    let mut b = open("b")?;
    let rb = b
        .check()
        .await
        .map_err(|e| anyhow::anyhow!("[{}] {}", e.code(), e.text().en))?;
    drop(b);
    let n = &rb.notification;
    story.check(
        n.contacts == 1,
        format!("陽性者との接触 {} 件", n.contacts),
        format!(
            "{} with a positive case",
            en_count(n.contacts as u64, "contact")
        ),
    );
    story.check(
        n.dates == ["2020-12-12"],
        format!("接触日 {:?}（時刻・場所・相手は伝えない）", n.dates),
        format!(
            "{} {:?} (never the time, place or person)",
            if n.dates.len() == 1 { "date" } else { "dates" },
            n.dates
        ),
    );
    let centre = &n.consultation_centre;
    story.check(
        centre.prefecture == "13" && !centre.name.is_empty(),
        format!(
            "相談先: {}（{}）、{} {}",
            centre.name,
            centre.prefecture_name,
            centre.national_line.name,
            centre.national_line.phone
        ),
        format!(
            "whom to call: {}, {} {}",
            centre.name_en, centre.national_line.name_en, centre.national_line.phone
        ),
    );
    story.check(
        rb.check.failed.is_empty() && rb.check.files_new > 0,
        format!("署名を確認したファイル {} 個、拒否 0", rb.check.files_new),
        format!(
            "{} with verified signatures, none refused",
            en_count(rb.check.files_new as u64, "file")
        ),
    );

    // 11. C is not.
    story.step(
        "not_notified",
        "C のアプリが接触を確認する（A と会ったのは通知対象期間より前）",
        "C's app checks for exposure (met A before the notification window)",
    );
    let mut cph = open("c")?;
    let rc = cph
        .check()
        .await
        .map_err(|e| anyhow::anyhow!("[{}] {}", e.code(), e.text().en))?;
    drop(cph);
    story.check(
        rc.notification.contacts == 0 && rc.check.files_new > 0,
        format!(
            "接触 {} 件（同じファイルを確認したうえで）",
            rc.notification.contacts
        ),
        format!(
            "{} contacts (after checking the same files)",
            rc.notification.contacts
        ),
    );

    // 12. The rules of a used number.
    story.step(
        "used",
        "使用済みの処理番号は使えず、登録に成功した患者には再発行できない",
        "A used number is refused, and a patient who registered cannot get another",
    );
    let again = http
        .post(format!("{url}/api/verify"))
        .header("X-API-Key", &info.credentials.device_api_key)
        .json(&json!({"code": number}))
        .send()
        .await?;
    let again_status = again.status();
    let again: Value = again.json().await.unwrap_or(Value::Null);
    story.check(
        again["errorCode"] == "code_invalid",
        format!("同じ番号での再登録は拒否（HTTP {again_status}、code_invalid）"),
        format!("the same number again is refused (HTTP {again_status}, code_invalid)"),
    );
    // The morning's session has timed out: the staff log in again.
    let mut browser = Browser::new(&url)?;
    browser
        .submit(
            "/portal/login",
            "/portal/login",
            &[
                ("login", info.credentials.staff_login.as_str()),
                (
                    "password",
                    info.credentials
                        .staff_password
                        .as_deref()
                        .unwrap_or_default(),
                ),
            ],
        )
        .await?;
    let reissue = browser
        .submit(
            &format!("{case_path}?tab=id"),
            &format!("{case_path}/issue"),
            &[],
        )
        .await?;
    story.check(
        reissue.status == 409 && reissue.body.contains("再発行できません"),
        format!("ポータルでの再発行は拒否（HTTP {}）: 「一度登録に成功した場合には処理番号を再発行できません」", reissue.status),
        format!("reissue in the portal is refused (HTTP {}): a registration already succeeded", reissue.status),
    );

    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}

/// `1 contact`, `2 contacts`: English counts read naturally.
fn en_count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
