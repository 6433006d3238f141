//! `cocoa`: the one binary of cocoa-rs. Parses the command line, loads the
//! configuration and hands over to the libraries; no protocol or server logic
//! lives here.

use std::process::ExitCode;

use clap::Parser;

mod commands;

use commands::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::En(cmd) => commands::en::run(cmd),
        Command::Bench(cmd) => commands::bench::run(cmd),
        Command::Issuer(cmd) => commands::issuer::run(cmd),
        Command::Keyserver(cmd) => commands::keyserver::run(cmd),
        Command::Serve(cmd) => commands::serve::run(cmd),
        Command::App(cmd) => commands::app::run(cmd),
        Command::Simulate(cmd) => commands::simulate::run(cmd),
        Command::Demo(cmd) => commands::demo::run(cmd),
        Command::Canary(cmd) => commands::canary::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(commands::exit_code(&e))
        }
    }
}

/// The error and its causes on one line, as scripts expect.
fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', " ")
}
