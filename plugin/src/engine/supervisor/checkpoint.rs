//! Checkpoints: the supervisor keeps a recent state snapshot so that a rebuild replays only a
//! little audio. In Lockstep it validates each by restoring it into its own synth. Eco does not
//! (it takes one about every 10 ms, and the restore was most of a checkpoint's cost): the standby
//! restores it inside its sandbox when called, and one that refuses it (`EXIT_RESTORE`) makes the
//! supervisor fall back to the checkpoint before, or failing that to a new snapshot or a fresh
//! state (`Supervisor::start_refused`). The supervisor asks for its next snapshot as soon as it
//! takes one, to be attached where it is due (`Shared::snapshot_from_frame`): one pass a
//! checkpoint.
//!
//! A snapshot becomes the checkpoint once the digest comparison has judged its chunk (the twin
//! rendered it too, and their digests matched), so the divergence replay (`divergence.rs`)
//! never starts from the state of the worker it would convict. While a starved twin lags, that
//! judgement lags with it, and offline the host does not wait for a starved verified twin: the
//! checkpoint could fall out of the input ring, and a double death then had nothing to rebuild
//! from but a fresh state. So snapshots keep being taken at the same pace whatever the twin
//! does, and the ones not judged yet are kept ([`Candidates`]): the oldest becomes the
//! checkpoint when judged, the newest is the fallback of a rebuild with no verified worker left
//! for which the checkpoint is more than half the input ring old (`Supervisor::newest_if_stale`).

use super::Supervisor;
use crate::engine::events::EvictReason;
use shm::Rogue;
use std::sync::atomic::Ordering;

/// The latest known-good state: a snapshot after `chunk`, ending at frame `end_frame`.
pub(super) struct Checkpoint {
    pub chunk: Option<u64>,
    pub end_frame: u64,
    pub bytes: Vec<u8>,
}

/// A validated snapshot whose chunk the digest comparison has not judged yet, from the worker
/// of `epoch` in `slot`.
struct Unjudged {
    slot: usize,
    epoch: u32,
    state: Checkpoint,
}

/// Snapshots newer than the checkpoint, waiting for their chunk's digests to be compared.
#[derive(Default)]
pub(super) struct Candidates {
    /// The oldest: the next checkpoint once its chunk is judged.
    next: Option<Unjudged>,
    /// The newest, taken after `next`: a rebuild's fallback.
    newest: Option<Unjudged>,
}

impl Candidates {
    fn push(&mut self, candidate: Unjudged) {
        match self.next {
            None => self.next = Some(candidate),
            Some(_) => self.newest = Some(candidate),
        }
    }

    /// Drops the snapshots of a worker evicted for wrong or hostile output.
    pub fn forget(&mut self, epoch: u32) {
        if self.newest.as_ref().is_some_and(|c| c.epoch == epoch) {
            self.newest = None;
        }
        if self.next.as_ref().is_some_and(|c| c.epoch == epoch) {
            self.next = self.newest.take();
        }
    }
}

/// A checkpoint request in flight.
pub(super) struct Pending {
    pub slot: usize,
    epoch: u32,
    after_chunk: u64,
    asked_ns: u64,
    /// The snapshot is in, ahead of what the audio thread has delivered: nothing to time until
    /// the host calls again (and its posting wakes us).
    pub awaiting_delivery: bool,
}

impl Pending {
    /// Whether the chunk carrying the request has been posted (`published` chunks are, and the
    /// audio thread has taken the request out of `unattached`, `Shared::snapshot_request`):
    /// only then is there an answer to wait for.
    pub fn posted(&self, published: u64, unattached: u32) -> bool {
        published > self.after_chunk && unattached & (1 << self.slot) == 0
    }

    /// Whether the supervisor must look again on its tick: the request is posted and its
    /// snapshot is not merely waiting for delivery.
    pub fn needs_tick(&self, published: u64, unattached: u32) -> bool {
        self.posted(published, unattached) && !self.awaiting_delivery
    }
}

impl Supervisor {
    /// Keeps a recent, validated state snapshot so a rebuild replays only a little audio.
    pub(super) fn checkpoint(&mut self, now: u64) {
        self.promote_judged();
        if let Some(p) = &self.pending {
            let (slot, epoch, after, asked) = (p.slot, p.epoch, p.after_chunk, p.asked_ns);
            if self.workers[slot].as_ref().is_none_or(|w| w.epoch != epoch) {
                self.pending = None;
                return;
            }
            // The audio thread serves from the other worker now (the one asked is late: a
            // hang, or in Eco a hedge's standby took over): ask that one instead
            // (`request_checkpoint`), unless the answer is in. Otherwise a stall would leave no
            // snapshot newer than its start until the hang check evicts the late worker, and
            // the rebuild would replay all of it.
            let serving = self.shared.serving.load(Ordering::Relaxed);
            let eco = self.eco();
            let replaced = serving != slot
                && self.workers[serving]
                    .as_ref()
                    .is_some_and(|w| eco || w.verified);
            if replaced && !p.awaiting_delivery {
                self.pending = None;
                self.request_checkpoint(now, 0);
                return;
            }
            let w = self.workers[slot].as_ref().expect("checked above");
            let (done, ring) = (w.progress.map_or(0, |p| p.chunks_done), w.ring);
            match self.shared.rings[ring].read_snapshot(&mut self.scratch) {
                Err(reason) => self.evict(slot, EvictReason::Rogue(reason), now),
                Ok(Some((chunk, len))) if chunk >= after && chunk < done => {
                    let end_frame = self
                        .shared
                        .input
                        .chunk_span(chunk)
                        .map(|(start, frames)| start + frames as u64);
                    // Never a checkpoint ahead of delivery: after a double death, a rebuild
                    // from it would leave the frames between what the host got and the
                    // checkpoint in no ring. Keep it (and ask for no other) until the audio
                    // thread has delivered that far.
                    let delivered = self.shared.delivered_frames.load(Ordering::Acquire);
                    if end_frame.is_some_and(|end| end > delivered) {
                        if let Some(p) = self.pending.as_mut() {
                            p.awaiting_delivery = true;
                        }
                        return;
                    }
                    self.pending = None;
                    let bytes = &self.scratch[..len];
                    // Eco leaves the restore to the standby's sandbox (module doc).
                    let valid = self.eco() || self.verifier.restore(bytes).is_ok();
                    match (valid, end_frame) {
                        (true, Some(end_frame)) => {
                            let state = Checkpoint {
                                chunk: Some(chunk),
                                end_frame,
                                bytes: bytes.to_vec(),
                            };
                            if self.judged(slot, epoch, chunk) {
                                // Newer than every candidate, and judged: they are of no use.
                                self.replace_checkpoint(state);
                                self.candidates = Candidates::default();
                            } else {
                                self.candidates.push(Unjudged { slot, epoch, state });
                            }
                        }
                        (false, _) => self.evict(slot, EvictReason::Rogue(Rogue::BadSnapshot), now),
                        (true, None) => {}
                    }
                }
                // Not there yet; a worker that never answers is caught by the hang check, but
                // do not wait on a request forever.
                _ if now.saturating_sub(asked) > 1_000_000_000 => self.pending = None,
                _ => {}
            }
            if self.pending.is_some() {
                return;
            }
            // Answered (or given up): ask for the next one at once if it is due, so that an
            // offline host rendering many chunks per pass always has a request to wait for
            // (`Engine::wait_for_checkpoint`).
        }
        // Asked now, attached by the audio thread where it is due: the pass that takes this
        // snapshot also asks for the next.
        let due = self.next_checkpoint_frame();
        self.request_checkpoint(now, due);
    }

    /// Makes `state` the checkpoint. Eco keeps the one it replaces (unrestored by the
    /// supervisor too) as the fallback for a standby that refuses the new one (`start_refused`).
    fn replace_checkpoint(&mut self, state: Checkpoint) {
        let older = std::mem::replace(&mut self.checkpoint, state);
        self.older_checkpoint = self.eco().then_some(older);
        self.checkpoint_refused = false;
    }

    /// A worker started from the state after chunk `first_chunk - 1` exited refusing it
    /// (`EXIT_RESTORE`). If that is the checkpoint (Eco takes them unrestored, so a malformed
    /// one shows here, harming only the sandboxed worker that parsed it), the checkpoint before
    /// it takes its place; without one, the next spawn waits for a new snapshot from a
    /// verified worker or, with none left, starts from a fresh state (`spawn_into`, as for a
    /// lapped checkpoint). The slot is refilled at once: the state failed, not the worker.
    pub(super) fn start_refused(&mut self, slot: usize, first_chunk: u64, now: u64) {
        if first_chunk != self.checkpoint.chunk.map_or(0, |c| c + 1) {
            return;
        }
        self.retry[slot].not_before_ns = now;
        match self.older_checkpoint.take() {
            Some(older) => {
                log::warn!(
                    "worker {slot} refused the checkpoint after chunk {:?}: falling back to the \
                     one after chunk {:?}",
                    self.checkpoint.chunk,
                    older.chunk
                );
                self.checkpoint = older;
            }
            None => {
                log::warn!(
                    "worker {slot} refused the checkpoint after chunk {:?}, the only one kept: \
                     the next worker starts from a new snapshot or a fresh state",
                    self.checkpoint.chunk
                );
                self.checkpoint_refused = true;
            }
        }
    }

    /// Tells the audio thread where the newest state kept (the checkpoint or a newer
    /// candidate) ends, and whether a snapshot is on its way: offline, it paces itself to them.
    pub(super) fn publish_state(&self) {
        let newest = [
            Some(&self.checkpoint),
            self.candidates.next.as_ref().map(|c| &c.state),
            self.candidates.newest.as_ref().map(|c| &c.state),
        ]
        .into_iter()
        .flatten()
        .max_by_key(|s| s.end_frame)
        .expect("the checkpoint is always there");
        let shared = &self.shared;
        let first_chunk = newest.chunk.map_or(0, |c| c + 1);
        shared.state_chunk.store(first_chunk, Ordering::Release);
        shared
            .state_frame
            .store(newest.end_frame, Ordering::Release);
        shared
            .checkpoint_pending
            .store(self.pending.is_some(), Ordering::Release);
    }

    /// The posted frame from which the next checkpoint is asked for.
    pub(super) fn next_checkpoint_frame(&self) -> u64 {
        let interval = if self.eco() {
            self.tuning.eco_checkpoint_frames
        } else {
            self.tuning.checkpoint_frames
        };
        self.last_checkpoint_frame + interval as u64
    }

    /// Whether the digest comparison has judged `chunk` for the snapshot the worker of `epoch`
    /// in `slot` took after it: that worker still runs, and its twin either does not render
    /// the chunk (none, or one started after it) or rendered it with the same digest. A
    /// divergence evicts one of the two at once (and `Candidates::forget` drops the evicted
    /// one's snapshots), so a chunk the cursor has passed with both still there matched.
    fn judged(&self, slot: usize, epoch: u32, chunk: u64) -> bool {
        let twin_renders_it = self.workers[1 - slot]
            .as_ref()
            .is_some_and(|t| t.floor_chunks <= chunk);
        self.origin_runs(slot, epoch) && (!twin_renders_it || self.digest_cursor > chunk)
    }

    /// Makes the oldest candidates whose chunks are judged now the checkpoint. One whose worker
    /// is gone can never be judged: it gives way to a newer one (it stays only while it is the
    /// newest, as a fallback), or the checkpoint would stop advancing.
    pub(super) fn promote_judged(&mut self) {
        while let Some(c) = &self.candidates.next {
            let chunk = c.state.chunk.unwrap_or(0);
            if self.judged(c.slot, c.epoch, chunk) {
                let next = self.candidates.next.take().expect("checked above");
                self.replace_checkpoint(next.state);
            } else if self.origin_runs(c.slot, c.epoch) || self.candidates.newest.is_none() {
                return;
            }
            self.candidates.next = self.candidates.newest.take();
        }
    }

    /// Whether the worker of `epoch` still runs in `slot`.
    fn origin_runs(&self, slot: usize, epoch: u32) -> bool {
        self.workers[slot]
            .as_ref()
            .is_some_and(|w| w.epoch == epoch)
    }

    /// Before a rebuild with no verified worker left (a double death): when the checkpoint is
    /// more than half the input ring old (in chunks or frames), because a lagging twin held its
    /// judgement back, the newest snapshot taken since becomes the checkpoint. A rebuild from
    /// further back would slow an offline render to its replay (the host waits for a joining
    /// worker more than half a ring behind) or find its chunks lapped, and no worker is left
    /// to ask for a new one; the newest snapshot is a verified worker's, restored by our synth,
    /// and ends no later than the host was given. It replaces the checkpoint: the rebuilt
    /// workers descend from it, so a divergence replay must start there too. With a verified
    /// worker alive the judged checkpoint stays (a lapped one is replaced by a new snapshot
    /// from that worker, `spawn_into`), so a replay never starts from a state nobody compared
    /// while a worker it could convict is there.
    pub(super) fn newest_if_stale(&mut self) {
        if self.workers.iter().flatten().any(|w| w.verified) {
            return;
        }
        let input = &self.shared.input;
        let ring = input.config();
        let first_chunk = self.checkpoint.chunk.map_or(0, |c| c + 1);
        let stale = ring.over_half_behind(
            input.published().saturating_sub(first_chunk),
            input
                .posted_frames()
                .saturating_sub(self.checkpoint.end_frame),
        );
        if !stale {
            return;
        }
        let candidates = std::mem::take(&mut self.candidates);
        if let Some(newest) = candidates.newest.or(candidates.next) {
            self.replace_checkpoint(newest.state);
        }
    }

    /// Where a fresh state starts when no worker holds the state any more: the first chunk
    /// the host has not been given in full, so an offline host waiting for its frames gets
    /// them (from the fresh state) rather than waiting in vain. A quarantine's fresh start
    /// (`skip_posted`) starts after every posted chunk instead: a posted one may be what kills
    /// the workers. Returns the chunk and its first frame.
    pub(super) fn fresh_start(&self, skip_posted: bool) -> (u64, u64) {
        let input = &self.shared.input;
        let (mut chunk, mut frame) = (input.published(), input.posted_frames());
        if skip_posted {
            return (chunk, frame);
        }
        let delivered = self.shared.delivered_frames.load(Ordering::Acquire);
        while let Some((start, frames)) = chunk.checked_sub(1).and_then(|c| input.chunk_span(c)) {
            if start + frames as u64 <= delivered {
                break;
            }
            (chunk, frame) = (chunk - 1, start);
        }
        (chunk, frame)
    }

    /// Asks the serving verified worker (or its verified twin) for a snapshot after the first
    /// chunk of the first block posted from frame `from_frame` on (0, or any frame posted
    /// already: the next block); in Eco the serving standby too, verified or not. Returns false
    /// when there is no worker to ask.
    ///
    /// The Eco standby is served as soon as it has the frames (it replays from a validated
    /// checkpoint), so while it serves beside a late active (a hedge) it is the one whose
    /// state moves on: asking only the verified, late one would leave no checkpoint newer than
    /// the hang until the hang check evicts it, and a takeover right after would replay all of
    /// that. Its snapshot is judged like any other (`judged`: once the twin's digest matched
    /// its chunk, or the twin is gone).
    pub(super) fn request_checkpoint(&mut self, now: u64, from_frame: u64) -> bool {
        let serving = self.shared.serving.load(Ordering::Relaxed);
        let eco = self.eco();
        let asked = |s: usize, w: &super::Worker| w.verified || (eco && s == serving);
        let candidate = [serving, 1 - serving]
            .into_iter()
            .find(|&s| self.workers[s].as_ref().is_some_and(|w| asked(s, w)));
        let Some(slot) = candidate else {
            return false;
        };
        let epoch = self.workers[slot].as_ref().map_or(0, |w| w.epoch);
        let from_frame = from_frame.max(self.shared.input.posted_frames());
        self.last_checkpoint_frame = from_frame;
        self.pending = Some(Pending {
            slot,
            epoch,
            after_chunk: self.shared.input.published(),
            asked_ns: now,
            awaiting_delivery: false,
        });
        // The frame first: the audio thread reads it after seeing the request.
        self.shared
            .snapshot_from_frame
            .store(from_frame, Ordering::Release);
        self.shared
            .snapshot_request
            .fetch_or(1 << slot, Ordering::AcqRel);
        true
    }
}
