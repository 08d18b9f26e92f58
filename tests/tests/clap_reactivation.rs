//! Reactivation starts clean: the plugin keeps its engine across a deactivate/activate with the
//! same configuration (its workers just sleep), and nothing rendered before comes out after,
//! though the latency pipeline held it (docs/ARCHITECTURE.md, "Timing"). A changed protection
//! setting takes effect at the next activation, with the same sound.
//!
//! Needs `cargo xtask bundle tandem --release` first (`cargo xtask test` does it).

use tandem_tests::{
    isolated_clap, load_entry, serial, spare_pids, worker_pids, Instance, Phrase, RenderSetup,
};

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

/// Lockstep, then Eco, then Lockstep again in one instance, the setting changed while it plays
/// (as from the editor): the plugin asks the host for a restart, the next activation runs the
/// new protection, and every stage sounds bit for bit like a fresh instance. Lockstep runs three
/// worker processes (two rendering, the spare asleep), Eco two (the active one and its
/// standby): the count seen most often while it plays, since each Eco audit calls the standby
/// in, retires the older worker and starts a new standby, so for a moment there are one or three.
#[test]
fn switching_protection_at_reactivation_keeps_the_sound() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let phrase = Phrase::chords(0.95);
    let setup = RenderSetup::offline(256);
    let reference = Instance::new(&entry).render(setup, &phrase, |_| {});
    assert!(reference.rms() > 1e-3);

    let mut instance = Instance::new(&entry);
    let stages = [("Lockstep", 0.0, 3), ("Eco", 1.0, 2), ("Lockstep", 0.0, 3)];
    for (i, &(name, _, processes)) in stages.iter().enumerate() {
        let (processor, _) = instance.activate(setup);
        // How often each count of worker processes was seen, every eighth block.
        let mut seen = [0usize; 8];
        let (processor, render) = instance.process(processor, setup, &phrase, |frame| {
            if frame >= 12_000 && frame % 2048 == 0 {
                seen[(worker_pids().len() + spare_pids().len()).min(7)] += 1;
            }
        });
        let usual = (0..seen.len()).max_by_key(|&n| seen[n]).unwrap_or(0);
        assert_eq!(
            render.first_difference(&reference),
            None,
            "{name} (stage {i}) differs from the reference"
        );
        assert_eq!(
            usual, processes,
            "{name} (stage {i}): worker processes while it played (times seen by count: {seen:?})"
        );
        let processor = match stages.get(i + 1) {
            Some(&(next, value, _)) => {
                let mut change = Phrase::chords(0.02);
                change
                    .automation
                    .push((0, String::from("Protection"), value));
                let before = instance.restart_requests();
                let (processor, _) = instance.process(processor, setup, &change, |_| {});
                assert!(
                    instance.restart_requests() > before,
                    "switching to {next} needs a restart"
                );
                processor
            }
            None => processor,
        };
        instance.deactivate(processor);
    }
}
