//! Faults committed on purpose, so tests can watch the plugin survive real crashes and hangs.
//!
//! A fault is aimed at one (slot, epoch) through the chunk stream; see `shm::FaultCommand`.

use dsp::{Event, EventKind};
use shm::chunk::Chunk;
use shm::FaultKind;
use std::time::Duration;

/// What the render loop must do after a fault that leaves the process alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aftermath {
    /// Carry on normally.
    Continue,
    /// From now on, write bogus progress counters after every chunk.
    Rogue,
    /// Write NaN over this chunk's audio.
    PoisonChunk,
    /// From now on, write a malformed voice-end table after every chunk.
    BadVoiceEnds,
    /// From now on, publish progress without digests.
    MuteDigests,
    /// Flip bit 0 of this chunk's first left sample (before its digest).
    FlipLowBit,
    /// Overwrite this chunk's frames after publishing its digest.
    OverwriteFinished,
    /// From now on, keep the CPU busy between chunks instead of sleeping.
    HogBetweenChunks,
    /// Damage the next snapshot published.
    BadSnapshot,
}

/// Commits `kind`. Crashes and hangs do not return.
pub fn commit(kind: FaultKind, arg: u32) -> Aftermath {
    match kind {
        FaultKind::Segv => {
            // SAFETY: deliberately unsound: writing through a null pointer raises SIGSEGV, which
            // is the fault under test. Nothing after it runs.
            unsafe { std::ptr::null_mut::<u32>().write_volatile(1) };
            std::process::abort()
        }
        FaultKind::Abort => std::process::abort(),
        FaultKind::Panic => panic!("injected panic"),
        FaultKind::Exit0 => std::process::exit(0),
        FaultKind::InfiniteLoop => loop {
            std::hint::spin_loop();
        },
        FaultKind::SpinSleeping => loop {
            std::thread::sleep(Duration::from_nanos(1));
        },
        FaultKind::Sleep => {
            std::thread::sleep(Duration::from_millis(arg as u64));
            Aftermath::Continue
        }
        FaultKind::BadFields => Aftermath::Rogue,
        FaultKind::NaN => Aftermath::PoisonChunk,
        FaultKind::BadVoiceEnds => Aftermath::BadVoiceEnds,
        FaultKind::MuteDigests => Aftermath::MuteDigests,
        FaultKind::FlipLowBit => Aftermath::FlipLowBit,
        FaultKind::OverwriteFinished => Aftermath::OverwriteFinished,
        FaultKind::HogBetweenChunks => Aftermath::HogBetweenChunks,
        FaultKind::BadSnapshot => Aftermath::BadSnapshot,
        // Not aimed at one worker: `crash_on_note` applies it to every chunk.
        FaultKind::CrashOnNote => Aftermath::Continue,
    }
}

/// `CrashOnNote`: aborts if `chunk` holds a note-on of `key`, whichever worker renders it.
pub fn crash_on_note(chunk: &Chunk, key: u32) {
    let plays_key = chunk.events().iter().any(|&raw| {
        matches!(
            Event::from_raw(raw).map(|e| e.kind),
            Some(EventKind::NoteOn { key: k, .. } | EventKind::NoteOnId { key: k, .. })
                if k as u32 == key
        )
    });
    if plays_key {
        std::process::abort();
    }
}

/// `HogBetweenChunks`: a millisecond of busy CPU, then a 1 ns sleep, which resets the kernel's
/// `RLIMIT_RTTIME` count.
pub fn hog_a_millisecond() {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(1) {
        std::hint::spin_loop();
    }
    std::thread::sleep(Duration::from_nanos(1));
}
