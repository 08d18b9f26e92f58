//! An offline render stays bit-identical through a double death while a starved twin lags
//! (docs/ARCHITECTURE.md, "Failure detection and rebuild", "Rebuild").
//!
//! A checkpoint's chunk is judged by the digest comparison before it becomes the checkpoint, so
//! while one twin lags, the checkpoint lags with it; offline, the host does not wait for a
//! starved verified twin (issue 13 item 7), so at 512-frame blocks (the input ring holds 64
//! of them) the checkpoint can fall out of the ring. Both workers killed then could only restart
//! from a fresh state (`StateLost`), and the offline wait for the frames in no ring ran into its
//! bound. The chaos soak found it (`cargo xtask bench soak --seconds 480 --seed 7`).
//!
//! The lag is made with `SIGSTOP`, not left to the scheduler: the non-serving worker stops, the
//! render runs ahead, it resumes and catches up (the checkpoint taken before it stopped is judged
//! then, and the next one is asked for at the head), and it stops again. The hang timeout is
//! long, so the stopped worker keeps its slot as a starved one does (up to 2 s); everything else
//! is the soak's tuning.

mod common;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::Duration;
use tandem::engine::{Engine, EngineEvent, ProcessMode, ReferenceEngine, Tuning};

/// The block the soak found it at; one chunk per block.
const N: usize = 512;

fn signal(pid: u32, sig: Signal) {
    kill(Pid::from_raw(pid as i32), sig).expect("kill");
}

fn double_death_behind_a_lagging_twin(latency: u32) {
    let tuning = Tuning {
        hang_timeout: Duration::from_secs(3600),
        ..Tuning::default()
    };
    let mut engine = offline_in_lockstep(latency, tuning);
    // Blocks the lagging twin is behind in each of its stops: more than half the ring together,
    // less than the three quarters at which the supervisor rebuilds it (`left_behind`).
    let lag = engine.ring_config().audio_capacity as usize / N * 2 / 3;
    let (first_stop, second_stop) = (20, 20 + lag);
    let kill_at = second_stop + lag;
    let mut laggard = 0;
    let both = render_both(&mut engine, 7, N, kill_at + 60, latency, |engine, b| {
        if b == first_stop {
            laggard = engine
                .worker_pid(1 - engine.serving_slot())
                .expect("a twin");
            signal(laggard, Signal::SIGSTOP);
        }
        if b == second_stop {
            // Caught up with no new block, its digests compared; then stopped again.
            signal(laggard, Signal::SIGCONT);
            std::thread::sleep(Duration::from_millis(200));
            signal(laggard, Signal::SIGSTOP);
        }
        if b == kill_at {
            kill_both(engine);
        }
    });
    assert_exact_without_a_fresh_restart(&engine.drain_events(), &both);
}

/// Kills every worker, then lets the supervisor see both deaths before the next block asks for
/// frames.
fn kill_both(engine: &Engine) {
    for pid in engine.worker_pids() {
        signal(pid, Signal::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(50));
}

/// The render after a double death: rebuilt from a checkpoint (no `StateLost`), bit-identical.
fn assert_exact_without_a_fresh_restart(events: &[EngineEvent], both: &Both) {
    assert_eq!(state_lost_at(events), Vec::<u64>::new(), "log: {events:#?}");
    assert!(peak(&both.want) > 0.01);
    assert_eq!(
        differing(&both.got, &both.want),
        0,
        "output differs from the reference; log: {events:#?}"
    );
}

#[test]
fn double_death_behind_a_lagging_twin_at_one_block_latency() {
    double_death_behind_a_lagging_twin(N as u32);
}

#[test]
fn double_death_behind_a_lagging_twin_at_two_blocks_latency() {
    double_death_behind_a_lagging_twin(2 * N as u32);
}

/// Offline, the host renders many chunks for each pass of the supervisor, and a supervisor
/// starved of CPU takes no checkpoint meanwhile. Here it is starved outright: its tick is an
/// hour, so after the workers are verified it looks at the engine only when woken. The host
/// must pace itself to the snapshots (`Engine::wait_for_checkpoint`): a double death far past
/// the 128-block input ring still finds a state to rebuild from, with no fresh restart, and
/// the render stays bit-identical.
#[test]
fn a_double_death_offline_finds_a_recent_state_with_a_starved_supervisor() {
    let tuning = Tuning {
        tick: Duration::from_secs(3600),
        ..patient()
    };
    let latency = N as u32;
    let mut engine = offline_in_lockstep(latency, tuning);
    let kill_at = 300;
    let both = render_both(&mut engine, 5, N, kill_at + 60, latency, |engine, b| {
        if b == kill_at {
            kill_both(engine);
        }
    });
    assert_exact_without_a_fresh_restart(&engine.drain_events(), &both);
}

/// With no checkpoint the ring still holds (none is ever taken here), a double death restarts
/// from a fresh state (`StateLost`) at the first chunk the host has not been given, not at the
/// next one to be posted: the offline render never waits for frames in no ring, and from that
/// chunk on it equals a reference activated afresh there.
#[test]
fn a_fresh_restart_offline_starts_where_delivery_stopped() {
    let tuning = Tuning {
        checkpoint_frames: u32::MAX,
        offline_wait_bound: Duration::from_secs(2),
        ..Tuning::default()
    };
    let latency = N as u32;
    let mut engine =
        Engine::activate_with(config(ProcessMode::Offline, N, latency), tuning).expect("activate");
    // Past the 128-block input ring, then both killed between two blocks.
    let kill_at = 200;
    let mut reference = ReferenceEngine::new(SR, N, latency).unwrap();
    let mut phrase = Phrase::new(13);
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    let (mut got, mut want) = (Vec::new(), Vec::new());
    // Posted up to `kill_at`, delivered a block less: the fresh start is there.
    let fresh_at = kill_at - 1;
    for b in 0..kill_at + 40 {
        if b == kill_at {
            kill_both(&engine);
        }
        if b == fresh_at {
            reference = ReferenceEngine::new(SR, N, latency).unwrap();
        }
        let (events, params) = phrase.block(N);
        let report = engine.process(events, params, None, [&mut l, &mut r]);
        assert_eq!(
            report.fallback_frames,
            0,
            "block {b}: {:#?}",
            engine.drain_log()
        );
        got.push([&l[..], &r[..]].concat());
        reference.process(events, params, None, [&mut l, &mut r]);
        want.push([&l[..], &r[..]].concat());
    }
    let log = engine.drain_events();
    let lost = state_lost_at(&log);
    assert_eq!(lost, [fresh_at as u64], "log: {log:#?}");
    // The block the fresh reference starts at delivers frames of the old state (and the
    // reference, its silence before frame 0); every other block is exact.
    for b in (0..got.len()).filter(|&b| b != fresh_at) {
        assert_eq!(differing(&got[b], &want[b]), 0, "block {b}; log: {log:#?}");
    }
    assert!(peak(&want[want.len() - 1]) > 0.01);
}

/// An offline engine at `latency` with `tuning`, once both workers are verified.
fn offline_in_lockstep(latency: u32, tuning: Tuning) -> Engine {
    let mut engine =
        Engine::activate_with(config(ProcessMode::Offline, N, latency), tuning).expect("activate");
    assert!(
        wait_for_lockstep(&mut engine, N),
        "{:#?}",
        engine.drain_log()
    );
    engine
}
