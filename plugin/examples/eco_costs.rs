//! What Eco protection costs and saves, measured on this machine (docs/ARCHITECTURE.md,
//! "Protection"): one checkpoint (the worker's snapshot copy, and the supervisor's validating
//! restore, which Lockstep makes and Eco leaves to the standby), one 64-frame chunk rendered for
//! comparison, the CPU of Lockstep and Eco engines at
//! L = one block (audio thread, supervisor and every worker process), an audit's cost, and the
//! frames of fallback a killed or stopped active worker costs in realtime.
//!
//! Run: `cargo build --release -p sandbox-worker && cargo run --release -p tandem --example
//! eco_costs` (the release worker next to the example is found by `worker_exe`).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};
use tandem::engine::{
    Chunker, Engine, EngineConfig, EngineEvent, ProcessMode, Protection, StandbyReason, Tuning,
};
use test_support::{Phrase, SR};

/// CPU time of this process plus its reaped children, in ns.
fn cpu_ns() -> u64 {
    let of = |who| {
        let usage = nix::sys::resource::getrusage(who).expect("getrusage");
        let t = |tv: nix::sys::time::TimeVal| {
            tv.tv_sec() as u64 * 1_000_000_000 + tv.tv_usec() as u64 * 1000
        };
        t(usage.user_time()) + t(usage.system_time())
    };
    of(nix::sys::resource::UsageWho::RUSAGE_SELF)
        + of(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One checkpoint's parts, timed over a synth playing the test phrase.
fn checkpoint_cost() {
    let mut renderer = render::ChunkRenderer::new(SR).unwrap();
    let mut verifier = dsp::Synth::new(SR, shm::chunk::MAX_CHUNK_FRAMES).unwrap();
    let mut chunker = Chunker::default();
    let mut phrase = Phrase::new(7);
    let n = 64;
    let mut render_ns = Vec::new();
    for _ in 0..2000 {
        let (events, params) = phrase.block(n);
        chunker.split(
            n,
            events,
            params,
            None,
            |_| {},
            |c, _| {
                let t = Instant::now();
                renderer.render(c);
                render_ns.push(t.elapsed().as_nanos() as f64);
            },
        );
    }
    let mut buf = vec![0u8; renderer.synth.snapshot().len()];
    let mut copy = Vec::with_capacity(buf.len());
    let (mut snap_ns, mut restore_ns) = (Vec::new(), Vec::new());
    for _ in 0..2000 {
        let t = Instant::now();
        let len = renderer.synth.snapshot_into(&mut buf).unwrap();
        snap_ns.push(t.elapsed().as_nanos() as f64);
        let t = Instant::now();
        verifier.restore(&buf[..len]).unwrap();
        copy.clear();
        copy.extend_from_slice(&buf[..len]);
        restore_ns.push(t.elapsed().as_nanos() as f64);
    }
    for v in [&mut render_ns, &mut snap_ns, &mut restore_ns] {
        v.sort_by(f64::total_cmp);
    }
    println!("snapshot bytes: {}", buf.len());
    for (what, v) in [
        ("render one 64-frame chunk", &render_ns),
        ("worker: snapshot_into", &snap_ns),
        (
            "supervisor (Lockstep; Eco only copies): restore + copy",
            &restore_ns,
        ),
    ] {
        println!(
            "{what}: p50 {:.1} us, p99 {:.1} us",
            percentile(v, 0.5) / 1e3,
            percentile(v, 0.99) / 1e3
        );
    }
}

fn config(protection: Protection, block: usize) -> EngineConfig {
    EngineConfig {
        sample_rate: SR,
        max_block: block,
        latency: block as u32,
        mode: ProcessMode::Realtime,
        protection,
        worker_path: tandem::worker_exe::worker_path().expect("build tandem-worker first"),
    }
}

/// Plays `seconds` of the phrase on the audio clock, calling `between(engine, block)` before
/// each block; returns the CPU used (all threads and workers) as a fraction of one core, the
/// fallback frames and the events.
fn play(
    protection: Protection,
    block: usize,
    tuning: Tuning,
    seconds: f64,
    mut between: impl FnMut(&Engine, usize),
) -> (f64, u64, Vec<EngineEvent>) {
    let cpu0 = cpu_ns();
    let t0 = Instant::now();
    let mut engine = Engine::activate_with(config(protection, block), tuning).expect("activate");
    let mut phrase = Phrase::new(11);
    let (mut l, mut r) = (vec![0.0; block], vec![0.0; block]);
    let period = Duration::from_secs_f64(block as f64 / SR as f64);
    let blocks = (seconds / period.as_secs_f64()) as usize;
    let mut fallback = 0u64;
    let mut events = Vec::new();
    for b in 0..blocks {
        between(&engine, b);
        let (ev, params) = phrase.block(block);
        fallback += engine
            .process(ev, params, None, [&mut l, &mut r])
            .fallback_frames as u64;
        let next = t0 + period * (b as u32 + 1);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if b % 256 == 0 {
            events.extend(engine.drain_events());
        }
    }
    events.extend(engine.drain_events());
    drop(engine);
    let cpu = (cpu_ns() - cpu0) as f64 / t0.elapsed().as_nanos() as f64;
    (cpu, fallback, events)
}

fn count(events: &[EngineEvent], reason: StandbyReason) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, EngineEvent::StandbyCalled { reason: r, .. } if *r == reason))
        .count()
}

fn main() {
    checkpoint_cost();
    let seconds = 6.0;
    let no_audit = Tuning {
        audit_interval: Duration::from_secs(3600),
        ..Tuning::default()
    };
    for block in [64, 128, 256] {
        let (lockstep, _, _) = play(
            Protection::Lockstep,
            block,
            Tuning::default(),
            seconds,
            |_, _| {},
        );
        let (eco_quiet, _, _) = play(Protection::Eco, block, no_audit.clone(), seconds, |_, _| {});
        let (eco, _, e) = play(
            Protection::Eco,
            block,
            Tuning::default(),
            seconds,
            |_, _| {},
        );
        let audits = count(&e, StandbyReason::Audit);
        let frequent = Tuning {
            audit_interval: Duration::from_millis(100),
            ..Tuning::default()
        };
        let (eco_often, _, e) = play(Protection::Eco, block, frequent, seconds, |_, _| {});
        let audits_often = count(&e, StandbyReason::Audit);
        let per_audit_ms = (eco_often - eco_quiet) * seconds * 1e3 / audits_often.max(1) as f64;
        println!(
            "block {block}: CPU of one core: lockstep {:.1} %, eco {:.1} % ({audits} audits), \
             eco without audits {:.1} %; one audit costs {per_audit_ms:.2} ms of CPU \
             ({audits_often} audits at 100 ms: {:.1} %)",
            lockstep * 100.0,
            eco * 100.0,
            eco_quiet * 100.0,
            eco_often * 100.0
        );
        for (what, sig) in [("SIGKILL", Signal::SIGKILL), ("SIGSTOP", Signal::SIGSTOP)] {
            let kills = 10;
            let every = (0.25 / (block as f64 / SR as f64)) as usize;
            let (_, fallback, e) = play(
                Protection::Eco,
                block,
                Tuning::default(),
                every as f64 * block as f64 / SR as f64 * (kills + 2) as f64,
                |engine, b| {
                    if b % every == every / 2 && b / every < kills && engine.settled() {
                        if let Some(pid) = engine.worker_pids().first() {
                            let _ = kill(Pid::from_raw(*pid as i32), sig);
                        }
                    }
                },
            );
            let hedges = count(&e, StandbyReason::Hedge);
            let takeovers = count(&e, StandbyReason::Takeover);
            println!(
                "block {block}: {kills} x {what} of the active worker: {fallback} frames of \
                 fallback in all ({takeovers} takeovers, {hedges} hedges)"
            );
        }
    }
}
