//! A chunk: one `process()` call (or a piece of one) as the workers see it.
//!
//! Plain data with fixed-size arrays so it can be copied in and out of the ring without
//! allocation. Parameters travel as every parameter's target value in every chunk, so a worker
//! that joins late needs no history of parameter changes beyond its snapshot.

/// The most frames one chunk carries; longer host blocks are split.
pub const MAX_CHUNK_FRAMES: usize = 1024;
/// The most events one chunk carries; a busier block is split at an event offset.
pub const MAX_CHUNK_EVENTS: usize = 64;
/// Parameter values in a chunk (the synth uses the first `dsp::N_PARAMS`).
pub const MAX_PARAMS: usize = 64;

/// Flag: reset the DSP before rendering this chunk.
pub const FLAG_RESET: u32 = 1;
/// Flag: this chunk carries input audio in the input ring's audio area.
pub const FLAG_HAS_INPUT: u32 = 2;

/// A fault a test asks one worker (by worker slot and spawn epoch) to commit while rendering a chunk.
///
/// The epoch makes the command single-use: a replacement worker replaying the same chunk has a
/// new epoch and renders it normally.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCommand {
    /// Which worker slot (0 or 1).
    pub slot: u32,
    /// Which spawn of that slot.
    pub epoch: u32,
    /// A [`FaultKind`] code (or a sandbox escape code, 100 and up).
    pub kind: u32,
    /// A parameter for the fault (milliseconds for `Sleep`).
    pub arg: u32,
}

/// Faults the worker knows how to commit (codes below 100; sandbox escapes use 100 and up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum FaultKind {
    /// Dereference a null pointer: SIGSEGV.
    Segv = 1,
    /// `std::process::abort()`: SIGABRT.
    Abort = 2,
    /// A Rust panic (the worker is built with panic = abort or exits on unwind).
    Panic = 3,
    /// `exit(0)`: a clean-looking exit that is still a death.
    Exit0 = 4,
    /// Spin forever without progress: a hang the heartbeat must catch.
    InfiniteLoop = 5,
    /// Sleep `arg` milliseconds, then carry on: a slow worker.
    Sleep = 6,
    /// Write invalid ring fields (a frame counter beyond anything submitted).
    BadFields = 7,
    /// Write NaN into the audio of this chunk.
    NaN = 8,
    /// From this chunk on, write a malformed voice-end table (a count beyond capacity) in
    /// place of the real one, keeping the honest digest: only the table's reader can tell.
    BadVoiceEnds = 9,
    /// From this chunk on, publish progress but no digests: a worker that stops proving what
    /// it rendered.
    MuteDigests = 10,
    /// In this chunk only, XOR bit 0 of the first left sample's bits before the digest is
    /// computed: finite, honest-looking audio that differs from its twin's by one bit.
    FlipLowBit = 11,
    /// Aimed at every worker, present and future (the engine stamps it on every chunk from then
    /// on): crash (abort) whenever a chunk holds a note-on of MIDI key `arg`, replays included.
    /// A deterministic, common-mode bug, as both twins and every rebuild share it.
    CrashOnNote = 12,
    /// After publishing this chunk's honest digest, overwrite its finished frames (a finite
    /// change of every sample): only a check of what the plugin served can tell.
    OverwriteFinished = 13,
    /// Never finish this chunk, sleeping 1 ns at a time: a hang that keeps resetting
    /// `RLIMIT_RTTIME`'s count, which only the supervisor's own look at the worker ends.
    SpinSleeping = 14,
    /// From this chunk on, render every chunk on time but keep the CPU busy between chunks,
    /// sleeping 1 ns every millisecond (so `RLIMIT_RTTIME` never fires): only a CPU budget
    /// stops it.
    HogBetweenChunks = 15,
    /// Damage the next state snapshot this worker publishes (one byte of its body flipped, so
    /// its checksum no longer matches): a malformed checkpoint, which only a restore can tell.
    BadSnapshot = 16,
}

impl FaultKind {
    /// Decodes a fault code; `None` for codes this enum does not name.
    pub fn from_u32(code: u32) -> Option<FaultKind> {
        Some(match code {
            1 => FaultKind::Segv,
            2 => FaultKind::Abort,
            3 => FaultKind::Panic,
            4 => FaultKind::Exit0,
            5 => FaultKind::InfiniteLoop,
            6 => FaultKind::Sleep,
            7 => FaultKind::BadFields,
            8 => FaultKind::NaN,
            9 => FaultKind::BadVoiceEnds,
            10 => FaultKind::MuteDigests,
            11 => FaultKind::FlipLowBit,
            12 => FaultKind::CrashOnNote,
            13 => FaultKind::OverwriteFinished,
            14 => FaultKind::SpinSleeping,
            15 => FaultKind::HogBetweenChunks,
            16 => FaultKind::BadSnapshot,
            _ => return None,
        })
    }
}

/// One chunk record.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    /// Sequence number, from 0 at activation.
    pub index: u64,
    /// Absolute frame of the chunk's first frame.
    pub start_frame: u64,
    /// Frames in the chunk, 1..=MAX_CHUNK_FRAMES.
    pub frames: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Bit `s` set: the worker in slot `s` publishes a state snapshot after this chunk.
    pub snapshot_slots: u32,
    /// A fault for one worker, if `kind != 0`.
    pub fault: FaultCommand,
    /// Every parameter's target value (plain units).
    pub params: [f32; MAX_PARAMS],
    /// Valid events: `events[..n_events]`.
    pub n_events: u32,
    /// Events in the synth's 16-byte wire form, sorted by offset, offsets < frames.
    pub events: [[u32; 4]; MAX_CHUNK_EVENTS],
}

impl Default for Chunk {
    fn default() -> Self {
        Chunk {
            index: 0,
            start_frame: 0,
            frames: 0,
            flags: 0,
            snapshot_slots: 0,
            fault: FaultCommand::default(),
            params: [0.0; MAX_PARAMS],
            n_events: 0,
            events: [[0; 4]; MAX_CHUNK_EVENTS],
        }
    }
}

impl Chunk {
    /// The valid events.
    pub fn events(&self) -> &[[u32; 4]] {
        &self.events[..(self.n_events as usize).min(MAX_CHUNK_EVENTS)]
    }
}
