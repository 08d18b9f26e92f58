//! Deterministic (common-mode) faults: a note that crashes every worker that renders it, twins
//! and rebuilds alike (`FaultKind::CrashOnNote`). The supervisor quarantines that chunk, the
//! workers are rebuilt without its events, and sound resumes: every frame served equals the
//! reference rendered without the poisoned chunk's events.

mod common;
use common::*;
use dsp::{Event, EventKind, ParamId};
use shm::FaultKind;
use std::time::Duration;
use tandem::engine::{Engine, EngineEvent, ProcessMode, ReferenceEngine, Tuning};

/// The key that crashes the workers: outside the phrase's keys (36..84).
const POISON_KEY: u8 = 100;
/// The block (one chunk: blocks here are shorter than a chunk) that plays it.
const POISON_BLOCK: usize = 60;
/// When the fault is armed.
const ARM_BLOCK: usize = 20;

/// What the engine served and the two references heard.
struct Heard {
    /// The engine's output per block (left then right), with its fallback frames.
    got: Vec<(Vec<f32>, u32)>,
    /// The reference without the poisoned chunk's events, laid out as `got`.
    without: Vec<Vec<f32>>,
    /// The reference with every event.
    with: Vec<Vec<f32>>,
    /// The events the poisoned block carried.
    poisoned_events: Vec<Event>,
    log: Vec<EngineEvent>,
}

/// Plays a phrase with the poison note added alone at `POISON_BLOCK`'s start, through the
/// engine and two references, sleeping `pace` between blocks.
fn play(mut engine: Engine, n: usize, latency: u32, blocks: usize, pace: Duration) -> Heard {
    let mut with = ReferenceEngine::new(SR, n, latency).unwrap();
    let mut without = ReferenceEngine::new(SR, n, latency).unwrap();
    let mut phrase = Phrase::new(7);
    let mut heard = Heard {
        got: Vec::new(),
        without: Vec::new(),
        with: Vec::new(),
        poisoned_events: Vec::new(),
        log: Vec::new(),
    };
    let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
    for b in 0..blocks {
        if b == ARM_BLOCK {
            engine.inject_fault(0, FaultKind::CrashOnNote as u32, POISON_KEY as u32);
        }
        let (phrase_events, params) = phrase.block(n);
        let mut events = phrase_events.to_vec();
        if b == POISON_BLOCK {
            let kind = EventKind::NoteOn {
                key: POISON_KEY,
                velocity: 0.9,
            };
            events.insert(0, Event { offset: 0, kind });
            heard.poisoned_events = events.clone();
        }
        let report = engine.process(&events, params, None, [&mut l, &mut r]);
        heard
            .got
            .push(([&l[..], &r[..]].concat(), report.fallback_frames));
        with.process(&events, params, None, [&mut l, &mut r]);
        heard.with.push([&l[..], &r[..]].concat());
        let kept: &[Event] = if b == POISON_BLOCK { &[] } else { &events };
        without.process(kept, params, None, [&mut l, &mut r]);
        heard.without.push([&l[..], &r[..]].concat());
        std::thread::sleep(pace);
    }
    heard.log = engine.drain_events();
    assert!(
        wait_for_lockstep(&mut engine, n),
        "the engine came back to two verified workers; log: {:#?}",
        heard.log
    );
    heard
}

/// The quarantine was declared once, for the poisoned chunk, with exactly its events.
fn assert_quarantined_once(heard: &Heard) {
    let quarantined: Vec<_> = heard
        .log
        .iter()
        .filter_map(|e| match e {
            EngineEvent::ChunkQuarantined {
                chunk,
                dropped,
                dropped_count,
                ..
            } => Some((*chunk, dropped.clone(), *dropped_count)),
            _ => None,
        })
        .collect();
    let events = heard.poisoned_events.clone();
    let count = events.len() as u32;
    assert_eq!(
        quarantined,
        vec![(POISON_BLOCK as u64, events, count)],
        "log: {:#?}",
        heard.log
    );
}

/// Offline, a poisoned chunk costs nothing but its own events: the bounce waits for the
/// rebuild and equals, bit for bit, the reference rendered without that chunk's events.
#[test]
fn a_note_that_crashes_every_worker_is_quarantined_offline() {
    let n = 256;
    let engine = common::engine(ProcessMode::Offline, n, n as u32);
    let heard = play(engine, n, n as u32, 160, Duration::ZERO);
    let got: Vec<f32> = heard.got.iter().flat_map(|(b, _)| b.clone()).collect();
    let without = heard.without.concat();
    let with = heard.with.concat();
    assert!(
        differing(&with, &without) > 0,
        "the poisoned note is audible"
    );
    assert!(peak(&without[without.len() / 2..]) > 0.01);
    let fallback: u32 = heard.got.iter().map(|(_, f)| f).sum();
    assert_eq!(fallback, 0, "log: {:#?}", heard.log);
    assert_eq!(differing(&got, &without), 0, "log: {:#?}", heard.log);
    assert_quarantined_once(&heard);
}

/// In real time at 128-frame blocks and latency 0, the poisoned chunk costs a short declicked
/// gap; every frame served equals the reference without that chunk's events, and sound
/// resumes (the gap's length is the benchmark's to measure, not asserted here).
#[test]
fn a_note_that_crashes_every_worker_is_quarantined_in_real_time() {
    let n = 128;
    let tuning = Tuning {
        deadline_fraction: 0.8,
        ..patient()
    };
    let engine = Engine::activate_with(config(ProcessMode::Realtime, n, 0), tuning).unwrap();
    let blocks = 1200;
    let heard = play(engine, n, 0, blocks, Duration::from_micros(500));
    let mut fallback_blocks = 0;
    for (b, ((got, fallback), want)) in heard.got.iter().zip(&heard.without).enumerate() {
        assert!(got.iter().all(|s| s.is_finite() && s.abs() <= 1.0e3));
        let served = n - *fallback as usize;
        for ch in 0..2 {
            let (got, want) = (&got[ch * n..][..served], &want[ch * n..][..served]);
            assert_eq!(differing(got, want), 0, "block {b}; log: {:#?}", heard.log);
        }
        fallback_blocks += (*fallback > 0) as usize;
    }
    // Sound resumed: the last half second is served in full, audible, and exact.
    let tail = &heard.got[blocks - 200..];
    assert!(tail.iter().all(|(_, fallback)| *fallback == 0));
    let tail_audio: Vec<f32> = tail.iter().flat_map(|(b, _)| b.clone()).collect();
    assert!(peak(&tail_audio) > 0.01);
    assert_quarantined_once(&heard);
    eprintln!("{fallback_blocks} blocks with fallback frames");
}

/// When even the quarantine does not help (the note comes again in the next chunk, which the
/// rebuilds replay before any worker is verified), the workers restart from a fresh state at the
/// next chunk to be posted (`StateLost`). Offline at latency 0, with blocks of two chunks each
/// holding the note: the block the crashes happened in is in no ring (it fades out after the
/// wait bound), and every block after equals a reference activated afresh at the next one.
#[test]
fn a_poison_the_quarantine_cannot_stop_restarts_from_a_fresh_state() {
    let n = 2 * shm::chunk::MAX_CHUNK_FRAMES;
    let tuning = Tuning {
        offline_wait_bound: Duration::from_millis(500),
        ..patient()
    };
    let mut engine = Engine::activate_with(config(ProcessMode::Offline, n, 0), tuning).unwrap();
    let mut reference = ReferenceEngine::new(SR, n, 0).unwrap();
    let mut phrase = Phrase::new(9);
    let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
    let (mut got, mut want) = (Vec::new(), Vec::new());
    let blocks = POISON_BLOCK + 20;
    for b in 0..blocks {
        if b == ARM_BLOCK {
            engine.inject_fault(0, FaultKind::CrashOnNote as u32, POISON_KEY as u32);
        }
        if b == POISON_BLOCK + 1 {
            // The fresh start: the reference too starts over, at this block.
            reference = ReferenceEngine::new(SR, n, 0).unwrap();
        }
        let (phrase_events, params) = phrase.block(n);
        let mut events = phrase_events.to_vec();
        // A smoothed parameter away from its default: a fresh state must start it where a
        // fresh activation does, not where the lost state had it.
        let mut params = *params;
        params[ParamId::Cutoff.index()] = 1500.0;
        let params = &params;
        if b == POISON_BLOCK {
            for offset in [0, shm::chunk::MAX_CHUNK_FRAMES as u32] {
                let kind = EventKind::NoteOn {
                    key: POISON_KEY,
                    velocity: 0.9,
                };
                events.push(Event { offset, kind });
            }
            events.sort_by_key(|e| e.offset);
        }
        if b == POISON_BLOCK + 1 {
            // A note from the fresh start's first frame, so that where the smoothed parameter
            // starts is heard.
            let kind = EventKind::NoteOn {
                key: 60,
                velocity: 0.9,
            };
            events.insert(0, Event { offset: 0, kind });
        }
        let report = engine.process(&events, params, None, [&mut l, &mut r]);
        let fallback = if b == POISON_BLOCK { n as u32 } else { 0 };
        assert_eq!(
            report.fallback_frames,
            fallback,
            "block {b}: {:#?}",
            engine.drain_log()
        );
        got.push([&l[..], &r[..]].concat());
        reference.process(&events, params, None, [&mut l, &mut r]);
        want.push([&l[..], &r[..]].concat());
    }
    let log = engine.drain_events();
    let poisoned = 2 * POISON_BLOCK as u64;
    let quarantined: Vec<u64> = log
        .iter()
        .filter_map(|e| match e {
            EngineEvent::ChunkQuarantined { chunk, .. } => Some(*chunk),
            _ => None,
        })
        .collect();
    assert_eq!(quarantined, [poisoned], "log: {log:#?}");
    let lost = state_lost_at(&log);
    assert_eq!(lost, [poisoned + 2], "log: {log:#?}");
    for b in (0..blocks).filter(|&b| b != POISON_BLOCK) {
        assert_eq!(differing(&got[b], &want[b]), 0, "block {b}; log: {log:#?}");
    }
    assert!(peak(&want[blocks - 1]) > 0.01);
}
