//! `cargo xtask bench failover --kills N [--no-spare] [--protection eco] [--kinds a,b]
//! [--checkpoint-frames N]` (the mode's interval, `Tuning::checkpoint_frames` or
//! `eco_checkpoint_frames`, by default): N
//! faults across every fault kind (or those listed), on a host thread that calls `process()` on
//! a real period clock; detection, switch and rebuild distributions, xruns, the declicked blocks
//! each fault cost, the frames that differ from the reference (by the fault they follow), and
//! leaks. Each fault hits the worker the audio thread serves from (in Eco, the
//! active one). Lockstep writes `failover.json`, Eco `failover-eco.json`, with the same fields.

use super::baselines::DeathBaseline;
use super::host::{self, now_ns, Phrase, Recording};
use super::schema::{self, Machine, Protection};
use super::{flag, header, Summary};
use anyhow::{bail, Result};
use shm::FaultKind;
use std::collections::BTreeMap;
use std::time::Duration;
use tandem::engine::{Engine, EngineConfig, EngineEvent, ProcessMode, Tuning};

const SAMPLE_RATE: f32 = 48_000.0;

/// The fault kinds, cycled through in this order.
const KINDS: [&str; 11] = [
    "sigkill",
    "segv",
    "sigabrt",
    "abort",
    "panic",
    "sigterm",
    "exit0",
    "sigstop",
    "loop",
    "badfields",
    "nan",
];

/// One fault and what became of it.
struct Trial {
    /// The first frame of the block after the fault.
    frame: u64,
    kind: &'static str,
    pid: u32,
    slot: usize,
    fault_ns: u64,
    /// Whether `fault_ns` is the moment of death (a signal), not just the request.
    signalled: bool,
}

fn commit(engine: &Engine, kind: &str) -> Trial {
    let slot = engine.serving_slot();
    let pid = engine.worker_pid(slot).unwrap_or(0);
    let signal = match kind {
        "sigkill" => Some(libc::SIGKILL),
        "sigabrt" => Some(libc::SIGABRT),
        "sigterm" => Some(libc::SIGTERM),
        "sigstop" => Some(libc::SIGSTOP),
        _ => None,
    };
    let code = match kind {
        "segv" => FaultKind::Segv,
        "abort" => FaultKind::Abort,
        "panic" => FaultKind::Panic,
        "exit0" => FaultKind::Exit0,
        "loop" => FaultKind::InfiniteLoop,
        "badfields" => FaultKind::BadFields,
        _ => FaultKind::NaN,
    };
    match signal {
        // SAFETY: kill(2) on a worker pid we own; no memory is involved.
        Some(sig) => unsafe {
            libc::kill(pid as i32, sig);
        },
        None => engine.inject_fault(slot, code as u32, 0),
    }
    Trial {
        frame: engine.frames_posted(),
        kind: KINDS.iter().find(|k| **k == kind).copied().unwrap_or("?"),
        pid,
        slot,
        fault_ns: now_ns(),
        signalled: signal.is_some() && kind != "sigstop",
    }
}

/// The fault kinds `--kinds a,b,...` names (every kind without it), in `KINDS`' spelling.
fn kinds_from_args(args: &[String]) -> Result<Vec<&'static str>> {
    let Some(i) = args.iter().position(|a| a == "--kinds") else {
        return Ok(KINDS.to_vec());
    };
    let list = args.get(i + 1).map_or("", String::as_str);
    list.split(',')
        .map(|k| match KINDS.iter().find(|known| **known == k) {
            Some(known) => Ok(*known),
            None => bail!(
                "--kinds: unknown fault kind {k:?} (known: {})",
                KINDS.join(",")
            ),
        })
        .collect()
}

fn count_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Entry point.
pub fn run(args: &[String]) -> Result<()> {
    let kills: usize = flag(args, "--kills", 90)?;
    let block: usize = flag(args, "--block", 128)?;
    let latency: u32 = flag(args, "--latency", block as u32)?;
    let spare = !args.iter().any(|a| a == "--no-spare");
    let protection = Protection::from_args(args)?;
    let defaults = Tuning::default();
    let default_interval = match protection {
        Protection::Lockstep => defaults.checkpoint_frames,
        Protection::Eco => defaults.eco_checkpoint_frames,
    };
    let checkpoint_frames: u32 = flag(args, "--checkpoint-frames", default_interval)?;
    let kinds = kinds_from_args(args)?;
    let worker = host::build_worker()?;
    let fds_before = count_fds();
    let config = EngineConfig {
        sample_rate: SAMPLE_RATE,
        max_block: block,
        latency,
        mode: ProcessMode::Realtime,
        protection: protection.into(),
        worker_path: worker,
    };
    let realtime = host::try_realtime_priority();
    let tuning = Tuning {
        spare,
        checkpoint_frames,
        eco_checkpoint_frames: checkpoint_frames,
        ..defaults
    };
    let mut engine = Engine::activate_with(config, tuning)?;
    // Started from this thread after the engine, as the engine starts its supervisor.
    let baseline = DeathBaseline::start()?;
    let steal_before = host::steal_ms();
    let period_ns = (block as f64 / SAMPLE_RATE as f64 * 1e9) as u64;
    let mut phrase = Phrase::new(SAMPLE_RATE);
    let mut recording = Recording::with_capacity(SAMPLE_RATE as usize * 60);
    let (mut l, mut r) = (vec![0.0; block], vec![0.0; block]);
    let mut trials: Vec<Trial> = Vec::new();
    let mut events: Vec<EngineEvent> = Vec::new();
    let mut next_fault_block = 200u64;
    let mut rng = test_support::Rng::new(0);
    // The first posted frame and the fallback frames of every block.
    let mut blocks: Vec<(u64, u32)> = Vec::new();
    let mut t = now_ns();
    let max_blocks = 200 + kills as u64 * 400;
    let mut b = 0u64;
    loop {
        t += period_ns;
        host::sleep_until(t);
        let posted = engine.frames_posted();
        let fallback = recording.process(&mut engine, &mut phrase, [&mut l, &mut r]);
        blocks.push((posted, fallback));
        b += 1;
        // Settled once the faulty worker has left its slot (detected and removed; in Eco an
        // audit may retire it first, which counts no failure) and the engine is whole again.
        let target_gone = trials
            .last()
            .is_none_or(|t| (0..2).all(|s| engine.worker_pid(s) != Some(t.pid)));
        let settled = engine.settled() && target_gone;
        if b >= next_fault_block && settled {
            if trials.len() == kills {
                break;
            }
            let kind = kinds[trials.len() % kinds.len()];
            // Land the fault at a random moment inside the period: before, during or after
            // the workers render the chunk just posted.
            host::sleep_until(now_ns() + rng.below(period_ns / 2));
            trials.push(commit(&engine, kind));
            next_fault_block = b + 40 + rng.below(40);
        } else if b + 10 == next_fault_block {
            // The detection baseline, at a random moment inside the period as the faults are,
            // between them (a skipped kill, while the child starts, only costs a sample).
            host::sleep_until(now_ns() + rng.below(period_ns / 2));
            baseline.kill();
        }
        if b.is_multiple_of(256) {
            events.extend(engine.drain_events());
        }
        if b > max_blocks {
            events.extend(engine.drain_events());
            let log: Vec<String> = events.iter().map(|e| e.to_string()).collect();
            bail!(
                "the engine did not settle after {} trials: {log:#?}",
                trials.len()
            );
        }
    }
    // A little more audio after the last recovery, then stop.
    for _ in 0..50 {
        t += period_ns;
        host::sleep_until(t);
        recording.process(&mut engine, &mut phrase, [&mut l, &mut r]);
    }
    events.extend(engine.drain_events());
    let baseline_us = baseline.finish();
    let steal_ms = host::steal_ms().saturating_sub(steal_before);
    let xrun_frames = engine
        .stats()
        .xrun_frames
        .load(std::sync::atomic::Ordering::Relaxed);
    let spawned: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::WorkerSpawned { pid, .. } | EngineEvent::SpareSpawned { pid, .. } => {
                Some(*pid)
            }
            _ => None,
        })
        .collect();
    drop(engine);
    std::thread::sleep(Duration::from_millis(100));
    let leaked_processes = spawned
        .iter()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .count();
    let leaked_fds = count_fds().saturating_sub(fds_before);
    let differing = recording.differing_frame_list(SAMPLE_RATE, block, latency)?;
    let gap = differing.len() as u64;
    // Each differing frame belongs to the last fault committed in or before its block.
    let mut gap_by_kind: BTreeMap<String, u64> = KINDS.iter().map(|k| (k.to_string(), 0)).collect();
    for &frame in &differing {
        let kind = trials
            .iter()
            .rev()
            .find(|t| t.frame <= frame + block as u64)
            .map_or("none", |t| t.kind);
        *gap_by_kind.entry(kind.to_string()).or_default() += 1;
    }

    // Match each trial with the supervisor's view of it.
    let mut detection_us = Vec::new();
    let mut hang_detection_ms = Vec::new();
    let mut rebuild_ms = Vec::new();
    let mut per_kind: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let (mut declicked_hang, mut declicked_crash) = (Vec::new(), Vec::new());
    for (i, trial) in trials.iter().enumerate() {
        // The blocks posted from the fault to the next one (or the end) that needed the fallback.
        let until = trials.get(i + 1).map_or(u64::MAX, |t| t.frame);
        let declicked = blocks
            .iter()
            .filter(|(at, fallback)| (trial.frame..until).contains(at) && *fallback > 0)
            .count() as f64;
        if matches!(trial.kind, "sigstop" | "loop") {
            declicked_hang.push(declicked);
        } else {
            declicked_crash.push(declicked);
        }
        let detected = events.iter().find_map(|e| match e {
            EngineEvent::WorkerDied {
                pid, detected_ns, ..
            }
            | EngineEvent::WorkerEvicted {
                pid, detected_ns, ..
            } if *pid == trial.pid => Some(*detected_ns),
            _ => None,
        });
        let Some(detected) = detected else { continue };
        // Lockstep rebuilds the lost slot; Eco's standby takes over in the other one.
        let verified = events.iter().find_map(|e| match e {
            EngineEvent::WorkerVerified { slot, at_ns, .. }
                if (*slot == trial.slot || protection == Protection::Eco) && *at_ns >= detected =>
            {
                Some(*at_ns)
            }
            _ => None,
        });
        let since = detected.saturating_sub(trial.fault_ns);
        if trial.signalled {
            detection_us.push(since as f64 / 1e3);
        } else if matches!(trial.kind, "sigstop" | "loop") {
            hang_detection_ms.push(since as f64 / 1e6);
        }
        if let Some(v) = verified {
            let start = if trial.signalled {
                trial.fault_ns
            } else {
                detected
            };
            let ms = v.saturating_sub(start) as f64 / 1e6;
            rebuild_ms.push(ms);
            per_kind.entry(trial.kind).or_default().push(ms);
        }
    }
    let switch_ns: Vec<f64> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Switched { switch_ns, .. } => Some(*switch_ns as f64),
            _ => None,
        })
        .collect();
    let detection = Summary::new(detection_us);
    let baseline = Summary::new(baseline_us);
    let hang = Summary::new(hang_detection_ms);
    let rebuild = Summary::new(rebuild_ms);
    let switch = Summary::new(switch_ns);
    let declicked_hang = Summary::new(declicked_hang);
    let declicked_crash = Summary::new(declicked_crash);

    println!(
        "failover: {} trials, {}, block {block}, latency {latency}, spare {}, checkpoint every \
         {checkpoint_frames} frames, realtime priority {}",
        trials.len(),
        protection.name(),
        if spare { "on" } else { "off" },
        if realtime { "granted" } else { "not granted" }
    );
    println!("{}", header());
    println!("{}", detection.row("detection (crash)", "us"));
    println!("{}", baseline.row("  baseline", "us"));
    println!("{}", hang.row("detection (hang)", "ms"));
    println!("{}", switch.row("switch", "ns"));
    println!("{}", rebuild.row("rebuild", "ms"));
    println!("{}", declicked_hang.row("declicked (hang)", "blocks"));
    println!("{}", declicked_crash.row("declicked (other)", "blocks"));
    for (kind, samples) in &per_kind {
        println!(
            "{}",
            Summary::new(samples.clone()).row(&format!("  rebuild {kind}"), "ms")
        );
    }
    for e in &events {
        if let EngineEvent::Xrun { frames, at_frame } = e {
            let last = trials.iter().rev().find(|t| t.frame <= *at_frame);
            let after = last.map_or("no fault".into(), |t| format!("{} at {}", t.kind, t.frame));
            println!("  xrun: {frames} frames at frame {at_frame} (after {after})");
        }
    }
    println!(
        "detection against its baseline (an idle child's death word, killed between the \
         faults): p50 {:.2}x, p99 {:.2}x",
        detection.quantile(0.5) / baseline.quantile(0.5),
        detection.quantile(0.99) / baseline.quantile(0.99)
    );
    println!("gap frames (vs reference): {gap}");
    for (kind, frames) in &gap_by_kind {
        println!("  after {kind}: {frames}");
    }
    println!("xrun frames: {xrun_frames}");
    println!("hypervisor steal during the run: {steal_ms} ms");
    println!("leaked fds: {leaked_fds}, leaked processes: {leaked_processes}");
    println!("prototype (Python): detection 2.97 ms, switch 9 us, rebuild 3-4 ms");
    let json = schema::Failover {
        protection,
        trials: trials.len(),
        block,
        latency,
        sample_rate: SAMPLE_RATE,
        realtime_priority: realtime,
        gap_frames_total: gap,
        gap_frames_by_kind: gap_by_kind,
        detection_us: detection.quantiles(),
        detection_baseline_us: baseline.quantiles(),
        hang_detection_ms: hang.quantiles(),
        switch_ns: switch.quantiles(),
        rebuild_ms: rebuild.quantiles(),
        rebuild_ms_by_kind: per_kind
            .iter()
            .map(|(k, v)| (k.to_string(), Summary::new(v.clone()).quantiles()))
            .collect(),
        declicked_blocks_per_hang: declicked_hang.quantiles(),
        declicked_blocks_per_crash: declicked_crash.quantiles(),
        xruns: xrun_frames,
        steal_ms,
        leaked_fds,
        leaked_processes,
        machine: Machine::this(),
        command: format!(
            "cargo xtask bench failover --kills {kills} --block {block} --latency {latency}{}{}{}{}",
            if spare { "" } else { " --no-spare" },
            if checkpoint_frames == default_interval {
                String::new()
            } else {
                format!(" --checkpoint-frames {checkpoint_frames}")
            },
            if kinds == KINDS {
                String::new()
            } else {
                format!(" --kinds {}", kinds.join(","))
            },
            match protection {
                Protection::Lockstep => "",
                Protection::Eco => " --protection eco",
            }
        ),
    };
    let path = json.write_for_protection()?;
    println!("wrote {}", path.display());
    Ok(())
}
