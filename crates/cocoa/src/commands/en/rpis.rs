//! `cocoa en rpis`.

use super::RpisArgs;

pub fn run(_a: RpisArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet built")
}
