//! Tandem.clap as an expressive CLAP instrument in a real host (clack-host): polyphonic and
//! monophonic modulation, note expressions, note-end events, voice info, remote controls, tail.
//!
//! Two held notes are panned hard apart with the pan note expression, so the left channel is
//! exactly the first note and the right channel exactly the second: "acts on one note only" is
//! a bitwise comparison of one channel. Needs `cargo xtask bundle tandem --release` first.

use clack_host::events::event_types::NoteExpressionType;
use dsp::{Event, EventKind, Synth};
use tandem_tests::{
    isolated_clap, load_entry, serial, Instance, Killer, Note, NoteControl, NoteEnd, Phrase,
    Render, RenderSetup, SAMPLE_RATE,
};

const SECOND: u64 = SAMPLE_RATE as u64;

/// Notes 0 (key 48, hard left) and 1 (key 55, hard right), held for 1.5 s of 2 s, plus
/// `controls` at 0.5 s.
fn two_notes(controls: Vec<NoteControl>) -> Phrase {
    let note = |key| Note {
        start: 0,
        length: SECOND * 3 / 2,
        key,
        velocity: 0.8,
    };
    let pan = |note, value| {
        (
            0,
            NoteControl::Expression {
                note,
                kind: NoteExpressionType::Pan,
                value,
            },
        )
    };
    let mut phrase = Phrase {
        frames: 2 * SECOND,
        notes: vec![note(48), note(55)],
        controls: vec![pan(0, 0.0), pan(1, 1.0)],
        ..Phrase::default()
    };
    phrase
        .controls
        .extend(controls.into_iter().map(|c| (SECOND / 2, c)));
    phrase
}

fn render(phrase: &Phrase) -> Render {
    let entry = load_entry(isolated_clap());
    Instance::new(&entry).render(RenderSetup::offline(256), phrase, |_| {})
}

fn first_difference(a: &[f32], b: &[f32]) -> Option<usize> {
    (0..a.len().max(b.len()))
        .find(|&i| a.get(i).map(|x| x.to_bits()) != b.get(i).map(|x| x.to_bits()))
}

/// `control` on note 1 leaves note 0 (the left channel) bit for bit and changes note 1 from
/// 0.5 s on. Returns (plain, controlled).
fn acts_on_note_one_only(control: NoteControl) -> (Render, Render) {
    let plain = render(&two_notes(vec![]));
    let controlled = render(&two_notes(vec![control.clone()]));
    assert!(plain.rms() > 1e-3);
    assert_eq!(
        first_difference(&plain.left, &controlled.left),
        None,
        "note 0 changed: {control:?}"
    );
    let changed = first_difference(&plain.right, &controlled.right);
    assert!(
        changed.is_some_and(|f| f as u64 >= SECOND / 2),
        "note 1 unchanged or changed early ({changed:?}): {control:?}"
    );
    (plain, controlled)
}

fn centroid(signal: &[f32]) -> f64 {
    tandem_tests::spectral_centroid(signal, SAMPLE_RATE)
}

#[test]
fn poly_modulation_changes_only_its_note() {
    let _guard = serial();
    let (plain, modulated) = acts_on_note_one_only(NoteControl::PolyMod {
        note: 1,
        param: String::from("Cutoff"),
        amount: 0.3,
    });
    let window = (SECOND * 7 / 10) as usize..(SECOND * 14 / 10) as usize;
    let (before, after) = (
        centroid(&plain.right[window.clone()]),
        centroid(&modulated.right[window]),
    );
    assert!(
        after > before * 1.2,
        "cutoff offset: centroid {before:.0} Hz -> {after:.0} Hz"
    );
    for (param, amount) in [("Resonance", 0.5), ("Osc Mix", -0.4), ("Master Gain", -0.2)] {
        acts_on_note_one_only(NoteControl::PolyMod {
            note: 1,
            param: param.to_owned(),
            amount,
        });
    }
}

#[test]
fn note_expressions_act_on_one_note_only() {
    let _guard = serial();
    let expression = |kind, value| NoteControl::Expression {
        note: 1,
        kind,
        value,
    };
    let (_, tuned) = acts_on_note_one_only(expression(NoteExpressionType::Tuning, 3.0));
    let (plain, _) = acts_on_note_one_only(expression(NoteExpressionType::Brightness, 1.0));
    acts_on_note_one_only(expression(NoteExpressionType::Pressure, 1.0));
    let (_, quiet) = acts_on_note_one_only(expression(NoteExpressionType::Volume, 0.25));
    let window = (SECOND * 7 / 10) as usize..(SECOND * 14 / 10) as usize;
    let rms = |x: &[f32]| (x.iter().map(|s| (s * s) as f64).sum::<f64>() / x.len() as f64).sqrt();
    let ratio = rms(&quiet.right[window.clone()]) / rms(&plain.right[window.clone()]);
    assert!((ratio - 0.25).abs() < 0.02, "volume 0.25 gave {ratio:.3}");
    let shift = centroid(&tuned.right[window.clone()]) / centroid(&plain.right[window]);
    assert!(shift > 1.1, "tuning +3 st moved the centroid by {shift:.3}");
}

#[test]
fn mono_modulation_and_value_are_independent() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let setup = RenderSetup::offline(256);
    let mono = |amount| {
        (
            0,
            NoteControl::MonoMod {
                param: String::from("Cutoff"),
                amount,
            },
        )
    };
    // The host moves the value at 1 s; with a modulation, the modulation stays on top of it.
    let mut moved = Phrase::chords(2.0);
    moved.automation.push((SECOND, String::from("Cutoff"), 0.3));
    let mut modulated = moved.clone();
    modulated.controls.push(mono(0.25));

    let mut instance = Instance::new(&entry);
    let default = instance.param_value("Cutoff");
    let plain = instance.render(setup, &moved, |_| {});
    let mut instance = Instance::new(&entry);
    let with_mod = instance.render(setup, &modulated, |_| {});
    // The value event set the value under the modulation without clearing it (nice-plug's
    // `get_value` reports the modulated value).
    let reported = instance.param_value("Cutoff");
    assert!(
        (reported - 0.55).abs() < 1e-6,
        "value plus modulation: {reported}"
    );
    assert!((default - 0.3).abs() > 0.01);
    let first = first_difference(&plain.left, &with_mod.left).expect("modulation did nothing");
    assert!((first as u64) < SECOND / 2, "modulation late: {first}");
    // After the value change at 1 s (plus the latency) the modulation still brightens.
    let window = (SECOND * 3 / 2) as usize..(SECOND * 19 / 10) as usize;
    let (a, b) = (
        centroid(&plain.left[window.clone()]),
        centroid(&with_mod.left[window]),
    );
    assert!(
        b > a * 1.2,
        "modulation lost at the value change: {a:.0} -> {b:.0} Hz"
    );
}

/// The ends the synth itself decides for `phrase` (its notes as the plugin sends them: note id
/// `i`, channel 0), rendered in-process, at the output frame they must come out at (`latency`
/// later), in order.
fn expected_ends(phrase: &Phrase, latency: u64) -> Vec<NoteEnd> {
    let mut at: Vec<(u64, EventKind)> = Vec::new();
    for (i, n) in phrase.notes.iter().enumerate() {
        at.push((
            n.start,
            EventKind::NoteOnId {
                key: n.key as u8,
                velocity: n.velocity as f32,
                channel: 0,
                note_id: i as i32,
            },
        ));
        at.push((n.start + n.length, EventKind::NoteOff { key: n.key as u8 }));
    }
    at.sort_by_key(|(t, _)| *t);
    let mut synth = Synth::new(SAMPLE_RATE as f32, 256).unwrap();
    let (mut l, mut r) = (vec![0.0; 256], vec![0.0; 256]);
    let mut ends = Vec::new();
    for start in (0..phrase.frames).step_by(256) {
        let events: Vec<Event> = at
            .iter()
            .filter(|(t, _)| (start..start + 256).contains(t))
            .map(|(t, kind)| Event {
                offset: (t - start) as u32,
                kind: *kind,
            })
            .collect();
        synth.clear_voice_ends();
        synth.render(&events, None, [&mut l, &mut r]);
        ends.extend(synth.voice_ends().iter().map(|e| NoteEnd {
            frame: start + e.offset as u64 + latency,
            note_id: e.note_id as i64,
            key: e.key as i32,
            channel: e.channel as i32,
        }));
    }
    ends.retain(|e| e.frame < phrase.frames);
    ends
}

fn note_ends_match_the_synth_through_a_kill(block: u32) {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let mut phrase = Phrase::chords(2.0);
    phrase.frames = 3 * SECOND;
    let setup = RenderSetup::offline(block);
    let mut instance = Instance::new(&entry);
    let (processor, latency) = instance.activate(setup);
    let (processor, clean) = instance.process(processor, setup, &phrase, |_| {});
    instance.deactivate(processor);

    let expected = expected_ends(&phrase, latency as u64);
    assert_eq!(
        expected.len(),
        phrase.notes.len(),
        "every note ends in the phrase"
    );
    assert_eq!(clean.note_ends, expected);

    // Hosts that honour the tail do not cut the last release: it covers the last note-off to
    // the last note end.
    let last_off = phrase
        .notes
        .iter()
        .map(|n| n.start + n.length)
        .max()
        .unwrap();
    let last_end = expected.last().unwrap().frame;
    let tail = clean.tail.expect("a tail");
    assert!(
        u64::from(tail) >= last_end - last_off && tail != u32::MAX,
        "tail {tail} frames, release lasts {}",
        last_end - last_off
    );

    // A worker killed mid-phrase (between two note ends): no end lost, none twice, same bits.
    let mut killer = Killer::at(expected[expected.len() / 2].frame - 100);
    let killed = Instance::new(&entry).render(setup, &phrase, |f| killer.on_block(f));
    assert!(killer.killed.is_some());
    assert_eq!(killed.note_ends, expected);
    assert_eq!(killed.first_difference(&clean), None);
}

#[test]
fn note_ends_match_the_synth_through_a_kill_block_64() {
    note_ends_match_the_synth_through_a_kill(64);
}

#[test]
fn note_ends_match_the_synth_through_a_kill_block_512() {
    note_ends_match_the_synth_through_a_kill(512);
}

#[test]
fn modulated_notes_survive_a_kill_bit_for_bit() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let phrase = two_notes(vec![
        NoteControl::PolyMod {
            note: 0,
            param: String::from("Cutoff"),
            amount: -0.2,
        },
        NoteControl::Expression {
            note: 1,
            kind: NoteExpressionType::Tuning,
            value: -5.0,
        },
    ]);
    let setup = RenderSetup::offline(128);
    let clean = Instance::new(&entry).render(setup, &phrase, |_| {});
    let mut killer = Killer::at(SECOND);
    let killed = Instance::new(&entry).render(setup, &phrase, |f| killer.on_block(f));
    assert!(killer.killed.is_some());
    assert_eq!(killed.first_difference(&clean), None);
    assert_eq!(killed.note_ends, clean.note_ends);
    assert_eq!(clean.note_ends.len(), 2);
}

#[test]
fn voice_info_and_remote_controls() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let mut instance = Instance::new(&entry);
    instance.set_params(&[("Polyphony", 7.0)]);
    instance.render(RenderSetup::offline(256), &Phrase::chords(0.1), |_| {});
    let info = instance.voice_info().expect("voice info");
    assert_eq!(info.voice_capacity, 32);
    // The polyphony parameter counts from 1: CLAP step 7 is 8 voices.
    assert_eq!(info.voice_count, 8);

    let pages = instance.remote_control_pages();
    assert!(pages.len() >= 5, "{pages:?}");
    let mut on_a_page = Vec::new();
    for (section, page, knobs) in &pages {
        assert_eq!(knobs.len(), 8, "{section}/{page}");
        for name in knobs.iter().flatten() {
            assert!(!name.starts_with("unknown"), "{section}/{page}: {name}");
            on_a_page.push(name.clone());
        }
    }
    for (name, _, _) in instance.params() {
        // The latency and the protection are settings, not sounds to play with.
        if name != "Latency" && name != "Protection" {
            assert!(on_a_page.contains(name), "{name} is on no page");
        }
    }
}
