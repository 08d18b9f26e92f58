//! A baseline for crash detection, measured beside the engine in the same run: the same
//! mechanism in a process that does nothing.
//!
//! A trivial child process (this executable, `bench baseline-child death`) holds a death word
//! (`shm::death`) at the workers' `SCHED_FIFO` priority and sleeps. A watcher thread of this
//! process, created by the host thread as the engine's supervisor is (so with the same
//! inherited priority, raised to at least the supervisor's), sleeps on the word exactly as the
//! supervisor does (`death::watch`, then `futex::wait_any`). The bench's host thread kills the
//! child with the same `kill(2)` it uses on the workers, between its faults, and takes the time
//! after `kill` returns, as it does for them. Kill to the watcher awake is then what the kernel
//! and this machine's scheduler cost with no engine in the way: a detection figure near this
//! baseline is the machine's; one well above it is the engine's own cost. (A worker killed
//! while rendering is already on a CPU, so the engine can come out below the baseline.)

use super::{spawn_child, Role};
use crate::bench::host::now_ns;
use anyhow::{bail, Context, Result};
use shm::death::{self, Watch};
use shm::region::Region;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the watcher waits for a child to arm its word before it gives up.
const ARM_BOUND: Duration = Duration::from_secs(5);

/// What the host thread and the watcher share.
struct Shared {
    region: Region,
    /// The armed child's pid while the watcher sleeps on its word; 0 otherwise.
    armed_pid: AtomicU32,
    /// When the host thread's `kill` of the armed child returned; 0 until then.
    killed_ns: AtomicU64,
    stop: AtomicBool,
    samples_us: Mutex<Vec<f64>>,
}

/// A trivial child and its watcher; see the module comment.
pub struct DeathBaseline {
    shared: Arc<Shared>,
    watcher: Option<JoinHandle<Result<()>>>,
}

impl DeathBaseline {
    /// Starts the watcher (from the calling thread, as the engine starts its supervisor), which
    /// spawns the first child.
    pub fn start() -> Result<DeathBaseline> {
        let shared = Arc::new(Shared {
            region: Region::create("tandem-death-baseline", 1024)?,
            armed_pid: AtomicU32::new(0),
            killed_ns: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            samples_us: Mutex::new(Vec::new()),
        });
        let for_watcher = shared.clone();
        let watcher = std::thread::Builder::new()
            .name("death-baseline".into())
            .spawn(move || watch(&for_watcher))?;
        Ok(DeathBaseline {
            shared,
            watcher: Some(watcher),
        })
    }

    /// Host thread: kills the child if it is armed and watched (a kill while the next child
    /// starts is skipped: one sample fewer).
    pub fn kill(&self) {
        let pid = self.shared.armed_pid.swap(0, Ordering::AcqRel);
        if pid == 0 {
            return;
        }
        // SAFETY: kill(2) on the pid of our own child, which the watcher reaps only after this
        // kill is noted below (`watch`), so the pid cannot have been recycled; no memory is
        // involved.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
        self.shared.killed_ns.store(now_ns(), Ordering::Release);
    }

    /// Stops the watcher and its child; returns the samples, kill to watcher awake, in µs.
    /// A baseline that failed (a child that would not start) only says so: it must not cost
    /// the benchmark it stands beside, so its samples so far are returned all the same.
    pub fn finish(mut self) -> Vec<f64> {
        if let Err(e) = self.stop() {
            eprintln!("death baseline stopped early, its samples so far kept: {e:#}");
        }
        std::mem::take(&mut *self.shared.samples_us.lock().unwrap())
    }

    fn stop(&mut self) -> Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        shm::futex::wake_all(self.shared.region.word(0));
        match self.watcher.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => bail!("the death-baseline watcher panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for DeathBaseline {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("death baseline: {e:#}");
        }
    }
}

/// The watcher: spawn a child, sleep on its word until it dies, note the time, reap, again.
fn watch(shared: &Shared) -> Result<()> {
    tandem::sys::raise_to_fifo(tandem::engine::SUPERVISOR_PRIORITY);
    while !shared.stop.load(Ordering::Acquire) {
        shared.region.word(0).store(0, Ordering::SeqCst);
        shared.killed_ns.store(0, Ordering::SeqCst);
        let mut child = spawn_child(Role::Death, &shared.region)?;
        let mut offered = false;
        let awake = watch_one(shared, &child, &mut offered);
        // Withdraw the offer. If the host thread took it, its `kill` may still be under way:
        // reap only once it has noted the time, which it does as soon as `kill` returns (and
        // it stops us only after), so the pid it signals is never a recycled one.
        let taken = offered && shared.armed_pid.swap(0, Ordering::AcqRel) == 0;
        let killed_ns = loop {
            let t = shared.killed_ns.load(Ordering::Acquire);
            if t != 0 || !taken || shared.stop.load(Ordering::Acquire) {
                break t;
            }
            std::thread::sleep(Duration::from_micros(50));
        };
        let _ = child.kill();
        child.wait()?;
        if let (Some(awake_ns), true) = (awake?, killed_ns != 0) {
            // As the engine's detection is taken: clamped at 0 when we woke first.
            let us = awake_ns.saturating_sub(killed_ns) as f64 / 1e3;
            shared.samples_us.lock().unwrap().push(us);
        }
    }
    Ok(())
}

/// Sleeps on one child's word until it dies (returns when we saw it, awake) or the baseline
/// stops (`None`); offers the armed child to the host thread once (`offered`).
fn watch_one(shared: &Shared, child: &Child, offered: &mut bool) -> Result<Option<u64>> {
    let word = shared.region.word(0);
    let pid = child.id();
    let armed_by = now_ns() + ARM_BOUND.as_nanos() as u64;
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return Ok(None);
        }
        match death::watch(word, pid) {
            Watch::NotArmed => {
                if now_ns() > armed_by {
                    bail!("the death-baseline child {pid} did not arm its word");
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Watch::Held(value) => {
                // Offered once: a wake-up before the death is visible must not offer it again
                // (a second kill would move the noted time).
                if !*offered {
                    shared.armed_pid.store(pid, Ordering::Release);
                    *offered = true;
                }
                let deadline = now_ns() + 50_000_000;
                shm::futex::wait_any(&[(word, value)], Some(deadline)).context("futex_waitv")?;
            }
            Watch::Released => return Ok(Some(now_ns())),
        }
    }
}

/// The child's part: takes hold of word 0 as its death word, then sleeps until killed.
pub(super) fn child(region: &Region) -> Result<()> {
    death::arm(region.word(0))?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
