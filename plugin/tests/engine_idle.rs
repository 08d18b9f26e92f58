//! A deactivated instance (an engine nobody calls) costs no periodic wake-up: its supervisor
//! sleeps on futexes without a timeout and its workers on the input futex
//! (docs/ARCHITECTURE.md, "Processes and threads"). Counted with the kernel's context-switch
//! counters, not timed. One test in this binary, so the supervisor thread is the only one.

mod common;
use common::*;
use std::time::Duration;
use tandem::engine::ProcessMode;

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

#[test]
fn an_engine_nobody_calls_wakes_nothing() {
    let mut engine = engine(ProcessMode::Realtime, N, N as u32);
    assert!(wait_for_lockstep(&mut engine, N));
    let mut phrase = Phrase::new(51);
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
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
        .iter()
        .map(|p| format!("/proc/{p}/status"))
        .collect();
    assert_eq!(tasks.len(), 2);
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
