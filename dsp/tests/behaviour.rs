//! What a player hears: pitch, bend, glide, velocity, pedal, polyphony, the LFO's mod-wheel
//! scaling, the input and bypass, and robustness to bad events and extreme configurations.

mod common;
use common::*;
use dsp::{Event, EventKind, ParamId, Synth};

fn synth_with(params: &[(ParamId, f32)]) -> Synth {
    let mut s = Synth::new(SR, 1024).unwrap();
    for &(id, v) in params {
        s.set_param(id, v);
    }
    s.reset();
    s
}

/// Pure sine patch, filter open, instant envelopes.
fn sine() -> Vec<(ParamId, f32)> {
    vec![
        (ParamId::Osc1Wave, 3.0),
        (ParamId::Osc2Wave, 3.0),
        (ParamId::Osc2Fine, 0.0),
        (ParamId::Cutoff, 20_000.0),
        (ParamId::Resonance, 0.0),
        (ParamId::FilterEnvAmount, 0.0),
        (ParamId::KeyTracking, 0.0),
        (ParamId::AmpAttack, 1.0),
        (ParamId::AmpSustain, 1.0),
        (ParamId::AmpRelease, 10.0),
    ]
}

fn at(at: usize, kind: EventKind) -> Timed {
    Timed { at, kind }
}

/// Frequency from rising zero crossings, interpolated, over `x`.
fn frequency(x: &[f32]) -> f32 {
    let mut first = None;
    let mut last = 0.0;
    let mut count = 0;
    for i in 1..x.len() {
        if x[i - 1] < 0.0 && x[i] >= 0.0 {
            let t = (i - 1) as f32 + x[i - 1] / (x[i - 1] - x[i]);
            if first.is_none() {
                first = Some(t);
            } else {
                count += 1;
            }
            last = t;
        }
    }
    count as f32 * SR / (last - first.unwrap())
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|&y| y * y).sum::<f32>() / x.len() as f32).sqrt()
}

fn note_on(key: u8, velocity: f32) -> EventKind {
    EventKind::NoteOn { key, velocity }
}

#[test]
fn pitch_tuning_and_bend() {
    type Case<'a> = (&'a [(ParamId, f32)], EventKind, f32);
    let cases: [Case; 5] = [
        (&[], EventKind::PitchBend(0.0), 440.0),
        (
            &[],
            EventKind::PitchBend(1.0),
            440.0 * 2f32.powf(2.0 / 12.0),
        ),
        (
            &[],
            EventKind::PitchBend(-1.0),
            440.0 * 2f32.powf(-2.0 / 12.0),
        ),
        (
            &[(ParamId::Osc1Octave, -1.0), (ParamId::Osc1Semitone, 7.0)],
            EventKind::PitchBend(0.0),
            440.0 * 2f32.powf(-5.0 / 12.0),
        ),
        (
            &[(ParamId::Osc1Fine, 50.0)],
            EventKind::PitchBend(0.0),
            440.0 * 2f32.powf(0.5 / 12.0),
        ),
    ];
    for (extra, bend, want) in cases {
        let mut p = sine();
        p.push((ParamId::OscMix, 0.0));
        p.extend_from_slice(extra);
        let mut s = synth_with(&p);
        let perf = [at(0, bend), at(0, note_on(69, 1.0))];
        let out = render(&mut s, &perf, &[1000; 48]);
        let got = frequency(&out[0][4800..]);
        assert!(
            (got / want - 1.0).abs() < 2e-4,
            "{extra:?} {bend:?}: {got} Hz, want {want} Hz"
        );
    }
}

#[test]
fn glide_moves_from_the_previous_note() {
    let mut p = sine();
    p.push((ParamId::Glide, 100.0));
    let mut s = synth_with(&p);
    let perf = [
        at(0, note_on(57, 1.0)),
        at(4800, EventKind::NoteOff { key: 57 }),
        at(9600, note_on(69, 1.0)),
    ];
    let out = render(&mut s, &perf, &[1000; 40]);
    // Just after the second note starts, it is still near 220 Hz; 300 ms later it is at 440.
    let early = frequency(&out[0][9600 + 240..9600 + 960]);
    let late = frequency(&out[0][9600 + 14_400..]);
    assert!(early < 300.0, "glide too fast: {early} Hz");
    assert!(
        (late / 440.0 - 1.0).abs() < 1e-3,
        "glide does not arrive: {late} Hz"
    );
}

#[test]
fn velocity_scales_level() {
    let level = |v: f32| {
        let mut s = synth_with(&sine());
        let out = render(&mut s, &[at(0, note_on(69, v))], &[1000; 10]);
        rms(&out[0][2000..])
    };
    let (soft, loud) = (level(0.1), level(1.0));
    assert!(loud > 2.0 * soft && soft > 0.0, "soft {soft}, loud {loud}");
}

#[test]
fn sustain_pedal_holds_released_notes() {
    let mut s = synth_with(&sine());
    let perf = [
        at(0, EventKind::Sustain(true)),
        at(0, note_on(69, 1.0)),
        at(1000, EventKind::NoteOff { key: 69 }),
        at(20_000, EventKind::Sustain(false)),
    ];
    let out = render(&mut s, &perf, &[1000; 30]);
    assert!(
        rms(&out[0][15_000..20_000]) > 0.05,
        "pedal did not hold the note"
    );
    assert!(peak(&out[0][25_000..]) < 1e-4, "pedal up did not release");
    assert_eq!(s.active_voices(), 0);
}

#[test]
fn polyphony_is_respected() {
    let mut s = synth_with(&[(ParamId::Polyphony, 16.0)]);
    let perf: Vec<Timed> = (0..24)
        .map(|k| at(k * 10, note_on(40 + k as u8, 0.8)))
        .collect();
    let mut out = [Vec::new(), Vec::new()];
    render_blocks(&mut s, &perf, &[480; 10], 0..1, &mut out);
    // 24 notes in 10 ms: 16 live plus up to 8 fading.
    assert!(s.active_voices() <= 24);
    render_blocks(&mut s, &perf, &[480; 10], 1..10, &mut out);
    assert_eq!(s.active_voices(), 16);
    s.set_param(ParamId::Polyphony, 32.0);
    // A full 32-note chord on top of the 16 held notes: 16 of the 48 are stolen and fade out in
    // spare voices, then 32 remain.
    let perf: Vec<Timed> = (0..32).map(|k| at(0, note_on(80 + k as u8, 0.8))).collect();
    render(&mut s, &perf, &[48]);
    assert_eq!(
        s.active_voices(),
        48,
        "16 stolen voices should still be fading"
    );
    render(&mut s, &[], &[1000]);
    assert_eq!(s.active_voices(), 32);
}

#[test]
fn mod_wheel_scales_lfo_depth() {
    let run = |wheel: f32, depth: f32| {
        let mut s = synth_with(&[(ParamId::LfoToPitch, depth), (ParamId::LfoToCutoff, 24.0)]);
        let perf = [at(0, EventKind::ModWheel(wheel)), at(0, note_on(60, 1.0))];
        render(&mut s, &perf, &[1000; 12])
    };
    // With the wheel down, the LFO depth has no effect at all.
    assert_eq!(first_difference(&run(0.0, 0.0), &run(0.0, 12.0)), None);
    assert!(first_difference(&run(1.0, 0.0), &run(1.0, 12.0)).is_some());
}

#[test]
fn input_is_voiced_and_bypass_passes_it_dry() {
    let n = 24_000;
    let inp: Vec<f32> = (0..n).map(|i| 0.5 * (i as f32 * 0.05).sin()).collect();
    let run = |params: &[(ParamId, f32)], events: &[Event]| {
        let mut s = synth_with(params);
        let mut out = [vec![0.0; n], vec![0.0; n]];
        let mut start = 0;
        while start < n {
            let len = 1000.min(n - start);
            let ev: Vec<Event> = events
                .iter()
                .filter(|e| e.offset as usize >= start && (e.offset as usize) < start + len)
                .map(|e| Event {
                    offset: e.offset - start as u32,
                    kind: e.kind,
                })
                .collect();
            let [l, r] = &mut out;
            s.render(
                &ev,
                Some([&inp[start..start + len], &inp[start..start + len]]),
                [&mut l[start..start + len], &mut r[start..start + len]],
            );
            start += len;
        }
        out
    };
    let note = [Event {
        offset: 0,
        kind: note_on(60, 1.0),
    }];
    // Input alone, no notes: silence (the input goes through the voices).
    let silent = run(&[(ParamId::InputLevel, 1.0)], &[]);
    assert_eq!(peak(&silent[0]), 0.0);
    // With a note, the input is heard through that voice's filter and amplifier.
    let with = run(&[(ParamId::InputLevel, 1.0)], &note);
    let without = run(&[(ParamId::InputLevel, 0.0)], &note);
    assert!(first_difference(&with, &without).is_some());
    // Bypass on: exactly the dry input once the crossfade is over.
    let bypass = run(&[(ParamId::Bypass, 1.0)], &note);
    for ch in &bypass {
        assert_eq!(&ch[..], &inp[..]);
    }
    // Bypass switched on mid-way crossfades to the dry input within a few milliseconds.
    let ev = [
        note[0],
        Event {
            offset: 12_000,
            kind: EventKind::Param {
                id: ParamId::Bypass,
                value: 1.0,
            },
        },
    ];
    let xf = run(&[], &ev);
    assert_eq!(&xf[0][20_000..], &inp[20_000..]);
}

#[test]
fn bad_events_are_ignored() {
    let mut s = Synth::new(SR, 64).unwrap();
    let bad = [
        Event {
            offset: 0,
            kind: EventKind::NoteOn {
                key: 200,
                velocity: 1.0,
            },
        },
        Event {
            offset: 1,
            kind: EventKind::NoteOn {
                key: 60,
                velocity: f32::NAN,
            },
        },
        Event {
            offset: 2,
            kind: EventKind::PitchBend(f32::INFINITY),
        },
        Event {
            offset: 3,
            kind: EventKind::ModWheel(-3.0),
        },
        Event {
            offset: 4,
            kind: EventKind::Param {
                id: ParamId::Cutoff,
                value: f32::NAN,
            },
        },
        Event {
            offset: 64,
            kind: note_on(60, 1.0),
        }, // offset == frames
        Event {
            offset: u32::MAX,
            kind: note_on(61, 1.0),
        },
    ];
    let mut l = vec![0.0; 64];
    let mut r = vec![0.0; 64];
    s.render(&bad, None, [&mut l, &mut r]);
    assert_eq!(peak(&l), 0.0);
    assert_eq!(s.active_voices(), 0);
    // Only time has passed: a fresh synth rendering nothing is in the same state.
    let mut fresh = Synth::new(SR, 64).unwrap();
    fresh.render(&[], None, [&mut l, &mut r]);
    assert!(fresh.snapshot() == s.snapshot());
    // Unsorted events do not panic; empty blocks are fine.
    let unsorted = [
        Event {
            offset: 10,
            kind: note_on(60, 1.0),
        },
        Event {
            offset: 2,
            kind: EventKind::NoteOff { key: 60 },
        },
    ];
    s.render(&unsorted, None, [&mut l, &mut r]);
    s.render(&[], None, [&mut [], &mut []]);
    // Out-of-range parameter values are clamped.
    s.set_param(ParamId::Cutoff, 1e9);
    assert_eq!(s.param(ParamId::Cutoff), 20_000.0);
    s.set_param(ParamId::Polyphony, 7.6);
    assert_eq!(s.param(ParamId::Polyphony), 8.0);
}

#[test]
#[should_panic]
fn oversized_block_is_a_programmer_error() {
    let mut s = Synth::new(SR, 64).unwrap();
    let mut l = vec![0.0; 65];
    let mut r = vec![0.0; 65];
    s.render(&[], None, [&mut l, &mut r]);
}

#[test]
fn extreme_sample_rates_stay_finite_and_bounded() {
    // The range hosts and validators use: from odd low rates to 1.23 MHz.
    for sr in [
        1_000.0,
        1_234.567_7,
        8_000.0,
        384_000.0,
        768_000.0,
        1_234_567.8,
    ] {
        let mut s = Synth::new(sr, 2048).unwrap();
        let frames = (sr * 0.25) as usize;
        let mut rng = Rng::new(sr as u64);
        let perf = random_performance(&mut rng, frames, 100_000 / sr as usize + 5);
        let out = render(&mut s, &perf, &random_blocks(&mut rng, frames, 2048));
        let pk = peak(&out[0]).max(peak(&out[1]));
        assert!(out[0].iter().chain(&out[1]).all(|x| x.is_finite()), "{sr}");
        assert!(pk < 8.0, "{sr}: peak {pk}");
    }
}

#[test]
fn default_patch_chord_has_sensible_level() {
    let mut s = Synth::new(SR, 1024).unwrap();
    let perf: Vec<Timed> = [48u8, 55, 60, 64]
        .iter()
        .map(|&k| at(0, note_on(k, 0.8)))
        .collect();
    let out = render(&mut s, &perf, &[1000; 24]);
    let (pk, level) = (peak(&out[0]), rms(&out[0][4800..]));
    eprintln!("default patch, 4-note chord: peak {pk:.3}, rms {level:.3}");
    assert!(pk < 1.0 && level > 0.02, "peak {pk}, rms {level}");
    // Stereo: the voices are spread, so the channels differ.
    assert!(first_difference(
        &[out[0].clone(), out[0].clone()],
        &[out[0].clone(), out[1].clone()]
    )
    .is_some());
}
