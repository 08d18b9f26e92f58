//! `cargo xtask screenshot`: pictures of the editor in `target/screenshots/` (`editor.png`
//! while it plays, `editor-failover.png` just after a worker was killed). Bundles first, then
//! runs the `screenshot` example of the test host, which starts its own Xvfb.

use std::process::Command;

use anyhow::{bail, Result};

use crate::{bundle, util};

/// Entry point for `cargo xtask screenshot`.
pub fn run(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("screenshot takes no arguments");
    }
    bundle::bundle(&[String::from("--release")])?;
    let dir = util::workspace_target().join("screenshots");
    util::run(
        Command::new(util::cargo())
            .args(["run", "-p", "tandem-tests", "--example", "screenshot", "--"])
            .arg(&dir)
            .env("TANDEM_BUNDLE_DIR", bundle::bundled_dir()),
    )
}
