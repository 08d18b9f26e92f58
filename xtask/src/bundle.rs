//! `cargo xtask bundle tandem [--release] [cargo build options]`
//!
//! A bundle has to start its workers wherever it is copied, so the worker executable travels
//! inside the plugin binary (see `plugin/src/worker_exe.rs`):
//!
//! 1. build `tandem-worker` (package `sandbox-worker`) with the same profile;
//! 2. build the plugin with `--features embed-worker` and `TANDEM_WORKER_BIN=<that binary>`,
//!    which `include_bytes!` embeds;
//! 3. let nice-plug-xtask lay out `Tandem.clap` and `Tandem.vst3` (name from `bundler.toml`);
//! 4. if cargo's target directory is not the workspace's `target/`, copy the bundles to
//!    `target/bundled/` anyway, where the tests and the install command look.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util;

/// The plugin package, and the names of what we produce.
pub const PACKAGE: &str = "tandem";
/// Bundle base name (must match `bundler.toml`).
pub const BUNDLE_NAME: &str = "Tandem";

/// Where the bundles end up.
pub fn bundled_dir() -> PathBuf {
    util::workspace_target().join("bundled")
}

/// The CLAP bundle's path.
pub fn clap_bundle() -> PathBuf {
    bundled_dir().join(format!("{BUNDLE_NAME}.clap"))
}

/// The VST3 bundle's path.
pub fn vst3_bundle() -> PathBuf {
    bundled_dir().join(format!("{BUNDLE_NAME}.vst3"))
}

/// Entry point for `cargo xtask bundle ...`.
pub fn run(args: &[String]) -> Result<()> {
    let (packages, cargo_args): (Vec<&String>, Vec<&String>) = {
        let mut packages = Vec::new();
        let mut rest = Vec::new();
        let mut iter = args.iter().peekable();
        while let Some(arg) = iter.next() {
            if arg == "-p" {
                packages.extend(iter.next());
            } else if !arg.starts_with('-') && packages.is_empty() && rest.is_empty() {
                packages.push(arg);
            } else {
                rest.push(arg);
            }
        }
        (packages, rest)
    };
    if packages.iter().any(|p| p.as_str() != PACKAGE) {
        // Not ours: plain nice-plug bundling.
        let mut all = vec![String::from("bundle")];
        all.extend(args.iter().cloned());
        return nice_plug_xtask::main_with_args("cargo xtask", all);
    }
    let cargo_args: Vec<String> = cargo_args.into_iter().cloned().collect();
    bundle(&cargo_args)
}

/// Builds and bundles the plugin with `cargo_args` (profile, target, features...).
pub fn bundle(cargo_args: &[String]) -> Result<()> {
    let profile_args = profile_and_target_args(cargo_args);
    let target_dir = util::cargo_target_dir()?;

    eprintln!("xtask: building the worker (tandem-worker)");
    util::run(
        Command::new(util::cargo())
            .args(["build", "-p", "sandbox-worker", "--bin", "tandem-worker"])
            .args(&profile_args),
    )?;
    let worker = output_dir(&target_dir, cargo_args).join("tandem-worker");
    if !worker.is_file() {
        bail!("the worker build did not produce {}", worker.display());
    }
    let worker = worker
        .canonicalize()
        .with_context(|| format!("resolving {}", worker.display()))?;

    eprintln!(
        "xtask: building the plugin with the worker embedded ({})",
        worker.display()
    );
    std::env::set_var("TANDEM_WORKER_BIN", &worker);
    let mut plugin_args: Vec<String> = cargo_args.to_vec();
    plugin_args.extend(["--features".into(), "embed-worker".into()]);
    nice_plug_xtask::build(&[PACKAGE.to_owned()], &plugin_args)?;
    nice_plug_xtask::bundle(&target_dir, PACKAGE, &plugin_args, false)?;

    let produced = target_dir.join("bundled");
    let wanted = bundled_dir();
    if !same_dir(&produced, &wanted) {
        for name in [format!("{BUNDLE_NAME}.clap"), format!("{BUNDLE_NAME}.vst3")] {
            util::copy_replace(&produced.join(&name), &wanted.join(&name))?;
        }
    }
    for path in [clap_bundle(), vst3_bundle()] {
        if !path.exists() {
            bail!("bundling did not produce {}", path.display());
        }
    }
    eprintln!(
        "xtask: {} and {} are self-contained",
        clap_bundle().display(),
        vst3_bundle().display()
    );
    Ok(())
}

/// The options that choose the profile and the target, which the worker build must share.
fn profile_and_target_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--release" => out.push(arg.clone()),
            "--profile" | "--target" => {
                out.push(arg.clone());
                out.extend(iter.next().cloned());
            }
            a if a.starts_with("--profile=") || a.starts_with("--target=") => out.push(arg.clone()),
            _ => {}
        }
    }
    out
}

/// `target/[<triple>/]<profile dir>` for these cargo options.
fn output_dir(target_dir: &Path, args: &[String]) -> PathBuf {
    let mut profile = String::from("debug");
    let mut triple = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--release" => profile = String::from("release"),
            "--profile" => profile = iter.next().cloned().unwrap_or(profile),
            "--target" => triple = iter.next().cloned(),
            a => {
                if let Some(p) = a.strip_prefix("--profile=") {
                    profile = p.to_owned();
                } else if let Some(t) = a.strip_prefix("--target=") {
                    triple = Some(t.to_owned());
                }
            }
        }
    }
    if profile == "dev" || profile == "test" {
        profile = String::from("debug");
    } else if profile == "bench" {
        profile = String::from("release");
    }
    let base = match triple {
        Some(t) => target_dir.join(t),
        None => target_dir.to_path_buf(),
    };
    base.join(profile)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn profile_dirs() {
        let t = Path::new("/t");
        assert_eq!(output_dir(t, &s(&[])), Path::new("/t/debug"));
        assert_eq!(output_dir(t, &s(&["--release"])), Path::new("/t/release"));
        assert_eq!(
            output_dir(
                t,
                &s(&["--profile", "bench", "--target=x86_64-unknown-linux-gnu"])
            ),
            Path::new("/t/x86_64-unknown-linux-gnu/release")
        );
        assert_eq!(
            profile_and_target_args(&s(&["--release", "--features", "x", "--target", "y"])),
            s(&["--release", "--target", "y"])
        );
    }
}
