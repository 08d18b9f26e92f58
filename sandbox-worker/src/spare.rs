//! A spare worker: spawned ahead of need and already inside its sandbox, it sleeps on the input
//! ring's spare call word (no CPU) until the plugin calls it into the slot of a worker that died
//! (docs/ARCHITECTURE.md, "Failure detection and rebuild"). A rebuild then waits for neither
//! `exec`, dynamic loading nor the sandbox.
//!
//! It is handed one output ring like any worker: a ring of its own, which no other live process
//! maps, so the plugin calls it without waiting for the dead worker's ring to be reaped. Only the
//! slot (which a fault command names) is learnt at the call.
//!
//! Eco calls it beside the active worker for an audit and, once it is verified, dismisses it:
//! it stops writing its ring, says so (`OutputRing::set_left`) and waits again, to be called
//! into a slot once more, where it restores the state it is then given like any newcomer.

use crate::worker::{self, Args, EXIT_PARENT_GONE};
use render::ChunkRenderer;
use shm::death::Held;
use shm::{Doorbell, InputRing, OutputRing};
use std::sync::atomic::Ordering;

/// Enters the sandbox, sleeps until called, then takes hold of its ring's death word, restores
/// the start state the plugin wrote there and renders like any worker, until dismissed (then it
/// waits to be called again). Returns an exit status if it fails before the sandbox; after that
/// it exits the process itself.
pub(crate) fn run(
    args: Args,
    input: InputRing,
    output: OutputRing,
    doorbell: Doorbell,
    mut renderer: ChunkRenderer,
    mut snapshot: Vec<u8>,
) -> i32 {
    // Registered empty now (the sandbox forbids it later), held once called: the plugin clears
    // the death word when it prepares the ring for the call.
    let robust = shm::death::RobustList::register();
    if let Err(code) = crate::enter_sandbox() {
        return code;
    }
    let Some(mut slot) = wait_for_call(&input, args.epoch) else {
        std::process::exit(EXIT_PARENT_GONE);
    };
    let held: Option<Held> = match robust {
        Ok(list) => Some(list.hold(output.death_word())),
        // Not fatal: the supervisor then learns of our death from the pidfd only.
        Err(e) => {
            eprintln!("tandem-worker: death word not armed: {e}");
            None
        }
    };
    loop {
        let args = Args {
            slot: slot as u32,
            ..args
        };
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
        let Some(called) = wait_for_call(&input, args.epoch) else {
            std::process::exit(EXIT_PARENT_GONE);
        };
        slot = called;
        // The plugin cleared the death word to prepare the ring.
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
