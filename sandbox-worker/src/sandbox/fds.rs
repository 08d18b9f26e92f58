//! The fd table: which fds the worker keeps, closing the rest, and the parent link (the plugin
//! hands a socket; a pipe works too, which the sandbox tests use).

use std::os::fd::RawFd;

use super::SandboxError;

/// Number of threads in this process, from `/proc/self/task` (1 when `/proc` is unavailable:
/// then we cannot tell, and the worker's main is single-threaded by construction).
pub(super) fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |dir| dir.count())
}

/// The handed fds that are pipes or sockets: the link to the parent, whose other end it holds.
pub(super) fn parent_links(handed: &[RawFd]) -> Vec<RawFd> {
    handed
        .iter()
        .copied()
        .filter(|&fd| {
            // SAFETY: fstat writes into a zeroed stat we own; a bad fd only yields an error.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            let rc = unsafe { libc::fstat(fd, &mut st) };
            let kind = st.st_mode & libc::S_IFMT;
            rc == 0 && (kind == libc::S_IFIFO || kind == libc::S_IFSOCK)
        })
        .collect()
}

/// Whether any of `links` reports a hang-up: the other end (the plugin) is gone.
pub(super) fn any_hung_up(links: &[RawFd]) -> bool {
    let mut polls: Vec<libc::pollfd> = links
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        })
        .collect();
    // SAFETY: `polls` is a valid array of `polls.len()` pollfd structs; timeout 0 never blocks.
    let rc = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, 0) };
    rc > 0 && polls.iter().any(|p| p.revents & libc::POLLHUP != 0)
}

/// Closes every fd except 0, 1, 2 and `handed`. Returns the kept fds (ascending) and how many
/// others were closed.
///
/// We list `/proc/self/fd` so the count is exact; without `/proc` we fall back to `close_range`
/// over the gaps between kept fds. Either way an fd the host leaked without `O_CLOEXEC` is gone.
pub(super) fn close_all_but(handed: &[RawFd]) -> Result<(Vec<RawFd>, usize), SandboxError> {
    let mut keep: Vec<RawFd> = [0, 1, 2].iter().chain(handed).copied().collect();
    keep.sort_unstable();
    keep.dedup();
    for &fd in &keep {
        // SAFETY: F_GETFD only queries the fd's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(SandboxError::MissingFd(fd));
        }
    }

    let closed = match open_fds() {
        Some(open) => {
            let mut closed = 0;
            for fd in open.into_iter().filter(|fd| !keep.contains(fd)) {
                // SAFETY: `fd` is not one we keep; nothing in this process owns it any more (the
                // directory stream that listed it is dropped, and its fd fails with EBADF here).
                if unsafe { libc::close(fd) } == 0 {
                    closed += 1;
                }
            }
            closed
        }
        None => {
            close_gaps(&keep)?;
            0
        }
    };
    Ok((keep, closed))
}

/// The fds listed in `/proc/self/fd`, or `None` without `/proc`.
fn open_fds() -> Option<Vec<RawFd>> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
    )
}

/// `close_range` over every gap between the sorted `keep` fds, up to the largest fd number.
fn close_gaps(keep: &[RawFd]) -> Result<(), SandboxError> {
    let mut first = 0u32;
    for &fd in keep.iter().chain(std::iter::once(&RawFd::MAX)) {
        let fd = fd as u32;
        if fd > first {
            let last = if fd == RawFd::MAX as u32 {
                u32::MAX
            } else {
                fd - 1
            };
            // SAFETY: closes fds in [first, last], none of which we keep or own elsewhere.
            if unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) } != 0 {
                return Err(SandboxError::sys("close_range"));
            }
        }
        first = fd.saturating_add(1);
    }
    Ok(())
}
