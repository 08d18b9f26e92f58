//! The audio path allocates nothing, and kill/respawn cycles leak nothing.

mod common;
use common::*;
use nice_assert_no_alloc::assert_no_alloc;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tandem::engine::{EngineEvent, ProcessMode};

/// The tests here count the whole process's fds and threads, so they must not overlap.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

/// nice-plug's `assert_process_allocs` (enabled for these tests in Cargo.toml) installs the
/// allocator that aborts on any allocation inside `assert_no_alloc` in debug builds.
#[test]
fn process_never_allocates_even_through_failover() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut engine = engine(ProcessMode::Realtime, 512, 64);
    let mut phrase = Phrase::new(9);
    let (mut l, mut r) = (vec![0.0; 512], vec![0.0; 512]);
    let mut kills = 0;
    for b in 0..600 {
        if b % 100 == 50 {
            assert!(wait_for_lockstep(&mut engine, 512));
            let pid = engine.worker_pid(engine.serving_slot()).unwrap();
            kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
            kills += 1;
        }
        // Events of varying counts and block lengths, including a block longer than a chunk's
        // event capacity would allow in one piece.
        let n = [512, 64, 1, 333][b % 4];
        let (events, params) = phrase.block(n);
        let events = events.to_vec();
        assert_no_alloc(|| {
            engine.process(&events, params, None, [&mut l[..n], &mut r[..n]]);
        });
        if b % 50 == 0 {
            engine.reset();
        }
    }
    assert!(kills >= 3);
}

/// Waits (a liveness bound) until the engine has a spare waiting in its sandbox.
fn wait_for_spare(engine: &tandem::engine::Engine) {
    for _ in 0..20_000 {
        // Settled: the spare is in its sandbox, so the supervisor no longer opens its /proc
        // status to find out (an fd of its own for a moment).
        if engine.spare_pid().is_some() && engine.settled() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("no spare: {:#?}", engine.drain_log());
}

/// 200 kill/respawn cycles: the test process ends with as many fds and threads as it had with
/// the engine running, and every worker it ever started is reaped.
#[test]
fn two_hundred_kill_respawn_cycles_leak_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut engine = engine(ProcessMode::Realtime, 128, 0);
    assert!(wait_for_lockstep(&mut engine, 128));
    // Counted with a spare waiting, as at the end: a new spare follows each rebuild.
    wait_for_spare(&engine);
    let fds = count("/proc/self/fd");
    let threads = count("/proc/self/task");
    let mut pids = Vec::new();
    let mut rng = Rng::new(42);
    for cycle in 0..200 {
        let slot = rng.below(2) as usize;
        let pid = engine.worker_pid(slot).expect("worker present");
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        pids.push(pid);
        for _ in 0..5000 {
            if engine.worker_pid(slot).is_some_and(|p| p != pid) {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        assert!(
            wait_for_lockstep(&mut engine, 128),
            "cycle {cycle}: {:#?}",
            engine.drain_log()
        );
    }
    wait_for_spare(&engine);
    let events = engine.drain_events();
    let failures = engine.stats().failures.load(Ordering::Relaxed);
    assert_eq!(
        failures,
        200,
        "{:#?}",
        events
            .iter()
            .map(|e| e.to_string())
            .filter(|l| !l.contains("switched"))
            .collect::<Vec<_>>()
    );
    assert_eq!(count("/proc/self/fd"), fds, "open fds");
    assert_eq!(count("/proc/self/task"), threads, "threads");
    for pid in &pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "zombie {pid}"
        );
    }
    let started: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::WorkerSpawned { pid, .. } | EngineEvent::SpareSpawned { pid, .. } => {
                Some(*pid)
            }
            _ => None,
        })
        .collect();
    drop(engine);
    for pid in started {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "orphan {pid}"
        );
    }
}
