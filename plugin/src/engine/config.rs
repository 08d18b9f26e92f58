//! How an engine is configured and why activation can fail: what the host decides
//! ([`EngineConfig`]), what only tests and benchmarks change ([`Tuning`]), and [`EngineError`].

use super::events::WorkerExit;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// The largest `EngineConfig::max_block`; a host with bigger blocks feeds them in pieces.
pub const MAX_BLOCK: usize = 8192;

/// How the host drives us; decides what a late block gets (docs/ARCHITECTURE.md, "Timing").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessMode {
    /// A late block is filled with a declicked fade after a deadline inside the block period,
    /// unless the host calls faster than real time (a render): then as offline (`pace.rs`).
    Realtime,
    /// Bounce: wait for exact frames, up to `Tuning::offline_wait_bound`.
    Offline,
}

/// How the engine guards the sound against a faulty worker; the musician's choice between
/// safety and CPU (docs/ARCHITECTURE.md, "Protection").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protection {
    /// Two workers render every chunk in lockstep: any single-worker fault, wrong bits
    /// included, is inaudible. About twice the CPU of one worker.
    #[default]
    Lockstep,
    /// One worker renders; a sandboxed standby sleeps and takes over from a recent checkpoint
    /// when it dies, hangs or goes rogue. About the CPU of one worker; finite wrong bits are
    /// found only by a periodic audit, later.
    Eco,
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
    /// Lockstep or Eco; fixed between activations, like the latency.
    pub protection: Protection,
}

/// Knobs with sensible defaults; tests and benchmarks change them, hosts never need to.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuning {
    /// Realtime deadline as a fraction of the block period (measured from `process()` entry).
    /// Tests that compare bits under load set it far above 1.
    pub deadline_fraction: f32,
    /// A worker that has had work pending without progress this long is hung and evicted;
    /// beside a twin that keeps rendering, a twentieth of it into such a stall the kernel is
    /// asked, and a stopped or looping worker goes sooner (`supervisor/starvation.rs`).
    pub hang_timeout: Duration,
    /// Lockstep: ask a worker for a state checkpoint after this many frames; a rebuild replays
    /// at most this much audio (plus what arrives while it starts). A checkpoint costs about
    /// 12 µs (the worker's snapshot, the supervisor's validating restore) on a pass the
    /// supervisor makes anyway.
    pub checkpoint_frames: u32,
    /// Eco's interval, longer: there each checkpoint costs a supervisor wake-up and pass of
    /// its own, most of what Eco adds to one worker's CPU.
    pub eco_checkpoint_frames: u32,
    /// How long a worker spins before sleeping on the input futex when the latency is below
    /// one block (at one block or more it does not spin: nobody waits for it).
    pub worker_spin_us: u32,
    /// How long the audio thread spins before sleeping on the doorbell.
    pub audio_spin_us: u32,
    /// The supervisor's tick (hang, digest and checkpoint checks).
    pub tick: Duration,
    /// The longest an offline `process()` waits for exact frames before it gives up on them
    /// with the declicked fade (counted and logged as an xrun): an export never hangs.
    pub offline_wait_bound: Duration,
    /// Keep a pre-spawned spare worker, so a rebuild does not wait for a process to start (off
    /// only to measure rebuilds without it: `cargo xtask bench failover --no-spare`).
    pub spare: bool,
    /// Eco only: how often the supervisor audits the active worker by calling the standby in
    /// to render beside it for a few chunks (docs/ARCHITECTURE.md, "Protection"): 1 s, about
    /// 0.3-0.9 % of a core as measured by the `eco_costs` example.
    pub audit_interval: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            deadline_fraction: 0.8,
            hang_timeout: Duration::from_millis(50),
            checkpoint_frames: 128,
            eco_checkpoint_frames: 512,
            worker_spin_us: 20,
            audio_spin_us: 20,
            tick: Duration::from_millis(2),
            offline_wait_bound: Duration::from_secs(10),
            spare: true,
            audit_interval: Duration::from_secs(1),
        }
    }
}

impl Tuning {
    /// This tuning without failover: the baseline Eco's CPU is measured against (`cargo xtask
    /// bench overhead`, `single_worker`), used with [`Protection::Eco`]. One sandboxed worker
    /// renders, as DAW sandboxes run a plugin: no standby (hence no hedge and no audit) and no
    /// checkpoints. The supervisor still watches the worker and respawns a dead one, with no
    /// checkpoint to start it from (held notes are lost). Only benchmarks use it.
    pub fn without_failover(self) -> Tuning {
        Tuning {
            spare: false,
            checkpoint_frames: u32::MAX,
            eco_checkpoint_frames: u32::MAX,
            ..self
        }
    }
}

/// Why activation failed; the host stays alive and the plugin logs this.
#[derive(Debug)]
pub enum EngineError {
    /// A block size or latency the engine does not take.
    UnsupportedConfig(String),
    /// The synth cannot run at this sample rate or block size.
    Synth(dsp::ConfigError),
    /// The worker executable is missing or could not be started.
    Spawn {
        /// The executable we tried to start.
        worker: PathBuf,
        /// Why it did not start.
        source: io::Error,
    },
    /// A worker started but exited before reaching its render loop (for example, it could not
    /// enter its sandbox on this system).
    ExitedOnStart {
        /// Its slot.
        slot: usize,
        /// How it ended.
        exit: WorkerExit,
    },
    /// The supervisor thread could not be started.
    Thread(io::Error),
    /// Creating or sealing shared memory failed.
    SharedMemory(io::Error),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::UnsupportedConfig(s) => write!(f, "unsupported configuration: {s}"),
            EngineError::Synth(e) => write!(f, "unsupported configuration: {e}"),
            EngineError::Spawn { worker, source } => {
                write!(f, "cannot start a worker: {}: {source}", worker.display())
            }
            EngineError::ExitedOnStart { slot, exit } => {
                write!(f, "worker {slot} {exit} on start")
            }
            EngineError::Thread(e) => write!(f, "cannot start the supervisor thread: {e}"),
            EngineError::SharedMemory(e) => write!(f, "shared memory: {e}"),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EngineError::UnsupportedConfig(_) | EngineError::ExitedOnStart { .. } => None,
            EngineError::Synth(e) => Some(e),
            EngineError::Spawn { source, .. } => Some(source),
            EngineError::Thread(e) | EngineError::SharedMemory(e) => Some(e),
        }
    }
}
