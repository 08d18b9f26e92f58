//! Landlock: no file-system access, no TCP, no signals or abstract sockets outside the worker.
//!
//! We handle every access right Landlock ABI 6 knows and add no rule, so the worker's domain
//! grants nothing: no path can be opened, created, executed or renamed, no TCP port bound or
//! connected, no signal sent to a process outside the domain (the plugin, the DAW, the other
//! worker), no abstract unix socket reached. The crate's best-effort mode keeps whatever the
//! running kernel supports and tells us how much that was.

use std::fmt;

use landlock::{
    Access, AccessFs, AccessNet, RestrictionStatus, Ruleset, RulesetAttr, RulesetStatus, Scope, ABI,
};

use super::SandboxError;

/// The Landlock ABI whose rights we ask for; a newer kernel enforces all of them.
const ABI_WANTED: ABI = ABI::V6;

/// What Landlock enforces in this worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LandlockState {
    /// Every right of ABI 6 is denied (file system, TCP, signal and abstract-socket scopes).
    Full,
    /// The kernel supports an older ABI: the rights it knows are denied (at least the file
    /// system); the rest is left to seccomp.
    Partial,
    /// No Landlock on this kernel (not built, or not enabled at boot); seccomp stands alone.
    Unsupported,
}

impl fmt::Display for LandlockState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "full (fs, tcp, signal and socket scopes)",
            Self::Partial => "partial (older kernel ABI)",
            Self::Unsupported => "unsupported by this kernel",
        })
    }
}

/// Restricts this thread (and so the single-threaded worker) to a Landlock domain with no rights.
pub(super) fn restrict() -> Result<LandlockState, SandboxError> {
    let err = |e: landlock::RulesetError| SandboxError::Landlock(e.to_string());
    let status: RestrictionStatus = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI_WANTED))
        .map_err(err)?
        .handle_access(AccessNet::from_all(ABI_WANTED))
        .map_err(err)?
        .scope(Scope::from_all(ABI_WANTED))
        .map_err(err)?
        .create()
        .map_err(err)?
        .restrict_self()
        .map_err(err)?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => LandlockState::Full,
        RulesetStatus::PartiallyEnforced => LandlockState::Partial,
        RulesetStatus::NotEnforced => LandlockState::Unsupported,
    })
}
