//! The worker's sandbox: everything a worker gives up before it reads its first chunk.
//!
//! A worker runs the synth on input it did not choose, with a view into memory the DAW reads.
//! We treat it as untrusted code: if the DSP had a memory-safety bug that a crafted chunk could
//! steer, the attacker would hold this process. [`enter`] makes sure that process can then do
//! nothing but what the render loop already does: wait on a futex, read the clock, poll its parent
//! link, write a log line, use its own memory, and exit.
//!
//! The layers, in the order we apply them (each one needs the ones before it, and the last one
//! forbids the system calls that set up the others):
//!
//! 1. `PR_SET_NO_NEW_PRIVS`: no set-uid or file-capability gain across `execve`; required by
//!    Landlock and by seccomp for an unprivileged process.
//! 2. `PR_SET_PDEATHSIG(SIGKILL)`, then a check that the parent did not die before it was armed
//!    (the parent link among the handed fds must not have hung up, and `getppid()` must not have
//!    changed). The render loop's poll on the parent link is the second, thread-independent guard:
//!    the death signal follows the *thread* that spawned us, not the process.
//! 3. Every fd but the handed ones (and 0, 1, 2) is closed, so an fd the host leaked without
//!    `O_CLOEXEC` (a project file, a socket to the DAW's server) is gone before any input is read.
//! 4. Landlock: every file-system right, TCP bind/connect, abstract-socket and signal scopes are
//!    handled with no rule granting anything. On a kernel without Landlock this degrades to a
//!    report entry, since seccomp below stops the same calls.
//! 5. rlimits: no core file, no new process, no new fd, an address-space cap sized to what the
//!    worker already mapped plus headroom for the allocator, and a real-time CPU budget.
//! 6. Real-time scheduling and `mlock` of the given regions, when the system grants them; silently
//!    without (the report says which).
//! 7. seccomp-bpf: the allowlist in [`allowlist`]; anything else kills the whole process with
//!    `SIGSYS`, which the supervisor sees like any other crash.
//!
//! [`enter`] must run while the process is single-threaded: no-new-privs, the death signal and the
//! Landlock domain are per-thread attributes, and a thread that existed before would keep none of
//! them. It refuses to run otherwise.
//!
//! How the worker calls it, after mapping its rings and before its first chunk (one `write` per
//! log line, so two workers sharing the DAW's stderr do not interleave mid-line):
//!
//! ```ignore
//! use std::io::Write;
//! let handed = [FD_INPUT, FD_OUTPUT, FD_DOORBELL, FD_PARENT];
//! match sandbox::enter(&handed, &[input.span()]) {
//!     Ok(report) => {
//!         let _ = std::io::stderr().write_all(format!("tandem-worker: {report}\n").as_bytes());
//!     }
//!     Err(e) => {
//!         eprintln!("tandem-worker: {e}");
//!         return EXIT_SANDBOX; // never render unsandboxed
//!     }
//! }
//! ```

mod fds;
mod limits;
mod lsm;
mod realtime;
mod seccomp;

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

pub use lsm::LandlockState;
pub use seccomp::{allowlist, Allowed, ArgFilter};

/// Address-space headroom above what the worker has mapped when it enters the sandbox.
///
/// The render loop does not allocate; this is for the allocator's bookkeeping, the stack's growth
/// and a panic's message. Measured: a live worker's `VmPeak` equals its `VmSize` at entry (about
/// 7 MiB, regions included), so it never grows at all; 16 MiB leaves ample room and still stops
/// a runaway allocation early. See SECURITY.md.
pub const DEFAULT_MEMORY_HEADROOM: u64 = 16 << 20;

/// `SCHED_FIFO` priority asked for. Low on purpose: the worker must never preempt the host's own
/// audio thread (usually `SCHED_FIFO` at a higher priority), which waits for it anyway.
pub const DEFAULT_REALTIME_PRIORITY: i32 = 5;

/// How [`enter_with`] builds the sandbox. [`enter`] uses [`Options::default`], which is the
/// worker's real configuration.
#[derive(Clone, Debug)]
pub struct Options {
    /// Install the seccomp filter (last layer). Only tests turn this off, to show what the layers
    /// beneath it stop on their own.
    pub seccomp: bool,
    /// Bytes of address space allowed above what is mapped at entry (`RLIMIT_AS`).
    pub memory_headroom: u64,
    /// `SCHED_FIFO` priority to ask for, or `None` to stay in the normal scheduling class.
    pub realtime_priority: Option<i32>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seccomp: true,
            memory_headroom: DEFAULT_MEMORY_HEADROOM,
            realtime_priority: Some(DEFAULT_REALTIME_PRIORITY),
        }
    }
}

/// Which layers are active, for the worker's start-up log line (its `Display` is that line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxReport {
    /// The fds left open: 0, 1, 2 and the handed ones, ascending.
    pub fds_kept: Vec<RawFd>,
    /// How many other fds were open and got closed.
    pub fds_closed: usize,
    /// The Landlock domain's state.
    pub landlock: LandlockState,
    /// `RLIMIT_AS` in bytes.
    pub memory_cap: u64,
    /// `RLIMIT_NOFILE`: no fd at or above this number can be created.
    pub fd_limit: u64,
    /// The `SCHED_FIFO` priority granted, if any.
    pub realtime_priority: Option<i32>,
    /// Bytes of the given regions locked in memory (0 when `mlock` was refused).
    pub locked_bytes: usize,
    /// Number of system calls on the seccomp allowlist, or `None` when seccomp was not installed.
    pub seccomp_syscalls: Option<usize>,
    /// How long [`enter`] took: the sandbox's share of the worker's start-up time.
    pub elapsed: Duration,
}

impl fmt::Display for SandboxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sandbox: no_new_privs, pdeathsig, fds {:?} ({} closed), rlimits core=0 nproc=0 \
             nofile={} as={} MiB, landlock {}, ",
            self.fds_kept,
            self.fds_closed,
            self.fd_limit,
            self.memory_cap >> 20,
            self.landlock,
        )?;
        match self.realtime_priority {
            Some(p) => write!(f, "SCHED_FIFO {p}, ")?,
            None => write!(f, "no realtime, ")?,
        }
        if self.locked_bytes > 0 {
            write!(f, "mlock {} KiB, ", self.locked_bytes >> 10)?;
        } else {
            write!(f, "no mlock, ")?;
        }
        match self.seccomp_syscalls {
            Some(n) => write!(f, "seccomp {n} syscalls")?,
            None => write!(f, "NO SECCOMP")?,
        }
        write!(f, "; entered in {} µs", self.elapsed.as_micros())
    }
}

/// Why the sandbox could not be entered. The worker must exit on any of these: it never renders
/// unsandboxed.
#[derive(Debug)]
pub enum SandboxError {
    /// The process has more than one thread; per-thread layers would not cover them all.
    MultiThreaded(usize),
    /// The parent died before the death signal was armed.
    ParentGone,
    /// A handed fd is not open (a spawn bug).
    MissingFd(RawFd),
    /// A system call that builds a layer failed.
    Sys {
        /// What we were doing.
        what: &'static str,
        /// The kernel's answer.
        err: io::Error,
    },
    /// Landlock refused a ruleset the kernel claims to support.
    Landlock(String),
    /// The seccomp filter could not be built or installed.
    Seccomp(String),
}

impl fmt::Display for SandboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MultiThreaded(n) => {
                write!(f, "sandbox must be entered single-threaded ({n} threads)")
            }
            Self::ParentGone => write!(f, "parent process died before the sandbox was entered"),
            Self::MissingFd(fd) => write!(f, "handed fd {fd} is not open"),
            Self::Sys { what, err } => write!(f, "{what}: {err}"),
            Self::Landlock(e) => write!(f, "landlock: {e}"),
            Self::Seccomp(e) => write!(f, "seccomp: {e}"),
        }
    }
}

impl std::error::Error for SandboxError {}

impl SandboxError {
    fn sys(what: &'static str) -> Self {
        Self::Sys {
            what,
            err: io::Error::last_os_error(),
        }
    }
}

/// The parent's pid as [`enter`] saw it, before the sandbox took `getppid` away (0 before
/// [`enter`] ran). The escape attempts aim at it.
pub fn parent_pid() -> i32 {
    PARENT_PID.load(Ordering::Relaxed)
}

static PARENT_PID: AtomicI32 = AtomicI32::new(0);

/// Enters the sandbox with the worker's real configuration ([`Options::default`]).
///
/// `handed_fds` are the fds the worker was given and keeps (0, 1 and 2 are always kept);
/// `lock_regions` are the shared-memory mappings to `mlock` when allowed. Call it after mapping the
/// regions and before reading any chunk, from a single-threaded process. On error the worker must
/// exit without rendering.
pub fn enter(
    handed_fds: &[RawFd],
    lock_regions: &[(*const u8, usize)],
) -> Result<SandboxReport, SandboxError> {
    enter_with(handed_fds, lock_regions, &Options::default())
}

/// [`enter`] with explicit [`Options`].
pub fn enter_with(
    handed_fds: &[RawFd],
    lock_regions: &[(*const u8, usize)],
    options: &Options,
) -> Result<SandboxReport, SandboxError> {
    let started = Instant::now();
    let threads = fds::thread_count();
    if threads > 1 {
        return Err(SandboxError::MultiThreaded(threads));
    }
    // Measured now: Landlock will hide /proc.
    let mapped = limits::mapped_bytes();

    // 1 and 2: no new privileges, and die with the parent.
    // SAFETY: getppid has no preconditions.
    let parent_before = unsafe { libc::getppid() };
    // SAFETY: prctl with integer arguments only; no memory is passed.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(SandboxError::sys("PR_SET_NO_NEW_PRIVS"));
    }
    // SAFETY: as above.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } != 0 {
        return Err(SandboxError::sys("PR_SET_PDEATHSIG"));
    }
    // SAFETY: getppid has no preconditions.
    let parent_after = unsafe { libc::getppid() };
    let links = fds::parent_links(handed_fds);
    if parent_after != parent_before || fds::any_hung_up(&links) {
        return Err(SandboxError::ParentGone);
    }
    PARENT_PID.store(parent_after, Ordering::Relaxed);

    // A panic's backtrace needs the file system (getcwd, the binary's symbols), which the
    // worker is about to lose: with RUST_BACKTRACE set, a panic would end as SIGSYS instead of a
    // panic. std reads the variable at the first panic, so removing it now turns backtraces off.
    // Sound here: the process is single-threaded (checked above), so nothing reads the
    // environment concurrently.
    std::env::remove_var("RUST_BACKTRACE");
    std::env::remove_var("RUST_LIB_BACKTRACE");

    // 3: close everything we were not handed.
    let (fds_kept, fds_closed) = fds::close_all_but(handed_fds)?;

    // The filter is compiled before the memory cap and the fd limit, and installed last.
    let filter = if options.seccomp {
        Some(seccomp::compile()?)
    } else {
        None
    };

    // 4: Landlock needs an fd for its ruleset, so it comes before RLIMIT_NOFILE.
    let landlock = lsm::restrict()?;

    // 5: rlimits.
    let fd_limit = fds_kept.last().map_or(3, |&fd| fd as u64 + 1);
    let memory_cap = limits::apply(fd_limit, mapped, options.memory_headroom)?;

    // 6: real-time scheduling and mlock, when granted.
    let realtime_priority = options.realtime_priority.and_then(realtime::request_fifo);
    let locked_bytes = realtime::lock(lock_regions);

    // 7: seccomp, last: it forbids everything used above.
    let seccomp_syscalls = match filter {
        Some((program, count)) => {
            seccomp::install(&program)?;
            Some(count)
        }
        None => None,
    };

    Ok(SandboxReport {
        fds_kept,
        fds_closed,
        landlock,
        memory_cap,
        fd_limit,
        realtime_priority,
        locked_bytes,
        seccomp_syscalls,
        elapsed: started.elapsed(),
    })
}
