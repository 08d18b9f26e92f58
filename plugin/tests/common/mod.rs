//! Shared pieces of the engine tests: engine set-up and the waits they need. The phrase and
//! the bit comparison come from `test-support`.
#![allow(dead_code, unused_imports)]

use std::time::{Duration, Instant};
use tandem::engine::{
    BlockReport, BlockVoiceEnd, Engine, EngineConfig, EngineEvent, ProcessMode, ReferenceEngine,
    Tuning,
};

pub use test_support::{differing, peak, Phrase, Rng, SR};

pub fn config(mode: ProcessMode, max_block: usize, latency: u32) -> EngineConfig {
    EngineConfig {
        sample_rate: SR,
        max_block,
        latency,
        mode,
        protection: tandem::engine::Protection::Lockstep,
        worker_path: tandem::worker_exe::worker_path().expect("build tandem-worker first"),
    }
}

/// Tuning for tests that compare bits on a loaded machine: no realtime deadline to miss.
pub fn patient() -> Tuning {
    Tuning {
        deadline_fraction: 1.0e6,
        hang_timeout: Duration::from_millis(300),
        ..Tuning::default()
    }
}

pub fn engine(mode: ProcessMode, max_block: usize, latency: u32) -> Engine {
    Engine::activate_with(config(mode, max_block, latency), patient()).expect("activate")
}

/// What [`render_both`] heard from the engine (`got`) and the reference (`want`).
pub struct Both {
    /// The engine's output, each block's left then right channel.
    pub got: Vec<f32>,
    /// The reference's output, laid out as `got`.
    pub want: Vec<f32>,
    /// The engine's voice ends, by the absolute frame of the output they came with.
    pub got_ends: Vec<(u64, BlockVoiceEnd)>,
    /// The reference's voice ends, as `got_ends`.
    pub want_ends: Vec<(u64, BlockVoiceEnd)>,
    /// What the engine said of each block.
    pub reports: Vec<BlockReport>,
}

/// Renders `blocks` blocks of `n` frames through both the engine and the reference, calling
/// `between(engine, block_index)` before each block.
pub fn render_both(
    engine: &mut Engine,
    seed: u64,
    n: usize,
    blocks: usize,
    latency: u32,
    mut between: impl FnMut(&mut Engine, usize),
) -> Both {
    let mut reference = ReferenceEngine::new(SR, n, latency).unwrap();
    let mut phrase = Phrase::new(seed);
    let mut both = Both {
        got: Vec::new(),
        want: Vec::new(),
        got_ends: Vec::new(),
        want_ends: Vec::new(),
        reports: Vec::new(),
    };
    let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
    let at = |b: usize, end: &BlockVoiceEnd| ((b * n) as u64 + end.timing as u64, *end);
    for b in 0..blocks {
        between(engine, b);
        let (events, params) = phrase.block(n);
        both.reports
            .push(engine.process(events, params, None, [&mut l, &mut r]));
        both.got.extend_from_slice(&l);
        both.got.extend_from_slice(&r);
        both.got_ends
            .extend(engine.voice_ends().iter().map(|e| at(b, e)));
        reference.process(events, params, None, [&mut l, &mut r]);
        both.want.extend_from_slice(&l);
        both.want.extend_from_slice(&r);
        both.want_ends
            .extend(reference.voice_ends().iter().map(|e| at(b, e)));
    }
    both
}

/// Waits (bounded, generous: a liveness bound, not a timing assertion) for two verified workers.
pub fn wait_for_lockstep(engine: &mut Engine, n: usize) -> bool {
    let t0 = Instant::now();
    let params = Phrase::new(1).params;
    let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
    while t0.elapsed() < Duration::from_secs(20) {
        if engine.in_lockstep() {
            return true;
        }
        // Keep the stream moving so a newcomer has chunks to verify against.
        engine.process(&[], &params, None, [&mut l, &mut r]);
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// Children of this process running the worker.
pub fn worker_children() -> Vec<u32> {
    let me = std::process::id();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(me) {
            pids.push(pid);
        }
    }
    pids
}

/// What a fault test asserts of a whole render: the reference sounds, and the engine's output
/// and voice ends equal it bit for bit. Returns the log lines of `events` for later messages.
pub fn assert_exact(both: &Both, events: &[EngineEvent]) -> Vec<String> {
    let log: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    assert!(peak(&both.want) > 0.01);
    assert_eq!(
        differing(&both.got, &both.want),
        0,
        "output differs from the reference; log: {log:#?}"
    );
    assert_eq!(both.got_ends, both.want_ends, "voice ends; log: {log:#?}");
    log
}

/// Every process the engine started: its workers and its spares.
pub fn started_pids(events: &[EngineEvent]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::WorkerSpawned { pid, .. } | EngineEvent::SpareSpawned { pid, .. } => {
                Some(*pid)
            }
            _ => None,
        })
        .collect()
}

/// The chunks at which the engine restarted from a fresh state (`EngineEvent::StateLost`).
pub fn state_lost_at(events: &[EngineEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::StateLost { from_chunk } => Some(*from_chunk),
            _ => None,
        })
        .collect()
}
