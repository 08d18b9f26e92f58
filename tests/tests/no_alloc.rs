//! The debug build of the plugin in the CLAP test host.
//!
//! The audio thread never allocates: this build has nice-plug's `assert_process_allocs`
//! (enabled by this package's dev-dependency on `tandem`), which aborts the whole test process
//! on the first allocation or deallocation inside `process()`. And a plugin that cannot find
//! its worker refuses to activate rather than crash.
//!
//! This loads the debug `libtandem.so` that `cargo test` builds next to this test binary, so it
//! finds the worker on disk (`target/<profile>/tandem-worker`, built by `cargo test
//! --workspace`) rather than embedded.

use clack_host::events::event_types::NoteExpressionType;
use tandem_tests::{
    child_pids, debug_plugin, load_entry, serial, Instance, NoteControl, Phrase, RenderSetup,
    SAMPLE_RATE,
};

fn busy_phrase() -> Phrase {
    let second = SAMPLE_RATE as u64;
    let mut phrase =
        Phrase::chords(1.5)
            .ramp("Cutoff", 0.1, 0.9, 16)
            .ramp("Resonance", 0.0, 0.9, 100);
    phrase.midi.push((second / 4, [0xE0, 0x00, 0x50]));
    phrase.midi.push((second / 3, [0xB0, 1, 100]));
    phrase.midi.push((second / 2, [0xB0, 64, 127]));
    phrase.midi.push((second, [0xB0, 64, 0]));
    phrase.midi.push((second + 100, [0xB0, 123, 0]));
    // Per-note control, note ends (every chord ends) and a voice-capacity change.
    phrase.midi.push((second / 5, [0xA0, 48, 90]));
    phrase.midi.push((second / 5, [0xD0, 70, 0]));
    for note in 0..phrase.notes.len() {
        let at = phrase.notes[note].start;
        let poly = NoteControl::PolyMod {
            note,
            param: String::from("Cutoff"),
            amount: 0.2,
        };
        let tuning = NoteControl::Expression {
            note,
            kind: NoteExpressionType::Tuning,
            value: 0.5,
        };
        phrase.controls.extend([(at, poly), (at + 64, tuning)]);
    }
    phrase.controls.push((
        second / 2,
        NoteControl::MonoMod {
            param: String::from("Resonance"),
            amount: 0.1,
        },
    ));
    phrase
        .automation
        .push((second / 3, String::from("Polyphony"), 5.0));
    phrase
}

#[test]
fn process_does_not_allocate() {
    let _guard = serial();
    let entry = load_entry(&debug_plugin());
    let phrase = busy_phrase();
    for block in [64, 512] {
        for offline in [true, false] {
            for input in [false, true] {
                let setup = RenderSetup {
                    block,
                    offline,
                    input,
                };
                let render = Instance::new(&entry).render(setup, &phrase, |_| {});
                assert!(render.is_finite(), "{setup:?}");
                // Realtime renders may contain fallback blocks (a debug worker on a busy
                // machine); only the offline ones must have all the sound.
                if offline {
                    assert!(render.rms() > 1e-4, "{setup:?}: silent");
                    assert!(!render.note_ends.is_empty(), "{setup:?}: no note ends");
                }
            }
        }
    }
}

/// Without a worker executable the plugin refuses to activate (and says why in the log)
/// instead of crashing the host, and it can activate later once the worker is there.
#[test]
fn missing_worker_fails_activation_cleanly() {
    let _guard = serial();
    let entry = load_entry(&debug_plugin());
    let mut instance = Instance::new(&entry);
    // Only this test touches the variable, under the serial lock.
    std::env::set_var("TANDEM_WORKER", "/nonexistent/tandem-worker");
    let refused = instance.try_activate(RenderSetup::offline(256));
    std::env::remove_var("TANDEM_WORKER");
    assert!(refused.is_err(), "activated without a worker");
    assert_eq!(child_pids(), Vec::<u32>::new());
    let (processor, _) = instance.activate(RenderSetup::offline(256));
    instance.deactivate(processor);
}
