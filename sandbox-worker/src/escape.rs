//! Escape attempts: a worker that really tries each forbidden thing, for fault-injection tests.
//!
//! The plugin's fault-injection command carries an [`Escape`] code; the worker calls [`attempt`]
//! from its render loop, inside the sandbox. Each attempt makes the real system call a rogue
//! worker would make. Then one of two things happens:
//!
//! - the kernel kills the worker (`SIGSYS` from seccomp, `SIGSEGV` on a write to read-only
//!   memory): [`attempt`] never returns, and the supervisor replaces the worker;
//! - the kernel refuses the call (`EPERM`, `EACCES`, `ENOMEM`...): [`attempt`] returns a line that
//!   describes the refusal, the worker logs it and goes on rendering.
//!
//! A line that starts with `ESCAPED` means the sandbox let the call through: always a bug.
//!
//! Nothing here is used outside tests, but it ships in the worker so the tests exercise the real
//! binary with its real sandbox.

use std::fmt;
use std::io;
use std::os::fd::RawFd;

/// A forbidden thing to try. Codes start at 100 so they cannot be mistaken for the other fault
/// kinds of the fault-injection command.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Escape {
    /// `openat("/etc/passwd")`.
    OpenFile = 100,
    /// `socket(AF_INET, SOCK_STREAM)`.
    CreateSocket = 101,
    /// `fork()`; a child that did start exits at once.
    Fork = 102,
    /// `execve("/bin/true")`.
    Exec = 103,
    /// `ptrace(PTRACE_SEIZE)` on the parent (the plugin's process).
    Ptrace = 104,
    /// `kill(parent, SIGKILL)`.
    KillParent = 105,
    /// `mprotect` the input region read-write, then write to it (whatever `mprotect` said, as a
    /// rogue worker would).
    MprotectInputWritable = 106,
    /// `ftruncate` the output memfd to 1 GiB.
    GrowMemfd = 107,
    /// `ftruncate` the input memfd to 0 (the plugin would take `SIGBUS` on its next access).
    ShrinkMemfd = 108,
    /// Allocate 4 GiB, past the address-space cap.
    AllocPastCap = 109,
    /// `mmap` the input memfd again, shared and writable.
    MapInputWritable = 110,
}

impl Escape {
    /// Every kind, in code order.
    pub const ALL: [Escape; 11] = [
        Escape::OpenFile,
        Escape::CreateSocket,
        Escape::Fork,
        Escape::Exec,
        Escape::Ptrace,
        Escape::KillParent,
        Escape::MprotectInputWritable,
        Escape::GrowMemfd,
        Escape::ShrinkMemfd,
        Escape::AllocPastCap,
        Escape::MapInputWritable,
    ];

    /// The kind with this code, if any.
    pub fn from_u32(code: u32) -> Option<Escape> {
        Self::ALL.into_iter().find(|&kind| kind as u32 == code)
    }
}

impl fmt::Display for Escape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?} ({})", *self as u32)
    }
}

/// What an attempt needs to know about the worker it runs in.
#[derive(Clone, Copy, Debug)]
pub struct EscapeContext {
    /// Start of the input region's mapping (read-only, page-aligned).
    pub input_ptr: *const u8,
    /// Its length in bytes.
    pub input_len: usize,
    /// The input region's memfd (fd 3).
    pub input_fd: RawFd,
    /// This worker's output region's memfd (fd 4).
    pub output_fd: RawFd,
    /// The plugin's process id, as the worker saw it before the sandbox
    /// ([`crate::sandbox::parent_pid`]; `getppid` is not on the allowlist).
    pub parent_pid: i32,
}

/// Size of the allocation [`Escape::AllocPastCap`] asks for: far past the cap, well under what
/// the kernel's overcommit heuristic would refuse on its own on a machine without the cap.
const PAST_CAP: usize = 4 << 30;

/// Tries `kind` for real. Returns a description of the kernel's refusal, or of the escape, if
/// the worker is still alive afterwards.
pub fn attempt(kind: Escape, ctx: &EscapeContext) -> String {
    match try_escape(kind, ctx) {
        Ok(what) => format!("ESCAPED: {kind}: {what} succeeded"),
        Err((what, err)) => format!(
            "{kind}: {what} refused: errno {} ({err})",
            err.raw_os_error().unwrap_or(0)
        ),
    }
}

/// What was tried, and the kernel's error when it refused.
type Tried = Result<&'static str, (&'static str, io::Error)>;

/// `Ok(what)` when the call went through, `Err((what, errno))` when the kernel refused it.
fn check(what: &'static str, rc: i64) -> Tried {
    if rc < 0 {
        Err((what, io::Error::last_os_error()))
    } else {
        Ok(what)
    }
}

fn try_escape(kind: Escape, ctx: &EscapeContext) -> Tried {
    match kind {
        Escape::OpenFile => {
            let what = "openat(\"/etc/passwd\")";
            // SAFETY: a NUL-terminated path literal; the fd, if any, is closed below.
            let fd = unsafe {
                libc::openat(
                    libc::AT_FDCWD,
                    c"/etc/passwd".as_ptr(),
                    libc::O_RDONLY | libc::O_CLOEXEC,
                )
            };
            check(what, fd.into())?;
            // SAFETY: `fd` was just opened by us and is owned by nothing else.
            unsafe { libc::close(fd) };
            Ok(what)
        }
        Escape::CreateSocket => {
            let what = "socket(AF_INET, SOCK_STREAM)";
            // SAFETY: socket takes integer arguments only.
            let fd =
                unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
            check(what, fd.into())?;
            // SAFETY: `fd` was just created by us and is owned by nothing else.
            unsafe { libc::close(fd) };
            Ok(what)
        }
        Escape::Fork => {
            let what = "fork()";
            // SAFETY: the child only calls _exit, which is async-signal-safe.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: _exit ends the child without running any of the parent's state.
                unsafe { libc::_exit(0) };
            }
            check(what, pid.into())?;
            // SAFETY: reaps the child we just made; a null status pointer is allowed.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            Ok(what)
        }
        Escape::Exec => {
            let what = "execve(\"/bin/true\")";
            let argv = [c"true".as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null()];
            // SAFETY: NUL-terminated path and NULL-terminated argv/envp arrays that outlive the
            // call. If it succeeds this process becomes /bin/true, which exits 0.
            let rc = unsafe { libc::execve(c"/bin/true".as_ptr(), argv.as_ptr(), envp.as_ptr()) };
            check(what, rc.into())
        }
        Escape::Ptrace => {
            let what = "ptrace(PTRACE_SEIZE, parent)";
            // SAFETY: ptrace with integer arguments; SEIZE does not stop the tracee.
            let rc = unsafe {
                libc::ptrace(
                    libc::PTRACE_SEIZE,
                    ctx.parent_pid,
                    std::ptr::null_mut::<libc::c_void>(),
                    0,
                )
            };
            check(what, rc)
        }
        Escape::KillParent => {
            let what = "kill(parent, SIGKILL)";
            // SAFETY: kill takes integer arguments only.
            let rc = unsafe { libc::kill(ctx.parent_pid, libc::SIGKILL) };
            check(what, rc.into())
        }
        Escape::MprotectInputWritable => {
            // SAFETY: changes the protection of our own mapping of the input region; it does
            // not touch memory.
            let rc = unsafe {
                libc::mprotect(
                    ctx.input_ptr as *mut libc::c_void,
                    ctx.input_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            let refused = (rc != 0).then(io::Error::last_os_error);
            let target = ctx.input_ptr as *mut u8;
            // SAFETY: deliberately unsound unless mprotect succeeded: this is the write a rogue
            // worker would make. On the read-only mapping the kernel kills us with SIGSEGV
            // before the store happens; `target` is inside our mapping of the region.
            unsafe { target.write_volatile(target.read_volatile() ^ 0xff) };
            match refused {
                Some(err) => Err(("mprotect(input, PROT_WRITE) then a write", err)),
                None => Ok("mprotect(input, PROT_WRITE) and a write to the input region"),
            }
        }
        Escape::GrowMemfd => {
            // SAFETY: ftruncate takes integer arguments only.
            let rc = unsafe { libc::ftruncate(ctx.output_fd, 1 << 30) };
            check("ftruncate(output memfd, 1 GiB)", rc.into())
        }
        Escape::ShrinkMemfd => {
            // SAFETY: ftruncate takes integer arguments only.
            let rc = unsafe { libc::ftruncate(ctx.input_fd, 0) };
            check("ftruncate(input memfd, 0)", rc.into())
        }
        Escape::AllocPastCap => {
            let what = "allocating 4 GiB";
            let mut block: Vec<u8> = Vec::new();
            match block.try_reserve_exact(PAST_CAP) {
                Ok(()) => Ok(what),
                // The allocator's mmap (and its brk fallback) failed; malloc left their errno.
                Err(_) => Err((what, io::Error::last_os_error())),
            }
        }
        Escape::MapInputWritable => {
            let what = "mmap(input memfd, PROT_WRITE, MAP_SHARED)";
            // SAFETY: asks for a new mapping at an address of the kernel's choosing; it does not
            // touch existing memory. Unmapped below if it was granted.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    ctx.input_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    ctx.input_fd,
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err((what, io::Error::last_os_error()));
            }
            // SAFETY: `ptr` is the mapping made just above, of `input_len` bytes.
            unsafe { libc::munmap(ptr, ctx.input_len) };
            Ok(what)
        }
    }
}
