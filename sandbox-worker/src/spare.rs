//! A spare worker: spawned ahead of need and already inside its sandbox, it sleeps on the input
//! ring's spare call word (no CPU) until the plugin calls it into the slot of a worker that died
//! (docs/ARCHITECTURE.md, "Failure detection and rebuild"). A rebuild then waits for neither
//! `exec`, dynamic loading nor the sandbox.
//!
//! It is handed both slots' output rings, since it cannot know which it will take, and maps
//! them before its sandbox forbids mapping. Once called, and before it reads anything else (the
//! start state, a chunk), it unmaps the other slot's ring: the worker that then restores a
//! snapshot and renders can no more write into its twin's ring than any other worker.
//!
//! Eco calls it beside the active worker for an audit and, once it is verified, dismisses it:
//! it stops writing its ring, says so (`OutputRing::set_left`) and waits again, to be called
//! into the same slot (the only ring it still maps), where it restores the state it is then
//! given like any newcomer.

use crate::worker::{self, Args, EXIT_PARENT_GONE, EXIT_SETUP};
use render::ChunkRenderer;
use shm::death::Held;
use shm::{Doorbell, InputRing, OutputRing};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;

/// Maps slot 1's ring next to slot 0's (`slot0`), enters the sandbox, sleeps until called,
/// keeps the called slot's ring only, then restores the start state the plugin wrote there and
/// renders like any worker, until dismissed (then it waits to be called into that slot again).
/// Returns an exit status if it fails before the sandbox; after that it exits the process
/// itself.
pub(crate) fn run(
    args: Args,
    input: InputRing,
    slot0: OutputRing,
    doorbell: Doorbell,
    mut renderer: ChunkRenderer,
    mut snapshot: Vec<u8>,
) -> i32 {
    // SAFETY: `place_fds` put the second ring's fd there for a spare; nothing else owns it.
    let slot1_fd = unsafe { OwnedFd::from_raw_fd(worker::FD_SPARE_OUTPUT) };
    let slot1 = match OutputRing::open(slot1_fd, *input.config()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tandem-worker: {e}");
            return EXIT_SETUP;
        }
    };
    let robust = shm::death::RobustList::register();
    if let Err(code) = crate::enter_sandbox(true) {
        return code;
    }
    let Some(slot) = wait_for_call(&input, args.epoch) else {
        std::process::exit(EXIT_PARENT_GONE);
    };
    let (output, other) = if slot == 0 {
        (slot0, slot1)
    } else {
        (slot1, slot0)
    };
    other.unmap();
    let held: Option<Held> = match robust {
        Ok(list) => Some(list.hold(output.death_word())),
        // Not fatal: the supervisor then learns of our death from the pidfd only.
        Err(e) => {
            eprintln!("tandem-worker: death word not armed: {e}");
            None
        }
    };
    let args = Args {
        slot: slot as u32,
        ..args
    };
    loop {
        let stint = worker::render_stint(
            args,
            &input,
            &output,
            &doorbell,
            &mut renderer,
            &mut snapshot,
        );
        // Exit right here, as `worker::run` does, without dropping the regions.
        if let Some(code) = stint {
            std::process::exit(code);
        }
        output.set_left(args.epoch);
        match wait_for_call(&input, args.epoch) {
            Some(called) if called == slot => {}
            // It maps no other slot's ring.
            Some(_) => std::process::exit(EXIT_SETUP),
            None => std::process::exit(EXIT_PARENT_GONE),
        }
        // The plugin cleared the death word to prepare the slot.
        if let Some(held) = &held {
            held.again(output.death_word());
        }
    }
}

/// Sleeps on the spare call word until the plugin calls the spare spawned with `epoch`, and
/// returns the slot it is called to; `None` if the plugin went away.
fn wait_for_call(input: &InputRing, epoch: u32) -> Option<usize> {
    loop {
        let seen = input.spare_call_word().load(Ordering::Acquire);
        if let Some(slot) = input.spare_called(epoch) {
            return Some(slot);
        }
        shm::futex::wait_untimed(input.spare_call_word(), seen);
        if input.spare_called(epoch).is_none() && worker::parent_gone() {
            return None;
        }
    }
}
