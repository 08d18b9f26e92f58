//! Starting, signalling and reaping one worker process.
//!
//! Only the supervisor thread uses this. Workers are started with `std::process::Command`; the
//! only code that runs between fork and exec is `dup2`/`fcntl`, which are async-signal-safe, so
//! this is sound inside a multithreaded host. Deaths are watched through a pidfd, never
//! `SIGCHLD` or `waitpid(-1)`, so we never touch the host's other children.

use sandbox_worker::worker::{FD_DOORBELL, FD_INPUT, FD_OUTPUT, FD_PARENT};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The fds a worker is handed, in the order of its fd numbers 3..=6.
pub struct HandedFds {
    /// Input ring memfd.
    pub input: RawFd,
    /// This slot's output ring memfd.
    pub output: RawFd,
    /// Doorbell memfd.
    pub doorbell: RawFd,
    /// Read end of the parent pipe.
    pub parent: RawFd,
}

/// A running (or dead but unreaped) worker.
pub struct WorkerProcess {
    child: Child,
    pidfd: OwnedFd,
}

impl WorkerProcess {
    /// Spawns `exe --slot S --epoch E --spin-us N` with `fds` placed at 3..=6.
    pub fn spawn(
        exe: &Path,
        slot: usize,
        epoch: u32,
        spin_us: u32,
        fds: &HandedFds,
    ) -> io::Result<WorkerProcess> {
        let sources = [fds.input, fds.output, fds.doorbell, fds.parent];
        let targets = [FD_INPUT, FD_OUTPUT, FD_DOORBELL, FD_PARENT];
        let mut cmd = Command::new(exe);
        cmd.args(["--slot", &slot.to_string(), "--epoch", &epoch.to_string()])
            .args(["--spin-us", &spin_us.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // SAFETY: the closure runs in the forked child before exec and only calls fcntl and
        // dup2, which are async-signal-safe and allocate nothing. It first moves every source to
        // a close-on-exec fd above the targets, so a source that already sits on a target
        // number is not clobbered; dup2 then clears close-on-exec on exactly the four targets.
        unsafe {
            cmd.pre_exec(move || {
                let mut moved = [0; 4];
                for (m, src) in moved.iter_mut().zip(sources) {
                    *m = libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 64);
                    if *m < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                for (m, dst) in moved.into_iter().zip(targets) {
                    if libc::dup2(m, dst) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pidfd = match pidfd_open(child.id()) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(WorkerProcess { child, pidfd })
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
        (Some(code), _) => format!("exited with status {code}"),
        (_, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
        _ => format!("ended ({status})"),
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

/// A close-on-exec pipe: the worker gets the read end, the plugin keeps the write end, and the
/// worker sees end-of-file when the plugin process dies.
pub fn parent_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds are fresh from pipe2 and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
