//! Overload is not a hang (docs/ARCHITECTURE.md, "Failure detection and rebuild"): a worker that
//! waits for a core is starved, not hung, and keeps its slot; a worker left far behind while its
//! twin serves is rebuilt before the input ring laps it. Still evicted: a stopped worker and an
//! endless loop (`engine_failover.rs`, `hangs_are_evicted`).
//!
//! The starvation is real: the worker is pinned to one core with the lowest weight the kernel
//! has for a normal task (nice 19), and a thread of this test spins on that core. No timing is
//! asserted: the properties are "no eviction, no death, the same bits as the reference".

mod common;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tandem::engine::{Engine, EngineEvent, EvictReason, ProcessMode, Tuning, WorkerExit};

const N: usize = 256;

/// The last core this process may run on: the one the starved worker and the hog share.
fn hog_core() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills the one we own.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; the size is the set's.
    let got = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    assert_eq!(got, 0, "sched_getaffinity");
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads the set we own, at an index below its size.
        .rfind(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .expect("a core")
}

/// Pins thread or process `tid` (0: the calling thread) to `core`.
fn pin(tid: i32, core: usize) {
    // SAFETY: as in `hog_core`; CPU_SET writes the set we own at an index below its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: sched_setaffinity reads the set we own.
    let got = unsafe { libc::sched_setaffinity(tid, std::mem::size_of_val(&set), &set) };
    assert_eq!(got, 0, "sched_setaffinity");
}

/// A thread spinning on `core` at normal priority, until dropped; `pid` is made to wait for that
/// core behind it (normal class, nice 19, pinned there). Dropping it also gives the worker back
/// its class, priority and cores, so that it can catch up as a worker the machine no longer
/// starves would.
struct Starve {
    stop: Arc<AtomicBool>,
    hog: Option<std::thread::JoinHandle<()>>,
    pid: u32,
    policy: i32,
    param: libc::sched_param,
    cores: libc::cpu_set_t,
}

impl Starve {
    fn worker(pid: u32) -> Starve {
        let core = hog_core();
        let mut param = libc::sched_param { sched_priority: 0 };
        // SAFETY: a zeroed cpu_set_t is a valid empty set.
        let mut cores: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: sched_getscheduler, sched_getparam, sched_getaffinity, sched_setscheduler and
        // setpriority on a child of ours, writing only into (or reading only from) values we own.
        let policy = unsafe {
            let policy = libc::sched_getscheduler(pid as i32);
            assert!(policy >= 0, "sched_getscheduler");
            assert_eq!(libc::sched_getparam(pid as i32, &mut param), 0);
            let size = std::mem::size_of_val(&cores);
            assert_eq!(libc::sched_getaffinity(pid as i32, size, &mut cores), 0);
            let normal = libc::sched_param { sched_priority: 0 };
            assert_eq!(
                libc::sched_setscheduler(pid as i32, libc::SCHED_OTHER, &normal),
                0
            );
            assert_eq!(libc::setpriority(libc::PRIO_PROCESS, pid, 19), 0);
            policy
        };
        pin(pid as i32, core);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let hog = std::thread::spawn(move || {
            pin(0, core);
            let mut x = 0u64;
            while !flag.load(Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005) + 1);
            }
        });
        Starve {
            stop,
            hog: Some(hog),
            pid,
            policy,
            param,
            cores,
        }
    }
}

impl Drop for Starve {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(hog) = self.hog.take() {
            let _ = hog.join();
        }
        // A worker evicted meanwhile is gone (ESRCH): nothing to give back.
        let pid = self.pid as i32;
        // SAFETY: setpriority, sched_setaffinity and sched_setscheduler on a child of ours,
        // reading only the values we saved from it.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, self.pid, 0);
            libc::sched_setaffinity(pid, std::mem::size_of_val(&self.cores), &self.cores);
            libc::sched_setscheduler(pid, self.policy, &self.param);
        }
    }
}

/// Realtime mode with the default hang timeout, and no deadline to miss (bits are compared).
fn engine() -> Engine {
    let tuning = Tuning {
        deadline_fraction: 1.0e6,
        ..Tuning::default()
    };
    Engine::activate_with(config(ProcessMode::Realtime, N, N as u32), tuning).expect("activate")
}

/// The serving worker's twin: the one whose lag nobody hears.
fn twin_pid(engine: &Engine) -> u32 {
    engine
        .worker_pid(1 - engine.serving_slot())
        .expect("a twin")
}

fn log(events: &[EngineEvent]) -> Vec<String> {
    events.iter().map(|e| e.to_string()).collect()
}

#[test]
fn a_starved_worker_keeps_its_slot() {
    let mut engine = engine();
    assert!(wait_for_lockstep(&mut engine, N));
    let mut starved = None;
    // A third of a ring behind at most, far from the three quarters at which a catch-up is
    // due: only patience.
    let starve_until = 8 + engine.ring_config().audio_capacity as usize / N / 3;
    let both = render_both(&mut engine, 21, N, 160, N as u32, |engine, b| {
        if b == 8 {
            starved = Some(Starve::worker(twin_pid(engine)));
        }
        if b == starve_until {
            starved = None;
        }
        // Long enough that the starved twin goes many hang timeouts without a chunk done.
        std::thread::sleep(Duration::from_millis(6));
    });
    drop(starved);
    assert!(wait_for_lockstep(&mut engine, N));
    let events = engine.drain_events();
    assert_eq!(
        engine.stats().failures.load(Ordering::Relaxed),
        0,
        "an honest, starved worker was replaced: {:#?}",
        log(&events)
    );
    assert_eq!(differing(&both.got, &both.want), 0);
    assert!(peak(&both.want) > 0.01);
}

#[test]
fn a_twin_left_behind_is_caught_up_before_the_ring_laps_it() {
    let mut engine = engine();
    assert!(wait_for_lockstep(&mut engine, N));
    let mut starved = None;
    let mut events = Vec::new();
    let mut caught_up = false;
    // The host renders as fast as it can (as DawDreamer does in realtime mode) while one worker
    // gets almost no CPU: without a catch-up it is lapped (exit status 11) within a ring.
    let both = render_both(&mut engine, 22, N, 2400, N as u32, |engine, b| {
        if b == 8 {
            starved = Some(Starve::worker(twin_pid(engine)));
        }
        if b % 16 == 0 {
            events.extend(engine.drain_events());
            caught_up |= events.iter().any(|e| {
                matches!(
                    e,
                    EngineEvent::WorkerEvicted {
                        reason: EvictReason::FellBehind,
                        ..
                    }
                )
            });
            if caught_up {
                starved = None;
            }
        }
    });
    drop(starved);
    assert!(wait_for_lockstep(&mut engine, N));
    events.extend(engine.drain_events());
    let lapped = events.iter().any(|e| {
        matches!(
            e,
            EngineEvent::WorkerDied {
                cause: WorkerExit::Exited(11),
                ..
            }
        )
    });
    assert!(!lapped, "a worker was lapped: {:#?}", log(&events));
    let hung = events.iter().any(|e| {
        matches!(
            e,
            EngineEvent::WorkerEvicted {
                reason: EvictReason::Hang,
                ..
            }
        )
    });
    assert!(
        !hung,
        "a starved worker was taken for hung: {:#?}",
        log(&events)
    );
    assert!(
        caught_up,
        "the starved twin was never caught up: {:#?}",
        log(&events)
    );
    assert_eq!(differing(&both.got, &both.want), 0);
}
