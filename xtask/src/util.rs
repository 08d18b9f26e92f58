//! Small helpers the subcommands share.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Runs a command to completion, failing with its command line if it does not succeed.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

/// Cargo's target directory for this workspace (honours `CARGO_TARGET_DIR` and config).
pub fn cargo_target_dir() -> Result<PathBuf> {
    let output = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("could not run cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let json = String::from_utf8(output.stdout).context("cargo metadata printed non-UTF-8")?;
    // One string field; not worth a JSON parser.
    let key = "\"target_directory\":\"";
    let start = json
        .find(key)
        .context("no target_directory in cargo metadata")?
        + key.len();
    let end = start
        + json[start..]
            .find('"')
            .context("unterminated target_directory")?;
    Ok(PathBuf::from(json[start..end].replace("\\\\", "\\")))
}

/// The workspace's own `target/` (the current directory is the workspace root).
pub fn workspace_target() -> PathBuf {
    PathBuf::from("target")
}

/// The `cargo` that runs us, so nested builds use the same toolchain.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| String::from("cargo"))
}

/// Copies a file or a directory tree, replacing what is at `to`.
pub fn copy_replace(from: &Path, to: &Path) -> Result<()> {
    if to.is_dir() {
        std::fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
    } else if to.exists() {
        std::fs::remove_file(to).with_context(|| format!("removing {}", to.display()))?;
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_replace(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else {
        std::fs::copy(from, to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}
