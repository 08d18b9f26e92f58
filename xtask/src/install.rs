//! `cargo xtask install`: put the release bundles where Linux hosts look for plugins,
//! `~/.clap/Tandem.clap` and `~/.vst3/Tandem.vst3`, replacing older copies. Bundles first if
//! there are none yet. `cargo xtask uninstall` removes both again; the user's presets (in
//! `$XDG_DATA_HOME/Tandem/presets`) are theirs and stay.

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
    for (bundle, dest) in targets()? {
        util::copy_replace(&bundle, &dest)?;
        println!("installed {}", dest.display());
    }
    Ok(())
}

/// Entry point for `cargo xtask uninstall`.
pub fn uninstall(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("uninstall takes no arguments");
    }
    for (_, dest) in targets()? {
        if dest.is_dir() {
            std::fs::remove_dir_all(&dest)
        } else if dest.exists() {
            std::fs::remove_file(&dest)
        } else {
            println!("not installed: {}", dest.display());
            continue;
        }
        .with_context(|| format!("removing {}", dest.display()))?;
        println!("removed {}", dest.display());
    }
    Ok(())
}

/// Each bundle and where it is installed.
fn targets() -> Result<[(PathBuf, PathBuf); 2]> {
    let home = PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?);
    let place = |bundle: PathBuf, folder: &str| -> Result<(PathBuf, PathBuf)> {
        let name = bundle
            .file_name()
            .context("bundle without a name")?
            .to_owned();
        Ok((bundle, home.join(folder).join(name)))
    };
    Ok([
        place(bundle::clap_bundle(), ".clap")?,
        place(bundle::vst3_bundle(), ".vst3")?,
    ])
}
