//! The sandbox's cost on worker start-up.
//!
//! ```text
//! cargo run --release -p sandbox-worker --example sandbox_startup -- [TRIALS] [REGION_MIB]
//! ```
//!
//! Spawns this example's own executable as a stand-in worker, TRIALS times in each of two modes,
//! interleaved: *bare* (maps its regions like the worker, then reports ready) and *sandboxed*
//! (maps them, calls `sandbox::enter`, then reports ready). The regions are two sealed memfds of
//! REGION_MIB MiB each (default 2; 0 means 64 KiB), the input read-only and the output
//! read-write, and a 4 KiB doorbell, handed as fds 3, 4, 5 with a parent pipe on 6, as the
//! plugin hands them. Prints, per mode, the distribution of spawn-to-ready time seen by the
//! parent, and the time `enter` itself took inside the child
//! (which includes `mlock`ing, that is faulting in, the regions when allowed).

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sandbox_worker::sandbox;

const ROLE: &str = "TANDEM_SANDBOX_BENCH_ROLE";

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok(mode) => child(mode == "sandboxed"),
        Err(_) => parent(),
    }
}

fn child(sandboxed: bool) -> ! {
    let regions = [
        map(3, libc::PROT_READ),
        map(4, libc::PROT_READ | libc::PROT_WRITE),
        map(5, libc::PROT_READ | libc::PROT_WRITE),
    ];
    let enter_us = if sandboxed {
        match sandbox::enter(&[3, 4, 5, 6], &regions) {
            Ok(report) => report.elapsed.as_micros(),
            Err(e) => {
                eprintln!("sandbox error: {e}");
                std::process::exit(13);
            }
        }
    } else {
        0
    };
    eprintln!("ready {enter_us}");
    // Wait for the parent pipe to hang up, as the worker would.
    let mut pfd = libc::pollfd {
        fd: 6,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; blocks until the parent closes its end.
    unsafe { libc::poll(&mut pfd, 1, -1) };
    std::process::exit(0);
}

fn map(fd: RawFd, prot: i32) -> (*const u8, usize) {
    // SAFETY: fstat fills a zeroed stat we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
    let len = st.st_size as usize;
    // SAFETY: a new shared mapping of a memfd we were handed, at an address the kernel picks.
    let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, 0) };
    assert_ne!(ptr, libc::MAP_FAILED);
    (ptr as *const u8, len)
}

fn cvt(rc: i64) -> RawFd {
    assert!(rc >= 0, "{}", std::io::Error::last_os_error());
    rc as RawFd
}

/// A sealed memfd of `len` bytes at an fd number >= 100 (so `dup2` into 3..6 cannot collide).
fn memfd(len: usize, seals: i32) -> OwnedFd {
    // SAFETY: a NUL-terminated name; returns a new fd.
    let fd = cvt(unsafe {
        libc::memfd_create(
            c"tandem-bench".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    }
    .into());
    // SAFETY: integer arguments on our own fd.
    cvt(unsafe { libc::ftruncate(fd, len as i64) }.into());
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) }.into());
    high(fd)
}

fn high(fd: RawFd) -> OwnedFd {
    // SAFETY: duplicates an fd we own, then closes the original.
    let new = cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) }.into());
    // SAFETY: `fd` is ours and no longer used.
    unsafe { libc::close(fd) };
    // SAFETY: `new` was just created and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(new) }
}

/// One spawn: returns (spawn-to-ready, enter() inside the child).
fn trial(mode: &str, region_len: usize) -> (Duration, Duration) {
    let size = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
    let input = memfd(region_len, size | libc::F_SEAL_FUTURE_WRITE);
    let output = memfd(region_len, size);
    let doorbell = memfd(4096, size);
    let mut pipe = [0; 2];
    // SAFETY: pipe2 writes two fds into `pipe`.
    cvt(unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) }.into());
    let (pipe_read, pipe_write) = (high(pipe[0]), high(pipe[1]));
    let sources = [
        (input.as_raw_fd(), 3),
        (output.as_raw_fd(), 4),
        (doorbell.as_raw_fd(), 5),
        (pipe_read.as_raw_fd(), 6),
    ];
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(ROLE, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only dup2, which is async-signal-safe, between fork and exec.
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
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready = t0.elapsed();
    let enter_us: u64 = line
        .strip_prefix("ready ")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("child said {line:?}"));
    drop(pipe_write);
    let status = child.wait().unwrap();
    assert!(status.success(), "{mode} child: {status}");
    (ready, Duration::from_micros(enter_us))
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
    format!(
        "p50 {:>7.1} µs  p95 {:>7.1} µs  p99 {:>7.1} µs  max {:>7.1} µs",
        at(0.50).as_secs_f64() * 1e6,
        at(0.95).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        v.last().unwrap().as_secs_f64() * 1e6,
    )
}

fn parent() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let trials: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let region_mib: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let region_len = (region_mib << 20).max(65536);
    let (mut bare, mut sandboxed, mut enter) = (vec![], vec![], vec![]);
    // Warm the page cache and the dynamic loader before measuring.
    trial("bare", region_len);
    trial("sandboxed", region_len);
    for _ in 0..trials {
        bare.push(trial("bare", region_len).0);
        let (ready, inside) = trial("sandboxed", region_len);
        sandboxed.push(ready);
        enter.push(inside);
    }
    let median = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    };
    println!("worker start-up, {trials} trials per mode, two {region_mib} MiB regions:");
    println!(
        "  spawn to ready, bare      : {}",
        percentiles(bare.clone())
    );
    println!(
        "  spawn to ready, sandboxed : {}",
        percentiles(sandboxed.clone())
    );
    println!("  sandbox::enter itself     : {}", percentiles(enter));
    println!(
        "  sandbox cost (difference of medians): {:.1} µs",
        (median(&sandboxed).as_secs_f64() - median(&bare).as_secs_f64()) * 1e6
    );
}
