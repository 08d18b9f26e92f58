//! Real faults in real worker processes: the output stays equal to the in-process reference.
//!
//! Bits are compared with no realtime deadline to miss (offline mode, or a deadline far above
//! the block period), so these tests hold on a loaded machine; timing is the benchmark's job.

mod common;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shm::{FaultKind, Rogue};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tandem::engine::{Engine, EngineEvent, EvictReason, ProcessMode, Tuning, WorkerExit};

const N: usize = 256;

/// One block at the sample rate: the pace of a host that plays to a sound card.
const PERIOD: Duration = Duration::from_micros((N as u64 * 1_000_000) / SR as u64);

fn signal(pid: u32, sig: Signal) {
    kill(Pid::from_raw(pid as i32), sig).expect("kill");
}

/// Waits until the engine has seen at least `failures` worker failures and is back to two
/// verified workers (sleeping only: the stream the reference sees is not touched).
fn settle(engine: &Engine, failures: u64) {
    for _ in 0..20_000 {
        if engine.stats().failures.load(Ordering::Relaxed) >= failures && engine.in_lockstep() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!(
        "engine did not return to lockstep: {:#?}",
        engine.drain_log()
    );
}

/// Runs `trials` faults, one every few blocks, each made by `fault` on the serving worker, and
/// checks the whole output and every voice end against the reference. With `kills`, each fault must cost a worker
/// (and the next fault waits until it has been replaced).
fn trials(
    mode: ProcessMode,
    latency: u32,
    trials: usize,
    kills: bool,
    fault: impl Fn(&Engine, u64),
) -> u64 {
    let mut engine = engine(mode, N, latency);
    settle(&engine, 0);
    let per_fault = kills as u64;
    let mut rng = Rng::new(0x5eed ^ latency as u64);
    let mut next_fault = 8;
    let mut done = 0;
    let blocks = 8 + trials * 12;
    let both = render_both(&mut engine, 11, N, blocks, latency, |engine, b| {
        if b == next_fault && done < trials {
            settle(engine, per_fault * done as u64);
            fault(engine, rng.next_u64());
            done += 1;
            next_fault = b + 4 + rng.below(8) as usize;
        }
    });
    assert_eq!(done, trials, "every fault ran");
    settle(&engine, per_fault * trials as u64);
    let events = engine.drain_events();
    assert_exact(&both, &events);
    let failures = engine.stats().failures.load(Ordering::Relaxed);
    drop(engine);
    for pid in spawned_pids(&events) {
        assert!(!is_alive(pid), "worker {pid} outlived its engine");
    }
    failures
}

/// Every worker pid an engine started.
fn spawned_pids(events: &[EngineEvent]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::WorkerSpawned { pid, .. } => Some(*pid),
            _ => None,
        })
        .collect()
}

/// True if `pid` exists, zombie or not (a reaped child is gone from /proc).
fn is_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// SIGKILL the serving worker, either between blocks or from another thread while the next
/// blocks are rendering.
fn sigkill_serving(engine: &Engine, r: u64) {
    let pid = engine
        .worker_pid(engine.serving_slot())
        .expect("serving worker");
    if r.is_multiple_of(2) {
        signal(pid, Signal::SIGKILL);
    } else {
        let delay = Duration::from_micros(r % 2000);
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            signal(pid, Signal::SIGKILL);
        });
    }
}

#[test]
fn sigkill_at_zero_latency() {
    trials(ProcessMode::Realtime, 0, 20, true, sigkill_serving);
}

#[test]
fn sigkill_at_one_block_latency() {
    trials(ProcessMode::Realtime, N as u32, 20, true, sigkill_serving);
}

fn inject(kind: FaultKind) -> impl Fn(&Engine, u64) {
    move |engine, _| engine.inject_fault(engine.serving_slot(), kind as u32, 0)
}

#[test]
fn segv_abort_panic_exit() {
    for kind in [
        FaultKind::Segv,
        FaultKind::Abort,
        FaultKind::Panic,
        FaultKind::Exit0,
    ] {
        trials(ProcessMode::Realtime, 0, 3, true, inject(kind));
    }
}

#[test]
fn hangs_are_evicted() {
    trials(
        ProcessMode::Realtime,
        N as u32,
        3,
        true,
        inject(FaultKind::InfiniteLoop),
    );
    // Sleeping a nanosecond at a time escapes RLIMIT_RTTIME, not the supervisor.
    trials(
        ProcessMode::Realtime,
        N as u32,
        3,
        true,
        inject(FaultKind::SpinSleeping),
    );
    trials(ProcessMode::Realtime, 0, 3, true, |engine, _| {
        signal(
            engine.worker_pid(engine.serving_slot()).unwrap(),
            Signal::SIGSTOP,
        )
    });
}

#[test]
fn rogue_rings_are_evicted() {
    // Exactly the rogue goes: its healthy twin must not be blamed for the digest mismatch.
    let bad_fields = trials(
        ProcessMode::Realtime,
        0,
        3,
        true,
        inject(FaultKind::BadFields),
    );
    assert_eq!(bad_fields, 3);
    let nan = trials(
        ProcessMode::Realtime,
        N as u32,
        3,
        true,
        inject(FaultKind::NaN),
    );
    assert_eq!(nan, 3);
}

/// A worker that keeps rendering but stops publishing its digests proves nothing: a missing
/// digest is a fault, not a chunk to skip, and that worker goes (its twin carries the audio).
#[test]
fn a_worker_that_stops_publishing_digests_is_evicted() {
    let muted = trials(
        ProcessMode::Realtime,
        N as u32,
        3,
        true,
        inject(FaultKind::MuteDigests),
    );
    assert_eq!(muted, 3);
}

#[test]
fn both_killed_at_once_in_offline_mode_is_still_exact() {
    // Offline waits for the rebuild from the last checkpoint: nothing is lost.
    trials(ProcessMode::Offline, 0, 3, true, |engine, _| {
        for pid in engine.worker_pids() {
            signal(pid, Signal::SIGKILL);
        }
    });
}

#[test]
fn offline_waits_for_stopped_workers() {
    trials(ProcessMode::Offline, N as u32, 2, false, |engine, r| {
        let pids = engine.worker_pids();
        let stop = if r.is_multiple_of(2) {
            pids.clone()
        } else {
            vec![pids[0]]
        };
        for &pid in &stop {
            signal(pid, Signal::SIGSTOP);
        }
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            for pid in stop {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
            }
        });
    });
}

/// Realtime with a deadline: both workers killed at once. The host keeps getting finite audio,
/// the gap (if the rebuild misses the deadline) is a fade, and every block that was not filled
/// by the fallback equals the reference.
#[test]
fn both_killed_at_once_in_realtime_fades_and_recovers() {
    let tuning = Tuning {
        deadline_fraction: 0.8,
        ..patient()
    };
    let mut engine = Engine::activate_with(config(ProcessMode::Realtime, N, 0), tuning).unwrap();
    settle(&engine, 0);
    let mut reference = tandem::engine::ReferenceEngine::new(SR, N, 0).unwrap();
    let mut phrase = Phrase::new(3);
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    let (mut wl, mut wr) = (vec![0.0; N], vec![0.0; N]);
    let mut fallback_blocks = 0;
    let mut exact_after_recovery = 0;
    for b in 0..600 {
        if b == 100 {
            for pid in engine.worker_pids() {
                signal(pid, Signal::SIGKILL);
            }
        }
        let (events, params) = phrase.block(N);
        let report = engine.process(events, params, None, [&mut l, &mut r]);
        reference.process(events, params, None, [&mut wl, &mut wr]);
        assert!(l.iter().chain(&r).all(|s| s.is_finite() && s.abs() <= 16.0));
        let served = N - report.fallback_frames as usize;
        assert_eq!(differing(&l[..served], &wl[..served]), 0, "block {b}");
        if report.fallback_frames > 0 {
            fallback_blocks += 1;
            // The fallback never grows: a fade from the last good sample towards silence.
            for ch in [&l, &r] {
                for w in ch[served.max(1) - 1..].windows(2) {
                    assert!(w[1].abs() <= w[0].abs(), "fallback must fade, block {b}");
                }
            }
        } else if b > 100 && engine.in_lockstep() {
            exact_after_recovery += 1;
        }
        // A host on the audio clock: one faster would be rendering, and get exact frames.
        std::thread::sleep(PERIOD);
    }
    eprintln!(
        "{fallback_blocks} fallback blocks; log: {:#?}",
        engine.drain_log()
    );
    assert!(
        exact_after_recovery > 100,
        "recovered to two workers and exact output"
    );
}

/// A worker pair stopped past the deadline yields a declicked fallback, counted as xruns, and
/// the stream is exact again once a worker answers.
#[test]
fn realtime_deadline_fallback_and_recovery() {
    let tuning = Tuning {
        deadline_fraction: 20.0,
        hang_timeout: Duration::from_secs(30),
        ..patient()
    };
    let mut engine = Engine::activate_with(config(ProcessMode::Realtime, N, 0), tuning).unwrap();
    settle(&engine, 0);
    let mut reference = tandem::engine::ReferenceEngine::new(SR, N, 0).unwrap();
    let mut phrase = Phrase::new(5);
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    let (mut wl, mut wr) = (vec![0.0; N], vec![0.0; N]);
    let mut pids = Vec::new();
    let mut fallback_frames = 0;
    for b in 0..300 {
        if b == 100 {
            pids = engine.worker_pids();
            assert_eq!(pids.len(), 2, "{:#?}", engine.drain_log());
            pids.iter().for_each(|&p| signal(p, Signal::SIGSTOP));
        }
        if b == 103 {
            pids.iter().for_each(|&p| signal(p, Signal::SIGCONT));
        }
        let (events, params) = phrase.block(N);
        let report = engine.process(events, params, None, [&mut l, &mut r]);
        reference.process(events, params, None, [&mut wl, &mut wr]);
        std::thread::sleep(PERIOD);
        assert!(l.iter().chain(&r).all(|s| s.is_finite()));
        fallback_frames += report.fallback_frames;
        if (100..103).contains(&b) {
            assert_eq!(
                report.fallback_frames as usize, N,
                "stopped workers cannot answer"
            );
        } else if b >= 110 {
            assert_eq!(report.fallback_frames, 0, "block {b}");
            assert_eq!(
                differing(&l, &wl) + differing(&r, &wr),
                0,
                "block {b} exact again"
            );
        }
    }
    let counted = engine
        .stats()
        .xrun_frames
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(counted, fallback_frames as u64);
    assert!(counted >= 3 * N as u64);
}

/// A bounce at 32-frame blocks runs many times faster than real time; a replacement worker
/// must still catch up and rejoin from a checkpoint (never from a fresh state), every time,
/// with exact output.
#[test]
fn offline_bounce_at_small_blocks_rejoins_after_every_kill() {
    let block = 32;
    let mut engine = common::engine(ProcessMode::Offline, block, block as u32);
    settle(&engine, 0);
    let mut kills = 0u64;
    let both = render_both(&mut engine, 21, block, 4000, block as u32, |engine, b| {
        if b % 500 == 250 {
            settle(engine, kills);
            signal(
                engine.worker_pid(engine.serving_slot()).unwrap(),
                Signal::SIGKILL,
            );
            kills += 1;
        }
    });
    settle(&engine, kills);
    let log = engine.drain_log();
    assert!(!log.iter().any(|l| l.contains("fresh state")), "{log:#?}");
    assert_eq!(differing(&both.got, &both.want), 0);
    assert_eq!(both.got_ends, both.want_ends);
}

/// Renders `blocks` blocks at latency `N`, asking the serving worker before block `at` to
/// commit `kind` and pausing `pause` before the next block, then waits for the replacement.
/// Returns what was heard, the pid of the worker asked, and every eviction as (pid, reason).
fn fault_serving_at(
    seed: u64,
    blocks: usize,
    at: usize,
    kind: FaultKind,
    pause: Duration,
) -> (Both, u32, Vec<(u32, EvictReason)>) {
    let mut engine = common::engine(ProcessMode::Realtime, N, N as u32);
    settle(&engine, 0);
    let mut rogue = 0;
    let both = render_both(&mut engine, seed, N, blocks, N as u32, |engine, b| {
        if b == at {
            let slot = engine.serving_slot();
            rogue = engine.worker_pid(slot).unwrap();
            engine.inject_fault(slot, kind as u32, 0);
        }
        if b == at + 1 {
            std::thread::sleep(pause);
        }
    });
    settle(&engine, 1);
    let evicted = engine
        .drain_events()
        .iter()
        .filter_map(|e| match e {
            EngineEvent::WorkerEvicted { pid, reason, .. } => Some((*pid, *reason)),
            _ => None,
        })
        .collect();
    (both, rogue, evicted)
}

/// The supervisor may see the digest mismatch of a NaN chunk before the audio thread reads it:
/// it must still evict the worker that wrote NaN (here the serving one), not its healthy twin.
#[test]
fn a_serving_worker_writing_nan_is_the_one_evicted() {
    // The pause: the NaN chunk is rendered by both workers but not read yet, so the supervisor
    // compares the digests first.
    let pause = Duration::from_millis(50);
    let (both, rogue, evicted) = fault_serving_at(31, 60, 20, FaultKind::NaN, pause);
    let pids: Vec<u32> = evicted.iter().map(|&(pid, _)| pid).collect();
    assert_eq!(pids, vec![rogue], "{evicted:#?}");
    assert_eq!(differing(&both.got, &both.want), 0);
    assert_eq!(both.got_ends, both.want_ends);
}

/// A worker that writes a malformed voice-end table (its audio and digest honest) is evicted
/// for it, by whichever validating reader meets the table first (the audio thread serving from
/// it, or the supervisor's check of each worker's latest chunk), and never its twin. The output
/// stays bit-exact; of the voice ends, none is invented or repeated, and at most those of the
/// one chunk the audio thread found malformed are lost.
#[test]
fn a_worker_writing_a_bad_voice_end_table_is_evicted() {
    let kind = FaultKind::BadVoiceEnds;
    let (both, rogue, evicted) = fault_serving_at(41, 400, 100, kind, Duration::ZERO);
    let expected = vec![(rogue, EvictReason::Rogue(Rogue::BadVoiceEnds))];
    assert_eq!(evicted, expected);
    assert!(peak(&both.want) > 0.01);
    assert_eq!(differing(&both.got, &both.want), 0);
    assert!(!both.want_ends.is_empty());
    // The engine's ends are the reference's in order, with some perhaps missing.
    let mut got = both.got_ends.iter().peekable();
    let mut missing = Vec::new();
    for want in &both.want_ends {
        if got.peek() == Some(&want) {
            got.next();
        } else {
            missing.push(*want);
        }
    }
    let extra: Vec<_> = got.collect();
    assert!(
        extra.is_empty(),
        "ends the reference does not have: {extra:?}"
    );
    // With latency N and blocks of N frames, each block delivers exactly one chunk.
    let chunks: BTreeSet<u64> = missing.iter().map(|(frame, _)| frame / N as u64).collect();
    assert!(chunks.len() <= 1, "ends lost beyond one chunk: {missing:?}");
}

/// Both workers killed at once, offline at one block of latency, with a checkpoint asked for
/// every block, each kill one block after lockstep (when the chunk posted last may have been
/// snapshotted but not yet delivered) and seen by the supervisor before the next block: the
/// audio thread reads a block behind what was posted, so a checkpoint taken from a chunk it has
/// not delivered yet would leave frames in no ring after the double death, and an offline wait
/// for them would never end. The render must finish (the bound here is only so a hang fails
/// instead of stalling the suite) and equal the reference bit for bit.
#[test]
fn double_deaths_offline_with_a_checkpoint_every_block_finish_exact() {
    let render = std::thread::spawn(|| {
        let tuning = Tuning {
            checkpoint_frames: N as u32,
            ..patient()
        };
        let config = config(ProcessMode::Offline, N, N as u32);
        let mut engine = Engine::activate_with(config, tuning).expect("activate");
        settle(&engine, 0);
        let mut rng = Rng::new(0xdead);
        let (mut next, mut done) = (8, 0u64);
        let both = render_both(&mut engine, 23, N, 8 + 20 * 9, N as u32, |engine, b| {
            if b == next && done < 20 {
                // Back in lockstep, with a checkpoint asked for after the chunk posted next.
                settle(engine, 2 * done);
            }
            if b == next + 1 && done < 20 {
                // That chunk is posted and rendered, not delivered: give the supervisor time to
                // take its snapshot, then kill both.
                std::thread::sleep(Duration::from_millis(20));
                for pid in engine.worker_pids() {
                    signal(pid, Signal::SIGKILL);
                }
                // And let it see both deaths before the next block asks for those frames.
                std::thread::sleep(Duration::from_millis(20));
                done += 1;
                next = b + 2 + rng.below(6) as usize;
            }
        });
        (done, differing(&both.got, &both.want))
    });
    let t0 = std::time::Instant::now();
    while !render.is_finished() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the offline render hung"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (kills, differing) = render.join().expect("the render thread");
    assert_eq!(kills, 20);
    assert_eq!(differing, 0, "frames differ from the reference");
}

/// No offline wait is unbounded: with both workers stopped and a hang check that would take an
/// hour, `process()` gives up after `Tuning::offline_wait_bound` with the declicked fade, counted
/// (and logged) as an xrun, and the export goes on.
#[test]
fn an_offline_wait_gives_up_after_its_bound() {
    let tuning = Tuning {
        hang_timeout: Duration::from_secs(3600),
        offline_wait_bound: Duration::from_millis(200),
        ..patient()
    };
    let mut engine =
        Engine::activate_with(config(ProcessMode::Offline, N, 0), tuning).expect("activate");
    settle(&engine, 0);
    let pids = engine.worker_pids();
    for &pid in &pids {
        signal(pid, Signal::SIGSTOP);
    }
    let mut phrase = Phrase::new(3);
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    for _ in 0..3 {
        let (events, params) = phrase.block(N);
        let report = engine.process(events, params, None, [&mut l, &mut r]);
        assert_eq!(report.fallback_frames, N as u32);
    }
    for &pid in &pids {
        signal(pid, Signal::SIGCONT);
    }
    assert_eq!(
        engine.stats().xrun_frames.load(Ordering::Relaxed),
        3 * N as u64
    );
}

/// An idle engine (no `process()` call: its supervisor sleeps without a timeout and its workers
/// sleep on the input futex) still notices a worker's death, rebuilds it, and then renders
/// exactly what the reference does once blocks come again.
#[test]
fn an_idle_engine_rebuilds_a_dead_worker_and_wakes_for_new_blocks() {
    let mut engine = engine(ProcessMode::Realtime, N, N as u32);
    settle(&engine, 0);
    let both = render_both(&mut engine, 5, N, 80, N as u32, |engine, b| {
        if b == 40 || b == 60 {
            // Idle long enough for everyone to fall asleep, then kill a worker.
            let round = b as u64 / 20 - 1;
            std::thread::sleep(Duration::from_millis(50));
            let pid = engine.worker_pid(round as usize % 2).expect("a worker");
            signal(pid, Signal::SIGKILL);
            settle(engine, round);
        }
    });
    let log = engine.drain_log();
    assert!(peak(&both.want) > 0.01);
    assert_eq!(differing(&both.got, &both.want), 0, "log: {log:#?}");
}

/// A realtime engine with `hang_timeout`, both workers verified and past their first chunks
/// (no longer judged as workers still starting up).
fn past_start_up(hang_timeout: Duration) -> Engine {
    let tuning = Tuning {
        hang_timeout,
        ..patient()
    };
    let mut engine = Engine::activate_with(config(ProcessMode::Realtime, N, N as u32), tuning)
        .expect("activate");
    settle(&engine, 0);
    let params = Phrase::new(3).params;
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    for _ in 0..8 {
        engine.process(&[], &params, None, [&mut l, &mut r]);
        std::thread::sleep(PERIOD);
    }
    engine
}

/// A stopped worker and one in an endless loop (sleeping 1 ns a turn) are judged by what the
/// kernel says of them (stopped; running without finishing a chunk) early in the stall (a
/// twentieth of the hang timeout in, and for the loop a fifth of it of CPU past that), not at
/// the timeout: their replacement then replays less. With a 2.5 s timeout here, each must be
/// evicted as hung before the timeout would evict it, and the looping one (after 0.5 s of its
/// CPU past the first look) before `RLIMIT_RTTIME` kills it (2 s of CPU).
#[test]
fn a_stopped_or_looping_worker_is_judged_before_the_hang_timeout() {
    let hang_timeout = Duration::from_millis(2500);
    for name in ["SIGSTOP", "endless loop"] {
        let mut engine = past_start_up(hang_timeout);
        let params = Phrase::new(3).params;
        let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
        let twin = 1 - engine.serving_slot();
        let pid = engine.worker_pid(twin).unwrap();
        match name {
            "SIGSTOP" => signal(pid, Signal::SIGSTOP),
            // Not `InfiniteLoop`: at a real-time priority `RLIMIT_RTTIME` kills that one first.
            _ => engine.inject_fault(twin, FaultKind::SpinSleeping as u32, 0),
        }
        let started = std::time::Instant::now();
        let (mut evicted, mut log) = (None, Vec::new());
        while evicted.is_none() && started.elapsed() < 2 * hang_timeout {
            engine.process(&[], &params, None, [&mut l, &mut r]);
            std::thread::sleep(PERIOD);
            for e in engine.drain_events() {
                if let EngineEvent::WorkerEvicted { pid: p, reason, .. } = e {
                    if p == pid {
                        evicted = Some((reason, started.elapsed()));
                    }
                }
                log.push(format!("{:?}: {e}", started.elapsed()));
            }
        }
        let (reason, after) = evicted.unwrap_or_else(|| panic!("{name}: not evicted: {log:#?}"));
        assert_eq!(reason, EvictReason::Hang, "{name}");
        assert!(after < hang_timeout, "{name}: evicted only after {after:?}");
    }
}

/// A hang's rebuild starts from a snapshot its twin took during the stall, not from the
/// checkpoint before it, so the newcomer replays a little, not the whole stall: the twin's
/// snapshots wait only for the hung worker's digests, which never come, and a snapshot asked of
/// the hung worker is asked of the twin once the audio thread serves from it. The serving
/// worker is the one stopped, so a request in flight is its own. Paced as a host playing to a
/// sound card is: a host rendering faster than real time would wait for the stopped worker's
/// digests (`engine/pace.rs`), and post nothing meanwhile.
#[test]
fn a_hangs_rebuild_starts_from_a_snapshot_taken_during_the_stall() {
    let hang_timeout = Duration::from_millis(2500);
    let mut engine = past_start_up(hang_timeout);
    let params = Phrase::new(3).params;
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    let slot = engine.serving_slot();
    let pid = engine.worker_pid(slot).unwrap();
    engine.drain_events();
    let stopped_at_chunk = engine.frames_posted() / N as u64;
    signal(pid, Signal::SIGSTOP);
    let started = std::time::Instant::now();
    let (mut evicted, mut from_chunk, mut log) = (false, None, Vec::new());
    // A liveness bound: the hang check evicts it within the timeout.
    while !(evicted && from_chunk.is_some()) && started.elapsed() < 2 * hang_timeout {
        engine.process(&[], &params, None, [&mut l, &mut r]);
        std::thread::sleep(PERIOD);
        for e in engine.drain_events() {
            match e {
                EngineEvent::WorkerEvicted { pid: p, .. } if p == pid => evicted = true,
                // Reported before the eviction: the rebuild starts first.
                EngineEvent::WorkerSpawned {
                    slot: s,
                    from_chunk: c,
                    ..
                } if s == slot => from_chunk = Some(c),
                _ => {}
            }
            log.push(format!("{:?}: {e}", started.elapsed()));
        }
    }
    let from_chunk = from_chunk
        .filter(|_| evicted)
        .unwrap_or_else(|| panic!("not evicted and rebuilt: {log:#?}"));
    assert!(
        from_chunk >= Some(stopped_at_chunk),
        "stopped after chunk {stopped_at_chunk}, rebuilt from after {from_chunk:?}: {log:#?}"
    );
}

/// Both workers stopped at once (a debugger, a paused host) is not two hangs: neither is judged
/// early, however the stamps of their stalls fall, and once resumed before the hang timeout
/// both are still there.
#[test]
fn two_stopped_workers_are_not_judged_early() {
    let hang_timeout = Duration::from_millis(2500);
    let mut engine = past_start_up(hang_timeout);
    let params = Phrase::new(3).params;
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    engine.drain_events();
    let pids = [0, 1].map(|slot| engine.worker_pid(slot).expect("a worker"));
    for pid in pids {
        signal(pid, Signal::SIGSTOP);
    }
    // Resumed well past the first look (125 ms) and the loop's CPU bound (500 ms), short of the
    // timeout, from another thread: a call may wait for the stopped workers meanwhile.
    let resume = std::thread::spawn(move || {
        std::thread::sleep(hang_timeout / 2);
        for pid in pids {
            // Not `signal`: an evicted worker is gone, and the assertion below says why.
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
        }
    });
    let started = std::time::Instant::now();
    while started.elapsed() < hang_timeout * 3 / 4 {
        engine.process(&[], &params, None, [&mut l, &mut r]);
        std::thread::sleep(PERIOD);
    }
    resume.join().expect("resume");
    let events = engine.drain_events();
    let evicted = events
        .iter()
        .any(|e| matches!(e, EngineEvent::WorkerEvicted { .. }));
    assert!(!evicted, "stopped together, judged early: {events:#?}");
    assert_eq!([0, 1].map(|slot| engine.worker_pid(slot)), pids.map(Some));
}

/// A panic in a worker is a crash and is reported as one (SIGABRT, after its message), not as
/// the sandbox's SIGSYS that unwinding would meet while dropping the shared regions: a log that
/// said SIGSYS would send whoever reads it after a sandbox escape that never was.
#[test]
fn a_panicking_worker_dies_of_sigabrt() {
    let mut engine = common::engine(ProcessMode::Realtime, N, N as u32);
    settle(&engine, 0);
    let params = Phrase::new(3).params;
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    for _ in 0..8 {
        engine.process(&[], &params, None, [&mut l, &mut r]);
    }
    let pid = engine.worker_pid(0).unwrap();
    engine.inject_fault(0, FaultKind::Panic as u32, 0);
    let mut events = Vec::new();
    let died = |events: &[EngineEvent]| {
        events.iter().find_map(|e| match e {
            EngineEvent::WorkerDied { pid: p, cause, .. } if *p == pid => Some(*cause),
            _ => None,
        })
    };
    // A liveness bound: the death is seen within a few blocks.
    for _ in 0..2000 {
        if died(&events).is_some() {
            break;
        }
        engine.process(&[], &params, None, [&mut l, &mut r]);
        std::thread::sleep(PERIOD);
        events.extend(engine.drain_events());
    }
    let cause = died(&events);
    assert_eq!(
        cause,
        Some(WorkerExit::Signalled(libc::SIGABRT)),
        "{events:#?}"
    );
}
