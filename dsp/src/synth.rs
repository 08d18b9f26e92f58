//! The polyphonic synth (work in progress: API first).

use crate::event::Event;
use crate::params::{ParamId, N_PARAMS};
use std::fmt;

/// Why a [`Synth`] could not be configured.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// The sample rate is not finite or outside 8 000..=384 000 Hz.
    SampleRate(f32),
    /// The maximum block is 0 or above 8192 frames.
    MaxBlock(usize),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::SampleRate(sr) => {
                write!(f, "sample rate {sr} is outside 8000..=384000 Hz")
            }
            ConfigError::MaxBlock(n) => write!(f, "max block {n} is outside 1..=8192 frames"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why a snapshot could not be written or restored.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotError {
    /// The destination buffer is smaller than [`Synth::snapshot_len`].
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

/// The whole instrument.
#[derive(Clone)]
pub struct Synth {
    sample_rate: f32,
    max_block: usize,
    targets: [f32; N_PARAMS],
}

impl Synth {
    /// Allocates everything up front. Errors: sample rate outside 8_000..=384_000 (or
    /// non-finite), max_block 0 or > 8192.
    pub fn new(sample_rate: f32, max_block: usize) -> Result<Synth, ConfigError> {
        if !(8_000.0..=384_000.0).contains(&sample_rate) {
            return Err(ConfigError::SampleRate(sample_rate));
        }
        if max_block == 0 || max_block > 8192 {
            return Err(ConfigError::MaxBlock(max_block));
        }
        let mut targets = [0.0; N_PARAMS];
        for id in ParamId::ALL {
            targets[id.index()] = id.info().default;
        }
        Ok(Synth {
            sample_rate,
            max_block,
            targets,
        })
    }

    /// The configured sample rate in Hz.
    pub fn sample_rate(&self) -> f32 {
        self.sample_rate
    }

    /// The largest block `render` accepts.
    pub fn max_block(&self) -> usize {
        self.max_block
    }

    /// Sets a parameter's target (plain units, clamped to its range); smoothed inside.
    pub fn set_param(&mut self, id: ParamId, value: f32) {
        if let Some(v) = id.sanitize(value) {
            self.targets[id.index()] = v;
        }
    }

    /// Renders `out[0].len()` frames.
    pub fn render(&mut self, events: &[Event], input: Option<[&[f32]; 2]>, out: [&mut [f32]; 2]) {
        let _ = (events, input);
        let [l, r] = out;
        assert!(l.len() == r.len() && l.len() <= self.max_block);
        l.fill(0.0);
        r.fill(0.0);
    }

    /// Returns to the just-configured state, keeping parameter targets.
    pub fn reset(&mut self) {}

    /// Size in bytes of a snapshot of this synth.
    pub fn snapshot_len(&self) -> usize {
        16
    }

    /// Writes the complete state as plain bytes.
    pub fn snapshot_into(&self, buf: &mut [u8]) -> Result<usize, SnapshotError> {
        let n = self.snapshot_len();
        if buf.len() < n {
            return Err(SnapshotError::BufferTooSmall {
                needed: n,
                got: buf.len(),
            });
        }
        buf[..n].fill(0);
        Ok(n)
    }

    /// The snapshot in a fresh vector.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut v = vec![0; self.snapshot_len()];
        let _ = self.snapshot_into(&mut v);
        v
    }

    /// Restores a snapshot.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        if bytes.len() != self.snapshot_len() {
            return Err(SnapshotError::Length {
                expected: self.snapshot_len(),
                got: bytes.len(),
            });
        }
        Ok(())
    }
}
