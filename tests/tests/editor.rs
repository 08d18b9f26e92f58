//! The editor of the real Tandem.clap in the CLAP test host, on a private Xvfb server: it draws,
//! follows the host, sends gestures, opens and closes without leaking, and leaves the audio
//! bit-exact while knobs move.
//!
//! Needs `cargo xtask bundle tandem --release` first (`cargo xtask test` does it) and the Xvfb,
//! Mesa and X11 packages `.ci/run` installs.

use std::time::{Duration, Instant};

use dsp::ParamId;
use tandem::editor::layout;
use tandem_tests::gui::{self, Screen, PATIENCE};
use tandem_tests::{
    isolated_clap, load_entry, serial, worker_pids, Instance, ParamOut, Phrase, RenderSetup,
};

/// Screen position of a control's knob (the parent window sits at the screen's origin and the
/// editor opens at 100 %).
fn knob(id: ParamId) -> (i16, i16) {
    let c = layout::control_center(id).expect("a placed control");
    (c.x.round() as i16, c.y.round() as i16)
}

/// Flushes until the editor's gesture on `id` has ended; every event it sent, in order.
fn gesture(instance: &mut Instance) -> Vec<ParamOut> {
    let started = Instant::now();
    let mut events = Vec::new();
    while !events.iter().any(|e| matches!(e, ParamOut::End(_))) {
        assert!(
            started.elapsed() < PATIENCE,
            "no gesture end; got {events:?}"
        );
        instance.run_main_thread_callbacks();
        events.extend(instance.flush_param_events());
        std::thread::sleep(Duration::from_millis(20));
    }
    events
}

fn pointer_away(screen: &Screen) {
    screen.move_pointer(1500, 1100);
}

#[test]
fn editor_draws_follows_the_host_and_sends_gestures() {
    let _guard = serial();
    let screen = gui::screen();
    pointer_away(screen);
    let entry = load_entry(isolated_clap());
    // The plugin's log writer thread starts with the library's first instance and lives as long
    // as the library: let it start before counting, whichever test of this binary runs first.
    drop(Instance::new(&entry));
    let threads_before = gui::thread_count();
    let mut instance = Instance::new(&entry);

    let size = gui::create_editor(&mut instance);
    assert_eq!(
        (size.width, size.height),
        (layout::WIDTH as u32, layout::HEIGHT as u32),
        "the editor's size at 100 %"
    );
    let window = screen.parent_window(size);
    gui::show_editor(&mut instance, &window);
    let before = gui::settled_picture(&mut instance, screen, &window);
    assert_eq!((before.width, before.height), (size.width, size.height));
    assert!(
        before.colours() > 50,
        "blank editor: {} colours",
        before.colours()
    );

    // The host moves the cutoff: the editor shows it, and only the cutoff's control changes.
    instance.set_params(&[("Cutoff", 0.1)]);
    let after = gui::wait_for_picture(&mut instance, screen, &window, "the new cutoff", |img| {
        img != &before
    });
    let (x0, y0, x1, y1) = after.difference(&before).expect("a difference");
    let cell = layout::control_rect(ParamId::Cutoff).unwrap();
    assert!(
        x0 as f32 >= cell.min.x
            && y0 as f32 >= cell.min.y
            && x1 as f32 <= cell.max.x
            && y1 as f32 <= cell.max.y,
        "the change ({x0},{y0})-({x1},{y1}) is not inside the cutoff's control {cell:?}"
    );

    // A knob dragged upwards reaches the host as one gesture with rising values.
    let resonance = instance.param_id("Resonance");
    let start = instance.param_value("Resonance");
    screen.drag(
        knob(ParamId::Resonance),
        (0, -60),
        6,
        Duration::from_millis(60),
    );
    let events = gesture(&mut instance);
    assert_eq!(
        events.first(),
        Some(&ParamOut::Begin(resonance)),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&ParamOut::End(resonance)), "{events:?}");
    let values: Vec<f64> = events
        .iter()
        .filter_map(|e| match e {
            ParamOut::Value(id, v) if *id == resonance => Some(*v),
            _ => None,
        })
        .collect();
    assert!(!values.is_empty(), "no value in {events:?}");
    assert!(values.windows(2).all(|w| w[1] > w[0]), "{values:?}");
    assert!(values[0] > start, "{start} -> {values:?}");
    assert_eq!(instance.param_value("Resonance"), *values.last().unwrap());

    // A double-click puts it back to its default, again as a gesture.
    let (x, y) = knob(ParamId::Resonance);
    screen.move_pointer(x, y);
    for _ in 0..2 {
        screen.button(true);
        screen.button(false);
    }
    let events = gesture(&mut instance);
    assert!(
        events.contains(&ParamOut::Value(resonance, start)),
        "double-click did not restore {start}: {events:?}"
    );
    pointer_away(screen);

    // A click on Eco sets the protection setting in one gesture; Lockstep sets it back.
    let protection = instance.param_id("Protection");
    let [lockstep_button, eco_button] = layout::protection_buttons();
    let click = |x: f32, y: f32| {
        screen.move_pointer(x.round() as i16, y.round() as i16);
        screen.button(true);
        screen.button(false);
        pointer_away(screen);
    };
    for (button, value) in [(eco_button, 1.0), (lockstep_button, 0.0)] {
        click(button.center().x, button.center().y);
        assert_eq!(
            gesture(&mut instance),
            vec![
                ParamOut::Begin(protection),
                ParamOut::Value(protection, value),
                ParamOut::End(protection)
            ]
        );
        assert_eq!(instance.param_value("Protection"), value);
    }

    gui::close_editor(&mut instance);
    drop(window);
    drop(instance);
    assert!(
        worker_pids().is_empty(),
        "workers left: {:?}",
        worker_pids()
    );
    let started = Instant::now();
    while gui::thread_count() > threads_before {
        assert!(
            started.elapsed() < PATIENCE,
            "{} threads left behind (had {threads_before})",
            gui::thread_count()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn fifty_openings_leak_nothing() {
    let _guard = serial();
    let screen = gui::screen();
    let entry = load_entry(isolated_clap());
    let mut instance = Instance::new(&entry);
    let threads = gui::thread_count();
    // Opens the editor, waits for its picture, closes it and waits until its window thread
    // has ended, so every measurement sees a fully torn-down editor.
    let cycle = |instance: &mut Instance| {
        let window = gui::open_editor(instance, screen);
        gui::wait_for_picture(instance, screen, &window, "the editor", |img| {
            img.colours() > 50
        });
        gui::close_editor(instance);
        drop(window);
        let started = Instant::now();
        while gui::thread_count() > threads {
            assert!(
                started.elapsed() < PATIENCE,
                "the editor's thread did not end"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Warm up: the first openings load Mesa and fill its caches once.
    for _ in 0..5 {
        cycle(&mut instance);
    }
    let (fds, heap) = (gui::fd_count(), gui::heap_in_use());
    for _ in 0..50 {
        cycle(&mut instance);
    }
    let (fds_after, heap_after) = (gui::fd_count(), gui::heap_in_use());
    eprintln!("fds {fds} -> {fds_after}, heap in use {heap} -> {heap_after} bytes");
    // Fewer is no leak: a thread or a file of an earlier test (its editor, or its engine and
    // workers) may still have been closing when the counts were taken, as happened on a loaded
    // machine (13 fds, then 8). A leak per opening would show as 50 more.
    let threads_after = gui::thread_count();
    assert!(
        threads_after <= threads,
        "threads {threads} -> {threads_after}"
    );
    assert!(fds_after <= fds, "file descriptors {fds} -> {fds_after}");
    // One whole editor (egui context, font atlas, GL objects) is megabytes, so leaking the
    // editor, its window or its GL context would exceed this bound many times over. What stays
    // below it is measured and printed above: about 80 KB per opening on this machine, not yet
    // attributed (it may be the GL driver's), and far from an editor's worth.
    let per_opening = heap_after.saturating_sub(heap) / 50;
    assert!(
        per_opening < 256 * 1024,
        "the heap grew from {heap} to {heap_after} bytes over 50 openings ({per_opening} each)"
    );
}

/// Plays chords with the editor open while a knob is dragged; the host records the editor's
/// parameter events. Replaying those events as ordinary automation, without any editor, must
/// give the same bits: the editor changes the sound only through the host's parameters.
#[test]
fn audio_is_bit_exact_while_the_editor_is_open_and_knobs_move() {
    let _guard = serial();
    let screen = gui::screen();
    pointer_away(screen);
    let entry = load_entry(isolated_clap());
    let setup = RenderSetup::offline(256);
    let phrase = Phrase::chords(3.0);

    let mut live = Instance::new(&entry);
    let window = gui::open_editor(&mut live, screen);
    gui::settled_picture(&mut live, screen, &window);
    let (x, y) = knob(ParamId::Cutoff);
    let drag_from = 256 * 40;
    let with_editor = live.render(setup, &phrase, |frame| {
        // Drag the cutoff down over 10 blocks, one pointer event per block; the pauses
        // let the editor see each move while the render waits.
        let step = (frame / 256) as i16 - (drag_from / 256) as i16;
        let pause = Duration::from_millis(40);
        match step {
            0 => {
                screen.move_pointer(x, y);
                std::thread::sleep(pause);
                screen.button(true);
            }
            1..=10 => screen.move_pointer(x, y + 8 * step),
            11 => screen.button(false),
            _ => return,
        }
        std::thread::sleep(pause);
    });
    gui::close_editor(&mut live);
    drop(window);
    pointer_away(screen);
    let values: Vec<_> = with_editor
        .param_out
        .iter()
        .filter(|(_, e)| matches!(e, ParamOut::Value(..)))
        .collect();
    assert!(
        !values.is_empty(),
        "the drag sent nothing: {:?}",
        with_editor.param_out
    );

    let mut replay = phrase.clone();
    for (frame, event) in &with_editor.param_out {
        if let ParamOut::Value(id, value) = event {
            let name = live
                .params()
                .iter()
                .find(|(_, pid, _)| pid == id)
                .map(|(n, _, _)| n.clone())
                .unwrap();
            // The plugin applies an editor change after the block it returned it from.
            replay.automation.push((frame + 256, name, *value));
        }
    }
    let mut fresh = Instance::new(&entry);
    let without_editor = fresh.render(setup, &replay, |_| {});
    assert!(with_editor.rms() > 1e-3);
    assert_eq!(
        with_editor.first_difference(&without_editor),
        None,
        "the audio with the editor open differs from the same automation without it"
    );
}
