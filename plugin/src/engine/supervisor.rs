//! The supervisor thread: the only code that spawns, signals or reaps workers.
//!
//! It sleeps on futexes (its wake word, the workers' death words) and checks the workers' pidfds
//! on every pass, with a short tick only while there is work to time: hang checks, digest
//! comparison, checkpoints and respawns (`wait.rs`). Every worker-written
//! value it reads goes through the validating accessors of `shm::OutputRing`.

use super::config::{EngineConfig, EngineError, Protection, Tuning};
use super::events::{EngineEvent, EvictReason, Telemetry, WorkerExit};
use super::shared::{Generation, Shared, SlotState, OUTPUT_RINGS};
use super::spawn::{HandedFds, WorkerProcess};
use super::status::EngineStatus;
use crate::logging::RateLimit;
use crate::sys;
use checkpoint::{Candidates, Checkpoint, Pending};
use divergence::Referee;
use quarantine::Quarantine;
use shm::exit_status::EXIT_RESTORE;
use shm::futex::monotonic_ns;
use shm::{Bounds, OutputRing, Progress, Rogue, VoiceEndRecord, MAX_VOICE_ENDS};
use spare::Spare;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

mod checkpoint;
mod cpu_budget;
mod divergence;
mod eco;
mod quarantine;
mod spare;
mod starvation;
mod wait;

/// A running worker as the supervisor tracks it.
struct Worker {
    process: WorkerProcess,
    epoch: u32,
    /// The output ring it writes (`Shared::rings`).
    ring: usize,
    verified: bool,
    /// When it was verified.
    verified_ns: u64,
    floor_frames: u64,
    floor_chunks: u64,
    progress: Option<Progress>,
    /// Since when it has had work pending without progress.
    behind_since: Option<u64>,
    /// The first chunk whose digest has not been checked for presence yet.
    digests_audited: u64,
    /// Chunks whose digests matched its verified twin's since it started.
    matched_digests: u64,
    /// Chunks posted when it started: alone, it is proven once it has rendered them all (and
    /// one at least), even if the host has posted more since.
    posted_at_start: u64,
    /// Its stall as the kernel first saw it (`starvation.rs`).
    stall: Option<starvation::Stall>,
    /// It was the spare, called into its slot: it can be dismissed back to sleep as the spare
    /// (Eco), which a worker spawned straight into its slot cannot.
    from_spare: bool,
    /// It holds a state the engine gave up for a fresh one (`EngineEvent::StateLost`) after it
    /// was spawned: its crashes say nothing about the chunks the fresh state renders.
    superseded: bool,
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

pub(super) struct Supervisor {
    shared: Arc<Shared>,
    config: EngineConfig,
    tuning: Tuning,
    telemetry: rtrb::Consumer<Telemetry>,
    events: crossbeam_channel::Sender<EngineEvent>,
    /// What the editor's protection panel shows; updated with every event.
    status: EngineStatus,
    workers: [Option<Worker>; 2],
    /// The output rings no process holds: a ring goes to a spare or a new worker, and comes
    /// back only once the process that held it is reaped (`Supervisor::reap`), so a worker
    /// evicted but still running never writes into a ring another worker serves from.
    free_rings: [bool; OUTPUT_RINGS],
    retry: [Retry; 2],
    checkpoint: Checkpoint,
    /// Eco: the checkpoint before `checkpoint`, the fallback if a standby refuses that one
    /// (`checkpoint.rs`).
    older_checkpoint: Option<Checkpoint>,
    /// A worker refused `checkpoint` and there was no older one: the next spawn needs a new
    /// snapshot or a fresh state.
    checkpoint_refused: bool,
    /// Snapshots newer than `checkpoint` whose chunks are not judged yet (`checkpoint.rs`).
    candidates: Candidates,
    pending: Option<Pending>,
    /// The pre-spawned spare worker, sleeping in its sandbox until a slot needs it.
    spare: Option<Spare>,
    /// No spare is spawned before this (a backoff after a failed one).
    spare_not_before_ns: u64,
    /// The synth's state at activation: what a fresh start restores, so that the workers start
    /// over exactly as a newly activated engine (and the reference) would, whatever state the
    /// supervisor's synth last restored.
    fresh_state: Vec<u8>,
    scratch: Vec<u8>,
    audio_scratch: [Vec<f32>; 2],
    voice_end_scratch: [VoiceEndRecord; MAX_VOICE_ENDS],
    verifier: dsp::Synth,
    next_epoch: u32,
    digest_cursor: u64,
    last_checkpoint_frame: u64,
    xrun_lines: RateLimit,
    /// The kernel has no `futex_waitv`: poll the pidfds on the tick instead (`wait.rs`).
    futex_waitv_missing: bool,
    /// During a rebuild the doorbell wakes the supervisor, but not again before this instant
    /// (`wait.rs`).
    bell_quiet_until: u64,
    /// The doorbell's count when the current pass began.
    bell_seen: u32,
    /// Calls into a slot so far (wrapping): each one's `Generation::stint`.
    stints: u16,
    /// The CPU budget's current window (`cpu_budget.rs`).
    cpu_window: Option<cpu_budget::CpuWindow>,
    /// Eco: the active worker's CPU at the last audit's or hedge's end (`cpu_budget.rs`).
    active_cpu: Option<cpu_budget::CpuMark>,
    /// Eco: the audit's or hedge's standby's CPU when it was called.
    standby_cpu: Option<cpu_budget::CpuMark>,
    /// Crashes by chunk and the chunk whose events rebuilds skip (`quarantine.rs`).
    quarantine: Quarantine,
    /// The third opinion on a finite divergence (`divergence.rs`).
    referee: Referee,
    /// Eco: when the next audit is due (`eco.rs`).
    next_audit_ns: u64,
    /// Eco: an audit is under way; its routine events are logged at debug level only.
    auditing: bool,
    /// Chunks posted when the supervisor last went to sleep: Eco watches a playing engine on a
    /// coarse timer instead of being woken by every post (`wait.rs`).
    posted_at_last_wait: u64,
}

const MAX_BACKOFF_NS: u64 = 2_000_000_000;

/// How long activation waits for its first workers to reach their render loop. A liveness
/// bound: a slower start is not a failure (the hang check takes over), an exit is.
const STARTUP_BOUND: Duration = Duration::from_secs(2);

/// Chunk digests a newcomer must match with its verified twin before it is verified: every one
/// since it started, and at least this many, or all the stream has posted since if that is
/// fewer (an idle stream), never none (a skipped chunk proves nothing). Until then it is never
/// served while that twin is.
const VERIFY_AFTER_MATCHES: u64 = 8;

/// At most one xrun line per this long; the rest are counted into the next line.
const XRUN_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The supervisor's real-time priority: just above the workers' (`SCHED_FIFO` 5, set by their
/// sandbox), so a surviving twin's render does not delay the detection and rebuild, and below
/// any host's audio thread.
pub const SUPERVISOR_PRIORITY: i32 = 6;

impl Supervisor {
    /// Spawns both workers, or in Eco the one active worker (so a missing executable is an
    /// activation error, not a silent plugin), and the spare; returns the supervisor, ready to
    /// `run` on its own thread.
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
            return Err(EngineError::Spawn {
                worker: config.worker_path.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "no such executable"),
            });
        }
        let referee = Referee::new(config.sample_rate).map_err(EngineError::Synth)?;
        let verifier = dsp::Synth::new(config.sample_rate, shm::chunk::MAX_CHUNK_FRAMES)
            .map_err(EngineError::Synth)?;
        let mut sup = Supervisor {
            scratch: vec![0; shared.rings[0].snapshot_max()],
            audio_scratch: [
                vec![0.0; shm::chunk::MAX_CHUNK_FRAMES],
                vec![0.0; shm::chunk::MAX_CHUNK_FRAMES],
            ],
            voice_end_scratch: [VoiceEndRecord::default(); MAX_VOICE_ENDS],
            shared,
            config,
            tuning,
            telemetry,
            events,
            status,
            workers: [None, None],
            free_rings: [true; OUTPUT_RINGS],
            retry: Default::default(),
            checkpoint: Checkpoint {
                chunk: None,
                end_frame: 0,
                bytes: initial_state.clone(),
            },
            fresh_state: initial_state,
            older_checkpoint: None,
            checkpoint_refused: false,
            candidates: Candidates::default(),
            pending: None,
            spare: None,
            spare_not_before_ns: 0,
            verifier,
            next_epoch: 1,
            digest_cursor: 0,
            last_checkpoint_frame: 0,
            xrun_lines: RateLimit::new(XRUN_LOG_INTERVAL),
            futex_waitv_missing: false,
            bell_quiet_until: 0,
            bell_seen: 0,
            stints: 0,
            cpu_window: None,
            active_cpu: None,
            standby_cpu: None,
            quarantine: Quarantine::default(),
            referee,
            next_audit_ns: 0,
            auditing: false,
            posted_at_last_wait: 0,
        };
        sup.next_audit_ns = monotonic_ns() + sup.tuning.audit_interval.as_nanos() as u64;
        let slots = match sup.config.protection {
            Protection::Lockstep => 2,
            Protection::Eco => 1,
        };
        for slot in 0..slots {
            sup.spawn_into(slot, monotonic_ns())
                .map_err(|source| EngineError::Spawn {
                    worker: sup.config.worker_path.clone(),
                    source,
                })?;
        }
        // A worker that starts but cannot enter its sandbox (or map its rings) exits at once:
        // say so now, rather than activate into retries and silence.
        let shared = sup.shared.clone();
        for (slot, w) in sup.workers.iter_mut().enumerate() {
            if let Some(w) = w {
                let output = &shared.rings[w.ring];
                w.process
                    .wait_started(|| output.sleeping(), STARTUP_BOUND)
                    .map_err(|exit| EngineError::ExitedOnStart { slot, exit })?;
            }
        }
        sup.spawn_spare(monotonic_ns());
        Ok(sup)
    }

    pub fn run(mut self) {
        // Detection and rebuild should not wait behind the host's busy threads or our own
        // workers.
        sys::raise_to_fifo(SUPERVISOR_PRIORITY);
        while !self.shared.shutdown.load(Ordering::Acquire) {
            let readable = self.wait();
            let now = monotonic_ns();
            for (slot, dead) in readable.into_iter().enumerate() {
                if dead {
                    self.on_exit(slot, now);
                }
            }
            self.drain_telemetry(now);
            self.hedge(now);
            for slot in 0..2 {
                self.check_progress(slot, now);
            }
            self.compare_digests(now);
            self.retire_older(now);
            self.check_cpu_budget(now);
            self.checkpoint(now);
            self.check_spare(now);
            for slot in 0..2 {
                self.respawn_if_due(slot, now);
            }
            self.audit(now);
            self.keep_spare(now);
            self.publish_state();
        }
        for slot in 0..2 {
            if let Some(w) = self.workers[slot].take() {
                self.clear_slot(slot);
                self.reap(w.process, w.ring);
            }
        }
        self.drop_spare();
    }

    fn emit(&self, event: EngineEvent) {
        let routine = matches!(
            event,
            EngineEvent::StandbyCalled { .. }
                | EngineEvent::WorkerSpawned { .. }
                | EngineEvent::WorkerVerified { .. }
                | EngineEvent::WorkerRetired { .. }
                | EngineEvent::StandbyReturned { .. }
                | EngineEvent::SpareSpawned { .. }
        );
        match &event {
            EngineEvent::Switched { .. } => log::debug!("{event}"),
            _ if routine && self.auditing => log::debug!("{event}"),
            EngineEvent::SpawnFailed { .. } | EngineEvent::StateLost { .. } => {
                log::warn!("{event}")
            }
            _ => log::info!("{event}"),
        }
        self.status.record(&event);
        let _ = self.events.try_send(event);
    }

    /// The output ring `w` writes.
    fn ring_of(&self, w: &Worker) -> &OutputRing {
        &self.shared.rings[w.ring]
    }

    /// A free output ring, taken (see `free_rings`).
    fn take_ring(&mut self) -> Option<usize> {
        let ring = self.free_rings.iter().position(|&free| free)?;
        self.free_rings[ring] = false;
        Some(ring)
    }

    /// Kills `process` if it still runs and reaps it; only then is its output `ring` free
    /// again. Returns how it ended.
    fn reap(&mut self, process: WorkerProcess, ring: usize) -> WorkerExit {
        let cause = process.reap();
        self.free_rings[ring] = true;
        cause
    }

    fn clear_slot(&self, slot: usize) {
        let s = &self.shared.slots[slot];
        s.generation.store(Generation::EMPTY);
        s.pid.store(0, Ordering::Release);
    }

    /// A worker's pidfd fired: it is dead. Reap it and schedule the rebuild.
    fn on_exit(&mut self, slot: usize, now: u64) {
        let rendering = self.chunk_in_progress(slot);
        let first_chunk = self.workers[slot].as_ref().map(|w| w.floor_chunks);
        let mut exit = None;
        self.remove(slot, now, false, |epoch, pid, cause| {
            exit = Some(cause);
            EngineEvent::WorkerDied {
                slot,
                epoch,
                pid,
                cause,
                detected_ns: now,
            }
        });
        if let Some(cause) = exit {
            if let (WorkerExit::Exited(EXIT_RESTORE), Some(first)) = (cause, first_chunk) {
                self.start_refused(slot, first, now);
            }
            self.after_death(slot, rendering, cause, now);
        }
    }

    /// Kills a worker we no longer trust.
    fn evict(&mut self, slot: usize, reason: EvictReason, now: u64) {
        // A hang or a lag says nothing against its snapshots, as a death does not; wrong or
        // hostile output does.
        let distrusted = !matches!(reason, EvictReason::Hang | EvictReason::FellBehind);
        if let Some(w) = self.workers[slot].as_ref().filter(|_| distrusted) {
            self.candidates.forget(w.epoch);
        }
        self.remove(slot, now, true, |epoch, pid, _| {
            EngineEvent::WorkerEvicted {
                slot,
                epoch,
                pid,
                reason,
                detected_ns: now,
            }
        });
    }

    /// Takes the worker out of its slot (so the audio thread stops reading it), starts the
    /// rebuild, kills the worker if it still runs and reaps it, and reports it with
    /// `report(epoch, pid, how it ended)`.
    ///
    /// An eviction (`evicted`) leaves a twin that kept rendering while this worker stalled or
    /// erred, and its snapshots since the checkpoint were waiting only for this worker's
    /// digests: they are judged now (`Supervisor::promote_judged`), before the rebuild starts,
    /// so the newcomer replays from the newest instead of from before the stall (a hang's
    /// replay was the whole stall, most of its rebuild). A death is left to the next pass: the
    /// twin may have died in the same instant, and its pidfd not be read yet.
    ///
    /// The spare renders into a ring of its own, so it is called before the reap, which waits
    /// for the kernel to unmap the dead process (about 0.35 ms): in Eco into the other, empty
    /// slot (`take_over`), in Lockstep into this one once it is due (not while a backoff
    /// holds it). The dead worker's ring is free only after the reap.
    fn remove(
        &mut self,
        slot: usize,
        now: u64,
        evicted: bool,
        report: impl FnOnce(u32, u32, WorkerExit) -> EngineEvent,
    ) {
        let Some(w) = self.workers[slot].take() else {
            return;
        };
        self.clear_slot(slot);
        self.failed(slot, w.verified, now);
        if evicted {
            self.promote_judged();
        }
        let took_over = self.take_over(slot, now);
        if self.spare.is_some() {
            self.respawn_if_due(slot, now);
        }
        let pid = w.process.pid();
        let cause = self.reap(w.process, w.ring);
        self.emit(report(w.epoch, pid, cause));
        if took_over {
            // The rebuild ends when the standby, in the other slot, is verified.
            self.retry[1 - slot].since_ns = self.retry[slot].since_ns.take();
        }
    }

    fn failed(&mut self, slot: usize, was_verified: bool, now: u64) {
        self.shared.stats.failures.fetch_add(1, Ordering::Relaxed);
        self.auditing = false;
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
                    let event = EngineEvent::Xrun { frames, at_frame };
                    if let Some(held) = self.xrun_lines.allow(now, frames as u64) {
                        match held.count {
                            0 => log::info!("{event}"),
                            n => log::info!(
                                "{event} ({n} more xruns, {} frames, since the last such line)",
                                held.amount
                            ),
                        }
                    }
                    let _ = self.events.try_send(event);
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
        let output = self.ring_of(w);
        let mut bounds = self.bounds(w);
        let mut checked = output.progress(&bounds);
        if checked == Err(Rogue::BeyondPosted) {
            // We read what was posted before the worker's counters; if we were preempted in
            // between, it may honestly have rendered chunks posted since. What was posted
            // only grows, so judge again against a fresh reading.
            bounds = self.bounds(w);
            checked = output.progress(&bounds);
        }
        let progress = match checked.and_then(|p| self.check_voice_ends(slot, p).map(|()| p)) {
            Ok(p) => p,
            Err(reason) => return self.evict(slot, EvictReason::Rogue(reason), now),
        };
        if let Err(reason) = self.audit_digests(slot, progress) {
            return self.evict(slot, EvictReason::Rogue(reason), now);
        }
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
        if self.hung(slot, now) {
            return self.evict(slot, EvictReason::Hang, now);
        }
        if self.left_behind(slot) {
            return self.evict(slot, EvictReason::FellBehind, now);
        }
        let w = self.workers[slot].as_ref().expect("checked above");
        let twin_live = self.workers[1 - slot].as_ref().is_some_and(|t| t.verified);
        let caught_up = progress.chunks_done >= bounds.posted_chunks;
        // A host that posts faster than the worker renders (an offline bounce) may never let
        // it catch up: having rendered all it was started behind (any replay included) is the
        // same proof.
        let replayed =
            progress.chunks_done > w.floor_chunks && progress.chunks_done >= w.posted_at_start;
        // In Eco a standby beside a live worker is there to be compared (an audit, a hedge).
        let nothing_to_compare = w.floor_chunks >= bounds.posted_chunks
            && self.config.protection == Protection::Lockstep;
        let alone = !twin_live && (caught_up || replayed);
        if !w.verified && (alone || (caught_up && nothing_to_compare)) {
            // Alone, or started from a verified checkpoint with no chunk rendered since: this
            // is the proof we can get now. The digest comparison keeps policing it afterwards.
            self.verify(slot);
        }
    }

    /// Validates the voice-end table of the latest chunk the worker rendered itself, so a
    /// malformed table is caught even in a ring the audio thread is not reading.
    fn check_voice_ends(&mut self, slot: usize, progress: Progress) -> Result<(), Rogue> {
        let Some(w) = &self.workers[slot] else {
            return Ok(());
        };
        if progress.chunks_done <= w.floor_chunks {
            return Ok(());
        }
        let chunk = progress.chunks_done - 1;
        let input = &self.shared.input;
        let Some(span) = input.chunk_span(chunk) else {
            return Ok(());
        };
        let output = &self.shared.rings[w.ring];
        let checked = output.voice_ends(chunk, span.1, &mut self.voice_end_scratch);
        // The audio thread may have reused the chunk's record meanwhile: judge only against a
        // span that held throughout.
        match checked {
            Err(reason) if input.chunk_span(chunk) == Some(span) => Err(reason),
            _ => Ok(()),
        }
    }

    /// Every chunk a worker counts as done must carry its digest: a missing or mis-tagged one is
    /// a fault (`Rogue::MissingDigest`), not a chunk to skip, whether or not a twin is there to
    /// compare with. Checks the chunks finished since the last look, at most half the digest
    /// table back.
    fn audit_digests(&mut self, slot: usize, progress: Progress) -> Result<(), Rogue> {
        let shared = self.shared.clone();
        let table = shared.input.config().record_count as u64;
        let Some(w) = self.workers[slot].as_mut() else {
            return Ok(());
        };
        let output = &shared.rings[w.ring];
        let from = w
            .digests_audited
            .max(w.floor_chunks)
            .max(progress.chunks_done.saturating_sub(table / 2));
        for chunk in from..progress.chunks_done {
            if output.digest_of(chunk).is_none() {
                // An honest worker overwrites a digest only a whole table later; if we were
                // preempted that long, its progress says so now.
                let bounds = Bounds {
                    epoch: w.epoch,
                    posted_frames: shared.input.posted_frames(),
                    posted_chunks: shared.input.published(),
                    floor_frames: progress.frames_done,
                    floor_chunks: progress.chunks_done,
                };
                let lapped = output
                    .progress(&bounds)
                    .is_ok_and(|p| p.chunks_done >= chunk + table);
                if !lapped {
                    return Err(Rogue::MissingDigest);
                }
            }
        }
        w.digests_audited = w.digests_audited.max(progress.chunks_done);
        Ok(())
    }

    fn verify(&mut self, slot: usize) {
        let Some(w) = self.workers[slot].as_mut() else {
            return;
        };
        // Stamped now, not with the pass's start: the pass may have waited since (a spawn), and
        // a rebuild verified in the pass that detected its failure is not instant.
        let at_ns = monotonic_ns();
        w.verified = true;
        w.verified_ns = at_ns;
        let epoch = w.epoch;
        let generation = &self.shared.slots[slot].generation;
        generation.store(Generation {
            state: SlotState::Live,
            ..generation.load()
        });
        self.quarantine.proven();
        let retry = &mut self.retry[slot];
        retry.failures = 0;
        let rebuild_ns = retry.since_ns.take().map(|t| at_ns.saturating_sub(t));
        if rebuild_ns.is_some() {
            self.shared.stats.rebuilds.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.workers_failing.store(false, Ordering::Relaxed);
        self.emit(EngineEvent::WorkerVerified {
            slot,
            epoch,
            at_ns,
            rebuild_ns: rebuild_ns.unwrap_or(0),
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
        let window = self.shared.input.config().record_count as u64 / 2;
        let start = self
            .digest_cursor
            .max(floor)
            .max(end.saturating_sub(window));
        self.digest_cursor = self.digest_cursor.max(end);
        let mut matched = 0;
        let shared = self.shared.clone();
        let rings = [&shared.rings[a.ring], &shared.rings[b.ring]];
        for chunk in start..end {
            let da = rings[0].digest_of(chunk);
            let db = rings[1].digest_of(chunk);
            let (Some(da), Some(db)) = (da, db) else {
                continue;
            };
            if da != db {
                let suspect = match (self.non_finite_in(chunk), verified) {
                    // A ring with NaN or infinity in the chunk is the rogue, whoever serves.
                    ([true, false], _) => 0,
                    ([false, true], _) => 1,
                    // Otherwise the one our own replay disagrees with; failing that, trust the
                    // verified one, or else the one the listener hears.
                    _ => match (self.third_opinion(chunk, [da, db]), verified) {
                        (Some(suspect), _) => suspect,
                        (None, [true, false]) => 1,
                        (None, [false, true]) => 0,
                        _ => 1 - self.shared.serving.load(Ordering::Relaxed),
                    },
                };
                return self.evict(suspect, EvictReason::Divergence, now);
            }
            matched += 1;
        }
        // Every chunk both rendered since the newcomer started matched: once enough have (or,
        // in a stream that has posted fewer since, all of them), the newcomer is proven.
        let at_head = end >= self.shared.input.published();
        for (slot, done) in verified.into_iter().enumerate() {
            let Some(w) = self.workers[slot].as_mut().filter(|_| !done) else {
                continue;
            };
            w.matched_digests += matched;
            let proven =
                w.matched_digests >= VERIFY_AFTER_MATCHES || (at_head && w.matched_digests > 0);
            if proven {
                self.verify(slot);
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
            self.workers[slot].as_ref().is_some_and(|w| {
                let copied =
                    self.shared.rings[w.ring].copy_frames(start, [&mut l[..n], &mut r[..n]]);
                copied == Err(Rogue::NonFinite)
            })
        })
    }

    fn respawn_if_due(&mut self, slot: usize, now: u64) {
        if self.workers[slot].is_some() || now < self.retry[slot].not_before_ns {
            return;
        }
        if self.kept_empty(slot) {
            return;
        }
        if let Err(e) = self.spawn_into(slot, now) {
            let retry = &mut self.retry[slot];
            retry.failures += 1;
            let backoff = (5_000_000u64 << retry.failures.min(10)).min(MAX_BACKOFF_NS);
            retry.not_before_ns = now + backoff;
            self.note_if_failing();
            self.emit(EngineEvent::SpawnFailed {
                slot,
                error: format!("{}: {e}", self.config.worker_path.display()),
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
    /// longer holds the chunks after it and no worker can give a new one, from a fresh state:
    /// `Supervisor::fresh_start`).
    fn spawn_into(&mut self, slot: usize, now: u64) -> io::Result<()> {
        self.newest_if_stale();
        let shared = self.shared.clone();
        let input = &shared.input;
        let ring = *input.config();
        let published = input.published();
        let first_chunk = self.checkpoint.chunk.map_or(0, |c| c + 1);
        let margin = ring.record_count as u64 / 8;
        let frames_back = input.posted_frames() - self.checkpoint.end_frame;
        // A checkpoint a worker refused is as unusable as a lapped one.
        let lapped = published - first_chunk + margin > ring.record_count as u64
            || frames_back + 4 * shm::chunk::MAX_CHUNK_FRAMES as u64 > ring.audio_capacity as u64
            || self.checkpoint_refused;
        let fresh = std::mem::take(&mut self.quarantine.fresh_start);
        if lapped && !fresh && self.pending.is_some() {
            // A fresh checkpoint is on its way; spawn from it on a later tick.
            return Ok(());
        }
        if lapped && !fresh && self.request_checkpoint(now, 0) {
            return Ok(());
        }
        if lapped || fresh {
            // Nobody alive holds the state any more: start over from a fresh synth, which
            // is audible (held notes are lost) but keeps the plugin making sound.
            let (from_chunk, from_frame) = self.fresh_start(fresh);
            self.checkpoint.bytes.clone_from(&self.fresh_state);
            self.checkpoint.chunk = from_chunk.checked_sub(1);
            self.checkpoint.end_frame = from_frame;
            (self.older_checkpoint, self.checkpoint_refused) = (None, false);
            self.emit(EngineEvent::StateLost { from_chunk });
            for w in self.workers.iter_mut().flatten() {
                w.superseded = true;
            }
        }
        // The spare's own ring, or a free one for a new process.
        let (epoch, spare, ring) = match self.take_spare() {
            (epoch, Some((process, ring))) => (epoch, Some(process), ring),
            (epoch, None) => match self.take_ring() {
                Some(ring) => (epoch, None, ring),
                None => return Err(io::Error::other("no free output ring")),
            },
        };
        let output = &shared.rings[ring];
        let s = &shared.slots[slot];
        let prepared = output.prepare_spawn(epoch, self.checkpoint.chunk, &self.checkpoint.bytes);
        output.set_quarantine(self.quarantine.chunk);
        let floor_chunks = self.checkpoint.chunk.map_or(0, |c| c + 1);
        let floor_frames = self.checkpoint.end_frame;
        s.valid_from.store(floor_frames, Ordering::Release);
        s.floor_chunk.store(floor_chunks, Ordering::Release);
        let fds = HandedFds {
            input: input.fd(),
            output: output.fd(),
            doorbell: shared.doorbell.fd(),
        };
        let t0 = monotonic_ns();
        let from_spare = spare.is_some();
        let process = match (prepared, spare) {
            (true, Some(process)) => {
                shared.input.call_spare(epoch, slot);
                Ok(process)
            }
            (true, None) => WorkerProcess::spawn(
                &self.config.worker_path,
                Some(slot),
                epoch,
                self.worker_spin_us(),
                &fds,
            ),
            (false, _) => Err(io::Error::other("snapshot larger than its area")),
        };
        let process = match process {
            Ok(process) => process,
            Err(e) => {
                // A spare never called (nor a process never started) leaves with its ring.
                self.free_rings[ring] = true;
                return Err(e);
            }
        };
        let spawn_ns = monotonic_ns() - t0;
        let pid = process.pid();
        s.pid.store(pid, Ordering::Release);
        self.stints = self.stints.wrapping_add(1);
        s.generation.store(Generation {
            epoch,
            stint: self.stints,
            state: SlotState::Joining,
            ring,
        });
        self.workers[slot] = Some(Worker {
            process,
            epoch,
            ring,
            verified: false,
            verified_ns: 0,
            floor_frames,
            floor_chunks,
            progress: None,
            behind_since: Some(now),
            digests_audited: floor_chunks,
            matched_digests: 0,
            posted_at_start: shared.input.published(),
            from_spare,
            stall: None,
            superseded: false,
        });
        // Compare the newcomer from its first chunk on, even where its twin was checked before.
        self.digest_cursor = floor_chunks;
        self.emit(EngineEvent::WorkerSpawned {
            slot,
            epoch,
            pid,
            ring,
            from_chunk: self.checkpoint.chunk,
            spawn_ns,
        });
        Ok(())
    }
}
