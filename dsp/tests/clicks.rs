//! No clicks: the largest sample-to-sample step stays within what a clean sine at the played
//! pitch and level can produce, across retrigger, release, voice stealing and parameter jumps.
//!
//! A click is a step far above the signal's own slope. With sines (no edges of their own) and
//! the filter open, the steepest legitimate step is the sine's slope, 2 pi f A / fs, plus what
//! the envelopes add; the bound below is 2.5 times the sine's slope at the highest pitch played.
//! A negative control shows the measure does catch a hard cut.

mod common;
use common::*;
use dsp::{EventKind, ParamId, Synth};

/// A patch of pure sines with the filter wide open.
fn sine_synth() -> Synth {
    let mut s = Synth::new(SR, 4096).unwrap();
    for (id, v) in [
        (ParamId::Osc1Wave, 3.0),
        (ParamId::Osc2Wave, 3.0),
        (ParamId::Osc2Fine, 0.0),
        (ParamId::Cutoff, 20_000.0),
        (ParamId::Resonance, 0.0),
        (ParamId::FilterEnvAmount, 0.0),
        (ParamId::KeyTracking, 0.0),
        (ParamId::AmpAttack, 5.0),
        (ParamId::AmpDecay, 100.0),
        (ParamId::AmpSustain, 1.0),
        (ParamId::AmpRelease, 30.0),
        (ParamId::MasterGain, 0.0),
    ] {
        s.set_param(id, v);
    }
    // Start with the smoothers on the patch, not gliding from the default saw patch.
    s.reset();
    s
}

fn on(at: usize, key: u8, velocity: f32) -> Timed {
    Timed {
        at,
        kind: EventKind::NoteOn { key, velocity },
    }
}
fn off(at: usize, key: u8) -> Timed {
    Timed {
        at,
        kind: EventKind::NoteOff { key },
    }
}
fn param(at: usize, id: ParamId, value: f32) -> Timed {
    Timed {
        at,
        kind: EventKind::Param { id, value },
    }
}

fn max_step(out: &[Vec<f32>; 2]) -> f32 {
    out.iter()
        .flat_map(|ch| ch.windows(2).map(|w| (w[1] - w[0]).abs()))
        .fold(0.0, f32::max)
}

/// Renders the performance and returns (max step, peak).
fn measure(synth: &mut Synth, perf: &[Timed], frames: usize) -> (f32, f32) {
    let out = render(synth, perf, &random_blocks(&mut Rng::new(1), frames, 512));
    (max_step(&out), peak(&out[0]).max(peak(&out[1])))
}

/// Bound on a click-free step: 2.5 x the slope of a sine at `hz` with amplitude `peak`.
fn bound(hz: f32, peak: f32) -> f32 {
    2.5 * std::f32::consts::TAU * hz / SR * peak
}

fn hz(key: u8) -> f32 {
    440.0 * 2f32.powf((key as f32 - 69.0) / 12.0)
}

#[test]
fn retrigger_and_release_do_not_click() {
    let mut s = sine_synth();
    let perf = [
        on(0, 57, 1.0),
        on(4800, 57, 0.3), // retrigger louder-to-softer mid-note
        on(7200, 57, 1.0), // and back
        off(12_000, 57),
        on(12_500, 57, 1.0), // retrigger during release
        off(20_000, 57),
    ];
    let (step, pk) = measure(&mut s, &perf, 30_000);
    let b = bound(hz(57), pk);
    eprintln!("retrigger/release: max step {step:.5}, bound {b:.5}, peak {pk:.3}");
    assert!(pk > 0.1);
    assert!(step < b, "max step {step} above {b}");
}

#[test]
fn voice_stealing_does_not_click() {
    for poly in [1.0, 2.0, 3.0] {
        let mut s = sine_synth();
        s.set_param(ParamId::Polyphony, poly);
        let keys = [57u8, 60, 64, 67, 69, 62, 65];
        let mut perf = Vec::new();
        for (i, &k) in keys.iter().enumerate() {
            perf.push(on(2000 + i * 2400, k, 0.9));
        }
        // Also steal by lowering the polyphony while notes sound.
        perf.push(param(20_000, ParamId::Polyphony, 1.0));
        let (step, pk) = measure(&mut s, &perf, 26_000);
        let b = bound(hz(69), pk);
        eprintln!("stealing at polyphony {poly}: max step {step:.5}, bound {b:.5}, peak {pk:.3}");
        assert!(step < b, "polyphony {poly}: max step {step} above {b}");
        assert!(s.active_voices() <= 1);
    }
}

#[test]
fn parameter_jumps_do_not_click() {
    let mut s = sine_synth();
    let perf = [
        on(0, 57, 1.0),
        param(4000, ParamId::Osc1Wave, 2.0), // sine -> triangle (no edges)
        param(6000, ParamId::MasterGain, -60.0),
        param(7000, ParamId::MasterGain, 6.0),
        param(9000, ParamId::Cutoff, 200.0),
        param(11_000, ParamId::Cutoff, 20_000.0),
        param(13_000, ParamId::FilterMode, 2.0),
        param(15_000, ParamId::FilterMode, 0.0),
        param(17_000, ParamId::OscMix, 1.0),
        param(19_000, ParamId::Osc2Octave, 1.0),
        param(21_000, ParamId::AmpSustain, 0.2),
        param(23_000, ParamId::Bypass, 1.0),
        param(25_000, ParamId::Bypass, 0.0),
        Timed {
            at: 27_000,
            kind: EventKind::PitchBend(1.0),
        },
    ];
    let (step, pk) = measure(&mut s, &perf, 30_000);
    // Highest pitch reached: A3 up an octave (osc 2) and bent up 2 semitones.
    let b = bound(hz(57 + 14), pk);
    eprintln!("parameter jumps: max step {step:.5}, bound {b:.5}, peak {pk:.3}");
    assert!(step < b, "max step {step} above {b}");
}

#[test]
fn the_measure_catches_a_hard_cut() {
    // Negative control: a Reset mid-note cuts the sound in one sample.
    let mut s = sine_synth();
    let perf = [
        on(0, 57, 1.0),
        Timed {
            at: 4801,
            kind: EventKind::Reset,
        },
    ];
    let out = render(&mut s, &perf, &[3000, 3000]);
    let (step, pk) = (max_step(&out), peak(&out[0]));
    eprintln!(
        "hard cut: max step {step:.5}, bound {:.5}",
        bound(hz(57), pk)
    );
    assert!(
        step > 5.0 * bound(hz(57), pk),
        "hard cut of {step} not detected"
    );
}
