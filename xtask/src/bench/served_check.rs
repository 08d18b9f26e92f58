//! `cargo xtask bench served-check [--chunks N]`: what the audio thread's check of the audio it
//! serves adds to each block. Since the engine serves only chunks that match their ring's digest
//! (`OutputRing::check_chunk`, called from the engine's `served.rs`), every chunk served costs
//! a digest of its samples, a read of its digest and its voice-end table, on top of the copy
//! out of the ring that was always there.
//!
//! For each block size, one chunk per block as a host at that block size produces them, a real
//! output ring is filled as a worker fills it (audio, two voice ends a chunk, digests), and each
//! chunk is copied out alone and copied out and checked, alternately: the copy is the baseline,
//! measured in the same run. Wall time per chunk, with the timer's own cost in both.

use super::host::now_ns;
use super::overhead::BLOCKS;
use super::{flag, Summary};
use anyhow::{ensure, Result};
use shm::{OutputRing, RingConfig, VoiceEndRecord, MAX_VOICE_ENDS};

/// Entry point.
pub fn run(args: &[String]) -> Result<()> {
    let chunks: u64 = flag(args, "--chunks", 20_000)?;
    println!("served-check: {chunks} chunks per block size, µs per chunk (p50 / p99)");
    println!("| block | copy p50 | copy p99 | copy + check p50 | copy + check p99 | added p50 |");
    println!("|---|---|---|---|---|---|");
    for block in BLOCKS {
        let config = RingConfig {
            record_count: 1024,
            audio_capacity: 1 << 16,
            snapshot_max: 64,
            sample_rate: 48_000.0,
        };
        let ring = OutputRing::create(config)?;
        ring.begin(1, 0, 0);
        let mut noise = test_support::Rng::new(block as u64);
        let audio: Vec<f32> = (0..block).map(|_| noise.unit() - 0.5).collect();
        let ends = [0, block as u32 / 2].map(|offset| VoiceEndRecord {
            offset,
            note_id: 7,
            key: 60,
            channel: 0,
        });
        let record_count = config.record_count as u64;
        // The ring holds this many chunks of audio; the check reads them in turn.
        let held = (config.audio_capacity as u64 / block as u64).min(record_count);
        for chunk in 0..held {
            let start = chunk * block as u64;
            ring.write_audio(start, [&audio, &audio]);
            ring.write_voice_ends(chunk, &ends);
            let digest = shm::voice_end::fold(shm::digest(&audio, &audio), &ends);
            ring.complete_chunk(chunk, start + block as u64, digest);
        }
        let (mut l, mut r) = (vec![0.0; block], vec![0.0; block]);
        let mut scratch = [VoiceEndRecord::default(); MAX_VOICE_ENDS];
        let (mut copy, mut checked) = (Vec::new(), Vec::new());
        for i in 0..chunks {
            let chunk = i % held;
            let start = chunk * block as u64;
            let t0 = now_ns();
            ring.copy_frames(start, [&mut l, &mut r]).expect("finite");
            let t1 = now_ns();
            ring.copy_frames(start, [&mut l, &mut r]).expect("finite");
            let ok = ring.check_chunk(chunk, block as u32, [&l, &r], &mut scratch);
            let t2 = now_ns();
            ensure!(ok.is_ok(), "chunk {chunk} failed its check: {ok:?}");
            copy.push((t1 - t0) as f64 / 1e3);
            checked.push((t2 - t1) as f64 / 1e3);
        }
        let (copy, checked) = (Summary::new(copy), Summary::new(checked));
        println!(
            "| {block} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            copy.quantile(0.5),
            copy.quantile(0.99),
            checked.quantile(0.5),
            checked.quantile(0.99),
            checked.quantile(0.5) - copy.quantile(0.5)
        );
    }
    Ok(())
}
