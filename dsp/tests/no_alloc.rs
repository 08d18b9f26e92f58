//! The real-time rule, enforced: nothing on the audio path allocates.
//!
//! A counting global allocator (this test binary only) counts allocations made by the current
//! thread while tracking is on. The `unsafe` here is the `GlobalAlloc` contract itself; the
//! `dsp` library has none.

mod common;
use common::*;
use dsp::{Event, ParamId, Synth};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    // Per thread, so tests running in parallel never count each other's allocations.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    if TRACKING.try_with(|t| t.get()).unwrap_or(false) {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is upheld exactly as `System` upholds it; counting touches only an
// two const-initialised thread-locals without destructors, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    TRACKING.with(|t| t.set(true));
    f();
    TRACKING.with(|t| t.set(false));
    ALLOCS.with(Cell::get) - before
}

#[test]
fn the_counter_counts() {
    let n = allocations(|| {
        std::hint::black_box(vec![0u8; 16]);
    });
    assert_eq!(n, 1);
}

#[test]
fn render_set_param_snapshot_restore_reset_never_allocate() {
    let frames = 48_000;
    let block = 256;
    let mut rng = Rng::new(11);
    let perf = random_performance(&mut rng, frames, 60);
    // Everything the "host" needs is prepared before tracking starts.
    let blocks: Vec<Vec<Event>> = (0..frames / block)
        .map(|b| block_events(&perf, b * block, block))
        .collect();
    let input = vec![0.25f32; block];
    let mut l = vec![0.0f32; block];
    let mut r = vec![0.0f32; block];
    let mut synth = Synth::new(SR, block).unwrap();
    let mut snap = vec![0u8; synth.snapshot_len()];
    let mut spare = Synth::new(SR, block).unwrap();

    let n = allocations(|| {
        for (i, events) in blocks.iter().enumerate() {
            for id in ParamId::ALL {
                synth.set_param(id, synth.param(id));
            }
            let inp = (i % 2 == 0).then_some([&input[..], &input[..]]);
            synth.render(events, inp, [&mut l, &mut r]);
            if i % 37 == 0 {
                synth.snapshot_into(&mut snap).unwrap();
                spare.restore(&snap).unwrap();
                let _ = spare.restore(&snap[..10]);
            }
        }
        synth.reset();
    });
    assert_eq!(n, 0, "{n} allocations on the audio path");
}
