//! `cocoa bench export`.

use super::ExportArgs;

pub fn run(_a: ExportArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet built")
}
