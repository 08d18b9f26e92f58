//! Tandem.clap in a real CLAP host (clack-host): loaded from a folder it was copied to alone,
//! automated, killed mid-render, saved and restored, run eight times side by side.
//!
//! Needs `cargo xtask bundle tandem --release` first (`cargo xtask test` does it).

use clack_extensions::params::ParamInfoFlags;
use tandem_tests::{
    child_pids, isolated_clap, load_entry, serial, worker_pids, Instance, Killer, Note, Phrase,
    RenderSetup, SAMPLE_RATE,
};

const SECOND: u64 = SAMPLE_RATE as u64;

/// Cutoff automation from 5 % to 95 % of its (skewed) range over the phrase.
fn swept(seconds: f64) -> Phrase {
    Phrase::chords(seconds).ramp("Cutoff", 0.05, 0.95, 64)
}

#[test]
fn describes_itself_as_a_stereo_synth() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let factory = entry.get_plugin_factory().unwrap();
    let descriptor = factory.plugin_descriptor(0).unwrap();
    assert_eq!(descriptor.name().unwrap().to_str().unwrap(), "Tandem");
    let features: Vec<String> = descriptor
        .features()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    for wanted in ["instrument", "synthesizer", "stereo"] {
        assert!(features.iter().any(|f| f == wanted), "{features:?}");
    }
    let instance = Instance::new(&entry);
    let bypass: Vec<_> = instance
        .params()
        .iter()
        .filter(|(_, _, flags)| flags.contains(ParamInfoFlags::IS_BYPASS))
        .map(|(name, _, _)| name.clone())
        .collect();
    assert_eq!(bypass, ["Bypass"]);
    // The plugin settings are not automatable; every synth parameter is.
    let settings = ["Latency", "Protection"];
    for setting in settings {
        let (_, _, flags) = instance
            .params()
            .iter()
            .find(|(name, _, _)| name == setting)
            .unwrap_or_else(|| panic!("the {setting} setting"));
        assert!(!flags.contains(ParamInfoFlags::IS_AUTOMATABLE), "{setting}");
    }
    for (name, _, flags) in instance.params() {
        if !settings.contains(&name.as_str()) {
            assert!(flags.contains(ParamInfoFlags::IS_AUTOMATABLE), "{name}");
        }
    }
}

/// Plays five seconds of chords while the host sweeps the cutoff up with CLAP parameter
/// events; the output must be finite, audible, and brighter at the end than at the start.
fn automation_moves_the_spectrum(block: u32) {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let mut instance = Instance::new(&entry);
    let phrase = swept(5.0);
    let render = instance.render(RenderSetup::offline(block), &phrase, |_| {});
    assert_eq!(render.left.len(), phrase.frames as usize);
    assert!(render.is_finite());
    assert!(render.rms() > 1e-3, "silent: rms {}", render.rms());
    let first = render.centroid(0, SECOND as usize);
    let last = render.centroid(4 * SECOND as usize, 5 * SECOND as usize);
    assert!(
        last > first * 1.5,
        "centroid {first:.0} Hz in the first second, {last:.0} Hz in the last"
    );
}

#[test]
fn automation_moves_the_spectrum_block_64() {
    automation_moves_the_spectrum(64);
}

#[test]
fn automation_moves_the_spectrum_block_512() {
    automation_moves_the_spectrum(512);
}

/// The same render twice from fresh instances, once with a worker SIGKILLed half way.
fn killing_a_worker_changes_nothing(block: u32) {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let phrase = swept(3.0);
    let reference = Instance::new(&entry).render(RenderSetup::offline(block), &phrase, |_| {});
    assert!(reference.rms() > 1e-3);

    let mut killer = Killer::at(SECOND + SECOND / 2);
    let mut instance = Instance::new(&entry);
    let render = instance.render(RenderSetup::offline(block), &phrase, |f| killer.on_block(f));
    let victim = killer.killed.expect("the render ended before the kill");
    assert_eq!(
        killer.workers_before.len(),
        2,
        "two workers before the kill"
    );
    assert!(!worker_pids().contains(&victim), "the victim is gone");
    assert_eq!(
        render.first_difference(&reference),
        None,
        "output changed after killing worker {victim}"
    );
}

#[test]
fn killing_a_worker_changes_nothing_block_64() {
    killing_a_worker_changes_nothing(64);
}

#[test]
fn killing_a_worker_changes_nothing_block_512() {
    killing_a_worker_changes_nothing(512);
}

#[test]
fn no_process_outlives_the_plugin() {
    let _guard = serial();
    assert_eq!(child_pids(), Vec::<u32>::new(), "children before the test");
    let entry = load_entry(isolated_clap());
    let mut instance = Instance::new(&entry);
    assert_eq!(
        child_pids(),
        Vec::<u32>::new(),
        "no workers before activation"
    );

    let setup = RenderSetup::offline(256);
    let (processor, latency) = instance.activate(setup);
    let workers = worker_pids();
    assert_eq!(workers.len(), 2, "two workers while active: {workers:?}");
    assert_eq!(latency, 256, "default latency is one block");
    instance.deactivate(processor);

    // Reactivating with the same configuration keeps the same workers.
    let (processor, _) = instance.activate(setup);
    assert_eq!(worker_pids(), workers, "reactivation respawned the workers");
    instance.deactivate(processor);

    // A killed worker is replaced, and the replacement dies with the plugin too.
    let mut killer = Killer::at(SECOND / 2);
    instance.render(setup, &Phrase::chords(1.0), |f| killer.on_block(f));
    assert!(killer.killed.is_some());
    drop(instance);
    drop(entry);
    assert_eq!(
        child_pids(),
        Vec::<u32>::new(),
        "processes left after destroy"
    );
}

/// The embedded worker runs from a sealed memfd through a descriptor path; `ps` and `top` must
/// still call it `tandem-worker` (its `comm` and its `argv[0]`), not a descriptor number.
#[test]
fn workers_are_named_tandem_worker() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let mut instance = Instance::new(&entry);
    // Workers that have rendered are past their start-up, where they name themselves.
    instance.render(RenderSetup::offline(256), &Phrase::chords(0.2), |_| {});
    let (processor, _) = instance.activate(RenderSetup::offline(256));
    let workers = worker_pids();
    assert_eq!(workers.len(), 2, "{workers:?}");
    for pid in workers {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm.trim_end(), "tandem-worker", "comm of worker {pid}");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let argv0 = cmdline.split(|&b| b == 0).next().unwrap();
        assert_eq!(argv0, b"tandem-worker", "argv[0] of worker {pid}");
    }
    instance.deactivate(processor);
}

#[test]
fn saved_state_reproduces_the_sound() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let phrase = Phrase::chords(1.5);
    let setup = RenderSetup::offline(512);
    let patch = [
        ("Cutoff", 0.3),
        ("Resonance", 0.8),
        ("Osc 1 Waveform", 1.0),
        ("Amp Release", 0.2),
    ];

    let mut original = Instance::new(&entry);
    original.set_params(&patch);
    let state = original.save_state();
    let expected = original.render(setup, &phrase, |_| {});

    let mut restored = Instance::new(&entry);
    assert!(restored.load_state(&state), "state refused");
    for (name, value) in patch {
        assert!(
            (restored.param_value(name) - value).abs() < 1e-6,
            "{name} not restored"
        );
    }
    let got = restored.render(setup, &phrase, |_| {});
    assert_eq!(got.first_difference(&expected), None);

    let default = Instance::new(&entry).render(setup, &phrase, |_| {});
    assert!(
        default.first_difference(&expected).is_some(),
        "the patch should sound different from the default"
    );
}

#[test]
fn foreign_or_broken_state_changes_nothing() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let mut instance = Instance::new(&entry);
    instance.set_params(&[("Cutoff", 0.25)]);

    // nice-plug's CLAP state is an 8-byte length and JSON; a valid layout from another plugin.
    let json = br#"{"version":"1.0","params":{"cutoff":{"f32":20.0}},"fields":{}}"#;
    let mut foreign = (json.len() as u64).to_le_bytes().to_vec();
    foreign.extend_from_slice(json);
    instance.load_state(&foreign);
    assert!((instance.param_value("Cutoff") - 0.25).abs() < 1e-6);

    let garbage = [0xffu8; 64];
    assert!(!instance.load_state(&garbage), "garbage state accepted");
    assert!((instance.param_value("Cutoff") - 0.25).abs() < 1e-6);
}

#[test]
fn stereo_input_reaches_the_output() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let phrase = Phrase::chords(1.0);
    let setup = RenderSetup {
        block: 256,
        offline: true,
        input: true,
    };
    let mut with_input = Instance::new(&entry);
    with_input.set_params(&[("Input Level", 1.0)]);
    let fed = with_input.render(setup, &phrase, |_| {});
    let mut muted = Instance::new(&entry);
    muted.set_params(&[("Input Level", 0.0)]);
    let dry = muted.render(setup, &phrase, |_| {});
    assert!(fed.is_finite() && fed.rms() > 1e-3);
    assert!(
        fed.first_difference(&dry).is_some(),
        "the input had no effect"
    );
}

#[test]
fn midi_controllers_change_the_sound() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let setup = RenderSetup::offline(512);
    let base = Phrase::chords(1.5);
    let mut bent = base.clone();
    // Pitch bend fully up from 0.25 s, mod wheel up, sustain pedal down at the start.
    bent.midi.push((SECOND / 4, [0xE0, 0x7F, 0x7F]));
    bent.midi.push((0, [0xB0, 64, 127]));
    let plain = Instance::new(&entry).render(setup, &base, |_| {});
    let changed = Instance::new(&entry).render(setup, &bent, |_| {});
    let diff = changed
        .first_difference(&plain)
        .expect("bend and sustain had no effect");
    assert!(
        diff as u64 >= SECOND / 4,
        "changed before the first controller"
    );

    // All notes off (CC 123) at 0.1 s, before the first chord ends: the long tail after the
    // release differs from a render that holds the chord for its full length.
    let mut cut = base.clone();
    cut.midi.push((SECOND / 10, [0xB0, 123, 0]));
    let released = Instance::new(&entry).render(setup, &cut, |_| {});
    assert!(released.first_difference(&plain).is_some());
}

#[test]
fn eight_instances_side_by_side() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let setup = RenderSetup::offline(256);
    let phrase_for = |i: u16| Phrase {
        frames: SECOND / 2,
        notes: vec![Note {
            start: 0,
            length: SECOND / 4,
            key: 48 + 3 * i,
            velocity: 0.8,
        }],
        ..Phrase::default()
    };
    let solo: Vec<_> = (0..8)
        .map(|i| Instance::new(&entry).render(setup, &phrase_for(i), |_| {}))
        .collect();

    // Now all eight at once, block by block in turn, as a DAW's mixer would run them.
    let mut instances: Vec<Instance> = (0..8).map(|_| Instance::new(&entry)).collect();
    let together = tandem_tests::render_interleaved(&mut instances, setup, phrase_for);
    assert_eq!(worker_pids().len(), 16, "two workers per instance");
    for (i, (a, b)) in solo.iter().zip(&together).enumerate() {
        assert!(a.rms() > 1e-3, "instance {i} silent");
        assert_eq!(a.first_difference(b), None, "instance {i} differs");
    }
    for i in 1..8 {
        assert!(together[i].first_difference(&together[0]).is_some());
    }
    drop(instances);
    drop(entry);
    assert_eq!(
        child_pids(),
        Vec::<u32>::new(),
        "processes left after destroy"
    );
}

#[test]
fn latency_setting_applies_at_the_next_activation() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let mut instance = Instance::new(&entry);
    let setup = RenderSetup::offline(256);
    let (processor, latency) = instance.activate(setup);
    assert_eq!(latency, 256);

    // The setting is a stepped parameter from -1 ("one block") to 4096 frames; CLAP counts
    // its steps from 0, so 129 means 128 frames.
    let mut phrase = Phrase::chords(0.1);
    phrase.automation.push((0, String::from("Latency"), 129.0));
    let before = instance.restart_requests();
    let (processor, _) = instance.process(processor, setup, &phrase, |_| {});
    assert!(
        instance.restart_requests() > before,
        "a new latency needs a restart"
    );
    instance.deactivate(processor);
    let (processor, latency) = instance.activate(setup);
    assert_eq!(latency, 128);
    instance.deactivate(processor);
}

/// A host that advertises 8192-frame blocks and runs 128 gets one 128-frame block of latency
/// (after one restart it asks for), not 85 ms; and once it runs larger blocks, the latency
/// follows them up, never staying below the block size in use.
#[test]
fn default_latency_follows_the_block_size_in_use() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let mut instance = Instance::new(&entry);
    let small = RenderSetup::offline(128);
    let (processor, latency) = instance.activate_advertising(small, 8192);
    assert_eq!(
        latency, 4096,
        "nothing seen yet: the advertised block, capped"
    );
    let before = instance.restart_requests();
    let (processor, _) = instance.process(processor, small, &Phrase::chords(0.2), |_| {});
    assert!(instance.restart_requests() > before, "no restart asked for");
    instance.deactivate(processor);
    let (processor, latency) = instance.activate_advertising(small, 8192);
    assert_eq!(latency, 128);
    let before = instance.restart_requests();
    let (processor, _) = instance.process(processor, small, &Phrase::chords(0.2), |_| {});
    assert_eq!(
        instance.restart_requests(),
        before,
        "settled, yet asked again"
    );

    let large = RenderSetup::offline(512);
    let (processor, _) = instance.process(processor, large, &Phrase::chords(0.1), |_| {});
    assert!(
        instance.restart_requests() > before,
        "a larger block asks for more"
    );
    instance.deactivate(processor);
    let (processor, latency) = instance.activate_advertising(large, 8192);
    assert_eq!(latency, 512);
    instance.deactivate(processor);
}

#[test]
fn host_blocks_beyond_the_engine_limit_are_split() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let phrase = Phrase::chords(1.0);
    let big = Instance::new(&entry).render(RenderSetup::offline(16384), &phrase, |_| {});
    assert!(big.is_finite() && big.rms() > 1e-3);
}
