//! The pre-spawned spare: a worker that dies is replaced by the spare (already sandboxed, asleep
//! until called), which restores the checkpoint inside its sandbox and rejoins bit for bit,
//! writing an output ring of its own; a ring is handed out again only once the process that
//! wrote it is reaped; a spare that dies is replaced itself; no process outlives the engine.
//!
//! Bits are compared with no realtime deadline to miss (see `common::patient`); timing is the
//! benchmark's job (`cargo xtask bench failover`).

mod common;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shm::FaultKind;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tandem::engine::{Engine, EngineEvent, ProcessMode};

const N: usize = 256;

fn sigkill(pid: u32) {
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("kill");
}

/// Waits (sleeping only, so the stream is untouched) until the engine has seen `failures`
/// worker failures, is back in lockstep and has a spare other than `killed`; returns the
/// spare's pid.
fn settle(engine: &Engine, failures: u64, killed: Option<u32>) -> u32 {
    for _ in 0..20_000 {
        let spare = engine.spare_pid().filter(|&pid| Some(pid) != killed);
        if engine.stats().failures.load(Ordering::Relaxed) >= failures && engine.in_lockstep() {
            if let Some(pid) = spare {
                return pid;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("no lockstep with a spare: {:#?}", engine.drain_log());
}

/// True if `pid` exists, zombie or not (a reaped child is gone from /proc).
fn is_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Kills the serving worker `kills` times (and, with `kill_spares`, the waiting spare before
/// each), checks that each rebuild is the spare taking the slot, and that the whole output and
/// every voice end equal the reference's. Returns the engine's events.
fn kill_and_compare(latency: u32, kills: usize, kill_spares: bool) -> Vec<EngineEvent> {
    let mut engine = engine(ProcessMode::Realtime, N, latency);
    settle(&engine, 0, None);
    let mut rng = Rng::new(0x5a4e ^ latency as u64);
    let (mut done, mut next) = (0, 8);
    let mut called = Vec::new();
    let mut spares_killed = 0;
    let mut spare_killed = None;
    let both = render_both(&mut engine, 17, N, 8 + kills * 16, latency, |engine, b| {
        if b < next || done == kills {
            return;
        }
        if kill_spares && spare_killed.is_none() {
            // The supervisor notices on its next pass (the next blocks' posts wake it), reaps
            // it and spawns another.
            let spare = settle(engine, done as u64, None);
            sigkill(spare);
            spare_killed = Some(spare);
            spares_killed += 1;
            return;
        }
        if spare_killed.is_some() && engine.spare_pid() == spare_killed {
            return;
        }
        let spare = settle(engine, done as u64, spare_killed.take());
        called.push(spare);
        sigkill(engine.worker_pid(engine.serving_slot()).expect("serving"));
        done += 1;
        next = b + 4 + rng.below(8) as usize;
    });
    assert_eq!(done, kills, "every kill ran");
    settle(&engine, kills as u64, None);
    let events = engine.drain_events();
    let log = assert_exact(&both, &events);
    // Each rebuild was the spare called into the slot: the newcomer's pid is the spare's. (Every
    // spawn after the activation's two, whether from a checkpoint or, a kill before the first
    // one, from the start.)
    let rebuilt: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::WorkerSpawned { pid, .. } => Some(*pid),
            _ => None,
        })
        .skip(2)
        .collect();
    assert_eq!(rebuilt, called, "rebuilds by the spare; log: {log:#?}");
    let spare_deaths = events
        .iter()
        .filter(|e| matches!(e, EngineEvent::SpareDied { .. }))
        .count();
    assert_eq!(spare_deaths, spares_killed, "log: {log:#?}");
    drop(engine);
    for pid in started_pids(&events) {
        assert!(!is_alive(pid), "process {pid} outlived its engine");
    }
    events
}

#[test]
fn the_spare_takes_a_killed_workers_slot_bit_exact() {
    kill_and_compare(N as u32, 12, false);
}

#[test]
fn the_spare_takes_a_killed_workers_slot_bit_exact_at_zero_latency() {
    kill_and_compare(0, 6, false);
}

#[test]
fn a_spare_that_dies_is_replaced() {
    kill_and_compare(N as u32, 4, true);
}

/// Checks, from the events in order, which process holds which output ring: a spare or a newly
/// started worker gets a ring no live process holds (the supervisor reports a worker's end only
/// after reaping it), and a spare called into a slot writes its own ring, never the one of the
/// worker it replaces (which may still be running: an evicted worker is killed after the call).
/// Returns how many rebuilds the spare made.
fn check_rings(events: &[EngineEvent]) -> usize {
    let mut holder: BTreeMap<usize, u32> = BTreeMap::new();
    let mut ring_of: BTreeMap<u32, usize> = BTreeMap::new();
    let mut slot_ring: [Option<usize>; 2] = [None, None];
    let mut spare_rebuilds = 0;
    for (i, e) in events.iter().enumerate() {
        let context = || format!("event {i}: {e}; all: {events:#?}");
        let (pid, ring) = match *e {
            EngineEvent::SpareSpawned { pid, ring, .. } => (pid, ring),
            EngineEvent::WorkerSpawned {
                slot, pid, ring, ..
            } => {
                let replaced = slot_ring[slot].replace(ring);
                if holder.get(&ring) == Some(&pid) {
                    // The spare, called in: it keeps its ring, not the one it replaces.
                    assert_ne!(replaced, Some(ring), "{}", context());
                    spare_rebuilds += 1;
                    continue;
                }
                (pid, ring)
            }
            EngineEvent::WorkerDied { pid, .. }
            | EngineEvent::WorkerEvicted { pid, .. }
            | EngineEvent::WorkerRetired { pid, .. }
            | EngineEvent::SpareDied { pid, .. } => {
                let ring = ring_of
                    .remove(&pid)
                    .unwrap_or_else(|| panic!("{}", context()));
                assert_eq!(holder.remove(&ring), Some(pid), "{}", context());
                continue;
            }
            _ => continue,
        };
        // Handed out: no live process may hold it.
        assert_eq!(
            holder.insert(ring, pid),
            None,
            "ring still held; {}",
            context()
        );
        ring_of.insert(pid, ring);
    }
    spare_rebuilds
}

/// A fault of the serving worker.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Signal(Signal),
    Inject(FaultKind),
}

/// Every kind of end a serving worker can come to, several times each, and among them workers
/// evicted while still running (rogue progress, audio overwritten after its digest, NaN, a
/// stopped process): each is replaced by the spare writing another ring than its own, no ring
/// is handed out before the process that held it is reaped, and the whole output, voice ends
/// included, equals the reference's: nothing a worker wrote after its eviction was served.
#[test]
fn a_rebuild_writes_another_ring_and_a_ring_is_reused_only_after_its_reap() {
    let faults = [
        Fault::Signal(Signal::SIGKILL),
        Fault::Inject(FaultKind::BadFields),
        Fault::Inject(FaultKind::OverwriteFinished),
        Fault::Inject(FaultKind::NaN),
        Fault::Signal(Signal::SIGSTOP),
        Fault::Inject(FaultKind::Segv),
    ];
    let rounds = 2;
    let mut engine = engine(ProcessMode::Realtime, N, N as u32);
    settle(&engine, 0, None);
    let (mut done, mut next) = (0, 8);
    let both = render_both(
        &mut engine,
        23,
        N,
        8 + faults.len() * rounds * 16,
        N as u32,
        |engine, b| {
            if b < next || done == faults.len() * rounds {
                return;
            }
            settle(engine, done as u64, None);
            let slot = engine.serving_slot();
            match faults[done % faults.len()] {
                Fault::Signal(sig) => {
                    let pid = engine.worker_pid(slot).expect("serving");
                    kill(Pid::from_raw(pid as i32), sig).expect("kill");
                }
                Fault::Inject(kind) => engine.inject_fault(slot, kind as u32, 0),
            }
            done += 1;
            next = b + 12;
        },
    );
    assert_eq!(done, faults.len() * rounds, "every fault ran");
    settle(&engine, done as u64, None);
    let events = engine.drain_events();
    let log = assert_exact(&both, &events);
    assert_eq!(
        check_rings(&events),
        done,
        "every rebuild by the spare; log: {log:#?}"
    );
}
