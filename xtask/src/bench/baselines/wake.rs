//! Waking an idle child once a block: the least CPU any design pays that renders in another
//! process and wakes it for every block (the host thread's `FUTEX_WAKE`, the child's switch in
//! and out), with none of the render, the checks or the supervisor of the engine. `bench
//! overhead` adds it to the in-process render (mode `in_process_woken`): a floor under
//! `single_worker`, measured on the same period clock in the same run.

use super::{spawn_child, Role};
use crate::bench::host::now_ns;
use anyhow::{bail, Result};
use shm::region::Region;
use std::process::Child;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long `start` waits for the child to sleep on its word.
const START_BOUND: Duration = Duration::from_secs(5);

/// An idle child woken once a block; see the module comment.
pub struct WakeBaseline {
    region: Region,
    child: Child,
}

impl WakeBaseline {
    /// Spawns the child and waits until it has acknowledged the first value.
    pub fn start() -> Result<WakeBaseline> {
        let region = Region::create("tandem-wake-baseline", 1024)?;
        region.word(0).store(1, Ordering::SeqCst);
        let child = spawn_child(Role::Wake, &region)?;
        let baseline = WakeBaseline { region, child };
        let by = now_ns() + START_BOUND.as_nanos() as u64;
        while baseline.region.word(1).load(Ordering::Acquire) != 1 {
            if now_ns() > by {
                bail!("the wake baseline's child did not start");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(baseline)
    }

    /// Host thread: posts a new value and wakes the child, as the audio thread wakes a worker.
    pub fn wake(&self) {
        self.region.word(0).fetch_add(1, Ordering::Release);
        shm::futex::wake_all(self.region.word(0));
    }

    /// The child's pid, for its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for WakeBaseline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's part: acknowledge the value in word 0, sleep until it changes, again.
pub(super) fn child(region: &Region) -> Result<()> {
    let (posted, seen) = (region.word(0), region.word(1));
    loop {
        let value = posted.load(Ordering::Acquire);
        seen.store(value, Ordering::Release);
        shm::futex::wait_untimed(posted, value);
    }
}
