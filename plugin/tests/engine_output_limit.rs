//! The host never gets a sample beyond `OUTPUT_LIMIT` (±4.0, +12 dBFS): the rings clip at a
//! wider bound (`shm::output::MAX_SAMPLE`, 16) so the served-audio check sees what a worker
//! wrote, and the engine clamps what it delivers (docs/ARCHITECTURE.md, "Failure detection and
//! rebuild"). Louder is no music a synth should make, but a bypassed plugin passes its input
//! through, so a loud input shows the clamp on honest audio: clipped exactly at the limit, and
//! untouched below it.

mod common;
use common::*;
use dsp::{ParamId, N_PARAMS};
use tandem::engine::{ProcessMode, ReferenceEngine, OUTPUT_LIMIT};

const N: usize = 256;

/// Blocks after which the bypass crossfade (about 10 ms) is long over.
const SETTLED: usize = 40;

/// Renders `blocks` bypassed blocks of a constant stereo input `[left, right]` through the
/// engine and the reference; returns both outputs (each block left then right).
fn bypassed(input: [f32; 2], blocks: usize) -> (Vec<f32>, Vec<f32>) {
    let mut engine = common::engine(ProcessMode::Offline, N, N as u32);
    let mut reference = ReferenceEngine::new(SR, N, N as u32).unwrap();
    let mut params: [f32; N_PARAMS] = Phrase::new(1).params;
    params[ParamId::Bypass.index()] = 1.0;
    let (in_l, in_r) = (vec![input[0]; N], vec![input[1]; N]);
    let (mut l, mut r) = (vec![0.0; N], vec![0.0; N]);
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for _ in 0..blocks {
        engine.process(&[], &params, Some([&in_l, &in_r]), [&mut l, &mut r]);
        got.extend_from_slice(&l);
        got.extend_from_slice(&r);
        reference.process(&[], &params, Some([&in_l, &in_r]), [&mut l, &mut r]);
        want.extend_from_slice(&l);
        want.extend_from_slice(&r);
    }
    (got, want)
}

#[test]
fn a_louder_input_is_clipped_exactly_at_the_output_limit() {
    let blocks = SETTLED + 20;
    let (got, want) = bypassed([10.0, -10.0], blocks);
    assert!(
        got.iter().all(|s| s.abs() <= OUTPUT_LIMIT),
        "nothing beyond"
    );
    for block in got.chunks(2 * N).skip(SETTLED) {
        let (l, r) = block.split_at(N);
        assert!(l.iter().all(|&s| s == OUTPUT_LIMIT), "left: {l:?}");
        assert!(r.iter().all(|&s| s == -OUTPUT_LIMIT), "right: {r:?}");
    }
    assert_eq!(differing(&got, &want), 0, "the reference clips the same");
}

#[test]
fn an_input_below_the_limit_is_not_clipped() {
    let blocks = SETTLED + 20;
    let (got, want) = bypassed([3.5, -3.5], blocks);
    let settled = &got[SETTLED * 2 * N..];
    assert!(peak(settled) > 3.4, "peak {}", peak(settled));
    assert!(peak(settled) < OUTPUT_LIMIT);
    assert_eq!(differing(&got, &want), 0);
}
