//! Fuzz the plugin's reader of a worker's output ring (the sandbox's trust boundary,
//! docs/ARCHITECTURE.md, "Where each rule is enforced"): the fuzzer's bytes become what the plugin knows (`Bounds`) and every byte of a
//! real output ring, written through a second mapping as a rogue worker would. The plugin-side
//! accessors must never panic and never accept a claim outside the plugin's bounds.
//!
//! ```text
//! cargo install cargo-fuzz
//! cd fuzz && cargo +nightly fuzz run output_reader -- -max_total_time=60
//! ```
//!
//! The property test `sandbox-worker/tests/hostile_ring.rs` checks the same contract on stable,
//! 100,000 fixed-seed cases, in CI.
#![no_main]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shm::layout::output as field;
use shm::output::MAX_SAMPLE;
use shm::{Bounds, OutputRing, RingConfig};

const CONFIG: RingConfig = RingConfig {
    record_count: 16,
    audio_capacity: 1024,
    snapshot_max: 64,
    sample_rate: 48_000.0,
};

struct Hostile {
    ring: OutputRing,
    view: usize,
    words: usize,
}

fn hostile() -> &'static Hostile {
    static H: OnceLock<Hostile> = OnceLock::new();
    H.get_or_init(|| {
        let ring = OutputRing::create(CONFIG).expect("create output ring");
        let words = CONFIG.output_words();
        // SAFETY: a new shared read-write mapping of the ring's memfd, never unmapped.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                words * 4,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                ring.fd(),
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED);
        Hostile {
            ring,
            view: ptr as usize,
            words,
        }
    })
}

impl Hostile {
    fn word(&self, i: usize) -> &AtomicU32 {
        assert!(i < self.words);
        // SAFETY: `i` is inside the mapping; both sides use atomics only.
        unsafe { &*(self.view as *const AtomicU32).add(i) }
    }
}

fn u64_at(data: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    for (k, byte) in b.iter_mut().enumerate() {
        *byte = data.get(i + k).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let h = hostile();
    // The plugin's own knowledge: the first 40 bytes, made consistent (floor <= posted).
    let epoch = (u64_at(data, 0) as u32).max(1);
    let (f1, f2) = (u64_at(data, 8) >> 20, u64_at(data, 16) >> 40);
    let (c1, c2) = (u64_at(data, 24) >> 40, u64_at(data, 32) >> 56);
    let b = Bounds {
        epoch,
        floor_frames: f1,
        posted_frames: f1 + f2 + c2,
        floor_chunks: c1,
        posted_chunks: c1 + c2,
    };
    // The worker's writes: the rest of the input, repeated over the whole region, with the
    // header words taken first so the fuzzer steers them directly.
    let rest = data.get(40..).unwrap_or(&[]);
    let words: Vec<u32> = rest
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect();
    let header = [
        field::EPOCH,
        field::FRAMES_DONE,
        field::FRAMES_DONE + 1,
        field::CHUNKS_DONE,
        field::CHUNKS_DONE + 1,
        field::SNAPSHOT_SEQ,
        field::SNAPSHOT_CHUNK,
        field::SNAPSHOT_CHUNK + 1,
        field::SNAPSHOT_LEN,
    ];
    let order = header.iter().copied().chain(0..h.words);
    for (i, index) in order.enumerate() {
        let v = if words.is_empty() {
            0
        } else {
            words[i % words.len()]
        };
        h.word(index).store(v, Ordering::Relaxed);
    }

    if let Ok(p) = h.ring.progress(&b) {
        assert!(p.frames_done >= b.floor_frames && p.frames_done <= b.posted_frames);
        assert!(p.chunks_done >= b.floor_chunks && p.chunks_done <= b.posted_chunks);
        let n = p.frames_done.min(256) as usize;
        let (mut l, mut r) = (vec![0.0f32; n], vec![0.0f32; n]);
        if h.ring
            .copy_frames(p.frames_done - n as u64, [&mut l, &mut r])
            .is_ok()
        {
            assert!(l
                .iter()
                .chain(&r)
                .all(|s| s.is_finite() && s.abs() <= MAX_SAMPLE));
        }
    }
    let _ = h.ring.digest_of(u64_at(data, 0));
    let mut buf = vec![0u8; CONFIG.snapshot_max as usize];
    if let Ok(Some((_, len))) = h.ring.read_snapshot(&mut buf) {
        assert!(len <= buf.len());
    }
    let _ = h.ring.sleeping();
});
