//! The worker sandbox inside the running engine: real workers, real escapes.
//!
//! - Each escape in `sandbox_worker::escape` is injected into one live worker while a phrase
//!   plays: that worker dies of `SIGSYS` (or is refused and lives on), its twin carries the
//!   audio, and the output equals the in-process reference bit for bit.
//! - A live worker's `/proc` shows no-new-privs, a seccomp filter, only its handed fds and its
//!   rlimits.
//! - A host process killed with `SIGKILL` leaves no worker (the host is this test binary, re-run
//!   as a child that activates an engine).
//!
//! The workers are the real `tandem-worker` found by `tandem::worker_exe` (built by
//! `cargo test --workspace`, or `cargo build -p sandbox-worker` first). No assertion here is on a
//! duration: waits are bounded generously so a failure cannot hang, and the time a worker takes
//! to follow its dead host is printed as a measurement.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sandbox_worker::escape::Escape;
use tandem::engine::{
    Engine, EngineConfig, EngineEvent, ProcessMode, ReferenceEngine, Tuning, WorkerExit,
};
use test_support::{default_params, Phrase, SR};

const N: usize = 256;
/// Environment variable that turns this binary into the host process of `killed_host_*`.
const HOST_ROLE: &str = "TANDEM_SANDBOX_TEST_HOST";
/// Line prefix the host prints its workers' pids after.
const PIDS: &str = "TANDEM_WORKER_PIDS";

fn engine() -> Engine {
    let config = EngineConfig {
        sample_rate: SR,
        max_block: N,
        latency: 0,
        mode: ProcessMode::Realtime,
        protection: tandem::engine::Protection::Lockstep,
        worker_path: tandem::worker_exe::worker_path()
            .expect("tandem-worker not found: cargo build -p sandbox-worker"),
    };
    // No realtime deadline to miss: these tests compare bits on a loaded 2-core machine.
    let tuning = Tuning {
        deadline_fraction: 1.0e6,
        hang_timeout: Duration::from_millis(300),
        ..Tuning::default()
    };
    Engine::activate_with(config, tuning).expect("activate")
}

/// Plays until both workers are verified and in lockstep (bounded; a liveness bound only).
fn wait_for_lockstep(engine: &mut Engine) {
    let params = default_params();
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    let t0 = Instant::now();
    while !engine.in_lockstep() {
        assert!(t0.elapsed() < Duration::from_secs(20), "no lockstep");
        engine.process(&[], &params, None, [&mut l, &mut r]);
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn proc_status(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
}

fn field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in /proc status"))
        .trim()
        .to_string()
}

fn rlimit(pid: u32, resource: libc::__rlimit_resource_t) -> u64 {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reads another process's limit into `old`; no new limit is set.
    let rc = unsafe { libc::prlimit(pid as i32, resource, std::ptr::null(), &mut old) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    old.rlim_cur
}

#[test]
fn live_workers_are_sandboxed() {
    let mut engine = engine();
    wait_for_lockstep(&mut engine);
    let pids = engine.worker_pids();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        let status = proc_status(pid);
        assert_eq!(
            field(&status, "NoNewPrivs"),
            "1",
            "worker {pid} is not sandboxed: does sandbox-worker's enter_sandbox call sandbox::enter?"
        );
        assert_eq!(field(&status, "Seccomp"), "2", "worker {pid}");
        let fds: BTreeSet<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(fds, BTreeSet::from([0, 1, 2, 3, 4, 5, 6]), "worker {pid}");
        assert_eq!(rlimit(pid, libc::RLIMIT_CORE), 0);
        assert_eq!(rlimit(pid, libc::RLIMIT_NPROC), 0);
        assert_eq!(rlimit(pid, libc::RLIMIT_NOFILE), 7);
        let cap = rlimit(pid, libc::RLIMIT_AS);
        // The measurement behind the cap's headroom (SECURITY.md).
        println!(
            "worker {pid}: VmPeak {}, VmSize {}, VmHWM {}, VmLck {}, RLIMIT_AS {} kB",
            field(&status, "VmPeak"),
            field(&status, "VmSize"),
            field(&status, "VmHWM"),
            field(&status, "VmLck"),
            cap >> 10
        );
    }
}

/// The spare waits for a slot already inside the same sandbox, with the same descriptors as any
/// worker: its one output ring is its own (see sandbox-worker's `spare` module).
#[test]
fn the_spare_waits_sandboxed() {
    let mut engine = engine();
    wait_for_lockstep(&mut engine);
    let pid = engine
        .spare_pid()
        .expect("a spare is spawned at activation");
    // It enters its sandbox right after it starts: wait for that (a liveness bound).
    let t0 = std::time::Instant::now();
    while field(&proc_status(pid), "Seccomp") != "2" {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "spare {pid} never sandboxed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(field(&proc_status(pid), "NoNewPrivs"), "1", "spare {pid}");
    let fds: BTreeSet<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(fds, BTreeSet::from([0, 1, 2, 3, 4, 5, 6]), "spare {pid}");
    assert_eq!(rlimit(pid, libc::RLIMIT_NPROC), 0);
    assert_eq!(rlimit(pid, libc::RLIMIT_NOFILE), 7);
}

/// Plays the phrase through the engine and the reference, injecting `code` into the serving
/// worker at block 8; returns (differing samples, peak, events, victim pid, twin pid).
fn play_with_escape(code: u32) -> (usize, f32, Vec<EngineEvent>, u32, u32) {
    let mut engine = engine();
    wait_for_lockstep(&mut engine);
    let slot = engine.serving_slot();
    let victim = engine.worker_pid(slot).unwrap();
    let twin = engine.worker_pid(1 - slot).unwrap();
    let mut reference = ReferenceEngine::new(SR, N, 0).unwrap();
    let mut phrase = Phrase::new(0x5eed);
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    let (mut differing, mut peak) = (0, 0.0f32);
    for block in 0..48 {
        if block == 8 {
            engine.inject_fault(slot, code, 0);
        }
        let (events, params) = phrase.block(N);
        engine.process(events, params, None, [&mut l, &mut r]);
        let got: Vec<f32> = l.iter().chain(&r).copied().collect();
        reference.process(events, params, None, [&mut l, &mut r]);
        let want = l.iter().chain(&r);
        differing += got
            .iter()
            .zip(want.clone())
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        peak = want.fold(peak, |m, s| m.max(s.abs()));
    }
    // The death may reach the supervisor after the last block: wait for it (bounded).
    let mut events = engine.drain_events();
    let t0 = Instant::now();
    while !died(&events, victim) && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
        events.extend(engine.drain_events());
    }
    (differing, peak, events, victim, twin)
}

fn died(events: &[EngineEvent], pid: u32) -> bool {
    events
        .iter()
        .any(|e| matches!(e, EngineEvent::WorkerDied { pid: p, .. } if *p == pid))
}

fn cause_of_death(events: &[EngineEvent], pid: u32) -> Option<WorkerExit> {
    events.iter().find_map(|e| match e {
        EngineEvent::WorkerDied { pid: p, cause, .. } if *p == pid => Some(*cause),
        _ => None,
    })
}

#[test]
fn escapes_are_contained_and_the_twin_carries_the_audio() {
    for kind in Escape::ALL {
        let (differing, peak, events, victim, twin) = play_with_escape(kind as u32);
        let cause = cause_of_death(&events, victim);
        println!("{kind}: worker {victim}: {cause:?}");
        assert!(peak > 0.01, "{kind}: the phrase is silent");
        assert_eq!(differing, 0, "{kind}: output differs from the reference");
        // The twin was never touched.
        assert!(
            !died(&events, twin),
            "{kind}: the twin {twin} died: {events:?}"
        );
        match kind {
            // Refused with ENOMEM by the address-space cap; the worker renders on.
            Escape::AllocPastCap => assert_eq!(cause, None, "{kind}"),
            // Off the allowlist (mprotect, ftruncate, open...) or off its arguments (mmap).
            _ => assert_eq!(
                cause,
                Some(WorkerExit::Signalled(libc::SIGSYS)),
                "{kind}: {events:?} (does sandbox-worker's attempt_escape call escape::attempt?)"
            ),
        }
    }
}

/// The host process is this test re-run as a child (with [`HOST_ROLE`] set), which activates an
/// engine, prints its workers' pids and plays until it is killed; this test, in a normal run,
/// kills it and reaps its orphaned workers.
#[test]
fn killed_host_leaves_no_worker() {
    if std::env::var_os(HOST_ROLE).is_some() {
        play_until_killed();
    }
    // SAFETY: prctl with integer arguments: orphaned descendants become our children, so we can
    // reap the workers and see how they ended (a plain orphan would go to init).
    let status = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(status, 0);
    let mut host = Command::new(std::env::current_exe().unwrap())
        .args(["killed_host_leaves_no_worker", "--exact", "--nocapture"])
        .env(HOST_ROLE, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pids = Vec::new();
    for line in BufReader::new(host.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix(PIDS) {
            pids = rest
                .split_whitespace()
                .map(|p| p.parse::<i32>().unwrap())
                .collect();
            break;
        }
    }
    assert_eq!(pids.len(), 2, "the host never reported its workers");
    host.kill().unwrap();
    let killed = Instant::now();
    host.wait().unwrap();
    for pid in pids {
        let mut status = 0;
        loop {
            // SAFETY: waits for an adopted orphan without blocking.
            let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if rc == pid {
                break;
            }
            assert_eq!(rc, 0, "waitpid {pid}: {}", std::io::Error::last_os_error());
            assert!(
                killed.elapsed() < Duration::from_secs(5),
                "worker {pid} outlived its host by 5 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let how = if libc::WIFSIGNALED(status) {
            format!("signal {}", libc::WTERMSIG(status))
        } else {
            format!("exit {}", libc::WEXITSTATUS(status))
        };
        println!(
            "worker {pid} gone {:?} after its host's SIGKILL ({how})",
            killed.elapsed()
        );
        // Its death signal (SIGKILL), or its parent pipe's hang-up (exit 0).
        assert!(
            (libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL)
                || (libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0),
            "worker {pid}: {how}"
        );
    }
}

/// The host's side of `killed_host_leaves_no_worker`: activates an engine, prints its workers'
/// pids, and plays until killed.
fn play_until_killed() -> ! {
    let mut engine = engine();
    wait_for_lockstep(&mut engine);
    let pids = engine.worker_pids();
    println!("{PIDS} {} {}", pids[0], pids[1]);
    let mut phrase = Phrase::new(0x5eed);
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    loop {
        let (events, params) = phrase.block(N);
        engine.process(events, params, None, [&mut l, &mut r]);
        std::thread::sleep(Duration::from_millis(5));
    }
}
