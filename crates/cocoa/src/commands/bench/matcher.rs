//! `cocoa bench match`.

use super::MatchArgs;

pub fn run(_a: MatchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet built")
}
