//! cocoa-rs's composition: every role wired from one configuration, as a
//! library a test can call in process, and the command line over it.
//!
//! - [`server`]: composing the roles ([`server::build_roles`],
//!   [`server::serve`]), the layered configuration ([`server::config`]),
//!   the operations routes ([`server::ops`]), TLS ([`server::tls`]),
//!   graceful shutdown ([`server::Shutdown`]) and the demo seed
//!   ([`server::demo`]).
//! - [`bench`]: the `cocoa bench …` measurements of the hot paths.
//! - [`commands`]: the command line; the binary (`main.rs`) only parses and
//!   calls [`run`].

pub mod bench;
pub mod commands;
pub mod server;

pub use commands::{Cli, Command};

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::En(cmd) => commands::en::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Issuer(cmd) => commands::issuer::run(cmd),
        Command::Keyserver(cmd) => commands::keyserver::run(cmd),
        Command::Serve(cmd) => commands::serve::run(cmd),
        Command::App(cmd) => commands::app::run(cmd),
        Command::Simulate(cmd) => commands::simulate::run(cmd),
        Command::Demo(cmd) => commands::demo::run(cmd),
        Command::Canary(cmd) => commands::canary::run(cmd),
    }
}

/// The exit status for an error: 2 for malformed input, 1 for anything else.
pub use commands::exit_code;

/// The error and its causes on one line, as scripts expect.
pub fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', " ")
}
