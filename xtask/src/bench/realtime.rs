//! `cargo xtask bench realtime [--seconds N] [--block N]`: a simulated host calling `process()`
//! on a real period clock, in twenty-four scenarios: blocks of 64 and 256 frames, latency 0 and
//! one block, without and with CPU pressure, without and with a SIGKILL of the serving worker
//! every two seconds; the scenarios with kills run in both protections (Lockstep, then Eco, whose
//! serving worker is the active one), the others in Lockstep.
//!
//! The host thread sleeps on an absolute `clock_nanosleep` period clock at `SCHED_FIFO` (when
//! granted), like a DAW's audio thread. The engine is activated before the thread raises its
//! priority, as a DAW activates plugins on its main thread, so the supervisor runs at normal
//! priority. Pressure is one busy-spinning thread per core at normal priority. A killer thread,
//! also at normal priority, sends SIGKILL to the worker the audio thread served its last block
//! from, every two seconds, whenever the engine is back in lockstep.
//!
//! Counted per scenario: xrun frames (the fallback's frames, `BlockReport::fallback_frames`),
//! overruns (callbacks that returned after the end of their period), failovers
//! (`stats().failures`), and frames that differ from the in-process reference render of the
//! same recorded input. Kills also give detection and rebuild samples.

use super::host::{self, now_ns, Phrase, Recording};
use super::schema::{self, BenchFile, Machine, Protection};
use super::{flag, Summary};
use anyhow::{Context, Result};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tandem::engine::{Engine, EngineConfig, EngineEvent, ProcessMode, Tuning};

const SAMPLE_RATE: f32 = 48_000.0;

/// Seconds between kills in the scenarios with kills.
const KILL_EVERY_S: u64 = 2;

/// One scenario's settings.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    protection: Protection,
    block: usize,
    latency: u32,
    pressure: bool,
    kills: bool,
}

/// What the host thread shares with the killer thread.
#[derive(Default)]
struct Live {
    serving_pid: AtomicU32,
    /// [`Engine::settled`]: a kill now is covered.
    protected: AtomicBool,
    stop: AtomicBool,
    /// (pid, CLOCK_MONOTONIC ns when the kill returned, ns when our own pidfd on it became
    /// readable, as seen by the normal-priority killer thread polling it).
    kills: Mutex<Vec<(u32, u64, u64)>>,
}

fn killer(live: Arc<Live>) {
    // Above the workers (so a dying worker cannot preempt us between the kill and reading the
    // clock) and below the host thread.
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: sched_setscheduler on the calling thread (0) with a param we own.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    let mut next = now_ns() + KILL_EVERY_S * 1_000_000_000;
    loop {
        // Sleep in short steps so the end of the scenario is not held up.
        while now_ns() < next {
            if live.stop.load(Ordering::Relaxed) {
                return;
            }
            host::sleep_until((now_ns() + 20_000_000).min(next));
        }
        next += KILL_EVERY_S * 1_000_000_000;
        if !live.protected.load(Ordering::Acquire) {
            continue;
        }
        let pid = live.serving_pid.load(Ordering::Acquire);
        if let Some(pidfd) = host::kill_child(pid) {
            let at = now_ns();
            let gone = if host::exited(&pidfd, 1000) {
                now_ns()
            } else {
                u64::MAX
            };
            live.kills.lock().expect("kill log").push((pid, at, gone));
        }
    }
}

fn run_scenario(worker: &std::path::Path, s: Scenario, seconds: f64) -> Result<schema::Scenario> {
    let config = EngineConfig {
        sample_rate: SAMPLE_RATE,
        max_block: s.block,
        latency: s.latency,
        mode: ProcessMode::Realtime,
        protection: s.protection.into(),
        worker_path: worker.to_path_buf(),
    };
    let pressure = host::Pressure::start(if s.pressure { host::cores() } else { 0 });
    let mut engine = Engine::activate_with(config, Tuning::default())?;
    // Start the clock once the workers are up, so the figures are about steady state and not
    // about the first exec.
    let up_since = now_ns();
    while !engine.settled() {
        anyhow::ensure!(
            now_ns() - up_since < 5_000_000_000,
            "the engine did not come up"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let live = Arc::new(Live::default());
    let killer = s.kills.then(|| {
        let live = live.clone();
        std::thread::Builder::new()
            .name("killer".into())
            .spawn(move || killer(live))
            .expect("spawning the killer thread")
    });
    let realtime = host::try_realtime_priority();
    let period_ns = (s.block as f64 / SAMPLE_RATE as f64 * 1e9) as u64;
    let blocks = (seconds * SAMPLE_RATE as f64 / s.block as f64).ceil() as usize;
    let mut phrase = Phrase::new(SAMPLE_RATE);
    let mut recording = Recording::with_capacity(blocks * s.block);
    let (mut l, mut r) = (vec![0.0; s.block], vec![0.0; s.block]);
    let mut process_us = Vec::with_capacity(blocks);
    let mut late_us = Vec::with_capacity(blocks);
    let (mut xrun_frames, mut overruns) = (0u64, 0u64);
    let mut xrun_at_s = Vec::new();
    let steal0 = host::steal_ms();
    let start_ns = now_ns() + period_ns;
    let mut t = start_ns;
    for b in 0..blocks {
        host::sleep_until(t);
        late_us.push(now_ns().saturating_sub(t) as f64 / 1e3);
        let (fallback, ns) = recording.process_timed(&mut engine, &mut phrase, [&mut l, &mut r]);
        process_us.push(ns as f64 / 1e3);
        xrun_frames += fallback as u64;
        if fallback > 0 && xrun_at_s.len() < 32 {
            xrun_at_s.push(b as f64 * s.block as f64 / SAMPLE_RATE as f64);
        }
        overruns += (now_ns() > t + period_ns) as u64;
        let slot = engine.serving_slot();
        live.serving_pid
            .store(engine.worker_pid(slot).unwrap_or(0), Ordering::Release);
        live.protected.store(engine.settled(), Ordering::Release);
        t += period_ns;
    }
    let steal_ms = host::steal_ms() - steal0;
    if realtime {
        host::normal_priority();
    }
    live.stop.store(true, Ordering::Relaxed);
    if let Some(k) = killer {
        k.join().map_err(|_| anyhow::anyhow!("killer panicked"))?;
    }
    drop(pressure);
    let failovers = engine.stats().failures.load(Ordering::Relaxed);
    let killed: Vec<u32> = live
        .kills
        .lock()
        .expect("kill log")
        .iter()
        .map(|k| k.0)
        .collect();
    let counted_xruns = engine.stats().xrun_frames.load(Ordering::Relaxed);
    // Let the supervisor log the last rebuild before reading its events.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let events = engine.drain_events();
    drop(engine);
    // Failures we did not cause, word for word, so a surprise can be traced.
    let other_failures: Vec<String> = events
        .iter()
        .filter(|e| match e {
            EngineEvent::WorkerDied { pid, .. } => !killed.contains(pid),
            EngineEvent::WorkerEvicted { .. }
            | EngineEvent::StateLost { .. }
            | EngineEvent::SpawnFailed { .. } => true,
            _ => false,
        })
        .map(|e| e.to_string())
        .collect();
    let mismatched = recording.differing_frames(SAMPLE_RATE, s.block, s.latency)?;
    let kills = live.kills.lock().expect("kill log").clone();
    let (mut detection_us, mut rebuild_ms) = (Vec::new(), Vec::new());
    let exit_us: Vec<f64> = kills
        .iter()
        .filter(|k| k.2 != u64::MAX)
        .map(|(_, at, gone)| gone.saturating_sub(*at) as f64 / 1e3)
        .collect();
    let kill_at_s: Vec<f64> = kills
        .iter()
        .map(|k| k.1.saturating_sub(start_ns) as f64 / 1e9)
        .collect();
    for (pid, at, _) in &kills {
        let died = events.iter().find_map(|e| match e {
            EngineEvent::WorkerDied {
                pid: p,
                slot,
                detected_ns,
                ..
            } if p == pid => Some((*slot, *detected_ns)),
            _ => None,
        });
        let Some((slot, detected)) = died else {
            continue;
        };
        detection_us.push(detected.saturating_sub(*at) as f64 / 1e3);
        // Lockstep rebuilds the lost slot; Eco's standby takes over in the other one.
        let eco = s.protection == Protection::Eco;
        let verified = events.iter().find_map(|e| match e {
            EngineEvent::WorkerVerified { slot: s, at_ns, .. }
                if (*s == slot || eco) && *at_ns >= detected =>
            {
                Some(*at_ns)
            }
            _ => None,
        });
        if let Some(v) = verified {
            rebuild_ms.push(v.saturating_sub(*at) as f64 / 1e6);
        }
    }
    let process = Summary::new(process_us);
    let late = Summary::new(late_us);
    let detection = Summary::new(detection_us.clone());
    let rebuild = Summary::new(rebuild_ms.clone());
    Ok(schema::Scenario {
        protection: s.protection,
        block: s.block,
        latency: s.latency,
        pressure: s.pressure,
        kills: s.kills,
        xrun_frames,
        overruns,
        failovers,
        mismatched_frames: mismatched,
        blocks,
        kills_sent: kills.len(),
        xrun_frames_by_stats: counted_xruns,
        realtime_priority: realtime,
        steal_ms,
        xrun_at_s,
        kill_at_s,
        other_failures,
        process_us: process.quantiles(),
        wake_late_us: late.quantiles(),
        detection_us: detection.quantiles(),
        rebuild_ms: rebuild.quantiles(),
        detection_us_samples: detection_us,
        exit_seen_us_samples: exit_us,
        rebuild_ms_samples: rebuild_ms,
    })
}

/// Entry point.
pub fn run(args: &[String]) -> Result<()> {
    let seconds: f64 = flag(args, "--seconds", 60.0)?;
    let only_block: usize = flag(args, "--block", 0)?;
    // `--only BLOCK,LATENCY,PRESSURE,KILLS` (0/1 for the booleans) runs one scenario (with
    // kills, in both protections).
    let only: Option<Vec<usize>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect());
    let worker = host::build_worker()?;
    let mut scenarios = Vec::new();
    for block in [64usize, 256] {
        if only_block != 0 && block != only_block {
            continue;
        }
        for latency in [0, block as u32] {
            for pressure in [false, true] {
                for kills in [false, true] {
                    let key = [block, latency as usize, pressure as usize, kills as usize];
                    if only.as_ref().is_some_and(|o| o[..] != key[..]) {
                        continue;
                    }
                    let protections: &[Protection] = if kills {
                        &Protection::ALL
                    } else {
                        &[Protection::Lockstep]
                    };
                    for &protection in protections {
                        scenarios.push(Scenario {
                            protection,
                            block,
                            latency,
                            pressure,
                            kills,
                        });
                    }
                }
            }
        }
    }
    println!(
        "realtime: {} scenarios of {seconds} s, 16 voices, {} pressure threads when on",
        scenarios.len(),
        host::cores()
    );
    println!(
        "{:>8} {:>5} {:>7} {:>8} {:>5} {:>10} {:>8} {:>9} {:>10} {:>9} {:>9}",
        "protect",
        "block",
        "latency",
        "pressure",
        "kills",
        "xrun frm",
        "overruns",
        "failovers",
        "mismatched",
        "p99 us",
        "max us"
    );
    let mut results = Vec::new();
    for s in scenarios {
        let worker = worker.clone();
        // Each scenario on its own thread: its priority changes end with it.
        let r = std::thread::Builder::new()
            .name("host".into())
            .spawn(move || run_scenario(&worker, s, seconds))?
            .join()
            .map_err(|_| anyhow::anyhow!("the host thread panicked"))?
            .with_context(|| format!("scenario {s:?}"))?;
        println!(
            "{:>8} {:>5} {:>7} {:>8} {:>5} {:>10} {:>8} {:>9} {:>10} {:>9.1} {:>9.1}",
            s.protection.name(),
            s.block,
            s.latency,
            s.pressure,
            s.kills,
            r.xrun_frames,
            r.overruns,
            r.failovers,
            r.mismatched_frames,
            r.process_us.p99,
            r.process_us.max,
        );
        results.push(r);
    }
    let json = schema::Realtime {
        seconds,
        sample_rate: SAMPLE_RATE,
        voices: 16,
        pressure_threads: host::cores(),
        kill_every_s: KILL_EVERY_S,
        scenarios: results,
        machine: Machine::this(),
        command: if only_block == 0 {
            format!("cargo xtask bench realtime --seconds {seconds}")
        } else {
            format!("cargo xtask bench realtime --seconds {seconds} --block {only_block}")
        },
    };
    let path = json.write()?;
    println!("wrote {}", path.display());
    Ok(())
}
