//! Screenshots of the editor for the README: `cargo xtask screenshot` runs this.
//!
//! The real Tandem.clap plays chords in the CLAP test host, paced to about real time, with its
//! editor open on a private Xvfb server. `editor.png` is taken while it plays;
//! `editor-failover.png` half a second after one worker was SIGKILLed, with the fault showing in
//! the protection panel; `editor-eco.png` after the protection was switched to Eco (the active
//! worker and its standby). Usage: `screenshot <folder>` (default `target/screenshots`).

use std::path::PathBuf;
use std::time::Duration;

use tandem_tests::gui;
use tandem_tests::{isolated_clap, load_entry, Instance, Killer, Phrase, RenderSetup, SAMPLE_RATE};

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| String::from("target/screenshots")),
    );
    let screen = gui::screen();
    screen.move_pointer(1500, 1100);
    let entry = load_entry(isolated_clap());
    let mut instance = Instance::new(&entry);
    // A sound with some movement: a brighter filter and a slow release.
    instance.set_params(&[("Cutoff", 0.55), ("Resonance", 0.45), ("Amp Release", 0.6)]);
    let window = gui::open_editor(&mut instance, screen);
    gui::settled_picture(&mut instance, screen, &window);

    let block = 512u64;
    let second = SAMPLE_RATE as u64;
    let setup = RenderSetup::offline(block as u32);
    let phrase = Phrase::chords(6.0);
    let mut killer = Killer::at(3 * second);
    let mut shots = vec![
        (2 * second, dir.join("editor.png")),
        (3 * second + second / 2, dir.join("editor-failover.png")),
    ];
    let shoot = |shots: &mut Vec<(u64, PathBuf)>, frame: u64| {
        if let Some(i) = shots.iter().position(|(at, _)| frame >= *at) {
            let (_, path) = shots.remove(i);
            screen.capture(&window).save_png(&path);
            println!("wrote {}", path.display());
        }
        // Pace the render to real time so the editor redraws as it would in a DAW.
        std::thread::sleep(Duration::from_secs_f64(block as f64 / SAMPLE_RATE));
    };
    instance.render(setup, &phrase, |frame| {
        killer.on_block(frame);
        shoot(&mut shots, frame);
    });
    // Eco from the next activation, as a click on its button would set it.
    instance.set_params(&[("Protection", 1.0)]);
    let mut shots = vec![(second + second / 2, dir.join("editor-eco.png"))];
    instance.render(setup, &Phrase::chords(2.5), |frame| {
        shoot(&mut shots, frame)
    });
    gui::close_editor(&mut instance);
}
