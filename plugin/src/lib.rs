//! Tandem: a polyphonic synth whose DSP runs in two sandboxed workers in lockstep.
//!
//! This crate is the part the DAW loads. [`engine`] is the headless lockstep engine (shared
//! memory, workers, supervisor), usable without a host, e.g. by `cargo xtask demo`. The rest
//! wraps it for hosts:
//!
//! - [`plugin`]: the nice-plug [`Plugin`](nice_plug::prelude::Plugin) (CLAP and VST3), its
//!   lifecycle and its real-time `process()`;
//! - [`params`]: the parameters, built from `dsp`'s table, and the latency setting;
//! - [`editor`]: the window (knobs, presets, the protection panel) and [`presets`];
//! - [`worker_exe`]: where the worker executable comes from (embedded in bundles);
//! - [`logging`]: where log lines go;
//! - [`sys`]: the few system calls of the plugin outside `shm`, behind safe functions.

pub mod editor;
pub mod engine;
pub mod logging;
pub mod params;
pub mod plugin;
pub mod presets;
pub mod sys;
pub mod worker_exe;

pub use plugin::Tandem;

nice_plug::nice_export_clap!(Tandem);
nice_plug::nice_export_vst3!(Tandem);
