//! A simulated host for the benchmarks: a period clock, a deterministic phrase, and a recording
//! that can be replayed through the in-process reference to count differing frames.

use anyhow::{Context, Result};
use dsp::{Event, EventKind, ParamId, N_PARAMS};
use std::path::PathBuf;
use tandem::engine::{Engine, ReferenceEngine};

/// Builds the release worker the benchmarks spawn and returns its path.
pub fn build_worker() -> Result<PathBuf> {
    crate::util::run(std::process::Command::new(crate::util::cargo()).args([
        "build",
        "--release",
        "-p",
        "sandbox-worker",
        "--bin",
        "tandem-worker",
    ]))?;
    let path = crate::util::cargo_target_dir()?.join("release/tandem-worker");
    path.is_file()
        .then_some(path.clone())
        .with_context(|| format!("{} was not built", path.display()))
}

/// CLOCK_MONOTONIC now, in nanoseconds (the clock the engine's events use).
pub fn now_ns() -> u64 {
    shm::futex::monotonic_ns()
}

/// Sleeps until the absolute CLOCK_MONOTONIC time `t_ns` (no drift across periods).
pub fn sleep_until(t_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (t_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (t_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: clock_nanosleep reads the timespec we own; a null remainder is allowed with
    // TIMER_ABSTIME.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

/// Asks for SCHED_FIFO for the calling thread, as a DAW's audio thread has; true if granted.
pub fn try_realtime_priority() -> bool {
    let param = libc::sched_param { sched_priority: 20 };
    // SAFETY: sched_setscheduler on the calling thread (0) with a param we own.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
}

/// A 16-voice passage that keeps every voice busy: chords of eight notes re-struck every half
/// second, a bass line, and cutoff/resonance automation every block. Deterministic.
pub struct Phrase {
    sample_rate: f32,
    frame: u64,
    /// Parameter targets of the current block.
    pub params: [f32; N_PARAMS],
    events: Vec<Event>,
    held: Vec<u8>,
    step: u64,
}

impl Phrase {
    /// A phrase at `sample_rate`.
    pub fn new(sample_rate: f32) -> Phrase {
        let mut params = [0.0; N_PARAMS];
        for id in ParamId::ALL {
            params[id.index()] = id.info().default;
        }
        params[ParamId::Polyphony.index()] = 16.0;
        Phrase {
            sample_rate,
            frame: 0,
            params,
            events: Vec::with_capacity(64),
            held: Vec::with_capacity(16),
            step: 0,
        }
    }

    /// Events and parameter targets for the next block of `n` frames.
    pub fn block(&mut self, n: usize) -> (&[Event], &[f32; N_PARAMS]) {
        self.events.clear();
        let t = self.frame as f32 / self.sample_rate;
        self.params[ParamId::Cutoff.index()] = 400.0 + 5000.0 * (0.5 + 0.5 * (t * 0.9).sin());
        self.params[ParamId::Resonance.index()] = 0.35 + 0.25 * (t * 1.7).sin().abs();
        let stride = (self.sample_rate / 2.0) as u64;
        let end = self.frame + n as u64;
        let mut next = self.step * stride;
        while next < end {
            if next >= self.frame {
                let offset = (next - self.frame) as u32;
                for key in self.held.drain(..) {
                    self.events.push(Event {
                        offset,
                        kind: EventKind::NoteOff { key },
                    });
                }
                const CHORDS: [[u8; 4]; 4] = [
                    [0, 4, 7, 11],
                    [5, 9, 12, 16],
                    [7, 11, 14, 17],
                    [2, 5, 9, 12],
                ];
                let chord = CHORDS[(self.step % 4) as usize];
                for (i, base) in [48u8, 60].into_iter().enumerate() {
                    for (j, k) in chord.iter().enumerate() {
                        let key = base + k;
                        let velocity = 0.5 + 0.1 * ((i * 4 + j) % 5) as f32;
                        self.events.push(Event {
                            offset,
                            kind: EventKind::NoteOn { key, velocity },
                        });
                        self.held.push(key);
                    }
                }
            }
            self.step += 1;
            next = self.step * stride;
        }
        self.frame = end;
        (&self.events, &self.params)
    }
}

/// Everything a host fed the engine and everything it got back, for replay against the
/// reference afterwards.
pub struct Recording {
    blocks: Vec<(Vec<Event>, [f32; N_PARAMS])>,
    out: [Vec<f32>; 2],
}

impl Recording {
    /// An empty recording with room for `frames` frames.
    pub fn with_capacity(frames: usize) -> Recording {
        Recording {
            blocks: Vec::with_capacity(frames / 32 + 1),
            out: [Vec::with_capacity(frames), Vec::with_capacity(frames)],
        }
    }

    /// Plays one block through `engine` and records it.
    pub fn process(
        &mut self,
        engine: &mut Engine,
        phrase: &mut Phrase,
        out: [&mut [f32]; 2],
    ) -> u32 {
        let n = out[0].len();
        let (events, params) = phrase.block(n);
        let [l, r] = out;
        let report = engine.process(events, params, None, [&mut *l, &mut *r]);
        self.blocks.push((events.to_vec(), *params));
        self.out[0].extend_from_slice(l);
        self.out[1].extend_from_slice(r);
        report.fallback_frames
    }

    /// Frames (either channel) that differ from the in-process reference render.
    pub fn differing_frames(&self, sample_rate: f32, block: usize, latency: u32) -> Result<u64> {
        let mut reference = ReferenceEngine::new(sample_rate, block, latency)?;
        let (mut l, mut r) = (vec![0.0; block], vec![0.0; block]);
        let mut frame = 0usize;
        let mut differing = 0u64;
        for (events, params) in &self.blocks {
            reference.process(events, params, None, [&mut l, &mut r]);
            for k in 0..block {
                let same = self.out[0][frame + k].to_bits() == l[k].to_bits()
                    && self.out[1][frame + k].to_bits() == r[k].to_bits();
                differing += (!same) as u64;
            }
            frame += block;
        }
        Ok(differing)
    }
}
