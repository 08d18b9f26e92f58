//! Tandem's synth: a deterministic polyphonic VCO/VCF/ADSR engine with bit-exact snapshots.
//!
//! The largest block `Synth::render` accepts is the `max_block` given to `Synth::new`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod event;
pub mod params;
pub mod synth;

pub use event::{Event, EventKind};
pub use params::{ParamId, ParamInfo, ParamKind, N_PARAMS};
pub use synth::{ConfigError, SnapshotError, Synth};
