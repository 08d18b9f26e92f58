//! What Tandem's tests and benchmarks share, so each exists once: the tests' PRNG, the
//! parameters at their defaults, a deterministic phrase to play, and bit-level comparisons.
//!
//! Dev-only: the crates use it from `[dev-dependencies]` (and `xtask`, itself a dev tool), the
//! plugin and the worker never link it. Tests compare bits, never "close enough", so the
//! comparisons here are on `f32::to_bits`.

use dsp::{Event, EventKind, ParamId, N_PARAMS};

/// The sample rate the tests play at.
pub const SR: f32 = 48_000.0;

/// xorshift64*: the tests' own seeded randomness, independent of the synth's, so every run plays
/// the same notes.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose stream depends on every bit of `seed` (0 included).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `0.0..1.0`, 24 bits of resolution.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Every parameter at its default, indexed by [`ParamId::index`].
pub fn default_params() -> [f32; N_PARAMS] {
    let mut params = [0.0; N_PARAMS];
    for id in ParamId::ALL {
        params[id.index()] = id.info().default;
    }
    params
}

/// A phrase of random notes (at most six held) and parameter automation every block (a cutoff
/// ramp and a resonance wobble), generated block by block; the same seed plays the same phrase
/// in any block sizes up to the note spacing.
pub struct Phrase {
    rng: Rng,
    /// Parameter targets of the current block.
    pub params: [f32; N_PARAMS],
    held: Vec<u8>,
    frame: u64,
    events: Vec<Event>,
}

impl Phrase {
    /// The phrase of `seed`.
    pub fn new(seed: u64) -> Phrase {
        Phrase {
            rng: Rng::new(seed),
            params: default_params(),
            held: Vec::new(),
            frame: 0,
            events: Vec::new(),
        }
    }

    /// The events and parameter targets of the next block of `n` frames.
    pub fn block(&mut self, n: usize) -> (&[Event], &[f32; N_PARAMS]) {
        self.events.clear();
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

/// Number of samples whose bits differ (the slices have the same length).
pub fn differing(a: &[f32], b: &[f32]) -> usize {
    assert_eq!(a.len(), b.len(), "comparing renders of different lengths");
    a.iter()
        .zip(b)
        .filter(|(x, y)| x.to_bits() != y.to_bits())
        .count()
}

/// The largest magnitude in `x`.
pub fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, &y| m.max(y.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_and_another_differs() {
        let take = |seed| {
            let mut rng = Rng::new(seed);
            (0..8).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(take(7), take(7));
        assert_ne!(take(7), take(8));
        assert_ne!(take(0), vec![0; 8]);
    }

    #[test]
    fn the_phrase_plays_notes() {
        let mut phrase = Phrase::new(3);
        // A note event every 1500 frames on average: about 68 events in 100 000 frames.
        let notes: usize = (0..400)
            .map(|_| {
                let (events, _) = phrase.block(256);
                events
                    .iter()
                    .filter(|e| matches!(e.kind, EventKind::NoteOn { .. }))
                    .count()
            })
            .sum();
        assert!(notes > 10, "{notes} notes in 400 blocks");
    }
}
