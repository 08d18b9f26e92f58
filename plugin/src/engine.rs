//! The headless lockstep engine: what `Plugin::process()` calls, usable without a host.
//!
//! Lifecycle: [`Engine::activate`] (main thread) creates the shared memory and spawns two workers
//! and the supervisor thread; [`Engine::process`] (audio thread) posts each block as chunks to
//! both workers and delivers frames `[T-L, T-L+n)` from whichever worker's ring has them; dropping
//! the engine kills and reaps the workers. See DESIGN.md sections 3 to 5.
//!
//! The audio thread never allocates, locks or logs here: it reads rings, writes the input ring,
//! and may `FUTEX_WAKE` the workers and `FUTEX_WAIT` (bounded) on the doorbell. What it learns
//! (a rogue ring, an xrun, a switch) leaves through a wait-free `rtrb` queue to the supervisor.

mod chunker;
pub mod reference;
mod spawn;
mod status;
mod supervisor;

pub use chunker::Chunker;
pub use reference::ReferenceEngine;
pub use status::{EngineStatus, FaultKind, FaultView, StatusSnapshot, WorkerState, WorkerView};

use crate::engine::supervisor::Supervisor;
use dsp::{Event, N_PARAMS};
use shm::chunk::{Chunk, FaultCommand, MAX_CHUNK_FRAMES};
use shm::futex::monotonic_ns;
use shm::{Bounds, Doorbell, InputRing, OutputRing, RingConfig, Rogue};
use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The largest `EngineConfig::max_block`; a host with bigger blocks feeds them in pieces.
pub const MAX_BLOCK: usize = 8192;

/// How the host drives us; decides what a late block gets (DESIGN.md section 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessMode {
    /// A late block is filled with a declicked fade after a deadline inside the block period.
    Realtime,
    /// Bounce: wait for exact frames however long it takes.
    Offline,
}

/// Everything `Engine::activate` needs; two activations with equal configs may share workers.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Host sample rate in Hz.
    pub sample_rate: f32,
    /// The largest block `process()` will be given.
    pub max_block: usize,
    /// Latency `L` in frames, reported to the host.
    pub latency: u32,
    /// Realtime or offline.
    pub mode: ProcessMode,
    /// The worker executable (may be `/proc/self/fd/N` for an embedded worker).
    pub worker_path: PathBuf,
}

/// Knobs with sensible defaults; tests and benchmarks change them, hosts never need to.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuning {
    /// Realtime deadline as a fraction of the block period (measured from `process()` entry).
    /// Tests that compare bits under load set it far above 1.
    pub deadline_fraction: f32,
    /// A worker that has had work pending without progress this long is hung and evicted.
    pub hang_timeout: Duration,
    /// Ask a worker for a state checkpoint after this many frames; a rebuild replays at most
    /// this much audio (plus what arrives while it starts).
    pub checkpoint_frames: u32,
    /// How long a worker spins before sleeping on the input futex when the latency is below
    /// one block (at one block or more it does not spin: nobody waits for it).
    pub worker_spin_us: u32,
    /// How long the audio thread spins before sleeping on the doorbell.
    pub audio_spin_us: u32,
    /// The supervisor's tick (hang, digest and checkpoint checks).
    pub tick: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            deadline_fraction: 0.8,
            hang_timeout: Duration::from_millis(50),
            checkpoint_frames: 512,
            worker_spin_us: 20,
            audio_spin_us: 20,
            tick: Duration::from_millis(2),
        }
    }
}

/// Why activation failed; the host stays alive and the plugin logs this.
#[derive(Debug)]
pub enum EngineError {
    /// Sample rate or block size we cannot render.
    UnsupportedConfig(String),
    /// The worker executable is missing or could not be started.
    Spawn(String),
    /// Creating or sealing shared memory failed.
    SharedMemory(String),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::UnsupportedConfig(s) => write!(f, "unsupported configuration: {s}"),
            EngineError::Spawn(s) => write!(f, "cannot start a worker: {s}"),
            EngineError::SharedMemory(s) => write!(f, "shared memory: {s}"),
        }
    }
}

impl std::error::Error for EngineError {}

/// What one `process()` call did, for the host wrapper's bookkeeping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockReport {
    /// Frames filled by the declicked fallback because no worker answered in time.
    pub fallback_frames: u32,
}

/// Why the supervisor evicted a live worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictReason {
    /// Work pending, no progress for longer than the hang timeout.
    Hang,
    /// Its ring failed validation.
    Rogue(Rogue),
    /// Its digest differed from its twin's for the same chunk.
    Divergence,
}

/// Something the supervisor did or saw; timestamps are CLOCK_MONOTONIC nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub enum EngineEvent {
    /// A worker process ended on its own (crash, abort, exit).
    WorkerDied {
        /// Slot 0 or 1.
        slot: usize,
        /// Its spawn epoch.
        epoch: u32,
        /// Its pid.
        pid: u32,
        /// How it ended.
        cause: String,
        /// When the supervisor knew.
        detected_ns: u64,
    },
    /// The supervisor killed a worker.
    WorkerEvicted {
        /// Slot 0 or 1.
        slot: usize,
        /// Its spawn epoch.
        epoch: u32,
        /// Its pid.
        pid: u32,
        /// Why.
        reason: EvictReason,
        /// When the supervisor decided.
        detected_ns: u64,
    },
    /// A replacement (or first) worker was started.
    WorkerSpawned {
        /// Slot 0 or 1.
        slot: usize,
        /// Its spawn epoch.
        epoch: u32,
        /// Its pid.
        pid: u32,
        /// The chunk whose end state it starts from (`None`: before chunk 0).
        from_chunk: Option<u64>,
        /// How long the spawn call took.
        spawn_ns: u64,
    },
    /// A new worker caught up and proved bit-identical to its twin (or is alone and caught up).
    WorkerVerified {
        /// Slot 0 or 1.
        slot: usize,
        /// Its spawn epoch.
        epoch: u32,
        /// When.
        at_ns: u64,
        /// From the detection of the failure that made it necessary (0 for first spawns).
        rebuild_ns: u64,
    },
    /// Starting a worker failed; it will be retried with backoff.
    SpawnFailed {
        /// Slot 0 or 1.
        slot: usize,
        /// Why.
        error: String,
        /// Retry after this long.
        retry_in: Duration,
    },
    /// No checkpoint was recent enough to rebuild from: the workers restart from a fresh state.
    StateLost {
        /// The first chunk rendered from the fresh state.
        from_chunk: u64,
    },
    /// The audio thread served a block from the other ring.
    Switched {
        /// The ring it served from before.
        from: usize,
        /// The ring it serves from now.
        to: usize,
        /// The audio thread's cost of serving from the other ring.
        switch_ns: u32,
        /// The first frame served from the new ring.
        at_frame: u64,
    },
    /// Frames filled by the declicked fallback.
    Xrun {
        /// How many.
        frames: u32,
        /// The first such frame.
        at_frame: u64,
    },
}

impl fmt::Display for EngineEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| ns as f64 / 1e6;
        match self {
            EngineEvent::WorkerDied {
                slot,
                epoch,
                pid,
                cause,
                ..
            } => {
                write!(f, "worker {slot} (epoch {epoch}, pid {pid}) died: {cause}")
            }
            EngineEvent::WorkerEvicted {
                slot,
                epoch,
                pid,
                reason,
                ..
            } => {
                let why = match reason {
                    EvictReason::Hang => "hung".to_string(),
                    EvictReason::Rogue(r) => format!("rogue ({r})"),
                    EvictReason::Divergence => "diverged from its twin".to_string(),
                };
                write!(f, "worker {slot} (epoch {epoch}, pid {pid}) evicted: {why}")
            }
            EngineEvent::WorkerSpawned {
                slot,
                epoch,
                pid,
                from_chunk,
                spawn_ns,
            } => {
                let from = from_chunk.map_or("the start".to_string(), |c| format!("chunk {c}"));
                write!(
                    f,
                    "worker {slot} (epoch {epoch}, pid {pid}) started from {from} in {:.2} ms",
                    ms(*spawn_ns)
                )
            }
            EngineEvent::WorkerVerified {
                slot,
                epoch,
                rebuild_ns,
                ..
            } => write!(
                f,
                "worker {slot} (epoch {epoch}) in lockstep, rebuild {:.2} ms",
                ms(*rebuild_ns)
            ),
            EngineEvent::SpawnFailed {
                slot,
                error,
                retry_in,
            } => {
                write!(
                    f,
                    "worker {slot} failed to start ({error}); retry in {retry_in:?}"
                )
            }
            EngineEvent::StateLost { from_chunk } => write!(
                f,
                "no usable checkpoint: workers restart from a fresh state at chunk {from_chunk}"
            ),
            EngineEvent::Switched {
                from,
                to,
                switch_ns,
                at_frame,
            } => write!(
                f,
                "audio switched from ring {from} to ring {to} at frame {at_frame} ({switch_ns} ns)"
            ),
            EngineEvent::Xrun { frames, at_frame } => {
                write!(f, "xrun: {frames} frames of fallback at frame {at_frame}")
            }
        }
    }
}

/// Counters anyone may read at any time.
#[derive(Debug, Default)]
pub struct Stats {
    /// Frames filled by the fallback.
    pub xrun_frames: AtomicU64,
    /// Times the audio thread served from the other ring.
    pub switches: AtomicU64,
    /// Workers that died or were evicted.
    pub failures: AtomicU64,
    /// Workers verified in lockstep after a rebuild.
    pub rebuilds: AtomicU64,
}

pub(crate) const STATE_EMPTY: u64 = 0;
pub(crate) const STATE_JOINING: u64 = 1;
pub(crate) const STATE_LIVE: u64 = 2;

/// A slot's generation word: the epoch in the high bits, the state in the low byte. The audio
/// thread reads it before and after copying, so a slot that changed under it is never used.
pub(crate) fn generation(epoch: u32, state: u64) -> u64 {
    ((epoch as u64) << 8) | state
}

/// What the plugin side knows about one slot, shared by the audio thread and the supervisor.
pub(crate) struct SlotShared {
    pub output: OutputRing,
    pub gen: AtomicU64,
    /// First frame this epoch's output is valid from.
    pub valid_from: AtomicU64,
    /// First chunk this epoch renders.
    pub floor_chunk: AtomicU64,
    pub pid: AtomicU32,
}

/// State shared between the audio thread and the supervisor thread.
pub(crate) struct Shared {
    pub input: InputRing,
    pub doorbell: Doorbell,
    pub slots: [SlotShared; 2],
    pub serving: AtomicUsize,
    pub snapshot_request: AtomicU32,
    pub fault_request: AtomicU64,
    pub shutdown: AtomicBool,
    /// Set while no worker can be started: an offline render stops waiting then.
    pub workers_failing: AtomicBool,
    pub stats: Stats,
    /// An eventfd that wakes the supervisor's poll.
    pub wake: OwnedFd,
}

impl Shared {
    pub fn wake_supervisor(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a local into an eventfd we own.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// What the audio thread tells the supervisor, wait-free.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Telemetry {
    Rogue {
        slot: usize,
        epoch: u32,
        reason: Rogue,
    },
    Xrun {
        frames: u32,
        at_frame: u64,
    },
    Switch {
        from: usize,
        to: usize,
        ns: u32,
        at_frame: u64,
    },
}

/// The audio thread's private view of a slot: the floor its progress may not fall below.
#[derive(Clone, Copy, Default)]
struct SeenSlot {
    epoch: u32,
    frames: u64,
    chunks: u64,
    bad: bool,
}

/// Engine events kept for [`Engine::drain_events`] between two calls.
const EVENT_BACKLOG: usize = 4096;

/// Frames over which the fallback fades the last delivered sample to silence.
const FADE_FRAMES: usize = 64;

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
    status: EngineStatus,
}

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
        let synth = dsp::Synth::new(config.sample_rate, MAX_CHUNK_FRAMES)
            .map_err(|e| unsupported(e.to_string()))?;
        let initial_state = synth.snapshot();
        // About a second of audio (capped for the validators' megahertz rates), and always room
        // for a rebuild to replay while blocks keep coming.
        let span = (config.sample_rate as usize)
            .min(1 << 18)
            .max(4 * (config.max_block + config.latency as usize + MAX_CHUNK_FRAMES));
        let ring = RingConfig {
            slot_count: 1024,
            audio_capacity: span.next_power_of_two() as u32,
            snapshot_max: (initial_state.len() as u32).next_multiple_of(8),
            sample_rate: config.sample_rate,
        };
        let shm_err = |e: std::io::Error| EngineError::SharedMemory(e.to_string());
        let slot = || -> Result<SlotShared, EngineError> {
            Ok(SlotShared {
                output: OutputRing::create(ring).map_err(shm_err)?,
                gen: AtomicU64::new(generation(0, STATE_EMPTY)),
                valid_from: AtomicU64::new(0),
                floor_chunk: AtomicU64::new(0),
                pid: AtomicU32::new(0),
            })
        };
        // SAFETY: eventfd returns a new fd or -1.
        let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if wake < 0 {
            return Err(shm_err(std::io::Error::last_os_error()));
        }
        let shared = Arc::new(Shared {
            input: InputRing::create(ring).map_err(shm_err)?,
            doorbell: Doorbell::create().map_err(shm_err)?,
            slots: [slot()?, slot()?],
            serving: AtomicUsize::new(0),
            snapshot_request: AtomicU32::new(0),
            fault_request: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            workers_failing: AtomicBool::new(false),
            stats: Stats::default(),
            // SAFETY: `wake` is a fresh fd from eventfd, owned by nobody else.
            wake: unsafe { OwnedFd::from_raw_fd(wake) },
        });
        let locked = shared.input.lock() & shared.slots.iter().all(|s| s.output.lock());
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
            .map_err(|e| EngineError::Spawn(format!("supervisor thread: {e}")))?;
        status.started(config.latency, config.sample_rate);
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
            status,
        })
    }

    /// The configuration this engine was activated with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Switches realtime/offline (nice-plug tells us via its process mode).
    pub fn set_mode(&mut self, mode: ProcessMode) {
        self.config.mode = mode;
    }

    /// Audio thread: resets the DSP in both workers through the chunk stream.
    pub fn reset(&mut self) {
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

    /// The ring the audio thread served its last block from.
    pub fn serving_slot(&self) -> usize {
        self.shared.serving.load(Ordering::Relaxed)
    }

    /// True when both slots hold verified workers: the engine is back in lockstep.
    pub fn in_lockstep(&self) -> bool {
        self.shared
            .slots
            .iter()
            .all(|s| s.gen.load(Ordering::Acquire) & 0xff == STATE_LIVE)
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
        let packed = (1u64 << 63)
            | ((arg as u64 & 0x7fff_ffff) << 32)
            | ((kind as u64 & 0xffff) << 8)
            | (slot as u64 & 1);
        self.shared.fault_request.store(packed, Ordering::Release);
    }

    /// Failover and rebuild events since the last call, on a non-audio thread.
    pub fn drain_events(&self) -> Vec<EngineEvent> {
        self.events.try_iter().collect()
    }

    /// As [`Engine::drain_events`], one log line per event.
    pub fn drain_log(&self) -> Vec<String> {
        self.drain_events().iter().map(|e| e.to_string()).collect()
    }

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
        self.post(n, events, params, input);

        // Frames before the first posted frame are silence (DESIGN.md section 3).
        let want = block_start as i64 - self.config.latency as i64;
        let silent = (-want).clamp(0, n as i64) as usize;
        out_l[..silent].fill(0.0);
        out_r[..silent].fill(0.0);
        let mut report = BlockReport::default();
        if silent < n {
            let start = (want + silent as i64) as u64;
            let deadline = match self.config.mode {
                ProcessMode::Realtime => {
                    let period = n as f64 / self.config.sample_rate as f64;
                    t0 + (period * self.tuning.deadline_fraction as f64 * 1e9) as u64
                }
                ProcessMode::Offline => u64::MAX,
            };
            let served = self.deliver(
                start,
                [&mut out_l[silent..n], &mut out_r[silent..n]],
                deadline,
            );
            report.fallback_frames = (n - silent - served) as u32;
        }
        if n > 0 {
            self.last_out = [out_l[n - 1], out_r[n - 1]];
        }
        report
    }

    /// Writes the block's chunks into the input ring and wakes sleeping workers.
    fn post(
        &mut self,
        n: usize,
        events: &[Event],
        params: &[f32; N_PARAMS],
        input: Option<[&[f32]; 2]>,
    ) {
        if self.config.mode == ProcessMode::Offline {
            self.wait_for_laggards();
        }
        let shared = &*self.shared;
        let mut snapshot = shared.snapshot_request.swap(0, Ordering::AcqRel);
        let mut fault = self.take_fault();
        self.chunker.split(
            n,
            events,
            params,
            input,
            |c: &mut Chunk| {
                c.snapshot_slots = std::mem::take(&mut snapshot);
                c.fault = std::mem::take(&mut fault);
            },
            |c, audio| shared.input.publish(c, audio),
        );
        if shared.slots.iter().any(|s| s.output.sleeping()) {
            shared.input.wake();
        }
    }

    /// Offline only: there is no deadline, so rather than let a worker fall a whole input ring
    /// behind (and be lapped: a rebuild that can never catch up with a bounce running many
    /// times faster than real time), wait until every worker is within half a ring of the head,
    /// in chunks and in frames.
    /// A hung worker is evicted by the supervisor, which ends the wait.
    fn wait_for_laggards(&mut self) {
        let ring = *self.shared.input.config();
        let (chunk_limit, frame_limit) =
            (ring.slot_count as u64 / 2, ring.audio_capacity as u64 / 2);
        let head = self.chunker.next_frame();
        loop {
            let bell = self.shared.doorbell.count();
            let mut lagging = false;
            for slot in 0..2 {
                // Refreshes (and validates) what we know of the slot's progress.
                self.available(slot, head);
                let gen = self.shared.slots[slot].gen.load(Ordering::Acquire);
                let seen = self.seen[slot];
                let live = gen & 0xff != STATE_EMPTY && seen.epoch == (gen >> 8) as u32;
                let behind = self.chunker.next_index() - seen.chunks > chunk_limit
                    || head - seen.frames > frame_limit;
                if live && !seen.bad && behind {
                    lagging = true;
                }
            }
            if !lagging || self.shared.shutdown.load(Ordering::Relaxed) {
                return;
            }
            self.shared.doorbell.wait(bell, Duration::from_millis(1));
        }
    }

    fn take_fault(&self) -> FaultCommand {
        let packed = self.shared.fault_request.swap(0, Ordering::AcqRel);
        if packed >> 63 == 0 {
            return FaultCommand::default();
        }
        let slot = (packed & 1) as usize;
        FaultCommand {
            slot: slot as u32,
            epoch: (self.shared.slots[slot].gen.load(Ordering::Acquire) >> 8) as u32,
            kind: ((packed >> 8) & 0xffff) as u32,
            arg: ((packed >> 32) & 0x7fff_ffff) as u32,
        }
    }

    /// Fills `out` with frames from `start` from whichever ring has them first (a hedged
    /// read), waiting until `deadline`; then whatever is missing fades out. Returns the frames
    /// served from a ring.
    fn deliver(&mut self, start: u64, out: [&mut [f32]; 2], deadline: u64) -> usize {
        let [l, r] = out;
        let len = l.len();
        let spin_until = monotonic_ns() + self.tuning.audio_spin_us as u64 * 1000;
        loop {
            let bell = self.shared.doorbell.count();
            let first = self.shared.serving.load(Ordering::Relaxed);
            // The switch cost is this pass: the primary coming up short plus the copy from the
            // twin, not the time spent waiting for either.
            let pass_start = monotonic_ns();
            for slot in [first, 1 - first] {
                if self.available(slot, start) >= len as u64
                    && self.copy(slot, start, [&mut *l, &mut *r])
                {
                    if slot != first {
                        self.switched(first, slot, pass_start, start);
                    }
                    return len;
                }
            }
            let now = monotonic_ns();
            let give_up = now >= deadline || self.shared.workers_failing.load(Ordering::Relaxed);
            if give_up {
                return self.fallback(start, [l, r]);
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

    /// How many frames from `start` the ring of `slot` holds, after validating its counters
    /// (0 for an empty, changing or rogue slot).
    fn available(&mut self, slot: usize, start: u64) -> u64 {
        let s = &self.shared.slots[slot];
        let gen = s.gen.load(Ordering::Acquire);
        let epoch = (gen >> 8) as u32;
        if gen & 0xff == STATE_EMPTY {
            return 0;
        }
        let seen = &mut self.seen[slot];
        if seen.epoch != epoch {
            *seen = SeenSlot {
                epoch,
                frames: s.valid_from.load(Ordering::Acquire),
                chunks: s.floor_chunk.load(Ordering::Acquire),
                bad: false,
            };
        }
        if seen.bad {
            return 0;
        }
        let bounds = Bounds {
            epoch,
            posted_frames: self.chunker.next_frame(),
            posted_chunks: self.chunker.next_index(),
            floor_frames: seen.frames,
            floor_chunks: seen.chunks,
        };
        match s.output.progress(&bounds) {
            Ok(p) => {
                seen.frames = p.frames_done;
                seen.chunks = p.chunks_done;
                let valid_from = s.valid_from.load(Ordering::Acquire);
                if start < valid_from || s.gen.load(Ordering::Acquire) != gen {
                    return 0;
                }
                p.frames_done.saturating_sub(start)
            }
            Err(reason) => {
                self.mark_rogue(slot, epoch, reason);
                0
            }
        }
    }

    /// Copies from the ring of `slot`; false if the audio was not finite or the slot changed.
    fn copy(&mut self, slot: usize, start: u64, out: [&mut [f32]; 2]) -> bool {
        let s = &self.shared.slots[slot];
        let gen = s.gen.load(Ordering::Acquire);
        match s.output.copy_frames(start, out) {
            Ok(()) => s.gen.load(Ordering::Acquire) == gen,
            Err(reason) => {
                self.mark_rogue(slot, (gen >> 8) as u32, reason);
                false
            }
        }
    }

    fn mark_rogue(&mut self, slot: usize, epoch: u32, reason: Rogue) {
        self.seen[slot].bad = true;
        let _ = self.telemetry.push(Telemetry::Rogue {
            slot,
            epoch,
            reason,
        });
        // No wake-up: a syscall other than the futexes does not belong on the audio thread.
        // The rogue ring is already ignored here; the supervisor evicts it at its next tick.
    }

    /// The deadline passed: serve the longest prefix any ring has, fade out the rest.
    fn fallback(&mut self, start: u64, out: [&mut [f32]; 2]) -> usize {
        let [l, r] = out;
        let len = l.len();
        let mut best = (0usize, 0u64);
        for slot in 0..2 {
            let avail = self.available(slot, start).min(len as u64);
            if avail > best.1 {
                best = (slot, avail);
            }
        }
        let mut served = best.1 as usize;
        if served > 0 && !self.copy(best.0, start, [&mut l[..served], &mut r[..served]]) {
            served = 0;
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
        self.shared
            .stats
            .xrun_frames
            .fetch_add(frames as u64, Ordering::Relaxed);
        let _ = self.telemetry.push(Telemetry::Xrun {
            frames,
            at_frame: start + served as u64,
        });
        served
    }
}

impl Drop for Engine {
    /// Kills and reaps both workers and joins the supervisor.
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.wake_supervisor();
        if let Some(handle) = self.supervisor.take() {
            let _ = handle.join();
        }
        self.status.stopped();
    }
}
