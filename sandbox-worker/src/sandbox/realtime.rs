//! Real-time scheduling and locked memory: asked for, never required.

/// Asks for `SCHED_FIFO` at `priority` (with `SCHED_RESET_ON_FORK`, so nothing the worker could
/// start inherits it). Returns the priority when granted, `None` when the system refuses (no
/// `RLIMIT_RTPRIO`, no `CAP_SYS_NICE`, a container without real-time bandwidth).
pub(super) fn request_fifo(priority: i32) -> Option<i32> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: sched_setscheduler on ourselves (pid 0) reads the sched_param we pass.
    let rc = unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    };
    (rc == 0).then_some(priority)
}

/// Locks each region in memory so a page fault never stalls a render. Returns the bytes locked;
/// a region the system refuses (`RLIMIT_MEMLOCK`) is skipped silently.
pub(super) fn lock(regions: &[(*const u8, usize)]) -> usize {
    regions
        .iter()
        .filter(|&&(ptr, len)| {
            // SAFETY: mlock only changes the residency of pages in [ptr, ptr + len); a range that
            // is not mapped makes it fail with ENOMEM, it never touches the memory.
            len > 0 && unsafe { libc::mlock(ptr.cast(), len) } == 0
        })
        .map(|&(_, len)| len)
        .sum()
}
