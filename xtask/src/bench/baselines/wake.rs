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
const START_BOUND: Duration = Duration::from_secs(30);

/// Word 0: the value posted; word 1: the value the child saw last; words 2-3: when it woke.
const POSTED: usize = 0;
const SEEN: usize = 1;
const WOKE_NS: usize = 2;

/// An idle child woken once a block; see the module comment.
pub struct WakeBaseline {
    region: Region,
    child: Child,
    /// When the last value was posted.
    posted_ns: u64,
    /// Post to the child running, per post it answered, in µs.
    latency_us: Vec<f64>,
    /// The host thread's `FUTEX_WAKE` call, per post, in µs.
    syscall_us: Vec<f64>,
}

impl WakeBaseline {
    /// Spawns the child and waits until it has acknowledged the first value.
    pub fn start() -> Result<WakeBaseline> {
        let region = Region::create("tandem-wake-baseline", 1024)?;
        region.word(POSTED).store(1, Ordering::SeqCst);
        let child = spawn_child(Role::Wake, &region)?;
        let baseline = WakeBaseline {
            region,
            child,
            posted_ns: 0,
            latency_us: Vec::with_capacity(1 << 16),
            syscall_us: Vec::with_capacity(1 << 16),
        };
        let by = now_ns() + START_BOUND.as_nanos() as u64;
        while baseline.region.word(SEEN).load(Ordering::Acquire) != 1 {
            if now_ns() > by {
                bail!("the wake baseline's child did not start");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(baseline)
    }

    /// Host thread: notes how long the child took to wake for the last post (if it has),
    /// then posts a new value and wakes the child, as the audio thread wakes a worker.
    pub fn wake(&mut self) {
        let posted = self.region.word(POSTED);
        let last = posted.load(Ordering::Relaxed);
        if self.posted_ns != 0 && self.region.word(SEEN).load(Ordering::Acquire) == last {
            let woke_ns = self.region.dword(WOKE_NS).load(Ordering::Relaxed);
            self.latency_us
                .push(woke_ns.saturating_sub(self.posted_ns) as f64 / 1e3);
        }
        self.posted_ns = now_ns();
        posted.store(last.wrapping_add(1), Ordering::Release);
        shm::futex::wake_all(posted);
        self.syscall_us
            .push(now_ns().saturating_sub(self.posted_ns) as f64 / 1e3);
    }

    /// From each post to the child running (the posts it answered before the next), in µs:
    /// the wake-up latency of an idle process on this machine.
    pub fn take_latency_us(&mut self) -> Vec<f64> {
        std::mem::take(&mut self.latency_us)
    }

    /// Each post's `FUTEX_WAKE` call on the host thread, in µs: what waking a sleeping worker
    /// costs the audio thread on this machine.
    pub fn take_syscall_us(&mut self) -> Vec<f64> {
        std::mem::take(&mut self.syscall_us)
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

/// The child's part: note when it woke and acknowledge the value posted, sleep until it
/// changes, again.
pub(super) fn child(region: &Region) -> Result<()> {
    let (posted, seen, woke) = (
        region.word(POSTED),
        region.word(SEEN),
        region.dword(WOKE_NS),
    );
    loop {
        let value = posted.load(Ordering::Acquire);
        woke.store(now_ns(), Ordering::Relaxed);
        seen.store(value, Ordering::Release);
        shm::futex::wait_untimed(posted, value);
    }
}
