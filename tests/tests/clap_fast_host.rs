//! A host that renders faster than real time in realtime mode (as pedalboard and DawDreamer do)
//! gets the same bits as an offline render, even while both workers stall: Tandem tells it from
//! the call pace and waits for exact frames as offline does (docs/ARCHITECTURE.md, "Timing").
//!
//! Needs `cargo xtask bundle tandem --release` first (`cargo xtask test` does it).

use tandem_tests::{
    isolated_clap, load_entry, serial, worker_pids, Instance, Phrase, RenderSetup, SAMPLE_RATE,
};

const SECOND: u64 = SAMPLE_RATE as u64;

/// Blocks a render takes to show its pace (a few, see `plugin/src/engine/pace.rs`), with room.
const LEARNING_BLOCKS: usize = 16;

/// Stops every worker at a frame and lets them go again a little later: far longer than a
/// realtime deadline, shorter than the hang timeout, so nobody is replaced and only a caller
/// that waits hears the exact audio.
struct Stall {
    at_frame: u64,
    stopped: Vec<u32>,
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on a worker pid read from /proc; no memory is involved.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

impl Stall {
    fn on_block(&mut self, frame: u64) {
        if self.stopped.is_empty() && frame >= self.at_frame {
            self.stopped = worker_pids();
            for &pid in &self.stopped {
                signal(pid, libc::SIGSTOP);
            }
            let pids = self.stopped.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(30));
                for pid in pids {
                    signal(pid, libc::SIGCONT);
                }
            });
        }
    }
}

#[test]
fn rendering_back_to_back_in_realtime_mode_is_exact() {
    let _guard = serial();
    let entry = load_entry(isolated_clap());
    let phrase = Phrase::chords(3.0);
    let block = 512;
    let reference = Instance::new(&entry).render(RenderSetup::offline(block), &phrase, |_| {});
    assert!(reference.rms() > 1e-3);
    let realtime = RenderSetup {
        offline: false,
        ..RenderSetup::offline(block)
    };
    let mut stall = Stall {
        at_frame: SECOND,
        stopped: Vec::new(),
    };
    let render = Instance::new(&entry).render(realtime, &phrase, |f| stall.on_block(f));
    assert_eq!(stall.stopped.len(), 2, "both workers were stopped");
    // The pace is known after a few blocks; until then a block gets the realtime deadline.
    let from = LEARNING_BLOCKS * block as usize;
    let differing = |a: &[f32], b: &[f32]| {
        a[from..]
            .iter()
            .zip(&b[from..])
            .filter(|(x, y)| x.to_bits() != y.to_bits())
            .count()
    };
    assert_eq!(render.left.len(), reference.left.len());
    assert_eq!(
        differing(&render.left, &reference.left) + differing(&render.right, &reference.right),
        0,
        "a realtime render as fast as it goes differs from the offline one"
    );
}
