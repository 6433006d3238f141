//! Public statistics: cumulative positive registrations (publishes that
//! stored at least one key), per day, and keys published, as JSON and as a
//! page with a chart in the style of the ministry's ("陽性者登録の累計件数は
//! 12月15日17時時点で4,388件"). Nothing is shown until the cumulative count
//! reaches the k-anonymity threshold, so no single person can be singled out.

use api_types::stats::{StatsDay, StatsResponse};
use chrono::{Datelike, Timelike};

use crate::publish::jst;
use crate::store::DayCount;

/// The statistics at `now` from the stored daily counts.
pub fn compute(days: &[DayCount], threshold: u64, now: i64) -> StatsResponse {
    let hour = now - now.rem_euclid(3600);
    let as_of = chrono::DateTime::from_timestamp(hour, 0)
        .map(|t| t.with_timezone(&jst()).to_rfc3339())
        .unwrap_or_default();
    let total: u64 = days.iter().map(|d| d.registrations).sum();
    let keys: u64 = days.iter().map(|d| d.keys).sum();
    let threshold = threshold.max(1);
    if total < threshold {
        return StatsResponse {
            as_of,
            threshold,
            total_registrations: None,
            total_keys: None,
            days: Vec::new(),
        };
    }
    let mut out = Vec::with_capacity(days.len());
    let (mut cum_r, mut cum_k) = (0u64, 0u64);
    for d in days {
        cum_r += d.registrations;
        cum_k += d.keys;
        if cum_r >= threshold {
            out.push(StatsDay {
                date: d.day.clone(),
                registrations: d.registrations,
                keys: d.keys,
                cumulative_registrations: cum_r,
                cumulative_keys: cum_k,
            });
        }
    }
    StatsResponse {
        as_of,
        threshold,
        total_registrations: Some(total),
        total_keys: Some(keys),
        days: out,
    }
}

/// `4388` → `4,388`.
pub fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The headline sentence, e.g. "陽性者登録の累計件数は12月15日17時時点で4,388件です。".
pub fn headline(s: &StatsResponse) -> String {
    let when = chrono::DateTime::parse_from_rfc3339(&s.as_of).ok();
    let (m, d, h) = when.map_or((0, 0, 0), |t| (t.month(), t.day(), t.hour()));
    match s.total_registrations {
        Some(n) => format!(
            "陽性者登録の累計件数は{m}月{d}日{h}時時点で{}件です。",
            group_thousands(n)
        ),
        None => format!(
            "陽性者登録の件数は、{}件に達するまで公表しません（個人が特定されないようにするため）。",
            group_thousands(s.threshold)
        ),
    }
}

/// An SVG chart: cumulative registrations as a line, daily registrations as bars.
pub fn chart_svg(s: &StatsResponse) -> String {
    const W: f64 = 720.0;
    const H: f64 = 300.0;
    const PAD: f64 = 48.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"陽性者登録の累計件数の推移\">\
         <rect width=\"{W}\" height=\"{H}\" fill=\"#fff\"/>"
    );
    let n = s.days.len();
    let max = s
        .days
        .last()
        .map_or(1, |d| d.cumulative_registrations.max(1)) as f64;
    let x = |i: usize| PAD + (W - 2.0 * PAD) * (i as f64 + 0.5) / n.max(1) as f64;
    let y = |v: u64| H - PAD - (H - 2.0 * PAD) * v as f64 / max;
    svg.push_str(&format!(
        "<line x1=\"{PAD}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#333\"/>\
         <line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{0}\" stroke=\"#333\"/>\
         <text x=\"4\" y=\"{2}\" font-size=\"11\">{3}</text><text x=\"4\" y=\"{0}\" font-size=\"11\">0</text>",
        H - PAD,
        W - PAD,
        PAD + 4.0,
        group_thousands(max as u64)
    ));
    let bar = ((W - 2.0 * PAD) / n.max(1) as f64 * 0.6).max(1.0);
    for (i, d) in s.days.iter().enumerate() {
        let top = y(d.registrations);
        svg.push_str(&format!(
            "<rect class=\"day\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"#9ecae1\"><title>{} {}件</title></rect>",
            x(i) - bar / 2.0,
            (H - PAD - top).max(0.0),
            d.date,
            d.registrations
        ));
    }
    if n > 0 {
        let points: Vec<String> = s
            .days
            .iter()
            .enumerate()
            .map(|(i, d)| format!("{:.1},{:.1}", x(i), y(d.cumulative_registrations)))
            .collect();
        svg.push_str(&format!(
            "<polyline class=\"cumulative\" points=\"{}\" fill=\"none\" stroke=\"#d6604d\" stroke-width=\"2\"/>",
            points.join(" ")
        ));
        if let (Some(first), Some(last)) = (s.days.first(), s.days.last()) {
            svg.push_str(&format!(
                "<text x=\"{PAD}\" y=\"{0}\" font-size=\"11\">{1}</text><text x=\"{2}\" y=\"{0}\" font-size=\"11\" text-anchor=\"end\">{3}</text>",
                H - PAD + 16.0,
                first.date,
                W - PAD,
                last.date
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The public page.
pub fn page_html(s: &StatsResponse) -> String {
    let mut rows = String::new();
    for d in s.days.iter().rev() {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            d.date,
            group_thousands(d.registrations),
            group_thousands(d.cumulative_registrations),
            group_thousands(d.keys)
        ));
    }
    let keys = s.total_keys.map_or_else(|| "—".to_owned(), group_thousands);
    format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>接触確認アプリ 陽性者登録の状況</title>\
         <style>body{{font-family:sans-serif;max-width:760px;margin:2em auto;padding:0 1em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style>\
         </head><body><h1>陽性者登録の状況</h1><p class=\"headline\">{}</p>\
         <p>公開された診断キーの累計: {keys}件</p>{}\
         <table><thead><tr><th>日付</th><th>登録件数</th><th>累計</th><th>診断キー</th></tr></thead><tbody>{rows}</tbody></table>\
         <p><small>登録件数は、1件以上の診断キーが登録された陽性登録の数です。{}件未満の間は公表しません。</small></p>\
         </body></html>",
        headline(s),
        chart_svg(s),
        group_thousands(s.threshold)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str, r: u64, k: u64) -> DayCount {
        DayCount {
            day: d.into(),
            registrations: r,
            keys: k,
        }
    }

    #[test]
    fn nothing_is_shown_below_the_threshold() {
        let s = compute(&[day("2020-12-14", 3, 30)], 10, 1_608_019_200);
        assert_eq!(s.total_registrations, None);
        assert!(s.days.is_empty());
        assert!(headline(&s).contains("10件に達するまで"));
        assert!(!page_html(&s).contains(">3<"));
    }

    #[test]
    fn figures_start_at_the_first_day_over_the_threshold() {
        // 2020-12-15 17:00 JST = 08:00 UTC.
        let days = [
            day("2020-12-13", 4, 40),
            day("2020-12-14", 3, 30),
            day("2020-12-15", 4381, 43810),
        ];
        let s = compute(&days, 5, 1_608_019_200 + 1234);
        assert_eq!(s.total_registrations, Some(4388));
        assert_eq!(s.total_keys, Some(43880));
        assert_eq!(s.days.len(), 2);
        assert_eq!(s.days[0].cumulative_registrations, 7);
        assert_eq!(
            headline(&s),
            "陽性者登録の累計件数は12月15日17時時点で4,388件です。"
        );
        let html = page_html(&s);
        assert!(html.contains("<svg") && html.contains("cumulative"));
        assert_eq!(group_thousands(3_690_000), "3,690,000");
        assert_eq!(group_thousands(999), "999");
    }
}
