//! Shared pieces of the engine tests: a deterministic phrase, engine set-up, bit comparison.
#![allow(dead_code)]

use dsp::{Event, EventKind, ParamId, N_PARAMS};
use std::time::{Duration, Instant};
use tandem::engine::{Engine, EngineConfig, ProcessMode, ReferenceEngine, Tuning};

pub const SR: f32 = 48_000.0;

/// A tiny deterministic PRNG (xorshift64*), so every test run plays the same phrase.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// A phrase of notes and parameter ramps, generated block by block.
pub struct Phrase {
    rng: Rng,
    pub params: [f32; N_PARAMS],
    held: Vec<u8>,
    frame: u64,
    events: Vec<Event>,
}

impl Phrase {
    pub fn new(seed: u64) -> Phrase {
        let mut params = [0.0; N_PARAMS];
        for id in ParamId::ALL {
            params[id.index()] = id.info().default;
        }
        Phrase {
            rng: Rng(seed | 1),
            params,
            held: Vec::new(),
            frame: 0,
            events: Vec::new(),
        }
    }

    /// The events and parameter targets of the next block of `n` frames.
    pub fn block(&mut self, n: usize) -> (&[Event], &[f32; N_PARAMS]) {
        self.events.clear();
        // A cutoff ramp and a resonance wobble: parameter automation every block.
        let t = self.frame as f32 / SR;
        self.params[ParamId::Cutoff.index()] = 300.0 + 4000.0 * (0.5 + 0.5 * (t * 0.7).sin());
        self.params[ParamId::Resonance.index()] = 0.3 + 0.2 * (t * 1.3).sin().abs();
        let mut offset = 0u32;
        while (offset as usize) < n {
            offset += self.rng.below(3000) as u32;
            if offset as usize >= n {
                break;
            }
            if self.held.len() > 5 || (!self.held.is_empty() && self.rng.below(2) == 0) {
                let i = self.rng.below(self.held.len() as u64) as usize;
                let key = self.held.swap_remove(i);
                self.events.push(Event {
                    offset,
                    kind: EventKind::NoteOff { key },
                });
            } else {
                let key = 36 + self.rng.below(48) as u8;
                let velocity = 0.3 + 0.7 * self.rng.unit();
                self.held.push(key);
                self.events.push(Event {
                    offset,
                    kind: EventKind::NoteOn { key, velocity },
                });
            }
        }
        self.frame += n as u64;
        (&self.events, &self.params)
    }
}

pub fn config(mode: ProcessMode, max_block: usize, latency: u32) -> EngineConfig {
    EngineConfig {
        sample_rate: SR,
        max_block,
        latency,
        mode,
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

/// Renders `blocks` blocks of `n` frames through both the engine and the reference, calling
/// `between(engine, block_index)` before each block. Returns (engine output, reference output)
/// as interleaved-by-channel vectors.
pub fn render_both(
    engine: &mut Engine,
    seed: u64,
    n: usize,
    blocks: usize,
    latency: u32,
    mut between: impl FnMut(&mut Engine, usize),
) -> (Vec<f32>, Vec<f32>) {
    let mut reference = ReferenceEngine::new(SR, n, latency).unwrap();
    let mut phrase = Phrase::new(seed);
    let (mut got, mut want) = (Vec::new(), Vec::new());
    let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
    for b in 0..blocks {
        between(engine, b);
        let (events, params) = phrase.block(n);
        engine.process(events, params, None, [&mut l, &mut r]);
        got.extend_from_slice(&l);
        got.extend_from_slice(&r);
        reference.process(events, params, None, [&mut l, &mut r]);
        want.extend_from_slice(&l);
        want.extend_from_slice(&r);
    }
    (got, want)
}

/// Number of samples whose bits differ.
pub fn differing(a: &[f32], b: &[f32]) -> usize {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .filter(|(x, y)| x.to_bits() != y.to_bits())
        .count()
}

pub fn peak(a: &[f32]) -> f32 {
    a.iter().fold(0.0f32, |m, s| m.max(s.abs()))
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
