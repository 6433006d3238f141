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
    match lang {
        Lang::Ja => format!(
            "{} にアプリを設定しました（都道府県: {}、{}）。",
            s.home,
            or_dash(s.prefecture.as_deref()),
            s.installed_at.to_rfc3339()
        ),
        Lang::En => format!(
            "Set up a phone in {} (prefecture {}, {}).",
            s.home,
            or_dash(s.prefecture.as_deref()),
            s.installed_at.to_rfc3339()
        ),
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

pub fn checked(lang: Lang, r: &CheckReport) -> String {
    let c = &r.check;
    let mut out = String::from(r.notification.message.get(lang));
    match lang {
        Lang::Ja => out.push_str(&format!(
            "\n（新しいファイル {} 件、鍵 {} 個、処理できなかったファイル {} 件）",
            c.files_new,
            c.keys,
            c.failed.len()
        )),
        Lang::En => out.push_str(&format!(
            "\n({} new files, {} keys, {} files failed)",
            c.files_new,
            c.keys,
            c.failed.len()
        )),
    }
    for f in &c.failed {
        out.push_str(&format!("\n  failed {}: {}", f.url, f.reason));
    }
    out
}

pub fn status(lang: Lang, s: &Status) -> String {
    let reg = s
        .registration
        .as_ref()
        .map(|r| format!("{:?}", r.stage).to_lowercase())
        .unwrap_or_else(|| "-".into());
    let last = s
        .last_checked
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| "-".into());
    match lang {
        Lang::Ja => format!(
            "フォルダ: {}\n現在: {}\n都道府県: {}\n鍵: {}個（最古 {}）\n記録した接触: {}件\n陽性登録: {}\n最終確認: {}\n陽性者との接触: {}件 {}",
            s.home,
            s.now.to_rfc3339(),
            or_dash(s.prefecture.as_deref()),
            s.keys,
            or_dash(s.oldest_key_day.as_deref()),
            s.sightings,
            reg,
            last,
            s.contacts,
            s.dates.join(", ")
        ),
        Lang::En => format!(
            "home: {}\nnow: {}\nprefecture: {}\nkeys: {} (oldest {})\nsightings: {}\nregistration: {}\nlast checked: {}\ncontacts: {} {}",
            s.home,
            s.now.to_rfc3339(),
            or_dash(s.prefecture.as_deref()),
            s.keys,
            or_dash(s.oldest_key_day.as_deref()),
            s.sightings,
            reg,
            last,
            s.contacts,
            s.dates.join(", ")
        ),
    }
}
