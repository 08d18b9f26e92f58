//! Why a region could not be created or opened: typed, with the underlying cause kept as the
//! error's `source`, so the worker's last words name what went wrong.

use std::fmt;
use std::io;

/// Sizes a [`crate::RingConfig`] cannot have (a header no plugin writes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConfigError {
    /// Chunk records outside `16..=65536`.
    RecordCount(u32),
    /// Audio capacity not a power of two in `1024..=2^22` frames.
    AudioCapacity(u32),
    /// Snapshot area not a multiple of 8 bytes, or above 16 MiB.
    SnapshotMax(u32),
    /// Sample rate not finite and positive.
    SampleRate(f32),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::RecordCount(n) => write!(f, "record count {n} out of range"),
            ConfigError::AudioCapacity(n) => write!(f, "audio capacity {n} invalid"),
            ConfigError::SnapshotMax(n) => write!(f, "snapshot size {n} invalid"),
            ConfigError::SampleRate(sr) => write!(f, "sample rate {sr} invalid"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why the worker could not open a region it was handed.
#[derive(Debug)]
pub enum OpenError {
    /// The memfd could not be mapped.
    Map {
        /// Which region ("input", "output", "doorbell").
        region: &'static str,
        /// What the system said.
        source: io::Error,
    },
    /// The region is not one this build's plugin made: wrong magic, layout version or size.
    Header {
        /// Which region.
        region: &'static str,
    },
    /// The input ring's header describes sizes no plugin writes.
    Config(ConfigError),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Map { region, source } => {
                write!(f, "cannot map the {region} region: {source}")
            }
            OpenError::Header { region } => {
                write!(f, "{region} region has the wrong magic, version or size")
            }
            OpenError::Config(e) => write!(f, "input region header: {e}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Map { source, .. } => Some(source),
            OpenError::Header { .. } => None,
            OpenError::Config(e) => Some(e),
        }
    }
}
