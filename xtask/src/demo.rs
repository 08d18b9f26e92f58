//! `cargo xtask demo` (being written).

use anyhow::{bail, Result};

/// Entry point for `cargo xtask demo`.
pub fn run(_args: &[String]) -> Result<()> {
    bail!("the demo waits for the engine")
}
