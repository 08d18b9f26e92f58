//! A worker that renders every chunk on time but keeps a core busy between chunks, sleeping
//! 1 ns now and then so that `RLIMIT_RTTIME` never fires, is stopped by the CPU budget the
//! supervisor enforces against its twin (docs/ARCHITECTURE.md, "Failure detection and
//! rebuild"); the honest twin stays and the output stays exact. In Eco, with no twin, the
//! audit's standby is the measure. Played at the audio clock's pace, as a live host does, so
//! that an honest worker mostly sleeps.

mod common;
use common::*;
use dsp::{Event, EventKind};
use shm::FaultKind;
use std::time::{Duration, Instant};
use tandem::engine::{
    Engine, EngineConfig, EngineEvent, EvictReason, ProcessMode, Protection, ReferenceEngine,
    Tuning,
};

const N: usize = 256;

#[test]
fn a_worker_that_hogs_a_core_between_chunks_is_evicted_and_the_output_stays_exact() {
    let mut engine = engine(ProcessMode::Realtime, N, N as u32);
    assert!(wait_for_lockstep(&mut engine, N));
    // The twin of the one serving.
    hog_trial(engine, false, |engine| 1 - engine.serving_slot());
}

/// Eco: the one active worker hogs; the next audit's standby measures what a chunk costs. Its
/// spinning can also make it late at once, and then a hedge's standby replaces it (retired):
/// gone just the same.
#[test]
fn in_eco_an_active_worker_that_hogs_a_core_is_evicted_at_an_audit() {
    let config = EngineConfig {
        protection: Protection::Eco,
        ..config(ProcessMode::Realtime, N, N as u32)
    };
    let tuning = Tuning {
        audit_interval: Duration::from_millis(300),
        ..patient()
    };
    let engine = settled_eco(config, tuning);
    hog_trial(engine, true, active_slot);
}

/// Eco at latency 0: an active worker that hogs its core is late for chunk after chunk, and
/// each late chunk brings a hedge, whose standby measures what a chunk costs as an audit's
/// does: the hog is judged at a hedge, not only at the next audit (until then each late chunk
/// risks a faded block). Audits are a minute apart here, so only a hedge can judge it. A hog
/// that stays behind the hedge's standby for the whole hang timeout is retired by that hedge
/// instead: gone just the same. On a realtime deadline, so the output is not compared: fades
/// are what this saves.
#[test]
fn in_eco_an_active_worker_that_hogs_a_core_is_evicted_at_a_hedge() {
    const BLOCK: usize = 64;
    let config = EngineConfig {
        protection: Protection::Eco,
        ..config(ProcessMode::Realtime, BLOCK, 0)
    };
    let tuning = Tuning {
        audit_interval: Duration::from_secs(60),
        ..Tuning::default()
    };
    let mut engine = settled_eco(config, tuning);
    let params = test_support::default_params();
    let chord = chord();
    let (mut l, mut r) = (vec![0.0; BLOCK], vec![0.0; BLOCK]);
    let period = Duration::from_secs_f64(BLOCK as f64 / SR as f64);
    let (mut hog, mut evicted, mut log) = (None, false, Vec::new());
    let start = Instant::now();
    // Up to 10 s of audio, a liveness bound.
    for b in 0..10 * SR as usize / BLOCK {
        if b == 20 {
            hog = start_hog(&engine, active_slot(&engine));
        }
        let events: &[Event] = if b == 0 { &chord } else { &[] };
        engine.process(events, &params, None, [&mut l, &mut r]);
        for e in engine.drain_events() {
            evicted |= match e {
                EngineEvent::WorkerEvicted {
                    reason: EvictReason::CpuBudget,
                    pid,
                    ..
                }
                | EngineEvent::WorkerRetired { pid, .. } => Some(pid) == hog,
                _ => false,
            };
            log.push(e.to_string());
        }
        if evicted {
            break;
        }
        let due = start + period * (b as u32 + 1);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    assert!(evicted, "the hog was not removed at a hedge: {log:#?}");
}

/// Plays a chord on the period clock, makes the worker in the slot `target` picks hog a core
/// from block 20, and checks it is evicted for its CPU (or, if `retired_counts`, retired after
/// a hedge) and the output equals the reference.
fn hog_trial(mut engine: Engine, retired_counts: bool, target: impl Fn(&Engine) -> usize) {
    let _ = engine.drain_events();
    let mut reference = ReferenceEngine::new(SR, N, N as u32).unwrap();
    let params = test_support::default_params();
    let chord = chord();
    let (mut got, mut want) = (Vec::new(), Vec::new());
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    let period = Duration::from_secs_f64(N as f64 / SR as f64);
    let start = Instant::now();
    let mut hog = None;
    // Up to 20 s of audio; stops two seconds after the eviction.
    let max_blocks = 20 * SR as usize / N;
    let mut stop_at = max_blocks;
    for b in 0..max_blocks {
        if b == stop_at {
            break;
        }
        if b == 20 {
            hog = start_hog(&engine, target(&engine));
        }
        let events: &[Event] = if b == 0 { &chord } else { &[] };
        engine.process(events, &params, None, [&mut l, &mut r]);
        got.extend_from_slice(&l);
        got.extend_from_slice(&r);
        reference.process(events, &params, None, [&mut l, &mut r]);
        want.extend_from_slice(&l);
        want.extend_from_slice(&r);
        let evicted = engine.drain_events().into_iter().any(|e| match e {
            EngineEvent::WorkerEvicted {
                reason: EvictReason::CpuBudget,
                pid,
                ..
            } => Some(pid) == hog,
            EngineEvent::WorkerRetired { pid, .. } => retired_counts && Some(pid) == hog,
            _ => false,
        });
        if evicted {
            stop_at = b + 2 * SR as usize / N;
        }
        // The host's period clock.
        let due = start + period * (b as u32 + 1);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    assert!(
        stop_at < max_blocks,
        "the hog was not evicted for its CPU: {:#?}",
        engine.drain_log()
    );
    assert!(peak(&want) > 0.01);
    assert_eq!(differing(&got, &want), 0);
}

/// An Eco engine, activated and settled (its active worker live, the standby asleep).
fn settled_eco(config: EngineConfig, tuning: Tuning) -> Engine {
    let engine = Engine::activate_with(config, tuning).expect("activate");
    let start = Instant::now();
    while !engine.settled() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "Eco did not come up"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    engine
}

/// The active worker's slot in Eco, once no audit's or hedge's standby is beside it (it is in
/// the other slot meanwhile, and may even serve).
fn active_slot(engine: &Engine) -> usize {
    let start = Instant::now();
    while engine.worker_pids().len() != 1 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "an audit or a hedge never ended"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    (0..2)
        .find(|&s| engine.worker_pid(s).is_some())
        .expect("the active worker")
}

/// Makes the worker in `slot` hog a core between chunks from now on; returns its pid.
fn start_hog(engine: &Engine, slot: usize) -> Option<u32> {
    engine.inject_fault(slot, FaultKind::HogBetweenChunks as u32, 0);
    engine.worker_pid(slot)
}

/// A C major chord, struck at once.
fn chord() -> Vec<Event> {
    [60u8, 64, 67]
        .into_iter()
        .map(|key| Event {
            offset: 0,
            kind: EventKind::NoteOn { key, velocity: 0.8 },
        })
        .collect()
}
