//! The text `cocoa app` prints for people (without `--json`).

use device::{CheckReport, Lang, MeetReport, RegistrationOutcome, Settings, Status};
use serde_json::{Value, json};

fn or_dash(v: Option<&str>) -> &str {
    v.unwrap_or("-")
}

/// The settings as JSON, without the API key.
pub fn settings_json(s: &Settings) -> Value {
    json!({
        "prefecture": s.prefecture,
        "server": s.server,
        "api_key": s.api_key.as_ref().map(|_| "<set>"),
        "keyserver": s.keyserver,
        "exports": s.exports,
        "export_public_keys": s.export_public_keys.len(),
        "health_authority_id": s.health_authority_id,
        "region": s.region,
        "tx_power": s.tx_power,
        "lang": s.lang,
        "consultation_centres_url": s.consultation_centres_url,
    })
}

pub fn settings_text(s: &Settings) -> String {
    format!(
        "prefecture: {}\nserver: {}\nkeyserver: {}\nexports: {}\nexport public keys: {}\nhealth authority id: {}\nregion: {}\ntx power: {} dBm",
        or_dash(s.prefecture.as_deref()),
        or_dash(s.server.as_deref()),
        or_dash(s.keyserver.as_deref()),
        or_dash(s.exports.as_deref()),
        s.export_public_keys.len(),
        s.health_authority_id,
        s.region,
        s.tx_power
    )
}

pub fn initialised(lang: Lang, s: &Status) -> String {
    let pref = prefecture_name(lang, s.prefecture.as_deref());
    let at = device::text::jst_minute(lang, s.installed_at);
    match lang {
        Lang::Ja => format!(
            "{} にアプリを設定しました（都道府県: {pref}、{at}）。",
            s.home
        ),
        Lang::En => format!("Set up a phone in {} (prefecture: {pref}, {at}).", s.home),
    }
}

pub fn met(lang: Lang, r: &MeetReport, minutes: u32, distance: f64) -> String {
    match lang {
        Lang::Ja => format!(
            "{minutes}分間、{distance} m の距離で接触しました: 各スマートフォンが{}回記録（減衰 {} dB、RSSI {} / {} dBm）。",
            r.scans, r.attenuation_db, r.rssi_a, r.rssi_b
        ),
        Lang::En => format!(
            "Met for {minutes} min at {distance} m: each phone recorded {} scans (attenuation {} dB, RSSI {} / {} dBm).",
            r.scans, r.attenuation_db, r.rssi_a, r.rssi_b
        ),
    }
}

pub fn registered(lang: Lang, o: &RegistrationOutcome) -> String {
    let head = match lang {
        Lang::Ja => format!(
            "{}送信した鍵: {}個（受理: {}個）",
            if o.resumed {
                "中断していた登録を再開しました。"
            } else {
                ""
            },
            o.keys,
            o.inserted
        ),
        Lang::En => format!(
            "{}Keys sent: {} (accepted: {})",
            if o.resumed {
                "Resumed the interrupted registration. "
            } else {
                ""
            },
            o.keys,
            o.inserted
        ),
    };
    format!("{head}\n{}", o.message.get(lang))
}

/// A prefecture code as people read it: 東京都 / Tokyo (the code when unknown).
fn prefecture_name(lang: Lang, code: Option<&str>) -> String {
    match code {
        None => match lang {
            Lang::Ja => "未設定".into(),
            Lang::En => "not set".into(),
        },
        Some(c) => {
            match <device::prefecture::Prefecture as device::prefecture::ParsePrefecture>::parse(c)
            {
                Ok(p) => match lang {
                    Lang::Ja => p.name_ja.into(),
                    Lang::En => p.name_en.into(),
                },
                Err(_) => c.into(),
            }
        }
    }
}

/// The short summary `check` prints without `--json`: what was found, whom
/// to call, and what this check did.
pub fn checked(lang: Lang, r: &CheckReport) -> String {
    let c = &r.check;
    let mut out = String::from(r.notification.message.get(lang));
    match lang {
        Lang::Ja => out.push_str(&format!(
            "\n今回の確認: 新しいファイル {}件、鍵 {}個（{:.1}秒）",
            c.files_new, c.keys, c.seconds
        )),
        Lang::En => out.push_str(&format!(
            "\nThis check: {} new {}, {} {} ({:.1} s)",
            c.files_new,
            if c.files_new == 1 { "file" } else { "files" },
            c.keys,
            if c.keys == 1 { "key" } else { "keys" },
            c.seconds
        )),
    }
    if !c.failed.is_empty() {
        out.push_str(&match lang {
            Lang::Ja => format!(
                "\n処理できなかったファイル {}件（次回以降の確認で再度取得します）:",
                c.failed.len()
            ),
            Lang::En => format!(
                "\n{} {} could not be processed (tried again at later checks):",
                c.failed.len(),
                if c.failed.len() == 1 { "file" } else { "files" }
            ),
        });
        for f in &c.failed {
            out.push_str(&format!("\n  {}: {}", f.url, f.reason_text().get(lang)));
        }
    }
    out
}

/// `status` without `--json`: Japanese (or English) words, Japan time to
/// the minute, the prefecture by name.
pub fn status(lang: Lang, s: &Status) -> String {
    let time = |t| device::text::jst_minute(lang, t);
    let reg = match (&s.registration, lang) {
        (None, Lang::Ja) => "未登録".to_owned(),
        (None, Lang::En) => "not registered".to_owned(),
        (Some(r), Lang::Ja) => {
            let mut t = format!("{}、{}", r.stage.text().ja, time(r.updated_at));
            if r.stage.in_progress() {
                t.push_str(&format!(
                    "\n  「cocoa app --home {} register」をもう一度実行すると続きから再開します",
                    s.home
                ));
            }
            t
        }
        (Some(r), Lang::En) => {
            let mut t = format!("{}, {}", r.stage.text().en, time(r.updated_at));
            if r.stage.in_progress() {
                t.push_str(&format!(
                    "\n  run `cocoa app --home {} register` again to resume",
                    s.home
                ));
            }
            t
        }
    };
    let last = match (s.last_checked, lang) {
        (Some(t), _) => time(t),
        (None, Lang::Ja) => "まだ確認していません".into(),
        (None, Lang::En) => "not checked yet".into(),
    };
    let failure = s.last_check_failure.as_ref().map(|f| match lang {
        Lang::Ja => format!(
            "\n最後の確認は失敗しました（{}）: {}",
            time(f.at),
            f.message.ja
        ),
        Lang::En => format!("\nThe last check failed ({}): {}", time(f.at), f.message.en),
    });
    let dates: Vec<String> = s
        .contact_dates
        .iter()
        .map(|d| match lang {
            Lang::Ja => device::text::ja_date(*d),
            Lang::En => d.to_string(),
        })
        .collect();
    let contacts = device::text::contacts_count(lang, s.contacts);
    let oldest = s
        .oldest_key_day
        .as_deref()
        .and_then(|d| d.parse::<chrono::NaiveDate>().ok())
        .map(|d| time(d.and_time(chrono::NaiveTime::MIN).and_utc()));
    let pref = prefecture_name(lang, s.prefecture.as_deref());
    let mut out = match lang {
        Lang::Ja => format!(
            "フォルダ: {}\n現在: {}\n都道府県: {}\n接触確認の鍵: {}個{}\n記録した接触: {}件\n陽性登録: {}\n最終確認: {}\n陽性者との接触: {}{}",
            s.home,
            time(s.now),
            pref,
            s.keys,
            oldest
                .map(|t| format!("（最も古い鍵: {t}から）"))
                .unwrap_or_default(),
            s.sightings,
            reg,
            last,
            contacts,
            if dates.is_empty() {
                String::new()
            } else {
                format!("（{}）", dates.join("、"))
            }
        ),
        Lang::En => format!(
            "home: {}\nnow: {}\nprefecture: {}\nkeys: {}{}\nsightings: {}\nregistration: {}\nlast checked: {}\ncontacts: {}{}",
            s.home,
            time(s.now),
            pref,
            s.keys,
            oldest
                .map(|t| format!(" (oldest from {t})"))
                .unwrap_or_default(),
            s.sightings,
            reg,
            last,
            contacts,
            if dates.is_empty() {
                String::new()
            } else {
                format!(" on {}", dates.join(", "))
            }
        ),
    };
    if let Some(f) = failure {
        out.push_str(&f);
    }
    if !s.failed_files.is_empty() {
        out.push_str(&match lang {
            Lang::Ja => format!("\n再取得を待っているファイル: {}件", s.failed_files.len()),
            Lang::En => format!(
                "\nfiles waiting to be tried again: {}",
                s.failed_files.len()
            ),
        });
    }
    out
}
