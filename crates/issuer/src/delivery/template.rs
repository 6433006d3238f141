//! The message sent to the patient, Japanese by default: the 8-digit number
//! itself (for typing), the app link, the validity and where to ask for help.

use chrono::TimeZone;

use crate::domain::codes::{LinkCode, ProcessingNumber};
use crate::domain::model::Channel;

/// What the message is made from.
#[derive(Debug)]
pub struct MessageContext<'a> {
    /// The number.
    pub number: &'a ProcessingNumber,
    /// The link code.
    pub link: &'a LinkCode,
    /// Host of the app link, e.g. `cocoa.example.jp`.
    pub link_host: &'a str,
    /// Expiry (unix seconds).
    pub expires_at: i64,
    /// Validity in hours, for the sentence.
    pub validity_hours: i64,
    /// Help phone number (the seed: 「SMS/メールに記載の電話番号」).
    pub help_phone: &'a str,
    /// Help hours.
    pub help_hours: &'a str,
}

/// Renders `(subject, body)` for `channel`.
pub fn render(channel: Channel, c: &MessageContext<'_>) -> (Option<String>, String) {
    let until = en_protocol::time::jst()
        .timestamp_opt(c.expires_at, 0)
        .single()
        .map(|t| t.format("%Y年%-m月%-d日 %H:%M").to_string())
        .unwrap_or_default();
    let link = format!("https://{}/cocoa/a/?pn={}", c.link_host, c.link.expose());
    let body = format!(
        "【HER-SYS】接触確認アプリ（COCOA）陽性登録のための処理番号のお知らせ\n\
         \n\
         処理番号: {number}\n\
         \n\
         次のリンクを開くと、処理番号が入力された状態でアプリが開きます。\n\
         {link}\n\
         \n\
         有効期限: このお知らせが届いてから{hours}時間（すぐに届いた場合は {until}（日本時間）まで）。期限を過ぎると処理番号は無効になります。\n\
         アプリで処理番号を入力する場合は、半角数字8桁で入力してください。\n\
         \n\
         正しく入力しても登録できない場合のお問い合わせ: {phone}（{help_hours}）\n\
         このメッセージに心当たりのない場合は破棄してください。",
        number = c.number.expose(),
        hours = c.validity_hours,
        phone = c.help_phone,
        help_hours = c.help_hours,
    );
    let subject = match channel {
        Channel::Email => Some("【HER-SYS】COCOA 処理番号のお知らせ".to_owned()),
        Channel::Sms | Channel::Canary => None,
    };
    (subject, body)
}

/// The one reminder of a number still unused N hours after it arrived
/// (issue 13: "one reminder with the same link, never more"): the same
/// number and link under a heading that says it is a reminder, and that it
/// is the only one.
pub fn render_reminder(channel: Channel, c: &MessageContext<'_>) -> (Option<String>, String) {
    let link = format!("https://{}/cocoa/a/?pn={}", c.link_host, c.link.expose());
    let body = format!(
        "【HER-SYS】再送：接触確認アプリ（COCOA）陽性登録のための処理番号のお知らせ\n\
         \n\
         先にお送りした処理番号での陽性登録がまだ確認できていないため、一度だけ再度お知らせします。\
         登録済みの場合や、登録しないことにした場合は、このメッセージは破棄してください。\n\
         \n\
         処理番号: {number}\n\
         \n\
         次のリンクを開くと、処理番号が入力された状態でアプリが開きます。\n\
         {link}\n\
         \n\
         有効期限: 最初のお知らせが届いてから{hours}時間。期限を過ぎると処理番号は無効になります。\n\
         \n\
         お問い合わせ: {phone}（{help_hours}）",
        number = c.number.expose(),
        hours = c.validity_hours,
        phone = c.help_phone,
        help_hours = c.help_hours,
    );
    let subject = match channel {
        Channel::Email => Some("【HER-SYS】再送：COCOA 処理番号のお知らせ".to_owned()),
        Channel::Sms | Channel::Canary => None,
    };
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn message_holds_number_link_validity_and_help() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let n = ProcessingNumber::generate(&mut rng);
        let l = LinkCode::generate(&mut rng);
        let c = MessageContext {
            number: &n,
            link: &l,
            link_host: "cocoa.example.jp",
            expires_at: 1_608_080_400, // 2020-12-16 10:00 JST
            validity_hours: 24,
            help_phone: "0120-565653",
            help_hours: "9:00～21:00",
        };
        let (subject, body) = render(Channel::Email, &c);
        assert!(subject.unwrap().contains("処理番号"));
        assert!(body.contains(&format!("処理番号: {}", n.expose())));
        assert!(body.contains(&format!(
            "https://cocoa.example.jp/cocoa/a/?pn={}",
            l.expose()
        )));
        assert!(body.contains("2020年12月16日 10:00"));
        assert!(body.contains("0120-565653"));
        assert_eq!(render(Channel::Sms, &c).0, None);
        let (subject, body) = render_reminder(Channel::Email, &c);
        assert!(subject.unwrap().starts_with("【HER-SYS】再送："));
        assert!(body.starts_with("【HER-SYS】再送："));
        assert!(body.contains("一度だけ"));
        assert!(body.contains(&format!("処理番号: {}", n.expose())));
        assert!(body.contains(&format!("pn={}", l.expose())));
    }
}
