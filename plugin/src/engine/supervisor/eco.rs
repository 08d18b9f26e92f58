//! Eco protection (docs/ARCHITECTURE.md, "Protection"): the lockstep engine with one slot
//! deliberately left empty and the spare as the standby.
//!
//! One active worker renders; the spare sleeps in its sandbox. The standby is called into the
//! empty slot (`spawn_into`, from the latest checkpoint, as any rebuild) when:
//! - the active dies or is evicted (a takeover, before the dead worker is reaped: the spare
//!   writes a ring of its own, the dead one's is reused only once its pidfd says it is gone);
//! - the audio thread finds the active late with frames it needs (a hedge,
//!   `Shared::hedge_request`): both render, whichever has the frames first serves;
//! - every `Tuning::audit_interval` (an audit): both render and the digest comparison checks
//!   the standby's chunks against the active's, as in Lockstep (`compare_digests`, and
//!   `third_opinion` on a mismatch).
//!
//! Whenever both slots then hold verified workers, the audit's standby leaves its slot and
//! sleeps again as the spare (`dismiss`: the same process, no new one). After a hedge so does
//! the hedge's standby once the late active has caught up with it; an active still behind (the
//! older worker, the lower epoch: epochs grow with every spawn) is retired instead, which is no
//! failure, and a new spare is spawned behind.

use super::cpu_budget::CpuVerdict;
use super::Supervisor;
use crate::engine::config::Protection;
use crate::engine::events::{EngineEvent, StandbyReason};
use std::sync::atomic::Ordering;

impl Supervisor {
    /// Whether this engine runs in Eco.
    pub(super) fn eco(&self) -> bool {
        self.config.protection == Protection::Eco
    }

    /// Eco keeps `slot` empty for the standby while the other slot holds a worker: no respawn
    /// fills it, and no respawn is timed for it.
    pub(super) fn kept_empty(&self, slot: usize) -> bool {
        self.eco() && self.workers[1 - slot].is_some()
    }

    /// Eco, the worker in `slot` being removed: calls the standby into the other slot if it is
    /// empty and a spare waits. Without a spare the rebuild is `respawn_if_due`'s (with its
    /// backoff). Returns whether the standby took over.
    pub(super) fn take_over(&mut self, slot: usize, now: u64) -> bool {
        if !self.eco() || self.workers[1 - slot].is_some() || self.spare.is_none() {
            return false;
        }
        self.call_standby(1 - slot, StandbyReason::Takeover, now)
    }

    /// Eco: the empty slot, if the other holds a verified worker and a spare waits to be
    /// called beside it (a returned one, once it has left its last slot: called before, it
    /// could not come, and a new process would be spawned into the slot in its place).
    fn slot_for_standby(&self) -> Option<usize> {
        if !self.eco() || !self.spare_callable() {
            return None;
        }
        let slot = self.workers.iter().position(Option::is_none)?;
        self.workers[1 - slot]
            .as_ref()
            .is_some_and(|w| w.verified)
            .then_some(slot)
    }

    /// Calls the spare into the empty `slot` from the latest checkpoint; whether it went in.
    fn call_standby(&mut self, slot: usize, reason: StandbyReason, now: u64) -> bool {
        self.emit(EngineEvent::StandbyCalled { slot, reason });
        if let Err(e) = self.spawn_into(slot, now) {
            log::warn!("standby not called into slot {slot}: {e}");
        }
        self.workers[slot].is_some()
    }

    /// Answers the audio thread's request for a hedge (the active is late with frames the host
    /// needs): the standby renders beside it.
    pub(super) fn hedge(&mut self, now: u64) {
        if !self.shared.hedge_request.swap(false, Ordering::AcqRel) {
            return;
        }
        if let Some(slot) = self.slot_for_standby() {
            if self.call_standby(slot, StandbyReason::Hedge, now) {
                self.mark_standby_cpu(slot, now);
            }
        }
    }

    /// Every `Tuning::audit_interval`, calls the standby beside the verified active worker so
    /// that the digest comparison checks the active's recent chunks.
    /// An audit needs chunks to compare: at least one after the checkpoint the standby starts
    /// from (so an idle engine is not audited, and costs nothing), and no more than an eighth of
    /// the input ring (a standby far behind its twin would be rebuilt as left behind).
    pub(super) fn audit(&mut self, now: u64) {
        let first = self.checkpoint.chunk.map_or(0, |c| c + 1);
        let published = self.shared.input.published();
        let recent = published <= first + self.shared.input.config().record_count as u64 / 8;
        if now < self.next_audit_ns || published <= first || !recent {
            return;
        }
        let Some(slot) = self.slot_for_standby() else {
            return;
        };
        self.next_audit_ns = now + self.tuning.audit_interval.as_nanos() as u64;
        self.auditing = true;
        if self.call_standby(slot, StandbyReason::Audit, now) {
            self.mark_standby_cpu(slot, now);
        } else {
            self.auditing = false;
        }
    }

    /// Eco: with both slots verified, ends the audit (its standby goes back to sleep as the
    /// spare) or, after a hedge, sends the standby back too once the late active has caught up
    /// with it (a spawn is about 10 ms of CPU, and on a loaded machine hedges come often),
    /// removing the older worker instead if it has not within the hang timeout. Not a failure:
    /// no backoff, no rebuild; after a removal the spare is respawned behind the newer one.
    /// An audit's end, and a hedge's once the active caught up, first judge the active's CPU
    /// against the standby's measure (`audit_cpu`).
    pub(super) fn retire_older(&mut self, now: u64) {
        let [Some(a), Some(b)] = &self.workers else {
            return;
        };
        if !(self.eco() && a.verified && b.verified) {
            return;
        }
        // The standby is the newer: the spare's epoch is drawn after the active's.
        let (older, newer) = if a.epoch < b.epoch { (0, 1) } else { (1, 0) };
        let done = |w: &super::Worker| w.progress.map_or(0, |p| p.chunks_done);
        let (from_spare, caught_up, verified_ns) = {
            let (o, n) = if older == 0 { (a, b) } else { (b, a) };
            (n.from_spare, done(o) >= done(n), n.verified_ns)
        };
        // A standby still on its core may wait for its CPU measure, as long as the hang check
        // would give it.
        let may_wait = now.saturating_sub(verified_ns) < self.tuning.hang_timeout.as_nanos() as u64;
        if self.auditing {
            // An active worker that used far more CPU than the standby's measure goes instead.
            match self.audit_cpu(older, newer, now, may_wait) {
                CpuVerdict::Evicted => {
                    self.auditing = false;
                    return;
                }
                CpuVerdict::NotYet => return,
                CpuVerdict::Within => {}
            }
            if from_spare {
                return self.dismiss(newer, now);
            }
            // Spawned straight into its slot (no spare could be called): it cannot sleep
            // again, so it goes, and a new spare is spawned.
            self.retire(newer);
            self.auditing = false;
            return;
        }
        if from_spare {
            if caught_up {
                // The hedge's standby measured what a chunk costs, as an audit's does: an
                // active late because it keeps its core busy goes now, not at the next audit
                // (until then, at L = 0, each of its late chunks risks a faded block).
                if self.audit_cpu(older, newer, now, may_wait) != CpuVerdict::Within {
                    return;
                }
                return self.dismiss(newer, now);
            }
            // Still catching up: give it as long as the hang check would, then retire it.
            if may_wait {
                return;
            }
        }
        self.retire(older);
    }

    /// Removes the worker in `slot` with both slots verified: no failure, no backoff, no
    /// rebuild (`EngineEvent::WorkerRetired`).
    fn retire(&mut self, slot: usize) {
        let Some(w) = self.workers[slot].take() else {
            return;
        };
        self.clear_slot(slot);
        let pid = w.process.pid();
        self.reap(w.process, w.ring);
        self.emit(EngineEvent::WorkerRetired {
            slot,
            epoch: w.epoch,
            pid,
        });
    }

    /// Eco, an audit's or a hedge's standby verified beside the active: it leaves `slot` and
    /// waits again as the spare, with its own ring, and restores the checkpoint it is given
    /// when next called. A new spare instead would cost an `exec`, dynamic loading and a
    /// sandbox entry, about 10 ms of CPU.
    fn dismiss(&mut self, slot: usize, now: u64) {
        let Some(w) = self.workers[slot].take() else {
            return;
        };
        self.clear_slot(slot);
        self.shared.input.dismiss(slot);
        let (epoch, pid) = (w.epoch, w.process.pid());
        self.keep_as_spare(w.process, epoch, w.ring, now, true);
        self.emit(EngineEvent::StandbyReturned { slot, epoch, pid });
        self.auditing = false;
    }
}
