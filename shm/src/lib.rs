//! Tandem's shared-memory protocol.
//!
//! Three kinds of region, all memfds whose sizes are sealed (a worker that could shrink one would
//! crash the DAW with `SIGBUS`):
//!
//! - the **input ring** ([`InputRing`]): chunks posted by the plugin's audio thread, broadcast to
//!   both workers, mapped read-only in them and sealed against new writable mappings;
//! - one **output ring** per worker ([`OutputRing`]): audio addressed by absolute frame, progress
//!   counters, per-chunk digests and voice ends, a snapshot area. The plugin reads it as hostile memory: every
//!   accessor validates what it read before anybody uses it;
//! - the **doorbell** ([`Doorbell`]): a futex word the workers ring after each chunk.
//!
//! All access to shared memory goes through atomics (see [`region`]); this crate holds nearly all
//! of Tandem's `unsafe`, each block with a `// SAFETY:` note. Nothing here allocates after
//! creation, so the audio thread and the worker's render loop may call any of it.

pub mod chunk;
pub mod death;
pub mod doorbell;
pub mod error;
pub mod exit_status;
pub mod futex;
pub mod handoff;
pub mod input;
pub mod layout;
pub mod output;
pub mod region;
pub mod voice_end;

pub use chunk::{Chunk, FaultCommand, FaultKind};
pub use doorbell::Doorbell;
pub use error::{ConfigError, OpenError};
pub use input::{InputRing, ReadError};
pub use layout::RingConfig;
pub use output::{digest, Bounds, OutputRing, Progress, Rogue};
pub use voice_end::{VoiceEndRecord, MAX_VOICE_ENDS};
