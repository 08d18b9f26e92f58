//! No stale audio after a reset at a latency above zero: the `L` frames in the pipeline when
//! `reset()` comes are never delivered (docs/ARCHITECTURE.md, "Timing"). The plugin resets on
//! every (re)activation, so this also covers reactivation (`tests/tests/clap_reactivation.rs`).

mod common;
use common::*;
use tandem::engine::{EngineEvent, ProcessMode, ReferenceEngine};

const N: usize = 128;

fn reset_mid_stream(mode: ProcessMode, latency: u32) {
    let mut engine = engine(mode, N, latency);
    let mut reference = ReferenceEngine::new(SR, N, latency).unwrap();
    // The same stream without the reset: what the pipeline held when it came.
    let mut unreset = ReferenceEngine::new(SR, N, latency).unwrap();
    let mut phrase = Phrase::new(41);
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    let (mut wl, mut wr) = (vec![0.0; N], vec![0.0; N]);
    let (mut ul, mut ur) = (vec![0.0; N], vec![0.0; N]);
    // Past the served log's first lap (about a second), so the frames the reset silences have
    // older entries there that must not be checked against the workers' digests.
    let reset_at = 600;
    let reset_frame = (reset_at * N) as i64;
    let mut stale_peak = 0.0f32;
    for b in 0..800 {
        if b == reset_at {
            engine.reset();
            reference.reset();
        }
        let (events, params) = phrase.block(N);
        engine.process(events, params, None, [&mut l, &mut r]);
        reference.process(events, params, None, [&mut wl, &mut wr]);
        unreset.process(events, params, None, [&mut ul, &mut ur]);
        assert_eq!(differing(&l, &wl) + differing(&r, &wr), 0, "block {b}");
        let delivered = (b * N) as i64 - latency as i64;
        if b >= reset_at && delivered < reset_frame {
            // Rendered before the reset, due after it: stale, so silence.
            let stale = (reset_frame - delivered).min(N as i64) as usize;
            assert!(
                l[..stale].iter().chain(&r[..stale]).all(|s| *s == 0.0),
                "stale audio in block {b}"
            );
            stale_peak = stale_peak.max(peak(&ul[..stale])).max(peak(&ur[..stale]));
        }
    }
    assert!(
        stale_peak > 0.0,
        "the pipeline held sound at the reset, or this test proves nothing"
    );
    // Time for the supervisor to check the last chunks delivered.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let evicted: Vec<_> = engine
        .drain_events()
        .into_iter()
        .filter(|e| matches!(e, EngineEvent::WorkerEvicted { .. }))
        .collect();
    assert!(evicted.is_empty(), "honest workers evicted: {evicted:?}");
}

#[test]
fn no_stale_audio_after_a_reset_at_one_block_latency() {
    reset_mid_stream(ProcessMode::Offline, N as u32);
}

#[test]
fn no_stale_audio_after_a_reset_at_a_latency_of_several_blocks() {
    reset_mid_stream(ProcessMode::Realtime, 5 * N as u32 / 2);
}
