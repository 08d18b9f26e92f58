//! The pre-spawned spare: one extra worker, started and sandboxed ahead of need, that sleeps
//! (no CPU) until a slot needs a worker. The rebuild then skips `exec`, dynamic loading and
//! the sandbox: the spare is handed a free output ring of its own at its spawn, `spawn_into`
//! prepares that ring as for any newcomer and calls the spare into the slot
//! (`InputRing::call_spare`); the spare restores the checkpoint inside its sandbox, replays and
//! joins like any newcomer, and is verified the same way. Its ring being its own, the call
//! does not wait for the dead worker's ring to be reaped (`Supervisor::remove`). A new spare is
//! spawned once both slots are verified again, so its spawn never delays a rebuild.
//!
//! A spare that dies while it waits is reaped and replaced (`EngineEvent::SpareDied`); the
//! supervisor notices on its next pass (every pass checks the spare's pidfd).
//!
//! In Eco an audit's or a hedge's standby, once verified, returns to waiting as the spare
//! (`eco.rs`, `dismiss`) with the ring it wrote, still its own; it is ready, and can be called
//! again, once that ring says it has left (`OutputRing::has_left`).

use super::{Supervisor, WorkerProcess, STARTUP_BOUND};
use crate::engine::config::Protection;
use crate::engine::events::EngineEvent;
use crate::engine::spawn::HandedFds;
use crate::sys;
use shm::futex::monotonic_ns;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A spare worker, asleep in its sandbox (or still starting: `ready`).
pub(super) struct Spare {
    process: WorkerProcess,
    /// The epoch it was spawned with: the one it runs as once called into a slot.
    epoch: u32,
    /// The output ring it was handed, the one it writes once called.
    ring: usize,
    /// When it was spawned.
    spawned_ns: u64,
    /// It has entered its sandbox (`in_sandbox`): a call now costs no `exec`, loading or
    /// sandbox entry. A call before that still works, only later. A returned standby: it has
    /// left its slot; no call before that.
    ready: bool,
    /// A returned standby, not a fresh spawn.
    returned: bool,
}

/// How long to wait before spawning a spare again after one failed to spawn.
const SPARE_RETRY_NS: u64 = 100_000_000;

impl Supervisor {
    /// Spawns a spare if there is none and both slots hold verified workers (a rebuild in
    /// progress comes first).
    pub(super) fn keep_spare(&mut self, now: u64) {
        if self.spare_due().is_some_and(|due| now >= due) {
            self.spawn_spare(now);
        }
    }

    /// When `keep_spare` will spawn a spare: there is none and both slots hold verified
    /// workers, or in Eco the one occupied slot does (after a failed spare, once its backoff
    /// ends). `None` while nothing is due. Not while a standby renders beside a late active:
    /// the spare's `exec` would wait for a core the late one may spin on, and the supervisor
    /// with it.
    pub(super) fn spare_due(&self) -> Option<u64> {
        let settled = match self.config.protection {
            Protection::Lockstep => self
                .workers
                .iter()
                .all(|w| w.as_ref().is_some_and(|w| w.verified)),
            Protection::Eco => {
                let mut occupied = self.workers.iter().flatten();
                occupied.clone().count() == 1 && occupied.all(|w| w.verified)
            }
        };
        (self.tuning.spare && self.spare.is_none() && settled).then_some(self.spare_not_before_ns)
    }

    /// Spawns a spare (at activation, next to the first workers, and by `keep_spare`). A spare
    /// that fails to spawn is retried later; the engine runs without one meanwhile.
    pub(super) fn spawn_spare(&mut self, now: u64) {
        if !self.tuning.spare {
            return;
        }
        let Some(ring) = self.take_ring() else {
            // None free (both slots hold one each, the spare the third): cannot happen.
            self.spare_not_before_ns = now + SPARE_RETRY_NS;
            return;
        };
        let epoch = self.new_epoch();
        let shared = self.shared.clone();
        let fds = HandedFds {
            input: shared.input.fd(),
            output: shared.rings[ring].fd(),
            doorbell: shared.doorbell.fd(),
        };
        let t0 = monotonic_ns();
        let spawned = WorkerProcess::spawn(
            &self.config.worker_path,
            None,
            epoch,
            self.worker_spin_us(),
            &fds,
        );
        match spawned {
            Ok(process) => {
                let pid = process.pid();
                self.keep_as_spare(process, epoch, ring, now, false);
                self.emit(EngineEvent::SpareSpawned {
                    epoch,
                    pid,
                    ring,
                    spawn_ns: monotonic_ns() - t0,
                });
                // The spare behind an audit ends it.
                self.auditing = false;
            }
            Err(e) => {
                self.free_rings[ring] = true;
                self.spare_not_before_ns = now + SPARE_RETRY_NS;
                log::warn!(
                    "spare worker not started: {}: {e}",
                    self.config.worker_path.display()
                );
            }
        }
    }

    /// Makes `process` (spawned with `epoch`, handed output `ring`) the spare, not ready yet: a
    /// new spawn, or (`returned`) a verified audit's or hedge's standby dismissed from its slot
    /// (`Supervisor::dismiss`), which keeps the ring it wrote.
    pub(super) fn keep_as_spare(
        &mut self,
        process: WorkerProcess,
        epoch: u32,
        ring: usize,
        now: u64,
        returned: bool,
    ) {
        self.shared
            .spare_pid
            .store(process.pid(), Ordering::Release);
        self.shared.spare_ready.store(false, Ordering::Release);
        self.spare = Some(Spare {
            process,
            epoch,
            ring,
            spawned_ns: now,
            ready: false,
            returned,
        });
    }

    /// Reaps the spare if it died while waiting (or, a returned standby, never left its slot),
    /// so that it is replaced; notes when a starting spare has entered its sandbox, or a
    /// returned one has left its slot.
    pub(super) fn check_spare(&mut self, now: u64) {
        let Some(spare) = self.spare.as_mut() else {
            return;
        };
        let [exited] = sys::poll([Some(spare.process.pidfd())], Duration::ZERO);
        let bound = now.saturating_sub(spare.spawned_ns) > STARTUP_BOUND.as_nanos() as u64;
        let stuck = match (spare.returned, spare.ready) {
            (_, true) => false,
            (true, false) => {
                spare.ready = self.shared.rings[spare.ring].has_left(spare.epoch);
                !spare.ready && bound
            }
            (false, false) => {
                spare.ready = bound || in_sandbox(spare.process.pid());
                false
            }
        };
        if !(exited || stuck) {
            self.shared
                .spare_ready
                .store(spare.ready, Ordering::Release);
            return;
        }
        let spare = self.spare.take().expect("checked above");
        self.forget_spare();
        let pid = spare.process.pid();
        let cause = self.reap(spare.process, spare.ring);
        // A spare that cannot even wait is as suspect as one that cannot start.
        self.spare_not_before_ns = now + SPARE_RETRY_NS;
        self.emit(EngineEvent::SpareDied {
            epoch: spare.epoch,
            pid,
            cause,
        });
    }

    /// The epoch and, if there is a spare that can take a slot, the process and its ring for
    /// the next worker spawned into it: the spare's, or a new epoch and no process. A returned
    /// standby that has not left its last slot yet cannot: it is reaped.
    pub(super) fn take_spare(&mut self) -> (u32, Option<(WorkerProcess, usize)>) {
        let Some(spare) = self.spare.take() else {
            return (self.new_epoch(), None);
        };
        self.forget_spare();
        if spare.returned && !spare.ready {
            self.reap(spare.process, spare.ring);
            return (self.new_epoch(), None);
        }
        (spare.epoch, Some((spare.process, spare.ring)))
    }

    /// Kills and reaps the spare (the engine is going away).
    pub(super) fn drop_spare(&mut self) {
        if let Some(spare) = self.spare.take() {
            self.forget_spare();
            self.reap(spare.process, spare.ring);
        }
    }

    /// Tells the audio thread and the engine's observers that no spare waits any more.
    fn forget_spare(&self) {
        self.shared.spare_ready.store(false, Ordering::Release);
        self.shared.spare_pid.store(0, Ordering::Release);
    }

    /// Whether a spare can be called into a slot now: a returned standby only once it has left
    /// its last one (a takeover that cannot wait spawns a new process instead: `take_spare`).
    pub(super) fn spare_callable(&self) -> bool {
        self.spare.as_ref().is_some_and(|s| s.ready || !s.returned)
    }

    /// A starting spare makes the supervisor look again on the tick, so its readiness is seen
    /// even while nothing else needs timing.
    pub(super) fn spare_starting(&self) -> bool {
        self.spare.as_ref().is_some_and(|s| !s.ready)
    }

    fn new_epoch(&mut self) -> u32 {
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        epoch
    }
}

/// Whether the spare `pid` has entered its sandbox, whose last layer, a seccomp filter, it
/// installs just before it sleeps waiting for a call: `/proc/<pid>/status` counts more filters
/// (`Seccomp_filters`) than our own process has, which it inherited (a DAW that runs sandboxed
/// itself). On a kernel without seccomp, or one too old to count filters, this never says so;
/// such a spare counts as ready `STARTUP_BOUND` after its spawn (`check_spare`).
fn in_sandbox(pid: u32) -> bool {
    let filters = |who: &str| {
        let status = std::fs::read_to_string(format!("/proc/{who}/status")).ok()?;
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp_filters:"))?;
        line.trim().parse::<u32>().ok()
    };
    match (filters(&pid.to_string()), filters("self")) {
        (Some(spare), Some(ours)) => spare > ours,
        _ => false,
    }
}
