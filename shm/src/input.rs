//! The broadcast input ring: the plugin's audio thread writes chunks, both workers read them.
//!
//! Single writer (the audio thread), many readers. The workers map it read-only and it is sealed
//! against new writable mappings, so a rogue worker cannot change what its twin reads. A reader
//! that lags by a whole ring is detected (seqlock-style re-check) and told it was lapped.

use crate::chunk::{Chunk, FaultCommand, MAX_CHUNK_EVENTS, MAX_CHUNK_FRAMES, MAX_PARAMS};
use crate::error::OpenError;
use crate::futex;
use crate::layout::{self, input as h, record, RingConfig};
use crate::region::{Access, Region};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{fence, AtomicU32, Ordering};

/// Why a chunk could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Not published yet.
    NotYet,
    /// Overwritten by a newer chunk: the reader fell a whole ring behind.
    Lapped,
}

/// The input ring, from either side.
pub struct InputRing {
    region: Region,
    config: RingConfig,
}

impl InputRing {
    /// Plugin side: creates the ring, writes its header, and seals it so that workers can only
    /// ever map it read-only.
    pub fn create(config: RingConfig) -> io::Result<InputRing> {
        config.validate().map_err(io::Error::other)?;
        let region = Region::create("tandem-input", config.input_words())?;
        region
            .word(h::MAGIC)
            .store(layout::MAGIC, Ordering::Relaxed);
        region
            .word(h::VERSION)
            .store(layout::VERSION, Ordering::Relaxed);
        region
            .word(h::RECORD_COUNT)
            .store(config.record_count, Ordering::Relaxed);
        region
            .word(h::AUDIO_CAPACITY)
            .store(config.audio_capacity, Ordering::Relaxed);
        region
            .word(h::SAMPLE_RATE)
            .store(config.sample_rate.to_bits(), Ordering::Relaxed);
        region
            .word(h::SNAPSHOT_MAX)
            .store(config.snapshot_max, Ordering::Relaxed);
        region.seal_future_writes()?;
        region.seal_seals()?;
        Ok(InputRing { region, config })
    }

    /// Worker side: maps a handed fd read-only and reads the configuration from its header.
    pub fn open(fd: OwnedFd) -> Result<InputRing, OpenError> {
        let region = "input";
        let bad_header = OpenError::Header { region };
        let map = Region::map_whole(fd, Access::ReadOnly)
            .map_err(|source| OpenError::Map { region, source })?;
        if map.words() < layout::HEADER_WORDS {
            return Err(bad_header);
        }
        let w = |i| map.word(i).load(Ordering::Relaxed);
        if w(h::MAGIC) != layout::MAGIC || w(h::VERSION) != layout::VERSION {
            return Err(bad_header);
        }
        let config = RingConfig {
            record_count: w(h::RECORD_COUNT),
            audio_capacity: w(h::AUDIO_CAPACITY),
            snapshot_max: w(h::SNAPSHOT_MAX),
            sample_rate: f32::from_bits(w(h::SAMPLE_RATE)),
        };
        config.validate().map_err(OpenError::Config)?;
        if map.words() < config.input_words() {
            return Err(bad_header);
        }
        Ok(InputRing {
            region: map,
            config,
        })
    }

    /// The sizes this ring was made with.
    pub fn config(&self) -> &RingConfig {
        &self.config
    }

    /// The memfd, to hand to a worker.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.region.fd()
    }

    /// Locks the ring in memory (best effort; see [`crate::region::Region::lock`]).
    pub fn lock(&self) -> bool {
        self.region.lock()
    }

    /// The mapping: (address, bytes).
    pub fn span(&self) -> (*const u8, usize) {
        (self.region.as_ptr(), self.region.words() * 4)
    }

    /// Chunks published so far.
    pub fn published(&self) -> u64 {
        self.region.dword(h::PUBLISHED).load(Ordering::Acquire)
    }

    /// Frames published so far (the end frame of the last published chunk).
    pub fn posted_frames(&self) -> u64 {
        self.region.dword(h::POSTED_FRAMES).load(Ordering::Acquire)
    }

    /// The start frame and frame count of chunk `index`, if the ring still holds it. Plugin side
    /// (the only writer), so what it reads is trusted.
    pub fn chunk_span(&self, index: u64) -> Option<(u64, u32)> {
        if index >= self.published() {
            return None;
        }
        let base = self
            .config
            .record_base((index % self.config.record_count as u64) as usize);
        let r = &self.region;
        (r.dword(base + record::INDEX).load(Ordering::Relaxed) == index).then(|| {
            (
                r.dword(base + record::START_FRAME).load(Ordering::Relaxed),
                r.word(base + record::FRAMES).load(Ordering::Relaxed),
            )
        })
    }

    /// The futex word workers sleep on.
    pub fn seq_word(&self) -> &AtomicU32 {
        self.region.word(h::SEQ)
    }

    /// Writer side (the audio thread only): writes `chunk` (its `index` must equal `published()`)
    /// and its input audio, then publishes it. Does not wake anybody; see [`InputRing::wake`].
    pub fn publish(&self, chunk: &Chunk, input: Option<[&[f32]; 2]>) {
        let r = &self.region;
        let base = self
            .config
            .record_base((chunk.index % self.config.record_count as u64) as usize);
        // Pairs with the reader's acquire fence: a reader that sees any of the stores below also
        // sees the `published` value that marks the record's previous chunk as overwritten.
        fence(Ordering::Release);
        r.dword(base + record::INDEX)
            .store(chunk.index, Ordering::Relaxed);
        r.dword(base + record::START_FRAME)
            .store(chunk.start_frame, Ordering::Relaxed);
        r.word(base + record::FRAMES)
            .store(chunk.frames, Ordering::Relaxed);
        r.word(base + record::FLAGS)
            .store(chunk.flags, Ordering::Relaxed);
        r.word(base + record::SNAPSHOT_SLOTS)
            .store(chunk.snapshot_slots, Ordering::Relaxed);
        let f = chunk.fault;
        for (i, v) in [f.slot, f.epoch, f.kind, f.arg].into_iter().enumerate() {
            r.word(base + record::FAULT + i).store(v, Ordering::Relaxed);
        }
        let n_events = chunk.events().len();
        r.word(base + record::N_EVENTS)
            .store(n_events as u32, Ordering::Relaxed);
        for (i, p) in chunk.params.iter().enumerate() {
            r.word(base + record::PARAMS + i)
                .store(p.to_bits(), Ordering::Relaxed);
        }
        for (i, e) in chunk.events().iter().enumerate() {
            for (j, w) in e.iter().enumerate() {
                r.word(base + record::EVENTS + 4 * i + j)
                    .store(*w, Ordering::Relaxed);
            }
        }
        if let Some(channels) = input {
            let frames = chunk.frames as usize;
            for (c, samples) in channels.iter().enumerate() {
                let audio =
                    self.config.input_audio_base() + c * self.config.audio_capacity as usize;
                for (k, s) in samples[..frames].iter().enumerate() {
                    let pos = self.audio_pos(chunk.start_frame + k as u64);
                    r.word(audio + pos).store(s.to_bits(), Ordering::Relaxed);
                }
            }
        }
        let next = chunk.index + 1;
        r.dword(h::POSTED_FRAMES)
            .store(chunk.start_frame + chunk.frames as u64, Ordering::SeqCst);
        r.dword(h::PUBLISHED).store(next, Ordering::SeqCst);
        r.word(h::SEQ).store(next as u32, Ordering::SeqCst);
    }

    /// Plugin side: tells the spare spawned with `epoch` to take worker slot `slot` (the plugin
    /// has prepared the spare's own output ring), and wakes it.
    pub fn call_spare(&self, epoch: u32, slot: usize) {
        self.region
            .word(h::SPARE_CALLED + (slot & 1))
            .store(epoch, Ordering::Release);
        let word = self.spare_call_word();
        word.fetch_add(1, Ordering::AcqRel);
        futex::wake_all(word);
    }

    /// Plugin side: dismisses the standby called into `slot` (Eco's audit standby, once
    /// verified), which leaves the slot and waits to be called again, and wakes it (it may
    /// sleep on the chunk futex). Its slot must be out of the audio thread's reach already.
    pub fn dismiss(&self, slot: usize) {
        self.region
            .word(h::SPARE_CALLED + (slot & 1))
            .store(0, Ordering::Release);
        self.wake();
    }

    /// Spare side: the futex word the plugin calls spares through.
    pub fn spare_call_word(&self) -> &AtomicU32 {
        self.region.word(h::SPARE_CALL)
    }

    /// Spare side: the slot the spare spawned with `epoch` (non-zero) is called to, if it is
    /// called. Only the plugin writes these words.
    pub fn spare_called(&self, epoch: u32) -> Option<usize> {
        (0..2).find(|&slot| {
            self.region
                .word(h::SPARE_CALLED + slot)
                .load(Ordering::Acquire)
                == epoch
        })
    }

    /// Wakes every worker sleeping on the ring.
    pub fn wake(&self) {
        futex::wake_all(self.seq_word());
    }

    fn audio_pos(&self, frame: u64) -> usize {
        (frame & (self.config.audio_capacity as u64 - 1)) as usize
    }

    /// Reader side: copies chunk `index` into `out` (and its input audio into `input`, when the
    /// chunk has some). Fails if the chunk is not published yet or was already overwritten.
    pub fn read(
        &self,
        index: u64,
        out: &mut Chunk,
        input: [&mut [f32]; 2],
    ) -> Result<(), ReadError> {
        let r = &self.region;
        if index >= self.published() {
            return Err(ReadError::NotYet);
        }
        let base = self
            .config
            .record_base((index % self.config.record_count as u64) as usize);
        out.index = r.dword(base + record::INDEX).load(Ordering::Relaxed);
        out.start_frame = r.dword(base + record::START_FRAME).load(Ordering::Relaxed);
        out.frames = r.word(base + record::FRAMES).load(Ordering::Relaxed);
        out.flags = r.word(base + record::FLAGS).load(Ordering::Relaxed);
        out.snapshot_slots = r
            .word(base + record::SNAPSHOT_SLOTS)
            .load(Ordering::Relaxed);
        let fw = |i| r.word(base + record::FAULT + i).load(Ordering::Relaxed);
        out.fault = FaultCommand {
            slot: fw(0),
            epoch: fw(1),
            kind: fw(2),
            arg: fw(3),
        };
        out.n_events = r
            .word(base + record::N_EVENTS)
            .load(Ordering::Relaxed)
            .min(MAX_CHUNK_EVENTS as u32);
        for i in 0..MAX_PARAMS {
            out.params[i] =
                f32::from_bits(r.word(base + record::PARAMS + i).load(Ordering::Relaxed));
        }
        for i in 0..out.n_events as usize {
            for j in 0..4 {
                out.events[i][j] = r
                    .word(base + record::EVENTS + 4 * i + j)
                    .load(Ordering::Relaxed);
            }
        }
        out.frames = out.frames.min(MAX_CHUNK_FRAMES as u32);
        if out.flags & crate::chunk::FLAG_HAS_INPUT != 0 {
            let frames = (out.frames as usize)
                .min(input[0].len())
                .min(input[1].len());
            for (c, samples) in input.into_iter().enumerate() {
                let audio =
                    self.config.input_audio_base() + c * self.config.audio_capacity as usize;
                for (k, s) in samples[..frames].iter_mut().enumerate() {
                    let pos = self.audio_pos(out.start_frame + k as u64);
                    *s = f32::from_bits(r.word(audio + pos).load(Ordering::Relaxed));
                }
            }
        }
        // Seqlock check: if the writer has begun reusing this record (or the audio positions), the
        // copy may be torn.
        fence(Ordering::Acquire);
        let published = self.published();
        let lapped_record = published > index + self.config.record_count as u64 - 1;
        let posted_frames = r.dword(h::POSTED_FRAMES).load(Ordering::Acquire);
        let lapped_audio = posted_frames + MAX_CHUNK_FRAMES as u64
            > out.start_frame + self.config.audio_capacity as u64;
        if out.index != index || lapped_record || lapped_audio {
            return Err(ReadError::Lapped);
        }
        Ok(())
    }
}
