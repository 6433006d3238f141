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
