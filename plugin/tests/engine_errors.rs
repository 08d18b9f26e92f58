//! Bad configurations and broken workers get clear errors and bounded retries, never a panic or
//! a hang in the host.

mod common;
use common::*;
use std::time::{Duration, Instant};
use tandem::engine::{Engine, EngineError, EngineEvent, ProcessMode, WorkerExit};

#[test]
fn unsupported_configurations_are_refused_with_a_reason() {
    for (sample_rate, max_block) in [
        (f32::NAN, 256),
        (100.0, 256),
        (3.0e6, 256),
        (SR, 0),
        (SR, 100_000),
    ] {
        let cfg = tandem::engine::EngineConfig {
            sample_rate,
            max_block,
            ..config(ProcessMode::Realtime, 256, 0)
        };
        match Engine::activate(cfg) {
            Err(e @ (EngineError::UnsupportedConfig(_) | EngineError::Synth(_))) => {
                assert!(
                    e.to_string().starts_with("unsupported configuration: "),
                    "{e}"
                )
            }
            other => panic!("{sample_rate} Hz, {max_block} frames: {:?}", other.err()),
        }
    }
}

#[test]
fn a_missing_worker_is_a_spawn_error() {
    let mut cfg = config(ProcessMode::Realtime, 256, 0);
    cfg.worker_path = "/nonexistent/tandem-worker".into();
    match Engine::activate(cfg) {
        Err(e @ EngineError::Spawn { .. }) => {
            let why = e.to_string();
            assert!(why.contains("/nonexistent/tandem-worker"), "{why}");
            // The cause travels with the error, for a host that walks the chain.
            assert!(std::error::Error::source(&e).is_some(), "{why}");
        }
        other => panic!("{:?}", other.err()),
    }
}

/// Workers that die on every respawn (a script that runs the real worker for the first two
/// spawns and exits 3 after that) are retried with growing backoff, not in a tight loop; the
/// host keeps getting silent, finite audio, and an offline render stops waiting for them.
#[test]
fn a_worker_that_dies_on_every_spawn_is_retried_with_backoff() {
    use std::os::unix::fs::PermissionsExt;
    let worker = tandem::worker_exe::worker_path().expect("build tandem-worker first");
    let dir = std::env::temp_dir().join(format!("tandem-dying-worker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("dying-worker");
    for mode in [ProcessMode::Realtime, ProcessMode::Offline] {
        // `mkdir` succeeds once per name: the first two spawns get the real worker.
        let runs = dir.join(format!("{mode:?}"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh
if mkdir {runs}-a 2>/dev/null || mkdir {runs}-b 2>/dev/null; then
                   exec {} \"$@\"
fi
sleep 0.01
exit 3
",
                worker.display(),
                runs = runs.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut cfg = config(mode, 256, 0);
        cfg.worker_path = script.clone();
        let mut engine = Engine::activate_with(cfg, patient()).expect("the first workers run");
        for pid in engine.worker_pids() {
            // SAFETY: kill(2) on a worker pid the engine just reported; no memory involved.
            assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        }
        let mut phrase = Phrase::new(1);
        let (mut l, mut r) = (vec![0.0; 256], vec![0.0; 256]);
        let mut faded_blocks = 0;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(1500) {
            let (events, params) = phrase.block(256);
            let report = engine.process(events, params, None, [&mut l, &mut r]);
            assert!(l.iter().chain(&r).all(|s| *s == 0.0));
            faded_blocks += usize::from(report.fallback_frames == 256);
            std::thread::sleep(Duration::from_millis(5));
        }
        // Offline has no deadline: only the supervisor giving up on the workers ends a wait,
        // and it must, for the render to go on (realtime fades on its deadline anyway).
        assert!(faded_blocks > 0, "no block was given up on ({mode:?})");
        let spawns = engine
            .drain_events()
            .iter()
            .filter(|e| matches!(e, EngineEvent::WorkerSpawned { .. }))
            .count();
        // Backoff doubles from 10 ms: about 8 attempts per slot in 1.5 s, not thousands.
        assert!(
            (4..=40).contains(&spawns),
            "{spawns} spawns in 1.5 s ({mode:?})"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A real worker that starts but cannot enter its sandbox: an administrator's hard
/// `RLIMIT_RTTIME` below the worker's CPU budget, which an unprivileged process cannot raise
/// (the script drops root first when it has it). Activation must fail and say why, instead of
/// activating into endless respawns and silence.
#[test]
fn a_worker_that_cannot_enter_its_sandbox_fails_activation() {
    use std::os::unix::fs::PermissionsExt;
    let worker = tandem::worker_exe::worker_path().expect("build tandem-worker first");
    let dir = std::env::temp_dir().join(format!("tandem-unsandboxable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("unsandboxable-worker");
    let limited = format!("prlimit --rttime=1000:1000 -- {}", worker.display());
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$(id -u)\" = 0 ]; then\n  exec prlimit --rttime=1000:1000 -- \
             setpriv --reuid=65534 --regid=65534 --clear-groups -- {} \"$@\"\nfi\nexec {limited} \"$@\"\n",
            worker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cfg = config(ProcessMode::Realtime, 256, 0);
    cfg.worker_path = script;
    let result = Engine::activate_with(cfg, patient());
    std::fs::remove_dir_all(&dir).unwrap();
    match result {
        Err(e @ EngineError::ExitedOnStart { exit, .. }) => {
            assert_eq!(exit, WorkerExit::Exited(shm::exit_status::EXIT_SANDBOX));
            let why = e.to_string();
            assert!(why.contains("could not enter its sandbox"), "{why}");
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("activated with workers that cannot enter their sandbox"),
    }
}
