//! One worker's output ring: audio addressed by absolute frame, progress counters, per-chunk
//! digests, and a snapshot area.
//!
//! The worker writes it; the plugin reads it as **hostile** memory. Every plugin-side accessor
//! here reads a field once into a local, checks it against what the plugin knows independently
//! ([`Bounds`]), and only then lets the caller use it. Audio is copied out (never used in
//! place) and checked to be finite.

use crate::error::OpenError;
use crate::layout::{self, output as h, RingConfig};
use crate::region::{Access, Region};
use crate::voice_end::{self, VoiceEndRecord, MAX_VOICE_ENDS};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{fence, Ordering};

/// What the plugin knows without asking the worker, against which its claims are judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// The epoch this worker was spawned with.
    pub epoch: u32,
    /// Frames the plugin has posted: no worker can have rendered more.
    pub posted_frames: u64,
    /// Chunks the plugin has posted.
    pub posted_chunks: u64,
    /// The worker's progress may never fall below these (what it already claimed, or where it
    /// was told to start).
    pub floor_frames: u64,
    /// As `floor_frames`, in chunks.
    pub floor_chunks: u64,
}

/// A worker's validated progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Frames `[.., frames_done)` are rendered.
    pub frames_done: u64,
    /// Chunks `[.., chunks_done)` are rendered.
    pub chunks_done: u64,
}

/// Why a worker's ring was judged rogue. Any of these evicts the worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rogue {
    /// The ring claims another epoch than the one the worker was spawned with (after start-up).
    WrongEpoch,
    /// More frames or chunks claimed than were ever posted.
    BeyondPosted,
    /// A progress counter went backwards.
    WentBack,
    /// Frame and chunk counters disagree with each other.
    Inconsistent,
    /// NaN or infinity in the audio.
    NonFinite,
    /// A snapshot header that cannot be right (too long).
    BadSnapshot,
    /// A chunk's voice-end table with too many records or a record out of range or order.
    BadVoiceEnds,
    /// A chunk counted as done whose digest is missing or tagged for another chunk.
    MissingDigest,
    /// The audio the plugin copied from the ring to serve does not match the chunk's digest:
    /// the worker changed finished frames after publishing it.
    ServedDiffers,
}

impl std::fmt::Display for Rogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rogue::WrongEpoch => "wrong epoch in its ring",
            Rogue::BeyondPosted => "progress beyond what was posted",
            Rogue::WentBack => "progress went backwards",
            Rogue::Inconsistent => "inconsistent progress counters",
            Rogue::NonFinite => "non-finite audio",
            Rogue::BadSnapshot => "malformed snapshot header",
            Rogue::BadVoiceEnds => "malformed voice-end records",
            Rogue::MissingDigest => "a finished chunk without its digest",
            Rogue::ServedDiffers => "served audio that differs from its digest",
        })
    }
}

/// A worker's output ring.
pub struct OutputRing {
    region: Region,
    config: RingConfig,
}

/// The largest sample magnitude we pass on. The synth never gets near it; a worker that does is
/// not making music, and clipping keeps a hostile value from reaching the host's speakers.
pub const MAX_SAMPLE: f32 = 16.0;

/// The digest of a chunk's audio: the FNV-1a-64 constants, taking one sample's 32 bits per step
/// rather than one byte (left channel, then right). Cheap, and any change of any bit shows; it
/// only needs to agree between the two workers, never with a standard FNV-1a.
pub fn digest(left: &[f32], right: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for s in left.iter().chain(right) {
        h ^= s.to_bits() as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl OutputRing {
    /// Plugin side: creates an output ring. It is reused by one worker (or spare) after another,
    /// so its seals are final.
    pub fn create(config: RingConfig) -> io::Result<OutputRing> {
        config.validate().map_err(io::Error::other)?;
        let region = Region::create("tandem-output", config.output_words())?;
        region.seal_seals()?;
        region
            .word(h::MAGIC)
            .store(layout::MAGIC, Ordering::Relaxed);
        let ring = OutputRing { region, config };
        ring.set_quarantine(None);
        Ok(ring)
    }

    /// Worker side: maps the handed fd read-write.
    pub fn open(fd: OwnedFd, config: RingConfig) -> Result<OutputRing, OpenError> {
        let region = Region::map_whole(fd, Access::ReadWrite).map_err(|source| OpenError::Map {
            region: "output",
            source,
        })?;
        if region.words() < config.output_words()
            || region.word(h::MAGIC).load(Ordering::Relaxed) != layout::MAGIC
        {
            return Err(OpenError::Header { region: "output" });
        }
        Ok(OutputRing { region, config })
    }

    /// The memfd, to hand to a worker.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.region.fd()
    }

    /// Locks the ring in memory (best effort; see [`crate::region::Region::lock`]).
    pub fn lock(&self) -> bool {
        self.region.lock()
    }

    /// Snapshot area size in bytes.
    pub fn snapshot_max(&self) -> usize {
        self.config.snapshot_max as usize
    }

    // ---- plugin side -------------------------------------------------------------------------

    /// Plugin side, before spawning or calling a worker that writes this ring (its previous
    /// writer is reaped): the new worker's epoch and the state it starts from, the snapshot taken after chunk
    /// `restore_chunk` (`None`: before chunk 0). Returns false if the snapshot does not fit.
    pub fn prepare_spawn(&self, epoch: u32, restore_chunk: Option<u64>, snapshot: &[u8]) -> bool {
        if snapshot.len() > self.snapshot_max() {
            return false;
        }
        let r = &self.region;
        r.word(h::SPAWN_EPOCH).store(epoch, Ordering::Relaxed);
        r.dword(h::RESTORE_CHUNK)
            .store(restore_chunk.unwrap_or(u64::MAX), Ordering::Relaxed);
        r.word(h::RESTORE_LEN)
            .store(snapshot.len() as u32, Ordering::Relaxed);
        r.word(h::EPOCH).store(0, Ordering::Relaxed);
        r.word(h::DEATH).store(0, Ordering::Relaxed);
        r.word(h::LEFT).store(0, Ordering::Relaxed);
        // A worker killed asleep on the input futex left its claim here; read as the
        // newcomer's, it would count as started (past exec and sandbox entry) while it still
        // burns its start-up CPU, which the hang check then takes for an endless loop.
        r.word(h::SLEEPING).store(0, Ordering::Relaxed);
        r.word(h::SNAPSHOT_SEQ).store(0, Ordering::Relaxed);
        write_bytes(r, self.config.snapshot_base(), snapshot);
        fence(Ordering::Release);
        true
    }

    /// Plugin side, before spawning into this slot (after `prepare_spawn`): the chunk the next
    /// worker renders without its events (`None`: every chunk as posted).
    pub fn set_quarantine(&self, chunk: Option<u64>) {
        self.region
            .dword(h::QUARANTINE_CHUNK)
            .store(chunk.unwrap_or(u64::MAX), Ordering::Release);
    }

    /// Plugin side: whether the worker of `epoch` has announced itself (`begin`), i.e. has
    /// read its first chunk. A claim of the worker's, used only to attribute a death.
    pub fn begun(&self, epoch: u32) -> bool {
        self.region.word(h::EPOCH).load(Ordering::Acquire) == epoch
    }

    /// Plugin side: the worker's progress, validated against `b`. A worker still starting up
    /// (epoch not yet written) reports its floor.
    pub fn progress(&self, b: &Bounds) -> Result<Progress, Rogue> {
        let r = &self.region;
        let epoch = r.word(h::EPOCH).load(Ordering::Acquire);
        if epoch == 0 {
            return Ok(Progress {
                frames_done: b.floor_frames,
                chunks_done: b.floor_chunks,
            });
        }
        if epoch != b.epoch {
            return Err(Rogue::WrongEpoch);
        }
        // The worker stores the frames, then the chunk count. A reader preempted between its two
        // loads could pair an old chunk count with frames several chunks later, and keep that
        // as the floor the next reading is judged against: so the pair is taken only if the
        // chunk count did not move while the frames were read (then the frames are at most one
        // chunk ahead: the slack below). A few tries, so a worker that keeps moving it cannot
        // hold us; the last pair is judged as it is.
        let (mut chunks_done, mut frames_done);
        let mut tries = 0;
        loop {
            chunks_done = r.dword(h::CHUNKS_DONE).load(Ordering::Acquire);
            frames_done = r.dword(h::FRAMES_DONE).load(Ordering::Acquire);
            tries += 1;
            if r.dword(h::CHUNKS_DONE).load(Ordering::Acquire) == chunks_done || tries == 4 {
                break;
            }
        }
        if frames_done > b.posted_frames || chunks_done > b.posted_chunks {
            return Err(Rogue::BeyondPosted);
        }
        if frames_done < b.floor_frames || chunks_done < b.floor_chunks {
            return Err(Rogue::WentBack);
        }
        // Every chunk has at least one frame, so frames advance at least as much as chunks. The
        // two counters are separate stores (frames first), so a reader may pair a chunk count
        // with the next chunk's frame count: one chunk of slack covers that tear.
        if frames_done - b.floor_frames + 1 < chunks_done - b.floor_chunks {
            return Err(Rogue::Inconsistent);
        }
        Ok(Progress {
            frames_done,
            chunks_done,
        })
    }

    /// Plugin side: copies frames `[start, start + out.len())` out of the ring. The caller has
    /// checked with [`OutputRing::progress`] that they are rendered and not yet overwritten.
    /// Non-finite audio makes the copy fail; finite audio is clipped to `±MAX_SAMPLE`.
    pub fn copy_frames(&self, start: u64, out: [&mut [f32]; 2]) -> Result<(), Rogue> {
        let cap = self.config.audio_capacity as usize;
        let mask = cap as u64 - 1;
        let mut finite = true;
        for (c, samples) in out.into_iter().enumerate() {
            let base = self.config.output_audio_base() + c * cap;
            for (k, s) in samples.iter_mut().enumerate() {
                let pos = ((start + k as u64) & mask) as usize;
                let v = f32::from_bits(self.region.word(base + pos).load(Ordering::Relaxed));
                finite &= v.is_finite();
                *s = v.clamp(-MAX_SAMPLE, MAX_SAMPLE);
            }
        }
        if finite {
            Ok(())
        } else {
            Err(Rogue::NonFinite)
        }
    }

    /// Plugin side: the digest the worker published for `chunk`, if its table still holds it.
    pub fn digest_of(&self, chunk: u64) -> Option<u64> {
        let r = &self.region;
        let base =
            self.config.digest_base() + 4 * (chunk % self.config.record_count as u64) as usize;
        let tag = r.dword(base).load(Ordering::Acquire);
        let digest = r.dword(base + 2).load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        let tag_again = r.dword(base).load(Ordering::Relaxed);
        (tag == chunk && tag_again == chunk).then_some(digest)
    }

    /// Plugin side: whether `audio`, the whole of `chunk` (of `frames` frames) as copied out of
    /// this ring, is what the ring's digest for it says. The digest and the voice ends (`ends`
    /// is scratch for them) are read from the ring, checked, and folded exactly as the worker
    /// folds them; a chunk the ring counts as done without them is [`Rogue::MissingDigest`],
    /// audio that differs is [`Rogue::ServedDiffers`]. Returns the digest checked, which a
    /// caller can hold against the twin's.
    pub fn check_chunk(
        &self,
        chunk: u64,
        frames: u32,
        audio: [&[f32]; 2],
        ends: &mut [VoiceEndRecord; MAX_VOICE_ENDS],
    ) -> Result<u64, Rogue> {
        let [l, r] = audio;
        let claimed = self.digest_of(chunk).ok_or(Rogue::MissingDigest)?;
        let n = self
            .voice_ends(chunk, frames, ends)?
            .ok_or(Rogue::MissingDigest)?;
        if voice_end::fold(digest(l, r), &ends[..n]) == claimed {
            Ok(claimed)
        } else {
            Err(Rogue::ServedDiffers)
        }
    }

    /// Plugin side: copies the voice ends of `chunk` (of `frames` frames, as the plugin posted
    /// it) into `out`, each record checked. `Ok(None)`: the table holds another chunk now.
    pub fn voice_ends(
        &self,
        chunk: u64,
        frames: u32,
        out: &mut [VoiceEndRecord; MAX_VOICE_ENDS],
    ) -> Result<Option<usize>, Rogue> {
        voice_end::read(
            &self.region,
            self.voice_end_table(chunk),
            chunk,
            frames,
            out,
        )
    }

    fn voice_end_table(&self, chunk: u64) -> usize {
        let record = (chunk % self.config.record_count as u64) as usize;
        self.config.voice_end_base() + record * voice_end::TABLE_WORDS
    }

    /// Plugin side: copies the latest complete snapshot into `buf`. `Ok(None)`: none yet, or
    /// one is being written (try again later). `Ok(Some((chunk, len)))`: `buf[..len]` is the
    /// state after `chunk` (the caller checks `chunk` against the worker's progress, and the
    /// synth checks the bytes themselves on restore).
    pub fn read_snapshot(&self, buf: &mut [u8]) -> Result<Option<(u64, usize)>, Rogue> {
        let r = &self.region;
        let seq = r.word(h::SNAPSHOT_SEQ).load(Ordering::Acquire);
        if seq == 0 || seq % 2 == 1 {
            return Ok(None);
        }
        let chunk = r.dword(h::SNAPSHOT_CHUNK).load(Ordering::Relaxed);
        let len = r.word(h::SNAPSHOT_LEN).load(Ordering::Relaxed) as usize;
        if len > self.snapshot_max() || len > buf.len() {
            return Err(Rogue::BadSnapshot);
        }
        read_bytes(r, self.config.snapshot_base(), &mut buf[..len]);
        fence(Ordering::Acquire);
        if r.word(h::SNAPSHOT_SEQ).load(Ordering::Relaxed) != seq {
            return Ok(None);
        }
        Ok(Some((chunk, len)))
    }

    /// Plugin side: whether the worker says it sleeps on the input futex (a hint: a lie only
    /// costs the liar a wake-up).
    pub fn sleeping(&self) -> bool {
        self.region.word(h::SLEEPING).load(Ordering::SeqCst) != 0
    }

    /// Plugin side: whether the standby of `epoch`, dismissed from this slot, says it has
    /// stopped writing the ring and waits to be called again. A claim: a standby that lies is
    /// called while still rendering its old chunks, which the checks of a newcomer catch.
    pub fn has_left(&self, epoch: u32) -> bool {
        self.region.word(h::LEFT).load(Ordering::Acquire) == epoch
    }

    /// Both sides: the death word (see [`crate::death`]); the worker arms it, the plugin
    /// watches it as a hint only.
    pub fn death_word(&self) -> &std::sync::atomic::AtomicU32 {
        self.region.word(h::DEATH)
    }

    // ---- worker side -------------------------------------------------------------------------

    /// Worker side: what the plugin wrote before spawning it. Returns the epoch it was spawned
    /// with and the chunk whose end state it starts from (`None`: before chunk 0); the snapshot
    /// of that state is copied into `buf`, resized to its length (empty: a fresh synth).
    pub fn spawn_info(&self, buf: &mut Vec<u8>) -> (u32, Option<u64>) {
        let r = &self.region;
        let epoch = r.word(h::SPAWN_EPOCH).load(Ordering::Acquire);
        let chunk = r.dword(h::RESTORE_CHUNK).load(Ordering::Relaxed);
        let len =
            (r.word(h::RESTORE_LEN).load(Ordering::Relaxed) as usize).min(self.snapshot_max());
        buf.resize(len, 0);
        read_bytes(r, self.config.snapshot_base(), buf);
        (epoch, (chunk != u64::MAX).then_some(chunk))
    }

    /// Worker side: the chunk to render without its events, as the plugin set it before the
    /// spawn (`u64::MAX`: none).
    pub fn quarantined_chunk(&self) -> u64 {
        self.region
            .dword(h::QUARANTINE_CHUNK)
            .load(Ordering::Acquire)
    }

    /// Worker side, a dismissed standby: says it no longer writes the ring (`has_left`).
    pub fn set_left(&self, epoch: u32) {
        self.region.word(h::LEFT).store(epoch, Ordering::Release);
    }

    /// Worker side: announces the worker's epoch and starting point.
    pub fn begin(&self, epoch: u32, frames_done: u64, chunks_done: u64) {
        let r = &self.region;
        r.dword(h::FRAMES_DONE)
            .store(frames_done, Ordering::Relaxed);
        r.dword(h::CHUNKS_DONE)
            .store(chunks_done, Ordering::Relaxed);
        r.word(h::EPOCH).store(epoch, Ordering::Release);
    }

    /// Worker side: writes rendered audio starting at absolute frame `start`.
    pub fn write_audio(&self, start: u64, channels: [&[f32]; 2]) {
        let cap = self.config.audio_capacity as usize;
        let mask = cap as u64 - 1;
        for (c, samples) in channels.into_iter().enumerate() {
            let base = self.config.output_audio_base() + c * cap;
            for (k, s) in samples.iter().enumerate() {
                let pos = ((start + k as u64) & mask) as usize;
                self.region
                    .word(base + pos)
                    .store(s.to_bits(), Ordering::Relaxed);
            }
        }
    }

    /// Worker side: writes the voice ends of chunk `chunk`; call before
    /// [`OutputRing::complete_chunk`].
    pub fn write_voice_ends(&self, chunk: u64, records: &[VoiceEndRecord]) {
        voice_end::write(&self.region, self.voice_end_table(chunk), chunk, records);
    }

    /// Worker side: publishes chunk `chunk` as done (its audio is written), with its digest.
    pub fn complete_chunk(&self, chunk: u64, frames_done: u64, digest: u64) {
        let r = &self.region;
        let base =
            self.config.digest_base() + 4 * (chunk % self.config.record_count as u64) as usize;
        r.dword(base).store(u64::MAX, Ordering::Relaxed);
        fence(Ordering::Release);
        r.dword(base + 2).store(digest, Ordering::Relaxed);
        r.dword(base).store(chunk, Ordering::Release);
        r.dword(h::FRAMES_DONE)
            .store(frames_done, Ordering::Release);
        r.dword(h::CHUNKS_DONE).store(chunk + 1, Ordering::Release);
    }

    /// Worker side: says whether it is about to sleep on the input futex.
    pub fn set_sleeping(&self, sleeping: bool) {
        self.region
            .word(h::SLEEPING)
            .store(sleeping as u32, Ordering::SeqCst);
    }

    /// Worker side: publishes a snapshot of the state after `chunk` (seqlock-protected).
    pub fn write_snapshot(&self, chunk: u64, bytes: &[u8]) {
        let r = &self.region;
        let len = bytes.len().min(self.snapshot_max());
        let seq = r.word(h::SNAPSHOT_SEQ).load(Ordering::Relaxed);
        let odd = seq | 1;
        r.word(h::SNAPSHOT_SEQ).store(odd, Ordering::Relaxed);
        fence(Ordering::Release);
        r.dword(h::SNAPSHOT_CHUNK).store(chunk, Ordering::Relaxed);
        r.word(h::SNAPSHOT_LEN).store(len as u32, Ordering::Relaxed);
        write_bytes(r, self.config.snapshot_base(), &bytes[..len]);
        r.word(h::SNAPSHOT_SEQ)
            .store(odd.wrapping_add(1).max(2), Ordering::Release);
    }

    /// Worker side, fault injection only: a malformed voice-end table for `chunk`, written in
    /// place of [`OutputRing::write_voice_ends`].
    pub fn write_bogus_voice_ends(&self, chunk: u64) {
        voice_end::write_overfull(&self.region, self.voice_end_table(chunk), chunk);
    }

    /// Worker side, fault injection only: counts chunk `chunk` as done (ending at
    /// `frames_done`) without publishing its digest, as a worker that stops proving what it
    /// rendered would.
    pub fn complete_chunk_without_digest(&self, chunk: u64, frames_done: u64) {
        let r = &self.region;
        r.dword(h::FRAMES_DONE)
            .store(frames_done, Ordering::Release);
        r.dword(h::CHUNKS_DONE).store(chunk + 1, Ordering::Release);
    }

    /// Worker side, fault injection only: claims progress that was never posted.
    pub fn write_bogus_progress(&self) {
        self.region
            .dword(h::FRAMES_DONE)
            .store(u64::MAX / 2, Ordering::Release);
    }
}

/// Writes bytes into whole words starting at word `base` (the tail word zero-padded).
fn write_bytes(r: &Region, base: usize, bytes: &[u8]) {
    // Whole words first, the tail apart: a slice copy of a length the compiler cannot see was
    // a `memcpy` call per word, most of a 15 kB snapshot's cost.
    let words = bytes.chunks_exact(4);
    let tail = words.remainder();
    let whole = words.len();
    for (i, word) in words.enumerate() {
        let w = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        r.word(base + i).store(w, Ordering::Relaxed);
    }
    if !tail.is_empty() {
        let mut w = [0u8; 4];
        w[..tail.len()].copy_from_slice(tail);
        r.word(base + whole)
            .store(u32::from_le_bytes(w), Ordering::Relaxed);
    }
}

/// Reads `buf.len()` bytes from whole words starting at word `base`.
fn read_bytes(r: &Region, base: usize, buf: &mut [u8]) {
    // As in `write_bytes`: whole words first, the tail apart.
    let mut words = buf.chunks_exact_mut(4);
    let whole = words.len();
    for (i, word) in words.by_ref().enumerate() {
        let w = r.word(base + i).load(Ordering::Relaxed).to_le_bytes();
        word.copy_from_slice(&w);
    }
    let tail = words.into_remainder();
    if !tail.is_empty() {
        let w = r.word(base + whole).load(Ordering::Relaxed).to_le_bytes();
        tail.copy_from_slice(&w[..tail.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spawn_does_not_inherit_the_dead_workers_sleep() {
        let ring = OutputRing::create(RingConfig {
            record_count: 16,
            audio_capacity: 1024,
            snapshot_max: 64,
            sample_rate: 48_000.0,
        })
        .expect("ring");
        ring.set_sleeping(true);
        assert!(ring.prepare_spawn(2, None, &[]));
        assert!(!ring.sleeping());
    }

    #[test]
    fn bytes_survive_the_words_they_are_stored_in_whatever_their_length() {
        let region = Region::create("tandem-test-bytes", 8).expect("region");
        for len in 0..=13 {
            let bytes: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37) ^ 0xa5).collect();
            write_bytes(&region, 2, &bytes);
            let mut back = vec![0u8; len];
            read_bytes(&region, 2, &mut back);
            assert_eq!(back, bytes, "{len} bytes");
        }
    }
}
