//! `cargo xtask bench sandbox [TRIALS] [REGION_MIB]`: the sandbox's cost on worker start-up.
//!
//! Runs `sandbox-worker`'s `sandbox_startup` example in release mode; see that file for what it
//! measures. It prints the spawn-to-ready distribution of a stand-in worker with and without
//! `sandbox::enter`, and the time `enter` itself takes.

use std::process::Command;

use anyhow::Result;

use crate::util;

/// Runs the benchmark with the given arguments (trials, region size in MiB).
pub fn run(args: &[String]) -> Result<()> {
    util::run(
        Command::new(util::cargo())
            .args([
                "run",
                "--release",
                "-p",
                "sandbox-worker",
                "--example",
                "sandbox_startup",
                "--",
            ])
            .args(args),
    )
}
