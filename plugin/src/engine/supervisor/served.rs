//! The check of what the host heard against what the worker that served it claimed: each
//! chunk the audio thread has delivered whole, from one worker's ring, is digested as served
//! (`ServedLog`) and compared with that worker's published digest. A difference means the
//! worker changed finished frames after publishing the digest (or a digest that never matched
//! its audio): `Rogue::ServedDiffers`, and it is evicted. The host has heard those frames by
//! then; what this buys is that such a worker does not stay to do it again.

use super::Supervisor;
use crate::engine::events::EvictReason;
use shm::chunk::MAX_CHUNK_FRAMES;
use shm::Rogue;
use std::sync::atomic::{fence, Ordering};

impl Supervisor {
    /// Checks every chunk delivered whole since the last look.
    pub(super) fn check_served(&mut self, now: u64) {
        let shared = self.shared.clone();
        let served = &shared.served;
        let delivered = shared.delivered_frames.load(Ordering::Acquire);
        let published = shared.input.published();
        while self.served_cursor < published {
            let chunk = self.served_cursor;
            let Some((start, frames)) = shared.input.chunk_span(chunk) else {
                self.served_cursor += 1;
                continue;
            };
            let end = start + frames as u64;
            if end > delivered {
                return;
            }
            self.served_cursor += 1;
            // Too old: the audio thread may be overwriting it.
            if delivered - start > served.capacity() / 2 {
                continue;
            }
            let n = (frames as usize).min(MAX_CHUNK_FRAMES);
            let [l, r] = &mut self.audio_scratch;
            let epoch = served.read(start, [&mut l[..n], &mut r[..n]]);
            fence(Ordering::Acquire);
            let still_there =
                shared.delivered_frames.load(Ordering::Acquire) - start <= served.capacity() / 2;
            let Some(epoch) = epoch.filter(|&e| e != 0 && still_there) else {
                continue;
            };
            let Some(slot) =
                (0..2).find(|&s| self.workers[s].as_ref().is_some_and(|w| w.epoch == epoch))
            else {
                continue;
            };
            let output = &shared.slots[slot].output;
            let Some(claimed) = output.digest_of(chunk) else {
                continue;
            };
            let Ok(Some(n_ends)) = output.voice_ends(chunk, frames, &mut self.voice_end_scratch)
            else {
                continue;
            };
            let ends = &self.voice_end_scratch[..n_ends];
            let heard = shm::voice_end::fold(shm::digest(&l[..n], &r[..n]), ends);
            if heard != claimed {
                return self.evict(slot, EvictReason::Rogue(Rogue::ServedDiffers), now);
            }
        }
    }
}
