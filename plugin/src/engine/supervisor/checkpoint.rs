//! Checkpoints: the supervisor keeps a recent state snapshot, validated by restoring it into
//! its own synth, so that a rebuild replays only a little audio.

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
    /// Whether the chunk carrying the request has been posted (`published` chunks are): only
    /// then is there an answer to wait for.
    pub fn posted(&self, published: u64) -> bool {
        published > self.after_chunk
    }

    /// Whether the supervisor must look again on its tick: the request is posted and its
    /// snapshot is not merely waiting for delivery.
    pub fn needs_tick(&self, published: u64) -> bool {
        self.posted(published) && !self.awaiting_delivery
    }
}

impl Supervisor {
    /// Keeps a recent, validated state snapshot so a rebuild replays only a little audio.
    pub(super) fn checkpoint(&mut self, now: u64) {
        if let Some(p) = &self.pending {
            let (slot, epoch, after, asked) = (p.slot, p.epoch, p.after_chunk, p.asked_ns);
            if self.workers[slot].as_ref().is_none_or(|w| w.epoch != epoch) {
                self.pending = None;
                return;
            }
            let done = self.workers[slot]
                .as_ref()
                .and_then(|w| w.progress)
                .map_or(0, |p| p.chunks_done);
            match self.shared.slots[slot]
                .output
                .read_snapshot(&mut self.scratch)
            {
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
                    // Nor one whose chunk the twin rendered but the digest comparison has not
                    // judged yet: a divergence found there later could mean it came from the
                    // wrong worker (`divergence.rs` replays from it).
                    // A twin a quarter of the input ring behind the chunk (starved, soon
                    // rebuilt to catch up) is not waited for: checkpoints that lag as far as it
                    // does would leave a double death none that the ring still holds.
                    let near = |t: &super::Worker| {
                        let done = t.progress.map_or(t.floor_chunks, |p| p.chunks_done);
                        done + self.shared.input.config().record_count as u64 / 4 > chunk
                    };
                    let twin_renders_it = self.workers[1 - slot]
                        .as_ref()
                        .is_some_and(|t| t.floor_chunks <= chunk && near(t));
                    if twin_renders_it && self.digest_cursor <= chunk {
                        return;
                    }
                    self.pending = None;
                    let bytes = &self.scratch[..len];
                    match (self.verifier.restore(bytes), end_frame) {
                        (Ok(()), Some(end_frame)) => {
                            self.checkpoint.chunk = Some(chunk);
                            self.checkpoint.end_frame = end_frame;
                            self.checkpoint.bytes.clear();
                            self.checkpoint.bytes.extend_from_slice(bytes);
                        }
                        (Err(_), _) => {
                            self.evict(slot, EvictReason::Rogue(Rogue::BadSnapshot), now)
                        }
                        (Ok(()), None) => {}
                    }
                }
                // Not there yet; a worker that never answers is caught by the hang check, but
                // do not wait on a request forever.
                _ if now.saturating_sub(asked) > 1_000_000_000 => self.pending = None,
                _ => {}
            }
            return;
        }
        let posted = self.shared.input.posted_frames();
        if posted < self.last_checkpoint_frame + self.tuning.checkpoint_frames as u64 {
            return;
        }
        self.request_checkpoint(now);
    }

    /// Asks the serving verified worker (or its verified twin) for a snapshot after the next
    /// chunk. Returns false when there is no verified worker to ask.
    pub(super) fn request_checkpoint(&mut self, now: u64) -> bool {
        let serving = self.shared.serving.load(Ordering::Relaxed);
        let candidate = [serving, 1 - serving]
            .into_iter()
            .find(|&s| self.workers[s].as_ref().is_some_and(|w| w.verified));
        let Some(slot) = candidate else {
            return false;
        };
        let epoch = self.workers[slot].as_ref().map_or(0, |w| w.epoch);
        self.last_checkpoint_frame = self.shared.input.posted_frames();
        self.pending = Some(Pending {
            slot,
            epoch,
            after_chunk: self.shared.input.published(),
            asked_ns: now,
            awaiting_delivery: false,
        });
        self.shared
            .snapshot_request
            .fetch_or(1 << slot, Ordering::AcqRel);
        true
    }
}
