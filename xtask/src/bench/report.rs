//! `cargo xtask bench report [--quick] [--out DIR] [--no-run]`: runs every benchmark and writes
//! `PERFORMANCE.md` with tables, PNG plots and the performance goals stated as met or not met.
//!
//! Each benchmark runs as its own process (this executable, `bench NAME`), so one benchmark's
//! scheduling changes (`SCHED_FIFO` threads) and memory never leak into the next; the report is
//! then built from their JSON files in `target/bench/`. The full run writes into `docs/` and is
//! the one committed; `--quick` (what CI runs, with no thresholds) uses short durations and writes
//! into `target/bench/report/` so it never overwrites the committed report. `--no-run` rebuilds
//! the report from the JSON files already there.
//!
//! The analysis written by hand (causes of missed goals) lives in the report between the
//! `notes:begin` and `notes:end` markers; regenerating keeps it.
//!
//! The parts: [`data`] reads the JSON files (their types are [`super::schema`], shared with the
//! benchmarks that write them), [`goals`] states each goal once and judges it, [`plots`] draws
//! the PNGs, [`markdown`] writes the text.

mod data;
mod goals;
mod markdown;
mod plots;

use super::flag;
use anyhow::{bail, Context, Result};
use data::Data;
use markdown::{existing_notes, Provenance};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each benchmark and its arguments, full and quick.
fn plan(quick: bool) -> Vec<(&'static str, Vec<&'static str>)> {
    if quick {
        vec![
            ("failover", vec!["--kills", "18"]),
            ("failover", vec!["--kills", "12", "--protection", "eco"]),
            ("overhead", vec!["--seconds", "0.5", "--rounds", "1"]),
            ("realtime", vec!["--seconds", "2"]),
            ("scale", vec!["--seconds", "1"]),
        ]
    } else {
        vec![
            ("failover", vec!["--kills", "180"]),
            ("failover", vec!["--kills", "180", "--protection", "eco"]),
            ("overhead", vec!["--seconds", "5", "--rounds", "2"]),
            ("realtime", vec!["--seconds", "20"]),
            ("scale", vec!["--seconds", "4"]),
        ]
    }
}

/// Entry point.
pub fn run(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let no_run = args.iter().any(|a| a == "--no-run");
    let default_out = if quick { "target/bench/report" } else { "docs" };
    let out: String = flag(args, "--out", default_out.to_string())?;
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    let started = std::time::Instant::now();
    let code_before = code_state();
    // The benchmarks write into a folder of this report's own (see `super::json_dir`).
    let json_dir = PathBuf::from(if quick {
        "target/bench/report-quick"
    } else {
        "target/bench/report-full"
    });
    if !no_run {
        let exe = std::env::current_exe()?;
        for (name, bench_args) in plan(quick) {
            eprintln!("== bench {name} {}", bench_args.join(" "));
            crate::util::run(
                Command::new(&exe)
                    .arg("bench")
                    .arg(name)
                    .args(&bench_args)
                    .env("TANDEM_BENCH_DIR", &json_dir),
            )
            .with_context(|| format!("bench {name}"))?;
        }
    }
    let data = Data::load(&json_dir)?;
    let fonts = plots::register_font();
    let drawn = [
        ("detection.png", plots::detection(&out, &data, fonts)),
        ("rebuild.png", plots::rebuild(&out, &data, fonts)),
        ("overhead.png", plots::overhead(&out, &data, fonts)),
        ("xruns.png", plots::xruns(&out, &data, fonts)),
    ];
    for (name, result) in &drawn {
        if let Err(e) = result {
            bail!("plotting {name}: {e}");
        }
    }
    let notes = existing_notes(&out.join("PERFORMANCE.md"))
        .or_else(|| existing_notes(Path::new("docs/PERFORMANCE.md")))
        .unwrap_or_else(|| "_No analysis written yet._\n".to_string());
    let command = format!(
        "cargo xtask bench report{}",
        if quick { " --quick" } else { "" }
    );
    let mut code = code_state();
    if !no_run && code != code_before {
        code = format!("{code_before} at the start, {code} at the end (it changed during the run)");
    }
    let how = Provenance {
        command: &command,
        quick,
        fonts,
        code: &code,
        took: started.elapsed(),
        json_dir: &json_dir.to_string_lossy(),
    };
    let md = markdown::markdown(&data, &how, &notes);
    let path = out.join("PERFORMANCE.md");
    std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {} and its plots", path.display());
    Ok(())
}

fn git(args: &[&str]) -> String {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The commit, and whether the engine's crates had uncommitted changes.
fn code_state() -> String {
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = git(&[
        "status",
        "--porcelain",
        "--",
        "plugin",
        "shm",
        "sandbox-worker",
        "dsp",
    ]);
    if dirty.is_empty() {
        format!("commit `{commit}`")
    } else {
        format!("commit `{commit}` with uncommitted changes in the engine's crates")
    }
}
