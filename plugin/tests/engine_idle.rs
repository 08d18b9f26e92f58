//! A deactivated instance (an engine nobody calls) costs no periodic wake-up: its supervisor
//! sleeps on futexes without a timeout and its workers on the input futex
//! (docs/ARCHITECTURE.md, "Processes and threads"), in Lockstep and in Eco. A playing one's
//! supervisor is not woken by every block either: it watches on a timer and wakes once a
//! checkpoint (`supervisor/wait.rs`). Counted with the kernel's context-switch counters, not
//! timed. One engine at a time (the tests share a lock), so its supervisor thread is the only
//! one.

mod common;
use common::*;
use std::time::Duration;
use tandem::engine::{Engine, EngineConfig, ProcessMode, Protection};

const N: usize = 256;

/// Context switches (voluntary and not) of a task, from its `status` file.
fn switches(status_path: &str) -> u64 {
    let status = std::fs::read_to_string(status_path).expect("a status file");
    status
        .lines()
        .filter(|l| l.contains("ctxt_switches"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// This process's supervisor thread (its name, cut to 15 bytes by the kernel).
fn supervisor_status() -> String {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .map(|t| t.path())
        .find(|t| {
            std::fs::read_to_string(t.join("comm")).is_ok_and(|c| c.trim() == "tandem-supervis")
        })
        .map(|t| t.join("status").display().to_string())
        .expect("the supervisor thread")
}

/// A realtime engine at `N`-frame blocks and a latency of one block.
fn activate(protection: Protection) -> Engine {
    let config = EngineConfig {
        protection,
        ..config(ProcessMode::Realtime, N, N as u32)
    };
    Engine::activate_with(config, patient()).expect("activate")
}

/// One engine, hence one supervisor thread, at a time.
static ONE_ENGINE: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_playing_engines_supervisor_is_not_woken_by_every_block() {
    let _one = ONE_ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    for protection in [Protection::Lockstep, Protection::Eco] {
        let mut engine = activate(protection);
        let mut phrase = Phrase::new(52);
        let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
        let period = Duration::from_secs_f64(N as f64 / SR as f64);
        // A host on the audio clock, not one rendering faster (`engine/pace.rs`).
        let mut play = |engine: &mut Engine, blocks: usize| {
            for _ in 0..blocks {
                let (events, params) = phrase.block(N);
                engine.process(events, params, None, [&mut l, &mut r]);
                std::thread::sleep(period);
            }
        };
        play(&mut engine, 50);
        // Up to 10 s of audio, a liveness bound.
        let mut settling = 0;
        while !engine.settled() {
            assert!(
                settling < 10 * SR as usize / N,
                "{protection:?}: the engine did not settle"
            );
            play(&mut engine, 1);
            settling += 1;
        }
        let supervisor = supervisor_status();
        let blocks = 200;
        let before = switches(&supervisor);
        play(&mut engine, blocks);
        let woken = switches(&supervisor) - before;
        // Once or twice a block used to be the price of a tick while chunks were in flight.
        assert!(
            woken < blocks as u64 / 2,
            "{protection:?}: the supervisor woke {woken} times in {blocks} blocks"
        );
    }
}

#[test]
fn an_engine_nobody_calls_wakes_nothing() {
    let _one = ONE_ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    for protection in [Protection::Lockstep, Protection::Eco] {
        let mut engine = activate(protection);
        assert_idle_wakes_nothing(&mut engine);
    }
}

fn assert_idle_wakes_nothing(engine: &mut Engine) {
    let mut phrase = Phrase::new(51);
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    // Until fully protected: in Lockstep both workers verified, in Eco the active and a spare.
    while !engine.settled() {
        let (events, params) = phrase.block(N);
        engine.process(events, params, None, [&mut l, &mut r]);
        std::thread::sleep(Duration::from_millis(2));
    }
    for _ in 0..100 {
        let (events, params) = phrase.block(N);
        engine.process(events, params, None, [&mut l, &mut r]);
        std::thread::sleep(Duration::from_millis(1));
    }
    // The host stops calling (a deactivation). Let what is in flight finish: the workers render
    // the last chunks, the supervisor checks them and goes to sleep.
    std::thread::sleep(Duration::from_millis(300));
    let mut tasks: Vec<String> = engine
        .worker_pids()
        .into_iter()
        .chain(engine.spare_pid())
        .map(|p| format!("/proc/{p}/status"))
        .collect();
    assert!(engine.spare_pid().is_some(), "a spare waits");
    tasks.push(supervisor_status());
    let before: Vec<u64> = tasks.iter().map(|t| switches(t)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let after: Vec<u64> = tasks.iter().map(|t| switches(t)).collect();
    assert_eq!(
        before,
        after,
        "workers and supervisor woke while idle: {tasks:?}; {:#?}",
        engine.drain_log()
    );
}
