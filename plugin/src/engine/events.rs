//! What the engine reports: events for the host's log and for tests and benchmarks
//! ([`EngineEvent`]), counters ([`Stats`]), and what the audio thread tells the supervisor
//! (`Telemetry`).

use shm::Rogue;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// How a worker process ended, as its reaped exit status says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerExit {
    /// It exited with this status.
    Exited(i32),
    /// This signal ended it.
    Signalled(i32),
    /// Waiting for it failed; it was sent `SIGKILL` but may not be reaped.
    Unreaped(std::io::ErrorKind),
}

impl fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WorkerExit::Exited(code) => match shm::exit_status::meaning(code) {
                Some(meaning) => write!(f, "exited with status {code} ({meaning})"),
                None => write!(f, "exited with status {code}"),
            },
            WorkerExit::Signalled(sig) => {
                write!(f, "killed by signal {sig} ({})", signal_name(sig))
            }
            WorkerExit::Unreaped(kind) => write!(f, "could not be reaped: {kind}"),
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGSYS => "SIGSYS",
        libc::SIGBUS => "SIGBUS",
        libc::SIGTERM => "SIGTERM",
        _ => "other",
    }
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
    /// It fell so far behind its serving twin (starved, or outrun by a host rendering faster
    /// than real time) that the input ring would lap it: rebuilt from a checkpoint to catch up.
    FellBehind,
    /// It used far more CPU than its twin for the same work (a worker that keeps a core busy
    /// between chunks): see `supervisor/cpu_budget.rs`.
    CpuBudget,
}

/// Why the supervisor called the standby into the empty slot (Eco; docs/ARCHITECTURE.md,
/// "Protection").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StandbyReason {
    /// The active worker died or was evicted: the standby takes its place.
    Takeover,
    /// The active worker was late with frames the host needs: the standby renders beside it,
    /// and whichever has the frames first serves.
    Hedge,
    /// A periodic check: the standby renders beside the active worker and their digests are
    /// compared, as in Lockstep, until the standby is verified.
    Audit,
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
        cause: WorkerExit,
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
    /// Eco: a verified worker was removed because a newer verified one took over (after a hedge
    /// or an audit). Not a failure: nothing went wrong with it.
    WorkerRetired {
        /// Slot 0 or 1.
        slot: usize,
        /// Its spawn epoch.
        epoch: u32,
        /// Its pid.
        pid: u32,
    },
    /// Eco: an audit's standby, or a hedge's once the late active caught up, verified, left
    /// `slot` and sleeps again as the spare (the same process, called again when needed). Not a
    /// failure.
    StandbyReturned {
        /// The slot it left.
        slot: usize,
        /// Its spawn epoch (it keeps it).
        epoch: u32,
        /// Its pid.
        pid: u32,
    },
    /// Eco: the standby was called into `slot` (a `WorkerSpawned` follows).
    StandbyCalled {
        /// The empty slot it takes.
        slot: usize,
        /// Why.
        reason: StandbyReason,
    },
    /// A replacement (or first) worker was started.
    WorkerSpawned {
        /// Slot 0 or 1.
        slot: usize,
        /// Its spawn epoch.
        epoch: u32,
        /// Its pid.
        pid: u32,
        /// The output ring it writes (0-2; a spare called in keeps the one it was spawned
        /// with).
        ring: usize,
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
    /// A spare worker was started; it sleeps in its sandbox until a slot needs it.
    SpareSpawned {
        /// The epoch it will run as.
        epoch: u32,
        /// Its pid.
        pid: u32,
        /// The output ring it was handed, its own until it dies (0-2).
        ring: usize,
        /// How long the spawn call took.
        spawn_ns: u64,
    },
    /// The spare died while it waited; another replaces it.
    SpareDied {
        /// The epoch it would have run as.
        epoch: u32,
        /// Its pid.
        pid: u32,
        /// How it ended.
        cause: WorkerExit,
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
    /// Rendering a chunk killed every worker that tried (a deterministic bug that input
    /// triggers): the workers are rebuilt without that chunk's events, and sound resumes.
    ChunkQuarantined {
        /// The chunk.
        chunk: u64,
        /// Its first frame.
        start_frame: u64,
        /// The events dropped from it (those that still decode; none is lost silently: the
        /// count is `dropped_count`).
        dropped: Vec<dsp::Event>,
        /// How many events the chunk held.
        dropped_count: u32,
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
                    EvictReason::FellBehind => "fell behind; rebuilt to catch up".to_string(),
                    EvictReason::CpuBudget => "used far more CPU than its twin".to_string(),
                };
                write!(f, "worker {slot} (epoch {epoch}, pid {pid}) evicted: {why}")
            }
            EngineEvent::WorkerRetired { slot, epoch, pid } => write!(
                f,
                "worker {slot} (epoch {epoch}, pid {pid}) retired: a newer verified worker serves"
            ),
            EngineEvent::StandbyReturned { slot, epoch, pid } => write!(
                f,
                "standby (epoch {epoch}, pid {pid}) left slot {slot}, verified: the spare again"
            ),
            EngineEvent::StandbyCalled { slot, reason } => {
                let why = match reason {
                    StandbyReason::Takeover => "to take over",
                    StandbyReason::Hedge => "beside a late worker (hedge)",
                    StandbyReason::Audit => "to audit the active worker",
                };
                write!(f, "standby called into slot {slot} {why}")
            }
            EngineEvent::WorkerSpawned {
                slot,
                epoch,
                pid,
                ring,
                from_chunk,
                spawn_ns,
            } => {
                let from = from_chunk.map_or("the start".to_string(), |c| format!("chunk {c}"));
                write!(
                    f,
                    "worker {slot} (epoch {epoch}, pid {pid}, ring {ring}) started from {from} in \
                     {:.2} ms",
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
            EngineEvent::SpareSpawned {
                epoch,
                pid,
                ring,
                spawn_ns,
            } => write!(
                f,
                "spare worker (epoch {epoch}, pid {pid}, ring {ring}) started in {:.2} ms",
                ms(*spawn_ns)
            ),
            EngineEvent::SpareDied { epoch, pid, cause } => {
                write!(f, "spare worker (epoch {epoch}, pid {pid}) died: {cause}")
            }
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
            EngineEvent::ChunkQuarantined {
                chunk,
                start_frame,
                dropped,
                dropped_count,
            } => write!(
                f,
                "chunk {chunk} (frame {start_frame}) killed every worker that rendered it: \
                 quarantined, its {dropped_count} events dropped: {dropped:?}"
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

/// What the audio thread tells the supervisor, wait-free.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Telemetry {
    /// The ring of `slot` (worker `epoch`) failed validation.
    Rogue {
        slot: usize,
        epoch: u32,
        reason: Rogue,
    },
    /// The fallback filled `frames` frames from `at_frame`.
    Xrun { frames: u32, at_frame: u64 },
    /// The audio thread served from ring `to` instead of `from`; the pass cost `ns`.
    Switch {
        from: usize,
        to: usize,
        ns: u32,
        at_frame: u64,
    },
}
