//! `cargo xtask bench overhead [--seconds S] [--rounds R] [--block N] [--mode M]`: what isolation
//! costs, in CPU and on the audio thread, for the same 16-voice passage rendered five ways.
//! `--block` and `--mode` restrict the run to one block size or one mode (for profiling);
//! `--spin-us N`, `--tick-ms N`, `--audit-ms N` and `--checkpoint-frames N` change the engine's
//! `Tuning` (worker spin before sleeping, supervisor tick, Eco's audit interval, Lockstep's
//! checkpoint interval) to find where the time goes. The report uses the defaults.
//!
//! - `in_process`: the [`ReferenceEngine`], the `dsp` called on the host's audio thread (what a
//!   plugin without isolation costs);
//! - `in_process_woken`: the same, and an idle child process woken once a block
//!   ([`WakeBaseline`]): the least that any design adds which renders in another process and
//!   wakes it every block, a floor under `single_worker` measured in the same run;
//! - `single_worker`: the engine in Eco without failover (`Tuning::without_failover`): one
//!   sandboxed worker renders and the audio thread waits for it alone, with no standby, no
//!   checkpoints and no audits: isolation without failover, as DAW sandboxes do it;
//! - `eco`: the engine in Eco protection: one active worker renders, a sandboxed standby sleeps
//!   and (as the engine decides) audits now and then; its CPU is counted, the supervisor's
//!   checkpoint work is in this process's;
//! - `lockstep`: the engine in Lockstep (the default), both workers rendering.
//!
//! Each mode runs on the same host loop: an absolute `clock_nanosleep` period clock, the host
//! thread at `SCHED_FIFO` when granted, latency one block (the plugin's default). We measure at
//! the period clock, not flat out, because what isolation costs is mostly waking sleeping
//! processes: a flat-out loop keeps the workers spinning and never pays for a wake-up, so it
//! would flatter the workers and measure a cost no user pays.
//!
//! CPU counts every process: this process's own time (`getrusage`, every thread: host,
//! supervisor) plus each worker's exact runtime from `/proc/<pid>/task/*/schedstat`, read just
//! before the engine is dropped; the workers are those in the two slots and the spare (asleep
//! in Lockstep, Eco's standby), and those the engine replaced during the window (Eco's audits),
//! from this process's reaped children's CPU (`getrusage(RUSAGE_CHILDREN)`). Audio-thread time is
//! the wall time of each `process()` call.
//!
//! The plugin process's CPU is split by thread ([`ThreadSplit`]): the host's audio thread and
//! the supervisor thread (found by its name), each from its `/proc/self/task/<tid>/schedstat`,
//! which also counts how often each thread, and each worker, was put on a CPU (its wake-ups).

use super::baselines::WakeBaseline;
use super::host::{self, now_ns, Phrase};
use super::schema::{
    self, BenchFile, CpuParts, Machine, Mode, OverheadRecord, Protection, Quantiles, ThreadSplit,
};
use super::{flag, header, Summary};
use anyhow::{Context, Result};
use std::time::Duration;
use tandem::engine::{Engine, EngineConfig, ProcessMode, ReferenceEngine, Tuning};

const SAMPLE_RATE: f32 = 48_000.0;

/// The block sizes measured.
pub const BLOCKS: [usize; 6] = [32, 64, 128, 256, 512, 1024];

/// What one timed window of one mode measured.
#[derive(Default)]
struct Window {
    audio_frames: u64,
    /// CPU of this process (host thread, supervisor, everything) over the window.
    plugin_ns: u64,
    /// CPU of the workers over the window: slot 0, slot 1, the spare, workers that ended.
    worker_ns: Vec<u64>,
    /// The host thread over the window.
    host: host::Sched,
    /// The supervisor thread over the window (none in process).
    supervisor: host::Sched,
    /// Times the workers alive at the window's end were put on a CPU during it.
    worker_slices: u64,
    block_ns: Vec<f64>,
    xrun_frames: u64,
    overruns: u64,
    /// Worker processes that appeared during the window (replacements, new spares).
    workers_started: usize,
    /// `in_process_woken` only: each post to the idle child running, in µs.
    wake_latency_us: Vec<f64>,
    /// `in_process_woken` only: each post's `FUTEX_WAKE` call on the host thread, in µs.
    wake_syscall_us: Vec<f64>,
}

/// The renderer under test: the in-process reference (alone or waking an idle child every
/// block) or a real engine.
enum Renderer {
    InProcess(Box<ReferenceEngine>),
    InProcessWoken(Box<ReferenceEngine>, WakeBaseline),
    Engine(Box<Engine>),
}

impl Renderer {
    fn process(&mut self, phrase: &mut Phrase, l: &mut [f32], r: &mut [f32]) -> (u32, u64) {
        let (events, params) = phrase.block(l.len());
        let t0 = now_ns();
        let fallback = match self {
            Renderer::InProcess(e) => {
                e.process(events, params, None, [l, r]);
                0
            }
            Renderer::InProcessWoken(e, child) => {
                e.process(events, params, None, [l, r]);
                // Then the host thread goes back to sleep, as after posting to a worker: the
                // child may take this CPU or the other.
                child.wake();
                0
            }
            Renderer::Engine(e) => e.process(events, params, None, [l, r]).fallback_frames,
        };
        (fallback, now_ns() - t0)
    }

    /// The worker processes: slot 0, slot 1 and the spare (`None`: there is none).
    fn pids(&self) -> Vec<Option<u32>> {
        match self {
            Renderer::InProcess(_) => Vec::new(),
            Renderer::InProcessWoken(_, child) => vec![Some(child.pid())],
            Renderer::Engine(e) => vec![e.worker_pid(0), e.worker_pid(1), e.spare_pid()],
        }
    }
}

/// Every worker process seen during a window, so that workers the engine replaces meanwhile
/// (Eco's audits call the standby in and retire the older worker) are counted too.
#[derive(Default)]
struct WorkerCpu {
    /// Pid, the role it was first seen in (slot 0, slot 1, spare), its scheduler figures then.
    seen: Vec<(u32, usize, host::Sched)>,
}

impl WorkerCpu {
    /// Notes the engine's workers not seen before (atomics; `/proc` only for a new pid).
    fn look(&mut self, renderer: &Renderer) {
        for (role, pid) in renderer.pids().into_iter().enumerate() {
            let Some(pid) = pid else { continue };
            if self.seen.iter().all(|s| s.0 != pid) {
                self.seen
                    .push((pid, role, host::pid_sched(pid).unwrap_or_default()));
            }
        }
    }

    /// CPU ns used since first seen: slot 0, slot 1 and spare (by first role) for the workers
    /// still alive, then the workers that ended, from the growth of this process's reaped
    /// children's CPU (`reaped_ns`) less what they had used before they were first seen; and
    /// the times the live ones were put on a CPU since.
    fn used(&self, reaped_ns: u64) -> (Vec<u64>, u64) {
        let mut out = vec![0u64; 4];
        let mut before_ended = 0;
        let mut slices = 0;
        for &(pid, role, first) in &self.seen {
            match host::pid_sched(pid) {
                Some(now) => {
                    let used = now.since(first);
                    out[role] += used.run_ns;
                    slices += used.slices;
                }
                None => before_ended += first.run_ns,
            }
        }
        out[3] = reaped_ns.saturating_sub(before_ended);
        (out, slices)
    }
}

/// Runs `mode` at `block` frames: warm up, then `seconds` of timed audio on the period clock.
/// Activation and teardown run at normal priority, as a DAW's main thread does them.
fn measure(
    worker: &std::path::Path,
    mode: Mode,
    block: usize,
    seconds: f64,
    tuning: &Tuning,
) -> Result<Window> {
    let config = EngineConfig {
        sample_rate: SAMPLE_RATE,
        max_block: block,
        latency: block as u32,
        mode: ProcessMode::Realtime,
        protection: if matches!(mode, Mode::Eco | Mode::SingleWorker) {
            Protection::Eco
        } else {
            Protection::Lockstep
        }
        .into(),
        worker_path: worker.to_path_buf(),
    };
    let mut renderer = match mode {
        Mode::InProcess => Renderer::InProcess(Box::new(ReferenceEngine::new(
            SAMPLE_RATE,
            block,
            block as u32,
        )?)),
        Mode::InProcessWoken => Renderer::InProcessWoken(
            Box::new(ReferenceEngine::new(SAMPLE_RATE, block, block as u32)?),
            WakeBaseline::start()?,
        ),
        Mode::Lockstep | Mode::Eco => {
            Renderer::Engine(Box::new(Engine::activate_with(config, tuning.clone())?))
        }
        Mode::SingleWorker => Renderer::Engine(Box::new(Engine::activate_with(
            config,
            tuning.clone().without_failover(),
        )?)),
    };
    let period_ns = (block as f64 / SAMPLE_RATE as f64 * 1e9) as u64;
    let mut phrase = Phrase::new(SAMPLE_RATE);
    let (mut l, mut r) = (vec![0.0; block], vec![0.0; block]);
    let realtime = host::try_realtime_priority();
    let mut t = now_ns();
    // Warm up: 0.3 s, and until the engine is fully protected (both workers verified; in Eco
    // the active worker and its standby; without failover its one worker).
    let warm_blocks = (0.3 * SAMPLE_RATE as f64 / block as f64) as u64;
    let mut b = 0u64;
    loop {
        t += period_ns;
        host::sleep_until(t);
        renderer.process(&mut phrase, &mut l, &mut r);
        b += 1;
        let settled = match &renderer {
            Renderer::Engine(e) => e.settled(),
            Renderer::InProcess(_) | Renderer::InProcessWoken(..) => true,
        };
        if b >= warm_blocks && settled {
            break;
        }
        if b > warm_blocks + 20 * SAMPLE_RATE as u64 / block as u64 {
            anyhow::bail!("{mode} at {block} frames never became fully protected");
        }
    }
    let blocks = (seconds * SAMPLE_RATE as f64 / block as f64).ceil() as u64;
    let mut w = Window {
        block_ns: Vec::with_capacity(blocks as usize),
        ..Window::default()
    };
    let mut workers = WorkerCpu::default();
    workers.look(&renderer);
    let at_start = workers.seen.len();
    let host_tid = host::this_thread_id();
    let supervisor_tid = host::thread_named("tandem-supervisor");
    let thread = |tid: Option<u32>| tid.map(host::thread_sched).unwrap_or_default();
    let (host0, supervisor0) = (thread(Some(host_tid)), thread(supervisor_tid));
    let plugin0 = host::self_cpu_ns();
    let reaped0 = host::reaped_children_cpu_ns();
    for _ in 0..blocks {
        t += period_ns;
        host::sleep_until(t);
        let (fallback, ns) = renderer.process(&mut phrase, &mut l, &mut r);
        w.block_ns.push(ns as f64);
        w.xrun_frames += fallback as u64;
        w.overruns += (now_ns() > t + period_ns) as u64;
        workers.look(&renderer);
    }
    w.plugin_ns = host::self_cpu_ns() - plugin0;
    w.host = thread(Some(host_tid)).since(host0);
    w.supervisor = thread(supervisor_tid).since(supervisor0);
    (w.worker_ns, w.worker_slices) = workers.used(host::reaped_children_cpu_ns() - reaped0);
    w.workers_started = workers.seen.len() - at_start;
    if let Renderer::InProcessWoken(_, child) = &mut renderer {
        w.wake_latency_us = child.take_latency_us();
        w.wake_syscall_us = child.take_syscall_us();
    }
    w.audio_frames = blocks * block as u64;
    if realtime {
        host::normal_priority();
    }
    drop(renderer);
    Ok(w)
}

/// Entry point.
pub fn run(args: &[String]) -> Result<()> {
    let seconds: f64 = flag(args, "--seconds", 5.0)?;
    let rounds: usize = flag(args, "--rounds", 2)?;
    let only_block: usize = flag(args, "--block", 0)?;
    let only_mode = match args.iter().position(|a| a == "--mode") {
        None => None,
        Some(i) => Some(
            Mode::ALL
                .into_iter()
                .find(|m| args.get(i + 1).is_some_and(|a| a == m.name()))
                .with_context(|| format!("--mode is one of {:?}", Mode::ALL.map(Mode::name)))?,
        ),
    };
    let defaults = Tuning::default();
    let spin_us: u32 = flag(args, "--spin-us", defaults.worker_spin_us)?;
    let tick_ms: u64 = flag(args, "--tick-ms", defaults.tick.as_millis() as u64)?;
    let audit_ms: u64 = flag(
        args,
        "--audit-ms",
        defaults.audit_interval.as_millis() as u64,
    )?;
    let checkpoint_frames: u32 = flag(args, "--checkpoint-frames", defaults.checkpoint_frames)?;
    let tuning = Tuning {
        worker_spin_us: spin_us,
        checkpoint_frames,
        tick: Duration::from_millis(tick_ms),
        audit_interval: Duration::from_millis(audit_ms),
        ..defaults
    };
    let worker = host::build_worker()?;
    // The whole run happens on one thread, which raises itself to SCHED_FIFO only for the timed
    // loops; run it apart from main so the priority changes never leak into anything else.
    let result = std::thread::Builder::new()
        .name("host".into())
        .spawn(move || -> Result<Vec<OverheadRecord>> {
            let mut windows: Vec<((usize, Mode), Window)> = Vec::new();
            for round in 0..rounds {
                for &block in BLOCKS
                    .iter()
                    .filter(|&&b| only_block == 0 || b == only_block)
                {
                    // Alternate the order of the modes between rounds against drift.
                    let mut order = Mode::ALL.to_vec();
                    if round % 2 == 1 {
                        order.reverse();
                    }
                    order.retain(|m| only_mode.is_none_or(|o| o == *m));
                    for mode in order {
                        let w = measure(&worker, mode, block, seconds, &tuning)?;
                        eprintln!(
                            "  round {round} {mode:>16} {block:>4}: {:.3} CPU s per audio s",
                            (w.plugin_ns + w.worker_ns.iter().sum::<u64>()) as f64
                                / 1e9
                                / (w.audio_frames as f64 / SAMPLE_RATE as f64)
                        );
                        windows.push(((block, mode), w));
                    }
                }
            }
            Ok(records(&windows))
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("the host thread panicked"))??;

    println!(
        "overhead: {seconds} s x {rounds} rounds per mode and block, latency one block, period clock"
    );
    println!(
        "{:<17} {:>5} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} {:>8}",
        "mode",
        "block",
        "cpu/audio",
        "x in-proc",
        "x single",
        "p50 us",
        "p99 us",
        "max us",
        "xruns",
        "spawns/s"
    );
    for r in &result {
        println!(
            "{:<17} {:>5} {:>10.4} {:>9.2} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>6} {:>8.1}",
            r.mode,
            r.block,
            r.cpu_per_audio_s,
            r.cpu_vs_in_process.unwrap_or(f64::NAN),
            r.cpu_vs_single_worker
                .map_or(String::new(), |x| format!("{x:.3}")),
            r.audio_thread_us.p50,
            r.audio_thread_us.p99,
            r.audio_thread_us.max,
            r.xrun_frames,
            r.workers_started_per_audio_s,
        );
    }
    println!(
        "\nwhere the CPU goes (CPU s per audio s) and wake-ups (times put on a CPU per block)"
    );
    println!(
        "{:<17} {:>5} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8}",
        "mode", "block", "host thr", "superv", "other", "workers", "host/b", "sup/b", "work/b"
    );
    for r in &result {
        let Some(t) = &r.threads else { continue };
        let plugin = r.cpu_parts_per_audio_s.plugin_process;
        println!(
            "{:<17} {:>5} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>8.2} {:>8.2} {:>8.2}",
            r.mode,
            r.block,
            t.host_thread,
            t.supervisor_thread,
            (plugin - t.host_thread - t.supervisor_thread).max(0.0),
            r.cpu_parts_per_audio_s.workers.iter().sum::<f64>(),
            t.host_switches_per_block,
            t.supervisor_switches_per_block,
            t.worker_switches_per_block,
        );
    }
    println!(
        "\nin_process_woken's idle child: FUTEX_WAKE to it running (wake-up), and the host \
         thread's FUTEX_WAKE call"
    );
    println!("{}", header());
    for r in &result {
        let figures = [
            ("wake-up", &r.wake_latency_us),
            ("FUTEX_WAKE", &r.wake_syscall_us),
        ];
        for (name, q) in figures {
            if let Some(q) = q {
                println!("{}", q.row(&format!("{name}, block {}", r.block), "us"));
            }
        }
    }
    let json = schema::Overhead {
        sample_rate: SAMPLE_RATE,
        seconds_per_window: seconds,
        rounds,
        latency: "one block".to_string(),
        clock: "period (absolute clock_nanosleep), host thread SCHED_FIFO when granted".to_string(),
        single_worker_method: "engine in Eco with Tuning::without_failover (no standby, no \
                               checkpoints, no audits)"
            .to_string(),
        worker_spin_us: spin_us,
        supervisor_tick_ms: tick_ms,
        eco_audit_interval_ms: Some(audit_ms),
        records: result,
        machine: Machine::this(),
        command: format!("cargo xtask bench overhead {}", args.join(" "))
            .trim_end()
            .to_string(),
    };
    let path = json.write()?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The quantiles of one sample list of every window, pooled.
fn pooled(ws: &[&Window], samples: fn(&Window) -> &Vec<f64>) -> Quantiles {
    Summary::new(ws.iter().flat_map(|w| samples(w).iter().copied()).collect()).quantiles()
}

/// One record per mode and block size, every round pooled.
fn records(windows: &[((usize, Mode), Window)]) -> Vec<OverheadRecord> {
    let mut out: Vec<OverheadRecord> = Vec::new();
    let mut in_process_cpu = std::collections::BTreeMap::new();
    for &block in &BLOCKS {
        for mode in Mode::ALL {
            let ws: Vec<&Window> = windows
                .iter()
                .filter(|((b, m), _)| *b == block && *m == mode)
                .map(|(_, w)| w)
                .collect();
            if ws.is_empty() {
                continue;
            }
            let audio_s =
                ws.iter().map(|w| w.audio_frames).sum::<u64>() as f64 / SAMPLE_RATE as f64;
            let plugin_s = ws.iter().map(|w| w.plugin_ns).sum::<u64>() as f64 / 1e9;
            let workers_s: Vec<f64> = (0..4)
                .map(|i| {
                    ws.iter()
                        .map(|w| w.worker_ns.get(i).copied().unwrap_or(0))
                        .sum::<u64>() as f64
                        / 1e9
                })
                .collect();
            let cpu = (plugin_s + workers_s.iter().sum::<f64>()) / audio_s;
            if mode == Mode::InProcess {
                in_process_cpu.insert(block, cpu);
            }
            let times = Summary::new(
                ws.iter()
                    .flat_map(|w| w.block_ns.iter().map(|ns| ns / 1e3))
                    .collect(),
            );
            // Lockstep minus the mean of its two slots' workers: the estimate of one worker's
            // cost, to compare with the stopped-standby measurement.
            let single_worker_by_subtraction = (mode == Mode::Lockstep)
                .then(|| cpu - (workers_s[0] + workers_s[1]) / 2.0 / audio_s);
            // Eco against isolation without failover, measured in the same run.
            let cpu_vs_single_worker = (mode == Mode::Eco)
                .then(|| {
                    out.iter()
                        .find(|r| r.mode == Mode::SingleWorker && r.block == block)
                        .map(|single| cpu / single.cpu_per_audio_s)
                })
                .flatten();
            let blocks = audio_s * SAMPLE_RATE as f64 / block as f64;
            let sum = |f: fn(&Window) -> u64| ws.iter().map(|w| f(w)).sum::<u64>() as f64;
            let threads = ThreadSplit {
                host_thread: sum(|w| w.host.run_ns) / 1e9 / audio_s,
                supervisor_thread: sum(|w| w.supervisor.run_ns) / 1e9 / audio_s,
                host_switches_per_block: sum(|w| w.host.slices) / blocks,
                supervisor_switches_per_block: sum(|w| w.supervisor.slices) / blocks,
                worker_switches_per_block: sum(|w| w.worker_slices) / blocks,
            };
            out.push(OverheadRecord {
                mode,
                block,
                cpu_per_audio_s: cpu,
                cpu_vs_in_process: in_process_cpu.get(&block).map(|base| cpu / base),
                cpu_vs_single_worker,
                cpu_parts_per_audio_s: CpuParts {
                    plugin_process: plugin_s / audio_s,
                    workers: workers_s.iter().map(|s| s / audio_s).collect(),
                },
                audio_thread_us: times.quantiles(),
                xrun_frames: ws.iter().map(|w| w.xrun_frames).sum(),
                workers_started_per_audio_s: ws.iter().map(|w| w.workers_started).sum::<usize>()
                    as f64
                    / audio_s,
                overruns: ws.iter().map(|w| w.overruns).sum(),
                audio_seconds: audio_s,
                single_worker_by_subtraction,
                threads: Some(threads),
                wake_latency_us: (mode == Mode::InProcessWoken)
                    .then(|| pooled(&ws, |w| &w.wake_latency_us)),
                wake_syscall_us: (mode == Mode::InProcessWoken)
                    .then(|| pooled(&ws, |w| &w.wake_syscall_us)),
            });
        }
    }
    out
}
