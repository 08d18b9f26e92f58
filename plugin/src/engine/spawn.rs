//! Starting, signalling and reaping one worker process.
//!
//! Only the supervisor thread uses this. Workers are started with `std::process::Command` with
//! nothing but a socket as stdin, so std can use `posix_spawn`: the host's address space is not
//! forked (which costs milliseconds in a large DAW) and none of our code runs between fork and
//! exec. The memfds follow over the socket (`shm::handoff`), which then stays open as the
//! parent link. Deaths are watched through a pidfd, never `SIGCHLD` or `waitpid(-1)`, so we never
//! touch the host's other children.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The memfds a worker is handed, in the order it expects them.
pub struct HandedFds {
    /// Input ring memfd.
    pub input: RawFd,
    /// This slot's output ring memfd.
    pub output: RawFd,
    /// Doorbell memfd.
    pub doorbell: RawFd,
}

/// A running (or dead but unreaped) worker.
pub struct WorkerProcess {
    child: Child,
    pidfd: OwnedFd,
    /// Our end of the worker's socket; closing it (or our death) tells the worker to exit.
    _link: UnixStream,
}

impl WorkerProcess {
    /// Spawns `exe --slot S --epoch E --spin-us N` (named `tandem-worker` in its `argv[0]`, see
    /// `worker_exe::exec_target` for how the embedded image is executed) and hands it `fds`.
    pub fn spawn(
        exe: &Path,
        slot: usize,
        epoch: u32,
        spin_us: u32,
        fds: &HandedFds,
    ) -> io::Result<WorkerProcess> {
        let (link, theirs) = UnixStream::pair()?;
        // Held until `spawn` returns: `execve` has then opened the executable.
        let target = crate::worker_exe::exec_target(exe).map_err(io::Error::other)?;
        let mut child = Command::new(target.path())
            .arg0(crate::worker_exe::WORKER_NAME)
            .args(["--slot", &slot.to_string(), "--epoch", &epoch.to_string()])
            .args(["--spin-us", &spin_us.to_string()])
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let started = pidfd_open(child.id()).and_then(|pidfd| {
            shm::handoff::send_fds(link.as_raw_fd(), &[fds.input, fds.output, fds.doorbell])?;
            Ok(pidfd)
        });
        match started {
            Ok(pidfd) => Ok(WorkerProcess {
                child,
                pidfd,
                _link: link,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The pidfd: readable once the process has exited.
    pub fn pidfd(&self) -> RawFd {
        self.pidfd.as_raw_fd()
    }

    /// Sends SIGKILL through the pidfd (no pid-reuse race).
    pub fn kill(&self) {
        // SAFETY: pidfd_send_signal on a pidfd we own; null siginfo is allowed.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
        }
    }

    /// Waits until `ready()` says the worker reached its render loop (so it is inside its
    /// sandbox), or it exits, for at most `bound`. Returns how it ended if it exited first; a
    /// worker still starting after `bound` is left to the supervisor's checks.
    pub fn wait_started(
        &mut self,
        ready: impl Fn() -> bool,
        bound: Duration,
    ) -> Result<(), String> {
        let give_up = Instant::now() + bound;
        while !ready() && Instant::now() < give_up {
            let mut pfd = libc::pollfd {
                fd: self.pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll on one pollfd we own, for at most a millisecond.
            if unsafe { libc::poll(&mut pfd, 1, 1) } > 0 {
                return Err(match self.child.wait() {
                    Ok(status) => describe(status),
                    Err(e) => format!("could not be reaped: {e}"),
                });
            }
        }
        Ok(())
    }

    /// Kills it if it still runs, waits for the exit, and reaps it. Returns how it ended.
    pub fn reap(mut self) -> String {
        self.kill();
        match self.child.wait() {
            Ok(status) => describe(status),
            Err(e) => format!("could not be reaped: {e}"),
        }
    }
}

impl Drop for WorkerProcess {
    /// No zombies and no orphans, whatever path drops a worker.
    fn drop(&mut self) {
        self.kill();
        let _ = self.child.wait();
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => match exit_meaning(code) {
            Some(meaning) => format!("exited with status {code} ({meaning})"),
            None => format!("exited with status {code}"),
        },
        (_, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
        _ => format!("ended ({status})"),
    }
}

/// What the worker's own exit statuses mean (see `sandbox_worker::worker`).
fn exit_meaning(code: i32) -> Option<&'static str> {
    use sandbox_worker::worker::{EXIT_LAPPED, EXIT_RESTORE, EXIT_SANDBOX, EXIT_SETUP};
    match code {
        EXIT_SETUP => Some("bad arguments or regions"),
        EXIT_LAPPED => Some("fell a whole input ring behind"),
        EXIT_RESTORE => Some("refused its start state"),
        EXIT_SANDBOX => Some("could not enter its sandbox"),
        _ => None,
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGSYS => "SIGSYS",
        libc::SIGBUS => "SIGBUS",
        libc::SIGTERM => "SIGTERM",
        _ => "other",
    }
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd; nothing else owns it. pidfds are close-on-exec.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
