//! `cargo xtask bench bounce [--seconds S] [--block N]`: a long, dense offline bounce, by
//! default ten minutes of the 16-voice phrase at 48 kHz, as a DAW's export renders.
//!
//! The risk it looks for: a worker at `SCHED_FIFO` is killed by its `RLIMIT_RTTIME` budget (2 s
//! of CPU without blocking) if it never sleeps, and both workers would meet it at about the same
//! moment. An offline host posts chunks as fast as the workers render them, so whether a worker
//! ever sleeps is the question. A sampler thread reads each worker's voluntary context switches
//! and CPU time from `/proc` every 20 ms; the longest CPU time a worker used while no new
//! voluntary switch appeared is its longest stretch without blocking (to within one sampling
//! period), which must stay far below the 2 s budget (the render loop naps at least every
//! 100 ms, `MAX_AWAKE` in `sandbox_worker::worker`).
//!
//! Reported (goals: none, 0, none): workers that died or were evicted, frames that fell back,
//! and seconds whose output differs from the in-process reference (compared per second through
//! a hash, so ten minutes need no recording; the reference replays the same deterministic
//! phrase after the bounce).
//!
//! CI does not run this in full (ten minutes); `cargo xtask bench bounce --seconds 20` is the
//! quick form.

use super::flag;
use super::host::{self, now_ns, Phrase};
use super::schema::{BenchFile, Bounce, Machine};
use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tandem::engine::{Engine, EngineConfig, EngineEvent, ProcessMode, ReferenceEngine, Tuning};

const SAMPLE_RATE: f32 = 48_000.0;

/// How often the sampler reads the workers' `/proc` entries.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// FNV-1a over the bits of each sample: equal hashes for equal bits.
fn hash_into(hash: &mut u64, samples: &[f32]) {
    for s in samples {
        *hash ^= s.to_bits() as u64;
        *hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// One second's hash of both channels, for every second of a render by `render_block`.
fn hashes_per_second(
    seconds: u64,
    block: usize,
    mut render_block: impl FnMut(&mut Phrase, [&mut [f32]; 2]),
) -> Vec<u64> {
    let mut phrase = Phrase::new(SAMPLE_RATE);
    let (mut l, mut r) = (vec![0.0; block], vec![0.0; block]);
    let per_second = SAMPLE_RATE as u64;
    let total = seconds * per_second;
    let mut hashes = vec![FNV_OFFSET; seconds as usize];
    let mut frame = 0u64;
    while frame < total {
        render_block(&mut phrase, [&mut l, &mut r]);
        // A block may straddle a second: hash frame by frame into the right second.
        for k in 0..block {
            let second = ((frame + k as u64) / per_second) as usize;
            if second < hashes.len() {
                hash_into(&mut hashes[second], &[l[k], r[k]]);
            }
        }
        frame += block as u64;
    }
    hashes
}

/// What the sampler learns about one worker process.
#[derive(Clone, Copy, Default)]
struct Watch {
    pid: u32,
    switches: u64,
    cpu_at_switch: u64,
    longest_busy_ns: u64,
    realtime: bool,
}

/// Voluntary context switches of `pid` (each one a sleep), and its scheduling policy.
fn switches_and_policy(pid: u32) -> Option<(u64, bool)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let switches = status
        .lines()
        .find(|l| l.starts_with("voluntary_ctxt_switches:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // Field 41 (policy); the first field after the name is field 3.
    let policy: i32 = rest.split_whitespace().nth(41 - 3)?.parse().ok()?;
    Some((
        switches,
        policy == libc::SCHED_FIFO || policy == libc::SCHED_RR,
    ))
}

fn sample(pids: &Mutex<Vec<u32>>, watches: &mut Vec<Watch>) {
    let current = pids.lock().expect("pids").clone();
    for pid in current {
        let Some(cpu) = host::pid_cpu_ns(pid) else {
            continue;
        };
        let Some((switches, realtime)) = switches_and_policy(pid) else {
            continue;
        };
        let w = match watches.iter_mut().find(|w| w.pid == pid) {
            Some(w) => w,
            None => {
                watches.push(Watch {
                    pid,
                    switches,
                    cpu_at_switch: cpu,
                    ..Watch::default()
                });
                continue;
            }
        };
        w.realtime |= realtime;
        if switches != w.switches {
            w.switches = switches;
            w.cpu_at_switch = cpu;
        } else {
            w.longest_busy_ns = w.longest_busy_ns.max(cpu - w.cpu_at_switch);
        }
    }
}

/// Runs the bounce and writes `target/bench/bounce.json`.
pub fn run(args: &[String]) -> Result<()> {
    let seconds: u64 = flag(args, "--seconds", 600)?;
    let block: usize = flag(args, "--block", 512)?;
    let worker = host::build_worker()?;
    let config = EngineConfig {
        sample_rate: SAMPLE_RATE,
        max_block: block,
        latency: block as u32,
        mode: ProcessMode::Offline,
        protection: tandem::engine::Protection::Lockstep,
        worker_path: worker,
    };
    let mut engine = Engine::activate_with(config, Tuning::default())?;
    let pids = Arc::new(Mutex::new(engine.worker_pids()));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pids, stop) = (pids.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut watches = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                sample(&pids, &mut watches);
                std::thread::sleep(SAMPLE_EVERY);
            }
            watches
        })
    };
    println!("bouncing {seconds} s of the dense 16-voice phrase offline, {block}-frame blocks");
    let t0 = now_ns();
    let mut fallback_frames = 0u64;
    let mut blocks = 0u64;
    let engine_hashes = hashes_per_second(seconds, block, |phrase, [l, r]| {
        let (events, params) = phrase.block(block);
        fallback_frames += engine.process(events, params, None, [l, r]).fallback_frames as u64;
        blocks += 1;
        if blocks.is_multiple_of(256) {
            *pids.lock().expect("pids") = engine.worker_pids();
        }
    });
    let wall_s = (now_ns() - t0) as f64 / 1e9;
    stop.store(true, Ordering::Relaxed);
    let watches = sampler.join().expect("the sampler thread");
    let events = engine.drain_events();
    drop(engine);
    let failures: Vec<String> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                EngineEvent::WorkerDied { .. } | EngineEvent::WorkerEvicted { .. }
            )
        })
        .map(|e| e.to_string())
        .collect();

    println!("replaying the reference in-process");
    let mut reference = ReferenceEngine::new(SAMPLE_RATE, block, block as u32)?;
    let reference_hashes = hashes_per_second(seconds, block, |phrase, out| {
        let (events, params) = phrase.block(block);
        reference.process(events, params, None, out);
    });
    let differing_seconds: Vec<usize> = engine_hashes
        .iter()
        .zip(&reference_hashes)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i)
        .collect();

    let longest_busy_ms = watches
        .iter()
        .map(|w| w.longest_busy_ns as f64 / 1e6)
        .fold(0.0, f64::max);
    let realtime_workers = watches.iter().filter(|w| w.realtime).count();
    println!(
        "wall time                 {wall_s:.1} s ({:.1}x real time)",
        seconds as f64 / wall_s
    );
    println!(
        "workers watched           {} ({realtime_workers} at SCHED_FIFO)",
        watches.len()
    );
    println!("longest CPU without sleep {longest_busy_ms:.1} ms (budget RLIMIT_RTTIME 2000 ms)");
    println!("worker deaths/evictions   {}", failures.len());
    for f in &failures {
        println!("  {f}");
    }
    println!("fallback frames           {fallback_frames}");
    println!(
        "seconds differing from the reference: {} of {seconds}",
        differing_seconds.len()
    );
    let clean = failures.is_empty() && fallback_frames == 0 && differing_seconds.is_empty();
    let path = Bounce {
        seconds,
        block,
        wall_s,
        workers_watched: watches.len(),
        workers_at_sched_fifo: realtime_workers,
        longest_cpu_without_sleep_ms: longest_busy_ms,
        worker_failures: failures,
        fallback_frames,
        differing_seconds,
        machine: Machine::this(),
        command: format!("cargo xtask bench bounce --seconds {seconds} --block {block}"),
    }
    .write()?;
    println!("wrote {}", path.display());
    if !clean {
        // Reported, not failed: on a loaded shared machine starved workers can still be taken
        // for hung (see the JSON's failures), and CI runs this without thresholds.
        println!("NOT CLEAN: see worker failures, fallback frames and differing seconds above");
    }
    Ok(())
}
