//! The seccomp-bpf allowlist: the system calls a sandboxed worker may make, and nothing else.
//!
//! Built with `seccompiler` (rust-vmm's filter compiler, as used by Firecracker). The default
//! action is `SECCOMP_RET_KILL_PROCESS`: a worker that makes any other call, or an allowed call
//! with forbidden arguments, dies at once with `SIGSYS` and the supervisor replaces it. We never
//! return an errno instead: a worker that probes the kernel has already gone rogue.
//!
//! The list is data ([`allowlist`]), so the reason for each entry sits next to it and SECURITY.md
//! can be checked against it.

use std::collections::BTreeMap;
use std::os::fd::RawFd;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use super::SandboxError;

/// A condition on a system call's arguments; the call is allowed only when it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgFilter {
    /// Any arguments.
    Any,
    /// The first argument (an fd) is this fd.
    Fd(RawFd),
    /// `futex` operations `FUTEX_WAIT`, `FUTEX_WAKE` and `FUTEX_WAIT_BITSET` (std's timed wait),
    /// private or shared. Not the requeue, wake-op or priority-inheritance operations, where the
    /// kernel's futex bugs have lived (CVE-2014-3153, the requeue-PI exploit).
    FutexWaitWake,
    /// `mmap` of anonymous memory that is not executable: the allocator's calls. No file-backed
    /// mapping (the regions are mapped before entry), so no new view of a shared memfd.
    AnonymousNotExec,
    /// `tgkill` aimed at this process only (`abort` raising `SIGABRT` on itself).
    OwnProcess,
}

/// One entry of the allowlist.
#[derive(Clone, Copy, Debug)]
pub struct Allowed {
    /// The system call's name.
    pub name: &'static str,
    /// Its number on this architecture.
    pub nr: i64,
    /// The condition on its arguments.
    pub filter: ArgFilter,
    /// Why the worker needs it.
    pub why: &'static str,
}

const fn allow(name: &'static str, nr: i64, filter: ArgFilter, why: &'static str) -> Allowed {
    Allowed {
        name,
        nr,
        filter,
        why,
    }
}

/// The allowlist for this architecture: what the render loop, Rust's runtime and a crash need,
/// measured with `strace -f` on the worker and on each of its injected faults (SECURITY.md).
#[rustfmt::skip]
pub fn allowlist() -> Vec<Allowed> {
    use libc::*;
    use ArgFilter::*;
    let mut list = vec![
        // Waiting and the clock.
        allow("futex", SYS_futex, FutexWaitWake,
            "the render loop sleeps on the input ring's sequence word and wakes the plugin's \
             doorbell (shared futexes); Rust's std wakes its private ones (Once, stderr lock)"),
        allow("clock_gettime", SYS_clock_gettime, Any,
            "the spin deadline and timeouts; served by the vDSO without a system call, except on \
             clock sources the vDSO cannot read (some VMs), where it falls back to the syscall"),
        allow("clock_nanosleep", SYS_clock_nanosleep, Any,
            "std::thread::sleep, used by the slow-worker fault; a sleep affects only the sleeper"),
        allow("restart_syscall", SYS_restart_syscall, Any,
            "the kernel resumes a timed futex wait interrupted by SIGSTOP/SIGCONT (a debugger, \
             job control, the hang test) through it; without it a continued worker would die"),
        // The parent and the log.
        allow(POLL_NAME, POLL_NR, Any,
            "check the parent link for hang-up (the plugin died) between waits; the fd list is \
             in memory, so it cannot be filtered, but no fd but the handed ones exists"),
        allow("write", SYS_write, Fd(2),
            "log lines and panic messages on the inherited stderr (fd 2), and no other fd"),
        // Memory.
        allow("mmap", SYS_mmap, AnonymousNotExec,
            "the allocator's large blocks: anonymous (no new view of a memfd or file) and never \
             executable; the address-space cap bounds them"),
        allow("munmap", SYS_munmap, Any,
            "the allocator frees large blocks; Rust's exit frees the signal stack"),
        allow("brk", SYS_brk, Any,
            "the allocator grows its heap (a panic message, a log line); capped by RLIMIT_AS"),
        // Crashes and exit, so each ends as itself and never as SIGSYS.
        allow("rt_sigaction", SYS_rt_sigaction, Any,
            "Rust's SIGSEGV/SIGBUS handler (stack-overflow detection) restores the default \
             action and re-faults, so a segfault is reported as SIGSEGV"),
        allow("rt_sigreturn", SYS_rt_sigreturn, Any,
            "return from that handler to the faulting instruction"),
        allow("rt_sigprocmask", SYS_rt_sigprocmask, Any,
            "abort() unblocks SIGABRT before raising it"),
        allow("getpid", SYS_getpid, Any, "abort() raises SIGABRT on its own process"),
        allow("gettid", SYS_gettid, Any,
            "abort() raises SIGABRT on its own thread; a panic message names the thread id"),
        allow("tgkill", SYS_tgkill, OwnProcess,
            "abort() delivers SIGABRT; the first argument must be our own pid, so no other \
             process can be signalled"),
        allow("sigaltstack", SYS_sigaltstack, Any,
            "Rust's exit path disables the main thread's signal stack before freeing it"),
        allow("exit_group", SYS_exit_group, Any,
            "process exit: the plugin is gone, a panic, or an injected exit"),
    ];
    list.sort_by_key(|a| a.name);
    list
}

#[cfg(target_arch = "x86_64")]
const POLL_NAME: &str = "poll";
#[cfg(target_arch = "x86_64")]
const POLL_NR: i64 = libc::SYS_poll;
// Architectures without poll(2) (aarch64, riscv64) have only ppoll, which libc's poll() uses.
#[cfg(not(target_arch = "x86_64"))]
const POLL_NAME: &str = "ppoll";
#[cfg(not(target_arch = "x86_64"))]
const POLL_NR: i64 = libc::SYS_ppoll;

fn cond(arg: u8, len: Len, op: Op, value: u64) -> Result<SeccompCondition, SandboxError> {
    SeccompCondition::new(arg, len, op, value).map_err(|e| SandboxError::Seccomp(e.to_string()))
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, SandboxError> {
    SeccompRule::new(conditions).map_err(|e| SandboxError::Seccomp(e.to_string()))
}

/// The rules for one filter; an empty list allows the call with any arguments.
fn rules_for(filter: ArgFilter) -> Result<Vec<SeccompRule>, SandboxError> {
    let eq = |arg: u8, value: u64| cond(arg, Len::Dword, Op::Eq, value);
    let rules = match filter {
        ArgFilter::Any => vec![],
        ArgFilter::Fd(fd) => vec![rule(vec![eq(0, fd as u64)?])?],
        ArgFilter::FutexWaitWake => {
            let ops = [libc::FUTEX_WAIT, libc::FUTEX_WAKE, libc::FUTEX_WAIT_BITSET];
            ops.iter()
                .flat_map(|&op| [op, op | libc::FUTEX_PRIVATE_FLAG])
                .map(|op| rule(vec![eq(1, op as u64)?]))
                .collect::<Result<_, _>>()?
        }
        ArgFilter::AnonymousNotExec => vec![rule(vec![
            cond(2, Len::Dword, Op::MaskedEq(libc::PROT_EXEC as u64), 0)?,
            cond(
                3,
                Len::Dword,
                Op::MaskedEq(libc::MAP_ANONYMOUS as u64),
                libc::MAP_ANONYMOUS as u64,
            )?,
        ])?],
        ArgFilter::OwnProcess => {
            // SAFETY: getpid has no preconditions.
            let pid = unsafe { libc::getpid() };
            vec![rule(vec![eq(0, pid as u64)?])?]
        }
    };
    Ok(rules)
}

/// Compiles the allowlist into a BPF program; returns it and the number of calls it allows.
pub(super) fn compile() -> Result<(BpfProgram, usize), SandboxError> {
    let err = |e: seccompiler::BackendError| SandboxError::Seccomp(e.to_string());
    let mut rules = BTreeMap::new();
    for entry in allowlist() {
        rules.insert(entry.nr, rules_for(entry.filter)?);
    }
    let count = rules.len();
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(err)?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )
    .map_err(err)?;
    let program = BpfProgram::try_from(filter).map_err(err)?;
    Ok((program, count))
}

/// Installs the program on every thread (TSYNC; the worker has one). From here on, the
/// allowlist is all the kernel will do for this process, and no later filter can widen it.
pub(super) fn install(program: &BpfProgram) -> Result<(), SandboxError> {
    seccompiler::apply_filter_all_threads(program).map_err(|e| SandboxError::Seccomp(e.to_string()))
}
