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

fn axes(out: &mut String, x: (f64, f64), y_max: f64, x_ticks: &[(f64, String)]) {
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let py = TOP + ph - ph * f64::from(i) / 4.0;
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
    let y_max = fixed_y_max.unwrap_or_else(|| {
        nice_max(
            series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .fold(0.0, f64::max),
        )
    });
    axes(&mut out, (x_min, x_max), y_max, x_ticks);
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
) -> String {
    let mut out = String::new();
    frame(&mut out, title, x_label, y_label);
    let top = bars
        .iter()
        .map(|b| b.1 + b.2.unwrap_or(0.0))
        .chain(references.iter().map(|r| r.0))
        .fold(0.0, f64::max);
    let y_max = nice_max(top);
    axes(&mut out, (0.0, 1.0), y_max, &[]);
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

fn with_interval(v: Option<f64>, ci: Option<[f64; 2]>) -> String {
    match (v, ci) {
        (Some(v), Some([lo, hi])) => format!(
            "{} <small>[{:.1}–{:.1} %]</small>",
            pct(Some(v)),
            lo * 100.0,
            hi * 100.0
        ),
        (v, _) => pct(v),
    }
}

fn signed_points(d: Option<&crate::compare::Difference>) -> String {
    d.map_or_else(
        || "–".to_owned(),
        |d| {
            format!(
                "{:+.1} pt <small>[{:+.1} to {:+.1}]</small>",
                d.value * 100.0,
                d.ci95[0] * 100.0,
                d.ci95[1] * 100.0
            )
        },
    )
}

/// `--compare`: the two configurations on the same population, and the
/// trial grid under both.
fn comparison_section(out: &mut String, c: &crate::compare::Comparison) {
    out.push_str(
        "<h2>Current against candidate configuration (same population, same matches)</h2>\
         <p>Each phone's windows are scored once by each configuration. Intervals: Wilson 95 % \
         for a rate, a paired bootstrap (2,000 resamples of the people either configuration \
         notified or should have notified) for a difference.</p>",
    );
    for w in &c.warnings {
        let _ = write!(out, "<p><b>Warning:</b> {}</p>", esc(&w.en));
    }
    let d = &c.notified_difference;
    table(
        out,
        &["", "current", "candidate", "candidate − current"],
        &[
            vec![
                "recall".into(),
                with_interval(c.current.recall, c.current.recall_ci95),
                with_interval(c.candidate.recall, c.candidate.recall_ci95),
                signed_points(c.recall_difference.as_ref()),
            ],
            vec![
                "precision".into(),
                with_interval(c.current.precision, c.current.precision_ci95),
                with_interval(c.candidate.precision, c.candidate.precision_ci95),
                signed_points(c.precision_difference.as_ref()),
            ],
            vec![
                "phones notified".into(),
                c.current.notified.to_string(),
                c.candidate.notified.to_string(),
                format!(
                    "{:+.0} <small>[{:+.0} to {:+.0}]</small>",
                    d.value, d.ci95[0], d.ci95[1]
                ),
            ],
            vec![
                "of them true positives".into(),
                c.current.true_positives.to_string(),
                c.candidate.true_positives.to_string(),
                format!(
                    "{:+}",
                    c.candidate.true_positives as i64 - c.current.true_positives as i64
                ),
            ],
            vec![
                "notified by only one".into(),
                c.notified_only_by_current.to_string(),
                c.notified_only_by_candidate.to_string(),
                String::new(),
            ],
        ],
    );
    let _ = write!(
        out,
        "<h3>Controlled trials ({} contacts per cell, models and placements drawn by share)</h3>",
        crate::compare::GRID_TRIALS
    );
    let rows: Vec<Vec<String>> = c
        .trials
        .iter()
        .map(|cell| {
            let rate = |r: &crate::trial::Rate| with_interval(Some(r.rate), Some(r.ci95));
            vec![
                format!("{} m", cell.distance_m),
                format!("{} min", cell.minutes),
                rate(&cell.current),
                rate(&cell.candidate),
            ]
        })
        .collect();
    table(
        out,
        &[
            "distance",
            "duration",
            "current detected",
            "candidate detected",
        ],
        &rows,
    );
}

/// The report of a run.
pub fn html(summary: &Summary, timings: Option<&Timings>) -> String {
    let s = summary;
    let c = &s.config;
    let mut out = String::new();
    out.push_str(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>cocoa simulate</title>\
         <style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}\
         table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
         th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}h2{margin-top:1.6em}\
         .big{font-size:1.4em}svg{display:block;margin:0.5em 0 1em}</style></head><body>",
    );
    let _ = write!(
        out,
        "<h1>Exposure notification simulation</h1><p>{} people ({} with the app, adoption {}), {} days from {} JST \
         plus {} follow-up days, seed {}, registration rate {}, matching: {:?}.</p>",
        s.population.people,
        s.population.app_users,
        c.adoption,
        c.days,
        c.start_date,
        c.follow_up_days,
        c.seed,
        c.registration_rate,
        c.matching
    );
    let _ = write!(
        out,
        "<p class=\"big\">Recall <b>{}</b> · precision <b>{}</b> · {} notified of {} who should be · \
         median delay from positive result to notification <b>{} h</b> · <b>{:.0} kB</b> per phone per day</p>",
        pct(s.recall),
        pct(s.precision),
        s.notified,
        s.should_be_notified,
        opt(s.delay_hours.p50, 1),
        s.bytes_per_phone_per_day.mean / 1000.0
    );

    out.push_str("<h2>Summary</h2>");
    let d = &s.delay_hours;
    let rows = vec![
        vec![
            "should be notified (app users)".into(),
            s.should_be_notified.to_string(),
        ],
        vec!["notified".into(), s.notified.to_string()],
        vec![
            "true / false positives".into(),
            format!("{} / {}", s.true_positives, s.false_positives),
        ],
        vec![
            format!(
                "notified with ≥ {} min within {} m (relaxed precision)",
                c.truth.minutes, c.truth.relaxed_distance_m
            ),
            pct(s.precision_relaxed),
        ],
        vec![
            "true positives warned before their positive's result".into(),
            s.notified_before_result.to_string(),
        ],
        vec!["false negatives".into(), s.false_negatives.to_string()],
        vec![
            "contacts without the app".into(),
            s.should_be_notified_without_app.to_string(),
        ],
        vec![
            "delay p50 / p90 / p95 / max (h)".into(),
            format!(
                "{} / {} / {} / {}",
                opt(d.p50, 1),
                opt(d.p90, 1),
                opt(d.p95, 1),
                opt(d.max, 1)
            ),
        ],
        vec!["registrations".into(), s.registrations.to_string()],
        vec!["export files".into(), s.files.to_string()],
        vec![
            "infections (initial + new)".into(),
            format!(
                "{} + {}",
                s.epidemic.initial_infections, s.epidemic.new_infections
            ),
        ],
        vec!["positive results".into(), s.epidemic.diagnosed.to_string()],
        vec![
            "encounters per person per day".into(),
            format!("{:.1}", s.population.encounters_per_person_per_day),
        ],
    ];
    table(&mut out, &["", "value"], &rows);

    out.push_str("<h2>Day by day</h2>");
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
        "Epidemic, registrations and notifications per day",
        "day (JST date)",
        "people",
        &[
            Series {
                name: "infections",
                points: pick(&|r| r.infections as f64),
            },
            Series {
                name: "positive results",
                points: pick(&|r| r.diagnoses as f64),
            },
            Series {
                name: "registrations",
                points: pick(&|r| r.registrations as f64),
            },
            Series {
                name: "notified (right)",
                points: pick(&|r| r.notified_correctly as f64),
            },
            Series {
                name: "notified (wrong)",
                points: pick(&|r| r.notified_wrongly as f64),
            },
        ],
        &day_ticks,
        None,
    ));

    out.push_str("<h2>Delay from positive result to notification</h2>");
    let hist: Vec<(String, f64, Option<f64>)> = s
        .delay_histogram
        .iter()
        .map(|(h, n)| (format!("{h:.0}"), *n as f64, None))
        .collect();
    out.push_str(&bar_chart(
        "Notified phones by delay (6-hour bins)",
        "hours",
        "phones",
        &hist,
        &[],
    ));
    let b = &s.delay_breakdown_hours;
    table(
        &mut out,
        &["step", "p50 h", "p90 h", "max h"],
        &[
            vec![
                "result → processing number".into(),
                opt(b.result_to_number.p50, 1),
                opt(b.result_to_number.p90, 1),
                opt(b.result_to_number.max, 1),
            ],
            vec![
                "number → registration".into(),
                opt(b.number_to_registration.p50, 1),
                opt(b.number_to_registration.p90, 1),
                opt(b.number_to_registration.max, 1),
            ],
            vec![
                "registration → notification".into(),
                opt(b.registration_to_notification.p50, 1),
                opt(b.registration_to_notification.p90, 1),
                opt(b.registration_to_notification.max, 1),
            ],
        ],
    );

    out.push_str("<h2>By phone model pair</h2><p>Recall per (person, registered positive) pair: do this positive's keys alone give a contact day on this person's phone? Rows: the phone that should be warned; columns: the positive's phone.</p>");
    let mut receivers: Vec<&str> = s
        .by_model_pair
        .iter()
        .map(|p| p.receiver.as_str())
        .collect();
    receivers.dedup();
    let mut senders: Vec<&str> = s.by_model_pair.iter().map(|p| p.sender.as_str()).collect();
    senders.sort_unstable();
    senders.dedup();
    out.push_str("<table><tr><th>receiver \\ sender</th>");
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
                        "<td style=\"background:{}\">{} <small>({}/{}; precision {})</small></td>",
                        heat(p.recall),
                        pct(p.recall),
                        p.detected_contacts,
                        p.contacts,
                        pct(p.precision)
                    );
                }
                None => out.push_str("<td>–</td>"),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");

    out.push_str("<h2>Radio: estimated attenuation by true distance</h2>");
    let thresholds = c.scoring.thresholds();
    let bars: Vec<(String, f64, Option<f64>)> = s
        .attenuation_by_distance
        .iter()
        .map(|r| {
            (
                r.max_distance_m
                    .map_or_else(|| "more".to_owned(), |m| format!("≤{m} m")),
                r.mean_db.unwrap_or(0.0),
                r.sd_db,
            )
        })
        .collect();
    let refs = [
        (f64::from(thresholds[0]), "immediate"),
        (f64::from(thresholds[1]), "near"),
        (f64::from(thresholds[2]), "medium"),
    ];
    out.push_str(&bar_chart(
        "Mean ± sd of the attenuation phones estimated",
        "true distance",
        "dB",
        &bars,
        &refs,
    ));

    out.push_str("<h2>By place</h2>");
    let rows: Vec<Vec<String>> = s
        .by_place
        .iter()
        .map(|p| {
            vec![
                serde_json::to_value(p.place)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                p.contacts.to_string(),
                p.detected.to_string(),
                pct(p.recall),
                p.infections.to_string(),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "place",
            "contacts to warn",
            "detected",
            "recall",
            "infections there",
        ],
        &rows,
    );

    if let Some(cmp) = &s.comparison {
        comparison_section(&mut out, cmp);
    } else if s.sweep.len() > 1 {
        out.push_str("<h2>Scoring sweep (same population, same matches)</h2>");
        let rows: Vec<&crate::summary::SweepRow> = s.sweep.iter().skip(1).collect();
        let ticks: Vec<(f64, String)> = rows.iter().map(|r| (r.value, short(r.value))).collect();
        out.push_str(&line_chart(
            &format!("Recall and precision against {}", rows[0].parameter),
            &rows[0].parameter,
            "share",
            &[
                Series {
                    name: "recall",
                    points: rows
                        .iter()
                        .map(|r| (r.value, r.recall.unwrap_or(0.0)))
                        .collect(),
                },
                Series {
                    name: "precision",
                    points: rows
                        .iter()
                        .map(|r| (r.value, r.precision.unwrap_or(0.0)))
                        .collect(),
                },
            ],
            &ticks,
            Some(1.0),
        ));
        let table_rows: Vec<Vec<String>> = s
            .sweep
            .iter()
            .map(|r| {
                vec![
                    r.parameter.clone(),
                    short(r.value),
                    r.notified.to_string(),
                    r.true_positives.to_string(),
                    pct(r.recall),
                    pct(r.precision),
                    opt(r.delay_p50_hours, 1),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "parameter",
                "value",
                "notified",
                "true positives",
                "recall",
                "precision",
                "delay p50 h",
            ],
            &table_rows,
        );
    }

    out.push_str("<h2>Downloads</h2>");
    let bars: Vec<(String, f64, Option<f64>)> = s
        .daily
        .iter()
        .map(|r| (r.date[5..].to_owned(), r.bytes_per_phone / 1000.0, None))
        .collect();
    out.push_str(&bar_chart(
        "kB downloaded per phone per day",
        "day",
        "kB",
        &bars,
        &[],
    ));

    out.push_str("<h2>Why false positives were notified</h2>");
    let rows: Vec<Vec<String>> = s
        .false_positive_reasons
        .iter()
        .map(|(k, v)| vec![k.clone(), v.to_string()])
        .collect();
    table(&mut out, &["reason", "phones"], &rows);

    out.push_str("<h2>Work</h2>");
    for (title, value) in [
        ("Servers", serde_json::to_value(&s.server)),
        ("Phones", serde_json::to_value(&s.phones)),
        ("Patients", serde_json::to_value(&s.patients)),
    ] {
        let _ = write!(out, "<h3>{title}</h3>");
        let rows: Vec<Vec<String>> = value
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| vec![k, v.to_string()])
            .collect();
        table(&mut out, &["", "value"], &rows);
    }
    if let Some(t) = timings {
        out.push_str("<h3>Time</h3>");
        let rows: Vec<Vec<String>> = t
            .phases
            .iter()
            .map(|(k, v)| vec![k.clone(), format!("{v:.2} s")])
            .collect();
        table(&mut out, &["phase", "seconds"], &rows);
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("a&lt;b"));
        let bars = bar_chart(
            "t",
            "x",
            "y",
            &[("a".into(), 2.0, Some(1.0))],
            &[(1.0, "r")],
        );
        assert_eq!(bars.matches("<rect").count(), 2);
    }
}
