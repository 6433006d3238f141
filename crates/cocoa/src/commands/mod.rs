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

/// Prints one JSON value on stdout.
pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}
