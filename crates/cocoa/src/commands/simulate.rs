//! `cocoa simulate`: a seeded population of phones meeting, falling ill and
//! registering, on the real protocol code; prints a summary table and
//! writes the JSON summary and the HTML report.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use simulator::summary::Summary;
use simulator::{Matching, SimConfig, Sweep, Timings};

use super::bad_input;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MatchingArg {
    /// Phones that met a broadcaster of a published key match (city scale).
    Inverted,
    /// Every phone matches every key (small populations; same answers).
    Exhaustive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// The issuer's and key server's functions in this process (any N).
    InProcess,
    /// The real servers over HTTP on a loopback port, SQLite (small N).
    Http,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SimulateArgs {
    /// `trial`: controlled contacts between two phones; none: a population.
    #[command(subcommand)]
    pub command: Option<SimulateCommand>,
    /// Where phones register and download: the servers' functions in
    /// process, or the real servers over HTTP (small N: every registration
    /// is real requests and database writes).
    #[arg(long, value_enum, default_value_t = BackendArg::InProcess)]
    pub backend: BackendArg,
    /// People simulated; `adoption` of them have the app.
    #[arg(long, default_value_t = SimConfig::default().people)]
    pub devices: u32,
    /// Days of mixing.
    #[arg(long, default_value_t = SimConfig::default().days)]
    pub days: u32,
    /// Seed: the same seed gives the same summary.
    #[arg(long, default_value_t = SimConfig::default().seed)]
    pub seed: u64,
    /// Share of people with the app.
    #[arg(long, default_value_t = SimConfig::default().adoption)]
    pub adoption: f64,
    /// Share of app-using patients who register their positive result.
    #[arg(long, default_value_t = SimConfig::default().registration_rate)]
    pub registration_rate: f64,
    /// Days after the last day of mixing during which exports and checks go on.
    #[arg(long, default_value_t = SimConfig::default().follow_up_days)]
    pub follow_up_days: u32,
    /// Health centres issue numbers automatically (minutes instead of hours).
    #[arg(long)]
    pub auto_issue: bool,
    /// Compare scoring variants on the same population:
    /// `threshold=900,1350,1800` (daily score sum) or `seconds=600,900`.
    #[arg(long)]
    pub sweep: Option<String>,
    /// The phones' `configuration.json` (COCOA's format; default COCOA's values).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The phones' `risk_calculation_configuration.json` (COCOA's format; default COCOA's).
    #[arg(long)]
    pub risk: Option<PathBuf>,
    /// `<current dir>,<candidate dir>`, each holding `configuration.json` and
    /// `risk_calculation_configuration.json`: both scored on the same
    /// population, side by side with the paired difference and the trial grid.
    #[arg(long, conflicts_with_all = ["config", "risk", "sweep"])]
    pub compare: Option<String>,
    /// The radio model (TOML; default crates/simulator/data/radio_model.toml:
    /// Lovett et al.'s log-normal fit, scan cadence, placements, phone models).
    #[arg(long)]
    pub radio_model: Option<PathBuf>,
    /// How phones find published keys.
    #[arg(long, value_enum, default_value_t = MatchingArg::Inverted)]
    pub matching: MatchingArg,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the JSON summary here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The report's language: `ja` (default) or `en`.
    #[arg(long, default_value = "ja", value_parser = ["ja", "en"])]
    pub lang: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// Controlled trials: k contacts of exactly this distance and duration
    /// between phones of the given models, through the real device, matcher
    /// and scoring; prints the detection rate with Wilson 95 % intervals as JSON.
    Trial(TrialArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlacementArg {
    /// In the hand, at the face.
    Face,
    /// Flat on a desk or a table.
    Desk,
    /// In a bag or a pocket.
    Bag,
}

#[derive(Debug, Args)]
pub struct TrialArgs {
    /// Distance between the two phones, metres (0.1 to 25.5).
    #[arg(long)]
    pub distance: f64,
    /// Duration of each contact, minutes (1 to 1000).
    #[arg(long)]
    pub minutes: f64,
    /// Contacts per `--pair` (without `--pair`: in all, models drawn by market share).
    #[arg(long, default_value_t = 1000)]
    pub trials: u32,
    /// `sender:receiver` phone models (repeatable), e.g. `iphone:pixel`.
    #[arg(long = "pair")]
    pub pairs: Vec<String>,
    /// Both phones' placement (default: drawn per contact by the model's shares).
    #[arg(long, value_enum)]
    pub placement: Option<PlacementArg>,
    /// The phones' `configuration.json` (COCOA's format; default COCOA's values).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The phones' `risk_calculation_configuration.json` (default COCOA's).
    #[arg(long)]
    pub risk: Option<PathBuf>,
    /// The radio model (TOML; default the built-in Lovett et al. fit).
    #[arg(long)]
    pub radio_model: Option<PathBuf>,
    /// Seed: the same seed and arguments give the same result.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the JSON result here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `cocoa simulate trial`: the JSON result on stdout, the time on stderr.
fn run_trial(a: &TrialArgs) -> anyhow::Result<()> {
    let mut config = SimConfig {
        seed: a.seed,
        scoring: simulator::scoring::Scoring::from_files(a.config.as_deref(), a.risk.as_deref())
            .map_err(|e| bad_input(format!("{}: {} / {}", e.code, e.ja, e.en)))?,
        ..SimConfig::default()
    };
    if let Some(path) = &a.radio_model {
        let f = radio_model(path)?;
        config.radio = f.radio();
        config.phone_models = f.models;
    }
    let trial_error =
        |e: simulator::trial::TrialError| bad_input(format!("{}: {} / {}", e.code, e.ja, e.en));
    let pairs = a
        .pairs
        .iter()
        .map(|p| simulator::trial::parse_pair(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(trial_error)?;
    let spec = simulator::trial::TrialSpec {
        distance_m: a.distance,
        minutes: a.minutes,
        trials: a.trials,
        pairs,
        placement: a.placement.map(|p| match p {
            PlacementArg::Face => simulator::radio::Placement::Face,
            PlacementArg::Desk => simulator::radio::Placement::Desk,
            PlacementArg::Bag => simulator::radio::Placement::Bag,
        }),
    };
    let started = Instant::now();
    let report = simulator::trial::run_trials(&config, &spec).map_err(trial_error)?;
    let seconds = started.elapsed().as_secs_f64();
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &a.json {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{json}");
    eprintln!(
        "{} 回の接触を {seconds:.2} 秒で試行しました / {} contacts in {seconds:.2} s",
        report.trials, report.trials
    );
    for w in &report.warnings {
        eprintln!("注意: {} / warning: {}", w.ja, w.en);
    }
    Ok(())
}

/// The progress bar.
struct Bar(ProgressBar);

impl simulator::Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        self.0.set_length(total);
        self.0.set_position(0);
        self.0.set_message(name.to_owned());
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
}

fn config(a: &SimulateArgs) -> anyhow::Result<SimConfig> {
    let sweep = a
        .sweep
        .as_deref()
        .map(str::parse::<Sweep>)
        .transpose()
        .map_err(bad_input)?;
    let scoring_error = |e: simulator::scoring::ScoringFileError| {
        bad_input(format!("{}: {} / {}", e.code, e.ja, e.en))
    };
    let (scoring, candidate) = match &a.compare {
        Some(dirs) => {
            let Some((current, candidate)) = dirs.split_once(',') else {
                return Err(bad_input(format!(
                    "SIM_COMPARE: --compare は「現行のフォルダ,候補のフォルダ」の形で指定してください / \
                     --compare {dirs:?}: expected <current dir>,<candidate dir>"
                )));
            };
            let from =
                |d: &str| simulator::scoring::Scoring::from_dir(std::path::Path::new(d.trim()));
            (
                from(current).map_err(scoring_error)?,
                Some(from(candidate).map_err(scoring_error)?),
            )
        }
        None => (
            simulator::scoring::Scoring::from_files(a.config.as_deref(), a.risk.as_deref())
                .map_err(scoring_error)?,
            None,
        ),
    };
    let mut c = SimConfig {
        scoring,
        candidate,
        people: a.devices,
        days: a.days,
        seed: a.seed,
        adoption: a.adoption,
        registration_rate: a.registration_rate,
        follow_up_days: a.follow_up_days,
        threads: a.threads.unwrap_or(0),
        matching: match a.matching {
            MatchingArg::Inverted => Matching::Inverted,
            MatchingArg::Exhaustive => Matching::Exhaustive,
        },
        sweep,
        ..SimConfig::default()
    };
    c.health.auto_issue = a.auto_issue;
    if let Some(path) = &a.radio_model {
        let f = radio_model(path)?;
        c.radio = f.radio();
        c.phone_models = f.models;
    }
    c.validate().map_err(bad_input)?;
    Ok(c)
}

/// A `--radio-model` file, or its stable code with the Japanese and English messages (exit 2).
pub fn radio_model(
    path: &std::path::Path,
) -> anyhow::Result<simulator::radio_model::RadioModelFile> {
    simulator::radio_model::RadioModelFile::from_path(path)
        .map_err(|e| bad_input(format!("{}: {} / {}", e.code, e.ja, e.en)))
}

/// Peak resident memory of this process, bytes (Linux; `None` elsewhere).
fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |x| format!("{:.1} %", x * 100.0))
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"))
}

/// The table printed at the end.
fn table(s: &Summary, t: &Timings, seconds: f64, peak: Option<u64>) -> String {
    let d = &s.delay_hours;
    let mut rows: Vec<(String, String)> = vec![
        (
            "people / app users".into(),
            format!("{} / {}", s.population.people, s.population.app_users),
        ),
        (
            "infections (initial + new) / positive results".into(),
            format!(
                "{} + {} / {}",
                s.epidemic.initial_infections, s.epidemic.new_infections, s.epidemic.diagnosed
            ),
        ),
        (
            "registrations / export files".into(),
            format!("{} / {}", s.registrations, s.files),
        ),
        (
            "should be notified".into(),
            s.should_be_notified.to_string(),
        ),
        (
            "notified (true + false)".into(),
            format!(
                "{} ({} + {})",
                s.notified, s.true_positives, s.false_positives
            ),
        ),
        ("recall".into(), pct(s.recall)),
        ("precision".into(), pct(s.precision)),
        (
            "notified with >= 15 min within 2 m".into(),
            pct(s.precision_relaxed),
        ),
        (
            "delay result -> notification p50/p90/p95 (h)".into(),
            format!("{} / {} / {}", num(d.p50), num(d.p90), num(d.p95)),
        ),
        (
            "bytes per phone per day (mean / p95)".into(),
            format!(
                "{:.0} / {:.0}",
                s.bytes_per_phone_per_day.mean, s.bytes_per_phone_per_day.p95
            ),
        ),
        (
            "keys matched by phones (sim)".into(),
            s.phones.keys_matched.to_string(),
        ),
    ];
    if let Some(c) = &s.comparison {
        let diff = |d: Option<&simulator::compare::Difference>| {
            d.map_or_else(
                || "-".to_owned(),
                |d| {
                    format!(
                        "{:+.1} pt [{:+.1}, {:+.1}]",
                        d.value * 100.0,
                        d.ci95[0] * 100.0,
                        d.ci95[1] * 100.0
                    )
                },
            )
        };
        rows.push((
            "compare recall current / candidate".into(),
            format!(
                "{} / {}  (difference {})",
                pct(c.current.recall),
                pct(c.candidate.recall),
                diff(c.recall_difference.as_ref())
            ),
        ));
        rows.push((
            "compare precision current / candidate".into(),
            format!(
                "{} / {}  (difference {})",
                pct(c.current.precision),
                pct(c.candidate.precision),
                diff(c.precision_difference.as_ref())
            ),
        ));
        rows.push((
            "compare notified current / candidate".into(),
            format!(
                "{} / {}  (difference {:+.0} [{:+.0}, {:+.0}])",
                c.current.notified,
                c.candidate.notified,
                c.notified_difference.value,
                c.notified_difference.ci95[0],
                c.notified_difference.ci95[1]
            ),
        ));
    }
    for r in s.sweep.iter().skip(1).filter(|_| s.comparison.is_none()) {
        rows.push((
            format!("sweep {}={}", r.parameter, r.value),
            format!(
                "recall {} precision {} notified {}",
                pct(r.recall),
                pct(r.precision),
                r.notified
            ),
        ));
    }
    rows.push((
        "time".into(),
        format!("{seconds:.1} s on {} threads", t.threads),
    ));
    if let Some(p) = peak {
        rows.push(("peak memory".into(), format!("{:.0} MB", p as f64 / 1e6)));
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(&format!("{k:<width$}  {v}\n"));
    }
    if !s.by_model_pair.is_empty() {
        out.push_str(
            "\nrecall by phone model pair (receiver <- sender): contacts detected/total\n",
        );
        for p in &s.by_model_pair {
            if p.contacts > 0 {
                out.push_str(&format!(
                    "  {:>8} <- {:<8} {:>8}  {}/{}\n",
                    p.receiver,
                    p.sender,
                    pct(p.recall),
                    p.detected_contacts,
                    p.contacts
                ));
            }
        }
    }
    out
}

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    if let Some(SimulateCommand::Trial(t)) = &args.command {
        return run_trial(t);
    }
    let config = config(&args)?;
    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("{msg:28} [{elapsed_precise}] {wide_bar} {pos}/{len}")
                .context("progress bar template")?,
        );
        b
    };
    let started = Instant::now();
    let run = match args.backend {
        BackendArg::InProcess => simulator::run,
        BackendArg::Http => simulator::run_over_http,
    };
    let outcome = run(&config, &Bar(bar.clone())).map_err(|e| match e {
        simulator::SimError::Config(c) => bad_input(c),
        other => anyhow::Error::new(other),
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_memory_bytes();
    let summary = &outcome.summary;
    if let Some(path) = &args.json {
        let mut value = serde_json::to_value(summary)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "run".into(),
                serde_json::json!({
                    "seconds": seconds,
                    "peak_memory_bytes": peak,
                    "threads": outcome.timings.threads,
                    "phases": outcome.timings.phases,
                    "encounter_log_bytes": outcome.timings.encounter_log_bytes,
                }),
            );
        }
        std::fs::write(path, serde_json::to_vec_pretty(&value)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.report {
        std::fs::write(
            path,
            simulator::report::html(
                summary,
                Some(&outcome.timings),
                args.lang.parse().unwrap_or_default(),
            ),
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    print!("{}", table(summary, &outcome.timings, seconds, peak));
    Ok(())
}
