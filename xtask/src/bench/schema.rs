//! The benchmarks' JSON files, as types: each `bench NAME` fills one of these and writes it to
//! `NAME.json`; `bench report` reads the same types back. One definition for writer and reader,
//! so a field renamed on one side is a compile error, not a blank table cell.
//!
//! The field names are the files' documented format: renaming one breaks every JSON file kept
//! from earlier runs. A quantile that had no sample is written as `null` (JSON has no NaN) and
//! read back as NaN, which the report prints as "n/a".

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A benchmark's JSON file: its name and where it goes.
pub trait BenchFile: Serialize + DeserializeOwned {
    /// The file's name without `.json`, also the benchmark's name (`bench NAME`).
    const NAME: &'static str;

    /// Writes this to `NAME.json` in [`json_dir`] and returns the path.
    fn write(&self) -> Result<PathBuf> {
        self.write_as(Self::NAME)
    }

    /// Writes this to `name.json` in [`json_dir`] (a variant of the benchmark, such as
    /// `failover-eco`) and returns the path.
    fn write_as(&self, name: &str) -> Result<PathBuf> {
        let dir = json_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Reads `NAME.json` from `dir`.
    fn read(dir: &Path) -> Result<Self> {
        Self::read_as(dir, Self::NAME)
    }

    /// Reads `name.json` (a variant, see [`BenchFile::write_as`]) from `dir`.
    fn read_as(dir: &Path, name: &str) -> Result<Self> {
        let path = dir.join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} missing: run the report without --no-run",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }
}

/// Where the JSON files go: `target/bench/`, or `$TANDEM_BENCH_DIR` when set (the report runs
/// its benchmarks into a folder of its own, so a benchmark somebody else runs meanwhile cannot
/// overwrite one of its files).
pub fn json_dir() -> PathBuf {
    std::env::var_os("TANDEM_BENCH_DIR")
        .map_or_else(|| PathBuf::from("target/bench"), PathBuf::from)
}

/// A distribution as published: nearest-rank quantiles and the sample count.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Quantiles {
    /// Median.
    #[serde(deserialize_with = "null_as_nan")]
    pub p50: f64,
    /// 95th percentile.
    #[serde(deserialize_with = "null_as_nan")]
    pub p95: f64,
    /// 99th percentile.
    #[serde(deserialize_with = "null_as_nan")]
    pub p99: f64,
    /// Largest sample.
    #[serde(deserialize_with = "null_as_nan")]
    pub max: f64,
    /// Number of samples.
    pub n: usize,
}

/// `null` (how serde_json writes a non-finite float) reads back as NaN.
fn null_as_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl Quantiles {
    /// One table row under [`crate::bench::header`]: name, p50, p95, p99, max, unit, count.
    pub fn row(&self, name: &str, unit: &str) -> String {
        format!(
            "{name:<24} {:>10.3} {:>10.3} {:>10.3} {:>10.3}  {unit} (n={})",
            self.p50, self.p95, self.p99, self.max, self.n
        )
    }
}

impl Default for Quantiles {
    /// No samples: what a file written before the field existed reads as.
    fn default() -> Quantiles {
        Quantiles {
            p50: f64::NAN,
            p95: f64::NAN,
            p99: f64::NAN,
            max: f64::NAN,
            n: 0,
        }
    }
}

/// The machine a run happened on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu: String,
    /// Cores this process may run on.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// Describes this machine.
    pub fn this() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: kernel.trim().to_string(),
        }
    }
}

/// The engine's protection as the benchmarks' files name it (`"lockstep"`, `"eco"`); files
/// written before Eco existed are Lockstep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protection {
    /// Two workers in lockstep.
    #[default]
    Lockstep,
    /// One active worker and a sleeping standby.
    Eco,
}

impl Protection {
    /// Both, Lockstep first.
    pub const ALL: [Protection; 2] = [Protection::Lockstep, Protection::Eco];

    /// The name used in JSON, on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Protection::Lockstep => "lockstep",
            Protection::Eco => "eco",
        }
    }

    /// Parses `--protection NAME` (default Lockstep).
    pub fn from_args(args: &[String]) -> anyhow::Result<Protection> {
        match args.iter().position(|a| a == "--protection") {
            None => Ok(Protection::Lockstep),
            Some(i) => Protection::ALL
                .into_iter()
                .find(|p| args.get(i + 1).is_some_and(|a| a == p.name()))
                .with_context(|| "--protection is lockstep or eco"),
        }
    }
}

impl From<Protection> for tandem::engine::Protection {
    fn from(p: Protection) -> tandem::engine::Protection {
        match p {
            Protection::Lockstep => tandem::engine::Protection::Lockstep,
            Protection::Eco => tandem::engine::Protection::Eco,
        }
    }
}

/// CPU split between the plugin's process and its workers; `W` is one figure per worker
/// (`Vec<f64>`) or their sum (`f64`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CpuParts<W> {
    /// This process: host thread, supervisor, everything.
    pub plugin_process: f64,
    /// The workers.
    pub workers: W,
}

// ---- bench failover ---------------------------------------------------------------------------

/// `failover.json` (Lockstep) and `failover-eco.json`: faults of every kind on a period clock.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Failover {
    /// The engine's protection.
    #[serde(default)]
    pub protection: Protection,
    /// Faults committed.
    pub trials: usize,
    /// Block size in frames.
    pub block: usize,
    /// The engine's latency in frames.
    pub latency: u32,
    /// Sample rate in Hz.
    pub sample_rate: f32,
    /// Whether the host thread got `SCHED_FIFO`.
    pub realtime_priority: bool,
    /// Frames (either channel) that differ from the in-process reference.
    pub gap_frames_total: u64,
    /// [`Failover::gap_frames_total`] by the kind of the fault whose window (from the block it
    /// was committed in to the next fault) they fall in; `none` before the first.
    #[serde(default)]
    pub gap_frames_by_kind: BTreeMap<String, u64>,
    /// Kill to detection, signal faults only.
    pub detection_us: Quantiles,
    /// A baseline for [`Failover::detection_us`] in the same run: kill to awake of a thread
    /// sleeping on the death word of a child that does nothing (`bench/baselines/death.rs`).
    #[serde(default)]
    pub detection_baseline_us: Quantiles,
    /// Fault to detection of a hang (SIGSTOP, endless loop).
    pub hang_detection_ms: Quantiles,
    /// The audio thread's switch to the other ring.
    pub switch_ns: Quantiles,
    /// Fault (or its detection) to the new standby verified.
    pub rebuild_ms: Quantiles,
    /// [`Failover::rebuild_ms`] per fault kind.
    pub rebuild_ms_by_kind: BTreeMap<String, Quantiles>,
    /// Blocks that needed the fallback, from each hang (SIGSTOP, endless loop) to the next
    /// fault.
    #[serde(default)]
    pub declicked_blocks_per_hang: Quantiles,
    /// The same for every other fault kind.
    #[serde(default)]
    pub declicked_blocks_per_crash: Quantiles,
    /// Frames the fallback filled.
    pub xruns: u64,
    /// Hypervisor steal during the run (`/proc/stat`, all CPUs).
    #[serde(default)]
    pub steal_ms: u64,
    /// File descriptors left open after the engine was dropped.
    pub leaked_fds: usize,
    /// Worker processes still alive after the engine was dropped.
    pub leaked_processes: usize,
    /// Where it ran.
    pub machine: Machine,
    /// The command that reproduces the run.
    pub command: String,
}

impl BenchFile for Failover {
    const NAME: &'static str = "failover";
}

/// The name of `bench failover --protection eco`'s file.
pub const FAILOVER_ECO: &str = "failover-eco";

impl Failover {
    /// Writes this where its protection's file goes: `failover.json` for Lockstep (the file
    /// the report reads), `failover-eco.json` for Eco.
    pub fn write_for_protection(&self) -> Result<PathBuf> {
        match self.protection {
            Protection::Lockstep => self.write(),
            Protection::Eco => self.write_as(FAILOVER_ECO),
        }
    }
}

// ---- bench overhead ---------------------------------------------------------------------------

/// How `bench overhead` renders the passage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The DSP on the host's thread, no isolation.
    InProcess,
    /// The same, and an idle child process woken once a block (`bench/baselines/wake.rs`):
    /// the least any design that wakes another process per block adds to `InProcess`.
    InProcessWoken,
    /// The engine in Eco without failover (`Tuning::without_failover`): one worker renders,
    /// no standby, no checkpoints, no audits.
    SingleWorker,
    /// The engine in Lockstep, both workers rendering.
    Lockstep,
    /// The engine in Eco: one worker renders, a standby sleeps.
    Eco,
}

impl Mode {
    /// Every mode, in the order each block size runs them.
    pub const ALL: [Mode; 5] = [
        Mode::InProcess,
        Mode::InProcessWoken,
        Mode::SingleWorker,
        Mode::Eco,
        Mode::Lockstep,
    ];

    /// The name used in JSON, on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Mode::InProcess => "in_process",
            Mode::InProcessWoken => "in_process_woken",
            Mode::SingleWorker => "single_worker",
            Mode::Lockstep => "lockstep",
            Mode::Eco => "eco",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// `overhead.json`: CPU and audio-thread cost of each mode at each block size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Overhead {
    /// Sample rate in Hz.
    pub sample_rate: f32,
    /// Seconds of audio per mode, block and round.
    pub seconds_per_window: f64,
    /// Rounds, the modes' order alternating between them.
    pub rounds: usize,
    /// The engine's latency, in words.
    pub latency: String,
    /// How the host loop is clocked, in words.
    pub clock: String,
    /// How `single_worker` is obtained, in words.
    pub single_worker_method: String,
    /// The engine's `Tuning::worker_spin_us` in this run.
    pub worker_spin_us: u32,
    /// The engine's supervisor tick in this run.
    pub supervisor_tick_ms: u64,
    /// The engine's `Tuning::audit_interval` in this run (files from before have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eco_audit_interval_ms: Option<u64>,
    /// One record per mode and block size, every round pooled.
    pub records: Vec<OverheadRecord>,
    /// Where it ran.
    pub machine: Machine,
    /// The command that reproduces the run.
    pub command: String,
}

impl BenchFile for Overhead {
    const NAME: &'static str = "overhead";
}

/// One mode at one block size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OverheadRecord {
    /// The mode.
    pub mode: Mode,
    /// Block size in frames.
    pub block: usize,
    /// CPU seconds of every process per audio second.
    pub cpu_per_audio_s: f64,
    /// [`OverheadRecord::cpu_per_audio_s`] over in-process's at the same block (`null` when
    /// in-process did not run).
    pub cpu_vs_in_process: Option<f64>,
    /// Eco only: [`OverheadRecord::cpu_per_audio_s`] over single_worker's at the same block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_vs_single_worker: Option<f64>,
    /// The same, split by process; the workers by the role each was first seen in: slot 0,
    /// slot 1, the spare (Eco's standby), then those that ended during the measurement (Eco's
    /// audits replace workers). Files from before Eco have the two slots only.
    pub cpu_parts_per_audio_s: CpuParts<Vec<f64>>,
    /// Wall time of each `process()` call.
    pub audio_thread_us: Quantiles,
    /// Frames the fallback filled.
    pub xrun_frames: u64,
    /// Callbacks that returned after the end of their period.
    pub overruns: u64,
    /// Worker processes started during the measurement (replacements, new spares), per audio
    /// second: Eco's takeovers and audits each start one.
    #[serde(default)]
    pub workers_started_per_audio_s: f64,
    /// Audio measured.
    pub audio_seconds: f64,
    /// Lockstep only: lockstep minus the mean of its two workers, the estimate of one worker's
    /// cost to compare with `single_worker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_worker_by_subtraction: Option<f64>,
    /// Where the plugin process's CPU goes, and how often each part wakes (files from before
    /// this split have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<ThreadSplit>,
    /// `in_process_woken` only: from each `FUTEX_WAKE` to the idle child running, in µs: how
    /// long this machine takes to wake a sleeping process (a worker, a spare, the supervisor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_latency_us: Option<Quantiles>,
    /// `in_process_woken` only: the host thread's `FUTEX_WAKE` call that wakes the child, in
    /// µs: what waking a sleeping worker costs an audio thread on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_syscall_us: Option<Quantiles>,
}

/// One mode's CPU by thread and its context switches, from each thread's `schedstat` (its run
/// time, and the times it was put on a CPU).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ThreadSplit {
    /// The host's audio thread, CPU s per audio s: its `process()` calls (the DSP itself in
    /// process) and its period clock.
    pub host_thread: f64,
    /// The engine's supervisor thread, CPU s per audio s (0 in process).
    pub supervisor_thread: f64,
    /// Times the host thread was put on a CPU, per block (about one: its period clock).
    pub host_switches_per_block: f64,
    /// Times the supervisor thread was put on a CPU, per block.
    pub supervisor_switches_per_block: f64,
    /// Times the workers alive at the end were put on a CPU, per block, summed over them.
    pub worker_switches_per_block: f64,
}

// ---- bench realtime ---------------------------------------------------------------------------

/// `realtime.json`: scenarios on a period clock with pressure and kills.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Realtime {
    /// Seconds per scenario.
    pub seconds: f64,
    /// Sample rate in Hz.
    pub sample_rate: f32,
    /// Voices the passage keeps busy.
    pub voices: u32,
    /// Busy threads when a scenario has pressure.
    pub pressure_threads: usize,
    /// Seconds between kills when a scenario has kills.
    pub kill_every_s: u64,
    /// Every scenario run.
    pub scenarios: Vec<Scenario>,
    /// Where it ran.
    pub machine: Machine,
    /// The command that reproduces the run.
    pub command: String,
}

impl BenchFile for Realtime {
    const NAME: &'static str = "realtime";
}

/// One realtime scenario and what it measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scenario {
    /// The engine's protection.
    #[serde(default)]
    pub protection: Protection,
    /// Block size in frames.
    pub block: usize,
    /// The engine's latency in frames.
    pub latency: u32,
    /// Whether busy threads competed for the CPU.
    pub pressure: bool,
    /// Whether the serving worker was killed every [`Realtime::kill_every_s`].
    pub kills: bool,
    /// Frames the fallback filled.
    pub xrun_frames: u64,
    /// Callbacks that returned after the end of their period.
    pub overruns: u64,
    /// The engine's failure count.
    pub failovers: u64,
    /// Frames that differ from the in-process reference.
    pub mismatched_frames: u64,
    /// Blocks played.
    pub blocks: usize,
    /// SIGKILLs sent.
    pub kills_sent: usize,
    /// The engine's own xrun count (to cross-check [`Scenario::xrun_frames`]).
    pub xrun_frames_by_stats: u64,
    /// Whether the host thread got `SCHED_FIFO`.
    pub realtime_priority: bool,
    /// Hypervisor steal during the scenario.
    pub steal_ms: u64,
    /// When the first xruns happened, seconds into the scenario.
    pub xrun_at_s: Vec<f64>,
    /// When each kill happened, seconds into the scenario.
    pub kill_at_s: Vec<f64>,
    /// Failures the benchmark did not cause, in the engine's words.
    pub other_failures: Vec<String>,
    /// Wall time of each `process()` call.
    pub process_us: Quantiles,
    /// How late the host thread woke after each period's start.
    pub wake_late_us: Quantiles,
    /// Kill to detection.
    pub detection_us: Quantiles,
    /// Kill to the new standby verified.
    pub rebuild_ms: Quantiles,
    /// Every detection sample (the report pools them across scenarios).
    pub detection_us_samples: Vec<f64>,
    /// Kill to our own pidfd on the worker readable, every sample.
    pub exit_seen_us_samples: Vec<f64>,
    /// Every rebuild sample.
    pub rebuild_ms_samples: Vec<f64>,
}

// ---- bench scale ------------------------------------------------------------------------------

/// `scale.json`: many instances in one process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scale {
    /// Block size in frames.
    pub block: usize,
    /// The engine's latency in frames.
    pub latency: usize,
    /// Sample rate in Hz.
    pub sample_rate: f32,
    /// Seconds idle and seconds busy per instance count.
    pub seconds: f64,
    /// Busy-spinning threads at normal priority competing with everything (`--pressure`),
    /// from the first activation to the last teardown of each count.
    #[serde(default)]
    pub pressure_threads: usize,
    /// PSS growth per in-process reference engine.
    pub dsp_state_kib_per_instance: f64,
    /// Size of one DSP snapshot.
    pub dsp_snapshot_bytes: usize,
    /// How memory is counted, in words.
    pub memory_method: String,
    /// One result per instance count.
    pub results: Vec<ScaleResult>,
    /// Where it ran.
    pub machine: Machine,
    /// The command that reproduces the run.
    pub command: String,
}

impl BenchFile for Scale {
    const NAME: &'static str = "scale";
}

/// N instances and what they cost.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScaleResult {
    /// N.
    pub instances: usize,
    /// Each `activate` call.
    pub activate_ms: Quantiles,
    /// Each `activate` until both workers were verified.
    pub ready_ms: Quantiles,
    /// PSS of every worker plus this process's growth, over N.
    pub memory_per_instance_kib: f64,
    /// [`ScaleResult::memory_per_instance_kib`] minus the DSP's own state.
    pub memory_beyond_dsp_kib: f64,
    /// PSS of every worker together.
    pub workers_pss_kib: u64,
    /// This process's PSS growth since before the first activation.
    pub plugin_pss_growth_kib: u64,
    /// CPU of every process per wall second with no `process()` call.
    pub idle_cpu_per_s: f64,
    /// [`ScaleResult::idle_cpu_per_s`] over N.
    pub idle_cpu_per_s_per_instance: f64,
    /// The idle CPU split by process.
    pub idle_cpu_parts_per_s: CpuParts<f64>,
    /// Frames the fallback filled while driven.
    pub xrun_frames: u64,
    /// Periods whose callbacks ended after the period.
    pub overruns: u64,
    /// Failures while driven.
    pub failovers: u64,
    /// Why workers failed, in the engine's words, with counts.
    pub failure_reasons: BTreeMap<String, u64>,
    /// Periods driven.
    pub blocks: usize,
    /// CPU of every process per audio second while driven.
    pub busy_cpu_per_audio_s: f64,
    /// The busy CPU split by process.
    pub busy_cpu_parts_per_audio_s: CpuParts<f64>,
    /// Wall time of every instance's `process()` together, per period.
    pub host_us_per_period: Quantiles,
    /// Hypervisor steal while driven.
    pub steal_ms: u64,
    /// Dropping every engine.
    pub teardown_ms: f64,
    /// Whether the host thread got `SCHED_FIFO`.
    pub realtime_priority: bool,
}

// ---- bench bounce -----------------------------------------------------------------------------

/// `bounce.json`: a long dense offline bounce with the workers at `SCHED_FIFO`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bounce {
    /// Audio seconds bounced.
    pub seconds: u64,
    /// Block size in frames (the latency is one block).
    pub block: usize,
    /// Wall seconds the bounce took (without the reference replay).
    pub wall_s: f64,
    /// Worker processes the sampler watched.
    pub workers_watched: usize,
    /// How many of them ran at `SCHED_FIFO`.
    pub workers_at_sched_fifo: usize,
    /// Longest CPU time a worker used without a voluntary context switch, to within one
    /// sampling period (`RLIMIT_RTTIME` kills at 2000 ms).
    pub longest_cpu_without_sleep_ms: f64,
    /// Every worker death or eviction, in the engine's words (goal: none).
    pub worker_failures: Vec<String>,
    /// Frames the fallback filled (goal: 0).
    pub fallback_frames: u64,
    /// Seconds whose output differs from the in-process reference (goal: none).
    pub differing_seconds: Vec<usize>,
    /// Where it ran.
    pub machine: Machine,
    /// The command that reproduces the run.
    pub command: String,
}

impl BenchFile for Bounce {
    const NAME: &'static str = "bounce";
}

// ---- bench soak -------------------------------------------------------------------------------

/// `soak.json`: random faults of every kind, realtime and offline, every frame checked against
/// the in-process reference.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Soak {
    /// Wall seconds the soak ran.
    pub seconds: f64,
    /// Audio seconds played through the engines.
    pub audio_seconds: f64,
    /// The seed of the fault schedule and the configurations.
    pub seed: u64,
    /// Engines activated (the first one and every reactivation).
    pub activations: usize,
    /// Of those, engines in Eco protection (the others ran Lockstep).
    #[serde(default)]
    pub eco_activations: usize,
    /// Faults committed, every kind.
    pub faults_total: u64,
    /// Faults committed, by kind.
    pub faults_by_kind: BTreeMap<String, u64>,
    /// Faults that took both workers at once.
    pub double_deaths: u64,
    /// Frames that differ from the reference outside the double-death gaps (goal: 0).
    pub mismatched_frames: u64,
    /// Of those, frames the engine served from a ring as exact (goal: 0; the others were the
    /// engine's declared fallback, an xrun).
    pub mismatched_served_frames: u64,
    /// [`Soak::mismatched_frames`] by the fault whose window they fell in (`none`: outside every
    /// fault's window).
    pub mismatched_by_kind: BTreeMap<String, u64>,
    /// [`Soak::mismatched_served_frames`] by the fault whose window they fell in.
    pub mismatched_served_by_kind: BTreeMap<String, u64>,
    /// Of [`Soak::mismatched_frames`], those in activations in Eco (whose hangs may cost a
    /// declicked block by design), the rest in Lockstep.
    #[serde(default)]
    pub mismatched_in_eco: u64,
    /// [`Soak::mismatched_frames`] by the configuration of their activation: protection, mode,
    /// block size and latency.
    #[serde(default)]
    pub mismatched_by_config: BTreeMap<String, u64>,
    /// Of [`Soak::mismatched_frames`], those in activations at latency 0, where each call waits
    /// for the block it has just posted: a late wake-up on a busy machine is an xrun, and in
    /// Eco a fault of the active worker costs a block (README, "Latency").
    #[serde(default)]
    pub mismatched_at_latency_zero: u64,
    /// The first blocks with mismatched frames: where, how many served and how many fallback,
    /// the window's fault and the activation's configuration.
    pub mismatch_log: Vec<String>,
    /// Of [`Soak::mismatched_frames`], those in blocks with hypervisor steal within 100 ms of
    /// them: this VM's vCPUs were running something else.
    #[serde(default)]
    pub mismatched_near_steal: u64,
    /// Hypervisor steal over the whole soak (`/proc/stat`, all CPUs).
    #[serde(default)]
    pub steal_ms: u64,
    /// The engine's events around the first block of each run of wrong frames (the first 300
    /// runs: all of them at latency of a block or more, those outside every fault's window at
    /// latency 0), with the window's fault and the steal around it: what the engine did when
    /// it lost the sound.
    #[serde(default, alias = "fallback_run_log")]
    pub wrong_run_log: Vec<String>,
    /// The audible gap of each double death: its frames that differ from the reference.
    pub gap_ms: Quantiles,
    /// The double deaths' and poisons' gaps over 100 ms: fault, window and configuration.
    #[serde(default)]
    pub long_gap_log: Vec<String>,
    /// Frames that differ from the reference in the double deaths' gaps in offline phases
    /// (offline waits for exact frames: goal 0).
    pub offline_gap_frames: u64,
    /// Frames that differ from the reference while `SCHED_FIFO` hogs above the workers' priority
    /// held every core (no engine renders without CPU), not counted as mismatches.
    pub starved_frames: u64,
    /// Frames that differ from the reference in the window of a finite wrong value (one
    /// flipped bit) served on one worker's word: in Eco, where one worker renders and the
    /// audit only samples, or in Lockstep in a block the engine declared served without the
    /// twin's confirming digest (late past the deadline). The documented limit, not counted as
    /// mismatches.
    #[serde(default, alias = "eco_unchecked_frames")]
    pub unconfirmed_wrong_frames: u64,
    /// Frames the fallback filled, everywhere.
    pub xrun_frames: u64,
    /// `process()` calls that gave up waiting in offline mode or took over a second (goal: 0).
    pub stuck_waits: u64,
    /// The first stuck waits: how long, the fallback, and the fault in progress.
    pub stuck_log: Vec<String>,
    /// Faults after which the engine was not back in lockstep (and, for a fault aimed at a
    /// worker, had not replaced it) within the settle bound, by kind (goal: none).
    pub unsettled_by_kind: BTreeMap<String, u64>,
    /// The first unsettled faults: where the engine stood and its events since the fault.
    pub unsettled_log: Vec<String>,
    /// Workers that died or were evicted although no fault was aimed at them (goal: 0).
    pub honest_evictions: u64,
    /// The first honest evictions, in the engine's words, with the fault in progress.
    pub honest_eviction_log: Vec<String>,
    /// Workers left far behind their twin (starved) and rebuilt near the head before the input
    /// ring could lap them (`EvictReason::FellBehind`): the engine's remedy, not a loss.
    pub catch_up_rebuilds: u64,
    /// Times no checkpoint was usable and the workers restarted from a fresh state.
    pub state_lost: u64,
    /// The first fresh restarts: the fault in progress and the engine's events before each.
    #[serde(default)]
    pub state_lost_log: Vec<String>,
    /// File descriptors left open after the last engine was dropped (goal: 0).
    pub leaked_fds: usize,
    /// Worker processes alive after their engine was dropped (goal: 0).
    pub leaked_processes: usize,
    /// Whether the host thread got `SCHED_FIFO`.
    pub realtime_priority: bool,
    /// Where it ran.
    pub machine: Machine,
    /// The command that reproduces the run.
    pub command: String,
}

impl BenchFile for Soak {
    const NAME: &'static str = "soak";
}
