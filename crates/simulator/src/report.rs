//! The HTML report (`--report`): one self-contained file, plots drawn as
//! inline SVG, no scripts, no external resources.

use std::fmt::Write as _;

use crate::Timings;
use crate::summary::Summary;

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];
const W: f64 = 640.0;
const H: f64 = 300.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 45.0;

/// Escapes text for HTML and SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |x| format!("{x:.digits$}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |x| format!("{:.1} %", x * 100.0))
}

/// A "nice" upper bound for an axis.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

/// One line of a chart.
struct Series<'a> {
    name: &'a str,
    points: Vec<(f64, f64)>,
}

fn frame(out: &mut String, title: &str, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        out,
        r#"<text x="{}" y="18" font-size="13" font-weight="bold">{}</text>"#,
        LEFT,
        esc(title)
    );
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 8.0,
        esc(x_label)
    );
    let _ = write!(
        out,
        r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">{}</text>"#,
        TOP + (H - TOP - BOTTOM) / 2.0,
        TOP + (H - TOP - BOTTOM) / 2.0,
        esc(y_label)
    );
}

/// The axis's upper bound and tick step for values up to `v`: four ticks of
/// a "nice" bound, or for a count (`integer`) a whole-number step of 1, 2, 5
/// × 10ⁿ, so that no axis of people or phones reads 2.5.
fn y_scale(v: f64, integer: bool) -> (f64, f64) {
    if !integer {
        let max = nice_max(v);
        return (max, max / 4.0);
    }
    let v = if v.is_finite() { v.max(1.0) } else { 1.0 };
    let raw = (v / 4.0).max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((v / step).ceil() * step, step)
}

fn axes(out: &mut String, x: (f64, f64), (y_max, step): (f64, f64), x_ticks: &[(f64, String)]) {
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let n = (y_max / step).round().max(1.0) as u32;
    for i in 0..=n {
        let v = step * f64::from(i);
        let py = TOP + ph - ph * v / y_max;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 4.0,
            py + 4.0,
            short(v)
        );
    }
    for (v, label) in x_ticks {
        let px = LEFT + (v - x.0) / (x.1 - x.0).max(1e-9) * pw;
        let _ = write!(
            out,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + ph + 14.0,
            esc(label)
        );
    }
    let _ = write!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>"##
    );
}

fn short(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.abs() >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn legend(out: &mut String, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        let y = TOP + 10.0 + 16.0 * i as f64;
        let x = W - RIGHT + 10.0;
        let _ = write!(
            out,
            r#"<rect x="{x}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{}" y="{:.1}">{}</text>"#,
            y - 8.0,
            COLORS[i % COLORS.len()],
            x + 14.0,
            y + 1.0,
            esc(name)
        );
    }
}

/// Lines over a shared x axis.
fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series<'_>],
    x_ticks: &[(f64, String)],
    fixed_y_max: Option<f64>,
    integer: bool,
) -> String {
    let mut out = String::new();
    frame(&mut out, title, x_label, y_label);
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let x_min = xs.clone().fold(f64::INFINITY, f64::min);
    let x_max = xs.fold(f64::NEG_INFINITY, f64::max);
    let (x_min, x_max) = if x_min.is_finite() {
        (x_min, x_max.max(x_min + 1.0))
    } else {
        (0.0, 1.0)
    };
    let scale = fixed_y_max.map_or_else(
        || {
            y_scale(
                series
                    .iter()
                    .flat_map(|s| s.points.iter().map(|p| p.1))
                    .fold(0.0, f64::max),
                integer,
            )
        },
        |m| (m, m / 4.0),
    );
    let y_max = scale.0;
    axes(&mut out, (x_min, x_max), scale, x_ticks);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    LEFT + (x - x_min) / (x_max - x_min) * pw,
                    TOP + ph - (y / y_max).clamp(0.0, 1.0) * ph
                )
            })
            .collect();
        let color = COLORS[i % COLORS.len()];
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        for p in &pts {
            if let Some((x, y)) = p.split_once(',') {
                let _ = write!(out, r#"<circle cx="{x}" cy="{y}" r="2.5" fill="{color}"/>"#);
            }
        }
    }
    let names: Vec<&str> = series.iter().map(|s| s.name).collect();
    legend(&mut out, &names);
    out.push_str("</svg>");
    out
}

/// Vertical bars, one per label, with optional error bars and horizontal
/// reference lines.
fn bar_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    bars: &[(String, f64, Option<f64>)],
    references: &[(f64, &str)],
    integer: bool,
) -> String {
    let mut out = String::new();
    frame(&mut out, title, x_label, y_label);
    let top = bars
        .iter()
        .map(|b| b.1 + b.2.unwrap_or(0.0))
        .chain(references.iter().map(|r| r.0))
        .fold(0.0, f64::max);
    let scale = y_scale(top, integer);
    let y_max = scale.0;
    axes(&mut out, (0.0, 1.0), scale, &[]);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let n = bars.len().max(1) as f64;
    let slot = pw / n;
    let y = |v: f64| TOP + ph - (v / y_max).clamp(0.0, 1.0) * ph;
    for (i, (label, v, err)) in bars.iter().enumerate() {
        let x = LEFT + slot * i as f64;
        let _ = write!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect>"#,
            x + slot * 0.15,
            y(*v),
            slot * 0.7,
            (TOP + ph - y(*v)).max(0.0),
            COLORS[0],
            esc(label),
            short(*v)
        );
        if let Some(e) = err {
            let cx = x + slot / 2.0;
            let _ = write!(
                out,
                r##"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="#333"/>"##,
                y(v + e),
                y((v - e).max(0.0))
            );
        }
        if i % bars.len().div_ceil(12).max(1) == 0 {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + slot / 2.0,
                TOP + ph + 14.0,
                esc(label)
            );
        }
    }
    for (i, (v, name)) in references.iter().enumerate() {
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-dasharray="4 3"/>"#,
            y(*v),
            LEFT + pw,
            y(*v),
            COLORS[(i + 1) % COLORS.len()]
        );
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" fill="{}">{}</text>"#,
            LEFT + pw + 4.0,
            y(*v) + 4.0,
            COLORS[(i + 1) % COLORS.len()],
            esc(name)
        );
    }
    out.push_str("</svg>");
    out
}

fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// Background colour for a share 0..1 (red → green).
fn heat(v: Option<f64>) -> String {
    match v {
        None => "#eee".to_owned(),
        Some(v) => {
            let v = v.clamp(0.0, 1.0);
            format!(
                "rgb({},{},120)",
                (230.0 - 130.0 * v) as u8,
                (120.0 + 100.0 * v) as u8
            )
        }
    }
}

/// The language of the report (`--lang`; Japanese by default: the health
/// authority that reads it is Japanese).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lang {
    /// 日本語.
    #[default]
    Ja,
    /// English.
    En,
}

impl std::str::FromStr for Lang {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ja" => Ok(Self::Ja),
            "en" => Ok(Self::En),
            other => Err(format!("language {other:?}: expected ja or en")),
        }
    }
}

impl Lang {
    /// The text in this language.
    fn t<'a>(self, ja: &'a str, en: &'a str) -> &'a str {
        match self {
            Self::Ja => ja,
            Self::En => en,
        }
    }

    fn code(self) -> &'static str {
        self.t("ja", "en")
    }
}

/// A rate with its Wilson interval, and a mark when it rests on fewer than
/// [`crate::trial::FEW`] people.
fn rate(v: Option<f64>, ci: Option<[f64; 2]>, n: u64) -> String {
    let few = if n < u64::from(crate::trial::FEW) {
        " ⚠"
    } else {
        ""
    };
    match (v, ci) {
        (Some(v), Some([lo, hi])) => format!(
            "{} [{:.1}–{:.1} %]{few}",
            pct(Some(v)),
            lo * 100.0,
            hi * 100.0
        ),
        (v, _) => format!("{}{few}", pct(v)),
    }
}

fn signed_points(d: Option<&crate::compare::Difference>) -> String {
    d.map_or_else(
        || "–".to_owned(),
        |d| {
            format!(
                "{:+.1} pt [{:+.1}, {:+.1}]",
                d.value * 100.0,
                d.ci95[0] * 100.0,
                d.ci95[1] * 100.0
            )
        },
    )
}

/// A count with thousands separators.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One value of a work counter, readable: counts with separators, shares
/// and seconds with a few digits, lists by their length.
fn readable(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) => n.as_u64().map_or_else(
            || {
                n.as_f64()
                    .map_or_else(|| n.to_string(), |f| format!("{f:.3}"))
            },
            count,
        ),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Null => "–".to_owned(),
        serde_json::Value::Array(a) => format!("{} items", a.len()),
        serde_json::Value::Object(_) => String::new(),
    }
}

/// A counter's name as words: `keys_matched` → "keys matched".
fn words(key: &str) -> String {
    key.replace('_', " ")
}

/// The rows of a work-counter object, nested objects as "parent › child".
fn counter_rows(prefix: &str, v: &serde_json::Value, rows: &mut Vec<Vec<String>>) {
    if let Some(obj) = v.as_object() {
        for (k, v) in obj {
            let name = if prefix.is_empty() {
                words(k)
            } else {
                format!("{prefix} › {}", words(k))
            };
            if v.is_object() {
                counter_rows(&name, v, rows);
            } else {
                rows.push(vec![name, readable(v)]);
            }
        }
    }
}

fn place_name(place: crate::encounters::Place, l: Lang) -> String {
    use crate::encounters::Place;
    let name = serde_json::to_value(place)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let ja = match place {
        Place::Home => "自宅",
        Place::HomeNight => "自宅（夜）",
        Place::School => "学校",
        Place::Work => "職場",
        Place::Meeting => "会議室",
        Place::Lunch => "昼食",
        Place::Train => "電車",
        Place::Shop => "店",
        Place::Social => "飲食店・集まり",
    };
    if l == Lang::Ja && !ja.is_empty() {
        ja.to_owned()
    } else {
        name
    }
}

/// `--compare`: the two configurations on the same population, and the
/// trial grid under both.
fn comparison_section(out: &mut String, c: &crate::compare::Comparison, l: Lang) {
    let _ = write!(
        out,
        "<h2>{}</h2><p>{}</p>",
        l.t(
            "現行の設定と候補の設定（同じ人口・同じ照合）",
            "Current against candidate configuration (same population, same matches)"
        ),
        l.t(
            "各端末の接触ウィンドウを両方の設定で一度ずつ判定しています。区間: 率は Wilson の 95 % 区間、差は対応のあるブートストラップ（どちらかの設定が通知した人または通知されるべき人を 2,000 回再標本化）。⚠ は 30 人未満にもとづく率です。",
            "Each phone's windows are scored once by each configuration. Intervals: Wilson 95 % for a rate, a paired bootstrap (2,000 resamples of the people either configuration notified or should have notified) for a difference. ⚠ marks a rate resting on fewer than 30 people."
        )
    );
    for w in &c.warnings {
        let _ = write!(
            out,
            "<p><b>{}</b> {}</p>",
            l.t("注意:", "Warning:"),
            esc(l.t(&w.ja, &w.en))
        );
    }
    let d = &c.notified_difference;
    table(
        out,
        &[
            "",
            l.t("現行", "current"),
            l.t("候補", "candidate"),
            l.t("候補 − 現行", "candidate − current"),
        ],
        &[
            vec![
                l.t("再現率", "recall").into(),
                rate(
                    c.current.recall,
                    c.current.recall_ci95,
                    c.should_be_notified,
                ),
                rate(
                    c.candidate.recall,
                    c.candidate.recall_ci95,
                    c.should_be_notified,
                ),
                signed_points(c.recall_difference.as_ref()),
            ],
            vec![
                l.t("適合率", "precision").into(),
                rate(
                    c.current.precision,
                    c.current.precision_ci95,
                    c.current.notified,
                ),
                rate(
                    c.candidate.precision,
                    c.candidate.precision_ci95,
                    c.candidate.notified,
                ),
                signed_points(c.precision_difference.as_ref()),
            ],
            vec![
                l.t("通知された端末", "phones notified").into(),
                count(c.current.notified),
                count(c.candidate.notified),
                format!("{:+.0} [{:+.0}, {:+.0}]", d.value, d.ci95[0], d.ci95[1]),
            ],
            vec![
                l.t("うち正しい通知", "of them true positives").into(),
                count(c.current.true_positives),
                count(c.candidate.true_positives),
                format!(
                    "{:+}",
                    c.candidate.true_positives as i64 - c.current.true_positives as i64
                ),
            ],
            vec![
                l.t("一方だけが通知", "notified by only one").into(),
                count(c.notified_only_by_current),
                count(c.notified_only_by_candidate),
                String::new(),
            ],
        ],
    );
    let _ = write!(
        out,
        "<h3>{}</h3>",
        match l {
            Lang::Ja => format!(
                "管理された試行（各 {} 回の接触、機種と置き方は普及率で抽選）",
                crate::compare::GRID_TRIALS
            ),
            Lang::En => format!(
                "Controlled trials ({} contacts per cell, models and placements drawn by share)",
                crate::compare::GRID_TRIALS
            ),
        }
    );
    let rows: Vec<Vec<String>> = c
        .trials
        .iter()
        .map(|cell| {
            let r = |x: &crate::trial::Rate| rate(Some(x.rate), Some(x.ci95), u64::from(x.trials));
            vec![
                format!("{} m", cell.distance_m),
                format!("{} {}", cell.minutes, l.t("分", "min")),
                r(&cell.current),
                r(&cell.candidate),
            ]
        })
        .collect();
    table(
        out,
        &[
            l.t("距離", "distance"),
            l.t("時間", "duration"),
            l.t("現行で検出", "current detected"),
            l.t("候補で検出", "candidate detected"),
        ],
        &rows,
    );
}

/// The report of a run, in `lang`.
pub fn html(summary: &Summary, timings: Option<&Timings>, l: Lang) -> String {
    let s = summary;
    let c = &s.config;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>cocoa simulate</title>\
         <style>body{{font-family:'Noto Sans CJK JP','Hiragino Sans',sans-serif;max-width:980px;margin:2em auto;padding:0 8px;color:#222}}\
         table{{border-collapse:collapse;margin:0.5em 0 1.5em;display:block;overflow-x:auto}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
         th{{background:#f4f4f4}}td:first-child,th:first-child{{text-align:left}}h2{{margin-top:1.6em}}\
         .big{{font-size:1.4em}}svg{{display:block;margin:0.5em 0 1em;max-width:100%;height:auto}}</style></head><body>",
        l.code()
    );
    let matching = format!("{:?}", c.matching);
    match l {
        Lang::Ja => {
            let _ = write!(
                out,
                "<h1>接触通知のシミュレーション</h1><p>{} 人（アプリ利用 {} 人、普及率 {}）、{}（日本時間）から {} 日間と追跡 {} 日、シード {}、登録率 {}、照合: {}。</p>",
                count(s.population.people),
                count(s.population.app_users),
                c.adoption,
                c.start_date.format("%Y年%-m月%-d日"),
                c.days,
                c.follow_up_days,
                c.seed,
                c.registration_rate,
                matching
            );
            let _ = write!(
                out,
                "<p class=\"big\">再現率 <b>{}</b> · 適合率 <b>{}</b> · 通知されるべき {} 人のうち {} 人に通知 · 陽性判明から通知まで中央値 <b>{} 時間</b> · 1 台 1 日 <b>{:.0} kB</b></p>",
                rate(s.recall, s.recall_ci95, s.should_be_notified),
                rate(s.precision, s.precision_ci95, s.notified),
                count(s.should_be_notified),
                count(s.true_positives),
                opt(s.delay_hours.p50, 1),
                s.bytes_per_phone_per_day.mean / 1000.0
            );
        }
        Lang::En => {
            let _ = write!(
                out,
                "<h1>Exposure notification simulation</h1><p>{} people ({} with the app, adoption {}), {} days from {} JST \
                 plus {} follow-up days, seed {}, registration rate {}, matching: {}.</p>",
                count(s.population.people),
                count(s.population.app_users),
                c.adoption,
                c.days,
                c.start_date,
                c.follow_up_days,
                c.seed,
                c.registration_rate,
                matching
            );
            let _ = write!(
                out,
                "<p class=\"big\">Recall <b>{}</b> · precision <b>{}</b> · {} of {} who should be notified were · \
                 median delay from positive result to notification <b>{} h</b> · <b>{:.0} kB</b> per phone per day</p>",
                rate(s.recall, s.recall_ci95, s.should_be_notified),
                rate(s.precision, s.precision_ci95, s.notified),
                count(s.true_positives),
                count(s.should_be_notified),
                opt(s.delay_hours.p50, 1),
                s.bytes_per_phone_per_day.mean / 1000.0
            );
        }
    }
    let _ = write!(
        out,
        "<p><small>{}</small></p>",
        l.t(
            "率の横の [ ] は Wilson の 95 % 区間です。⚠ は 30 人未満にもとづく率で、人数を増やして確かめてください。",
            "[ ] beside a rate is its Wilson 95 % interval. ⚠ marks a rate resting on fewer than 30 people: simulate more people before relying on it."
        )
    );
    if s.should_be_notified < u64::from(crate::trial::FEW) {
        let _ = write!(
            out,
            "<p><b>{}</b></p>",
            match l {
                Lang::Ja => format!(
                    "注意: 再現率は通知されるべき {} 人にもとづきます（30 人未満）。",
                    s.should_be_notified
                ),
                Lang::En => format!(
                    "Warning: recall rests on {} people who should be notified (fewer than 30).",
                    s.should_be_notified
                ),
            }
        );
    }

    let _ = write!(out, "<h2>{}</h2>", l.t("概要", "Summary"));
    let d = &s.delay_hours;
    let rows = vec![
        vec![
            l.t(
                "通知されるべき人（アプリ利用者）",
                "should be notified (app users)",
            )
            .into(),
            count(s.should_be_notified),
        ],
        vec![l.t("通知された", "notified").into(), count(s.notified)],
        vec![
            l.t("正しい通知 / 誤った通知", "true / false positives")
                .into(),
            format!("{} / {}", count(s.true_positives), count(s.false_positives)),
        ],
        vec![
            match l {
                Lang::Ja => format!(
                    "{} m 以内で {} 分以上の接触があった通知（緩い適合率）",
                    c.truth.relaxed_distance_m, c.truth.minutes
                ),
                Lang::En => format!(
                    "notified with ≥ {} min within {} m (relaxed precision)",
                    c.truth.minutes, c.truth.relaxed_distance_m
                ),
            },
            pct(s.precision_relaxed),
        ],
        vec![
            l.t(
                "陽性者の結果判明より前に通知された正しい通知",
                "true positives warned before their positive's result",
            )
            .into(),
            count(s.notified_before_result),
        ],
        vec![
            l.t("見逃し", "false negatives").into(),
            count(s.false_negatives),
        ],
        vec![
            l.t("アプリのない接触者", "contacts without the app").into(),
            count(s.should_be_notified_without_app),
        ],
        vec![
            l.t(
                "遅れ 中央値 / 90 % / 95 % / 最大（時間）",
                "delay p50 / p90 / p95 / max (h)",
            )
            .into(),
            format!(
                "{} / {} / {} / {}",
                opt(d.p50, 1),
                opt(d.p90, 1),
                opt(d.p95, 1),
                opt(d.max, 1)
            ),
        ],
        vec![
            l.t("陽性登録", "registrations").into(),
            count(s.registrations),
        ],
        vec![
            l.t("エクスポートファイル", "export files").into(),
            count(s.files),
        ],
        vec![
            l.t("感染（初期 + 新規）", "infections (initial + new)")
                .into(),
            format!(
                "{} + {}",
                count(s.epidemic.initial_infections),
                count(s.epidemic.new_infections)
            ),
        ],
        vec![
            l.t("陽性判明", "positive results").into(),
            count(s.epidemic.diagnosed),
        ],
        vec![
            l.t("1 人 1 日あたりの接触", "encounters per person per day")
                .into(),
            format!("{:.1}", s.population.encounters_per_person_per_day),
        ],
    ];
    table(&mut out, &["", l.t("値", "value")], &rows);

    let _ = write!(out, "<h2>{}</h2>", l.t("日ごと", "Day by day"));
    let day_ticks: Vec<(f64, String)> = s
        .daily
        .iter()
        .filter(|r| r.day % 2 == 0)
        .map(|r| (r.day as f64, r.date[5..].to_owned()))
        .collect();
    let pick = |f: &dyn Fn(&crate::summary::DayRow) -> f64| -> Vec<(f64, f64)> {
        s.daily.iter().map(|r| (r.day as f64, f(r))).collect()
    };
    out.push_str(&line_chart(
        l.t(
            "1 日ごとの感染・陽性登録・通知",
            "Epidemic, registrations and notifications per day",
        ),
        l.t("日（日本の日付）", "day (JST date)"),
        l.t("人", "people"),
        &[
            Series {
                name: l.t("感染", "infections"),
                points: pick(&|r| r.infections as f64),
            },
            Series {
                name: l.t("陽性判明", "positive results"),
                points: pick(&|r| r.diagnoses as f64),
            },
            Series {
                name: l.t("陽性登録", "registrations"),
                points: pick(&|r| r.registrations as f64),
            },
            Series {
                name: l.t("正しい通知", "notified (right)"),
                points: pick(&|r| r.notified_correctly as f64),
            },
            Series {
                name: l.t("誤った通知", "notified (wrong)"),
                points: pick(&|r| r.notified_wrongly as f64),
            },
        ],
        &day_ticks,
        None,
        true,
    ));

    let _ = write!(
        out,
        "<h2>{}</h2>",
        l.t(
            "陽性判明から通知までの遅れ",
            "Delay from positive result to notification"
        )
    );
    let hist: Vec<(String, f64, Option<f64>)> = s
        .delay_histogram
        .iter()
        .map(|(h, n)| (format!("{h:.0}"), *n as f64, None))
        .collect();
    out.push_str(&bar_chart(
        l.t(
            "遅れごとの通知端末（6 時間ごと）",
            "Notified phones by delay (6-hour bins)",
        ),
        l.t("時間", "hours"),
        l.t("台", "phones"),
        &hist,
        &[],
        true,
    ));
    let b = &s.delay_breakdown_hours;
    table(
        &mut out,
        &[
            l.t("段階", "step"),
            l.t("中央値 h", "p50 h"),
            "p90 h",
            l.t("最大 h", "max h"),
        ],
        &[
            vec![
                l.t("結果判明 → 処理番号", "result → processing number")
                    .into(),
                opt(b.result_to_number.p50, 1),
                opt(b.result_to_number.p90, 1),
                opt(b.result_to_number.max, 1),
            ],
            vec![
                l.t("処理番号 → 陽性登録", "number → registration").into(),
                opt(b.number_to_registration.p50, 1),
                opt(b.number_to_registration.p90, 1),
                opt(b.number_to_registration.max, 1),
            ],
            vec![
                l.t("陽性登録 → 通知", "registration → notification").into(),
                opt(b.registration_to_notification.p50, 1),
                opt(b.registration_to_notification.p90, 1),
                opt(b.registration_to_notification.max, 1),
            ],
        ],
    );

    let _ = write!(
        out,
        "<h2>{}</h2><p>{}</p>",
        l.t("機種の組み合わせ別", "By phone model pair"),
        l.t(
            "（人, 登録した陽性者）の組ごとの再現率: この陽性者の鍵だけでこの人の端末に接触日が出るか。行: 通知されるべき端末、列: 陽性者の端末。⚠ は 30 組未満。",
            "Recall per (person, registered positive) pair: do this positive's keys alone give a contact day on this person's phone? Rows: the phone that should be warned; columns: the positive's phone. ⚠: fewer than 30 pairs."
        )
    );
    let mut receivers: Vec<&str> = s
        .by_model_pair
        .iter()
        .map(|p| p.receiver.as_str())
        .collect();
    receivers.dedup();
    let mut senders: Vec<&str> = s.by_model_pair.iter().map(|p| p.sender.as_str()).collect();
    senders.sort_unstable();
    senders.dedup();
    let _ = write!(
        out,
        "<table><tr><th>{}</th>",
        l.t("受信側 \\ 送信側", "receiver \\ sender")
    );
    for snd in &senders {
        let _ = write!(out, "<th>{}</th>", esc(snd));
    }
    out.push_str("</tr>");
    for r in &receivers {
        let _ = write!(out, "<tr><td>{}</td>", esc(r));
        for snd in &senders {
            let cell = s
                .by_model_pair
                .iter()
                .find(|p| p.receiver == *r && p.sender == *snd);
            match cell {
                Some(p) => {
                    let _ = write!(
                        out,
                        "<td style=\"background:{}\">{} <small>({}/{}; {} {})</small></td>",
                        heat(p.recall),
                        esc(&rate(p.recall, p.recall_ci95, p.contacts)),
                        p.detected_contacts,
                        p.contacts,
                        l.t("適合率", "precision"),
                        pct(p.precision)
                    );
                }
                None => out.push_str("<td>–</td>"),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");

    let _ = write!(
        out,
        "<h2>{}</h2>",
        l.t(
            "電波: 実際の距離ごとの推定減衰",
            "Radio: estimated attenuation by true distance"
        )
    );
    let thresholds = c.scoring.thresholds();
    let bars: Vec<(String, f64, Option<f64>)> = s
        .attenuation_by_distance
        .iter()
        .map(|r| {
            (
                r.max_distance_m
                    .map_or_else(|| l.t("それ以上", "more").to_owned(), |m| format!("≤{m} m")),
                r.mean_db.unwrap_or(0.0),
                r.sd_db,
            )
        })
        .collect();
    let refs = [
        (f64::from(thresholds[0]), l.t("至近", "immediate")),
        (f64::from(thresholds[1]), l.t("近距離", "near")),
        (f64::from(thresholds[2]), l.t("中距離", "medium")),
    ];
    out.push_str(&bar_chart(
        l.t(
            "端末が推定した減衰の平均 ± 標準偏差",
            "Mean ± sd of the attenuation phones estimated",
        ),
        l.t("実際の距離", "true distance"),
        "dB",
        &bars,
        &refs,
        false,
    ));

    let _ = write!(out, "<h2>{}</h2>", l.t("場所別", "By place"));
    let rows: Vec<Vec<String>> = s
        .by_place
        .iter()
        .map(|p| {
            vec![
                place_name(p.place, l),
                count(p.contacts),
                count(p.detected),
                rate(p.recall, p.recall_ci95, p.contacts),
                count(p.infections),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            l.t("場所", "place"),
            l.t("通知すべき接触", "contacts to warn"),
            l.t("検出", "detected"),
            l.t("再現率", "recall"),
            l.t("そこでの感染", "infections there"),
        ],
        &rows,
    );

    if let Some(cmp) = &s.comparison {
        comparison_section(&mut out, cmp, l);
    } else if s.sweep.len() > 1 {
        let _ = write!(
            out,
            "<h2>{}</h2>",
            l.t(
                "判定パラメータの掃引（同じ人口・同じ照合）",
                "Scoring sweep (same population, same matches)"
            )
        );
        let rows: Vec<&crate::summary::SweepRow> = s.sweep.iter().skip(1).collect();
        let ticks: Vec<(f64, String)> = rows.iter().map(|r| (r.value, short(r.value))).collect();
        out.push_str(&line_chart(
            &match l {
                Lang::Ja => format!("{} に対する再現率と適合率", rows[0].parameter),
                Lang::En => format!("Recall and precision against {}", rows[0].parameter),
            },
            &rows[0].parameter,
            l.t("割合", "share"),
            &[
                Series {
                    name: l.t("再現率", "recall"),
                    points: rows
                        .iter()
                        .map(|r| (r.value, r.recall.unwrap_or(0.0)))
                        .collect(),
                },
                Series {
                    name: l.t("適合率", "precision"),
                    points: rows
                        .iter()
                        .map(|r| (r.value, r.precision.unwrap_or(0.0)))
                        .collect(),
                },
            ],
            &ticks,
            Some(1.0),
            false,
        ));
        let table_rows: Vec<Vec<String>> = s
            .sweep
            .iter()
            .map(|r| {
                vec![
                    r.parameter.clone(),
                    short(r.value),
                    count(r.notified),
                    count(r.true_positives),
                    rate(r.recall, r.recall_ci95, s.should_be_notified),
                    rate(r.precision, r.precision_ci95, r.notified),
                    opt(r.delay_p50_hours, 1),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                l.t("パラメータ", "parameter"),
                l.t("値", "value"),
                l.t("通知", "notified"),
                l.t("正しい通知", "true positives"),
                l.t("再現率", "recall"),
                l.t("適合率", "precision"),
                l.t("遅れ 中央値 h", "delay p50 h"),
            ],
            &table_rows,
        );
    }

    let _ = write!(out, "<h2>{}</h2>", l.t("ダウンロード", "Downloads"));
    let bars: Vec<(String, f64, Option<f64>)> = s
        .daily
        .iter()
        .map(|r| (r.date[5..].to_owned(), r.bytes_per_phone / 1000.0, None))
        .collect();
    out.push_str(&bar_chart(
        l.t(
            "1 台 1 日あたりのダウンロード（kB）",
            "kB downloaded per phone per day",
        ),
        l.t("日", "day"),
        "kB",
        &bars,
        &[],
        false,
    ));

    let _ = write!(
        out,
        "<h2>{}</h2>",
        l.t("誤った通知の理由", "Why false positives were notified")
    );
    let rows: Vec<Vec<String>> = s
        .false_positive_reasons
        .iter()
        .map(|(k, v)| vec![words(k), count(*v)])
        .collect();
    table(
        &mut out,
        &[l.t("理由", "reason"), l.t("台", "phones")],
        &rows,
    );

    let _ = write!(out, "<h2>{}</h2>", l.t("処理量", "Work"));
    for (title, value) in [
        (l.t("サーバー", "Servers"), serde_json::to_value(&s.server)),
        (l.t("端末", "Phones"), serde_json::to_value(&s.phones)),
        (l.t("患者", "Patients"), serde_json::to_value(&s.patients)),
    ] {
        let _ = write!(out, "<h3>{}</h3>", esc(title));
        let mut rows = Vec::new();
        if let Ok(v) = value {
            counter_rows("", &v, &mut rows);
        }
        table(
            &mut out,
            &[l.t("カウンタ", "counter"), l.t("値", "value")],
            &rows,
        );
    }
    if let Some(t) = timings {
        let _ = write!(out, "<h3>{}</h3>", l.t("時間", "Time"));
        let rows: Vec<Vec<String>> = t
            .phases
            .iter()
            .map(|(k, v)| vec![k.clone(), format!("{v:.2} s")])
            .collect();
        table(
            &mut out,
            &[l.t("段階", "phase"), l.t("秒", "seconds")],
            &rows,
        );
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_readable_and_counts_have_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_234_567), "1,234,567");
        let mut rows = Vec::new();
        counter_rows(
            "",
            &serde_json::json!({"keys_matched": 12345, "verify": {"mean_seconds": 0.5}, "files": [1, 2]}),
            &mut rows,
        );
        assert_eq!(
            rows,
            vec![
                vec!["files".to_owned(), "2 items".to_owned()],
                vec!["keys matched".to_owned(), "12,345".to_owned()],
                vec!["verify › mean seconds".to_owned(), "0.500".to_owned()],
            ]
        );
        assert_eq!(
            rate(Some(0.5), Some([0.4, 0.6]), 100),
            "50.0 % [40.0–60.0 %]"
        );
        assert!(rate(Some(1.0), Some([0.4, 1.0]), 3).ends_with('⚠'));
        assert_eq!("en".parse::<Lang>(), Ok(Lang::En));
        assert!("fr".parse::<Lang>().is_err());
    }

    #[test]
    fn count_axes_tick_in_whole_numbers() {
        assert_eq!(y_scale(5.0, true), (6.0, 2.0));
        assert_eq!(y_scale(3.0, true), (3.0, 1.0));
        assert_eq!(y_scale(0.0, true), (1.0, 1.0));
        assert_eq!(y_scale(37.0, true), (40.0, 10.0));
        assert_eq!(y_scale(180.0, true), (200.0, 50.0));
        for v in [1.0, 2.0, 7.0, 13.0, 99.0, 1234.0] {
            let (max, step) = y_scale(v, true);
            assert!(max >= v && step.fract() == 0.0 && max / step <= 10.0, "{v}");
        }
        assert_eq!(y_scale(0.3, false), (0.5, 0.125));
    }

    #[test]
    fn nice_axis_bounds() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(180.0), 200.0);
        assert_eq!(nice_max(0.3), 0.5);
        assert_eq!(esc("<a&b>"), "&lt;a&amp;b&gt;");
    }

    #[test]
    fn charts_are_well_formed_svg() {
        let svg = line_chart(
            "t",
            "x",
            "y",
            &[Series {
                name: "a<b",
                points: vec![(0.0, 1.0), (1.0, 3.0)],
            }],
            &[(0.0, "0".into())],
            None,
            false,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("a&lt;b"));
        let bars = bar_chart(
            "t",
            "x",
            "y",
            &[("a".into(), 2.0, Some(1.0))],
            &[(1.0, "r")],
            true,
        );
        assert_eq!(bars.matches("<rect").count(), 2);
    }
}
