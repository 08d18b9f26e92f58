//! Bad configurations and broken workers get clear errors and bounded retries, never a panic or
//! a hang in the host.

mod common;
use common::*;
use std::time::{Duration, Instant};
use tandem::engine::{Engine, EngineError, EngineEvent, ProcessMode};

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

/// A "worker" that starts and then dies (a script that exits 3) is retried with growing
/// backoff, not in a tight loop; the host keeps getting silent, finite audio, and an offline
/// render stops waiting for it.
#[test]
fn a_worker_that_dies_on_every_spawn_is_retried_with_backoff() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("tandem-dying-worker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("dying-worker");
    std::fs::write(&script, "#!/bin/sh\nsleep 0.01\nexit 3\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    for mode in [ProcessMode::Realtime, ProcessMode::Offline] {
        let mut cfg = config(mode, 256, 0);
        cfg.worker_path = script.clone();
        let mut engine = Engine::activate_with(cfg, patient()).expect("the spawn itself works");
        let mut phrase = Phrase::new(1);
        let (mut l, mut r) = (vec![0.0; 256], vec![0.0; 256]);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(1500) {
            let (events, params) = phrase.block(256);
            let report = engine.process(events, params, None, [&mut l, &mut r]);
            assert!(l.iter().chain(&r).all(|s| *s == 0.0));
            if mode == ProcessMode::Offline {
                // No deadline in offline mode: only the supervisor giving up ends the wait.
                assert!(report.fallback_frames <= 256);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
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
}
