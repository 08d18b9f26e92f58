//! Resource limits: the kernel's own caps on what the worker can consume or create.

use super::SandboxError;

/// Continuous CPU time a real-time worker may use without blocking (`RLIMIT_RTTIME`, µs).
///
/// The render loop blocks on its futex whenever it has caught up, and at least every 100 ms
/// while it has not (an offline bounce keeps it busy: see `worker::MAX_AWAKE`). A worker spinning
/// under `SCHED_FIFO` would otherwise hold a core until the supervisor notices; with this limit
/// the kernel kills it (`SIGKILL`) after 2 s of unbroken CPU. Generous on purpose: a standby
/// replaying a second of chunks must not hit it.
const RT_CPU_BUDGET_US: u64 = 2_000_000;

/// Applies the worker's rlimits (soft = hard, so they cannot be raised again) and returns the
/// address-space cap in bytes.
///
/// - `RLIMIT_CORE` 0: a crashing worker leaves no core file with the host's audio in it.
/// - `RLIMIT_NPROC` 0: no new process or thread (not enforced for root or `CAP_SYS_RESOURCE`;
///   seccomp forbids `clone` anyway).
/// - `RLIMIT_NOFILE` = `fd_limit`: one past the highest kept fd, so no new fd can exist.
/// - `RLIMIT_AS`: `mapped` (the regions, binary, stack: see [`mapped_bytes`]) plus `headroom`.
/// - `RLIMIT_RTTIME`: see [`RT_CPU_BUDGET_US`].
pub(super) fn apply(fd_limit: u64, mapped: u64, headroom: u64) -> Result<u64, SandboxError> {
    let cap = mapped.saturating_add(headroom);
    set(libc::RLIMIT_CORE, 0, "RLIMIT_CORE")?;
    set(libc::RLIMIT_NPROC, 0, "RLIMIT_NPROC")?;
    set(libc::RLIMIT_NOFILE, fd_limit, "RLIMIT_NOFILE")?;
    set(libc::RLIMIT_AS, cap, "RLIMIT_AS")?;
    set(libc::RLIMIT_RTTIME, RT_CPU_BUDGET_US, "RLIMIT_RTTIME")?;
    Ok(cap)
}

fn set(
    resource: libc::__rlimit_resource_t,
    value: u64,
    what: &'static str,
) -> Result<(), SandboxError> {
    let limit = libc::rlimit {
        rlim_cur: value as libc::rlim_t,
        rlim_max: value as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the rlimit struct we pass by reference.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(SandboxError::sys(what));
    }
    Ok(())
}

/// The process's current address-space size (`VmSize` in `/proc/self/status`), in bytes. Read
/// before Landlock, which denies `/proc` like any other path.
///
/// Without `/proc` we cannot size the cap to need, so we return a generous 1 GiB base: the cap
/// then still stops a runaway allocation.
pub(super) fn mapped_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmSize:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib << 10)
        })
        .unwrap_or(1 << 30)
}
