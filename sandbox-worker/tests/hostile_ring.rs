//! The plugin's reader of a worker's output ring, fed arbitrary bytes: the sandbox's trust
//! boundary (docs/ARCHITECTURE.md, "Where each rule is enforced").
//!
//! A sandboxed worker can still write anything into its own output region. Here a second,
//! writable mapping of a real output ring's memfd plays the rogue worker: every word of the
//! region is filled with pseudo-random bits, and then a few fields the reader looks at first
//! (epoch, progress counters, snapshot header, digest tags) are set to edge values around what
//! the plugin knows (its `Bounds`). The plugin-side accessors of `shm::OutputRing` must then:
//!
//! - never panic (every index they compute stays inside the region, or `Region::word` would);
//! - accept progress only within the plugin's own bounds (anything else is a `Rogue`, which the
//!   engine answers by evicting the worker);
//! - hand out audio only when it is finite and clipped to `±MAX_SAMPLE`;
//! - hand out a snapshot only when its length fits the buffer and the snapshot area;
//! - hand out a digest only for the chunk its tag names.
//!
//! 100,000 cases from a fixed seed, so CI runs the same ones every time (`PROPTEST_CASES`
//! overrides the count). The `cargo fuzz` target `fuzz/fuzz_targets/output_reader.rs` drives the
//! same reader with coverage guidance.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use shm::layout::output as field;
use shm::output::MAX_SAMPLE;
use shm::{Bounds, OutputRing, Progress, RingConfig, Rogue};

/// Small rings, so each case rewrites the whole region cheaply.
const CONFIG: RingConfig = RingConfig {
    record_count: 16,
    audio_capacity: 1024,
    snapshot_max: 64,
    sample_rate: 48_000.0,
};

/// A real output ring (the plugin's side) and a rogue worker's writable view of the same memory.
struct Hostile {
    ring: OutputRing,
    view: *mut AtomicU32,
    words: usize,
}

impl Hostile {
    fn new() -> Hostile {
        let ring = OutputRing::create(CONFIG).expect("create output ring");
        let words = CONFIG.output_words();
        // SAFETY: duplicates the ring's memfd into a new fd we own.
        let fd = unsafe { libc::fcntl(ring.fd(), libc::F_DUPFD_CLOEXEC, 0) };
        assert!(fd >= 0);
        // SAFETY: `fd` is fresh and ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a new shared read-write mapping of the whole memfd (the worker's view); it is
        // never unmapped, so `view` stays valid for the process's life.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                words * 4,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED);
        Hostile {
            ring,
            view: ptr.cast(),
            words,
        }
    }

    fn word(&self, i: usize) -> &AtomicU32 {
        assert!(i < self.words);
        // SAFETY: `i` is inside the mapping; both sides access the memory only through atomics.
        unsafe { &*self.view.add(i) }
    }

    fn set32(&self, i: usize, v: u32) {
        self.word(i).store(v, Ordering::Relaxed);
    }

    fn set64(&self, i: usize, v: u64) {
        self.set32(i, v as u32);
        self.set32(i + 1, (v >> 32) as u32);
    }

    fn get64(&self, i: usize) -> u64 {
        let lo = self.word(i).load(Ordering::Relaxed) as u64;
        let hi = self.word(i + 1).load(Ordering::Relaxed) as u64;
        lo | hi << 32
    }

    /// Every word from a xorshift stream: garbage everywhere, the magic word included.
    fn fill(&self, mut seed: u64) {
        seed |= 1;
        for i in 0..self.words {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            self.set32(i, seed as u32);
        }
    }
}

/// What the rogue worker puts in one field, relative to what the plugin knows.
#[derive(Clone, Copy, Debug)]
enum Value {
    Zero,
    Floor(i64),
    Posted(i64),
    Epoch(i64),
    Max,
    Raw(u64),
}

impl Value {
    fn resolve(self, b: &Bounds, frames: bool) -> u64 {
        let (floor, posted) = if frames {
            (b.floor_frames, b.posted_frames)
        } else {
            (b.floor_chunks, b.posted_chunks)
        };
        match self {
            Value::Zero => 0,
            Value::Floor(d) => floor.wrapping_add_signed(d),
            Value::Posted(d) => posted.wrapping_add_signed(d),
            Value::Epoch(d) => (b.epoch as u64).wrapping_add_signed(d),
            Value::Max => u64::MAX,
            Value::Raw(v) => v,
        }
    }
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Zero),
        (-2i64..=2).prop_map(Value::Floor),
        (-2i64..=2).prop_map(Value::Posted),
        (-1i64..=1).prop_map(Value::Epoch),
        Just(Value::Max),
        any::<u64>().prop_map(Value::Raw),
    ]
}

/// The fields a rogue worker would aim at: (word index, 64-bit?, counts frames?).
fn target() -> impl Strategy<Value = (usize, bool, bool)> {
    let digest_tag =
        (0..CONFIG.record_count as usize).prop_map(|s| (CONFIG.digest_base() + 4 * s, true, false));
    prop_oneof![
        Just((field::EPOCH, false, false)),
        Just((field::FRAMES_DONE, true, true)),
        Just((field::CHUNKS_DONE, true, false)),
        Just((field::SNAPSHOT_SEQ, false, false)),
        Just((field::SNAPSHOT_CHUNK, true, false)),
        Just((field::SNAPSHOT_LEN, false, false)),
        digest_tag,
    ]
}

fn bounds() -> impl Strategy<Value = Bounds> {
    (1u32..4, 0u64..1 << 40, 0u64..1 << 20, 0u64..4096, 0u64..64).prop_map(
        |(epoch, floor_frames, extra_frames, floor_chunks, extra_chunks)| Bounds {
            epoch,
            floor_frames,
            posted_frames: floor_frames + extra_frames + extra_chunks,
            floor_chunks,
            posted_chunks: floor_chunks + extra_chunks,
        },
    )
}

/// What the cases reached, so the contract checks are known not to be vacuous.
#[derive(Default, Debug)]
struct Reached {
    progress_ok: u32,
    rogue: [u32; 4],
    frames_ok: u32,
    non_finite: u32,
    digest: u32,
    snapshot: u32,
    bad_snapshot: u32,
}

/// Writes what an honest worker would have written by now: its epoch, progress within bounds,
/// finite audio, a complete snapshot and the digest tags of its last chunks.
fn honest(h: &Hostile, b: &Bounds, seed: u64) {
    let chunks = b.floor_chunks + seed % (b.posted_chunks - b.floor_chunks + 1);
    let frames = (b.floor_frames + (chunks - b.floor_chunks))
        .max(b.posted_frames - seed % 7)
        .min(b.posted_frames);
    h.set32(field::EPOCH, b.epoch);
    h.set64(field::FRAMES_DONE, frames);
    h.set64(field::CHUNKS_DONE, chunks);
    let audio = CONFIG.output_audio_base();
    for i in audio..audio + 2 * CONFIG.audio_capacity as usize {
        h.set32(i, ((i % 200) as f32 / 100.0 - 1.0).to_bits());
    }
    h.set32(field::SNAPSHOT_SEQ, 2);
    h.set64(field::SNAPSHOT_CHUNK, chunks.saturating_sub(1));
    h.set32(field::SNAPSHOT_LEN, (seed % 9 * 8) as u32);
    for c in chunks.saturating_sub(CONFIG.record_count as u64)..chunks {
        h.set64(
            CONFIG.digest_base() + 4 * (c % CONFIG.record_count as u64) as usize,
            c,
        );
    }
}

/// One case: garbage (or an honest ring), then aimed fields, then every plugin-side accessor
/// with its contract.
fn check(
    h: &Hostile,
    reached: &mut Reached,
    (seed, start_honest): (u64, bool),
    b: Bounds,
    aims: &[((usize, bool, bool), Value)],
    probe: u64,
) {
    h.fill(seed);
    if start_honest {
        honest(h, &b, seed);
    }
    for &((index, wide, frames), v) in aims {
        let v = v.resolve(&b, frames);
        if wide {
            h.set64(index, v);
        } else {
            h.set32(index, v as u32);
        }
    }
    let epoch = h.word(field::EPOCH).load(Ordering::Relaxed);

    match h.ring.progress(&b) {
        Ok(p) if epoch == 0 => assert_eq!(
            p,
            Progress {
                frames_done: b.floor_frames,
                chunks_done: b.floor_chunks
            }
        ),
        Ok(p) => {
            assert_eq!(epoch, b.epoch, "accepted another epoch");
            assert!(
                (b.floor_frames..=b.posted_frames).contains(&p.frames_done),
                "{p:?} {b:?}"
            );
            assert!(
                (b.floor_chunks..=b.posted_chunks).contains(&p.chunks_done),
                "{p:?} {b:?}"
            );
            // At least a frame per chunk, with one chunk of slack for a torn counter pair.
            assert!(p.frames_done - b.floor_frames + 1 >= p.chunks_done - b.floor_chunks);
            reached.progress_ok += 1;
            // The audio the engine would then copy: the newest frames, up to a block.
            let n = (p.frames_done.min(256)) as usize;
            let (mut l, mut r) = (vec![0.0f32; n], vec![0.0f32; n]);
            match h
                .ring
                .copy_frames(p.frames_done - n as u64, [&mut l, &mut r])
            {
                Ok(()) => {
                    assert!(l
                        .iter()
                        .chain(&r)
                        .all(|s| s.is_finite() && s.abs() <= MAX_SAMPLE));
                    reached.frames_ok += 1;
                }
                Err(rogue) => {
                    assert_eq!(rogue, Rogue::NonFinite);
                    reached.non_finite += 1;
                }
            }
        }
        // Evicted: whatever it claimed, the engine will not use it.
        Err(rogue) => {
            let kinds = [
                Rogue::WrongEpoch,
                Rogue::BeyondPosted,
                Rogue::WentBack,
                Rogue::Inconsistent,
            ];
            let i = kinds.iter().position(|&k| k == rogue);
            reached.rogue[i.expect("progress() returned a non-progress Rogue")] += 1;
        }
    }

    for chunk in [
        probe,
        probe % CONFIG.record_count as u64,
        b.posted_chunks.saturating_sub(1),
    ] {
        if h.ring.digest_of(chunk).is_some() {
            reached.digest += 1;
            let base = CONFIG.digest_base() + 4 * (chunk % CONFIG.record_count as u64) as usize;
            assert_eq!(
                h.get64(base),
                chunk,
                "digest handed out for another chunk's tag"
            );
        }
    }

    for size in [CONFIG.snapshot_max as usize, 8] {
        let mut buf = vec![0u8; size];
        match h.ring.read_snapshot(&mut buf) {
            Ok(Some((_, len))) => {
                assert!(len <= size && len <= CONFIG.snapshot_max as usize);
                reached.snapshot += 1;
            }
            Ok(None) => {}
            Err(rogue) => {
                assert_eq!(rogue, Rogue::BadSnapshot);
                reached.bad_snapshot += 1;
            }
        }
    }

    // Hints the supervisor reads without trusting: any value, no panic.
    let _ = h.ring.sleeping();
}

#[test]
fn arbitrary_bytes_in_an_output_ring_are_contained() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100_000);
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(0x007a_4de3),
        failure_persistence: None,
        ..Config::default()
    };
    let h = Hostile::new();
    let reached = std::cell::RefCell::new(Reached::default());
    let strategy = (
        (any::<u64>(), any::<bool>()),
        bounds(),
        prop::collection::vec((target(), value()), 0..8),
        any::<u64>(),
    );
    TestRunner::new(config)
        .run(&strategy, |(seed, b, aims, probe)| {
            check(&h, &mut reached.borrow_mut(), seed, b, &aims, probe);
            Ok(())
        })
        .unwrap();
    let reached = reached.into_inner();
    println!("{cases} cases reached {reached:?}");
    // Every outcome happened (deterministic: the seed is fixed), so no check above is vacuous.
    if cases >= 10_000 {
        assert!(reached.progress_ok > 0 && reached.frames_ok > 0 && reached.non_finite > 0);
        assert!(reached.rogue.iter().all(|&n| n > 0), "{reached:?}");
        assert!(reached.digest > 0 && reached.snapshot > 0 && reached.bad_snapshot > 0);
    }
}

#[test]
fn a_valid_ring_is_read_back() {
    // The other side of the contract: honest values pass, so the checks above are not vacuous.
    let h = Hostile::new();
    h.fill(1);
    let b = Bounds {
        epoch: 3,
        posted_frames: 5000,
        posted_chunks: 20,
        floor_frames: 1000,
        floor_chunks: 4,
    };
    h.set32(field::EPOCH, 3);
    h.set64(field::FRAMES_DONE, 4096);
    h.set64(field::CHUNKS_DONE, 16);
    assert_eq!(
        h.ring.progress(&b),
        Ok(Progress {
            frames_done: 4096,
            chunks_done: 16
        })
    );
    h.set64(field::FRAMES_DONE, 5001);
    assert_eq!(h.ring.progress(&b), Err(Rogue::BeyondPosted));
    h.set64(field::FRAMES_DONE, 999);
    assert_eq!(h.ring.progress(&b), Err(Rogue::WentBack));
    h.set32(field::EPOCH, 4);
    assert_eq!(h.ring.progress(&b), Err(Rogue::WrongEpoch));
}
