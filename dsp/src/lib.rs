//! Tandem's synth: a deterministic polyphonic VCO/VCF/ADSR engine with bit-exact snapshots.
//!
//! Each voice is two band-limited oscillators (`vco`: four-point PolyBLEP/PolyBLAMP) plus a sub
//! oscillator, noise and the optional input, through a resonant zero-delay-feedback
//! state-variable filter (`vcf`) and an amplifier, each shaped by an exponential ADSR
//! (`adsr`) and modulated by a shared LFO (`lfo`). [`Synth`] owns the voices, applies
//! timed [`Event`]s at their sample offsets, smooths parameters and writes snapshots.
//!
//! This crate is pure computation: no I/O, no threads, no clock, no allocation after
//! [`Synth::new`], no unsafe code. It exists on its own so that the sandboxed worker can run
//! exactly the code that the in-process baseline and the tests run, and two workers fed the
//! same events produce the same bits.
//!
//! The largest block `Synth::render` accepts is the `max_block` given to `Synth::new`.
#![forbid(unsafe_code)]

mod adsr;
pub mod event;
mod lfo;
mod math;
pub mod params;
mod rng;
mod smoother;
mod snapshot;
pub mod synth;
mod vcf;
mod vco;
mod voice;

pub use event::{Event, EventKind};
pub use params::{ParamId, ParamInfo, ParamKind, N_PARAMS};
pub use snapshot::{SnapshotError, SNAPSHOT_VERSION};
pub use synth::{ConfigError, Synth};
