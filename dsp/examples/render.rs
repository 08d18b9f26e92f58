//! Renders an 8.5-second demo phrase to a WAV file: a pad playing Am-F-C-G with a slow filter
//! sweep and mod-wheel vibrato, over a gliding pulse-and-sub bass line.
//!
//! ```text
//! cargo run -p dsp --release --example render -- out.wav
//! ```
//!
//! Two `Synth` instances (pad and bass) are driven exactly as the worker drives one: timed
//! events per block, fixed block size. The WAV (16-bit PCM, stereo, 48 kHz) is written by hand.

use dsp::{Event, EventKind, ParamId, Synth};
use std::io::Write;

const SR: f32 = 48_000.0;
const BLOCK: usize = 512;
const SECONDS: f32 = 8.5;
/// 120 BPM: one beat is half a second.
const BEAT: f32 = 0.5;

struct Track {
    synth: Synth,
    /// (frame, event) pairs, sorted by frame.
    events: Vec<(usize, EventKind)>,
}

impl Track {
    fn new(patch: &[(ParamId, f32)]) -> Track {
        let mut synth = Synth::new(SR, BLOCK).expect("valid configuration");
        for &(id, v) in patch {
            synth.set_param(id, v);
        }
        synth.reset(); // start with the smoothers on the patch
        Track {
            synth,
            events: Vec::new(),
        }
    }

    fn at(&mut self, beats: f32, kind: EventKind) {
        self.events.push(((beats * BEAT * SR) as usize, kind));
    }

    fn note(&mut self, beats: f32, len: f32, key: u8, velocity: f32) {
        self.at(beats, EventKind::NoteOn { key, velocity });
        self.at(beats + len, EventKind::NoteOff { key });
    }

    /// Renders one block starting at `start`, adding into `mix`.
    fn render_into(&mut self, start: usize, mix: [&mut [f32]; 2]) {
        let len = mix[0].len();
        let events: Vec<Event> = self
            .events
            .iter()
            .filter(|(f, _)| *f >= start && *f < start + len)
            .map(|&(f, kind)| Event {
                offset: (f - start) as u32,
                kind,
            })
            .collect();
        let mut l = [0.0f32; BLOCK];
        let mut r = [0.0f32; BLOCK];
        self.synth
            .render(&events, None, [&mut l[..len], &mut r[..len]]);
        let [ml, mr] = mix;
        for i in 0..len {
            ml[i] += l[i];
            mr[i] += r[i];
        }
    }
}

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "out.wav".into());

    // Pad: two detuned saws, resonant low-pass swept by automation, slow envelopes.
    let mut pad = Track::new(&[
        (ParamId::Osc2Fine, 9.0),
        (ParamId::Cutoff, 400.0),
        (ParamId::Resonance, 0.55),
        (ParamId::FilterEnvAmount, 12.0),
        (ParamId::FilterAttack, 300.0),
        (ParamId::FilterDecay, 1500.0),
        (ParamId::AmpAttack, 60.0),
        (ParamId::AmpRelease, 700.0),
        (ParamId::AmpSustain, 0.8),
        (ParamId::LfoRate, 5.5),
        (ParamId::LfoToPitch, 0.25),
        (ParamId::MasterGain, -4.0),
    ]);
    let chords: [[u8; 4]; 4] = [
        [57, 60, 64, 69],
        [53, 57, 60, 65],
        [55, 60, 64, 67],
        [55, 59, 62, 67],
    ];
    for (bar, chord) in chords.iter().enumerate() {
        for (i, &key) in chord.iter().enumerate() {
            // A slight strum.
            pad.note(bar as f32 * 4.0 + i as f32 * 0.03, 3.8, key, 0.7);
        }
    }
    // Filter sweep up and back down, one automation point every 1/16 beat.
    for step in 0..=256 {
        let beats = step as f32 * 16.0 / 256.0;
        let x = (std::f32::consts::PI * beats / 16.0).sin();
        let cutoff = 400.0 * 2f32.powf(4.0 * x);
        pad.at(
            beats,
            EventKind::Param {
                id: ParamId::Cutoff,
                value: cutoff,
            },
        );
    }
    // Vibrato in the last bar.
    for step in 0..=16 {
        pad.at(
            12.0 + step as f32 * 0.25,
            EventKind::ModWheel(step as f32 / 16.0),
        );
    }

    // Bass: pulse plus sub, one voice with glide, snappy filter envelope.
    let mut bass = Track::new(&[
        (ParamId::Osc1Wave, 1.0),
        (ParamId::Osc1PulseWidth, 0.3),
        (ParamId::Osc2Wave, 0.0),
        (ParamId::Osc2Octave, -1.0),
        (ParamId::OscMix, 0.35),
        (ParamId::SubLevel, 0.6),
        (ParamId::Cutoff, 220.0),
        (ParamId::Resonance, 0.45),
        (ParamId::FilterEnvAmount, 40.0),
        (ParamId::FilterDecay, 180.0),
        (ParamId::FilterSustain, 0.1),
        (ParamId::AmpAttack, 2.0),
        (ParamId::AmpDecay, 400.0),
        (ParamId::AmpSustain, 0.6),
        (ParamId::AmpRelease, 60.0),
        (ParamId::Glide, 45.0),
        (ParamId::Polyphony, 1.0),
        (ParamId::MasterGain, -1.0),
    ]);
    let roots = [45u8, 41, 48, 43];
    let pattern: [(f32, i8); 8] = [
        (0.0, 0),
        (0.5, 0),
        (1.0, 12),
        (1.5, 0),
        (2.0, 7),
        (2.5, 0),
        (3.0, 10),
        (3.5, 12),
    ];
    for (bar, &root) in roots.iter().enumerate() {
        for (i, &(beat, interval)) in pattern.iter().enumerate() {
            let key = (root as i8 + interval) as u8 - 12;
            let vel = if i % 2 == 0 { 0.95 } else { 0.6 };
            bass.note(bar as f32 * 4.0 + beat, 0.4, key, vel);
        }
    }

    let frames = (SECONDS * SR) as usize;
    let mut left = vec![0.0f32; frames];
    let mut right = vec![0.0f32; frames];
    for track in [&mut pad, &mut bass] {
        track.events.sort_by_key(|e| e.0);
        let mut start = 0;
        while start < frames {
            let len = BLOCK.min(frames - start);
            track.render_into(
                start,
                [
                    &mut left[start..start + len],
                    &mut right[start..start + len],
                ],
            );
            start += len;
        }
    }

    let peak = left
        .iter()
        .chain(&right)
        .fold(0.0f32, |m, x| m.max(x.abs()));
    write_wav(&path, &left, &right)?;
    println!(
        "wrote {path}: {SECONDS} s, 48 kHz stereo 16-bit, peak {:.1} dBFS",
        20.0 * peak.log10()
    );
    Ok(())
}

/// A canonical 44-byte-header PCM WAV.
fn write_wav(path: &str, left: &[f32], right: &[f32]) -> std::io::Result<()> {
    let frames = left.len() as u32;
    let data_len = frames * 4;
    let mut b: Vec<u8> = Vec::with_capacity(44 + data_len as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&2u16.to_le_bytes()); // channels
    b.extend_from_slice(&(SR as u32).to_le_bytes());
    b.extend_from_slice(&(SR as u32 * 4).to_le_bytes()); // byte rate
    b.extend_from_slice(&4u16.to_le_bytes()); // block align
    b.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for (l, r) in left.iter().zip(right) {
        for x in [l, r] {
            let s = (x.clamp(-1.0, 1.0) * 32767.0).round() as i16;
            b.extend_from_slice(&s.to_le_bytes());
        }
    }
    std::fs::File::create(path)?.write_all(&b)
}
