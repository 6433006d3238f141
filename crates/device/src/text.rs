//! Everything the app says to its user, in Japanese first and English after.
//!
//! The registration screen's wording is the seed's (the ver. 1.2.1 screen
//! 「陽性情報の登録」 of the notice of 2020-12-16); messages of our own follow its
//! plain, polite style.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A language the app speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Japanese (the default).
    #[default]
    Ja,
    /// English.
    En,
}

/// One message in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    /// Japanese.
    pub ja: String,
    /// English.
    pub en: String,
}

impl Text {
    /// A message from its two translations.
    pub fn new(ja: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            ja: ja.into(),
            en: en.into(),
        }
    }

    /// The message in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Ja => &self.ja,
            Lang::En => &self.en,
        }
    }
}

impl fmt::Display for Text {
    /// Japanese, then English after ` / ` (the convention of every cocoa-rs message).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {}", self.ja, self.en)
    }
}

/// The registration screen 「陽性情報の登録」, as the seed shows it.
pub mod screen {
    /// Title of the screen.
    pub const TITLE: &str = "陽性情報の登録";
    /// ① The symptom question.
    pub const SYMPTOMS_QUESTION: &str = "① 次のような症状がありますか？\n発熱、咳、呼吸困難、全身倦怠感、咽頭痛、鼻汁・鼻閉、頭痛、関節・筋肉痛、下痢、嘔気・嘔吐など";
    /// The two answers to ①.
    pub const SYMPTOMS_YES: &str = "ある";
    /// The two answers to ①.
    pub const SYMPTOMS_NO: &str = "ない";
    /// ② when there are symptoms.
    pub const ONSET_DATE: &str = "② 症状が始まった最初の日を入力してください。(覚えている範囲で一番古い日付を入力してください。入力した日付が誰かに知られることはありません。)";
    /// ② when there are none (the seed: 「症状「ない」を選択した場合は、検査日を入力してください。」).
    pub const TEST_DATE: &str =
        "② 検査を受けた日を入力してください。(入力した日付が誰かに知られることはありません。)";
    /// ③ The processing number.
    pub const NUMBER: &str = "③ SMSまたはメールで届いた処理番号を入力してください。";
    /// Placeholder of ③.
    pub const NUMBER_PLACEHOLDER: &str = "8桁の処理番号を入力してください";
    /// What registering does, shown before the button.
    pub const WHAT_HAPPENS: &str = "登録すると\n症状が始まった日または検査を受けた日の2日前以降にあなたと接触した人に通知が行きます";
    /// The anonymity notes under it.
    pub const ANONYMITY: &str = "※登録は匿名で行われ、氏名や連絡先など個人が特定される情報が他の人に知られることはありません\n※接触した場所がどこなのか記録されたり、他の人に知られることもありません";
    /// The seed's notes on the period and on what is sent.
    pub const PERIOD_NOTE: &str = "※ 入力された発症日又は検査日の日付にかかわらず、陽性登録から遡って14日間より前の接触について通知されることはありません。\n※ 入力された症状の有無や、発症日・検査日を、厚生労働省が取得したり、他の利用者へ通知されたりすることはありません。";
    /// The button.
    pub const BUTTON: &str = "登録する";

    /// English version of the screen, for `--lang en`.
    pub mod en {
        /// Title.
        pub const TITLE: &str = "Register a positive result";
        /// ①.
        pub const SYMPTOMS_QUESTION: &str = "1. Do you have any of these symptoms?\nfever, cough, difficulty breathing, general fatigue, sore throat, runny or stuffy nose, headache, joint or muscle pain, diarrhoea, nausea or vomiting";
        /// ② with symptoms.
        pub const ONSET_DATE: &str = "2. Enter the first day of your symptoms (the earliest date you remember; nobody will learn the date you enter).";
        /// ② without symptoms.
        pub const TEST_DATE: &str =
            "2. Enter the day you were tested (nobody will learn the date you enter).";
        /// ③.
        pub const NUMBER: &str = "3. Enter the processing number you received by SMS or e-mail.";
        /// Before the button.
        pub const WHAT_HAPPENS: &str = "When you register, people who were in contact with you from 2 days before the day your symptoms began (or the day you were tested) will be notified.";
        /// Anonymity.
        pub const ANONYMITY: &str = "Registration is anonymous: nobody learns your name, contact details or anything that identifies you. Where contacts took place is neither recorded nor disclosed.";
        /// Period and privacy notes.
        pub const PERIOD_NOTE: &str = "Whatever date you enter, contacts more than 14 days before your registration are never notified. Your symptom answer and the date are never sent to the Ministry or to other users.";
        /// Button.
        pub const BUTTON: &str = "Register";
    }
}

/// The screen as one text block in `lang`, for the given symptom answer.
pub fn registration_screen(lang: Lang, symptoms: bool) -> String {
    match lang {
        Lang::Ja => [
            screen::TITLE,
            screen::SYMPTOMS_QUESTION,
            if symptoms { "→ ある" } else { "→ ない" },
            if symptoms {
                screen::ONSET_DATE
            } else {
                screen::TEST_DATE
            },
            screen::NUMBER,
            screen::WHAT_HAPPENS,
            screen::ANONYMITY,
            screen::PERIOD_NOTE,
        ]
        .join("\n"),
        Lang::En => [
            screen::en::TITLE,
            screen::en::SYMPTOMS_QUESTION,
            if symptoms { "-> yes" } else { "-> no" },
            if symptoms {
                screen::en::ONSET_DATE
            } else {
                screen::en::TEST_DATE
            },
            screen::en::NUMBER,
            screen::en::WHAT_HAPPENS,
            screen::en::ANONYMITY,
            screen::en::PERIOD_NOTE,
        ]
        .join("\n"),
    }
}

/// A date as Japanese write it: `2020年12月14日`.
pub fn ja_date(d: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// A moment as people in Japan read it, to the minute: `2020年12月16日 12:00`
/// in Japanese, `2020-12-16 12:00 JST` in English (「日付は日本の暦日」: the
/// date and time are Japan's, never UTC).
pub fn jst_minute(lang: Lang, t: chrono::DateTime<chrono::Utc>) -> String {
    let local = t.with_timezone(&en_protocol::time::jst());
    match lang {
        Lang::Ja => local.format("%Y年%-m月%-d日 %H:%M").to_string(),
        Lang::En => local.format("%Y-%m-%d %H:%M JST").to_string(),
    }
}

/// A count of contacts in `lang`: 「1件」, and in English "1 contact",
/// "2 contacts" (never "contact(s)").
pub fn contacts_count(lang: Lang, n: usize) -> String {
    match (lang, n) {
        (Lang::Ja, n) => format!("{n}件"),
        (Lang::En, 1) => "1 contact".to_owned(),
        (Lang::En, n) => format!("{n} contacts"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screen_uses_the_seeds_words() {
        let s = registration_screen(Lang::Ja, true);
        for phrase in [
            "次のような症状がありますか？",
            "症状が始まった最初の日を入力してください",
            "SMSまたはメールで届いた処理番号を入力してください",
            "症状が始まった日または検査を受けた日の2日前以降にあなたと接触した人に通知が行きます",
            "※登録は匿名で行われ",
            "陽性登録から遡って14日間より前の接触について通知されることはありません",
        ] {
            assert!(s.contains(phrase), "{phrase}");
        }
        assert!(registration_screen(Lang::Ja, false).contains("検査を受けた日"));
        assert!(registration_screen(Lang::En, false).contains("tested"));
    }

    #[test]
    fn text_displays_both_languages() {
        let t = Text::new("こんにちは", "hello");
        assert_eq!(t.to_string(), "こんにちは / hello");
        assert_eq!(t.get(Lang::En), "hello");
        assert_eq!(
            ja_date(chrono::NaiveDate::from_ymd_opt(2020, 12, 4).unwrap()),
            "2020年12月4日"
        );
    }

    #[test]
    fn times_are_japan_time_to_the_minute_and_counts_read_naturally() {
        use chrono::TimeZone;
        // 16:53:27 UTC on 11月30日 is 01:53 JST on 12月1日.
        let t = chrono::Utc
            .with_ymd_and_hms(2020, 11, 30, 16, 53, 27)
            .unwrap();
        assert_eq!(jst_minute(Lang::Ja, t), "2020年12月1日 01:53");
        assert_eq!(jst_minute(Lang::En, t), "2020-12-01 01:53 JST");
        assert_eq!(contacts_count(Lang::En, 1), "1 contact");
        assert_eq!(contacts_count(Lang::En, 2), "2 contacts");
        assert_eq!(contacts_count(Lang::En, 0), "0 contacts");
        assert_eq!(contacts_count(Lang::Ja, 2), "2件");
    }
}
