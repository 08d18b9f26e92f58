//! Reactivation starts clean: the plugin keeps its engine across a deactivate/activate with the
//! same configuration (its workers just sleep), and nothing rendered before comes out after,
//! though the latency pipeline held it (docs/ARCHITECTURE.md, "Timing").
//!
//! Needs `cargo xtask bundle tandem --release` first (`cargo xtask test` does it).

use tandem_tests::{isolated_clap, load_entry, serial, worker_pids, Instance, Phrase, RenderSetup};

#[test]
fn a_reactivated_instance_renders_as_a_fresh_one() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    // Notes held to the very end, so the pipeline is full of sound at the deactivation.
    let phrase = Phrase::chords(0.95);
    let setup = RenderSetup::offline(256);
    let mut instance = Instance::new(&entry);
    let first = instance.render(setup, &phrase, |_| {});
    let workers = worker_pids();
    let second = instance.render(setup, &phrase, |_| {});
    assert!(first.rms() > 1e-3);
    assert_eq!(
        worker_pids(),
        workers,
        "the engine and its workers were kept"
    );
    assert_eq!(
        second.first_difference(&first),
        None,
        "the second activation heard audio from the first"
    );
}
