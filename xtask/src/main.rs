//! `cargo xtask`: Tandem's project commands. One module per subcommand; this file only
//! dispatches.
//!
//! - `bundle tandem [--release]`: `target/bundled/Tandem.clap` and `Tandem.vst3`, each with the
//!   worker embedded (see `bundle.rs`). Other packages go straight to nice-plug-xtask.
//! - `install` / `uninstall`: copy both bundles into `~/.clap` and `~/.vst3`, or remove them.
//! - `screenshot`: pictures of the editor in `target/screenshots/`.
//! - `demo`: render a phrase through the engine while killing workers; WAV, PNG and a report.
//! - `test`: everything CI runs: bundle, `cargo test --workspace`, the Python host tests.

mod bench;
mod bundle;
mod demo;
mod install;
mod screenshot;
mod test;
mod util;

use anyhow::Result;

const USAGE: &str = "Usage:
  cargo xtask bundle tandem [--release]   build target/bundled/Tandem.{clap,vst3}
  cargo xtask install                      copy the release bundles into ~/.clap and ~/.vst3
  cargo xtask uninstall                    remove them again (user presets are kept)
  cargo xtask screenshot                   editor pictures in target/screenshots/
  cargo xtask demo [--seconds N] [--offline]
                                           render through the engine while killing workers
  cargo xtask test                         bundle, cargo test --workspace, python host tests
  cargo xtask bench NAME [options]         NAME: failover, overhead, poison, realtime, scale, sandbox,
                                           or report [--quick] (writes docs/PERFORMANCE.md)
  (any other nice-plug-xtask command is passed through)";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    nice_plug_xtask::chdir_workspace_root()?;
    let Some(command) = args.first() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let rest = &args[1..];
    match command.as_str() {
        "bench" => bench::run(rest),
        "bundle" => bundle::run(rest),
        "install" => install::run(rest),
        "uninstall" => install::uninstall(rest),
        "screenshot" => screenshot::run(rest),
        "demo" => demo::run(rest),
        "test" => test::run(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        _ => nice_plug_xtask::main_with_args("cargo xtask", args),
    }
}
