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

/// Renders `blocks` blocks back to back at latency `N`, stopping both workers before block `at`
/// and resuming them `stop` later (those still there: the hang check may have replaced them).
/// Returns what was heard and the workers stopped.
fn render_through_a_stop(
    engine: &mut Engine,
    blocks: usize,
    at: usize,
    stop: Duration,
) -> (Both, Vec<u32>) {
    let mut stopped = Vec::new();
    let both = render_both(engine, 31, N, blocks, N as u32, |engine, b| {
        if b == at {
            stopped = engine.worker_pids();
            signal_all(&stopped, Signal::SIGSTOP);
            let pids = stopped.clone();
            std::thread::spawn(move || {
                std::thread::sleep(stop);
                for &pid in &pids {
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
                }
            });
        }
    });
    assert_eq!(stopped.len(), 2);
    assert!(peak(&both.want) > 0.01);
    (both, stopped)
}

/// Every frame once the pace is known equals the reference (until then a block gets the
/// realtime deadline).
fn assert_exact_once_paced(both: &Both, log: &[String]) {
    let from = LEARNING_BLOCKS * 2 * N;
    assert_eq!(
        differing(&both.got[from..], &both.want[from..]),
        0,
        "{log:#?}"
    );
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
    // Both workers stop for many block periods: a caller that does not wait hears the
    // fallback.
    let (both, _) = render_through_a_stop(&mut engine, 400, 200, Duration::from_millis(40));
    assert_exact_once_paced(&both, &engine.drain_log());
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
    let (both, stopped) = render_through_a_stop(&mut engine, 600, 300, Duration::from_millis(80));
    let log = engine.drain_log();
    let evicted = stopped
        .iter()
        .filter(|pid| {
            log.iter()
                .any(|l| l.contains(&format!("pid {pid}) evicted: hung")))
        })
        .count();
    assert_eq!(evicted, 2, "{log:#?}");
    assert_exact_once_paced(&both, &log);
}
