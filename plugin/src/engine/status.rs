//! A live, lock-free view of the engine for the editor's protection panel.
//!
//! The plugin creates one [`EngineStatus`] when it is instantiated and hands a clone to every
//! engine it activates, so the editor can show it before the first activation, across
//! reactivations and after the engine is gone. The supervisor thread writes it as it reports
//! each [`EngineEvent`] (see `Supervisor::emit`); the audio thread never touches it. Readers
//! take a [`StatusSnapshot`] whenever they like.
//!
//! Everything is an atomic except the last fault's human-readable cause, which sits behind a
//! mutex that only the supervisor (when a worker ends) and the editor (when it draws) take.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use shm::futex::monotonic_ns;

use super::{EngineEvent, EvictReason, Protection};

/// What a worker slot holds right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    /// No worker and none on its way: no engine is running (before activation, or after the
    /// plugin stopped it), or in Eco the slot is kept empty for the standby.
    Stopped,
    /// Started and catching up; not yet proved bit-identical to its twin.
    Joining,
    /// Verified: renders in lockstep with its twin and may be heard.
    Live,
    /// Gone (crashed, killed or evicted); a replacement is on its way.
    Dead,
}

impl WorkerState {
    fn from_code(code: u8) -> WorkerState {
        match code {
            1 => WorkerState::Joining,
            2 => WorkerState::Live,
            3 => WorkerState::Dead,
            _ => WorkerState::Stopped,
        }
    }

    fn code(self) -> u8 {
        match self {
            WorkerState::Stopped => 0,
            WorkerState::Joining => 1,
            WorkerState::Live => 2,
            WorkerState::Dead => 3,
        }
    }
}

/// Why the last worker was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The process ended on its own or by a signal (crash, abort, SIGKILL).
    Died,
    /// It stopped making progress and was killed.
    Hung,
    /// Its ring failed validation and it was killed.
    Rogue,
    /// Its audio differed from its twin's and it was killed.
    Diverged,
}

impl FaultKind {
    fn from_code(code: u8) -> Option<FaultKind> {
        match code {
            1 => Some(FaultKind::Died),
            2 => Some(FaultKind::Hung),
            3 => Some(FaultKind::Rogue),
            4 => Some(FaultKind::Diverged),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        match self {
            FaultKind::Died => 1,
            FaultKind::Hung => 2,
            FaultKind::Rogue => 3,
            FaultKind::Diverged => 4,
        }
    }
}

#[derive(Default)]
struct Slot {
    state: AtomicU8,
    pid: AtomicU32,
    /// CLOCK_MONOTONIC ns of the current worker's start.
    spawned_ns: AtomicU64,
}

#[derive(Default)]
struct Inner {
    slots: [Slot; 2],
    running: AtomicBool,
    /// The running engine protects in Eco: a slot left by a fault stays empty.
    eco: AtomicBool,
    latency_frames: AtomicU32,
    sample_rate_bits: AtomicU32,
    failovers: AtomicU64,
    switches: AtomicU64,
    xruns: AtomicU64,
    fallback_frames: AtomicU64,
    fault_kind: AtomicU8,
    fault_slot: AtomicU8,
    fault_detected_ns: AtomicU64,
    /// Detection to verified replacement for the last fault; 0 while the rebuild runs.
    fault_rebuild_ns: AtomicU64,
    fault_cause: Mutex<String>,
}

/// A shared handle to the engine's status; cheap to clone, safe to read from any thread.
#[derive(Clone, Default)]
pub struct EngineStatus {
    inner: Arc<Inner>,
}

/// One worker slot as of a [`StatusSnapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerView {
    /// What the slot holds.
    pub state: WorkerState,
    /// The worker's process id (0 when there is none).
    pub pid: u32,
    /// CLOCK_MONOTONIC ns when the current worker started (0 when there is none).
    pub spawned_ns: u64,
}

/// The last lost worker as of a [`StatusSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultView {
    /// Why it was lost.
    pub kind: FaultKind,
    /// Its slot, 0 or 1.
    pub slot: usize,
    /// How it ended, in words ("killed by signal 9 (SIGKILL)", "hung", ...).
    pub cause: String,
    /// CLOCK_MONOTONIC ns when the supervisor knew.
    pub detected_ns: u64,
    /// From detection to a verified replacement; `None` while the rebuild is still running.
    pub rebuild_ns: Option<u64>,
}

/// Everything the protection panel shows, read at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusSnapshot {
    /// CLOCK_MONOTONIC ns when this was read, for ages ("3 s ago", uptimes).
    pub at_ns: u64,
    /// Whether an engine is running.
    pub running: bool,
    /// The latency `L` the running engine reports, in frames.
    pub latency_frames: u32,
    /// The running engine's sample rate in Hz (0 before the first activation).
    pub sample_rate: f32,
    /// Both worker slots.
    pub workers: [WorkerView; 2],
    /// Workers lost so far (died or evicted) in this plugin instance.
    pub failovers: u64,
    /// Times the audio thread switched to the other worker's ring.
    pub switches: u64,
    /// Blocks that needed the declicked fallback.
    pub xruns: u64,
    /// Frames the fallback filled in those blocks.
    pub fallback_frames: u64,
    /// The last lost worker, if any.
    pub last_fault: Option<FaultView>,
}

impl EngineStatus {
    /// A status with no engine running yet.
    pub fn new() -> EngineStatus {
        EngineStatus::default()
    }

    /// Main thread, at activation: the new engine's latency and sample rate.
    pub(super) fn started(&self, latency_frames: u32, sample_rate: f32, protection: Protection) {
        let inner = &*self.inner;
        inner
            .eco
            .store(protection == Protection::Eco, Ordering::Relaxed);
        inner
            .latency_frames
            .store(latency_frames, Ordering::Relaxed);
        inner
            .sample_rate_bits
            .store(sample_rate.to_bits(), Ordering::Relaxed);
        inner.running.store(true, Ordering::Release);
    }

    /// The engine stopped its workers (it is being dropped).
    pub(super) fn stopped(&self) {
        let inner = &*self.inner;
        inner.running.store(false, Ordering::Release);
        for slot in &inner.slots {
            slot.state
                .store(WorkerState::Stopped.code(), Ordering::Relaxed);
            slot.pid.store(0, Ordering::Relaxed);
        }
    }

    /// Supervisor thread: folds one event into the status.
    pub(super) fn record(&self, event: &EngineEvent) {
        let inner = &*self.inner;
        let set_state = |slot: usize, state: WorkerState| {
            inner.slots[slot & 1]
                .state
                .store(state.code(), Ordering::Relaxed)
        };
        match event {
            EngineEvent::WorkerSpawned { slot, pid, .. } => {
                let s = &inner.slots[slot & 1];
                s.pid.store(*pid, Ordering::Relaxed);
                s.spawned_ns.store(monotonic_ns(), Ordering::Relaxed);
                set_state(*slot, WorkerState::Joining);
            }
            EngineEvent::WorkerVerified {
                slot, rebuild_ns, ..
            } => {
                set_state(*slot, WorkerState::Live);
                // In Eco the slot a fault emptied is not refilled: the standby took the other.
                let other = &inner.slots[(slot & 1) ^ 1];
                let dead = other.state.load(Ordering::Relaxed) == WorkerState::Dead.code();
                if inner.eco.load(Ordering::Relaxed) && dead {
                    other
                        .state
                        .store(WorkerState::Stopped.code(), Ordering::Relaxed);
                }
                if *rebuild_ns > 0 && inner.fault_slot.load(Ordering::Relaxed) as usize == *slot {
                    inner.fault_rebuild_ns.store(*rebuild_ns, Ordering::Release);
                }
            }
            EngineEvent::WorkerDied {
                slot,
                pid,
                cause,
                detected_ns,
                ..
            } => self.fault(
                *slot,
                *pid,
                FaultKind::Died,
                cause.to_string(),
                *detected_ns,
            ),
            EngineEvent::WorkerEvicted {
                slot,
                pid,
                reason,
                detected_ns,
                ..
            } => {
                let (kind, cause) = match reason {
                    EvictReason::Hang => (FaultKind::Hung, String::from("stopped making progress")),
                    EvictReason::Rogue(r) => (FaultKind::Rogue, r.to_string()),
                    EvictReason::Divergence => {
                        (FaultKind::Diverged, String::from("differed from its twin"))
                    }
                    EvictReason::FellBehind => (
                        FaultKind::Hung,
                        String::from("fell behind; rebuilt to catch up"),
                    ),
                    EvictReason::CpuBudget => (
                        FaultKind::Rogue,
                        String::from("used far more CPU than its twin"),
                    ),
                };
                self.fault(*slot, *pid, kind, cause, *detected_ns);
            }
            EngineEvent::SpawnFailed { slot, .. } => set_state(*slot, WorkerState::Dead),
            EngineEvent::WorkerRetired { slot, .. } | EngineEvent::StandbyReturned { slot, .. } => {
                set_state(*slot, WorkerState::Stopped);
                inner.slots[slot & 1].pid.store(0, Ordering::Relaxed);
            }
            EngineEvent::Switched { .. } => {
                inner.switches.fetch_add(1, Ordering::Relaxed);
            }
            EngineEvent::Xrun { frames, .. } => {
                inner.xruns.fetch_add(1, Ordering::Relaxed);
                inner
                    .fallback_frames
                    .fetch_add(u64::from(*frames), Ordering::Relaxed);
            }
            EngineEvent::StateLost { .. }
            | EngineEvent::ChunkQuarantined { .. }
            | EngineEvent::SpareSpawned { .. }
            | EngineEvent::SpareDied { .. }
            | EngineEvent::StandbyCalled { .. } => {}
        }
    }

    /// The worker `pid` in `slot` died or was evicted. The spare is called into its slot before
    /// the supervisor reaps it and reports this, so the slot may show its newcomer already: then
    /// it stays as it is.
    fn fault(&self, slot: usize, pid: u32, kind: FaultKind, cause: String, detected_ns: u64) {
        let inner = &*self.inner;
        let s = &inner.slots[slot & 1];
        if s.pid.load(Ordering::Relaxed) == pid {
            s.state.store(WorkerState::Dead.code(), Ordering::Relaxed);
            s.pid.store(0, Ordering::Relaxed);
        }
        inner.failovers.fetch_add(1, Ordering::Relaxed);
        *inner
            .fault_cause
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = cause;
        inner.fault_slot.store((slot & 1) as u8, Ordering::Relaxed);
        inner.fault_rebuild_ns.store(0, Ordering::Relaxed);
        inner
            .fault_detected_ns
            .store(detected_ns, Ordering::Relaxed);
        inner.fault_kind.store(kind.code(), Ordering::Release);
    }

    /// Reads everything at once (not atomically as a whole; each field is current).
    pub fn snapshot(&self) -> StatusSnapshot {
        let inner = &*self.inner;
        let workers = [0, 1].map(|i| {
            let s = &inner.slots[i];
            WorkerView {
                state: WorkerState::from_code(s.state.load(Ordering::Relaxed)),
                pid: s.pid.load(Ordering::Relaxed),
                spawned_ns: s.spawned_ns.load(Ordering::Relaxed),
            }
        });
        let last_fault =
            FaultKind::from_code(inner.fault_kind.load(Ordering::Acquire)).map(|kind| {
                let rebuild = inner.fault_rebuild_ns.load(Ordering::Acquire);
                FaultView {
                    kind,
                    slot: inner.fault_slot.load(Ordering::Relaxed) as usize,
                    cause: inner
                        .fault_cause
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .clone(),
                    detected_ns: inner.fault_detected_ns.load(Ordering::Relaxed),
                    rebuild_ns: (rebuild > 0).then_some(rebuild),
                }
            });
        StatusSnapshot {
            at_ns: monotonic_ns(),
            running: inner.running.load(Ordering::Acquire),
            latency_frames: inner.latency_frames.load(Ordering::Relaxed),
            sample_rate: f32::from_bits(inner.sample_rate_bits.load(Ordering::Relaxed)),
            workers,
            failovers: inner.failovers.load(Ordering::Relaxed),
            switches: inner.switches.load(Ordering::Relaxed),
            xruns: inner.xruns.load(Ordering::Relaxed),
            fallback_frames: inner.fallback_frames.load(Ordering::Relaxed),
            last_fault,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kill_and_its_rebuild_show_up() {
        let status = EngineStatus::new();
        assert!(!status.snapshot().running);
        status.started(512, 48_000.0, Protection::Lockstep);
        for slot in 0..2 {
            status.record(&EngineEvent::WorkerSpawned {
                slot,
                epoch: slot as u32 + 1,
                pid: 100 + slot as u32,
                ring: slot,
                from_chunk: None,
                spawn_ns: 1,
            });
            status.record(&EngineEvent::WorkerVerified {
                slot,
                epoch: slot as u32 + 1,
                at_ns: 2,
                rebuild_ns: 0,
            });
        }
        let s = status.snapshot();
        assert_eq!(s.workers.map(|w| w.state), [WorkerState::Live; 2]);
        assert_eq!(s.workers.map(|w| w.pid), [100, 101]);
        assert_eq!(s.last_fault, None);

        status.record(&EngineEvent::WorkerDied {
            slot: 1,
            epoch: 2,
            pid: 101,
            cause: crate::engine::WorkerExit::Signalled(9),
            detected_ns: 7,
        });
        let s = status.snapshot();
        assert_eq!(s.workers[1].state, WorkerState::Dead);
        assert_eq!(s.failovers, 1);
        let fault = s.last_fault.expect("the fault");
        assert_eq!(
            (fault.kind, fault.slot, fault.rebuild_ns),
            (FaultKind::Died, 1, None)
        );
        assert!(fault.cause.contains("SIGKILL"));

        status.record(&EngineEvent::WorkerSpawned {
            slot: 1,
            epoch: 3,
            pid: 102,
            ring: 2,
            from_chunk: Some(9),
            spawn_ns: 1,
        });
        assert_eq!(status.snapshot().workers[1].state, WorkerState::Joining);
        status.record(&EngineEvent::WorkerVerified {
            slot: 1,
            epoch: 3,
            at_ns: 9,
            rebuild_ns: 3_000_000,
        });
        status.record(&EngineEvent::Xrun {
            frames: 64,
            at_frame: 0,
        });
        let s = status.snapshot();
        assert_eq!(
            s.workers[1],
            WorkerView {
                pid: 102,
                ..s.workers[1]
            }
        );
        assert_eq!(s.workers[1].state, WorkerState::Live);
        assert_eq!(s.last_fault.unwrap().rebuild_ns, Some(3_000_000));
        assert_eq!((s.xruns, s.fallback_frames), (1, 64));

        // The spare called into slot 0 before its dead worker is reaped and reported: the slot
        // shows the newcomer, and the fault is recorded.
        status.record(&EngineEvent::WorkerSpawned {
            slot: 0,
            epoch: 4,
            pid: 103,
            ring: 1,
            from_chunk: Some(12),
            spawn_ns: 1,
        });
        status.record(&EngineEvent::WorkerDied {
            slot: 0,
            epoch: 1,
            pid: 100,
            cause: crate::engine::WorkerExit::Signalled(9),
            detected_ns: 11,
        });
        let s = status.snapshot();
        assert_eq!(
            (s.workers[0].state, s.workers[0].pid),
            (WorkerState::Joining, 103)
        );
        assert_eq!((s.failovers, s.last_fault.unwrap().slot), (2, 0));

        status.stopped();
        let s = status.snapshot();
        assert!(!s.running);
        assert_eq!(s.workers.map(|w| w.state), [WorkerState::Stopped; 2]);
        assert_eq!(s.failovers, 2, "history outlives the engine");
    }

    /// Eco: a takeover leaves the dead worker's slot empty once the standby is verified, and a
    /// retired worker is no fault.
    #[test]
    fn eco_takeovers_and_retirements_are_truthful() {
        let status = EngineStatus::new();
        status.started(64, 48_000.0, Protection::Eco);
        let spawn = |slot: usize, epoch: u32| {
            status.record(&EngineEvent::WorkerSpawned {
                slot,
                epoch,
                pid: 100 + epoch,
                ring: epoch as usize % 3,
                from_chunk: None,
                spawn_ns: 1,
            })
        };
        let verify = |slot: usize, epoch: u32| {
            status.record(&EngineEvent::WorkerVerified {
                slot,
                epoch,
                at_ns: 2,
                rebuild_ns: 0,
            })
        };
        spawn(0, 1);
        verify(0, 1);
        // An audit: the standby joins slot 1, the older worker is retired.
        spawn(1, 2);
        verify(1, 2);
        status.record(&EngineEvent::WorkerRetired {
            slot: 0,
            epoch: 1,
            pid: 101,
        });
        let s = status.snapshot();
        assert_eq!(
            s.workers.map(|w| w.state),
            [WorkerState::Stopped, WorkerState::Live]
        );
        assert_eq!((s.failovers, s.last_fault), (0, None));
        // A takeover: the standby goes into slot 0, then the dead worker is reported.
        spawn(0, 3);
        status.record(&EngineEvent::WorkerDied {
            slot: 1,
            epoch: 2,
            pid: 102,
            cause: crate::engine::WorkerExit::Signalled(9),
            detected_ns: 7,
        });
        assert_eq!(status.snapshot().workers[1].state, WorkerState::Dead);
        verify(0, 3);
        let s = status.snapshot();
        assert_eq!(
            s.workers.map(|w| w.state),
            [WorkerState::Live, WorkerState::Stopped]
        );
        assert_eq!(s.failovers, 1);
        assert_eq!(s.last_fault.map(|f| f.kind), Some(FaultKind::Died));
    }
}
