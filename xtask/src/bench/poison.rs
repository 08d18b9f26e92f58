//! `cargo xtask bench poison [--trials N] [--block N] [--latency N]`: the audible gap a
//! poisoned chunk costs. Each trial arms `CrashOnNote` for a fresh key (every worker, every
//! replay, crashes on a note-on of it) and plays that key once on a real period clock: both
//! twins die on the same chunk, the supervisor quarantines it and rebuilds without its events.
//! The gap is the fallback (declicked fade) the host heard from the note to recovery.

use super::host::{self, now_ns, Phrase};
use super::schema::{self, BenchFile, Machine};
use super::{flag, header, Summary};
use anyhow::{bail, Result};
use dsp::{Event, EventKind};
use serde::{Deserialize, Serialize};
use shm::FaultKind;
use tandem::engine::{Engine, EngineConfig, EngineEvent, ProcessMode, Tuning};

const SAMPLE_RATE: f32 = 48_000.0;

/// The gap a poisoned note may cost (issue 13): a trial over it prints the engine's log.
const GOAL_MS: f64 = 50.0;

/// `poison.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Poison {
    /// Poisoned notes played.
    pub trials: usize,
    /// Block size in frames.
    pub block: usize,
    /// Latency in frames.
    pub latency: u32,
    /// The fallback run the host heard after each poisoned note, in milliseconds (goal: under
    /// 50).
    pub gap_ms: schema::Quantiles,
    /// From the note's block to the first rebuilt worker's verification, in milliseconds.
    pub recovery_ms: schema::Quantiles,
    /// Trials the supervisor quarantined exactly one chunk for.
    pub quarantined: usize,
    /// Fallback frames in the trials' half-second windows outside the gaps.
    pub other_xrun_frames: u64,
    /// Samples that were not finite (goal: 0).
    pub non_finite_samples: u64,
    /// Whether the host thread got `SCHED_FIFO`.
    pub realtime_priority: bool,
    /// Where it ran.
    pub machine: Machine,
    /// The command that reproduces the run.
    pub command: String,
}

impl BenchFile for Poison {
    const NAME: &'static str = "poison";
}

/// Entry point.
pub fn run(args: &[String]) -> Result<()> {
    let trials: usize = flag(args, "--trials", 30)?;
    let block: usize = flag(args, "--block", 128)?;
    let latency: u32 = flag(args, "--latency", block as u32)?;
    let config = EngineConfig {
        sample_rate: SAMPLE_RATE,
        max_block: block,
        latency,
        mode: ProcessMode::Realtime,
        protection: tandem::engine::Protection::Lockstep,
        worker_path: host::build_worker()?,
    };
    let realtime = host::try_realtime_priority();
    let mut engine = Engine::activate_with(config, Tuning::default())?;
    let period_ns = (block as f64 / SAMPLE_RATE as f64 * 1e9) as u64;
    let mut phrase = Phrase::new(SAMPLE_RATE);
    let (mut l, mut r) = (vec![0.0; block], vec![0.0; block]);
    let mut events: Vec<Event> = Vec::with_capacity(64);
    let (mut gap_ms, mut recovery_ms) = (Vec::new(), Vec::new());
    let (mut quarantined, mut non_finite, mut other_xrun_frames) = (0, 0u64, 0u64);
    let mut t = now_ns();
    let mut block_at = |engine: &mut Engine, extra: Option<Event>| {
        t += period_ns;
        host::sleep_until(t);
        let (phrase_events, params) = phrase.block(block);
        events.clear();
        events.extend(extra);
        events.extend_from_slice(phrase_events);
        let report = engine.process(&events, params, None, [&mut l, &mut r]);
        let non_finite = l.iter().chain(&r).filter(|s| !s.is_finite()).count() as u64;
        (non_finite, report.fallback_frames as u64)
    };
    for trial in 0..trials {
        // Settle in lockstep, then a little more.
        let mut waited = 0;
        while !engine.in_lockstep() || waited < 100 {
            non_finite += block_at(&mut engine, None).0;
            waited += 1;
            if waited > 20_000 {
                bail!(
                    "no lockstep before trial {trial}: {:#?}",
                    engine.drain_log()
                );
            }
        }
        engine.drain_events();
        let key = 90 + (trial % 30) as u8;
        engine.inject_fault(0, FaultKind::CrashOnNote as u32, key as u32);
        non_finite += block_at(&mut engine, None).0;
        let note = Event {
            offset: 0,
            kind: EventKind::NoteOn { key, velocity: 0.8 },
        };
        let note_ns = now_ns();
        // The gap: the fallback from the first block after the note that has any, to the
        // first block served in full after it. Xruns later in the window (scheduling stalls
        // on a loaded machine, as without faults) are counted apart.
        let (mut gap, mut other, mut gap_over) = (0, 0, false);
        for k in 0..((SAMPLE_RATE as usize / 2) / block) {
            let (bad, fallback) = block_at(&mut engine, (k == 0).then_some(note));
            non_finite += bad;
            match (fallback, gap > 0) {
                (0, true) => gap_over = true,
                (f, _) if !gap_over => gap += f,
                (f, _) => other += f,
            }
        }
        other_xrun_frames += other;
        let ms = gap as f64 / SAMPLE_RATE as f64 * 1e3;
        gap_ms.push(ms);
        let log = engine.drain_events();
        if ms > GOAL_MS {
            println!("trial {trial}: gap {ms:.1} ms over the goal; the engine's log:");
            let quiet = |e: &&EngineEvent| {
                matches!(e, EngineEvent::Switched { .. } | EngineEvent::Xrun { .. })
            };
            for e in log.iter().filter(|e| !quiet(e)) {
                println!("  {e}");
            }
        }
        let marks = log
            .iter()
            .filter(|e| matches!(e, EngineEvent::ChunkQuarantined { .. }))
            .count();
        quarantined += (marks == 1) as usize;
        let recovered_ns = log.iter().find_map(|e| match e {
            EngineEvent::WorkerVerified { at_ns, .. } => Some(*at_ns),
            _ => None,
        });
        if let Some(ns) = recovered_ns {
            recovery_ms.push(ns.saturating_sub(note_ns) as f64 / 1e6);
        }
    }
    let gap = Summary::new(gap_ms);
    let recovery = Summary::new(recovery_ms);
    println!(
        "poison: {trials} poisoned notes, block {block}, latency {latency}, realtime priority {}",
        if realtime { "granted" } else { "not granted" }
    );
    println!("{}", header());
    println!("{}", gap.row("audible gap", "ms"));
    println!("{}", recovery.row("note to recovery", "ms"));
    println!(
        "quarantined: {quarantined}/{trials}, non-finite samples: {non_finite}, \
         other xrun frames in the trials' windows: {other_xrun_frames}"
    );
    let json = Poison {
        trials,
        block,
        latency,
        gap_ms: gap.quantiles(),
        recovery_ms: recovery.quantiles(),
        quarantined,
        other_xrun_frames,
        non_finite_samples: non_finite,
        realtime_priority: realtime,
        machine: Machine::this(),
        command: format!(
            "cargo xtask bench poison --trials {trials} --block {block} --latency {latency}"
        ),
    };
    println!("wrote {}", json.write()?.display());
    Ok(())
}
