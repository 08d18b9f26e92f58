//! Where every field lives, in 32-bit words from the start of its region.
//!
//! Both sides compute offsets from the same [`RingConfig`]; the plugin writes the config into the
//! input ring's header, and the worker reads it from there.

use crate::chunk::{MAX_CHUNK_EVENTS, MAX_PARAMS};
use crate::error::ConfigError;

/// Identifies a Tandem region ("TNDM").
pub const MAGIC: u32 = 0x4d44_4e54;
/// Bumped whenever the layout changes, so a stale worker binary is refused, not misread.
pub const VERSION: u32 = 3;

/// Words at the start of every region before its arrays begin.
pub const HEADER_WORDS: usize = 64;

/// Input ring header fields.
pub mod input {
    /// `MAGIC`.
    pub const MAGIC: usize = 0;
    /// `VERSION`.
    pub const VERSION: usize = 1;
    /// Number of chunk records.
    pub const RECORD_COUNT: usize = 2;
    /// Audio capacity in frames (power of two).
    pub const AUDIO_CAPACITY: usize = 3;
    /// Sample rate, f32 bits.
    pub const SAMPLE_RATE: usize = 4;
    /// Snapshot area size in bytes.
    pub const SNAPSHOT_MAX: usize = 5;
    /// Chunks published so far (u64, even index).
    pub const PUBLISHED: usize = 8;
    /// Futex word: the low 32 bits of `PUBLISHED`, which the workers sleep on.
    pub const SEQ: usize = 10;
    /// Frames published so far: the end frame of the last published chunk (u64).
    pub const POSTED_FRAMES: usize = 12;
    /// The spares' futex word (plugin-written): bumped after every call.
    pub const SPARE_CALL: usize = 14;
    /// Per worker slot (two words, plugin-written): the epoch of the spare last called into it,
    /// 0 once the plugin dismisses it (Eco's audit standby, which then waits to be called
    /// again). One word per slot, so that a spare slow to read its call still finds it after a
    /// call into the other slot (a slot is called into again only once its worker is gone).
    pub const SPARE_CALLED: usize = 15;
}

/// Chunk record fields, relative to the record's first word.
pub mod record {
    /// Chunk index (u64).
    pub const INDEX: usize = 0;
    /// Start frame (u64).
    pub const START_FRAME: usize = 2;
    /// Frame count.
    pub const FRAMES: usize = 4;
    /// Flags.
    pub const FLAGS: usize = 5;
    /// Snapshot request mask.
    pub const SNAPSHOT_SLOTS: usize = 6;
    /// Fault command: worker slot, epoch, kind, arg.
    pub const FAULT: usize = 7;
    /// Event count.
    pub const N_EVENTS: usize = 11;
    /// First parameter value.
    pub const PARAMS: usize = 16;
    /// First event word.
    pub const EVENTS: usize = PARAMS + super::MAX_PARAMS;
    /// Words per record (even, so u64 fields stay aligned).
    pub const WORDS: usize = EVENTS + 4 * super::MAX_CHUNK_EVENTS;
}

/// Output ring header fields (per worker).
pub mod output {
    /// `MAGIC`, written by the plugin.
    pub const MAGIC: usize = 0;
    /// The epoch the plugin spawned this worker with (plugin-written).
    pub const SPAWN_EPOCH: usize = 1;
    /// The snapshot in the snapshot area is the state after this chunk (u64, plugin-written
    /// before spawn); `u64::MAX` means "before chunk 0".
    pub const RESTORE_CHUNK: usize = 2;
    /// Bytes of the restore snapshot (plugin-written before spawn).
    pub const RESTORE_LEN: usize = 4;
    /// A quarantined chunk (u64, plugin-written before spawn; `u64::MAX`: none): the worker
    /// renders it without its events, because rendering them killed every worker.
    pub const QUARANTINE_CHUNK: usize = 6;

    /// The epoch the worker says it runs as (worker-written).
    pub const EPOCH: usize = 16;
    /// Absolute frame after the last rendered frame (u64, worker-written).
    pub const FRAMES_DONE: usize = 18;
    /// Chunks rendered: the next chunk index (u64, worker-written). With `FRAMES_DONE` this is
    /// the heartbeat: a worker with work pending whose counters stand still is hung.
    pub const CHUNKS_DONE: usize = 20;
    /// Snapshot seqlock: odd while being written.
    pub const SNAPSHOT_SEQ: usize = 24;
    /// The snapshot is the state after this chunk (u64).
    pub const SNAPSHOT_CHUNK: usize = 26;
    /// Snapshot length in bytes.
    pub const SNAPSHOT_LEN: usize = 28;
    /// Non-zero while the worker sleeps on the input futex (so the plugin knows to wake it).
    pub const SLEEPING: usize = 29;
    /// The death word: the worker's thread id while it lives, its robust futex (`shm::death`).
    pub const DEATH: usize = 30;
    /// A standby dismissed from this slot writes its epoch here once it has stopped writing
    /// the ring and waits to be called again (worker-written; reset before every spawn).
    pub const LEFT: usize = 31;
}

/// Sizes shared by the plugin and its workers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RingConfig {
    /// Chunk records in the input ring (and digest entries in each output ring).
    pub record_count: u32,
    /// Audio frames per ring; a power of two.
    pub audio_capacity: u32,
    /// Bytes reserved for a state snapshot; a multiple of 8.
    pub snapshot_max: u32,
    /// Sample rate in Hz.
    pub sample_rate: f32,
}

impl RingConfig {
    /// Whether a state that ends `chunks` chunks and `frames` frames behind the head is more
    /// than half the ring old in either: what the supervisor calls a stale checkpoint and an
    /// offline host paces itself to, so the two agree.
    pub fn over_half_behind(&self, chunks: u64, frames: u64) -> bool {
        chunks * 2 > self.record_count as u64 || frames * 2 > self.audio_capacity as u64
    }

    /// Checks the sizes are ones this layout can hold; the worker calls it on what it read.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(16..=1 << 16).contains(&self.record_count) {
            return Err(ConfigError::RecordCount(self.record_count));
        }
        if !self.audio_capacity.is_power_of_two()
            || !(1024..=1 << 22).contains(&self.audio_capacity)
        {
            return Err(ConfigError::AudioCapacity(self.audio_capacity));
        }
        if !self.snapshot_max.is_multiple_of(8) || self.snapshot_max > 1 << 24 {
            return Err(ConfigError::SnapshotMax(self.snapshot_max));
        }
        if !self.sample_rate.is_finite() || self.sample_rate <= 0.0 {
            return Err(ConfigError::SampleRate(self.sample_rate));
        }
        Ok(())
    }

    /// First word of chunk record `i`.
    pub fn record_base(&self, i: usize) -> usize {
        HEADER_WORDS + i * record::WORDS
    }

    /// First word of the input ring's audio (channel 0; channel 1 follows).
    pub fn input_audio_base(&self) -> usize {
        HEADER_WORDS + self.record_count as usize * record::WORDS
    }

    /// Total words of the input ring.
    pub fn input_words(&self) -> usize {
        self.input_audio_base() + 2 * self.audio_capacity as usize
    }

    /// First word of the output ring's digest table (4 words per entry: chunk u64, digest u64).
    pub fn digest_base(&self) -> usize {
        HEADER_WORDS
    }

    /// First word of the output ring's audio (channel 0; channel 1 follows).
    pub fn output_audio_base(&self) -> usize {
        self.digest_base() + 4 * self.record_count as usize
    }

    /// First word of the snapshot area.
    pub fn snapshot_base(&self) -> usize {
        self.output_audio_base() + 2 * self.audio_capacity as usize
    }

    /// First word of the output ring's voice-end tables (one per chunk record, like the digests; see
    /// [`crate::voice_end`]).
    pub fn voice_end_base(&self) -> usize {
        self.snapshot_base() + self.snapshot_max as usize / 4
    }

    /// Total words of an output ring.
    pub fn output_words(&self) -> usize {
        self.voice_end_base() + self.record_count as usize * crate::voice_end::TABLE_WORDS
    }
}
