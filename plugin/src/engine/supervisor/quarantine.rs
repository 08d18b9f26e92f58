//! Poison-chunk quarantine: what the supervisor does when a chunk's input kills every worker.
//!
//! Two identical workers share their bugs. An input that crashes one crashes its twin on the
//! same chunk, and every rebuild that replays it, so without this the engine would retry in
//! silence for as long as that chunk is in the replay. A crash (a signal other than `SIGKILL`
//! or `SIGXCPU`, or an exit status the worker does not use; see [`is_crash`]) is attributed to
//! the chunk its worker was rendering: the one after the last it counted as done, if that was
//! posted. Two crashes on the same chunk, with no live worker past it (both twins, or a rebuild
//! replaying it), make it poison: its number goes into every later spawn's output ring
//! (`OutputRing::set_quarantine`), those workers render it without its events, and the event
//! says what was dropped. If a worker that knew of the quarantine still crashes on that chunk
//! or a later one before any worker has been verified since, the state itself is poisoned: the
//! next spawn starts from a fresh synth at the next chunk (`EngineEvent::StateLost`), which
//! takes the current parameters from that chunk like any other.
//!
//! An outside `SIGKILL` of both twins at once (a test, the OOM killer) says nothing about the
//! input and never quarantines anything: the rebuild replays the chunk exactly.

use super::Supervisor;
use crate::engine::events::{EngineEvent, WorkerExit};
use shm::chunk::Chunk;

/// The supervisor's record of crashes by chunk and of the chunk under quarantine.
#[derive(Default)]
pub(super) struct Quarantine {
    /// The chunk the latest crash happened on, and how many crashes it has caused.
    crashes: Option<(u64, u32)>,
    /// The chunk later spawns render without its events.
    pub chunk: Option<u64>,
    /// Workers of this epoch and later were spawned knowing `chunk`.
    from_epoch: u32,
    /// No worker has been verified since `chunk` was quarantined.
    unproven: bool,
    /// The next spawn starts from a fresh state.
    pub fresh_start: bool,
}

impl Quarantine {
    /// A worker was verified: whatever killed the workers before is behind us.
    pub fn proven(&mut self) {
        self.unproven = false;
    }
}

/// Whether a worker's end says its own code failed (and so may fail again on the same input),
/// rather than that something outside killed it or that it left for a reason of its own.
fn is_crash(cause: WorkerExit) -> bool {
    match cause {
        WorkerExit::Signalled(sig) => sig != libc::SIGKILL && sig != libc::SIGXCPU,
        WorkerExit::Exited(code) => shm::exit_status::meaning(code).is_none(),
        WorkerExit::Unreaped(_) => false,
    }
}

impl Supervisor {
    /// The chunk the worker in `slot` was rendering, if any: the one after those its ring
    /// (validated) counts as done, if it had begun rendering and that one was posted (a worker
    /// that dies starting up is no evidence against any chunk). Read before its slot is
    /// cleared; returns its epoch too. A worker whose state a fresh start superseded is no
    /// evidence either: it replays input the fresh state never renders.
    pub(super) fn chunk_in_progress(&self, slot: usize) -> Option<(u32, u64)> {
        let w = self.workers[slot].as_ref()?;
        let output = self.ring_of(w);
        if w.superseded || !output.begun(w.epoch) {
            return None;
        }
        let bounds = self.bounds(w);
        let progress = output.progress(&bounds).ok()?;
        (progress.chunks_done < bounds.posted_chunks).then_some((w.epoch, progress.chunks_done))
    }

    /// A worker of `epoch` died of `cause` while rendering `chunk`: count the crash against the
    /// chunk, quarantine the chunk on its second crash, and start over from a fresh state if
    /// even the quarantine did not help.
    pub(super) fn after_death(
        &mut self,
        slot: usize,
        rendering: Option<(u32, u64)>,
        cause: WorkerExit,
        now: u64,
    ) {
        let Some((epoch, chunk)) = rendering.filter(|_| is_crash(cause)) else {
            return;
        };
        let q = &mut self.quarantine;
        if q.unproven && epoch >= q.from_epoch && q.chunk.is_some_and(|c| chunk >= c) {
            q.unproven = false;
            q.fresh_start = true;
            log::warn!(
                "worker {slot} crashed on chunk {chunk} without the quarantined chunk's events: \
                 restarting from a fresh state"
            );
            self.retry[slot].not_before_ns = now;
            return;
        }
        if q.chunk == Some(chunk) && epoch < q.from_epoch {
            // A worker spawned before the quarantine met the chunk: replace it at once.
            self.retry[slot].not_before_ns = now;
            return;
        }
        let crashes = match q.crashes {
            Some((c, n)) if c == chunk => n + 1,
            _ => 1,
        };
        q.crashes = Some((chunk, crashes));
        let rendered_past = self
            .workers
            .iter()
            .flatten()
            .any(|w| w.progress.is_some_and(|p| p.chunks_done > chunk));
        if crashes < 2 || rendered_past {
            return;
        }
        q.chunk = Some(chunk);
        q.from_epoch = self.next_epoch;
        q.unproven = true;
        for retry in &mut self.retry {
            retry.not_before_ns = now;
        }
        let event = self.describe_quarantine(chunk);
        self.emit(event);
    }

    /// The event for quarantining `chunk`, with the events it drops (as far as the input ring
    /// still holds the chunk).
    fn describe_quarantine(&mut self, chunk: u64) -> EngineEvent {
        let mut record = Chunk::default();
        let [l, r] = &mut self.audio_scratch;
        let read = self
            .shared
            .input
            .read(chunk, &mut record, [&mut l[..], &mut r[..]]);
        let held = read.is_ok() && record.index == chunk;
        let events = if held { record.events() } else { &[] };
        EngineEvent::ChunkQuarantined {
            chunk,
            start_frame: if held { record.start_frame } else { 0 },
            dropped: events
                .iter()
                .filter_map(|&e| dsp::Event::from_raw(e))
                .collect(),
            dropped_count: events.len() as u32,
        }
    }
}
