//! `cargo xtask test`: everything CI runs, in order.
//!
//! 1. `cargo xtask bundle tandem --release` (incremental; quick when nothing changed);
//! 2. `cargo test --workspace --no-fail-fast` (the CLAP host tests load the bundle from
//!    step 1);
//! 3. the VST3 host tests with pedalboard and DawDreamer: `pytest tests/python` in the venv at
//!    `.venv`, created with `pip install pedalboard dawdreamer numpy pytest` if it is missing.
//!
//! Extra arguments are passed to `cargo test` (e.g. `-- --nocapture`).

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::{bundle, util};

/// The venv the Python host tests run in (relative to the workspace root).
pub const VENV: &str = ".venv";
/// What the Python tests need from PyPI.
pub const PYTHON_PACKAGES: &[&str] = &["pedalboard", "dawdreamer", "numpy", "pytest"];

/// Entry point for `cargo xtask test`.
pub fn run(args: &[String]) -> Result<()> {
    bundle::bundle(&[String::from("--release")])?;

    eprintln!("xtask: cargo test --workspace");
    util::run(
        Command::new(util::cargo())
            // Every test binary runs even after one fails, so one run shows every failure.
            .args(["test", "--workspace", "--no-fail-fast"])
            .args(args),
    )?;

    let python = ensure_venv()?;
    eprintln!("xtask: pytest tests/python");
    util::run(
        Command::new(&python)
            .args(["-m", "pytest", "-v", "tests/python"])
            .env("TANDEM_BUNDLE_DIR", bundle::bundled_dir()),
    )?;
    Ok(())
}

/// The venv's python, after creating the venv and installing the packages if needed.
fn ensure_venv() -> Result<String> {
    let python = format!("{VENV}/bin/python");
    if !Path::new(&python).exists() {
        eprintln!("xtask: creating the venv at {VENV}");
        util::run(Command::new("python3").args(["-m", "venv", VENV]))?;
    }
    let imports = "import pedalboard, dawdreamer, numpy, pytest";
    let ready = Command::new(&python)
        .args(["-c", imports])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ready {
        eprintln!("xtask: pip install {}", PYTHON_PACKAGES.join(" "));
        util::run(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet"])
                .args(PYTHON_PACKAGES),
        )?;
    }
    Ok(python)
}
