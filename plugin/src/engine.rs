//! The headless lockstep engine: what `Plugin::process()` calls, usable without a host.
//!
//! Lifecycle: [`Engine::activate`] (main thread) creates the shared memory and spawns two workers
//! and the supervisor thread; [`Engine::process`] (audio thread) posts each block as chunks to
//! both workers and delivers frames `[T-L, T-L+n)` from whichever worker's ring has them; dropping
//! the engine kills and reaps the workers. See docs/ARCHITECTURE.md, "One block traced",
//! "Timing" and "Failure detection and rebuild".
//!
//! The audio thread never allocates, locks or logs here: it reads rings, writes the input ring,
//! and may `FUTEX_WAKE` the workers and `FUTEX_WAIT` (bounded) on the doorbell. What it learns
//! (a rogue ring, an xrun, a switch) leaves through a wait-free `rtrb` queue to the supervisor.
//!
//! This file is the audio path first, then activation and the control surface; the
//! configuration, the events and the shared state live in `config.rs`, `events.rs` and
//! `shared.rs`, the supervisor thread in `supervisor.rs`.

mod chunker;
mod config;
mod events;
mod pace;
pub mod reference;
mod served;
mod shared;
mod spawn;
mod status;
mod supervisor;
mod voice_end;

pub use chunker::Chunker;
pub use config::{EngineConfig, EngineError, ProcessMode, Protection, Tuning, MAX_BLOCK};
pub use events::{EngineEvent, EvictReason, StandbyReason, Stats, WorkerExit};
pub use reference::ReferenceEngine;
pub use status::{EngineStatus, FaultKind, FaultView, StatusSnapshot, WorkerState, WorkerView};
pub use supervisor::SUPERVISOR_PRIORITY;
pub use voice_end::{BlockVoiceEnd, MAX_BLOCK_VOICE_ENDS};

use crate::engine::events::Telemetry;
use crate::engine::pace::Pace;
use crate::engine::served::{Hold, Source, Staging, Twin};
use crate::engine::shared::{FaultRequest, Generation, Shared, SlotState};
use crate::engine::supervisor::Supervisor;
use crate::engine::voice_end::VoiceEnds;
use dsp::{Event, N_PARAMS};
use shm::chunk::{Chunk, FaultCommand, MAX_CHUNK_FRAMES};
use shm::futex::monotonic_ns;
use shm::{Bounds, Rogue};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What one `process()` call did, for the host wrapper's bookkeeping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockReport {
    /// Frames filled by the declicked fallback because no worker answered in time.
    pub fallback_frames: u32,
    /// Frames served on one worker's word: no verified twin's digest confirmed their chunk
    /// (always in Eco; in Lockstep while a twin rebuilds, or when it was late past the
    /// deadline). A wrong but finite sample among them is the one fault that can be heard.
    pub unconfirmed_frames: u32,
}

/// The audio thread's private view of a slot: the floor its progress may not fall below.
#[derive(Clone, Copy, Default)]
struct SeenSlot {
    /// Whose progress this is (`Generation::worker`).
    worker: (u32, u16),
    frames: u64,
    chunks: u64,
    bad: bool,
}

/// How long `Engine::deliver` may wait, as monotonic instants.
struct Waits {
    /// Past it, whatever no ring has fades out.
    deadline: u64,
    /// Eco: past it, the standby is called in.
    hedge_at: u64,
    /// Until then, a chunk is served only with the verified twin's agreeing digest.
    agree_until: u64,
}

/// After the twin let a wait for its digests run out, how long at least chunks are served
/// without waiting for them (`Engine::twin_late_at`).
const TWIN_LATE_HOLD: Duration = Duration::from_secs(1);

/// Engine events kept for [`Engine::drain_events`] between two calls.
const EVENT_BACKLOG: usize = 4096;

/// Frames over which the fallback fades the last delivered sample to silence.
const FADE_FRAMES: usize = 64;

/// The largest sample magnitude the host gets (+12 dBFS): louder is no music a synth should
/// make, and a hostile worker's finite garbage stops here. The rings' own clip
/// (`shm::MAX_SAMPLE`) is wider, so the digest check of what is served (`served.rs`) sees what
/// the worker wrote; the reference applies the same limit, so exact comparisons still hold.
pub const OUTPUT_LIMIT: f32 = 4.0;

/// The engine, owned by the audio thread.
pub struct Engine {
    config: EngineConfig,
    tuning: Tuning,
    shared: Arc<Shared>,
    chunker: Chunker,
    telemetry: rtrb::Producer<Telemetry>,
    events: crossbeam_channel::Receiver<EngineEvent>,
    supervisor: Option<JoinHandle<()>>,
    seen: [SeenSlot; 2],
    last_out: [f32; 2],
    voice_ends: VoiceEnds,
    /// The checked copy out of the rings (`served.rs`).
    staging: Staging,
    status: EngineStatus,
    /// A fault aimed at every worker from now on (`shm::FaultKind::CrashOnNote`), stamped on
    /// every chunk that carries no other fault, so rebuilds replaying those chunks meet it too.
    standing_fault: FaultCommand,
    pace: Pace,
    /// Frames before this one are delivered as silence: the first posted frame (0), or the
    /// frame of the last reset, so no audio from before it comes out of the pipeline after it.
    silent_before: u64,
    /// The end frame of the last chunk posted with a snapshot request (`wait_for_checkpoint`).
    snapshot_asked: u64,
    /// The twin was found late with its digests at this instant (0: it is not): a wait for them
    /// ran out (`Engine::agree_until`), or over `TWIN_LATE_HOLD` the host spent more than half
    /// its time waiting for them. Until the twin has caught up, and for at least
    /// `TWIN_LATE_HOLD` after, chunks are served on their own ring's digest. So a starved twin
    /// does not pace a render: waited for block after block, it would set the render's speed
    /// and never fall behind far enough to be rebuilt (`EvictReason::FellBehind`).
    twin_late_at: u64,
    /// Since when, and how long in all, the host has waited for the twin's digests with the
    /// frames in a ring (the measure of `twin_late_at`'s second rule).
    twin_waits: (u64, u64),
}

/// The audio path (audio thread; no allocation).
impl Engine {
    /// Audio thread; no allocation. Posts frames `[T, T+n)` (n = `out[0].len()`) with the
    /// events (offsets < n, sorted) and every parameter's target (plain units, indexed by
    /// `dsp::ParamId::index()`), then writes frames `[T-L, T-L+n)` into `out`.
    pub fn process(
        &mut self,
        events: &[Event],
        params: &[f32; N_PARAMS],
        input: Option<[&[f32]; 2]>,
        out: [&mut [f32]; 2],
    ) -> BlockReport {
        let t0 = monotonic_ns();
        let [out_l, out_r] = out;
        let n = out_l.len().min(out_r.len());
        let block_start = self.chunker.next_frame();
        let mode = self
            .pace
            .observe(t0, n, self.config.sample_rate, self.config.mode);
        self.post(n, events, params, input, mode);
        self.voice_ends.clear();

        // Frames before the first posted frame, or before the last reset, are silence
        // (docs/ARCHITECTURE.md, "Timing").
        let want = block_start as i64 - self.config.latency as i64;
        let silent = (self.silent_before as i64 - want).clamp(0, n as i64) as usize;
        out_l[..silent].fill(0.0);
        out_r[..silent].fill(0.0);
        let mut report = BlockReport::default();
        if silent < n {
            let start = (want + silent as i64) as u64;
            let deadline = match mode {
                ProcessMode::Realtime => {
                    let period = n as f64 / self.config.sample_rate as f64;
                    t0 + (period * self.tuning.deadline_fraction as f64 * 1e9) as u64
                }
                ProcessMode::Offline => t0 + self.tuning.offline_wait_bound.as_nanos() as u64,
            };
            let end = start + (n - silent) as u64;
            let hedge_at = self.hedge_at(mode, t0, deadline, end <= block_start);
            let agree_until = self.agree_until(mode, t0, deadline);
            let served = self.deliver(
                start,
                silent,
                [&mut out_l[silent..n], &mut out_r[silent..n]],
                Waits {
                    deadline,
                    hedge_at,
                    agree_until,
                },
            );
            report.fallback_frames = (n - silent - served) as u32;
            report.unconfirmed_frames = self.staging.take_unconfirmed();
            for s in out_l[silent..n].iter_mut().chain(&mut out_r[silent..n]) {
                *s = s.clamp(-OUTPUT_LIMIT, OUTPUT_LIMIT);
            }
        }
        if n > 0 {
            self.last_out = [out_l[n - 1], out_r[n - 1]];
        }
        let delivered = (block_start + n as u64).saturating_sub(self.config.latency as u64);
        self.shared
            .delivered_frames
            .store(delivered, Ordering::Release);
        report
    }

    /// Writes the block's chunks into the input ring and wakes sleeping workers; in `mode`
    /// offline (the host's, or a render faster than real time: `pace.rs`), first waits for
    /// laggards.
    fn post(
        &mut self,
        n: usize,
        events: &[Event],
        params: &[f32; N_PARAMS],
        input: Option<[&[f32]; 2]>,
        mode: ProcessMode,
    ) {
        if mode == ProcessMode::Offline {
            self.wait_for_laggards();
            self.wait_for_checkpoint();
        }
        let mut fault = self.take_fault();
        // A one-off fault goes with the block's first chunk, the standing one with every chunk.
        let standing = self.standing_fault;
        let shared = &*self.shared;
        // The request's frame is stored before the request: seeing the one, we see the other.
        let asked = shared.snapshot_request.load(Ordering::Acquire) != 0;
        let from = shared.snapshot_from_frame.load(Ordering::Acquire);
        let mut snapshot = if asked && self.chunker.next_frame() >= from {
            shared.snapshot_request.swap(0, Ordering::AcqRel)
        } else {
            0
        };
        let snapshot_asked = &mut self.snapshot_asked;
        self.chunker.split(
            n,
            events,
            params,
            input,
            |c: &mut Chunk| {
                c.snapshot_slots = std::mem::take(&mut snapshot);
                if c.snapshot_slots != 0 {
                    *snapshot_asked = c.start_frame + c.frames as u64;
                }
                c.fault = std::mem::replace(&mut fault, standing);
            },
            |c, audio| shared.input.publish(c, audio),
        );
        // An empty slot's ring may still say its last worker slept (Eco leaves a slot empty).
        let asleep = |s: &shared::SlotShared| {
            let generation = s.generation.load();
            generation.state != SlotState::Empty && shared.ring(generation).sleeping()
        };
        if shared.slots.iter().any(asleep) {
            shared.input.wake();
        }
        let due = shared.supervisor_due_frame.load(Ordering::SeqCst);
        let reached = self.chunker.next_frame() >= due
            && shared
                .supervisor_due_frame
                .compare_exchange(due, u64::MAX, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok();
        if reached || shared.supervisor_asleep.load(Ordering::SeqCst) {
            shared.wake_supervisor();
        }
    }

    /// Offline only: there is no deadline, so rather than let a rebuilding worker fall a whole
    /// input ring behind (and be lapped: a rebuild that can never catch up with a bounce running
    /// many times faster than real time), wait until it is within half a ring of the head, in
    /// chunks and in frames.
    /// A hung worker is evicted by the supervisor, which ends the wait; past the offline wait
    /// bound we post anyway.
    fn wait_for_laggards(&mut self) {
        let give_up = monotonic_ns() + self.tuning.offline_wait_bound.as_nanos() as u64;
        let ring = *self.shared.input.config();
        let (chunk_limit, frame_limit) =
            (ring.record_count as u64 / 2, ring.audio_capacity as u64 / 2);
        let head = self.chunker.next_frame();
        loop {
            let bell = self.shared.doorbell.count();
            let mut lagging = false;
            for slot in 0..2 {
                // Refreshes (and validates) what we know of the slot's progress.
                self.available(slot, head);
                let generation = self.shared.slots[slot].generation.load();
                let seen = self.seen[slot];
                let live =
                    generation.state != SlotState::Empty && seen.worker == generation.worker();
                let (chunks_behind, frames_behind) =
                    (self.chunker.next_index() - seen.chunks, head - seen.frames);
                let behind = chunks_behind > chunk_limit || frames_behind > frame_limit;
                // Whatever its state, no live worker is lapped: past seven eighths of the ring
                // wait, which gives the supervisor time to rebuild a starved one at three
                // quarters (a supervisor starved itself may be late).
                let near_lap = chunks_behind * 8 > ring.record_count as u64 * 7
                    || frames_behind * 8 > ring.audio_capacity as u64 * 7;
                // A verified worker behind a verified twin is starved, not rebuilding: the
                // supervisor replaces it before the ring laps it (`Supervisor::left_behind`),
                // and the render does not slow to its pace.
                let twin_live =
                    self.shared.slots[1 - slot].generation.load().state == SlotState::Live;
                let rebuilding = generation.state == SlotState::Joining || !twin_live;
                if live && !seen.bad && ((behind && rebuilding) || near_lap) {
                    lagging = true;
                }
            }
            if !lagging || self.shared.shutdown.load(Ordering::Relaxed) || monotonic_ns() > give_up
            {
                return;
            }
            self.shared.doorbell.wait(bell, Duration::from_millis(1));
        }
    }

    /// Offline only: a bounce renders many chunks for each pass of the supervisor, and a
    /// supervisor starved of CPU takes no checkpoint meanwhile, so a double death could find no
    /// state the input ring can still replay from (a fresh restart, `StateLost`). So while the
    /// newest state the supervisor keeps is more than half the ring old (in chunks or frames)
    /// and the snapshot it asked for is posted and delivered (only then can it be taken), wake
    /// the supervisor and wait until it has taken it. Bounded like the other offline waits;
    /// with no request out (none due, or no verified worker to ask) there is nothing to wait for.
    fn wait_for_checkpoint(&mut self) {
        let shared = &*self.shared;
        let give_up = monotonic_ns() + self.tuning.offline_wait_bound.as_nanos() as u64;
        let ring = *shared.input.config();
        let (head_chunk, head_frame) = (self.chunker.next_index(), self.chunker.next_frame());
        loop {
            let bell = shared.doorbell.count();
            let state_chunk = shared.state_chunk.load(Ordering::Acquire);
            let state_frame = shared.state_frame.load(Ordering::Acquire);
            let stale = ring.over_half_behind(
                head_chunk.saturating_sub(state_chunk),
                head_frame.saturating_sub(state_frame),
            );
            let delivered = shared.delivered_frames.load(Ordering::Acquire);
            let answerable = shared.checkpoint_pending.load(Ordering::Acquire)
                && shared.snapshot_request.load(Ordering::Acquire) == 0
                && self.snapshot_asked <= delivered
                && self.snapshot_asked > state_frame;
            if !stale
                || !answerable
                || shared.shutdown.load(Ordering::Relaxed)
                || monotonic_ns() > give_up
            {
                return;
            }
            shared.wake_supervisor();
            shared.doorbell.wait(bell, Duration::from_millis(1));
        }
    }

    /// The pending fault request, aimed at the current epoch of its slot (or the standing
    /// fault, aimed at every worker).
    fn take_fault(&mut self) -> FaultCommand {
        let Some(request) = self.shared.fault_request.take() else {
            return self.standing_fault;
        };
        if request.kind == shm::FaultKind::CrashOnNote as u32 {
            self.standing_fault = FaultCommand {
                kind: request.kind,
                arg: request.arg,
                ..FaultCommand::default()
            };
            return self.standing_fault;
        }
        FaultCommand {
            slot: request.slot as u32,
            epoch: self.shared.slots[request.slot].generation.load().epoch,
            kind: request.kind,
            arg: request.arg,
        }
    }

    /// Eco, realtime: when to call the standby in if no ring has the block's frames yet (a
    /// hedged takeover, docs/ARCHITECTURE.md, "Protection"): at once (`t0`, the call's entry)
    /// if they were all posted in an earlier call (`pipelined`; at L = one block the active has
    /// then used 1 of the 1.8 block periods its frames get, 55 %), else halfway from `t0` to
    /// the deadline. `u64::MAX`: never.
    fn hedge_at(&self, mode: ProcessMode, t0: u64, deadline: u64, pipelined: bool) -> u64 {
        if self.config.protection != Protection::Eco || mode != ProcessMode::Realtime {
            return u64::MAX;
        }
        if pipelined {
            t0
        } else {
            t0 + (deadline - t0) / 2
        }
    }

    /// Until when the verified twin must have published its digest for a served chunk
    /// (`served.rs`, `Twin`; a published one must match in any case): offline, where nothing
    /// is late, for half the wait bound (then a lone worker's own digest is enough, as it is
    /// while the twin is away); at latency 0 in real time, until the deadline (then the
    /// fallback serves what a ring has). Otherwise never: at a latency of a block or more the
    /// twin has almost always published it already.
    fn agree_until(&self, mode: ProcessMode, t0: u64, deadline: u64) -> u64 {
        match mode {
            ProcessMode::Offline => t0 + self.tuning.offline_wait_bound.as_nanos() as u64 / 2,
            ProcessMode::Realtime if self.config.latency == 0 => deadline,
            ProcessMode::Realtime => 0,
        }
    }

    /// Eco: asks the supervisor to call the standby in beside a late active worker, unless a
    /// request is pending or there is nobody to call (no spare, or both slots taken). Atomics
    /// and at most one `FUTEX_WAKE`.
    fn request_hedge(&self) {
        let shared = &*self.shared;
        let slot_free = shared
            .slots
            .iter()
            .any(|s| s.generation.load().state == SlotState::Empty);
        if shared.spare_pid.load(Ordering::Relaxed) == 0 || !slot_free {
            return;
        }
        if !shared.hedge_request.swap(true, Ordering::AcqRel) {
            shared.wake_supervisor();
        }
    }

    /// Fills `out` with frames from `start` from whichever ring has them first (a hedged
    /// read), waiting until the deadline; then whatever is missing fades out. `out` sits at
    /// offset `at` of the block. Past `hedge_at` with the frames in no ring, asks for a hedge
    /// (Eco). Serves only chunks the verified twin's published digests agree with and, before
    /// `agree_until`, only those it has published.
    /// Returns the frames served from a ring.
    fn deliver(&mut self, start: u64, at: usize, out: [&mut [f32]; 2], waits: Waits) -> usize {
        let Waits {
            deadline,
            mut hedge_at,
            mut agree_until,
        } = waits;
        let [l, r] = out;
        let len = l.len();
        if self.twin_late_at != 0 {
            // Insist on the twin's digests again once it has rendered what came before, and
            // not before the hold is over.
            let twin = 1 - self.shared.serving.load(Ordering::Relaxed);
            self.available(twin, start);
            let held = monotonic_ns() < self.twin_late_at + TWIN_LATE_HOLD.as_nanos() as u64;
            if !held && self.seen[twin].frames >= start {
                self.twin_late_at = 0;
            }
        }
        let hold = TWIN_LATE_HOLD.as_nanos() as u64;
        let (since, waited) = self.twin_waits;
        let now = monotonic_ns();
        if now - since >= hold {
            if waited * 2 > now - since && self.twin_late_at == 0 {
                self.twin_late_at = now;
            }
            self.twin_waits = (now, 0);
        }
        if self.twin_late_at != 0 {
            agree_until = 0;
        }
        // When a ring had the frames but the twin's digests did not agree (yet).
        let mut held_back_at = None;
        let mut woke_for_contradiction = false;
        let spin_until = monotonic_ns() + self.tuning.audio_spin_us as u64 * 1000;
        loop {
            let bell = self.shared.doorbell.count();
            let first = self.shared.serving.load(Ordering::Relaxed);
            // The switch cost is this pass: the primary coming up short plus the copy from the
            // twin, not the time spent waiting for either.
            let pass_start = monotonic_ns();
            if agree_until != 0 && pass_start >= agree_until {
                // The twin's digests are late: serve on its own digest what a ring has, and do
                // not wait for them again until the twin has caught up.
                self.twin_late_at = pass_start;
                agree_until = 0;
            }
            let hold = if agree_until != 0 {
                Hold::UnlessAgreed
            } else {
                Hold::IfDiffers
            };
            for slot in [first, 1 - first] {
                let (frames, generation) = self.available(slot, start);
                if frames < len as u64 {
                    continue;
                }
                if self.copy(slot, generation, hold, start, [&mut *l, &mut *r]) {
                    if slot != first {
                        self.switched(first, slot, pass_start, start);
                    }
                    self.report_voice_ends(slot, generation, start, len, at);
                    if let Some(t) = held_back_at {
                        self.twin_waits.1 += monotonic_ns() - t;
                    }
                    return len;
                }
                if hold == Hold::UnlessAgreed {
                    held_back_at.get_or_insert(pass_start);
                }
                if self.staging.take_contradicted() && !woke_for_contradiction {
                    // Two verified twins disagree: the supervisor decides which is wrong, at
                    // once rather than on its next tick (a futex wake, once per call).
                    self.shared.wake_supervisor();
                    woke_for_contradiction = true;
                }
            }
            let now = monotonic_ns();
            if now >= hedge_at {
                self.request_hedge();
                hedge_at = u64::MAX;
            }
            let give_up = now >= deadline || self.shared.workers_failing.load(Ordering::Relaxed);
            if give_up {
                return self.fallback(start, at, [l, r]);
            }
            if now < spin_until {
                std::hint::spin_loop();
                continue;
            }
            let wait = (deadline - now).min(1_000_000);
            self.shared.doorbell.wait(bell, Duration::from_nanos(wait));
        }
    }

    fn switched(&mut self, from: usize, to: usize, missed_at: u64, at_frame: u64) {
        let ns = monotonic_ns()
            .saturating_sub(missed_at)
            .min(u32::MAX as u64) as u32;
        self.shared.serving.store(to, Ordering::Relaxed);
        self.shared.stats.switches.fetch_add(1, Ordering::Relaxed);
        let _ = self.telemetry.push(Telemetry::Switch {
            from,
            to,
            ns,
            at_frame,
        });
    }

    /// How many frames from `start` the ring of `slot` holds, after validating its counters,
    /// and the generation they were checked under, which a copy must still find (see
    /// `Shared::copy_validated`). 0 for an empty, changing or rogue slot, and in Lockstep for
    /// a joining worker while its twin is verified: a newcomer is heard only when nobody proven
    /// is there. In Eco a joining worker is the standby, replaying from a checkpoint the
    /// supervisor validated: bit-exact by construction, it is heard as soon as it has the frames.
    fn available(&mut self, slot: usize, start: u64) -> (u64, Generation) {
        let s = &self.shared.slots[slot];
        let generation = s.generation.load();
        let epoch = generation.epoch;
        if generation.state == SlotState::Empty {
            return (0, generation);
        }
        let seen = &mut self.seen[slot];
        if seen.worker != generation.worker() {
            *seen = SeenSlot {
                worker: generation.worker(),
                frames: s.valid_from.load(Ordering::Acquire),
                chunks: s.floor_chunk.load(Ordering::Acquire),
                bad: false,
            };
        }
        if seen.bad {
            return (0, generation);
        }
        let bounds = Bounds {
            epoch,
            posted_frames: self.chunker.next_frame(),
            posted_chunks: self.chunker.next_index(),
            floor_frames: seen.frames,
            floor_chunks: seen.chunks,
        };
        match self.shared.ring(generation).progress(&bounds) {
            Ok(p) => {
                seen.frames = p.frames_done;
                seen.chunks = p.chunks_done;
                let valid_from = s.valid_from.load(Ordering::Acquire);
                let twin_live =
                    self.shared.slots[1 - slot].generation.load().state == SlotState::Live;
                let unproven = generation.state == SlotState::Joining
                    && twin_live
                    && self.config.protection == Protection::Lockstep;
                if start < valid_from || unproven || s.generation.load() != generation {
                    return (0, generation);
                }
                (p.frames_done.saturating_sub(start), generation)
            }
            Err(reason) => {
                self.mark_rogue(slot, epoch, reason);
                (0, generation)
            }
        }
    }

    /// Copies from the ring of `slot` what `available` found under `generation`, each chunk
    /// checked against the ring's digest and, as `hold` says, against the verified twin's
    /// (`served.rs`); false if the slot changed since, the twin's digest disagrees, or the audio
    /// was not finite or not what the digest says (the ring is then rogue).
    fn copy(
        &mut self,
        slot: usize,
        generation: Generation,
        hold: Hold,
        start: u64,
        out: [&mut [f32]; 2],
    ) -> bool {
        let source = Source {
            slot,
            validated: generation,
        };
        let other = &self.shared.slots[1 - slot];
        let other_generation = other.generation.load();
        let seen = self.seen[1 - slot];
        let twin_rogue = seen.worker == other_generation.worker() && seen.bad;
        let twin = (other_generation.state == SlotState::Live && !twin_rogue).then(|| Twin {
            output: self.shared.ring(other_generation),
            from_chunk: other.floor_chunk.load(Ordering::Acquire),
            hold,
        });
        match self.staging.copy(&self.shared, source, twin, start, out) {
            Ok(served) => served,
            Err(reason) => {
                self.mark_rogue(slot, generation.epoch, reason);
                false
            }
        }
    }

    /// Takes the voice ends of frames `[start, start + len)` from the ring that served them,
    /// that of `slot`'s worker of `generation`.
    fn report_voice_ends(
        &mut self,
        slot: usize,
        generation: Generation,
        start: u64,
        len: usize,
        at: usize,
    ) {
        let ring = self.shared.ring(generation);
        let served = self
            .voice_ends
            .served(&self.shared.input, ring, start, len, at);
        if let Err(reason) = served {
            self.mark_rogue(slot, generation.epoch, reason);
        }
    }

    fn mark_rogue(&mut self, slot: usize, epoch: u32, reason: Rogue) {
        self.seen[slot].bad = true;
        let _ = self.telemetry.push(Telemetry::Rogue {
            slot,
            epoch,
            reason,
        });
        // The rogue ring is already ignored here; the supervisor evicts it on its next pass,
        // woken now (a futex wake, the one system call allowed here, once per worker: its ring
        // is not read again): while chunks come its next look may be a quarter hang timeout
        // away, and the rebuild (in Eco the standby's takeover) waits for that eviction.
        self.shared.wake_supervisor();
    }

    /// The deadline passed: serve the longest prefix any ring has, fade out the rest.
    fn fallback(&mut self, start: u64, at: usize, out: [&mut [f32]; 2]) -> usize {
        let [l, r] = out;
        let len = l.len();
        let mut best = (0usize, 0u64, Generation::EMPTY);
        for slot in 0..2 {
            let (frames, generation) = self.available(slot, start);
            let avail = frames.min(len as u64);
            if avail > best.1 {
                best = (slot, avail, generation);
            }
        }
        let (slot, avail, generation) = best;
        let mut served = avail as usize;
        if served > 0
            && !self.copy(
                slot,
                generation,
                Hold::Never,
                start,
                [&mut l[..served], &mut r[..served]],
            )
        {
            served = 0;
        }
        if served > 0 {
            self.report_voice_ends(slot, generation, start, served, at);
        }
        let last = if served > 0 {
            [l[served - 1], r[served - 1]]
        } else {
            self.last_out
        };
        for (ch, out) in [&mut *l, &mut *r].into_iter().enumerate() {
            for (i, s) in out[served..].iter_mut().enumerate() {
                let gain = 1.0 - ((i + 1) as f32 / FADE_FRAMES as f32).min(1.0);
                *s = last[ch] * gain;
            }
        }
        let frames = (len - served) as u32;
        if frames > 0 {
            // (None when only the twin's digest was late: a ring had every frame.)
            self.shared
                .stats
                .xrun_frames
                .fetch_add(frames as u64, Ordering::Relaxed);
            let _ = self.telemetry.push(Telemetry::Xrun {
                frames,
                at_frame: start + served as u64,
            });
        }
        served
    }
}

/// Activation and control (main thread), and what tests and benchmarks observe.
impl Engine {
    /// Main thread. Creates shared memory, spawns both workers and the supervisor thread.
    pub fn activate(config: EngineConfig) -> Result<Engine, EngineError> {
        Self::activate_with(config, Tuning::default())
    }

    /// As [`Engine::activate`], with non-default tuning.
    pub fn activate_with(config: EngineConfig, tuning: Tuning) -> Result<Engine, EngineError> {
        Self::activate_reporting(config, tuning, EngineStatus::new())
    }

    /// As [`Engine::activate_with`], reporting into `status` (the plugin's, which outlives
    /// this engine so its editor can show the workers across reactivations).
    pub fn activate_reporting(
        config: EngineConfig,
        tuning: Tuning,
        status: EngineStatus,
    ) -> Result<Engine, EngineError> {
        let result = Self::try_activate(config, tuning, status);
        if let Err(e) = &result {
            log::error!("Tandem engine not activated: {e}");
        }
        result
    }

    fn try_activate(
        config: EngineConfig,
        tuning: Tuning,
        status: EngineStatus,
    ) -> Result<Engine, EngineError> {
        let unsupported = |s: String| EngineError::UnsupportedConfig(s);
        if config.max_block == 0 || config.max_block > 8192 {
            return Err(unsupported(format!(
                "block size {} (1..=8192)",
                config.max_block
            )));
        }
        if config.latency as usize > 8192 {
            return Err(unsupported(format!(
                "latency {} frames (0..=8192)",
                config.latency
            )));
        }
        let synth =
            dsp::Synth::new(config.sample_rate, MAX_CHUNK_FRAMES).map_err(EngineError::Synth)?;
        let initial_state = synth.snapshot();
        let shared = Arc::new(Shared::create(&config, initial_state.len())?);
        let locked = shared.input.lock() & shared.rings.iter().all(|r| r.lock());
        if !locked {
            log::debug!("Tandem: rings not locked in memory (RLIMIT_MEMLOCK); running unlocked");
        }
        let (telemetry, telemetry_rx) = rtrb::RingBuffer::new(1024);
        // Bounded: a host that never drains the events must not grow our memory. When it is
        // full the newest events are dropped (the log lines still go out).
        let (events_tx, events) = crossbeam_channel::bounded(EVENT_BACKLOG);
        let supervisor = Supervisor::start(
            shared.clone(),
            config.clone(),
            tuning.clone(),
            initial_state,
            telemetry_rx,
            events_tx,
            status.clone(),
        )?;
        let handle = std::thread::Builder::new()
            .name("tandem-supervisor".into())
            .spawn(move || supervisor.run())
            .map_err(EngineError::Thread)?;
        status.started(config.latency, config.sample_rate, config.protection);
        Ok(Engine {
            config,
            tuning,
            shared,
            chunker: Chunker::default(),
            telemetry,
            events,
            supervisor: Some(handle),
            seen: [SeenSlot::default(); 2],
            last_out: [0.0; 2],
            voice_ends: VoiceEnds::new(),
            staging: Staging::new(),
            status,
            standing_fault: FaultCommand::default(),
            pace: Pace::default(),
            silent_before: 0,
            snapshot_asked: 0,
            twin_late_at: 0,
            twin_waits: (0, 0),
        })
    }

    /// The configuration this engine was activated with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The sizes of the shared rings `activate` chose: how far a worker may fall behind, or a
    /// render run ahead, before the supervisor rebuilds it or the host is paced.
    pub fn ring_config(&self) -> shm::RingConfig {
        *self.shared.input.config()
    }

    /// Switches realtime/offline (nice-plug tells us via its process mode).
    pub fn set_mode(&mut self, mode: ProcessMode) {
        self.config.mode = mode;
    }

    /// Audio thread: resets the DSP in both workers through the chunk stream, and clears the
    /// latency pipeline: the `L` frames rendered before the reset are never delivered (silence
    /// instead, their voice ends dropped with them). The plugin's reactivation resets too.
    pub fn reset(&mut self) {
        self.silent_before = self.chunker.next_frame();
        self.chunker.request_reset();
    }

    /// The live workers' pids, for tests that kill them.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared
            .slots
            .iter()
            .map(|s| s.pid.load(Ordering::Acquire))
            .filter(|&p| p != 0)
            .collect()
    }

    /// The pid of the worker in `slot`, if one runs there.
    pub fn worker_pid(&self, slot: usize) -> Option<u32> {
        Some(self.shared.slots.get(slot)?.pid.load(Ordering::Acquire)).filter(|&p| p != 0)
    }

    /// The pid of the spare worker, if one waits (for tests that kill it).
    pub fn spare_pid(&self) -> Option<u32> {
        Some(self.shared.spare_pid.load(Ordering::Acquire)).filter(|&p| p != 0)
    }

    /// The ring the audio thread served its last block from.
    pub fn serving_slot(&self) -> usize {
        self.shared.serving.load(Ordering::Relaxed)
    }

    /// True when both slots hold verified workers: the engine is back in lockstep.
    pub fn in_lockstep(&self) -> bool {
        self.shared
            .slots
            .iter()
            .all(|s| s.generation.load().state == SlotState::Live)
    }

    /// True when the engine has its full protection back: a spare waits in its sandbox (if
    /// spares are on: one still starting would cost the next fault its `exec` and sandbox
    /// entry), and in Lockstep both slots hold verified workers (`in_lockstep`), in Eco one slot
    /// holds a verified worker and the other is empty. What tests and benchmarks wait for
    /// between faults.
    pub fn settled(&self) -> bool {
        let spare = !self.tuning.spare || self.shared.spare_ready.load(Ordering::Acquire);
        if self.config.protection == Protection::Lockstep {
            return spare && self.in_lockstep();
        }
        let states = self
            .shared
            .slots
            .each_ref()
            .map(|s| s.generation.load().state);
        spare && states.contains(&SlotState::Live) && states.contains(&SlotState::Empty)
    }

    /// Where the newest state the supervisor keeps (its checkpoint or a newer snapshot) ends,
    /// as an absolute frame: for tests that fault a worker between two checkpoints.
    pub fn checkpoint_frame(&self) -> u64 {
        self.shared.state_frame.load(Ordering::Acquire)
    }

    /// Frames posted so far: the absolute frame the next block starts at.
    pub fn frames_posted(&self) -> u64 {
        self.chunker.next_frame()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Asks the worker in `slot` to commit fault `kind` (a `shm::FaultKind` code, or a sandbox
    /// escape code) while rendering the next chunk. For tests and benchmarks.
    pub fn inject_fault(&self, slot: usize, kind: u32, arg: u32) {
        self.shared
            .fault_request
            .post(FaultRequest { slot, kind, arg });
    }

    /// Audio thread: the notes whose voices ended in the frames the last `process()` call
    /// delivered, at their offsets in that block (the same latency `L` as the audio).
    pub fn voice_ends(&self) -> &[BlockVoiceEnd] {
        self.voice_ends.block()
    }

    /// Failover and rebuild events since the last call, on a non-audio thread.
    pub fn drain_events(&self) -> Vec<EngineEvent> {
        self.events.try_iter().collect()
    }

    /// As [`Engine::drain_events`], one log line per event.
    pub fn drain_log(&self) -> Vec<String> {
        self.drain_events().iter().map(|e| e.to_string()).collect()
    }
}

impl Drop for Engine {
    /// Kills and reaps both workers and joins the supervisor.
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.wake_supervisor();
        if let Some(handle) = self.supervisor.take() {
            let _ = handle.join();
        }
        self.status.stopped();
    }
}
