//! The worker sandbox, tested with real processes.
//!
//! This test binary re-spawns itself as the sandboxed child (the pattern of audioipc2's
//! end-to-end test): the child is given the worker's fd contract (3 = sealed read-only input
//! memfd, 4 = output memfd, 5 = doorbell memfd, 6 = parent pipe) plus two fds it must not keep,
//! maps the regions, enters the sandbox with `sandbox_worker::sandbox`, and then serves commands
//! like the render loop serves chunks: it sleeps on a futex in shared memory (the doorbell region
//! here) with a timeout, checks the parent pipe with `poll`, and runs the escape attempt whose
//! code the parent posted. The parent looks at it from outside (`/proc`, `prlimit`, `waitpid`)
//! and asserts what the kernel did.
//!
//! Nothing here asserts a duration: waits are bounded generously only so a broken sandbox fails
//! instead of hanging, and the one figure measured (death after the parent's) is printed.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use sandbox_worker::escape::{attempt, Escape, EscapeContext};
use sandbox_worker::sandbox::{self, Options, SandboxError};
use shm::FaultKind;

const ROLE: &str = "TANDEM_SANDBOX_TEST_ROLE";
const LAYERS: &str = "TANDEM_SANDBOX_TEST_LAYERS";
/// Prefix of the child's answers on stderr; other lines (a panic's message) are only logged.
const REPLY: &str = "> ";
/// Command code: answer "pong" (the child is alive and serving).
const PING: u32 = 0;
/// Bound on any single wait, so a broken sandbox fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(10);
const INPUT_LEN: usize = 64 << 10;
const OUTPUT_LEN: usize = 64 << 10;
const DOORBELL_LEN: usize = 4 << 10;
/// The fds of the worker contract, and where the fixture puts the fds the child must close.
const HANDED: [RawFd; 4] = [3, 4, 5, 6];
const LEAKED: [RawFd; 2] = [7, 9];

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("child") => child_main(),
        Ok("middle") => middle_main(),
        _ => parent_main(),
    }
}

// ---------------------------------------------------------------------------------------------
// The sandboxed child.

fn child_main() -> ! {
    let no_seccomp = std::env::var(LAYERS).as_deref() == Ok("no-seccomp");
    // SAFETY: getppid has no preconditions.
    let parent_pid = unsafe { libc::getppid() };
    let input = map(3, libc::PROT_READ);
    let output = map(4, libc::PROT_READ | libc::PROT_WRITE);
    let doorbell = map(5, libc::PROT_READ | libc::PROT_WRITE);
    let options = Options {
        seccomp: !no_seccomp,
        ..Options::default()
    };
    let report = match sandbox::enter_with(&HANDED, &[input, output, doorbell], &options) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("sandbox error: {e}");
            std::process::exit(13);
        }
    };
    eprintln!("ready {report}");
    let ctx = EscapeContext {
        input_ptr: input.0,
        input_len: input.1,
        input_fd: 3,
        output_fd: 4,
        parent_pid,
    };
    let (seq, code) = mailbox(doorbell.0);
    let mut seen = 0;
    loop {
        let now = seq.load(Ordering::Acquire);
        if now == seen {
            shm::futex::wait(seq, seen, Duration::from_millis(50));
            if parent_gone() {
                std::process::exit(0);
            }
            continue;
        }
        seen = now;
        match code.load(Ordering::Relaxed) {
            PING => eprintln!("{REPLY}pong"),
            c => match (Escape::from_u32(c), FaultKind::from_u32(c)) {
                (Some(kind), _) => eprintln!("{REPLY}{}", attempt(kind, &ctx)),
                // The render loop's own fault injection, with a 1 ms argument for Sleep.
                (None, Some(fault)) => {
                    eprintln!("{REPLY}{:?}", sandbox_worker::fault::commit(fault, 1))
                }
                (None, None) => eprintln!("{REPLY}unknown code {c}"),
            },
        }
    }
}

/// Maps the whole memfd `fd` shared with `prot`.
fn map(fd: RawFd, prot: i32) -> (*const u8, usize) {
    // SAFETY: fstat fills a zeroed stat we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0, "fstat fd {fd}");
    let len = st.st_size as usize;
    // SAFETY: a new shared mapping of the memfd at an address the kernel picks.
    let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, 0) };
    assert_ne!(ptr, libc::MAP_FAILED, "mmap fd {fd}");
    (ptr as *const u8, len)
}

/// The command mailbox at the start of the doorbell region: a sequence word the parent bumps
/// (and the child sleeps on) and the command code.
fn mailbox(doorbell: *const u8) -> (&'static AtomicU32, &'static AtomicU32) {
    // SAFETY: the doorbell mapping is page-aligned, at least 8 bytes long, shared, and never
    // unmapped while the process lives; both processes access it only through atomics.
    unsafe {
        (
            AtomicU32::from_ptr(doorbell as *mut u32),
            AtomicU32::from_ptr((doorbell as *mut u32).add(1)),
        )
    }
}

/// Whether the parent pipe (fd 6) reports the plugin gone: hang-up, or anything to read.
fn parent_gone() -> bool {
    let mut pfd = libc::pollfd {
        fd: 6,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    unsafe { libc::poll(&mut pfd, 1, 0) != 0 }
}

// ---------------------------------------------------------------------------------------------
// The intermediate process of the parent-death test: it spawns a sandboxed child sharing its
// fds, prints the child's pid, and waits to be killed.

fn middle_main() -> ! {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "child")
        .env_remove(LAYERS)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the grandchild");
    println!("{}", child.id());
    std::io::stdout().flush().unwrap();
    // The grandchild serves until it dies, and it dies only after we do: this blocks until the
    // test kills us.
    let _ = child.wait();
    std::process::exit(1);
}

// ---------------------------------------------------------------------------------------------
// The parent: the fixture and the tests.

/// The regions and pipes of one child, held by the parent at high fd numbers (close-on-exec),
/// placed at the contract's numbers in the child by `dup2`.
struct Fixture {
    /// The parent's mapping of the doorbell region, holding the command mailbox.
    doorbell_map: *const u8,
    input: OwnedFd,
    output: OwnedFd,
    doorbell: OwnedFd,
    pipe_read: OwnedFd,
    /// The parent pipe's write end: the child sees the plugin gone when it is closed.
    pipe_write: Option<OwnedFd>,
    leaked_file: OwnedFd,
    leaked_socket: OwnedFd,
}

/// A pattern the input region holds, to check the child changed nothing.
fn input_pattern() -> Vec<u8> {
    (0..INPUT_LEN).map(|i| (i * 7 + 3) as u8).collect()
}

fn check(rc: i64, what: &str) -> i64 {
    assert!(rc >= 0, "{what}: {}", std::io::Error::last_os_error());
    rc
}

/// Moves `fd` to a number >= 100 with close-on-exec, so `dup2` into 3..9 never collides.
fn high(fd: RawFd) -> OwnedFd {
    // SAFETY: duplicates an fd we own; the original is closed right after.
    let new = check(
        unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) }.into(),
        "dup",
    ) as RawFd;
    // SAFETY: `fd` is ours and no longer used.
    unsafe { libc::close(fd) };
    // SAFETY: `new` was just created and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(new) }
}

fn memfd(name: &std::ffi::CStr, len: usize, seals: i32, content: Option<&[u8]>) -> OwnedFd {
    // SAFETY: a NUL-terminated name; returns a new fd.
    let fd = check(
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) }
            .into(),
        "memfd_create",
    ) as RawFd;
    // SAFETY: integer arguments on our own fd.
    check(
        unsafe { libc::ftruncate(fd, len as i64) }.into(),
        "ftruncate",
    );
    if let Some(bytes) = content {
        // SAFETY: writes `bytes` from a live slice.
        let n = unsafe { libc::pwrite(fd, bytes.as_ptr().cast(), bytes.len(), 0) };
        assert_eq!(n as usize, bytes.len());
    }
    // SAFETY: integer arguments on our own fd.
    check(
        unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) }.into(),
        "F_ADD_SEALS",
    );
    high(fd)
}

impl Fixture {
    fn new() -> Fixture {
        let size_seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
        let input = memfd(
            c"tandem-test-input",
            INPUT_LEN,
            size_seals | libc::F_SEAL_FUTURE_WRITE,
            Some(&input_pattern()),
        );
        let output = memfd(c"tandem-test-output", OUTPUT_LEN, size_seals, None);
        let doorbell = memfd(c"tandem-test-doorbell", DOORBELL_LEN, size_seals, None);
        let mut pipe = [0; 2];
        // SAFETY: pipe2 writes two fds into `pipe`.
        check(
            unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) }.into(),
            "pipe2",
        );
        // SAFETY: opens a path literal read-only.
        let file =
            unsafe { libc::open(c"/proc/self/exe".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        check(file.into(), "open");
        let mut pair = [0; 2];
        // SAFETY: socketpair writes two fds into `pair`.
        check(
            unsafe {
                libc::socketpair(
                    libc::AF_UNIX,
                    libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                    0,
                    pair.as_mut_ptr(),
                )
            }
            .into(),
            "socketpair",
        );
        // SAFETY: the other end is ours and unused.
        unsafe { libc::close(pair[1]) };
        let doorbell_map = {
            // SAFETY: a new shared mapping of our own memfd; never unmapped (a few KiB per test).
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    DOORBELL_LEN,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    doorbell.as_raw_fd(),
                    0,
                )
            };
            assert_ne!(ptr, libc::MAP_FAILED);
            ptr as *const u8
        };
        Fixture {
            doorbell_map,
            input,
            output,
            doorbell,
            pipe_read: high(pipe[0]),
            pipe_write: Some(high(pipe[1])),
            leaked_file: high(file),
            leaked_socket: high(pair[0]),
        }
    }

    /// A command for `role` with the fds placed as the plugin places them, plus the two leaks.
    fn command(&self, role: &str, layers: &str) -> Command {
        let sources = [
            (self.input.as_raw_fd(), 3),
            (self.output.as_raw_fd(), 4),
            (self.doorbell.as_raw_fd(), 5),
            (self.pipe_read.as_raw_fd(), 6),
            (self.leaked_file.as_raw_fd(), LEAKED[0]),
            (self.leaked_socket.as_raw_fd(), LEAKED[1]),
        ];
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env(ROLE, role)
            .env(LAYERS, layers)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: the closure only calls dup2, which is async-signal-safe; dup2 clears
        // close-on-exec on the new fd, so exactly these fds reach the child.
        unsafe {
            cmd.pre_exec(move || {
                for (from, to) in sources {
                    if libc::dup2(from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        cmd
    }

    /// Whether the input region still holds its pattern and both sizes are unchanged.
    fn regions_intact(&self) -> bool {
        let size = |fd: &OwnedFd| {
            // SAFETY: fstat fills a zeroed stat we own.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
            st.st_size as usize
        };
        let mut bytes = vec![0u8; INPUT_LEN];
        // SAFETY: reads into a live buffer of INPUT_LEN bytes.
        let n = unsafe {
            libc::pread(
                self.input.as_raw_fd(),
                bytes.as_mut_ptr().cast(),
                INPUT_LEN,
                0,
            )
        };
        n as usize == INPUT_LEN
            && bytes == input_pattern()
            && size(&self.input) == INPUT_LEN
            && size(&self.output) == OUTPUT_LEN
    }
}

/// A running sandboxed child and its stderr lines.
struct Sandboxed {
    /// The child's report line.
    report: String,
    fixture: Fixture,
    child: Child,
    lines: Receiver<String>,
}

/// What happened to a command.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The child answered with this line and lives on.
    Answered(String),
    /// The child died from this signal.
    Killed(i32),
    /// The child exited with this status.
    Exited(i32),
}

impl Sandboxed {
    fn spawn(layers: &str) -> Sandboxed {
        let fixture = Fixture::new();
        let mut child = fixture
            .command("child", layers)
            .spawn()
            .expect("spawn child");
        let lines = forward_lines(child.stderr.take().unwrap());
        let ready = lines.recv_timeout(PATIENCE).expect("child never got ready");
        assert!(ready.starts_with("ready "), "child said {ready:?}");
        Sandboxed {
            report: ready,
            fixture,
            child,
            lines,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn send(&self, code: u32) {
        let (seq, slot) = mailbox(self.fixture.doorbell_map);
        slot.store(code, Ordering::Relaxed);
        seq.fetch_add(1, Ordering::Release);
        // SAFETY: `seq` is a live, aligned u32 in a shared mapping; FUTEX_WAKE reads nothing else.
        unsafe { libc::syscall(libc::SYS_futex, seq.as_ptr(), libc::FUTEX_WAKE, 1) };
    }

    /// Sends `code` and waits for the answer or the child's end.
    fn run(&mut self, code: u32) -> Outcome {
        self.send(code);
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) => match line.strip_prefix(REPLY) {
                    Some(answer) => return Outcome::Answered(answer.to_string()),
                    None => println!("    child: {line}"),
                },
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().unwrap();
                    return match status.signal() {
                        Some(sig) => Outcome::Killed(sig),
                        None => Outcome::Exited(status.code().unwrap()),
                    };
                }
                Err(RecvTimeoutError::Timeout) => panic!("child neither answered nor died"),
            }
        }
    }
}

impl Drop for Sandboxed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward_lines(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn proc_status(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
}

fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc status"))
        .trim()
        .to_string()
}

fn rlimit_of(pid: i32, resource: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit reads another process's limit into `old`; no new limit is passed.
    let rc = unsafe { libc::prlimit(pid, resource, std::ptr::null(), &mut old) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    (old.rlim_cur, old.rlim_max)
}

/// The Landlock ABI of the running kernel (0 without Landlock).
fn landlock_abi() -> i64 {
    // SAFETY: landlock_create_ruleset with LANDLOCK_CREATE_RULESET_VERSION only returns a number.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0,
            1u32,
        )
    };
    v.max(0)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A live sandboxed child shows no-new-privs and a seccomp filter in `/proc`, holds only the
/// handed fds, and carries the rlimits.
fn status_fds_and_limits() {
    let mut child = Sandboxed::spawn("all");
    let pid = child.pid();
    let status = proc_status(pid);
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    assert_eq!(status_field(&status, "Seccomp"), "2");
    assert_eq!(status_field(&status, "Seccomp_filters"), "1");

    let fds: BTreeSet<RawFd> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        fds,
        BTreeSet::from([0, 1, 2, 3, 4, 5, 6]),
        "fds of the child"
    );
    for fd in LEAKED {
        assert!(!fds.contains(&fd), "leaked fd {fd} survived");
    }

    assert_eq!(rlimit_of(pid, libc::RLIMIT_CORE), (0, 0));
    assert_eq!(rlimit_of(pid, libc::RLIMIT_NPROC), (0, 0));
    assert_eq!(rlimit_of(pid, libc::RLIMIT_NOFILE), (7, 7));
    let (cap, hard) = rlimit_of(pid, libc::RLIMIT_AS);
    assert_eq!(cap, hard);
    assert!(
        cap < 4 << 30,
        "address-space cap {cap} is not below the escape's 4 GiB"
    );

    assert_eq!(child.run(PING), Outcome::Answered("pong".into()));
}

/// The report line names the layers, and Landlock is fully on where the kernel has ABI 6.
fn report_names_layers() {
    let fixture = Fixture::new();
    let mut child = fixture.command("child", "all").spawn().unwrap();
    let lines = forward_lines(child.stderr.take().unwrap());
    let ready = lines.recv_timeout(PATIENCE).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    println!("    {ready}");
    assert!(ready.contains("no_new_privs"), "{ready}");
    assert!(ready.contains("seccomp "), "{ready}");
    // At least the fixture's two leaks were closed (cargo may leak its jobserver pipe too).
    let closed: usize = ready
        .split_once(&format!("fds {:?} (", [0, 1, 2, 3, 4, 5, 6]))
        .and_then(|(_, rest)| rest.split_once(" closed)"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no fd count in {ready}"));
    assert!(closed >= LEAKED.len(), "{ready}");
    if landlock_abi() >= 6 {
        assert!(ready.contains("landlock full"), "{ready}");
    }
}

/// A worker stopped and continued (a debugger, job control, the hang test's SIGSTOP) survives:
/// its interrupted timed waits come back through `restart_syscall`, which the filter allows.
fn survives_stop_and_continue() {
    let mut child = Sandboxed::spawn("all");
    let pid = child.pid();
    for _ in 0..5 {
        // SAFETY: signals our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        let deadline = Instant::now() + PATIENCE;
        while !status_field(&proc_status(pid), "State").starts_with('T') {
            assert!(Instant::now() < deadline, "child never stopped");
            std::thread::sleep(Duration::from_millis(1));
        }
        // SAFETY: signals our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
        assert_eq!(child.run(PING), Outcome::Answered("pong".into()));
    }
}

/// What each escape leads to inside the full sandbox.
fn expected_full(kind: Escape) -> Result<i32, i32> {
    match kind {
        // The cap: the allocator's mmap fails with ENOMEM and the worker lives on.
        Escape::AllocPastCap => Ok(libc::ENOMEM),
        // Everything else is off the allowlist (mprotect, ftruncate...) or, for mmap of the
        // input memfd, off its arguments (only anonymous mappings).
        _ => Err(libc::SIGSYS),
    }
}

/// What each escape leads to with every layer but seccomp, or `None` where no lower layer stops
/// it (then only seccomp does, and we do not try it).
fn expected_beneath_seccomp(kind: Escape) -> Option<Result<i32, i32>> {
    Some(match kind {
        // RLIMIT_NOFILE: every fd number is taken, so no new fd can exist (before Landlock's
        // path check is even reached).
        Escape::OpenFile | Escape::CreateSocket => Ok(libc::EMFILE),
        // RLIMIT_NPROC, which the kernel does not apply to root.
        Escape::Fork if !is_root() => Ok(libc::EAGAIN),
        Escape::Fork => return None,
        // Landlock: no execute right on any path.
        Escape::Exec => Ok(libc::EACCES),
        // Landlock: no ptrace of a process outside the domain.
        Escape::Ptrace => Ok(libc::EPERM),
        // Landlock's signal scope (ABI 6); without it the parent would really die.
        Escape::KillParent if landlock_abi() >= 6 => Ok(libc::EPERM),
        Escape::KillParent => return None,
        // The seal refuses PROT_WRITE (EACCES: the mapping may never become writable), and the
        // write that follows faults.
        Escape::MprotectInputWritable => Err(libc::SIGSEGV),
        // The memfd seals.
        Escape::GrowMemfd | Escape::ShrinkMemfd | Escape::MapInputWritable => Ok(libc::EPERM),
        Escape::AllocPastCap => Ok(libc::ENOMEM),
    })
}

/// Runs `kind` in a fresh child and checks the outcome: `Ok(errno)` for a refusal the child
/// lives through (and answers a ping afterwards), `Err(signal)` for a kill. Either way the
/// plugin's regions are unchanged.
fn check_escape(layers: &str, kind: Escape, expected: Result<i32, i32>) {
    let mut child = Sandboxed::spawn(layers);
    let outcome = child.run(kind as u32);
    println!("    {layers}: {kind}: {outcome:?}");
    match expected {
        Ok(errno) => {
            let Outcome::Answered(line) = outcome else {
                panic!("{kind}: expected errno {errno}, got {outcome:?}");
            };
            assert!(!line.starts_with("ESCAPED"), "{line}");
            assert!(
                line.contains(&format!("refused: errno {errno} ")),
                "{kind}: {line}"
            );
            assert_eq!(child.run(PING), Outcome::Answered("pong".into()), "{kind}");
        }
        Err(signal) => assert_eq!(outcome, Outcome::Killed(signal), "{kind}"),
    }
    assert!(
        child.fixture.regions_intact(),
        "{kind} changed the plugin's regions"
    );
}

fn escapes_in_full_sandbox() {
    for kind in Escape::ALL {
        check_escape("all", kind, expected_full(kind));
    }
}

fn escapes_beneath_seccomp() {
    for kind in Escape::ALL {
        match expected_beneath_seccomp(kind) {
            Some(expected) => check_escape("no-seccomp", kind, expected),
            None => println!("    no-seccomp: {kind}: only seccomp stops it here (not tried)"),
        }
    }
}

/// Inside the sandbox, the worker still sees its parent pipe hang up (poll is allowed) and exits.
fn exits_when_parent_pipe_closes() {
    let mut child = Sandboxed::spawn("all");
    assert_eq!(child.run(PING), Outcome::Answered("pong".into()));
    drop(child.fixture.pipe_write.take());
    let status = child.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// The worker's own injected faults, inside the sandbox, end as themselves (not as SIGSYS), so
/// the supervisor's log tells a crash from a sandbox violation; the faults that return leave a
/// working worker.
fn faults_end_as_themselves() {
    let cases = [
        (FaultKind::Segv, Outcome::Killed(libc::SIGSEGV)),
        (FaultKind::Abort, Outcome::Killed(libc::SIGABRT)),
        (FaultKind::Panic, Outcome::Exited(101)),
        (FaultKind::Exit0, Outcome::Exited(0)),
        (FaultKind::Sleep, Outcome::Answered("Continue".into())),
        (FaultKind::BadFields, Outcome::Answered("Rogue".into())),
        (FaultKind::NaN, Outcome::Answered("PoisonChunk".into())),
        (
            FaultKind::BadVoiceEnds,
            Outcome::Answered("BadVoiceEnds".into()),
        ),
    ];
    for (fault, expected) in cases {
        let mut child = Sandboxed::spawn("all");
        let outcome = child.run(fault as u32);
        println!("    {fault:?}: {outcome:?}");
        assert_eq!(outcome, expected, "{fault:?}");
        if let Outcome::Answered(_) = outcome {
            assert_eq!(
                child.run(PING),
                Outcome::Answered("pong".into()),
                "{fault:?}"
            );
        }
    }
}

/// Whether this system grants `SCHED_FIFO` to a thread of this process at all (the sandbox asks
/// for it and silently goes without).
fn realtime_granted() -> bool {
    std::thread::spawn(|| {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: sched_setscheduler on this short-lived thread, with a param we own.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
    })
    .join()
    .unwrap()
}

/// A spinning real-time worker is stopped by `RLIMIT_RTTIME` (after 2 s of CPU without a block).
/// Where the system grants `SCHED_FIFO`, the sandbox must have taken it and the limit must kill
/// the spinner; where it grants none, there is nothing to test, and the harness says so.
fn rttime_stops_a_spinning_realtime_worker() -> Result<(), &'static str> {
    let mut child = Sandboxed::spawn("all");
    if !realtime_granted() {
        return Err("this system grants no SCHED_FIFO (RLIMIT_RTPRIO 0, no CAP_SYS_NICE)");
    }
    assert!(
        child.report.contains("SCHED_FIFO"),
        "SCHED_FIFO is granted here, yet the sandbox did not take it: {}",
        child.report
    );
    let outcome = child.run(FaultKind::InfiniteLoop as u32);
    println!("    InfiniteLoop under SCHED_FIFO: {outcome:?}");
    assert_eq!(outcome, Outcome::Killed(libc::SIGKILL));
    Ok(())
}

/// A sandboxed child whose parent is SIGKILLed dies too, by its death signal alone: the test
/// keeps the parent pipe's write end open, so the pipe never reports EOF.
fn dies_with_its_parent() {
    // SAFETY: prctl with integer arguments; makes orphans of our descendants our children, so
    // we can reap the grandchild and see how it died.
    let status = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(status, 0);
    let fixture = Fixture::new();
    let mut middle = fixture.command("middle", "all");
    middle.stdout(Stdio::piped());
    let mut middle = middle.spawn().unwrap();
    let lines = forward_lines(middle.stderr.take().unwrap());
    let mut pid_line = String::new();
    BufReader::new(middle.stdout.take().unwrap())
        .read_line(&mut pid_line)
        .unwrap();
    let grandchild: i32 = pid_line.trim().parse().unwrap();
    let ready = lines.recv_timeout(PATIENCE).unwrap();
    assert!(ready.starts_with("ready "), "{ready}");

    middle.kill().unwrap();
    let killed = Instant::now();
    middle.wait().unwrap();
    let deadline = killed + Duration::from_secs(5);
    let mut status = 0;
    loop {
        // SAFETY: waits for our (adopted) grandchild without blocking.
        let rc = unsafe { libc::waitpid(grandchild, &mut status, libc::WNOHANG) };
        if rc == grandchild {
            break;
        }
        assert_eq!(rc, 0, "waitpid: {}", std::io::Error::last_os_error());
        assert!(
            Instant::now() < deadline,
            "grandchild {grandchild} outlived its parent by 5 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    println!(
        "    grandchild reaped {:?} after its parent's SIGKILL",
        killed.elapsed()
    );
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    assert_eq!(libc::WTERMSIG(status), libc::SIGKILL);
    drop(fixture);
}

/// `enter` refuses a multi-threaded process before changing anything (this one has reader
/// threads running).
fn refuses_threads() {
    let (tx, rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || rx.recv());
    match sandbox::enter(&[], &[]) {
        Err(SandboxError::MultiThreaded(n)) => assert!(n >= 2),
        other => panic!("expected MultiThreaded, got {other:?}"),
    }
    // SAFETY: prctl reads a flag of this thread.
    let status = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    assert_eq!(status, 0);
    drop(tx);
    let _ = thread.join();
}

/// Every escape code round-trips, and no other code in 0..200 is an escape.
fn escape_codes() {
    for kind in Escape::ALL {
        assert_eq!(Escape::from_u32(kind as u32), Some(kind));
        assert!(kind as u32 >= 100);
    }
    let known = (0..200).filter_map(Escape::from_u32).count();
    assert_eq!(known, Escape::ALL.len());
}

/// SECURITY.md gives a reason for every system call on the allowlist.
fn allowlist_documented() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../SECURITY.md");
    let doc = std::fs::read_to_string(path).expect("SECURITY.md at the workspace root");
    for entry in sandbox::allowlist() {
        let row = format!("| `{}` |", entry.name);
        assert!(doc.contains(&row), "SECURITY.md has no row {row}");
    }
}

/// A test of this harness.
enum Case {
    /// Runs on every system.
    Always(fn()),
    /// Returns `Err(why)` when this system cannot run it; the harness reports it as skipped.
    MayNotApply(fn() -> Result<(), &'static str>),
}

fn parent_main() {
    use Case::{Always, MayNotApply};
    let tests: &[(&str, Case)] = &[
        ("escape_codes", Always(escape_codes)),
        ("allowlist_documented", Always(allowlist_documented)),
        ("status_fds_and_limits", Always(status_fds_and_limits)),
        ("report_names_layers", Always(report_names_layers)),
        (
            "survives_stop_and_continue",
            Always(survives_stop_and_continue),
        ),
        ("escapes_in_full_sandbox", Always(escapes_in_full_sandbox)),
        ("escapes_beneath_seccomp", Always(escapes_beneath_seccomp)),
        ("faults_end_as_themselves", Always(faults_end_as_themselves)),
        (
            "rttime_stops_a_spinning_realtime_worker",
            MayNotApply(rttime_stops_a_spinning_realtime_worker),
        ),
        (
            "exits_when_parent_pipe_closes",
            Always(exits_when_parent_pipe_closes),
        ),
        ("dies_with_its_parent", Always(dies_with_its_parent)),
        // Last: were the thread check broken, this would sandbox the test process itself.
        ("refuses_threads", Always(refuses_threads)),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        println!("test {name} ...");
        let outcome = match test {
            Case::Always(test) => std::panic::catch_unwind(|| {
                test();
                Ok(())
            }),
            Case::MayNotApply(test) => std::panic::catch_unwind(test),
        };
        match outcome {
            Ok(Ok(())) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Ok(Err(why)) => {
                println!("test {name} ... SKIPPED: {why}");
                skipped += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
