//! The audio thread never allocates: the debug build of the plugin with nice-plug's
//! `assert_process_allocs` (enabled by this package's dev-dependency on `tandem`) aborts the
//! whole test process on the first allocation or deallocation inside `process()`.
//!
//! This loads the debug `libtandem.so` that `cargo test` builds next to this test binary, so it
//! finds the worker on disk (`target/<profile>/tandem-worker`, built by `cargo test
//! --workspace`) rather than embedded.

use std::path::PathBuf;

use tandem_tests::{load_entry, serial, Instance, Phrase, RenderSetup, SAMPLE_RATE};

fn debug_plugin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let candidates = [
        deps.join("libtandem.so"),
        deps.parent().unwrap().join("libtandem.so"),
    ];
    let path = candidates
        .iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no libtandem.so in {candidates:?}"))
        .clone();
    // Make sure this is the checking build, or the test would prove nothing.
    let bytes = std::fs::read(&path).unwrap();
    let marker = b"Memory allocation of";
    assert!(
        bytes.windows(marker.len()).any(|w| w == marker),
        "{} was built without assert_process_allocs",
        path.display()
    );
    path
}

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
                }
            }
        }
    }
}
