//! Eco protection: one active worker renders, the spare waits as the standby. Real faults in
//! real worker processes: the standby takes over from the latest checkpoint and the output stays
//! equal to the in-process reference, bit for bit; while nothing is wrong only one slot is
//! occupied; audits catch a worker that flips a bit; an audit's standby goes back to sleep as
//! the spare (the same process) and that is no failure; a malformed checkpoint, refused by the
//! standby at a takeover, costs nothing but a fall back to the checkpoint before.
//!
//! Bits are compared with no realtime deadline to miss (`common::patient`), except in the hedge
//! test, which asserts only what the listener gets, not how fast; timing is the benchmark's job.

mod common;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shm::FaultKind;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tandem::engine::{
    Engine, EngineEvent, EngineStatus, EvictReason, ProcessMode, Protection, StandbyReason, Tuning,
    WorkerExit,
};

/// An Eco engine in `mode` at block size `max_block`, L = one block.
fn eco_in(mode: ProcessMode, max_block: usize, tuning: Tuning) -> Engine {
    let config = tandem::engine::EngineConfig {
        protection: Protection::Eco,
        ..config(mode, max_block, max_block as u32)
    };
    Engine::activate_with(config, tuning).expect("activate")
}

fn eco(max_block: usize, tuning: Tuning) -> Engine {
    eco_in(ProcessMode::Realtime, max_block, tuning)
}

fn signal(pid: u32, sig: Signal) {
    kill(Pid::from_raw(pid as i32), sig).expect("kill");
}

/// A settled Eco engine at block size `n` (L = one block) that audits every `audit_interval`.
fn settled_eco(n: usize, audit_interval: Duration) -> Engine {
    let tuning = Tuning {
        audit_interval,
        ..patient()
    };
    let engine = eco(n, tuning);
    settle(&engine, &[]);
    engine
}

/// True if `pid` exists, zombie or not (a reaped child is gone from /proc).
fn is_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits (sleeping only, so the stream is untouched) until none of `gone` is a worker and the
/// engine is settled: one verified worker, the other slot empty, a spare waiting. Then checks
/// that exactly one worker renders.
fn settle(engine: &Engine, gone: &[u32]) {
    for _ in 0..20_000 {
        let pids = engine.worker_pids();
        if !gone.iter().any(|p| pids.contains(p)) && engine.settled() {
            assert_eq!(engine.worker_pids().len(), 1, "{:#?}", engine.drain_log());
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!(
        "engine did not settle (workers {:?}, spare {:?}, failures {}): {:#?}",
        engine.worker_pids(),
        engine.spare_pid(),
        engine.stats().failures.load(Ordering::Relaxed),
        engine.drain_log()
    );
}

/// At block size `n` and L = one block, makes `trials` faults with `fault` on the active
/// worker, one every few blocks, each costing that worker, and checks the whole output and every
/// voice end against the reference, and that no process outlives the engine.
///
/// A faulty worker goes as a failure (died, evicted) or, a hung one, may be retired: the audio
/// thread hedges, and the standby is verified on the chunks both rendered before the hang.
fn trials(n: usize, trials: usize, fault: impl Fn(&Engine)) {
    let mut engine = eco(n, patient());
    settle(&engine, &[]);
    let mut rng = Rng::new(0xec0 ^ n as u64);
    let mut next = 8;
    let mut faulted = Vec::new();
    let blocks = (8 + trials * 12).max(8192 / n);
    let both = render_both(&mut engine, 13, n, blocks, n as u32, |engine, b| {
        if b == next && faulted.len() < trials {
            settle(engine, &faulted);
            faulted.push(active_pid(engine));
            fault(engine);
            next = b + 4 + rng.below(8) as usize;
        }
    });
    assert_eq!(faulted.len(), trials, "every fault ran");
    settle(&engine, &faulted);
    let events = engine.drain_events();
    let log: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    assert!(peak(&both.want) > 0.01);
    assert_eq!(
        differing(&both.got, &both.want),
        0,
        "n = {n}: output differs from the reference; log: {log:#?}"
    );
    assert_eq!(
        both.got_ends, both.want_ends,
        "n = {n}: voice ends; {log:#?}"
    );
    let takeovers = events
        .iter()
        .filter(|e| matches!(e, EngineEvent::StandbyCalled { .. }))
        .count();
    assert!(takeovers >= trials, "the standby took over: {log:#?}");
    let failures = engine.stats().failures.load(Ordering::Relaxed);
    assert!(failures <= trials as u64, "{log:#?}");
    drop(engine);
    for pid in started_pids(&events) {
        assert!(!is_alive(pid), "process {pid} outlived its engine");
    }
}

/// The one worker of a settled engine (the slot served last may be the empty one, left by a
/// takeover before the audio thread's next block).
fn active_slot(engine: &Engine) -> usize {
    (0..2)
        .find(|&s| engine.worker_pid(s).is_some())
        .expect("a worker")
}

fn active_pid(engine: &Engine) -> u32 {
    engine.worker_pid(active_slot(engine)).expect("active")
}

fn inject(kind: FaultKind) -> impl Fn(&Engine) {
    move |engine| engine.inject_fault(active_slot(engine), kind as u32, 0)
}

const BLOCKS: [usize; 3] = [64, 128, 256];

#[test]
fn sigkill_costs_nothing() {
    for n in BLOCKS {
        trials(n, 4, |engine| signal(active_pid(engine), Signal::SIGKILL));
    }
}

#[test]
fn segv_abort_panic_exit_cost_nothing() {
    for n in BLOCKS {
        for kind in [
            FaultKind::Segv,
            FaultKind::Abort,
            FaultKind::Panic,
            FaultKind::Exit0,
        ] {
            trials(n, 1, inject(kind));
        }
    }
}

#[test]
fn hangs_cost_nothing() {
    for n in BLOCKS {
        trials(n, 2, |engine| signal(active_pid(engine), Signal::SIGSTOP));
        trials(n, 2, inject(FaultKind::InfiniteLoop));
    }
}

#[test]
fn rogue_rings_cost_nothing() {
    for n in BLOCKS {
        trials(n, 2, inject(FaultKind::BadFields));
        trials(n, 2, inject(FaultKind::NaN));
    }
}

/// Renders blocks of `n` frames at L = one block through the engine and the reference (with
/// `between(engine)` before each and a short sleep after, so that time passes for audits) until
/// `done` says so, at most `max_blocks`; returns the engine's events and what was heard.
fn run_until(
    engine: &mut Engine,
    n: usize,
    max_blocks: usize,
    mut between: impl FnMut(&mut Engine),
    mut done: impl FnMut(&[EngineEvent]) -> bool,
) -> (Vec<EngineEvent>, Vec<f32>, Vec<f32>) {
    let mut reference = tandem::engine::ReferenceEngine::new(SR, n, n as u32).unwrap();
    let mut phrase = Phrase::new(29);
    let (mut got, mut want) = (Vec::new(), Vec::new());
    let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
    let mut events = Vec::new();
    for _ in 0..max_blocks {
        if done(&events) {
            break;
        }
        between(engine);
        let (block_events, params) = phrase.block(n);
        engine.process(block_events, params, None, [&mut l, &mut r]);
        got.extend_from_slice(&l);
        got.extend_from_slice(&r);
        reference.process(block_events, params, None, [&mut l, &mut r]);
        want.extend_from_slice(&l);
        want.extend_from_slice(&r);
        std::thread::sleep(Duration::from_micros(500));
        events.extend(engine.drain_events());
    }
    (events, got, want)
}

fn audits(events: &[EngineEvent]) -> usize {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                EngineEvent::StandbyCalled {
                    reason: StandbyReason::Audit,
                    ..
                }
            )
        })
        .count()
}

/// Audits on an honest worker: each calls the standby, which is verified against the active
/// and then goes back to sleep as the spare. No failure, no fault in the status, the output
/// exact, one worker left; the same two processes throughout (no spare spawned, none left
/// behind).
#[test]
fn audits_of_an_honest_worker_send_the_standby_back_without_a_fault() {
    let n = 128;
    let tuning = Tuning {
        audit_interval: Duration::from_millis(20),
        ..patient()
    };
    let config = tandem::engine::EngineConfig {
        protection: Protection::Eco,
        ..config(ProcessMode::Realtime, n, n as u32)
    };
    let status = EngineStatus::new();
    let mut engine = Engine::activate_reporting(config, tuning, status.clone()).unwrap();
    settle(&engine, &[]);
    let processes = |engine: &Engine| {
        let mut pids = engine.worker_pids();
        pids.extend(engine.spare_pid());
        pids.sort_unstable();
        pids
    };
    let before = processes(&engine);
    assert_eq!(before.len(), 2, "one worker and the spare");
    let returned = |events: &[EngineEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, EngineEvent::StandbyReturned { .. }))
            .count()
    };
    let (mut events, got, want) = run_until(&mut engine, n, 4000, |_| {}, |e| returned(e) >= 4);
    settle(&engine, &[]);
    events.extend(engine.drain_events());
    let log: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    assert!(returned(&events) >= 4, "{log:#?}");
    assert!(audits(&events) >= 4, "{log:#?}");
    assert_eq!(processes(&engine), before, "the same processes: {log:#?}");
    let spawned = events.iter().filter(|e| {
        matches!(
            e,
            EngineEvent::SpareSpawned { .. } | EngineEvent::WorkerRetired { .. }
        )
    });
    assert_eq!(spawned.count(), 1, "only the activation's spare: {log:#?}");
    assert_eq!(
        engine.stats().failures.load(Ordering::Relaxed),
        0,
        "{log:#?}"
    );
    let s = status.snapshot();
    assert_eq!((s.failovers, s.last_fault), (0, None), "{log:#?}");
    assert!(peak(&want) > 0.01);
    assert_eq!(differing(&got, &want), 0, "{log:#?}");
}

/// The active worker flips one low bit of every chunk it renders (its digest honestly covers
/// the flip: nothing but a second rendering can tell). Eco hears the flips, and the audit's
/// digest comparison catches the worker: it is evicted for divergence (never the standby),
/// within a bounded number of audits.
#[test]
fn the_audit_catches_a_worker_that_flips_a_bit() {
    let n = 256;
    let mut engine = settled_eco(n, Duration::from_millis(30));
    let mut flipped = Vec::new();
    let divergence = |events: &[EngineEvent]| {
        events.iter().find_map(|e| match e {
            EngineEvent::WorkerEvicted {
                pid,
                reason: EvictReason::Divergence,
                ..
            } => Some(*pid),
            _ => None,
        })
    };
    let (events, _, _) = run_until(
        &mut engine,
        n,
        20_000,
        |engine| {
            let slot = engine.serving_slot();
            if let Some(pid) = engine.worker_pid(slot) {
                if !flipped.contains(&pid) {
                    flipped.push(pid);
                }
                engine.inject_fault(slot, FaultKind::FlipLowBit as u32, 0);
            }
        },
        |e| divergence(e).is_some() || audits(e) > 20,
    );
    let log: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    let evicted = divergence(&events).unwrap_or_else(|| panic!("not caught: {log:#?}"));
    assert!(
        flipped.contains(&evicted),
        "a flipper was evicted: {log:#?}"
    );
    assert!(audits(&events) <= 20, "{log:#?}");
    eprintln!("caught after {} audits", audits(&events));
}

/// The active worker publishes one malformed snapshot, which Eco takes as its checkpoint
/// without restoring it; the active is then killed before the next checkpoint. The standby,
/// called from the malformed one, refuses it (exits `EXIT_RESTORE`); the supervisor falls back
/// to the checkpoint before and a new worker replays from there: the output stays exact.
#[test]
fn a_malformed_checkpoint_refused_at_a_takeover_falls_back_to_the_one_before() {
    let n = 64;
    // No audit: its standby, started from the checkpoint before, would take over instead.
    let mut engine = settled_eco(n, Duration::from_secs(3600));
    let mut faulted_at = None;
    let mut killed = None;
    let (mut events, got, want) = run_until(
        &mut engine,
        n,
        400,
        |engine| match (faulted_at, killed) {
            (None, _) if engine.frames_posted() >= 40 * n as u64 => {
                // Goes with the next chunk posted, which starts here.
                faulted_at = Some(engine.frames_posted());
                engine.inject_fault(active_slot(engine), FaultKind::BadSnapshot as u32, 0);
            }
            // The first checkpoint past the fault is the malformed one; the next comes 512
            // frames later.
            (Some(at), None) if engine.checkpoint_frame() > at => {
                let pid = active_pid(engine);
                signal(pid, Signal::SIGKILL);
                killed = Some(pid);
            }
            _ => {}
        },
        |_| false,
    );
    let killed = killed.expect("the active was killed");
    settle(&engine, &[killed]);
    events.extend(engine.drain_events());
    let log: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    let refused = events.iter().any(|e| {
        matches!(
            e,
            EngineEvent::WorkerDied {
                cause: WorkerExit::Exited(shm::exit_status::EXIT_RESTORE),
                ..
            }
        )
    });
    assert!(refused, "the standby refused the checkpoint: {log:#?}");
    assert!(state_lost_at(&events).is_empty(), "{log:#?}");
    assert!(peak(&want) > 0.01);
    assert_eq!(differing(&got, &want), 0, "{log:#?}");
    drop(engine);
    for pid in started_pids(&events) {
        assert!(!is_alive(pid), "process {pid} outlived its engine");
    }
}

/// Two malformed checkpoints in a row, then the active is killed: the standby refuses the
/// newest, a new worker the one before, and with no checkpoint left and no verified worker to
/// ask for a new one the engine starts over from a fresh state (`StateLost`): held notes are
/// lost, but it plays on, settled, with nothing left behind.
#[test]
fn with_no_checkpoint_left_a_refusal_starts_over_from_a_fresh_state() {
    let n = 64;
    let mut engine = settled_eco(n, Duration::from_secs(3600));
    // Frames from which each malformed snapshot was asked for, then the pid killed.
    let mut faults: Vec<u64> = Vec::new();
    let mut killed = None;
    let (mut events, _, _) = run_until(
        &mut engine,
        n,
        400,
        |engine| {
            let taken = faults
                .last()
                .is_none_or(|&at| engine.checkpoint_frame() > at);
            if killed.is_some() || engine.frames_posted() < 40 * n as u64 || !taken {
                return;
            }
            if faults.len() < 2 {
                faults.push(engine.frames_posted());
                engine.inject_fault(active_slot(engine), FaultKind::BadSnapshot as u32, 0);
            } else {
                let pid = active_pid(engine);
                signal(pid, Signal::SIGKILL);
                killed = Some(pid);
            }
        },
        |_| false,
    );
    let killed = killed.expect("the active was killed");
    settle(&engine, &[killed]);
    events.extend(engine.drain_events());
    let log: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    let refusals = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                EngineEvent::WorkerDied {
                    cause: WorkerExit::Exited(shm::exit_status::EXIT_RESTORE),
                    ..
                }
            )
        })
        .count();
    assert_eq!(refusals, 2, "both checkpoints refused: {log:#?}");
    assert_eq!(state_lost_at(&events).len(), 1, "{log:#?}");
    let (l, r) = (&mut vec![0.0; n], &mut vec![0.0; n]);
    let mut phrase = Phrase::new(3);
    let (block_events, params) = phrase.block(n);
    let report = engine.process(block_events, params, None, [l, r]);
    assert_eq!(report.fallback_frames, 0, "it plays on: {log:#?}");
    drop(engine);
    for pid in started_pids(&events) {
        assert!(!is_alive(pid), "process {pid} outlived its engine");
    }
}

/// Plays `n`-frame blocks of a phrase on the period clock beside an in-process reference, and
/// asserts that every frame served from a ring (all but the declared fallback) equals it.
struct CheckedPlayer {
    n: usize,
    period: Duration,
    reference: tandem::engine::ReferenceEngine,
    phrase: Phrase,
    got: [Vec<f32>; 2],
    want: [Vec<f32>; 2],
}

impl CheckedPlayer {
    fn new(n: usize, seed: u64) -> CheckedPlayer {
        CheckedPlayer {
            n,
            period: Duration::from_micros((n as u64 * 1_000_000) / SR as u64),
            reference: tandem::engine::ReferenceEngine::new(SR, n, n as u32).unwrap(),
            phrase: Phrase::new(seed),
            got: [vec![0.0; n], vec![0.0; n]],
            want: [vec![0.0; n], vec![0.0; n]],
        }
    }

    /// Plays block `b`, then sleeps a period; returns the fallback frames.
    fn play(&mut self, engine: &mut Engine, b: usize) -> u32 {
        let (events, params) = self.phrase.block(self.n);
        let [l, r] = &mut self.got;
        let report = engine.process(events, params, None, [l, r]);
        let [wl, wr] = &mut self.want;
        self.reference.process(events, params, None, [wl, wr]);
        let served = self.n - report.fallback_frames as usize;
        for ch in 0..2 {
            let (got, want) = (&self.got[ch][..served], &self.want[ch][..served]);
            assert_eq!(differing(got, want), 0, "block {b}");
        }
        std::thread::sleep(self.period);
        report.fallback_frames
    }
}

/// A host on the audio clock with a normal deadline: the active worker is stopped. The audio
/// thread finds it late and calls the standby in (a hedge) before the hang check evicts it. The
/// property: every frame served from a ring equals the reference, the sound resumes (from the
/// standby, in the other slot), and the engine settles with one worker. The xrun frames the
/// stop cost are printed, not asserted (a loaded machine may miss any deadline).
#[test]
fn a_stopped_worker_is_hedged_by_the_standby() {
    let n = 256;
    let mut engine = eco(n, Tuning::default());
    settle(&engine, &[]);
    let mut player = CheckedPlayer::new(n, 3);
    let (mut stopped, mut stopped_slot) = (0, 0);
    let (mut gap, mut resumed) = (0, 0);
    for b in 0..400 {
        if b == 100 {
            stopped_slot = engine.serving_slot();
            stopped = engine.worker_pid(stopped_slot).unwrap();
            signal(stopped, Signal::SIGSTOP);
        }
        let fallback = player.play(&mut engine, b);
        if (100..110).contains(&b) {
            gap += fallback;
        }
        if b > 100 && fallback == 0 && engine.serving_slot() != stopped_slot {
            resumed += 1;
        }
    }
    let events = engine.drain_events();
    let log: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    eprintln!("the stop cost {gap} frames of fallback; {log:#?}");
    assert!(resumed > 0, "the standby serves: {log:#?}");
    let evicted = events.iter().any(|e| {
        matches!(e, EngineEvent::WorkerEvicted { pid, reason: EvictReason::Hang, .. } if *pid == stopped)
    });
    assert!(evicted, "the stopped worker is evicted as hung: {log:#?}");
    settle(&engine, &[stopped]);
    drop(engine);
    assert!(!is_alive(stopped));
}

/// While the standby serves beside a stopped active (a hedge), the checkpoint keeps moving
/// with the standby, so a fault of the standby right after the hang check evicted the stopped
/// worker replays from a state after the stop, not from before it (a replay of the whole hang,
/// too long for a deadline). The property: the standby that takes over then starts from a
/// chunk posted after the stop, and every frame served from a ring equals the reference. The
/// hang check waits 2 s here, so that the standby's first snapshot (a few blocks after it
/// serves and the host has been given its chunk) is in before it, however loaded the machine.
#[test]
fn checkpoints_follow_the_standby_through_a_hang() {
    let n = 256;
    let tuning = Tuning {
        hang_timeout: Duration::from_secs(2),
        ..Tuning::default()
    };
    let mut engine = eco(n, tuning);
    settle(&engine, &[]);
    let mut player = CheckedPlayer::new(n, 5);
    let (mut stopped, mut stopped_at_block, mut killed) = (0, 0, 0);
    let (mut before_kill, mut after_kill) = (Vec::new(), Vec::new());
    for b in 0..1000 {
        if b == 100 {
            stopped = active_pid(&engine);
            stopped_at_block = b as u64;
            signal(stopped, Signal::SIGSTOP);
        }
        let pids = engine.worker_pids();
        if b > 100 && killed == 0 && !pids.contains(&stopped) && pids.len() == 1 {
            // The hang check has just evicted the stopped worker: fault the standby now.
            before_kill.extend(engine.drain_events());
            killed = pids[0];
            signal(killed, Signal::SIGKILL);
        }
        player.play(&mut engine, b);
        if killed != 0 {
            after_kill.extend(engine.drain_events());
        } else {
            before_kill.extend(engine.drain_events());
        }
    }
    assert_ne!(killed, 0, "the stopped worker was evicted");
    let log: Vec<String> = before_kill
        .iter()
        .chain(&after_kill)
        .map(|e| e.to_string())
        .collect();
    let from = after_kill.iter().find_map(|e| match e {
        EngineEvent::WorkerSpawned { from_chunk, .. } => Some(*from_chunk),
        _ => None,
    });
    // One chunk per block: chunk `b` is block `b`'s.
    let from = from
        .expect("a standby took over")
        .expect("from a checkpoint");
    assert!(
        from >= stopped_at_block,
        "the takeover replays from chunk {from}, before the stop at chunk {stopped_at_block}: \
         {log:#?}"
    );
    settle(&engine, &[stopped, killed]);
    drop(engine);
    assert!(!is_alive(stopped) && !is_alive(killed));
}

/// A worker that cannot take over (no spare: `Tuning::spare` off) is replaced by a new process,
/// and the output is still exact.
#[test]
fn without_a_spare_a_new_process_takes_over() {
    let n = 128;
    let mut engine = eco(
        n,
        Tuning {
            spare: false,
            ..patient()
        },
    );
    settle(&engine, &[]);
    let mut killed = Vec::new();
    let both = render_both(&mut engine, 7, n, 120, n as u32, |engine, b| {
        if b % 20 == 10 {
            settle(engine, &killed);
            killed.push(active_pid(engine));
            signal(*killed.last().unwrap(), Signal::SIGKILL);
        }
    });
    settle(&engine, &killed);
    let log = engine.drain_log();
    assert_eq!(differing(&both.got, &both.want), 0, "{log:#?}");
    assert_eq!(both.got_ends, both.want_ends);
}

/// Offline bounce in Eco: a killed worker costs nothing, every time.
#[test]
fn offline_bounce_survives_kills() {
    let n = 64;
    let mut engine = eco_in(ProcessMode::Offline, n, patient());
    settle(&engine, &[]);
    let start = Instant::now();
    let mut killed = Vec::new();
    let both = render_both(&mut engine, 23, n, 3000, n as u32, |engine, b| {
        if b % 500 == 250 {
            settle(engine, &killed);
            killed.push(active_pid(engine));
            signal(*killed.last().unwrap(), Signal::SIGKILL);
        }
    });
    settle(&engine, &killed);
    let log = engine.drain_log();
    eprintln!("bounce took {:?}", start.elapsed());
    assert!(!log.iter().any(|l| l.contains("fresh state")), "{log:#?}");
    assert_eq!(differing(&both.got, &both.want), 0, "{log:#?}");
    assert_eq!(both.got_ends, both.want_ends);
}

/// A host rendering faster than real time while audits come often: no worker fails, the output
/// is exact.
#[test]
fn audits_during_a_fast_render_are_exact() {
    let n = 128;
    let mut engine = settled_eco(n, Duration::from_millis(50));
    let both = render_both(&mut engine, 31, n, 4000, n as u32, |_, _| {});
    let events = engine.drain_events();
    let log: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    assert!(audits(&events) >= 2, "{log:#?}");
    assert_eq!(
        engine.stats().failures.load(Ordering::Relaxed),
        0,
        "{log:#?}"
    );
    assert_eq!(differing(&both.got, &both.want), 0, "{log:#?}");
    assert_eq!(both.got_ends, both.want_ends);
}

/// The audio thread's part in Eco (a joining standby heard, a hedge asked for) allocates
/// nothing: realtime with a normal deadline, the active worker killed or stopped now and then.
#[test]
fn process_never_allocates_through_takeovers_and_hedges() {
    let n = 128;
    let mut engine = eco(n, Tuning::default());
    let mut phrase = Phrase::new(9);
    let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
    let period = Duration::from_micros((n as u64 * 1_000_000) / SR as u64);
    let mut faults = Vec::new();
    for b in 0..800 {
        if b % 100 == 50 {
            settle(&engine, &faults);
            let pid = active_pid(&engine);
            let sig = if b % 200 == 50 {
                Signal::SIGKILL
            } else {
                Signal::SIGSTOP
            };
            signal(pid, sig);
            faults.push(pid);
        }
        let (events, params) = phrase.block(n);
        let events = events.to_vec();
        nice_assert_no_alloc::assert_no_alloc(|| {
            engine.process(&events, params, None, [&mut l, &mut r]);
        });
        std::thread::sleep(period);
    }
    settle(&engine, &faults);
}

/// An offline host that posts faster than the worker renders (here the worker sleeps 2 ms in
/// every chunk) keeps the worker that took over a chunk behind, however long the bounce. It is
/// still verified (and the engine protected again) while the bounce goes on, not only once the
/// host stops.
#[test]
fn a_takeover_is_verified_while_an_offline_host_keeps_posting() {
    let n = 512;
    // No audit either: its pause would let the worker catch up.
    let tuning = Tuning {
        audit_interval: Duration::from_secs(3600),
        ..patient()
    };
    let mut engine = eco_in(ProcessMode::Offline, n, tuning);
    settle(&engine, &[]);
    let mut phrase = Phrase::new(37);
    let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
    let killed = active_pid(&engine);
    let mut settled_at = None;
    // A liveness bound, not a timing one: some 6 s of slowed rendering.
    for b in 0..3000 {
        if b == 100 {
            signal(killed, Signal::SIGKILL);
        }
        // Every chunk the worker that renders it sleeps in, from before the kill on.
        let slot = (0..2).find(|&s| engine.worker_pid(s).is_some_and(|p| b < 100 || p != killed));
        if let Some(slot) = slot {
            engine.inject_fault(slot, FaultKind::Sleep as u32, 2);
        }
        let (events, params) = phrase.block(n);
        engine.process(events, params, None, [&mut l, &mut r]);
        if !engine.worker_pids().contains(&killed) && engine.settled() {
            settled_at = Some(b);
            break;
        }
    }
    let log = engine.drain_log();
    assert!(
        settled_at.is_some(),
        "not protected again while posting: {log:#?}"
    );
    assert_eq!(engine.worker_pids().len(), 1, "{log:#?}");
}

/// A standby sent back to sleep keeps its epoch, and the next call puts it into the same slot
/// again, from the latest checkpoint, which may be older than where its last stint ended (an
/// audit's standby renders past the checkpoint it started from). The audio thread must judge
/// the new stint's progress on its own, not as the old one's going backwards: a takeover right
/// after an audit costs nothing and evicts nobody.
#[test]
fn a_takeover_right_after_an_audit_is_exact() {
    let n = 128;
    let mut engine = settled_eco(n, Duration::from_millis(30));
    let mut events = Vec::new();
    let mut killed = Vec::new();
    let both = render_both(&mut engine, 41, n, 3000, n as u32, |engine, _| {
        let fresh = engine.drain_events();
        let returned = fresh
            .iter()
            .any(|e| matches!(e, EngineEvent::StandbyReturned { .. }));
        events.extend(fresh);
        if returned && killed.len() < 4 {
            killed.push(active_pid(engine));
            signal(*killed.last().unwrap(), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_micros(500));
    });
    settle(&engine, &killed);
    events.extend(engine.drain_events());
    let log: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    assert_eq!(killed.len(), 4, "four audits ended: {log:#?}");
    let evicted = events
        .iter()
        .any(|e| matches!(e, EngineEvent::WorkerEvicted { .. }));
    assert!(!evicted, "{log:#?}");
    assert_eq!(differing(&both.got, &both.want), 0, "{log:#?}");
    assert_eq!(both.got_ends, both.want_ends, "{log:#?}");
}

/// A late active that catches up keeps its slot after a hedge, and the hedge's standby goes
/// back to sleep as the spare: the same processes throughout, none spawned (a spawn is about
/// 10 ms of CPU, and a loaded machine hedges often), no failure, and the output exact. Audits
/// come every 20 ms here, so one is due the moment a hedge's standby leaves: it must wait until
/// the standby has left its slot (called before, it could not come, and a new process would be
/// spawned into the slot instead, one at every audit after).
#[test]
fn after_a_hedge_the_standby_sleeps_again_once_the_active_caught_up() {
    let n = 128;
    let tuning = Tuning {
        audit_interval: Duration::from_millis(20),
        ..patient()
    };
    let mut engine = eco(n, tuning);
    settle(&engine, &[]);
    let processes = {
        let mut p = engine.worker_pids();
        p.extend(engine.spare_pid());
        p.sort();
        p
    };
    let hedge = |e: &EngineEvent| {
        matches!(
            e,
            EngineEvent::StandbyCalled {
                reason: StandbyReason::Hedge,
                ..
            }
        )
    };
    let mut events = Vec::new();
    let both = render_both(&mut engine, 43, n, 1500, n as u32, |engine, b| {
        events.extend(engine.drain_events());
        // Every 100 blocks, if the engine has settled (no audit under way): the active sleeps
        // 20 ms in its next chunk, late for the host, and then carries on.
        if b % 100 == 50 && engine.settled() {
            engine.inject_fault(active_slot(engine), FaultKind::Sleep as u32, 20);
        }
        // A host playing to a sound card (one rendering faster than real time waits for exact
        // frames instead of hedging).
        std::thread::sleep(Duration::from_micros(n as u64 * 1_000_000 / SR as u64));
    });
    settle(&engine, &[]);
    events.extend(engine.drain_events());
    let log: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    let count = |f: &dyn Fn(&EngineEvent) -> bool| events.iter().filter(|e| f(e)).count();
    assert!(count(&hedge) >= 3, "the slowed active was hedged: {log:#?}");
    let retired = count(&|e| matches!(e, EngineEvent::WorkerRetired { .. }));
    assert_eq!(retired, 0, "{log:#?}");
    // The activation's spare only.
    let spawned = count(&|e| matches!(e, EngineEvent::SpareSpawned { .. }));
    assert_eq!(spawned, 1, "{log:#?}");
    assert_eq!(
        engine.stats().failures.load(Ordering::Relaxed),
        0,
        "{log:#?}"
    );
    let mut now = engine.worker_pids();
    now.extend(engine.spare_pid());
    now.sort();
    assert_eq!(now, processes, "{log:#?}");
    assert_eq!(differing(&both.got, &both.want), 0, "{log:#?}");
}
