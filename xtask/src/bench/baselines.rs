//! Baselines measured beside the engine in the same run: the mechanism a figure depends on, in
//! a child process that does nothing else, so that a figure can be read against what this
//! machine gives any program (its wake-ups, its scheduler, the hypervisor's steal).
//!
//! - [`DeathBaseline`] (`bench failover`): kill to detection of an idle child's death word.
//! - [`WakeBaseline`] (`bench overhead`, mode `in_process_woken`): waking an idle child once a
//!   block, the least any design pays that renders in another process and wakes it per block.
//!
//! The children are this executable (`bench baseline-child ROLE PID FD`). Each maps the
//! parent's memfd through `/proc/<pid>/fd/<fd>`, so nothing is inherited and no code of ours
//! runs between fork and exec, and takes the workers' `SCHED_FIFO` priority.

mod death;
mod wake;

pub use death::DeathBaseline;
pub use wake::WakeBaseline;

use anyhow::{bail, Context, Result};
use shm::region::{Access, Region};
use std::os::fd::OwnedFd;
use std::process::{Child, Command};

/// The name of the hidden `bench` subcommand the children run.
pub const CHILD_COMMAND: &str = "baseline-child";

/// What a child does.
#[derive(Clone, Copy)]
enum Role {
    /// Holds word 0 as its death word and sleeps until killed.
    Death,
    /// Sleeps on word 0 and acknowledges each new value in word 1.
    Wake,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Death => "death",
            Role::Wake => "wake",
        }
    }
}

/// Spawns a child in `role` on `region`.
fn spawn_child(role: Role, region: &Region) -> Result<Child> {
    Command::new(std::env::current_exe()?)
        .args([
            "bench",
            CHILD_COMMAND,
            role.name(),
            &std::process::id().to_string(),
            &region.fd().to_string(),
        ])
        .spawn()
        .with_context(|| format!("spawning the {} baseline's child", role.name()))
}

/// The child (`bench baseline-child ROLE PID FD`); it never returns but on an error.
pub fn child(args: &[String]) -> Result<()> {
    let [role, pid, fd] = args else {
        bail!("usage: bench {CHILD_COMMAND} death|wake PID FD");
    };
    let path = format!("/proc/{pid}/fd/{fd}");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {path}"))?;
    let region = Region::map_whole(OwnedFd::from(file), Access::ReadWrite)?;
    tandem::sys::raise_to_fifo(sandbox_worker::sandbox::DEFAULT_REALTIME_PRIORITY);
    match role.as_str() {
        "death" => death::child(&region),
        "wake" => wake::child(&region),
        _ => bail!("unknown baseline child role {role:?}"),
    }
}
