//! Starting, signalling and reaping one worker process.
//!
//! Only the supervisor thread uses this. Workers are started with `std::process::Command` with
//! nothing but a socket as stdin, so std can use `posix_spawn`: the host's address space is not
//! forked (which costs milliseconds in a large DAW) and none of our code runs between fork and
//! exec. The memfds follow over the socket (`shm::handoff`), which then stays open as the
//! parent link. Deaths are watched through a pidfd, never `SIGCHLD` or `waitpid(-1)`, so we never
//! touch the host's other children.

use super::events::WorkerExit;
use crate::sys;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The memfds a worker is handed, in the order it expects them.
pub struct HandedFds {
    /// Input ring memfd.
    pub input: RawFd,
    /// The output ring memfd the worker (or spare) writes.
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
    /// Spawns `exe --slot S --epoch E --spin-us N` (`--spare` instead of `--slot S` for a spare,
    /// `slot` `None`), named `tandem-worker` in its `argv[0]` (see `worker_exe::exec_target` for
    /// how the embedded image is executed), and hands it `fds`.
    pub fn spawn(
        exe: &Path,
        slot: Option<usize>,
        epoch: u32,
        spin_us: u32,
        fds: &HandedFds,
    ) -> io::Result<WorkerProcess> {
        let (link, theirs) = UnixStream::pair()?;
        // Held until `spawn` returns: `execve` has then opened the executable.
        let target = crate::worker_exe::exec_target(exe).map_err(io::Error::other)?;
        let mut child = Command::new(target.path())
            .arg0(crate::worker_exe::WORKER_NAME)
            .args(match slot {
                Some(slot) => vec!["--slot".to_string(), slot.to_string()],
                None => vec!["--spare".to_string()],
            })
            .args(["--epoch", &epoch.to_string()])
            .args(["--spin-us", &spin_us.to_string()])
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let started = sys::pidfd_open(child.id()).and_then(|pidfd| {
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
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Sends SIGKILL through the pidfd (no pid-reuse race).
    pub fn kill(&self) {
        sys::pidfd_kill(self.pidfd.as_fd());
    }

    /// Waits until `ready()` says the worker reached its render loop (so it is inside its
    /// sandbox), or it exits, for at most `bound`. Returns how it ended if it exited first; a
    /// worker still starting after `bound` is left to the supervisor's checks.
    pub fn wait_started(
        &mut self,
        ready: impl Fn() -> bool,
        bound: Duration,
    ) -> Result<(), WorkerExit> {
        let give_up = Instant::now() + bound;
        while !ready() && Instant::now() < give_up {
            let [exited] = sys::poll([Some(self.pidfd.as_fd())], Duration::from_millis(1));
            if exited {
                return Err(self.wait());
            }
        }
        Ok(())
    }

    /// Kills it if it still runs, waits for the exit, and reaps it. Returns how it ended.
    pub fn reap(mut self) -> WorkerExit {
        self.kill();
        self.wait()
    }

    /// Waits for the exit and reaps it. Returns how it ended.
    fn wait(&mut self) -> WorkerExit {
        match self.child.wait() {
            Ok(status) => match (status.code(), status.signal()) {
                (Some(code), _) => WorkerExit::Exited(code),
                (_, Some(sig)) => WorkerExit::Signalled(sig),
                // `wait` returns only for a process that ended, by exit or by signal.
                _ => unreachable!("{status} is neither an exit nor a signal"),
            },
            Err(e) => WorkerExit::Unreaped(e.kind()),
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
