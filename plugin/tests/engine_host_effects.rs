//! What the engine must not do to its host: lend its real-time priority to the processes it
//! starts, or stall failover when the host's stderr is a pipe nobody reads.

mod common;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tandem::engine::ProcessMode;

/// The scheduling policy of `task` (a `/proc/.../stat` path): field 41, after the command name.
fn policy_in(stat_path: &str) -> i32 {
    let stat = std::fs::read_to_string(stat_path).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    // Field 3 is the first after the name; the policy is field 41.
    after
        .split_whitespace()
        .nth(41 - 3)
        .unwrap()
        .parse()
        .unwrap()
}

/// The policy of this process's thread called `name` (the kernel keeps 15 bytes of it).
fn thread_policy(name: &str) -> Option<i32> {
    let name = &name[..name.len().min(15)];
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let dir = task.path();
        if std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim_end() == name) {
            return Some(policy_in(&format!("{}/stat", dir.display())));
        }
    }
    None
}

/// Whether this system grants `SCHED_FIFO` to a thread of this process at all.
fn realtime_granted() -> bool {
    std::thread::spawn(|| {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: sched_setscheduler on this short-lived thread, with a param we own.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
    })
    .join()
    .unwrap()
}

/// The supervisor thread runs at `SCHED_FIFO` and spawns every replacement worker. A worker
/// must start in the normal class (its sandbox then asks for its own, lower priority): a script
/// in front of the real worker records the policy it was started with.
#[test]
fn replacement_workers_do_not_inherit_the_supervisors_priority() {
    let worker = tandem::worker_exe::worker_path().expect("build tandem-worker first");
    let dir = std::env::temp_dir().join(format!("tandem-priority-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("recording-worker");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncut -d' ' -f41 /proc/$$/stat > {}/policy.$$\nexec {} \"$@\"\n",
            dir.display(),
            worker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cfg = config(ProcessMode::Offline, 256, 256);
    cfg.worker_path = script;
    let mut engine = tandem::engine::Engine::activate_with(cfg, patient()).unwrap();
    assert!(wait_for_lockstep(&mut engine, 256));
    let supervisor = thread_policy("tandem-supervisor").expect("the supervisor thread");
    if !realtime_granted() {
        println!("this system grants no SCHED_FIFO: there is no priority to inherit");
    } else {
        assert_eq!(
            supervisor,
            libc::SCHED_FIFO,
            "the supervisor should be real-time"
        );
    }
    for round in 0..2 {
        let pid = engine.worker_pid(round % 2).unwrap();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        let t0 = Instant::now();
        while engine.worker_pid(round % 2) == Some(pid) && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(wait_for_lockstep(&mut engine, 256), "round {round}");
    }
    // Each rebuild called the spare into the slot, and the supervisor spawned a new spare once
    // back in lockstep: wait (a liveness bound) until the last one has reported its policy.
    let policies = || -> Vec<String> {
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("policy."))
            .map(|e| std::fs::read_to_string(e.path()).unwrap().trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect()
    };
    let t0 = Instant::now();
    while policies().len() < 5 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(engine);
    let policies = policies();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        policies.len(),
        5,
        "two first workers, the first spare, and the spare spawned after each of two rebuilds"
    );
    assert!(
        policies.iter().all(|p| p == "0"),
        "workers started with policies {policies:?} (0 is SCHED_OTHER)"
    );
}

/// Set in the copy of this test binary that plays the host with a stderr nobody reads.
const STALLED_STDERR_ROLE: &str = "TANDEM_TEST_STALLED_STDERR";
const KILLS: usize = 3;

/// The host's stderr is a pipe that nobody reads, already full, and every failover logs
/// lines. This test runs itself again as that host (stdout read, stderr never read) and checks
/// that it got back to lockstep after every one of several kills.
#[test]
fn failover_goes_on_while_nobody_reads_stderr() {
    if std::env::var_os(STALLED_STDERR_ROLE).is_some() {
        return play_host_with_a_full_stderr();
    }
    let mut host = Command::new(std::env::current_exe().unwrap())
        .args(["failover_goes_on_while_nobody_reads_stderr", "--exact"])
        .args(["--nocapture", "--test-threads=1"])
        .env(STALLED_STDERR_ROLE, "1")
        .env("TANDEM_LOG", "info")
        .env("NICE_LOG", "stderr")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = host.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // A liveness bound (the host hangs for good without the fix), not a timing assertion.
    let give_up = Instant::now() + Duration::from_secs(120);
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(give_up.saturating_duration_since(Instant::now())) {
        lines.push(line);
    }
    let _ = host.kill();
    let _ = host.wait();
    let recovered = lines
        .iter()
        .filter(|l| l.starts_with("lockstep after kill"))
        .count();
    assert_eq!(recovered, KILLS, "the host's output: {lines:#?}");
}

/// The host's side: fill stderr, then kill the serving worker `KILLS` times, each time waiting
/// for the engine to return to lockstep, reporting on stdout.
fn play_host_with_a_full_stderr() {
    tandem::logging::init();
    // Fill the pipe without blocking, then make writes block again. The flag is on the pipe's
    // open file description, which only this process (and its workers) write through.
    // SAFETY: fcntl and write on fd 2 with a buffer we own.
    unsafe {
        let flags = libc::fcntl(2, libc::F_GETFL);
        libc::fcntl(2, libc::F_SETFL, flags | libc::O_NONBLOCK);
        let filler = [b'.'; 4096];
        while libc::write(2, filler.as_ptr().cast(), filler.len()) > 0 {}
        libc::fcntl(2, libc::F_SETFL, flags);
    }
    println!("stderr full");
    let mut engine = engine(ProcessMode::Offline, 256, 256);
    for kill_no in 1..=KILLS {
        if !wait_for_lockstep(&mut engine, 256) {
            println!("no lockstep before kill {kill_no}");
            std::process::exit(1);
        }
        let pid = engine.worker_pid(engine.serving_slot()).unwrap();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        let t0 = Instant::now();
        while engine.worker_pids().contains(&pid) && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(1));
        }
        if wait_for_lockstep(&mut engine, 256) {
            println!("lockstep after kill {kill_no}");
        } else {
            println!("no lockstep after kill {kill_no}");
        }
    }
    // Leave without unwinding through anything that might write to the full stderr.
    std::process::exit(0);
}
