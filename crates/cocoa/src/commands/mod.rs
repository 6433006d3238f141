//! The command-line surface. Each subcommand family lives in its own module.

use clap::{Parser, Subcommand};

pub mod app;
pub mod app_ui;
pub mod canary;
pub mod demo;
pub mod en;
pub mod issuer;
pub mod keyserver;
pub mod serve;
pub mod simulate;

/// cocoa-rs: an open exposure-notification system (COCOA + HER-SYS processing numbers).
#[derive(Debug, Parser)]
#[command(name = "cocoa", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The Exposure Notification protocol: RPIs, export files, signing keys.
    #[command(subcommand)]
    En(en::EnCommand),
    /// Benchmarks of the hot paths (print one JSON object).
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    /// The health-centre side: centres, staff, API keys, certificate keys.
    Issuer(issuer::IssuerArgs),
    /// The notification server: trusted issuers, exports, export signing key.
    Keyserver(keyserver::KeyserverArgs),
    /// Runs the server role(s).
    Serve(serve::ServeArgs),
    /// The phone app: keys, sightings, registration, exposure check (one folder per phone).
    App(app::AppArgs),
    /// Simulate a population with the app and measure who gets warned.
    Simulate(simulate::SimulateArgs),
    /// The production canary: the whole flow against a live deployment, with metrics.
    Canary(canary::CanaryArgs),
    /// The whole story in one command, narrated: issue, SMS, register, export, notify.
    Demo(demo::DemoArgs),
}

/// Marks an error as the user's input being malformed, so the process exits
/// with status 2 instead of 1.
#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// The exit status for an error: 2 for malformed input, 1 for anything else.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.is::<InputError>()) {
        2
    } else {
        1
    }
}

/// Wraps an error as bad input (exit code 2).
pub fn bad_input<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::Error::new(InputError(e.to_string()))
}

/// Refuses a management command (`cocoa keyserver …`, `cocoa issuer …`) on
/// a data folder that does not exist, unless `create` (`--create-data`):
/// run in the wrong folder, it would otherwise make an empty database there
/// and report success (issue 15, "the first hour of a new user"). Exit 2.
pub fn require_data_folder(data: &std::path::Path, create: bool) -> anyhow::Result<()> {
    if create || data.is_dir() {
        return Ok(());
    }
    let d = data.display();
    Err(bad_input(format!(
        "データフォルダ {d} がありません（空のデータベースを作らずに止めました）。cocoa serve を動かしているフォルダで実行するか、--data でデータフォルダを指定してください。新しいデータフォルダを作る場合は --create-data を付けてください。 / The data folder {d} does not exist (stopped instead of creating an empty database): run this where cocoa serve runs, or give the folder with --data; add --create-data to create a new one."
    )))
}

/// Prints one JSON value on stdout.
pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}
