//! The snapshot format: one visitor walks every field in a fixed order.
//!
//! Each component implements [`Visit`] once, listing its fields with their valid ranges; the
//! same walk writes a snapshot, reads one back and counts its length, so the three can never
//! drift apart. Values go out as little-endian bits (floats via `to_bits`), never as a memory
//! image of a struct, so padding and layout play no part and bytes from elsewhere are checked
//! field by field before a single one is used.

use crate::synth::SnapshotError;

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

/// FNV-1a, 64 bits: enough to catch torn or corrupted snapshots; not a defence against forgery
/// (the field checks are what make any bytes safe to restore).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
