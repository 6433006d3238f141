//! `cocoa en inspect | export | keygen`.

use super::{ExportArgs, InspectArgs, KeygenArgs};

pub fn inspect(_a: InspectArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet built")
}

pub fn export(_a: ExportArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet built")
}

pub fn keygen(_a: KeygenArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet built")
}
