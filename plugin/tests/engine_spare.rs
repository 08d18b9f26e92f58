//! The pre-spawned spare: a worker that dies is replaced by the spare (already sandboxed, asleep
//! until called), which restores the checkpoint inside its sandbox and rejoins bit for bit; a
//! spare that dies is replaced itself; no process outlives the engine.
//!
//! Bits are compared with no realtime deadline to miss (see `common::patient`); timing is the
//! benchmark's job (`cargo xtask bench failover`).

mod common;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
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
    let log: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    assert!(peak(&both.want) > 0.01);
    assert_eq!(
        differing(&both.got, &both.want),
        0,
        "output differs from the reference; log: {log:#?}"
    );
    assert_eq!(both.got_ends, both.want_ends, "voice ends; log: {log:#?}");
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
