//! Lockstep properties: the same events give the same bits in two instances, in any block
//! segmentation, and across a snapshot/restore into a fresh instance.

mod common;
use common::*;
use dsp::Synth;

const FRAMES: usize = 24_000; // 0.5 s at 48 kHz per performance
const MAX_BLOCK: usize = 1024;

#[test]
fn two_instances_give_identical_bits() {
    for seed in 0..4 {
        let mut rng = Rng::new(seed);
        let perf = random_performance(&mut rng, FRAMES, 20);
        let blocks = random_blocks(&mut rng, FRAMES, MAX_BLOCK);
        let a = render(&mut Synth::new(SR, MAX_BLOCK).unwrap(), &perf, &blocks);
        let b = render(&mut Synth::new(SR, MAX_BLOCK).unwrap(), &perf, &blocks);
        assert!(peak(&a[0]) > 0.01, "seed {seed}: performance is silent");
        assert_eq!(first_difference(&a, &b), None, "seed {seed}");
    }
}

#[test]
fn block_segmentation_does_not_change_bits() {
    for seed in 0..6 {
        let mut rng = Rng::new(100 + seed);
        let perf = random_performance(&mut rng, FRAMES, 20);
        let reference = render(&mut Synth::new(SR, MAX_BLOCK).unwrap(), &perf, &[1000; 24]);
        for blocks in [
            vec![1; FRAMES],
            random_blocks(&mut rng, FRAMES, 64),
            random_blocks(&mut rng, FRAMES, MAX_BLOCK),
        ] {
            let out = render(&mut Synth::new(SR, MAX_BLOCK).unwrap(), &perf, &blocks);
            assert_eq!(first_difference(&reference, &out), None, "seed {seed}");
        }
    }
}

#[test]
fn set_param_every_block_is_idempotent() {
    // The worker calls set_param for every parameter at the start of every chunk, with the
    // values the host holds; re-setting unchanged targets must not change a single bit.
    let mut rng = Rng::new(7);
    let perf = random_performance(&mut rng, FRAMES, 20);
    let blocks = random_blocks(&mut rng, FRAMES, 256);
    let reference = render(&mut Synth::new(SR, MAX_BLOCK).unwrap(), &perf, &blocks);
    let mut synth = Synth::new(SR, MAX_BLOCK).unwrap();
    let mut out = [Vec::new(), Vec::new()];
    for b in 0..blocks.len() {
        for id in dsp::ParamId::ALL {
            synth.set_param(id, synth.param(id));
        }
        render_blocks(&mut synth, &perf, &blocks, b..b + 1, &mut out);
    }
    assert_eq!(first_difference(&reference, &out), None);
}

#[test]
fn snapshot_restore_into_fresh_synth_is_bit_identical() {
    // Many seeds, each a random performance cut into random blocks, snapshotted after a
    // random block and continued in a fresh instance.
    for seed in 0..100 {
        let mut rng = Rng::new(1000 + seed);
        let frames = 6000;
        let perf = random_performance(&mut rng, frames, 40);
        let blocks = random_blocks(&mut rng, frames, 512);
        let cut = rng.below(blocks.len() as u64) as usize;

        let mut a = Synth::new(SR, MAX_BLOCK).unwrap();
        let reference = render(&mut a, &perf, &blocks);

        let mut b = Synth::new(SR, MAX_BLOCK).unwrap();
        let mut out = [Vec::new(), Vec::new()];
        render_blocks(&mut b, &perf, &blocks, 0..cut, &mut out);
        let bytes = b.snapshot();
        assert_eq!(bytes.len(), b.snapshot_len());
        let mut c = Synth::new(SR, MAX_BLOCK).unwrap();
        c.restore(&bytes)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        // A restored synth snapshots to the same bytes.
        assert!(
            c.snapshot() == bytes,
            "seed {seed}: restored synth snapshots differently"
        );
        render_blocks(&mut c, &perf, &blocks, cut..blocks.len(), &mut out);

        assert_eq!(
            first_difference(&reference, &out),
            None,
            "seed {seed}, cut after block {cut}"
        );
        assert!(
            a.snapshot() == c.snapshot(),
            "seed {seed}: final states differ"
        );
    }
}

#[test]
fn snapshot_into_reports_length_and_refuses_small_buffers() {
    let synth = Synth::new(SR, 64).unwrap();
    let n = synth.snapshot_len();
    let mut big = vec![0xaa; n + 10];
    assert_eq!(synth.snapshot_into(&mut big), Ok(n));
    assert_eq!(&big[..n], &synth.snapshot()[..]);
    assert!(big[n..].iter().all(|&b| b == 0xaa));
    let mut small = vec![0; n - 1];
    assert!(synth.snapshot_into(&mut small).is_err());
    // The length depends only on the configuration.
    assert_eq!(Synth::new(96_000.0, 8192).unwrap().snapshot_len(), n);
}

#[test]
fn reset_returns_to_the_configured_state() {
    let mut rng = Rng::new(5);
    let perf = random_performance(&mut rng, FRAMES, 20);
    let mut played = Synth::new(SR, MAX_BLOCK).unwrap();
    render(&mut played, &perf, &[1000; 24]);
    let mut fresh = Synth::new(SR, MAX_BLOCK).unwrap();
    for id in dsp::ParamId::ALL {
        fresh.set_param(id, played.param(id));
    }
    played.reset();
    fresh.reset();
    let (a, b) = (played.snapshot(), fresh.snapshot());
    let diff = (28..a.len()).find(|&i| a[i] != b[i]);
    assert_eq!(diff, None, "snapshots differ from byte {diff:?}");
}
