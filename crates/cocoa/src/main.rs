//! `cocoa`: the one binary of cocoa-rs. Parses the command line and hands
//! over to the library ([`cocoa::run`]); no logic lives here.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match cocoa::run(cocoa::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cocoa::one_line(&e));
            ExitCode::from(cocoa::exit_code(&e))
        }
    }
}
