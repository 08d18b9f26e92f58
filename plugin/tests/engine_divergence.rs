//! Finite divergence: two verified workers whose digests differ with finite audio. Neither is
//! trusted for being verified or for serving: a third opinion (the supervisor's own replay from
//! the last agreed checkpoint) decides, and the worker that disagrees with it goes.

mod common;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shm::FaultKind;
use std::time::{Duration, Instant};
use tandem::engine::{Engine, EngineEvent, EvictReason, ProcessMode, Tuning};

const N: usize = 256;

/// The serving worker flips one low bit of one sample (its digest honestly covers the flip).
/// The pause gives the supervisor time to compare the chunk's digests before the audio thread
/// (one block behind at latency N) reads it: the flipper, not its honest twin, must be evicted,
/// and the host must hear exactly the reference.
#[test]
fn a_serving_worker_that_flips_a_bit_is_the_one_evicted() {
    for (seed, at) in [(51, 30), (52, 70), (53, 111)] {
        let mut engine = common::engine(ProcessMode::Realtime, N, N as u32);
        assert!(wait_for_lockstep(&mut engine, N));
        let mut flipper = 0;
        let both = render_both(&mut engine, seed, N, at + 60, N as u32, |engine, b| {
            if b == at {
                let slot = engine.serving_slot();
                flipper = engine.worker_pid(slot).unwrap();
                engine.inject_fault(slot, FaultKind::FlipLowBit as u32, 0);
            }
            if b == at + 1 {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let (events, evicted) = evictions_after_a_failure(&engine, Duration::from_secs(20));
        assert_eq!(
            evicted,
            vec![(flipper, EvictReason::Divergence)],
            "{events:#?}"
        );
        assert!(peak(&both.want) > 0.01);
        assert_eq!(differing(&both.got, &both.want), 0, "{events:#?}");
        assert_eq!(both.got_ends, both.want_ends);
    }
}

/// Where the audio thread can wait for the twin (offline; at latency 0 with a generous
/// deadline), the serving worker flips one low bit of a chunk (its digest honestly covers the
/// flip) while its twin is stopped, so the twin has no digest for that chunk yet: the chunk is
/// not served on the flipper's digest alone. The audio thread waits for the twin's; the digests
/// differ, the supervisor evicts the flipper, and the host hears exactly the reference.
#[test]
fn a_flipped_bit_is_not_served_before_the_twin_has_its_digest() {
    let cases = [
        (ProcessMode::Offline, 0, 71),
        (ProcessMode::Offline, N as u32, 72),
        (ProcessMode::Realtime, 0, 73),
    ];
    for (mode, latency, seed) in cases {
        let at = 40;
        // A stopped twin keeps its slot: only the digest comparison may remove a worker here.
        let tuning = Tuning {
            hang_timeout: Duration::from_secs(3600),
            ..patient()
        };
        let mut engine = Engine::activate_with(config(mode, N, latency), tuning).expect("activate");
        assert!(wait_for_lockstep(&mut engine, N));
        let mut flipper = 0;
        let both = render_both(&mut engine, seed, N, at + 40, latency, |engine, b| {
            if b == at {
                let slot = engine.serving_slot();
                flipper = engine.worker_pid(slot).unwrap();
                let twin = engine.worker_pid(1 - slot).unwrap();
                signal(twin, Signal::SIGSTOP);
                engine.inject_fault(slot, FaultKind::FlipLowBit as u32, 0);
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(200));
                    signal(twin, Signal::SIGCONT);
                });
            }
        });
        let (events, evicted) = evictions_after_a_failure(&engine, Duration::from_secs(20));
        let case = format!("{mode:?} at L {latency}");
        assert_eq!(
            evicted,
            vec![(flipper, EvictReason::Divergence)],
            "{case}: {events:#?}"
        );
        assert!(peak(&both.want) > 0.01);
        assert_eq!(differing(&both.got, &both.want), 0, "{case}: {events:#?}");
        assert_eq!(both.got_ends, both.want_ends, "{case}");
    }
}

/// What the host hears on one worker's word alone is declared (`unconfirmed_frames`): in
/// Lockstep, every frame served while the twin is stopped (at latency 0 in real time the twin's
/// digest is waited for until the deadline, then the serving ring's frames go out unconfirmed);
/// in Eco, every frame, since one worker renders.
#[test]
fn frames_served_on_one_workers_word_are_declared() {
    let period = Duration::from_micros((N as u64 * 1_000_000) / SR as u64);
    let tuning = Tuning {
        hang_timeout: Duration::from_secs(3600),
        ..Tuning::default()
    };
    let lockstep = config(ProcessMode::Realtime, N, 0);
    let mut engine = Engine::activate_with(lockstep, tuning.clone()).expect("activate");
    assert!(wait_for_lockstep(&mut engine, N));
    let (stop_at, cont_at) = (20, 40);
    let both = render_both(&mut engine, 81, N, 60, 0, |engine, b| {
        let twin = || engine.worker_pid(1 - engine.serving_slot()).unwrap();
        if b == stop_at {
            signal(twin(), Signal::SIGSTOP);
            // Stopped before the next chunk is posted.
            std::thread::sleep(Duration::from_millis(5));
        }
        if b == cont_at {
            signal(twin(), Signal::SIGCONT);
        }
        // The host's period clock: not a render faster than real time.
        std::thread::sleep(period);
    });
    for (b, report) in both.reports.iter().enumerate().take(cont_at).skip(stop_at) {
        let told = report.unconfirmed_frames + report.fallback_frames;
        assert_eq!(told as usize, N, "block {b}: {report:?}");
    }
    drop(engine);

    let eco = tandem::engine::EngineConfig {
        protection: tandem::engine::Protection::Eco,
        ..config(ProcessMode::Offline, N, N as u32)
    };
    // No audit: its standby would be a verified twin for a moment.
    let tuning = Tuning {
        audit_interval: Duration::from_secs(3600),
        ..patient()
    };
    let mut engine = Engine::activate_with(eco, tuning).expect("activate");
    let both = render_both(&mut engine, 82, N, 30, N as u32, |_, _| {});
    assert_eq!(differing(&both.got, &both.want), 0);
    // The first block is the latency's silence.
    for (b, report) in both.reports.iter().enumerate().skip(1) {
        assert_eq!(
            report.unconfirmed_frames as usize, N,
            "block {b}: {report:?}"
        );
    }
}

fn signal(pid: u32, sig: Signal) {
    kill(Pid::from_raw(pid as i32), sig).expect("kill");
}

/// The serving worker publishes an honest digest for a chunk and then overwrites the chunk's
/// finished frames: no comparison of digests can see it, only a check of what the audio thread
/// copies. The host hears exactly the reference (the twin's frames), and that worker alone is
/// evicted. At a latency of one block the chunk is served whole in one block; at a block and a
/// half (plus 3 frames) each chunk is cut across two blocks and served from the staging copy.
/// The pause before the next block lets the worker finish its overwrite before the audio thread
/// copies the chunk, so the check must catch it.
#[test]
fn a_worker_that_overwrites_finished_frames_is_never_heard() {
    for (seed, latency) in [(61, N as u32), (62, (N + N / 2 + 3) as u32)] {
        let at = 40;
        let mut engine = common::engine(ProcessMode::Realtime, N, latency);
        assert!(wait_for_lockstep(&mut engine, N));
        let mut rogue = 0;
        let both = render_both(&mut engine, seed, N, at + 80, latency, |engine, b| {
            if b == at {
                let slot = engine.serving_slot();
                rogue = engine.worker_pid(slot).unwrap();
                engine.inject_fault(slot, FaultKind::OverwriteFinished as u32, 0);
            }
            if b == at + 1 {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let (events, evicted) = evictions_after_a_failure(&engine, Duration::from_secs(5));
        let expected = vec![(rogue, EvictReason::Rogue(shm::Rogue::ServedDiffers))];
        assert_eq!(evicted, expected, "L {latency}: {events:#?}");
        assert!(peak(&both.want) > 0.01);
        assert_eq!(differing(&both.got, &both.want), 0, "L {latency}");
        assert_eq!(both.got_ends, both.want_ends, "L {latency}");
    }
}

/// At latency 0 the audio thread copies a chunk as soon as it is done, racing the overwrite:
/// a copy made before it is the honest chunk (and nothing is evicted), one made during or after
/// it is caught. Either way the host hears exactly the reference.
#[test]
fn an_overwrite_racing_the_copy_at_latency_zero_is_never_heard() {
    for (seed, at) in [(71, 30), (72, 50), (73, 70)] {
        let mut engine = common::engine(ProcessMode::Realtime, N, 0);
        assert!(wait_for_lockstep(&mut engine, N));
        let mut rogue = 0;
        let both = render_both(&mut engine, seed, N, at + 60, 0, |engine, b| {
            if b == at {
                let slot = engine.serving_slot();
                rogue = engine.worker_pid(slot).unwrap();
                engine.inject_fault(slot, FaultKind::OverwriteFinished as u32, 0);
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        let events = engine.drain_events();
        for e in &events {
            if let EngineEvent::WorkerEvicted { pid, reason, .. } = e {
                assert_eq!(
                    (*pid, *reason),
                    (rogue, EvictReason::Rogue(shm::Rogue::ServedDiffers))
                );
            }
        }
        assert!(peak(&both.want) > 0.01);
        assert_eq!(differing(&both.got, &both.want), 0, "{events:#?}");
        assert_eq!(both.got_ends, both.want_ends);
    }
}

/// Waits (up to `patience`, a liveness bound) until the engine has seen a worker failure, then
/// returns its events and, of those, the evictions as (pid, reason).
fn evictions_after_a_failure(
    engine: &Engine,
    patience: Duration,
) -> (Vec<EngineEvent>, Vec<(u32, EvictReason)>) {
    let t0 = Instant::now();
    while engine
        .stats()
        .failures
        .load(std::sync::atomic::Ordering::Relaxed)
        < 1
        && t0.elapsed() < patience
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    let events = engine.drain_events();
    let evicted = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::WorkerEvicted { pid, reason, .. } => Some((*pid, *reason)),
            _ => None,
        })
        .collect();
    (events, evicted)
}
