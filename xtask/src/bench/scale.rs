//! `cargo xtask bench scale [--seconds S] [--counts 1,4,16,32] [--pressure T]`: many instances in
//! one process, as a session with many tracks has them; with `--pressure`, T busy-spinning
//! threads compete for the cores throughout (an overloaded machine: honest workers starve, and
//! `failure_reasons` says whether any was evicted for it).
//!
//! For each count N, on one thread: activate N engines one after the other (spawn time per
//! instance: the `activate` call, which creates the shared memory and starts both workers, and
//! the time until both are verified), drive them all for a second, then measure
//!
//! - memory per instance: the proportional set size (PSS, `/proc/<pid>/smaps_rollup`) of every
//!   worker, plus the growth of this process's own PSS since before the first activation, over
//!   N. PSS splits each shared page between the processes that map it, so the shared-memory
//!   rings (mapped by the plugin and its workers) and the worker executable's pages (shared by
//!   every worker) are each counted once in the sum, never twice. The DSP's own state is
//!   measured the same way, as the PSS growth of N in-process [`ReferenceEngine`]s;
//! - idle CPU: no `process()` call for S seconds; every process's CPU (this one's `getrusage`,
//!   each worker's `/proc/<pid>/task/*/schedstat`) per wall second;
//! - xruns at 256 frames (latency one block, the default): one host thread on a period clock
//!   (`SCHED_FIFO` when granted) calls every instance's `process()` in turn each period, for S
//!   seconds, the 16-voice passage in every instance.

use super::host::{self, now_ns, Phrase};
use super::schema::{self, BenchFile, CpuParts, Machine, ScaleResult};
use super::{flag, Summary};
use anyhow::{Context, Result};
use std::sync::atomic::Ordering;
use tandem::engine::{Engine, EngineConfig, EngineEvent, ProcessMode, ReferenceEngine, Tuning};

const SAMPLE_RATE: f32 = 48_000.0;
const BLOCK: usize = 256;

fn self_pss() -> u64 {
    host::pss_kib("self").unwrap_or(0)
}

/// PSS growth per instance of `n` in-process reference engines that have rendered a second.
fn dsp_state_kib(n: usize) -> Result<f64> {
    let before = self_pss();
    let mut engines = (0..n)
        .map(|_| ReferenceEngine::new(SAMPLE_RATE, BLOCK, BLOCK as u32))
        .collect::<Result<Vec<_>, _>>()?;
    let (mut l, mut r) = (vec![0.0; BLOCK], vec![0.0; BLOCK]);
    for e in &mut engines {
        let mut phrase = Phrase::new(SAMPLE_RATE);
        for _ in 0..SAMPLE_RATE as usize / BLOCK {
            let (events, params) = phrase.block(BLOCK);
            e.process(events, params, None, [&mut l, &mut r]);
        }
    }
    let grown = self_pss().saturating_sub(before);
    drop(engines);
    Ok(grown as f64 / n as f64)
}

/// Every engine's worker processes, its spare included.
fn all_pids(engines: &[Engine]) -> Vec<u32> {
    engines
        .iter()
        .flat_map(|e| e.worker_pids().into_iter().chain(e.spare_pid()))
        .collect()
}

/// CPU of this process plus every listed worker, in ns.
fn cpu_now(pids: &[u32]) -> (u64, Vec<u64>) {
    (
        host::self_cpu_ns(),
        pids.iter()
            .map(|&p| host::pid_cpu_ns(p).unwrap_or(0))
            .collect(),
    )
}

fn cpu_since(pids: &[u32], before: &(u64, Vec<u64>)) -> (f64, f64) {
    let (plugin, workers) = cpu_now(pids);
    let workers: u64 = workers
        .iter()
        .zip(&before.1)
        .map(|(a, b)| a.saturating_sub(*b))
        .sum();
    ((plugin - before.0) as f64 / 1e9, workers as f64 / 1e9)
}

/// Drives every engine for `blocks` periods from this thread; returns (xrun frames, overruns,
/// wall-clock ns of `process()` per period for all instances together).
fn drive(engines: &mut [Engine], phrases: &mut [Phrase], blocks: usize) -> (u64, u64, Vec<f64>) {
    let period_ns = (BLOCK as f64 / SAMPLE_RATE as f64 * 1e9) as u64;
    let (mut l, mut r) = (vec![0.0; BLOCK], vec![0.0; BLOCK]);
    let (mut xruns, mut overruns) = (0u64, 0u64);
    let mut per_period = Vec::with_capacity(blocks);
    let mut t = now_ns() + period_ns;
    for _ in 0..blocks {
        host::sleep_until(t);
        let t0 = now_ns();
        for (e, p) in engines.iter_mut().zip(phrases.iter_mut()) {
            let (events, params) = p.block(BLOCK);
            xruns += e
                .process(events, params, None, [&mut l, &mut r])
                .fallback_frames as u64;
        }
        let t1 = now_ns();
        per_period.push((t1 - t0) as f64 / 1e3);
        overruns += (t1 > t + period_ns) as u64;
        t += period_ns;
    }
    (xruns, overruns, per_period)
}

fn measure(
    worker: &std::path::Path,
    n: usize,
    seconds: f64,
    dsp_kib: f64,
    pressure: usize,
) -> Result<ScaleResult> {
    let _pressure = host::Pressure::start(pressure);
    let config = EngineConfig {
        sample_rate: SAMPLE_RATE,
        max_block: BLOCK,
        latency: BLOCK as u32,
        mode: ProcessMode::Realtime,
        protection: tandem::engine::Protection::Lockstep,
        worker_path: worker.to_path_buf(),
    };
    let pss_before = self_pss();
    let mut engines = Vec::with_capacity(n);
    let mut activate_ms = Vec::with_capacity(n);
    let mut ready_ms = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = now_ns();
        let engine = Engine::activate_with(config.clone(), Tuning::default())
            .context("activating an instance")?;
        activate_ms.push((now_ns() - t0) as f64 / 1e6);
        while !engine.in_lockstep() {
            anyhow::ensure!(now_ns() - t0 < 5_000_000_000, "an instance did not come up");
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        ready_ms.push((now_ns() - t0) as f64 / 1e6);
        engines.push(engine);
    }
    let mut phrases: Vec<Phrase> = (0..n).map(|_| Phrase::new(SAMPLE_RATE)).collect();
    let realtime = host::try_realtime_priority();
    // Warm up: every page the rings use gets touched.
    drive(&mut engines, &mut phrases, SAMPLE_RATE as usize / BLOCK + 1);
    if realtime {
        host::normal_priority();
    }
    let pids = all_pids(&engines);
    let worker_pss: u64 = pids
        .iter()
        .map(|p| host::pss_kib(&p.to_string()).unwrap_or(0))
        .sum();
    let plugin_pss = self_pss().saturating_sub(pss_before);
    let per_instance_kib = (worker_pss + plugin_pss) as f64 / n as f64;

    // Idle: nobody calls process().
    let idle_before = cpu_now(&pids);
    let idle_t0 = now_ns();
    std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
    let idle_wall = (now_ns() - idle_t0) as f64 / 1e9;
    let (idle_plugin, idle_workers) = cpu_since(&pids, &idle_before);

    // Busy: one host thread drives every instance.
    let failures0: u64 = engines
        .iter()
        .map(|e| e.stats().failures.load(Ordering::Relaxed))
        .sum();
    let blocks = (seconds * SAMPLE_RATE as f64 / BLOCK as f64).ceil() as usize;
    let busy_before = cpu_now(&pids);
    let steal0 = host::steal_ms();
    let realtime = host::try_realtime_priority();
    let (xrun_frames, overruns, per_period) = drive(&mut engines, &mut phrases, blocks);
    if realtime {
        host::normal_priority();
    }
    let steal_ms = host::steal_ms() - steal0;
    let (busy_plugin, busy_workers) = cpu_since(&pids, &busy_before);
    let audio_s = (blocks * BLOCK) as f64 / SAMPLE_RATE as f64;
    let failures: u64 = engines
        .iter()
        .map(|e| e.stats().failures.load(Ordering::Relaxed))
        .sum::<u64>()
        - failures0;
    // Why workers failed while driven (an overloaded machine starves them).
    let mut reasons = std::collections::BTreeMap::<String, u64>::new();
    for e in &engines {
        for event in e.drain_events() {
            let reason = match &event {
                EngineEvent::WorkerDied { cause, .. } => format!("died: {cause}"),
                EngineEvent::WorkerEvicted { .. } => {
                    let text = event.to_string();
                    text.split_once("evicted: ")
                        .map_or(text.clone(), |(_, why)| format!("evicted: {why}"))
                }
                _ => continue,
            };
            *reasons.entry(reason).or_default() += 1;
        }
    }
    let t0 = now_ns();
    drop(engines);
    let teardown_ms = (now_ns() - t0) as f64 / 1e6;
    let activate = Summary::new(activate_ms);
    let ready = Summary::new(ready_ms);
    Ok(ScaleResult {
        instances: n,
        activate_ms: activate.quantiles(),
        ready_ms: ready.quantiles(),
        memory_per_instance_kib: per_instance_kib,
        memory_beyond_dsp_kib: per_instance_kib - dsp_kib,
        workers_pss_kib: worker_pss,
        plugin_pss_growth_kib: plugin_pss,
        idle_cpu_per_s: (idle_plugin + idle_workers) / idle_wall,
        idle_cpu_per_s_per_instance: (idle_plugin + idle_workers) / idle_wall / n as f64,
        idle_cpu_parts_per_s: CpuParts {
            plugin_process: idle_plugin / idle_wall,
            workers: idle_workers / idle_wall,
        },
        xrun_frames,
        overruns,
        failovers: failures,
        failure_reasons: reasons,
        blocks,
        busy_cpu_per_audio_s: (busy_plugin + busy_workers) / audio_s,
        busy_cpu_parts_per_audio_s: CpuParts {
            plugin_process: busy_plugin / audio_s,
            workers: busy_workers / audio_s,
        },
        host_us_per_period: Summary::new(per_period).quantiles(),
        steal_ms,
        teardown_ms,
        realtime_priority: realtime,
    })
}

/// Entry point.
pub fn run(args: &[String]) -> Result<()> {
    let seconds: f64 = flag(args, "--seconds", 4.0)?;
    let pressure: usize = flag(args, "--pressure", 0)?;
    let counts: Vec<usize> = args
        .iter()
        .position(|a| a == "--counts")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4, 16, 32]);
    let worker = host::build_worker()?;
    let max = counts.iter().copied().max().unwrap_or(1);
    let (dsp_kib, results) = std::thread::Builder::new()
        .name("host".into())
        .spawn(move || -> Result<(f64, Vec<ScaleResult>)> {
            let dsp_kib = dsp_state_kib(max.max(8))?;
            let mut out = Vec::new();
            for &n in &counts {
                eprintln!("  {n} instances...");
                out.push(measure(&worker, n, seconds, dsp_kib, pressure)?);
            }
            Ok((dsp_kib, out))
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("the host thread panicked"))??;
    println!(
        "scale: blocks of {BLOCK} at latency one block, {seconds} s idle and {seconds} s busy per count"
    );
    println!("DSP's own state, in-process: {dsp_kib:.0} KiB per instance (PSS growth)");
    println!(
        "{:>9} {:>12} {:>10} {:>10} {:>12} {:>12} {:>10} {:>9} {:>9}",
        "instances",
        "activate p50",
        "p99 ms",
        "ready p99",
        "KiB/instance",
        "idle cpu %/i",
        "busy cpu",
        "xrun frm",
        "overruns"
    );
    for r in &results {
        println!(
            "{:>9} {:>12.2} {:>10.2} {:>10.2} {:>12.0} {:>12.3} {:>10.3} {:>9} {:>9}",
            r.instances,
            r.activate_ms.p50,
            r.activate_ms.p99,
            r.ready_ms.p99,
            r.memory_per_instance_kib,
            r.idle_cpu_per_s_per_instance * 100.0,
            r.busy_cpu_per_audio_s,
            r.xrun_frames,
            r.overruns,
        );
    }
    for r in &results {
        println!(
            "{} instances, workers lost while driven: {} {:?}",
            r.instances, r.failovers, r.failure_reasons
        );
    }
    let json = schema::Scale {
        block: BLOCK,
        latency: BLOCK,
        sample_rate: SAMPLE_RATE,
        seconds,
        pressure_threads: pressure,
        dsp_state_kib_per_instance: dsp_kib,
        dsp_snapshot_bytes: dsp::Synth::new(SAMPLE_RATE, shm::chunk::MAX_CHUNK_FRAMES)
            .map(|s| s.snapshot().len())
            .unwrap_or(0),
        memory_method: "PSS of every worker plus the growth of this process's PSS, over N"
            .to_string(),
        results,
        machine: Machine::this(),
        command: format!("cargo xtask bench scale --seconds {seconds} --pressure {pressure}"),
    };
    let path = json.write()?;
    println!("wrote {}", path.display());
    Ok(())
}
