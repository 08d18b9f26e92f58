//! The plugin's system calls outside `shm`, behind safe functions: worker pidfds (open,
//! poll, signal) and the supervisor's scheduling class.
//!
//! `nix` makes the calls it covers (ppoll; `worker_exe` uses its memfd calls); the
//! plugin's only raw system calls, for what `nix` lacks (pidfds, `sched_setscheduler`), are
//! the `unsafe` blocks here.
//! None of this runs on the audio thread: the engine calls it from the main thread (creation)
//! and the supervisor thread. The benchmarks use the pidfd calls to kill workers.

use nix::poll::{PollFd, PollFlags};
use nix::sys::time::TimeSpec;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Sleeps until one of `fds` is readable or reports an error or hang-up, at most `timeout`.
/// Returns which fired; `None` entries are not watched and never fire. An interrupted poll
/// returns with nothing fired: callers poll in a loop.
pub(crate) fn poll<const N: usize>(
    fds: [Option<BorrowedFd<'_>>; N],
    timeout: Duration,
) -> [bool; N] {
    let watched: Vec<usize> = (0..N).filter(|&i| fds[i].is_some()).collect();
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .flatten()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    let mut fired = [false; N];
    if nix::poll::ppoll(&mut polled, Some(TimeSpec::from(timeout)), None).is_ok() {
        for (&i, p) in watched.iter().zip(&polled) {
            fired[i] = p.revents().is_some_and(|r| !r.is_empty());
        }
    }
    fired
}

/// A pidfd for the process `pid`: readable once it has exited, and a race-free handle to
/// signal it (a pid may be reused once the process is reaped; a pidfd never is).
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; it touches no memory
    // of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd; nothing else owns it. pidfds are close-on-exec.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `SIGKILL` to the process behind `pidfd`. Best effort: a process that has already
/// exited needs no signal.
pub fn pidfd_kill(pidfd: BorrowedFd<'_>) {
    // SAFETY: pidfd_send_signal on a pidfd the caller keeps open for the call; a null siginfo
    // is allowed and nothing else is dereferenced.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

/// Moves the calling thread to `SCHED_FIFO` at `priority`, or keeps a higher real-time priority
/// inherited from the host. Silently stays as it is when the system refuses. Always with
/// `SCHED_RESET_ON_FORK`: the processes this thread spawns start in the normal class, never at
/// its priority or the host's.
pub fn raise_to_fifo(priority: i32) {
    let mut current = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_getscheduler/sched_getparam on the calling thread (0), writing only into
    // the local `current`.
    let policy = unsafe {
        libc::sched_getparam(0, &mut current);
        libc::sched_getscheduler(0) & !libc::SCHED_RESET_ON_FORK
    };
    let realtime = policy == libc::SCHED_FIFO || policy == libc::SCHED_RR;
    let wanted = libc::sched_param {
        sched_priority: current.sched_priority.max(priority),
    };
    let policy = if realtime { policy } else { libc::SCHED_FIFO };
    // SAFETY: sched_setscheduler on the calling thread with a param we own; it only reads it.
    unsafe { libc::sched_setscheduler(0, policy | libc::SCHED_RESET_ON_FORK, &wanted) };
}
