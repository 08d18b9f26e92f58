//! How the supervisor sleeps: on futexes, so the kernel wakes it for what it can tell us, and a
//! tick only while there is something to time.
//!
//! One `futex_waitv` covers the supervisor's wake word (the engine's drop, the audio thread
//! posting to an idle engine) and each live worker's death word (`shm::death`: the kernel
//! releases it before unmapping a dead worker, well before its pidfd is readable). The pidfds
//! stay the authority: they are checked on every pass, and a worker whose death word fired is
//! removed (killed through its pidfd, reaped) like any other.
//!
//! The tick (`Tuning::tick`) runs only while a newcomer joins, a spare starts or a respawn
//! backs off. While a rebuild's newcomer joins, the tick is 50 µs and the doorbell is watched
//! too, so the chunk that completes the newcomer's proof wakes us at once (at most once a tick:
//! a rogue ringing the doorbell cannot keep the supervisor busy).
//!
//! A playing engine is watched coarsely, in both protections: a chunk in flight needs no tick,
//! because a late worker is the audio thread's to notice (its twin answers; in Eco it asks for
//! a hedge, which wakes us), nor does a checkpoint (the snapshot waits in its area). So the
//! supervisor looks every quarter of the hang timeout while chunks keep coming and is not woken
//! by every post, only by the post after the one that delivers the chunk carrying its next
//! checkpoint's request (asked for in advance, `Shared::snapshot_from_frame`;
//! `Shared::supervisor_due_frame`), and by every post while a snapshot waits for delivery: one
//! pass a checkpoint, where a wake and a pass once or twice a block were most of what the
//! supervisor cost (a context switch on this kind of machine costs more than the pass). A rogue
//! ring the audio thread saw wakes us at once. In Lockstep a worker whose stall will have
//! lasted a twentieth of the hang timeout by the next tick (`Supervisor::stall_to_judge`) brings
//! the tick back until it is judged: a stop is first seen at a look up to a quarter timeout in,
//! then judged on the tick (a double stop, which silences the engine, at the whole timeout as
//! before); in Eco the hedge already covers a late active worker. The supervisor sleeps without
//! a timeout once a look finds nothing posted since the last: an idle engine costs nothing, and
//! the audio thread wakes it with a `FUTEX_WAKE` when it posts again
//! (`Shared::supervisor_asleep`). On a kernel without `futex_waitv` it falls back to polling
//! the pidfds with the tick.

use super::Supervisor;
use crate::engine::config::Protection;
use crate::sys;
use shm::death::{self, Watch};
use shm::futex::monotonic_ns;
use std::sync::atomic::{fence, Ordering};
use std::time::Duration;

/// How often the supervisor looks at a newcomer whose verification ends a rebuild, and how
/// often at most the doorbell wakes it meanwhile.
const JOINING_TICK: Duration = Duration::from_micros(50);

impl Supervisor {
    /// Sleeps until a worker dies, someone wakes us, or the tick (if there is work to time).
    /// Returns which workers are dead or said so through their death word.
    pub(super) fn wait(&mut self) -> [bool; 2] {
        let pidfd = |slot: usize| self.workers[slot].as_ref().map(|w| w.process.pidfd());
        let joining = self.workers.iter().flatten().any(|w| !w.verified);
        // In Eco a newcomer beside a verified worker is an audit's or a hedge's standby: its
        // verification only retires the older worker, and nobody waits for it.
        let beside_verified = self.config.protection == Protection::Eco
            && self.workers.iter().flatten().any(|w| w.verified);
        let rebuilding = joining && !beside_verified;
        let tick = if rebuilding {
            // While a newcomer is joining, look at it often: its verification is the end of
            // the rebuild.
            JOINING_TICK
        } else {
            self.tuning.tick
        };
        if self.futex_waitv_missing {
            return sys::poll([pidfd(0), pidfd(1)], tick);
        }
        let wake = &self.shared.wake;
        let mut words = [(wake, wake.load(Ordering::SeqCst)); shm::futex::WAIT_ANY_MAX];
        if self.shared.shutdown.load(Ordering::SeqCst) {
            // The engine's drop stored this before its wake: if that wake came before the
            // load above, the sleep below would wait for a wake that already happened (for
            // ever, with nothing to time), and the drop's join with it.
            return [false; 2];
        }
        let mut n = 1;
        // And at once when a worker has finished a chunk since the last pass looked (the
        // newcomer reaching the head, its twin rendering the chunk both must have), but for no
        // more than one such wake per tick: the doorbell is worker-writable, and a rogue ringing
        // it must not keep us awake.
        let bell = self.shared.doorbell.word();
        let watch_bell = rebuilding && monotonic_ns() >= self.bell_quiet_until;
        if watch_bell {
            words[n] = (bell, self.bell_seen);
            n += 1;
        }
        let mut released = false;
        let mut unarmed = false;
        for w in self.workers.iter().flatten() {
            let word = self.shared.rings[w.ring].death_word();
            match death::watch(word, w.process.pid()) {
                Watch::Held(value) => {
                    words[n] = (word, value);
                    n += 1;
                }
                Watch::Released => released = true,
                Watch::NotArmed => unarmed = true,
            }
        }
        let now = monotonic_ns();
        let tick_end = now + tick.as_nanos() as u64;
        let posted = self.shared.input.published();
        let playing = posted != std::mem::replace(&mut self.posted_at_last_wait, posted);
        let watch_end = (now + self.tuning.hang_timeout.as_nanos() as u64 / 4).max(tick_end);
        let deadline = if released {
            Some(0)
        } else if unarmed {
            // A worker still starting is watched through its pidfd only: poll it on the tick.
            Some(tick_end)
        } else {
            match self.next_due(posted, playing, tick_end, watch_end) {
                Some(due) => Some(self.wake_at_due_frame(due)),
                None => self.sleep_until_woken(posted),
            }
        };
        if deadline != Some(0) && shm::futex::wait_any(&words[..n], deadline).is_err() {
            self.futex_waitv_missing = true;
        }
        let bell_now = bell.load(Ordering::SeqCst);
        if watch_bell && bell_now != self.bell_seen {
            self.bell_quiet_until = monotonic_ns() + JOINING_TICK.as_nanos() as u64;
        }
        self.bell_seen = bell_now;
        self.shared.supervisor_asleep.store(false, Ordering::SeqCst);
        let exited = sys::poll([pidfd(0), pidfd(1)], Duration::ZERO);
        [0, 1].map(|slot| {
            exited[slot]
                || self.workers[slot].as_ref().is_some_and(|w| {
                    death::watch(self.ring_of(w).death_word(), w.process.pid()) == Watch::Released
                })
        })
    }

    /// When the next time-bound work is due, `posted` chunks having been posted (and some since
    /// the last wait if `playing`): at the tick's end (`tick_end`) while a newcomer joins, a
    /// spare is starting or, in Lockstep, a stall is to be judged; while a worker has chunks to
    /// render, a posted checkpoint request is in flight or the host plays, at the coarser
    /// `watch_end`; or when a respawn's backoff ends (no later than the tick's end). `None` when
    /// nothing needs timing.
    fn next_due(&self, posted: u64, playing: bool, tick_end: u64, watch_end: u64) -> Option<u64> {
        let behind = self
            .workers
            .iter()
            .flatten()
            .any(|w| w.progress.is_none_or(|p| p.chunks_done < posted));
        let unattached = self.shared.snapshot_request.load(Ordering::Acquire);
        let checkpointing = self
            .pending
            .as_ref()
            .is_some_and(|p| p.needs_tick(posted, unattached));
        let joining = self.workers.iter().flatten().any(|w| !w.verified);
        let lockstep = self.config.protection == Protection::Lockstep;
        if joining || (lockstep && self.stall_to_judge(tick_end)) {
            return Some(tick_end);
        }
        let watch = (behind || checkpointing || playing).then_some(watch_end);
        (0..2)
            .filter(|&slot| self.workers[slot].is_none() && !self.kept_empty(slot))
            .map(|slot| self.retry[slot].not_before_ns.min(tick_end))
            .chain(self.spare_due())
            .chain(self.spare_starting().then_some(tick_end))
            .chain(watch)
            .min()
    }

    /// Asks the audio thread to wake us with the post that reaches the frame where the next
    /// checkpoint is due or, while one is pending, where its snapshot can be taken: the chunk
    /// asked for is the first of the first block posted from `last_checkpoint_frame` on (the
    /// request's frame: we ask as soon as we have taken the previous snapshot), and its
    /// snapshot is taken once the host has been given that chunk, `latency` later (and the
    /// post after that, so the audio thread has stored what it delivered). So checkpoints, and
    /// Eco's audits that start from them, keep their pace in frames however fast the host posts.
    /// Then makes sure that frame was not posted meanwhile (as in `sleep_until_woken`).
    /// Returns the deadline: `due`, or now.
    fn wake_at_due_frame(&self, due: u64) -> u64 {
        let input = &self.shared.input;
        let frame = match self.pending {
            Some(_) => (self.last_checkpoint_frame
                + self.config.max_block as u64
                + self.config.latency as u64
                + 1)
            .max(input.posted_frames() + 1),
            None => self.next_checkpoint_frame(),
        };
        self.shared
            .supervisor_due_frame
            .store(frame, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if input.posted_frames() >= frame {
            0
        } else {
            due
        }
    }

    /// Announces that we sleep without a timeout, then makes sure nothing was posted since we
    /// read `posted` (the audio thread stores `published` and then reads our flag, both
    /// sequentially consistent: either we see its chunk here or it sees the flag and wakes us).
    /// Returns the deadline: `None`, or now if a chunk slipped in.
    fn sleep_until_woken(&self, posted: u64) -> Option<u64> {
        self.shared.supervisor_asleep.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        (self.shared.input.published() != posted).then_some(0)
    }
}
