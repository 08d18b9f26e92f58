//! Per-note control: polyphonic modulation and note expressions act on the addressed voice only,
//! voice ends are reported once at the sample the voice stops, and snapshots carry all of it.
//!
//! Two notes are panned hard apart with the pan expression, so the left channel is exactly the
//! first note and the right channel exactly the second: "only that voice changed" is then a
//! bitwise comparison of one channel.

use dsp::{Event, EventKind, Expression, ParamId, Synth, VoiceEnd, VoiceTarget};
use test_support::{differing, SR};

const BLOCK: usize = 256;

fn id(note_id: i32) -> VoiceTarget {
    VoiceTarget {
        note_id: Some(note_id),
        key: None,
        channel: None,
    }
}

fn at(offset: u32, kind: EventKind) -> Event {
    Event { offset, kind }
}

/// Notes 1 (key 48, hard left) and 2 (key 55, hard right) from sample 0, plus `extra` at
/// sample 3000.
fn two_notes(extra: &[EventKind]) -> Vec<(usize, EventKind)> {
    let mut ev = Vec::new();
    for (note_id, key, pan) in [(1, 48, -1.0), (2, 55, 1.0)] {
        ev.push((
            0,
            EventKind::NoteOnId {
                key,
                velocity: 0.8,
                channel: 0,
                note_id,
            },
        ));
        ev.push((
            0,
            EventKind::Expression {
                target: id(note_id),
                kind: Expression::Pan,
                value: pan,
            },
        ));
    }
    ev.extend(extra.iter().map(|k| (3000, *k)));
    ev
}

/// Renders `frames` frames in blocks of `block` with events at absolute samples; returns the
/// audio and every voice end at its absolute sample.
fn render(
    synth: &mut Synth,
    events: &[(usize, EventKind)],
    frames: usize,
    block: usize,
    start: usize,
) -> ([Vec<f32>; 2], Vec<(usize, VoiceEnd)>) {
    let mut out = [vec![0.0; frames], vec![0.0; frames]];
    let mut ends = Vec::new();
    let mut pos = 0;
    while pos < frames {
        let n = block.min(frames - pos);
        let abs = start + pos;
        let block_events: Vec<Event> = events
            .iter()
            .filter(|(t, _)| (abs..abs + n).contains(t))
            .map(|(t, k)| at((t - abs) as u32, *k))
            .collect();
        synth.clear_voice_ends();
        let [l, r] = &mut out;
        synth.render(
            &block_events,
            None,
            [&mut l[pos..pos + n], &mut r[pos..pos + n]],
        );
        ends.extend(
            synth
                .voice_ends()
                .iter()
                .map(|e| (abs + e.offset as usize, *e)),
        );
        pos += n;
    }
    (out, ends)
}

fn synth() -> Synth {
    let mut s = Synth::new(SR, BLOCK).unwrap();
    // Unity output gain, so a channel is exactly the sum of its voices.
    s.set_param(ParamId::MasterGain, 0.0);
    s.set_param(ParamId::Cutoff, 800.0);
    // Pulse, so that its width matters.
    s.set_param(ParamId::Osc1Wave, 1.0);
    s
}

#[test]
fn panned_apart_each_channel_is_one_note() {
    let ([l, r], _) = render(&mut synth(), &two_notes(&[]), 4800, BLOCK, 0);
    assert!(l.iter().any(|&x| x != 0.0) && r.iter().any(|&x| x != 0.0));
    // Only note 1: the right channel is silent.
    let only_first: Vec<_> = two_notes(&[]).into_iter().take(2).collect();
    let ([l1, r1], _) = render(&mut synth(), &only_first, 4800, BLOCK, 0);
    assert!(r1.iter().all(|&x| x == 0.0));
    assert_eq!(differing(&l1, &l), 0);
}

fn changes_only_note_two(kind: EventKind) {
    let (plain, _) = render(&mut synth(), &two_notes(&[]), 9600, BLOCK, 0);
    let (moved, _) = render(&mut synth(), &two_notes(&[kind]), 9600, BLOCK, 0);
    assert_eq!(
        differing(&moved[0], &plain[0]),
        0,
        "note 1 changed: {kind:?}"
    );
    let first = (0..9600).find(|&i| moved[1][i].to_bits() != plain[1][i].to_bits());
    assert!(
        first.is_some_and(|i| i >= 3000),
        "note 2 unchanged or changed early ({first:?}): {kind:?}"
    );
}

#[test]
fn poly_modulation_moves_only_the_addressed_voice() {
    for (param, offset) in [
        (ParamId::Cutoff, 0.3),
        (ParamId::Resonance, 0.5),
        (ParamId::FilterEnvAmount, -0.2),
        (ParamId::OscMix, 0.4),
        (ParamId::Osc1PulseWidth, 0.2),
        (ParamId::Osc1Fine, 0.5),
        (ParamId::Osc2Fine, -0.5),
        (ParamId::NoiseLevel, 0.5),
        (ParamId::SubLevel, 0.5),
        (ParamId::MasterGain, -0.1),
    ] {
        changes_only_note_two(EventKind::PolyMod {
            target: id(2),
            id: param,
            offset,
        });
    }
}

#[test]
fn note_expressions_act_on_the_addressed_voice() {
    for (kind, value) in [
        (Expression::Tuning, 3.0),
        (Expression::Volume, 0.5),
        (Expression::Brightness, 0.9),
        (Expression::Pressure, 1.0),
    ] {
        changes_only_note_two(EventKind::Expression {
            target: id(2),
            kind,
            value,
        });
    }
    // By key and channel, as MIDI polyphonic aftertouch addresses a note.
    changes_only_note_two(EventKind::Expression {
        target: VoiceTarget {
            note_id: None,
            key: Some(55),
            channel: Some(0),
        },
        kind: Expression::Pressure,
        value: 1.0,
    });
}

#[test]
fn events_for_notes_not_sounding_change_nothing() {
    let (plain, _) = render(&mut synth(), &two_notes(&[]), 4800, BLOCK, 0);
    let stray = [
        EventKind::PolyMod {
            target: id(3),
            id: ParamId::Cutoff,
            offset: 1.0,
        },
        EventKind::Expression {
            target: VoiceTarget {
                note_id: None,
                key: Some(60),
                channel: None,
            },
            kind: Expression::Tuning,
            value: 12.0,
        },
        // A parameter that is not poly-modulatable.
        EventKind::PolyMod {
            target: id(2),
            id: ParamId::Polyphony,
            offset: 1.0,
        },
    ];
    let (moved, _) = render(&mut synth(), &two_notes(&stray), 4800, BLOCK, 0);
    assert_eq!(differing(&moved[0], &plain[0]), 0);
    assert_eq!(differing(&moved[1], &plain[1]), 0);
}

#[test]
fn a_voice_end_is_reported_once_at_its_last_sample() {
    let note_off = |key| EventKind::NoteOff { key };
    let mut events = two_notes(&[]);
    events.push((2000, note_off(48)));
    events.push((2500, note_off(55)));
    let mut s = synth();
    s.set_param(ParamId::AmpRelease, 20.0);
    let ([l, r], ends) = render(&mut s, &events, 12_000, BLOCK, 0);
    assert_eq!(ends.len(), 2, "{ends:?}");
    for ((at, end), (note_id, key, channel)) in ends.iter().zip([(1, 48, &l), (2, 55, &r)]) {
        assert_eq!((end.note_id, end.key, end.channel), (note_id, key, 0));
        // The voice's channel is silent from the next sample on, and was not just before.
        assert!(
            channel[at - 100..=*at].iter().any(|&x| x != 0.0),
            "note {note_id} silent before its end"
        );
        assert!(
            channel[at + 1..].iter().all(|&x| x == 0.0),
            "note {note_id}"
        );
    }
    // The same ends at the same samples whatever the block size.
    let mut s = synth();
    s.set_param(ParamId::AmpRelease, 20.0);
    let (_, again) = render(&mut s, &events, 12_000, 37, 0);
    let identity = |ends: &[(usize, VoiceEnd)]| -> Vec<_> {
        ends.iter().map(|(t, e)| (*t, e.note_id, e.key)).collect()
    };
    assert_eq!(identity(&again), identity(&ends));
}

#[test]
fn retrigger_choke_and_reset_end_voices() {
    let on = |key, note_id| EventKind::NoteOnId {
        key,
        velocity: 0.5,
        channel: 1,
        note_id,
    };
    let events = vec![
        (0, on(60, 10)),
        // The same key under a new id: note 10 is over, the voice plays note 11.
        (100, on(60, 11)),
        (200, on(64, 12)),
        (300, EventKind::Choke(id(12))),
        (500, on(67, 13)),
        (600, EventKind::Reset),
    ];
    let (_, ends) = render(&mut synth(), &events, 2000, 64, 0);
    let got: Vec<_> = ends.iter().map(|(t, e)| (e.note_id, *t)).collect();
    let choke_end = 300 + (0.004 * SR) as usize;
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], (10, 100));
    let choked = got[1];
    assert_eq!(choked.0, 12);
    assert!(
        (choke_end - 1..=choke_end + 1).contains(&choked.1),
        "{got:?}"
    );
    assert!(got[2..].contains(&(11, 600)) && got[2..].contains(&(13, 600)));
    assert!(ends.iter().all(|(_, e)| e.channel == 1));
}

#[test]
fn snapshots_carry_offsets_and_expressions() {
    let extra = [
        EventKind::PolyMod {
            target: id(1),
            id: ParamId::Cutoff,
            offset: 0.4,
        },
        EventKind::Expression {
            target: id(2),
            kind: Expression::Tuning,
            value: -2.0,
        },
    ];
    let events = two_notes(&extra);
    // Render past the events (while they still glide), snapshot, continue in a fresh synth.
    let mut a = synth();
    render(&mut a, &events, 3072, BLOCK, 0);
    let mut b = Synth::new(SR, BLOCK).unwrap();
    b.restore(&a.snapshot()).unwrap();
    let (from_a, _) = render(&mut a, &[], 4800, BLOCK, 3072);
    let (from_b, _) = render(&mut b, &[], 4800, BLOCK, 3072);
    assert_eq!(differing(&from_a[0], &from_b[0]), 0);
    assert_eq!(differing(&from_a[1], &from_b[1]), 0);
    // And they were in effect: without them the continuation differs on both sides.
    let mut c = synth();
    render(&mut c, &two_notes(&[]), 3072, BLOCK, 0);
    let (plain, _) = render(&mut c, &[], 4800, BLOCK, 3072);
    assert_ne!(differing(&plain[0], &from_a[0]), 0);
    assert_ne!(differing(&plain[1], &from_a[1]), 0);
}
