//! stub
use anyhow::Result;
/// Entry point.
pub fn run(_args: &[String]) -> Result<()> {
    Ok(())
}
