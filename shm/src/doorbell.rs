//! The doorbell: one futex word the workers bump after every chunk, so the audio thread can sleep
//! on "either ring has progressed" with a single `FUTEX_WAIT`.
//!
//! Both workers can write it, so a rogue one can ring it spuriously or reset it; the audio thread
//! therefore only ever sleeps on it with a bounded timeout and re-checks the rings itself.

use crate::error::OpenError;
use crate::futex;
use crate::region::{Access, Region};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The doorbell region.
pub struct Doorbell {
    region: Region,
}

impl Doorbell {
    /// Plugin side: creates it.
    pub fn create() -> io::Result<Doorbell> {
        let region = Region::create("tandem-doorbell", 16)?;
        region.seal_seals()?;
        Ok(Doorbell { region })
    }

    /// Worker side: maps the handed fd.
    pub fn open(fd: OwnedFd) -> Result<Doorbell, OpenError> {
        let region = Region::map_whole(fd, Access::ReadWrite).map_err(|source| OpenError::Map {
            region: "doorbell",
            source,
        })?;
        Ok(Doorbell { region })
    }

    /// The memfd, to hand to a worker.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.region.fd()
    }

    /// The current count, to pass to [`Doorbell::wait`] after re-checking the rings.
    pub fn count(&self) -> u32 {
        self.region.word(0).load(Ordering::Acquire)
    }

    /// The futex word itself, for a waiter that sleeps on several words at once (the
    /// supervisor, with `futex::wait_any`). Worker-writable: a hint, never a verdict.
    pub fn word(&self) -> &AtomicU32 {
        self.region.word(0)
    }

    /// Sleeps until the count differs from `seen`, a wake, or `timeout`.
    pub fn wait(&self, seen: u32, timeout: Duration) {
        futex::wait(self.region.word(0), seen, timeout);
    }

    /// Worker side: rings (after publishing a chunk).
    pub fn ring(&self) {
        self.region.word(0).fetch_add(1, Ordering::Release);
        futex::wake_all(self.region.word(0));
    }
}
