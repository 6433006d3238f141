//! `GET /api/v1/consultation-centres` of the issuer: the consultation
//! centre (受診・相談センター) of each prefecture whose health centre set one,
//! for phones to show beside a notification (the seed's FAQ 問2:
//! 「各地域の受診・相談センターなどの連絡先を表示」). The phone's
//! `--consultation-centres-url` reads exactly this list.

use serde::{Deserialize, Serialize};

/// One prefecture's consultation centre.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsultationCentreEntry {
    /// Prefecture code ("01".."47", JIS X 0401) or name.
    pub prefecture: String,
    /// Centre name, e.g. 「東京都発熱相談センター」.
    pub name: String,
    /// Centre name in English; the phone says "<prefecture> consultation
    /// centre" when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    /// Telephone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Web page (`http(s)://` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Hours, as people read them (「24時間」「9:00～17:00（土日祝を除く）」).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<String>,
}

/// One prefecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefecture {
    /// Two-digit code, "01".."47".
    pub code: &'static str,
    /// Japanese name, e.g. 東京都.
    pub name_ja: &'static str,
    /// English name, e.g. Tokyo.
    pub name_en: &'static str,
}

macro_rules! prefectures {
    ($(($code:literal, $ja:literal, $en:literal)),* $(,)?) => {
        /// The 47 prefectures in code order.
        pub const PREFECTURES: &[Prefecture] = &[
            $(Prefecture { code: $code, name_ja: $ja, name_en: $en }),*
        ];
    };
}

prefectures![
    ("01", "北海道", "Hokkaido"),
    ("02", "青森県", "Aomori"),
    ("03", "岩手県", "Iwate"),
    ("04", "宮城県", "Miyagi"),
    ("05", "秋田県", "Akita"),
    ("06", "山形県", "Yamagata"),
    ("07", "福島県", "Fukushima"),
    ("08", "茨城県", "Ibaraki"),
    ("09", "栃木県", "Tochigi"),
    ("10", "群馬県", "Gunma"),
    ("11", "埼玉県", "Saitama"),
    ("12", "千葉県", "Chiba"),
    ("13", "東京都", "Tokyo"),
    ("14", "神奈川県", "Kanagawa"),
    ("15", "新潟県", "Niigata"),
    ("16", "富山県", "Toyama"),
    ("17", "石川県", "Ishikawa"),
    ("18", "福井県", "Fukui"),
    ("19", "山梨県", "Yamanashi"),
    ("20", "長野県", "Nagano"),
    ("21", "岐阜県", "Gifu"),
    ("22", "静岡県", "Shizuoka"),
    ("23", "愛知県", "Aichi"),
    ("24", "三重県", "Mie"),
    ("25", "滋賀県", "Shiga"),
    ("26", "京都府", "Kyoto"),
    ("27", "大阪府", "Osaka"),
    ("28", "兵庫県", "Hyogo"),
    ("29", "奈良県", "Nara"),
    ("30", "和歌山県", "Wakayama"),
    ("31", "鳥取県", "Tottori"),
    ("32", "島根県", "Shimane"),
    ("33", "岡山県", "Okayama"),
    ("34", "広島県", "Hiroshima"),
    ("35", "山口県", "Yamaguchi"),
    ("36", "徳島県", "Tokushima"),
    ("37", "香川県", "Kagawa"),
    ("38", "愛媛県", "Ehime"),
    ("39", "高知県", "Kochi"),
    ("40", "福岡県", "Fukuoka"),
    ("41", "佐賀県", "Saga"),
    ("42", "長崎県", "Nagasaki"),
    ("43", "熊本県", "Kumamoto"),
    ("44", "大分県", "Oita"),
    ("45", "宮崎県", "Miyazaki"),
    ("46", "鹿児島県", "Kagoshima"),
    ("47", "沖縄県", "Okinawa"),
];

impl Prefecture {
    /// A prefecture from its code (`13`, `1` or `01`), its Japanese name
    /// (`東京都`, or `東京` without the suffix) or its English name (any case).
    pub fn find(input: &str) -> Option<&'static Prefecture> {
        let s = input.trim();
        if let Ok(n) = s.parse::<u8>() {
            PREFECTURES.get(usize::from(n).wrapping_sub(1))
        } else {
            PREFECTURES.iter().find(|p| {
                p.name_ja == s
                    || p.name_ja.strip_suffix(['都', '府', '県']) == Some(s)
                    || p.name_en.eq_ignore_ascii_case(s)
            })
        }
    }
}
