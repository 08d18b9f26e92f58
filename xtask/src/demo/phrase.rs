//! The demo's music: ten seconds of chords and an arpeggio with the filter swept by automation,
//! the mod wheel brought in half way and a pitch bend near the end. Everything is a function of
//! the absolute frame, so the engine and the in-process reference get identical input.

use dsp::{Event, EventKind, ParamId, N_PARAMS};

/// One scheduled event at an absolute frame.
#[derive(Clone, Copy, Debug)]
pub struct Timed {
    /// Absolute frame.
    pub frame: u64,
    /// What happens.
    pub kind: EventKind,
}

/// The whole phrase.
pub struct Phrase {
    /// Sample rate it was written for.
    pub sample_rate: f32,
    /// Length in frames.
    pub frames: u64,
    /// Events sorted by frame.
    pub events: Vec<Timed>,
}

impl Phrase {
    /// The demo phrase, `seconds` long at `sample_rate`.
    pub fn demo(sample_rate: f32, seconds: f64) -> Phrase {
        let sr = f64::from(sample_rate);
        let frames = (seconds * sr) as u64;
        let at = |t: f64| (t * sr) as u64;
        let beat = 0.5; // 120 bpm
        let mut events = Vec::new();
        let mut note = |start: f64, length: f64, key: u8, velocity: f32| {
            if start < seconds {
                events.push(Timed {
                    frame: at(start),
                    kind: EventKind::NoteOn { key, velocity },
                });
                events.push(Timed {
                    frame: at((start + length).min(seconds - 0.01)),
                    kind: EventKind::NoteOff { key },
                });
            }
        };
        // A minor, F, C, G: one chord per bar (two seconds), an arpeggio in sixteenths on top.
        let chords: [[u8; 3]; 4] = [[57, 60, 64], [53, 57, 60], [48, 52, 55], [55, 59, 62]];
        let mut bar = 0;
        while (bar as f64) * 4.0 * beat < seconds {
            let start = bar as f64 * 4.0 * beat;
            let chord = chords[bar % chords.len()];
            for key in chord {
                note(start, 4.0 * beat - 0.1, key - 12, 0.55);
            }
            for step in 0..16 {
                let key = chord[step % 3] + 12 * (1 + (step / 6) as u8 % 2);
                let velocity = if step % 4 == 0 { 0.9 } else { 0.6 };
                note(start + step as f64 * beat / 4.0, beat / 5.0, key, velocity);
            }
            bar += 1;
        }
        // Mod wheel (LFO depth) in from 4 s to 6 s; a two-second bend up and back from 8 s.
        for i in 0..=20 {
            let t = 4.0 + 2.0 * f64::from(i) / 20.0;
            events.push(Timed {
                frame: at(t),
                kind: EventKind::ModWheel(i as f32 / 20.0),
            });
        }
        for i in 0..=40 {
            let t = 8.0 + 2.0 * f64::from(i) / 40.0;
            let bend = (std::f64::consts::PI * f64::from(i) / 40.0).sin() as f32;
            events.push(Timed {
                frame: at(t),
                kind: EventKind::PitchBend(bend),
            });
        }
        events.retain(|e| e.frame < frames);
        events.sort_by_key(|e| e.frame);
        Phrase {
            sample_rate,
            frames,
            events,
        }
    }

    /// The events in `[start, start + n)`, as block-relative synth events, into `out`.
    pub fn block_events(&self, start: u64, n: usize, out: &mut Vec<Event>) {
        out.clear();
        let end = start + n as u64;
        let first = self.events.partition_point(|e| e.frame < start);
        for e in self.events[first..].iter().take_while(|e| e.frame < end) {
            out.push(Event {
                offset: (e.frame - start) as u32,
                kind: e.kind,
            });
        }
    }

    /// The cutoff automation in Hz at `frame`: a slow sweep between 250 Hz and 6 kHz.
    pub fn cutoff_at(&self, frame: u64) -> f32 {
        let t = frame as f64 / f64::from(self.sample_rate);
        let x = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * t / 5.0).cos();
        (250.0 * (6000.0f64 / 250.0).powf(x)) as f32
    }

    /// Every parameter's target for a block starting at `frame` (the patch plus automation).
    pub fn params_at(&self, frame: u64) -> [f32; N_PARAMS] {
        let mut params = test_support::default_params();
        params[ParamId::Osc2Wave.index()] = 1.0; // pulse
        params[ParamId::Osc2Octave.index()] = -1.0;
        params[ParamId::SubLevel.index()] = 0.3;
        params[ParamId::Resonance.index()] = 0.55;
        params[ParamId::FilterEnvAmount.index()] = 30.0;
        params[ParamId::AmpRelease.index()] = 250.0;
        params[ParamId::LfoRate.index()] = 5.5;
        params[ParamId::LfoToCutoff.index()] = 12.0;
        params[ParamId::MasterGain.index()] = -9.0;
        params[ParamId::Cutoff.index()] = self.cutoff_at(frame);
        params
    }
}
