//! The supervisor thread: the only code that spawns, signals or reaps workers.
//!
//! It sleeps in `poll` on the workers' pidfds and an eventfd, with a short tick for what has no
//! fd to wake it: hang checks, digest comparison, checkpoints and respawns. Every worker-written
//! value it reads goes through the validating accessors of `shm::OutputRing`.

use super::spawn::{HandedFds, WorkerProcess};
use super::status::EngineStatus;
use super::{
    generation, EngineConfig, EngineError, EngineEvent, EvictReason, Shared, Telemetry, Tuning,
    STATE_EMPTY, STATE_JOINING, STATE_LIVE,
};
use shm::futex::monotonic_ns;
use shm::{Bounds, Progress, Rogue};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The latest known-good state: a snapshot after `chunk`, ending at frame `end_frame`.
struct Checkpoint {
    chunk: Option<u64>,
    end_frame: u64,
    bytes: Vec<u8>,
}

/// A running worker as the supervisor tracks it.
struct Worker {
    process: WorkerProcess,
    epoch: u32,
    verified: bool,
    floor_frames: u64,
    floor_chunks: u64,
    progress: Option<Progress>,
    /// Since when it has had work pending without progress.
    behind_since: Option<u64>,
}

/// Per-slot respawn bookkeeping.
#[derive(Default)]
struct Retry {
    /// Failures in a row without a verified worker in between.
    failures: u32,
    not_before_ns: u64,
    /// When the failure that emptied the slot was detected (for the rebuild figure).
    since_ns: Option<u64>,
}

/// A checkpoint request in flight.
struct Pending {
    slot: usize,
    epoch: u32,
    after_chunk: u64,
    asked_ns: u64,
}

pub(super) struct Supervisor {
    shared: Arc<Shared>,
    config: EngineConfig,
    tuning: Tuning,
    telemetry: rtrb::Consumer<Telemetry>,
    events: crossbeam_channel::Sender<EngineEvent>,
    /// What the editor's protection panel shows; updated with every event.
    status: EngineStatus,
    workers: [Option<Worker>; 2],
    retry: [Retry; 2],
    checkpoint: Checkpoint,
    pending: Option<Pending>,
    scratch: Vec<u8>,
    audio_scratch: [Vec<f32>; 2],
    verifier: dsp::Synth,
    next_epoch: u32,
    digest_cursor: u64,
    last_checkpoint_frame: u64,
}

const MAX_BACKOFF_NS: u64 = 2_000_000_000;

/// The supervisor's real-time priority: just above the workers' (`SCHED_FIFO` 5, set by their
/// sandbox), so a surviving twin's render does not delay the detection and rebuild, and below
/// any host's audio thread.
const SUPERVISOR_PRIORITY: i32 = 6;

/// Detection and rebuild should not wait behind the host's busy threads or our own workers.
/// Keeps a higher real-time priority inherited from the host; silently stays as it is when the
/// system refuses.
fn raise_priority() {
    // SAFETY: sched_getscheduler/sched_getparam/sched_setscheduler on the calling thread (0)
    // with a param we own.
    unsafe {
        let mut current = libc::sched_param { sched_priority: 0 };
        let policy = libc::sched_getscheduler(0);
        libc::sched_getparam(0, &mut current);
        let realtime = policy == libc::SCHED_FIFO || policy == libc::SCHED_RR;
        if !realtime || current.sched_priority < SUPERVISOR_PRIORITY {
            let wanted = libc::sched_param {
                sched_priority: SUPERVISOR_PRIORITY,
            };
            libc::sched_setscheduler(0, libc::SCHED_FIFO, &wanted);
        }
    }
}

impl Supervisor {
    /// Spawns both workers (so a missing executable is an activation error, not a silent
    /// plugin) and returns the supervisor, ready to `run` on its own thread.
    pub fn start(
        shared: Arc<Shared>,
        config: EngineConfig,
        tuning: Tuning,
        initial_state: Vec<u8>,
        telemetry: rtrb::Consumer<Telemetry>,
        events: crossbeam_channel::Sender<EngineEvent>,
        status: EngineStatus,
    ) -> Result<Supervisor, EngineError> {
        if !config.worker_path.is_file() {
            return Err(EngineError::Spawn(format!(
                "worker executable {} not found",
                config.worker_path.display()
            )));
        }
        let verifier = dsp::Synth::new(config.sample_rate, shm::chunk::MAX_CHUNK_FRAMES)
            .map_err(|e| EngineError::UnsupportedConfig(e.to_string()))?;
        let mut sup = Supervisor {
            scratch: vec![0; shared.slots[0].output.snapshot_max()],
            audio_scratch: [
                vec![0.0; shm::chunk::MAX_CHUNK_FRAMES],
                vec![0.0; shm::chunk::MAX_CHUNK_FRAMES],
            ],
            shared,
            config,
            tuning,
            telemetry,
            events,
            status,
            workers: [None, None],
            retry: Default::default(),
            checkpoint: Checkpoint {
                chunk: None,
                end_frame: 0,
                bytes: initial_state,
            },
            pending: None,
            verifier,
            next_epoch: 1,
            digest_cursor: 0,
            last_checkpoint_frame: 0,
        };
        for slot in 0..2 {
            sup.spawn_into(slot, monotonic_ns())
                .map_err(EngineError::Spawn)?;
        }
        Ok(sup)
    }

    pub fn run(mut self) {
        raise_priority();
        while !self.shared.shutdown.load(Ordering::Acquire) {
            let readable = self.poll();
            let now = monotonic_ns();
            for (slot, dead) in readable.into_iter().enumerate() {
                if dead {
                    self.on_exit(slot, now);
                }
            }
            self.drain_telemetry(now);
            for slot in 0..2 {
                self.check_progress(slot, now);
            }
            self.compare_digests(now);
            self.checkpoint(now);
            for slot in 0..2 {
                self.respawn_if_due(slot, now);
            }
        }
        for slot in 0..2 {
            if let Some(w) = self.workers[slot].take() {
                self.clear_slot(slot);
                w.process.reap();
            }
        }
    }

    /// Sleeps until a worker exits, someone wakes us, or the tick. Returns which pidfds fired.
    fn poll(&self) -> [bool; 2] {
        let mut fds = [libc::pollfd {
            fd: self.shared.wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }; 3];
        for (i, w) in self.workers.iter().enumerate() {
            // A negative fd is ignored by poll.
            fds[i + 1].fd = w.as_ref().map_or(-1, |w| w.process.pidfd());
        }
        // While a newcomer is joining, look at it often: its verification is the end of the
        // rebuild, and nothing else wakes us for it.
        let joining = self.workers.iter().flatten().any(|w| !w.verified);
        let tick = if joining {
            Duration::from_micros(200)
        } else {
            self.tuning.tick
        };
        let ts = libc::timespec {
            tv_sec: tick.as_secs() as libc::time_t,
            tv_nsec: tick.subsec_nanos() as libc::c_long,
        };
        // SAFETY: ppoll on an array of three pollfds and a timespec we own; no signal mask.
        unsafe { libc::ppoll(fds.as_mut_ptr(), 3, &ts, std::ptr::null()) };
        if fds[0].revents & libc::POLLIN != 0 {
            let mut buf = 0u64;
            // SAFETY: reading 8 bytes into a local from our non-blocking eventfd.
            unsafe { libc::read(fds[0].fd, (&mut buf as *mut u64).cast(), 8) };
        }
        [fds[1].revents != 0, fds[2].revents != 0]
    }

    fn emit(&self, event: EngineEvent) {
        match &event {
            EngineEvent::Switched { .. } => log::debug!("{event}"),
            EngineEvent::SpawnFailed { .. } | EngineEvent::StateLost { .. } => {
                log::warn!("{event}")
            }
            _ => log::info!("{event}"),
        }
        self.status.record(&event);
        let _ = self.events.try_send(event);
    }

    fn clear_slot(&self, slot: usize) {
        let s = &self.shared.slots[slot];
        s.gen.store(generation(0, STATE_EMPTY), Ordering::Release);
        s.pid.store(0, Ordering::Release);
    }

    /// A worker's pidfd fired: it is dead. Reap it and schedule the rebuild.
    fn on_exit(&mut self, slot: usize, now: u64) {
        self.remove(slot, now, |epoch, pid, cause| EngineEvent::WorkerDied {
            slot,
            epoch,
            pid,
            cause,
            detected_ns: now,
        });
    }

    /// Kills a worker we no longer trust.
    fn evict(&mut self, slot: usize, reason: EvictReason, now: u64) {
        self.remove(slot, now, |epoch, pid, _| EngineEvent::WorkerEvicted {
            slot,
            epoch,
            pid,
            reason,
            detected_ns: now,
        });
    }

    /// Takes the worker out of its slot (so the audio thread stops reading it), kills it if it
    /// still runs and reaps it, reports it with `report(epoch, pid, how it ended)`, and
    /// schedules the rebuild.
    fn remove(
        &mut self,
        slot: usize,
        now: u64,
        report: impl FnOnce(u32, u32, String) -> EngineEvent,
    ) {
        let Some(w) = self.workers[slot].take() else {
            return;
        };
        self.clear_slot(slot);
        let pid = w.process.pid();
        let cause = w.process.reap();
        self.emit(report(w.epoch, pid, cause));
        self.failed(slot, w.verified, now);
    }

    fn failed(&mut self, slot: usize, was_verified: bool, now: u64) {
        self.shared.stats.failures.fetch_add(1, Ordering::Relaxed);
        let retry = &mut self.retry[slot];
        retry.since_ns.get_or_insert(now);
        if was_verified {
            retry.failures = 0;
        } else {
            // Died before it ever joined: back off so a worker that cannot start does not
            // make us spawn in a tight loop.
            retry.failures += 1;
            let backoff = (5_000_000u64 << retry.failures.min(10)).min(MAX_BACKOFF_NS);
            retry.not_before_ns = now + backoff;
        }
        self.note_if_failing();
        if self.pending.as_ref().is_some_and(|p| p.slot == slot) {
            self.pending = None;
        }
    }

    /// Tells the audio thread to stop waiting (even offline) once workers keep failing to start
    /// and none is verified: a render then gets the fallback instead of hanging the host.
    fn note_if_failing(&self) {
        let failing = self.retry.iter().all(|r| r.failures >= 3)
            && !self.workers.iter().flatten().any(|w| w.verified);
        if failing {
            self.shared.workers_failing.store(true, Ordering::Relaxed);
        }
    }

    fn drain_telemetry(&mut self, now: u64) {
        while let Ok(t) = self.telemetry.pop() {
            match t {
                Telemetry::Rogue {
                    slot,
                    epoch,
                    reason,
                } => {
                    if self.workers[slot]
                        .as_ref()
                        .is_some_and(|w| w.epoch == epoch)
                    {
                        self.evict(slot, EvictReason::Rogue(reason), now);
                    }
                }
                Telemetry::Xrun { frames, at_frame } => {
                    self.emit(EngineEvent::Xrun { frames, at_frame })
                }
                Telemetry::Switch {
                    from,
                    to,
                    ns,
                    at_frame,
                } => self.emit(EngineEvent::Switched {
                    from,
                    to,
                    switch_ns: ns,
                    at_frame,
                }),
            }
        }
    }

    fn bounds(&self, w: &Worker) -> Bounds {
        let p = w.progress.unwrap_or(Progress {
            frames_done: w.floor_frames,
            chunks_done: w.floor_chunks,
        });
        Bounds {
            epoch: w.epoch,
            posted_frames: self.shared.input.posted_frames(),
            posted_chunks: self.shared.input.published(),
            floor_frames: p.frames_done,
            floor_chunks: p.chunks_done,
        }
    }

    /// Validates a worker's progress, watches for hangs, and lets a lone newcomer join.
    fn check_progress(&mut self, slot: usize, now: u64) {
        let Some(w) = &self.workers[slot] else {
            return;
        };
        let output = &self.shared.slots[slot].output;
        let mut bounds = self.bounds(w);
        let mut checked = output.progress(&bounds);
        if checked == Err(Rogue::BeyondPosted) {
            // We read what was posted before the worker's counters; if we were preempted in
            // between, it may honestly have rendered chunks posted since. What was posted
            // only grows, so judge again against a fresh reading.
            bounds = self.bounds(w);
            checked = output.progress(&bounds);
        }
        let progress = match checked {
            Ok(p) => p,
            Err(reason) => return self.evict(slot, EvictReason::Rogue(reason), now),
        };
        let w = self.workers[slot].as_mut().expect("checked above");
        let advanced = w
            .progress
            .is_none_or(|old| progress.chunks_done > old.chunks_done);
        w.progress = Some(progress);
        if progress.chunks_done >= bounds.posted_chunks {
            w.behind_since = None;
        } else if advanced || w.behind_since.is_none() {
            w.behind_since = Some(now);
        }
        let hung = w
            .behind_since
            .is_some_and(|t| now.saturating_sub(t) > self.tuning.hang_timeout.as_nanos() as u64);
        if hung {
            return self.evict(slot, EvictReason::Hang, now);
        }
        let w = self.workers[slot].as_ref().expect("checked above");
        let twin_live = self.workers[1 - slot].as_ref().is_some_and(|t| t.verified);
        let caught_up = progress.chunks_done >= bounds.posted_chunks;
        let nothing_to_compare = w.floor_chunks >= bounds.posted_chunks;
        if !w.verified && caught_up && (!twin_live || nothing_to_compare) {
            // Alone, or started from a verified checkpoint with no chunk rendered since: this
            // is the proof we can get now. The digest comparison keeps policing it afterwards.
            self.verify(slot, now);
        }
    }

    fn verify(&mut self, slot: usize, now: u64) {
        let Some(w) = self.workers[slot].as_mut() else {
            return;
        };
        w.verified = true;
        let epoch = w.epoch;
        self.shared.slots[slot]
            .gen
            .store(generation(epoch, STATE_LIVE), Ordering::Release);
        let retry = &mut self.retry[slot];
        retry.failures = 0;
        let rebuild_ns = retry.since_ns.take().map_or(0, |t| now.saturating_sub(t));
        if rebuild_ns > 0 {
            self.shared.stats.rebuilds.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.workers_failing.store(false, Ordering::Relaxed);
        self.emit(EngineEvent::WorkerVerified {
            slot,
            epoch,
            at_ns: now,
            rebuild_ns,
        });
    }

    /// Compares the two rings' digests for every chunk both have rendered since the last
    /// comparison. Equal digests verify a newcomer; a difference evicts the worker we trust less.
    fn compare_digests(&mut self, now: u64) {
        let (Some(a), Some(b)) = (&self.workers[0], &self.workers[1]) else {
            return;
        };
        let (Some(pa), Some(pb)) = (a.progress, b.progress) else {
            return;
        };
        let verified = [a.verified, b.verified];
        let floor = a.floor_chunks.max(b.floor_chunks);
        let end = pa.chunks_done.min(pb.chunks_done);
        let window = self.shared.input.config().slot_count as u64 / 2;
        let start = self
            .digest_cursor
            .max(floor)
            .max(end.saturating_sub(window));
        self.digest_cursor = self.digest_cursor.max(end);
        for chunk in start..end {
            let da = self.shared.slots[0].output.digest_of(chunk);
            let db = self.shared.slots[1].output.digest_of(chunk);
            let (Some(da), Some(db)) = (da, db) else {
                continue;
            };
            if da != db {
                let suspect = match (self.non_finite_in(chunk), verified) {
                    // A ring with NaN or infinity in the chunk is the rogue, whoever serves.
                    ([true, false], _) => 0,
                    ([false, true], _) => 1,
                    // Otherwise trust the verified one, or else the one the listener hears.
                    (_, [true, false]) => 1,
                    (_, [false, true]) => 0,
                    _ => 1 - self.shared.serving.load(Ordering::Relaxed),
                };
                return self.evict(suspect, EvictReason::Divergence, now);
            }
        }
        if end > start {
            // Every chunk both rendered since the newcomer started matched.
            for (slot, done) in verified.into_iter().enumerate() {
                if !done {
                    self.verify(slot, now);
                }
            }
        }
    }

    /// Which rings hold non-finite audio for `chunk` (read through the validating copy).
    fn non_finite_in(&mut self, chunk: u64) -> [bool; 2] {
        let Some((start, frames)) = self.shared.input.chunk_span(chunk) else {
            return [false; 2];
        };
        let n = (frames as usize).min(shm::chunk::MAX_CHUNK_FRAMES);
        let [l, r] = &mut self.audio_scratch;
        [0, 1].map(|slot| {
            let copied = self.shared.slots[slot]
                .output
                .copy_frames(start, [&mut l[..n], &mut r[..n]]);
            copied == Err(Rogue::NonFinite)
        })
    }

    /// Keeps a recent, validated state snapshot so a rebuild replays only a little audio.
    fn checkpoint(&mut self, now: u64) {
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
                    self.pending = None;
                    let bytes = &self.scratch[..len];
                    let end_frame = self
                        .shared
                        .input
                        .chunk_span(chunk)
                        .map(|(start, frames)| start + frames as u64);
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
    fn request_checkpoint(&mut self, now: u64) -> bool {
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
        });
        self.shared
            .snapshot_request
            .fetch_or(1 << slot, Ordering::AcqRel);
        true
    }

    fn respawn_if_due(&mut self, slot: usize, now: u64) {
        if self.workers[slot].is_some() || now < self.retry[slot].not_before_ns {
            return;
        }
        if let Err(error) = self.spawn_into(slot, now) {
            let retry = &mut self.retry[slot];
            retry.failures += 1;
            let backoff = (5_000_000u64 << retry.failures.min(10)).min(MAX_BACKOFF_NS);
            retry.not_before_ns = now + backoff;
            self.note_if_failing();
            self.emit(EngineEvent::SpawnFailed {
                slot,
                error,
                retry_in: Duration::from_nanos(backoff),
            });
        }
    }

    /// The worker's spin before it sleeps on the input futex. Spinning only pays when the audio
    /// thread waits for the chunk it has just posted (latency below a block); at one block or
    /// more nobody waits for a worker, and the spin would only burn CPU.
    fn worker_spin_us(&self) -> u32 {
        if (self.config.latency as usize) < self.config.max_block {
            self.tuning.worker_spin_us
        } else {
            0
        }
    }

    /// Starts a worker in an empty slot from the latest checkpoint (or, if the input ring no
    /// longer holds the chunks after it, from a fresh state at the next chunk).
    fn spawn_into(&mut self, slot: usize, now: u64) -> Result<(), String> {
        let shared = self.shared.clone();
        let input = &shared.input;
        let ring = *input.config();
        let published = input.published();
        let first_chunk = self.checkpoint.chunk.map_or(0, |c| c + 1);
        let margin = ring.slot_count as u64 / 8;
        let frames_back = input.posted_frames() - self.checkpoint.end_frame;
        let lapped = published - first_chunk + margin > ring.slot_count as u64
            || frames_back + 4 * shm::chunk::MAX_CHUNK_FRAMES as u64 > ring.audio_capacity as u64;
        if lapped && self.pending.is_some() {
            // A fresh checkpoint is on its way; spawn from it on a later tick.
            return Ok(());
        }
        if lapped && self.request_checkpoint(now) {
            return Ok(());
        }
        if lapped {
            // Nobody alive holds the state any more: start over from a fresh synth, which
            // is audible (held notes are lost) but keeps the plugin making sound.
            self.verifier.reset();
            self.checkpoint.bytes = self.verifier.snapshot();
            self.checkpoint.chunk = published.checked_sub(1);
            self.checkpoint.end_frame = input.posted_frames();
            self.emit(EngineEvent::StateLost {
                from_chunk: published,
            });
        }
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        let s = &self.shared.slots[slot];
        if !s
            .output
            .prepare_spawn(epoch, self.checkpoint.chunk, &self.checkpoint.bytes)
        {
            return Err("snapshot larger than its area".into());
        }
        let floor_chunks = self.checkpoint.chunk.map_or(0, |c| c + 1);
        let floor_frames = self.checkpoint.end_frame;
        s.valid_from.store(floor_frames, Ordering::Release);
        s.floor_chunk.store(floor_chunks, Ordering::Release);
        let fds = HandedFds {
            input: input.fd(),
            output: s.output.fd(),
            doorbell: self.shared.doorbell.fd(),
        };
        let t0 = monotonic_ns();
        let process = WorkerProcess::spawn(
            &self.config.worker_path,
            slot,
            epoch,
            self.worker_spin_us(),
            &fds,
        )
        .map_err(|e| format!("{}: {e}", self.config.worker_path.display()))?;
        let spawn_ns = monotonic_ns() - t0;
        let pid = process.pid();
        s.pid.store(pid, Ordering::Release);
        s.gen
            .store(generation(epoch, STATE_JOINING), Ordering::Release);
        self.workers[slot] = Some(Worker {
            process,
            epoch,
            verified: false,
            floor_frames,
            floor_chunks,
            progress: None,
            behind_since: Some(now),
        });
        // Compare the newcomer from its first chunk on, even where its twin was checked before.
        self.digest_cursor = floor_chunks;
        self.emit(EngineEvent::WorkerSpawned {
            slot,
            epoch,
            pid,
            from_chunk: self.checkpoint.chunk,
            spawn_ns,
        });
        Ok(())
    }
}
