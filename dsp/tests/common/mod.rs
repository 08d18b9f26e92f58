//! Helpers shared by the DSP's integration tests: random performances, and rendering a
//! performance in given block sizes. The PRNG and `peak` come from `test-support`.

#![allow(dead_code, unused_imports)]

use dsp::{Event, EventKind, ParamId, ParamKind, Synth, N_PARAMS};

pub use test_support::{peak, Rng, SR};

/// An event at an absolute frame position of a performance.
#[derive(Clone, Copy, Debug)]
pub struct Timed {
    pub at: usize,
    pub kind: EventKind,
}

/// A random performance over `frames` frames: notes, releases, every parameter (any value in
/// range, including waveform, mode, polyphony and envelope time changes), bend, wheel, pedal,
/// the occasional all-notes-off. Sorted by position.
pub fn random_performance(rng: &mut Rng, frames: usize, density: usize) -> Vec<Timed> {
    let mut ev = Vec::new();
    let n = frames * density / 1000;
    for _ in 0..n {
        let at = rng.below(frames as u64) as usize;
        let kind = match rng.below(100) {
            0..=34 => EventKind::NoteOn {
                key: 36 + rng.below(48) as u8,
                velocity: rng.unit(),
            },
            35..=64 => EventKind::NoteOff {
                key: 36 + rng.below(48) as u8,
            },
            65..=69 => EventKind::PitchBend(rng.unit() * 2.0 - 1.0),
            70..=74 => EventKind::ModWheel(rng.unit()),
            75..=77 => EventKind::Sustain(rng.below(2) == 1),
            78 => EventKind::AllNotesOff,
            _ => {
                let id = ParamId::from_index(rng.below(N_PARAMS as u64) as usize).unwrap();
                let info = id.info();
                let value = info.min + rng.unit() * (info.max - info.min);
                // Keep the output audible most of the time.
                let value = match id {
                    ParamId::Bypass | ParamId::MasterGain => info.default,
                    ParamId::FilterAttack
                    | ParamId::FilterDecay
                    | ParamId::FilterRelease
                    | ParamId::AmpAttack
                    | ParamId::AmpDecay
                    | ParamId::AmpRelease => 1.0 + rng.unit() * 400.0,
                    _ => match info.kind {
                        ParamKind::Toggle => value.round(),
                        _ => value,
                    },
                };
                EventKind::Param { id, value }
            }
        };
        ev.push(Timed { at, kind });
    }
    ev.sort_by_key(|e| e.at);
    ev
}

/// Random block sizes summing to `frames`, each at most `max`.
pub fn random_blocks(rng: &mut Rng, frames: usize, max: usize) -> Vec<usize> {
    let mut blocks = Vec::new();
    let mut left = frames;
    while left > 0 {
        let b = (1 + rng.below(max as u64) as usize).min(left);
        blocks.push(b);
        left -= b;
    }
    blocks
}

/// The events of one block, with offsets relative to its start.
pub fn block_events(perf: &[Timed], start: usize, len: usize) -> Vec<Event> {
    perf.iter()
        .filter(|e| e.at >= start && e.at < start + len)
        .map(|e| Event {
            offset: (e.at - start) as u32,
            kind: e.kind,
        })
        .collect()
}

/// Renders blocks `from..to` of a performance, appending to `out`.
pub fn render_blocks(
    synth: &mut Synth,
    perf: &[Timed],
    blocks: &[usize],
    range: std::ops::Range<usize>,
    out: &mut [Vec<f32>; 2],
) {
    let mut start: usize = blocks[..range.start].iter().sum();
    for &len in &blocks[range] {
        let events = block_events(perf, start, len);
        let mut l = vec![0.0; len];
        let mut r = vec![0.0; len];
        synth.render(&events, None, [&mut l, &mut r]);
        out[0].extend_from_slice(&l);
        out[1].extend_from_slice(&r);
        start += len;
    }
}

/// Renders a whole performance in the given blocks.
pub fn render(synth: &mut Synth, perf: &[Timed], blocks: &[usize]) -> [Vec<f32>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    render_blocks(synth, perf, blocks, 0..blocks.len(), &mut out);
    out
}

/// Index of the first differing sample, comparing bits.
pub fn first_difference(a: &[Vec<f32>; 2], b: &[Vec<f32>; 2]) -> Option<(usize, usize)> {
    for ch in 0..2 {
        assert_eq!(a[ch].len(), b[ch].len());
        if let Some(i) = (0..a[ch].len()).find(|&i| a[ch][i].to_bits() != b[ch][i].to_bits()) {
            return Some((ch, i));
        }
    }
    None
}
