//! A host that renders faster than real time in realtime mode (pedalboard, DawDreamer) gets
//! exact frames, as offline does, even while both workers stall: the engine tells it from the
//! call pace (docs/ARCHITECTURE.md, "Timing"). A host on the audio clock still gets the realtime
//! deadline (`engine_failover.rs`, `realtime_deadline_fallback_and_recovery`).

mod common;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::Duration;
use tandem::engine::{Engine, ProcessMode, Tuning};

const N: usize = 256;

/// Blocks a render takes to show its pace (a few, see `plugin/src/engine/pace.rs`), with room.
const LEARNING_BLOCKS: usize = 16;

fn signal_all(pids: &[u32], sig: Signal) {
    for &pid in pids {
        kill(Pid::from_raw(pid as i32), sig).expect("kill");
    }
}

#[test]
fn rendering_back_to_back_in_realtime_mode_is_exact_through_a_stall() {
    // The default realtime deadline; only the hang check is slow enough that the stall below
    // costs no worker.
    let tuning = Tuning {
        hang_timeout: Duration::from_secs(30),
        ..Tuning::default()
    };
    let mut engine = Engine::activate_with(config(ProcessMode::Realtime, N, N as u32), tuning)
        .expect("activate");
    let mut stopped = Vec::new();
    let both = render_both(&mut engine, 31, N, 400, N as u32, |engine, b| {
        if b == 200 {
            // Both workers stop for many block periods: a caller that does not wait hears
            // the fallback.
            stopped = engine.worker_pids();
            signal_all(&stopped, Signal::SIGSTOP);
            let pids = stopped.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(40));
                signal_all(&pids, Signal::SIGCONT);
            });
        }
    });
    assert_eq!(stopped.len(), 2);
    assert!(peak(&both.want) > 0.01);
    // The pace is known after a few blocks; until then a block gets the realtime deadline.
    let from = LEARNING_BLOCKS * 2 * N;
    assert_eq!(
        differing(&both.got[from..], &both.want[from..]),
        0,
        "{:#?}",
        engine.drain_log()
    );
}

/// As above, with the default hang check and a stop longer than its timeout: both workers are
/// evicted together, and the render, waiting for exact frames, rebuilds them from a checkpoint
/// and stays exact.
#[test]
fn rendering_back_to_back_is_exact_when_both_stopped_workers_are_replaced() {
    let mut engine = Engine::activate_with(
        config(ProcessMode::Realtime, N, N as u32),
        Tuning::default(),
    )
    .expect("activate");
    let mut stopped = Vec::new();
    let both = render_both(&mut engine, 31, N, 600, N as u32, |engine, b| {
        if b == 300 {
            stopped = engine.worker_pids();
            signal_all(&stopped, Signal::SIGSTOP);
            let pids = stopped.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(80));
                for &pid in &pids {
                    // Replaced as hung meanwhile.
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
                }
            });
        }
    });
    assert_eq!(stopped.len(), 2);
    assert!(peak(&both.want) > 0.01);
    let log = engine.drain_log();
    let evicted = stopped
        .iter()
        .filter(|pid| {
            log.iter()
                .any(|l| l.contains(&format!("pid {pid}) evicted: hung")))
        })
        .count();
    assert_eq!(evicted, 2, "{log:#?}");
    let from = LEARNING_BLOCKS * 2 * N;
    assert_eq!(
        differing(&both.got[from..], &both.want[from..]),
        0,
        "{log:#?}"
    );
}
