//! What the audio thread actually served, so the supervisor can check it off the audio thread.
//!
//! A worker's digest is its own claim about what it wrote; a worker can publish an honest
//! digest and then change the finished frames before the audio thread copies them. So the audio
//! thread records every frame it delivers (after the validating copy, as the host got it) with
//! the epoch of the worker it came from (0: the fallback), and the supervisor digests each
//! delivered chunk's frames and compares them with the digest that worker published
//! (`supervisor/served.rs`). Plain atomics in the plugin's own memory: the audio thread's part
//! is two relaxed stores a sample and one a frame, no allocation, no lock.

use std::sync::atomic::{AtomicU32, Ordering};

/// A ring of served frames, indexed by absolute frame, with the serving worker's epoch.
pub(crate) struct ServedLog {
    left: Box<[AtomicU32]>,
    right: Box<[AtomicU32]>,
    epoch: Box<[AtomicU32]>,
    mask: u64,
}

impl ServedLog {
    /// A log of `capacity` frames (a power of two), created at activation.
    pub fn new(capacity: usize) -> ServedLog {
        let words = || (0..capacity).map(|_| AtomicU32::new(0)).collect();
        ServedLog {
            left: words(),
            right: words(),
            epoch: words(),
            mask: capacity as u64 - 1,
        }
    }

    /// Frames it holds: a reader must stay within this much of what has been delivered.
    pub fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Audio thread: frames from `start` were delivered from the worker of `epoch` (0: by the
    /// fallback, with `audio` what the host got).
    pub fn record(&self, start: u64, epoch: u32, audio: [&[f32]; 2]) {
        let [l, r] = audio;
        for (k, (l, r)) in l.iter().zip(r).enumerate() {
            let i = ((start + k as u64) & self.mask) as usize;
            self.left[i].store(l.to_bits(), Ordering::Relaxed);
            self.right[i].store(r.to_bits(), Ordering::Relaxed);
            self.epoch[i].store(epoch, Ordering::Relaxed);
        }
    }

    /// Supervisor: copies the frames from `start` into `out`; returns the epoch that served
    /// them all, or `None` if they came from more than one source. The caller makes sure they
    /// were delivered (`Shared::delivered_frames`, acquire) and not overwritten since.
    pub fn read(&self, start: u64, out: [&mut [f32]; 2]) -> Option<u32> {
        let [l, r] = out;
        let first = self.epoch[(start & self.mask) as usize].load(Ordering::Relaxed);
        let mut one_source = true;
        for (k, (l, r)) in l.iter_mut().zip(r.iter_mut()).enumerate() {
            let i = ((start + k as u64) & self.mask) as usize;
            *l = f32::from_bits(self.left[i].load(Ordering::Relaxed));
            *r = f32::from_bits(self.right[i].load(Ordering::Relaxed));
            one_source &= self.epoch[i].load(Ordering::Relaxed) == first;
        }
        one_source.then_some(first)
    }
}
