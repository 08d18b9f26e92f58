//! `cargo xtask install`: put the release bundles where Linux hosts look for plugins,
//! `~/.clap/Tandem.clap` and `~/.vst3/Tandem.vst3`, replacing older copies. Bundles first if
//! there are none yet.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::{bundle, util};

/// Entry point for `cargo xtask install`.
pub fn run(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("install takes no arguments");
    }
    if !bundle::clap_bundle().exists() || !bundle::vst3_bundle().exists() {
        bundle::bundle(&[String::from("--release")])?;
    }
    let home = PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?);
    let targets = [
        (bundle::clap_bundle(), home.join(".clap")),
        (bundle::vst3_bundle(), home.join(".vst3")),
    ];
    for (bundle, folder) in targets {
        let name = bundle.file_name().context("bundle without a name")?;
        let dest = folder.join(name);
        util::copy_replace(&bundle, &dest)?;
        println!("installed {}", dest.display());
    }
    Ok(())
}
