//! `cocoa serve --demo`: the demo settings, the idempotent seed (demo
//! centre, staff login, confirmed cases, API keys) and the banner with the
//! portal URL, the login and the next commands. For local demos only.
//!
//! The plain API keys and the staff password exist only when they are made;
//! the demo keeps them in `<data>/demo-credentials.json` (mode 0600) so a
//! second start prints the same ones instead of making new ones.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use issuer::demo::{DEMO_CENTRE_NAME, DEMO_STAFF_LOGIN, DemoSeed};
use issuer::store::ApiKeyKind;
use serde::{Deserialize, Serialize};

use super::Roles;
use super::config::{CocoaConfig, Role};

/// The file holding the demo's secrets, under the data folder.
pub const CREDENTIALS_FILE: &str = "demo-credentials.json";

/// The export signing public key phones must trust, under the data folder.
pub const EXPORT_KEY_FILE: &str = "export-public-key.pem";

/// Settings that make the loop quick: every role, batches of 5 minutes cut
/// one minute after they close, the exporter looking every 15 seconds
/// (`cocoa keyserver export-now --min-age 0s` exports at once).
pub fn apply_settings(c: &mut CocoaConfig) {
    c.role = Role::All;
    let e = &mut c.keyserver.export;
    e.batch_period = Duration::from_secs(300);
    e.min_age = Duration::from_secs(60);
    e.interval = Duration::from_secs(15);
}

/// The demo's secrets, as kept in [`CREDENTIALS_FILE`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// Staff login id.
    pub staff_login: String,
    /// Staff password (known only when the demo made the account).
    pub staff_password: Option<String>,
    /// API key of the device API (for `cocoa app init --api-key`).
    pub device_api_key: String,
    /// API key of the machine API of the demo centre.
    pub admin_api_key: String,
}

/// What the seed found or made.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    /// The centre, staff and cases.
    pub seed: DemoSeed,
    /// The secrets.
    pub credentials: Credentials,
    /// Whether anything was created by this start.
    pub created: bool,
    /// The data folder.
    pub data: PathBuf,
    /// The outbox folder.
    pub outbox: PathBuf,
    /// The export public key file.
    pub export_key: PathBuf,
}

fn random_password() -> String {
    use rand::Rng as _;
    // No 0/O, 1/l/I: it is read off a terminal.
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Makes sure the demo centre, staff login, cases and API keys exist
/// (nothing is made twice) and writes the export public key file.
pub async fn seed(c: &CocoaConfig, roles: &Roles) -> anyhow::Result<DemoInfo> {
    let app = roles
        .issuer
        .as_ref()
        .context("the demo needs the issuer role")?;
    let exporter = roles
        .exporter
        .as_ref()
        .context("the demo needs the exporter role")?;
    let issuer = &app.issuer;
    let cred_path = c.data.join(CREDENTIALS_FILE);
    let mut creds: Credentials = match std::fs::read_to_string(&cred_path) {
        Ok(s) => {
            serde_json::from_str(&s).with_context(|| format!("reading {}", cred_path.display()))?
        }
        Err(_) => Credentials::default(),
    };
    let mut changed = false;
    let password = creds.staff_password.clone().unwrap_or_else(random_password);
    let seed = issuer::demo::ensure_demo(issuer, &password)
        .await
        .context("seeding the demo")?;
    if seed.staff_created {
        creds.staff_password = Some(password);
        changed = true;
    }
    if creds.staff_login != DEMO_STAFF_LOGIN {
        creds.staff_login = DEMO_STAFF_LOGIN.to_owned();
        changed = true;
    }
    let live = |key: &str, kind| {
        let key = key.to_owned();
        async move { !key.is_empty() && issuer.authenticate(Some(&key), kind).await.is_ok() }
    };
    if !live(&creds.device_api_key, ApiKeyKind::Device).await {
        creds.device_api_key = issuer.create_api_key(ApiKeyKind::Device, None).await?.0;
        changed = true;
    }
    let admin_ok = live(&creds.admin_api_key, ApiKeyKind::Admin).await
        && issuer
            .authenticate(Some(&creds.admin_api_key), ApiKeyKind::Admin)
            .await
            .is_ok_and(|k| k.centre_id == Some(seed.centre_id));
    if !admin_ok {
        creds.admin_api_key = issuer
            .create_api_key(ApiKeyKind::Admin, Some(seed.centre_id))
            .await?
            .0;
        changed = true;
    }
    if changed {
        store_support::private::write_private_replace(
            &cred_path,
            &serde_json::to_string_pretty(&creds)?,
        )
        .with_context(|| format!("writing {}", cred_path.display()))?;
    }
    // The banner's `ls <outbox>` works before the first SMS (issue 15: "create
    // `./data/outbox` at start so the banner's `ls` works"); it holds names
    // and phone numbers, so it is made like the data folder, owner only.
    let outbox = c
        .issuer
        .outbox
        .clone()
        .unwrap_or_else(|| c.data.join("outbox"));
    store_support::private::create_private_dir(&outbox)?;
    let export_key = c.data.join(EXPORT_KEY_FILE);
    let pems: String = keyserver::signing::public_keys(exporter.signers())?
        .into_iter()
        .map(|(_, pem)| pem)
        .collect();
    std::fs::write(&export_key, pems)
        .with_context(|| format!("writing {}", export_key.display()))?;
    Ok(DemoInfo {
        created: changed || seed.centre_created || seed.cases_created > 0,
        seed,
        credentials: creds,
        data: c.data.clone(),
        outbox,
        export_key,
    })
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Quotes a path for a shell when it needs it.
fn sh(p: &Path) -> String {
    let s = p.display().to_string();
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"./_-:".contains(&b))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The mobile number of demo case `case`: the seed created its cases in
/// the order of `DEMO_PATIENTS`, so their ids rise in that order.
fn demo_mobile(case_ids: &[i64], case: i64) -> &'static str {
    let mut ids = case_ids.to_vec();
    ids.sort_unstable();
    ids.iter()
        .position(|&id| id == case)
        .and_then(|i| issuer::demo::DEMO_PATIENTS.get(i))
        .map_or("090-0000-0001", |p| p.4)
}

/// The banner: what runs, the login, the keys and the next commands, in
/// Japanese and English. Every command it prints works when pasted in order
/// into a POSIX shell in the folder the server was started in (a test,
/// `demo_cli::every_command_the_banner_prints_works_when_pasted_in_order`,
/// runs them): the curl carries an `Idempotency-Key`, the registration
/// takes the SMS's app link from the outbox, and `cocoa` is the binary this
/// server runs from (its path is printed, with how to put it on the PATH).
pub fn banner(info: &DemoInfo, url: &str, now: DateTime<Utc>) -> String {
    let exe = std::env::current_exe()
        .map(|p| sh(&p))
        .unwrap_or_else(|_| "target/release/cocoa".into());
    let c = &info.credentials;
    let jst = issuer::service::jst();
    let today = now.with_timezone(&jst).date_naive();
    let setup = now - chrono::Duration::days(3);
    // Two days ago, ending before midnight in Japan (contacts are dated by
    // Japan's calendar: a meeting split across 00:00 JST counts as two
    // shorter contacts, on two days).
    let mut met = now - chrono::Duration::days(2);
    if met.with_timezone(&jst).time()
        >= chrono::NaiveTime::from_hms_opt(23, 0, 0).unwrap_or_default()
    {
        met -= chrono::Duration::hours(1);
    }
    let data = sh(&info.data);
    let phones = |x: &str| format!("./phones/{x}");
    let password = c.staff_password.clone().unwrap_or_else(|| {
        format!(
            "（不明: {} を消したため。{} を消すと作り直します / unknown: delete {} to start over）",
            CREDENTIALS_FILE, data, data
        )
    });
    let case = info.seed.case_ids.last().copied().unwrap_or(1);
    let state = if info.created {
        "デモ用のデータを用意しました。 / Demo data created."
    } else {
        "既存のデモ用データを使います（重複して作成していません）。 / Demo data already present (nothing created twice)."
    };
    let mut out = String::new();
    out.push_str(&format!(
        "\n======== cocoa-rs デモ / demo ========\n\
         ※ ローカルでのデモ専用です。本番や公開されたネットワークでは使わないでください。\n\
         ※ For local demos only: never in production or on a public network.\n\
         {state}\n\n\
         ポータル / Staff portal:      {url}/portal/\n\
         ログイン / Login:             {login}\n\
         パスワード / Password:        {password}\n\
         保健所 / Health centre:       {centre} (id {centre_id}, 東京都 / Tokyo)\n\
         確定患者 / Confirmed cases:   {cases}\n\
         端末API鍵 / Device API key:   {device}\n\
         機械API鍵 / Machine API key:  {admin}\n\
         SMS・メール / Outbox:         {outbox}\n\
         書き出しの公開鍵 / Export key: {key}\n\
         （秘密の値は {creds} に保存 / secrets kept in {creds}）\n",
        login = c.staff_login,
        centre = DEMO_CENTRE_NAME,
        centre_id = info.seed.centre_id,
        cases = info.seed.case_ids.len(),
        device = c.device_api_key,
        admin = c.admin_api_key,
        outbox = sh(&info.outbox),
        key = sh(&info.export_key),
        creds = sh(&info.data.join(CREDENTIALS_FILE)),
    ));
    out.push_str(&format!(
        "\nコマンドの cocoa はこのサーバーのプログラム {exe} です。PATH に無ければ cargo install --path crates/cocoa で入れるか、\n\
         cocoa の代わりに target/release/cocoa（cargo build --release -p cocoa の後）と入力してください。\n\
         The cocoa below is this server's binary, {exe}; if it is not on your PATH, install it with\n\
         cargo install --path crates/cocoa, or type target/release/cocoa instead (after cargo build --release -p cocoa).\n\
         \n次に試すコマンド（このフォルダで順に貼り付け） / Next commands to try (paste them in order, in this folder):\n\n\
         # 1. スマートフォン3台を3日前に設定 / three phones, set up three days ago\n\
         for p in a b c; do cocoa app --home ./phones/$p --now {setup} init --prefecture 13 \\\n\
         \x20   --server {url} --api-key {device} --export-public-key {key}; done\n\n\
         # 2. 2日前、A は B と 1 m で20分、C と 4 m で20分 / two days ago A met B (20 min at 1 m) and C (20 min at 4 m)\n\
         cocoa app meet --home {a} --home {b} --at {met} --minutes 20 --distance 1\n\
         cocoa app meet --home {a} --home {cc} --at {met} --minutes 20 --distance 4\n\n\
         # 3. ポータルで患者を開き「処理番号発行」を押す（または機械API） / in the portal open a case and press 処理番号発行 (or the machine API)\n\
         #    （Idempotency-Key: 同じ値なら同じ答え、SMS は1通だけ / the same key gets the same answer and one SMS）\n\
         curl -sS -X POST -H 'X-API-Key: {admin}' -H \"Idempotency-Key: demo-$(date +%s)\" {url}/api/v1/cases/{case}/processing-number; echo\n\
         ls {outbox}    # 届いたSMS / the SMS that was sent\n\n\
         # 4. A が陽性登録: SMSのリンクを開く（または --number にSMSの8桁の処理番号） / A registers with the SMS's link (or --number and its 8 digits)\n\
         cocoa app --home {a} register --symptoms yes --date {today} --link \"$(grep -ho 'https://[^ \"]*pn=[0-9A-Za-z]*' {outbox}/*.json | tail -n 1)\"\n\n\
         # 5. すぐに書き出す / export now\n\
         cocoa keyserver --data {data} export-now --min-age 0s\n\n\
         # 6. 接触確認: B は1件、C は0件 / check: B has 1 contact, C none\n\
         cocoa app --home {b} check\n\
         cocoa app --home {cc} check\n\n\
         物語全体を1コマンドで / the whole story in one command: cocoa demo\n\n\
         スマートフォンの画面で見る（別の端末で。Ctrl-C で終了） / See it on the phones' screens (in another terminal; Ctrl-C to stop):\n\
         cocoa app ui --home {a} --home {b} --home {cc} --outbox {outbox} --contact {mobile} --listen 127.0.0.1:8091\n\
         → http://127.0.0.1:8091/p/0/ (A: SMS と陽性登録 / the SMS and registering), /p/1/ (B), /p/2/ (C)\n\
         ======================================\n",
        mobile = demo_mobile(&info.seed.case_ids, case),
        setup = rfc(setup),
        device = c.device_api_key,
        admin = c.admin_api_key,
        key = sh(&info.export_key),
        a = phones("a"),
        b = phones("b"),
        cc = phones("c"),
        met = rfc(met),
        outbox = sh(&info.outbox),
    ));
    out
}
