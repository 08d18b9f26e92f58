//! Restore refuses anything that is not a snapshot this synth could have written, with an
//! error and never a panic, and leaves the synth untouched when it refuses.

mod common;
use common::*;
use dsp::{SnapshotError, Synth};

/// Header layout (see `Synth::snapshot_into`): magic, version, sample-rate bits, max block,
/// payload length, checksum of the payload.
const HEADER: usize = 28;

/// The format's checksum, written out again from its definition: FNV-1a-64 over 8-byte
/// little-endian words, the tail zero-padded.
fn word_fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for word in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..word.len()].copy_from_slice(word);
        h ^= u64::from_le_bytes(w);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn fix_checksum(bytes: &mut [u8]) {
    let sum = word_fnv1a(&bytes[HEADER..]);
    bytes[20..28].copy_from_slice(&sum.to_le_bytes());
}

/// A synth in the middle of a busy performance, and its snapshot.
fn busy(seed: u64) -> (Synth, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let perf = random_performance(&mut rng, 4000, 40);
    let mut synth = Synth::new(SR, 512).unwrap();
    render(&mut synth, &perf, &[500; 8]);
    let bytes = synth.snapshot();
    (synth, bytes)
}

#[test]
fn foreign_bytes_are_refused() {
    let (_, good) = busy(1);
    let mut target = Synth::new(SR, 512).unwrap();
    let before = target.snapshot();

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("header only", good[..HEADER].to_vec()),
        ("truncated", good[..good.len() - 1].to_vec()),
        ("extended", [good.clone(), vec![0]].concat()),
        ("zeros", vec![0; good.len()]),
        ("ones", vec![0xff; good.len()]),
    ];
    let mut v = good.clone();
    let other_version = dsp::SNAPSHOT_VERSION + 1;
    v[4..8].copy_from_slice(&other_version.to_le_bytes());
    cases.push(("other version", v));
    let mut v = good.clone();
    v[0] = b'X';
    cases.push(("bad magic", v));
    cases.push((
        "other sample rate",
        Synth::new(44_100.0, 512).unwrap().snapshot(),
    ));
    cases.push(("other max block", Synth::new(SR, 256).unwrap().snapshot()));

    for (name, bytes) in &cases {
        let r = target.restore(bytes);
        assert!(r.is_err(), "{name}: accepted");
        assert!(
            target.snapshot() == before,
            "{name}: refused restore changed the synth"
        );
    }
    assert!(matches!(
        target.restore(&cases[6].1),
        Err(SnapshotError::Version { found, .. }) if found == other_version
    ));
    assert_eq!(target.restore(&cases[8].1), Err(SnapshotError::Config));
    // The good one is accepted.
    target.restore(&good).unwrap();
    assert!(target.snapshot() == good);
}

#[test]
fn every_single_byte_corruption_is_refused() {
    let (_, good) = busy(2);
    let mut target = Synth::new(SR, 512).unwrap();
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            assert!(
                target.restore(&bad).is_err(),
                "byte {i} ^ {flip:#x} accepted"
            );
        }
    }
}

#[test]
fn out_of_range_fields_with_valid_checksum_are_refused() {
    let (_, good) = busy(3);
    let mut target = Synth::new(SR, 512).unwrap();
    // The payload starts with the parameter targets as f32 in index order.
    let put = |bytes: &mut Vec<u8>, at: usize, x: f32| {
        bytes[at..at + 4].copy_from_slice(&x.to_bits().to_le_bytes())
    };
    let cutoff = HEADER + 4 * dsp::ParamId::Cutoff.index();
    let wave = HEADER + 4 * dsp::ParamId::Osc1Wave.index();
    let poly = HEADER + 4 * dsp::ParamId::Polyphony.index();
    for (name, at, x) in [
        ("NaN cutoff", cutoff, f32::NAN),
        ("infinite cutoff", cutoff, f32::INFINITY),
        ("cutoff above range", cutoff, 30_000.0),
        ("fractional waveform", wave, 1.5),
        ("polyphony 0", poly, 0.0),
        ("polyphony 33", poly, 33.0),
    ] {
        let mut bad = good.clone();
        put(&mut bad, at, x);
        fix_checksum(&mut bad);
        let r = target.restore(&bad);
        assert!(matches!(r, Err(SnapshotError::Field(_))), "{name}: {r:?}");
    }
    // A cutoff in range but inconsistent with its smoother's target is refused as well.
    let mut bad = good.clone();
    put(&mut bad, cutoff, 1234.0);
    fix_checksum(&mut bad);
    assert!(matches!(target.restore(&bad), Err(SnapshotError::Field(_))));
}

#[test]
fn random_mutations_with_valid_checksum_never_panic() {
    // Whatever restore accepts must render finite audio; whatever it refuses is an Err.
    let (_, good) = busy(4);
    let mut rng = Rng::new(99);
    let mut accepted = 0;
    for _ in 0..2000 {
        let mut bad = good.clone();
        for _ in 0..1 + rng.below(4) {
            let i = HEADER + rng.below((good.len() - HEADER) as u64) as usize;
            bad[i] = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                2 => 0x7f,
                _ => rng.next_u64() as u8,
            };
        }
        fix_checksum(&mut bad);
        let mut target = Synth::new(SR, 512).unwrap();
        if target.restore(&bad).is_ok() {
            accepted += 1;
            let mut l = vec![0.0; 512];
            let mut r = vec![0.0; 512];
            let ev = [dsp::Event {
                offset: 3,
                kind: dsp::EventKind::NoteOn {
                    key: 64,
                    velocity: 1.0,
                },
            }];
            target.render(&ev, None, [&mut l, &mut r]);
            assert!(l.iter().chain(&r).all(|x| x.is_finite()));
        }
    }
    eprintln!("{accepted} of 2000 in-range mutations accepted (and rendered finite audio)");
}

#[test]
fn errors_display() {
    for e in [
        SnapshotError::Checksum,
        SnapshotError::Config,
        SnapshotError::Magic,
        SnapshotError::Field("x"),
        SnapshotError::Length {
            expected: 1,
            got: 2,
        },
    ] {
        let _: &dyn std::error::Error = &e;
        assert!(!e.to_string().is_empty());
    }
    assert!(Synth::new(f32::NAN, 64).is_err());
    assert!(Synth::new(999.0, 64).is_err());
    assert!(Synth::new(2_000_001.0, 64).is_err());
    assert!(Synth::new(SR, 0).is_err());
    assert!(Synth::new(SR, 8193).is_err());
    assert!(Synth::new(1_000.0, 1).is_ok() && Synth::new(2_000_000.0, 8192).is_ok());
    let e = Synth::new(SR, 0).err().unwrap();
    assert!(!e.to_string().is_empty());
}
