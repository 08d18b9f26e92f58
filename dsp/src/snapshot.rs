//! The snapshot format: a header, then one visitor's walk over every field in a fixed order.
//!
//! Layout, all little-endian: a 28-byte header (`b"TDSP"`, format version `u32`, sample rate
//! as `f32` bits, max block `u32`, payload length `u32`, a word-wise FNV-1a-64 of the payload
//! `u64`), then the payload: every field of the state in a fixed order, floats as their bits,
//! booleans as one byte.
//!
//! Each component implements [`Visit`] once, listing its fields with their valid ranges; the
//! same walk writes a snapshot, reads one back and counts its length, so the three can never
//! drift apart. Values go out as little-endian bits (floats via `to_bits`), never as a memory
//! image of a struct, so padding and layout play no part and bytes from elsewhere are checked
//! field by field before a single one is used.

use std::fmt;

/// Identifies a synth snapshot.
const MAGIC: u32 = u32::from_le_bytes(*b"TDSP");
/// Version of the snapshot format; bumped whenever any component's field list changes.
/// Version 2: the smoothed values in parameter-table order. Version 3: each voice's note id,
/// channel and per-voice modulation (poly modulation offsets and note expressions). Version 4:
/// the checksum taken over 8-byte words, not bytes.
pub const SNAPSHOT_VERSION: u32 = 4;
/// Header bytes: magic, version, sample-rate bits, max block, payload length, checksum.
pub(crate) const HEADER: usize = 4 + 4 + 4 + 4 + 4 + 8;

/// Why a snapshot could not be written or restored.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotError {
    /// The destination buffer is smaller than [`crate::Synth::snapshot_len`].
    BufferTooSmall {
        /// Bytes required.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The bytes do not have this synth's snapshot length.
    Length {
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// The bytes do not start with the snapshot magic.
    Magic,
    /// The bytes are of another snapshot format version.
    Version {
        /// Version this build reads.
        expected: u32,
        /// Version found.
        found: u32,
    },
    /// The bytes come from a synth with another sample rate or maximum block.
    Config,
    /// The checksum over the payload does not match.
    Checksum,
    /// A field holds a value no running synth can have (NaN, out of range, too many voices).
    Field(&'static str),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::BufferTooSmall { needed, got } => {
                write!(f, "snapshot needs {needed} bytes, buffer has {got}")
            }
            SnapshotError::Length { expected, got } => {
                write!(f, "snapshot has {got} bytes, expected {expected}")
            }
            SnapshotError::Magic => write!(f, "not a Tandem synth snapshot"),
            SnapshotError::Version { expected, found } => {
                write!(f, "snapshot version {found}, this build reads {expected}")
            }
            SnapshotError::Config => {
                write!(
                    f,
                    "snapshot from a synth with another sample rate or max block"
                )
            }
            SnapshotError::Checksum => write!(f, "snapshot checksum mismatch"),
            SnapshotError::Field(what) => write!(f, "snapshot field out of range: {what}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// Fills the header of a snapshot whose payload is `body`.
pub(crate) fn write_header(head: &mut [u8], sample_rate: f32, max_block: usize, body: &[u8]) {
    head[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    head[4..8].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    head[8..12].copy_from_slice(&sample_rate.to_bits().to_le_bytes());
    head[12..16].copy_from_slice(&(max_block as u32).to_le_bytes());
    head[16..20].copy_from_slice(&(body.len() as u32).to_le_bytes());
    head[20..28].copy_from_slice(&checksum(body).to_le_bytes());
}

/// Checks the header of `bytes` against a synth whose snapshots are `len` bytes long and which
/// runs at `sample_rate` with `max_block`; returns the payload, whose checksum matched.
pub(crate) fn check_header(
    bytes: &[u8],
    len: usize,
    sample_rate: f32,
    max_block: usize,
) -> Result<&[u8], SnapshotError> {
    let word = |i: usize| {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if bytes.len() < HEADER {
        return Err(SnapshotError::Length {
            expected: len,
            got: bytes.len(),
        });
    }
    if word(0) != Some(MAGIC) {
        return Err(SnapshotError::Magic);
    }
    let version = word(4).unwrap_or(0);
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotError::Version {
            expected: SNAPSHOT_VERSION,
            found: version,
        });
    }
    if word(8) != Some(sample_rate.to_bits()) || word(12) != Some(max_block as u32) {
        return Err(SnapshotError::Config);
    }
    if bytes.len() != len || word(16) != Some((len - HEADER) as u32) {
        return Err(SnapshotError::Length {
            expected: len,
            got: bytes.len(),
        });
    }
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&bytes[20..28]);
    if u64::from_le_bytes(sum) != checksum(&bytes[HEADER..]) {
        return Err(SnapshotError::Checksum);
    }
    Ok(&bytes[HEADER..])
}

/// Something that walks a component's fields. Ranges only matter when reading.
pub(crate) trait Visitor {
    /// A `u32` in `0..=max`.
    fn u32(&mut self, x: &mut u32, max: u32, what: &'static str);
    /// Any `u64`.
    fn u64(&mut self, x: &mut u64);
    /// A finite `f32` in `lo..=hi`.
    fn f32(&mut self, x: &mut f32, lo: f32, hi: f32, what: &'static str);
    /// A finite `f64` in `lo..=hi`.
    fn f64(&mut self, x: &mut f64, lo: f64, hi: f64, what: &'static str);
    /// A `bool` (one byte, 0 or 1).
    fn bool(&mut self, x: &mut bool, what: &'static str);
}

/// A component with state.
pub(crate) trait Visit {
    /// Walks every field of the state, always in the same order.
    fn visit<V: Visitor>(&mut self, v: &mut V);
}

/// Counts the bytes a walk produces.
#[derive(Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Visitor for Counter {
    fn u32(&mut self, _: &mut u32, _: u32, _: &'static str) {
        self.0 += 4;
    }
    fn u64(&mut self, _: &mut u64) {
        self.0 += 8;
    }
    fn f32(&mut self, _: &mut f32, _: f32, _: f32, _: &'static str) {
        self.0 += 4;
    }
    fn f64(&mut self, _: &mut f64, _: f64, _: f64, _: &'static str) {
        self.0 += 8;
    }
    fn bool(&mut self, _: &mut bool, _: &'static str) {
        self.0 += 1;
    }
}

/// Writes fields into a buffer that the caller has sized with [`Counter`].
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Writer<'a> {
        Writer { buf, pos: 0 }
    }
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }
}

impl Visitor for Writer<'_> {
    fn u32(&mut self, x: &mut u32, _: u32, _: &'static str) {
        self.put(&x.to_le_bytes());
    }
    fn u64(&mut self, x: &mut u64) {
        self.put(&x.to_le_bytes());
    }
    fn f32(&mut self, x: &mut f32, _: f32, _: f32, _: &'static str) {
        self.put(&x.to_bits().to_le_bytes());
    }
    fn f64(&mut self, x: &mut f64, _: f64, _: f64, _: &'static str) {
        self.put(&x.to_bits().to_le_bytes());
    }
    fn bool(&mut self, x: &mut bool, _: &'static str) {
        self.put(&[*x as u8]);
    }
}

/// Reads fields back, checking each; after the first bad field it only records that error.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    error: Option<SnapshotError>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            error: None,
        }
    }

    /// The first error met, or an error if the walk did not consume exactly every byte.
    pub(crate) fn finish(self) -> Result<(), SnapshotError> {
        match self.error {
            Some(e) => Err(e),
            None if self.pos != self.buf.len() => Err(SnapshotError::Field("trailing bytes")),
            None => Ok(()),
        }
    }

    fn fail(&mut self, what: &'static str) {
        if self.error.is_none() {
            self.error = Some(SnapshotError::Field(what));
        }
    }

    fn take<const N: usize>(&mut self, what: &'static str) -> Option<[u8; N]> {
        if self.error.is_some() {
            return None;
        }
        let Some(bytes) = self.buf.get(self.pos..self.pos + N) else {
            self.fail(what);
            return None;
        };
        self.pos += N;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Some(out)
    }
}

impl Visitor for Reader<'_> {
    fn u32(&mut self, x: &mut u32, max: u32, what: &'static str) {
        if let Some(b) = self.take::<4>(what) {
            let v = u32::from_le_bytes(b);
            if v <= max {
                *x = v;
            } else {
                self.fail(what);
            }
        }
    }
    fn u64(&mut self, x: &mut u64) {
        if let Some(b) = self.take::<8>("u64") {
            *x = u64::from_le_bytes(b);
        }
    }
    fn f32(&mut self, x: &mut f32, lo: f32, hi: f32, what: &'static str) {
        if let Some(b) = self.take::<4>(what) {
            let v = f32::from_bits(u32::from_le_bytes(b));
            // Written so that NaN fails too.
            if v >= lo && v <= hi {
                *x = v;
            } else {
                self.fail(what);
            }
        }
    }
    fn f64(&mut self, x: &mut f64, lo: f64, hi: f64, what: &'static str) {
        if let Some(b) = self.take::<8>(what) {
            let v = f64::from_bits(u64::from_le_bytes(b));
            if v >= lo && v <= hi {
                *x = v;
            } else {
                self.fail(what);
            }
        }
    }
    fn bool(&mut self, x: &mut bool, what: &'static str) {
        if let Some([b]) = self.take::<1>(what) {
            match b {
                0 => *x = false,
                1 => *x = true,
                _ => self.fail(what),
            }
        }
    }
}

/// The payload checksum: FNV-1a-64's constants over 8-byte little-endian words (the tail
/// zero-padded; the header holds the length): enough to catch torn or corrupted snapshots,
/// since each step is a bijection of the running hash, so any one changed word changes the
/// result; not a defence against forgery (the field checks are what make any bytes safe to
/// restore). Byte by byte it cost 15,000 dependent multiplies for a 15 kB snapshot, most of
/// what taking or restoring one cost; by words, an eighth of that.
fn checksum(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    for word in words {
        let word: [u8; 8] = word.try_into().expect("chunks_exact(8)");
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(PRIME);
    }
    if !tail.is_empty() {
        let mut word = [0u8; 8];
        word[..tail.len()].copy_from_slice(tail);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(PRIME);
    }
    h
}
