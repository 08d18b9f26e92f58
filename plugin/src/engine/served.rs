//! Only audio that matches its worker's digest is served.
//!
//! A worker's digest is its own claim about what it wrote, and the twins' digests agreeing
//! proves only that claim: a worker can publish an honest digest and then change the finished
//! frames before the audio thread copies them. So the audio thread checks what it copies, on
//! the copy itself: every chunk it serves frames of is copied out of the ring whole, digested
//! there (`OutputRing::check_chunk`: `shm::digest`, with the chunk's voice ends folded in,
//! exactly as the worker does) and compared with the digest that ring published for it. Only
//! then are its frames served, from that copy, so a later write into the ring changes nothing
//! the host hears. A chunk that differs is `Rogue::ServedDiffers`: the ring is ignored at once
//! and the caller tries the twin.
//!
//! A worker that renders wrong bits and digests them honestly passes that check: only its
//! twin's digest can tell. So the caller names the verified twin ([`Twin`]) and a chunk whose
//! twin's digest differs is not served (the supervisor's digest comparison evicts whichever of
//! the two is wrong, and the caller serves the other, or past its deadline what a ring has).
//! Where the call can wait for it (offline; at latency 0 until the deadline) the twin's digest
//! must also exist; at a latency of a block or more it almost always does already.
//!
//! A chunk that lies wholly inside the frames asked for is copied straight into the host's
//! buffer and checked there; one cut by the block's edge (a latency that is not a whole number
//! of chunks) goes whole into a private staging buffer, which serves its frames in this call
//! and the next. Audio thread only: the buffers are allocated at activation; no lock, no
//! system call.

use super::shared::{Generation, Shared};
use shm::chunk::MAX_CHUNK_FRAMES;
use shm::{InputRing, OutputRing, Rogue, VoiceEndRecord, MAX_VOICE_ENDS};

/// The chunk the staging buffer holds, checked, and whose ring it came from.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Staged {
    chunk: u64,
    slot: usize,
    epoch: u32,
}

/// The ring served from: its slot, and the generation (which names the ring) under which the
/// caller found it holds the frames.
#[derive(Clone, Copy)]
pub(crate) struct Source {
    pub slot: usize,
    pub validated: Generation,
}

/// The verified twin of the ring served from, whose digests a served chunk must match.
#[derive(Clone, Copy)]
pub(crate) struct Twin<'a> {
    /// The twin's output ring (read as hostile memory, like any).
    pub output: &'a OutputRing,
    /// The twin's first chunk: it has no digest for earlier ones.
    pub from_chunk: u64,
    /// Whether a digest the twin has not published yet holds the chunk back too (the caller
    /// can wait for it), or only one that differs.
    pub insist: bool,
}

impl Twin<'_> {
    /// Whether the twin's digest for `chunk` does not contradict `digest`: it is the same, or
    /// (unless insisting) not published yet, or the twin never renders `chunk`.
    fn agrees(&self, chunk: u64, digest: u64) -> bool {
        chunk < self.from_chunk
            || self
                .output
                .digest_of(chunk)
                .map_or(!self.insist, |d| d == digest)
    }
}

/// The audio thread's checked copy from the rings.
pub(crate) struct Staging {
    /// One chunk's audio, left and right, `MAX_CHUNK_FRAMES` each.
    audio: [Box<[f32]>; 2],
    staged: Option<Staged>,
    /// Scratch for a chunk's voice ends, which its digest covers.
    ends: [VoiceEndRecord; MAX_VOICE_ENDS],
    /// The chunk holding the last frame served: deliveries only move forward, so the chunk of
    /// the next one is found from here.
    cursor: u64,
}

impl Staging {
    /// Created at activation (the only allocation).
    pub fn new() -> Staging {
        let buffer = || vec![0.0; MAX_CHUNK_FRAMES].into_boxed_slice();
        Staging {
            audio: [buffer(), buffer()],
            staged: None,
            ends: [VoiceEndRecord::default(); MAX_VOICE_ENDS],
            cursor: 0,
        }
    }

    /// Fills `out` with frames from `start` out of `source`: the ring of `slot`'s worker, under
    /// the generation `validated` with which the caller checked that the ring holds them (see
    /// `Shared::copy_validated`), each chunk checked against the ring's digest and, with a
    /// `twin`, against the twin's. `Ok(false)`: the slot changed meanwhile, or the twin has not
    /// published the same digest (yet): serve nothing from it now. `Err`: the ring is rogue
    /// (its audio is not finite, or not what its digest says).
    ///
    /// Frames whose chunk the input ring no longer holds (only a flood of tiny chunks under a
    /// long latency outruns its 1024 records) cannot be checked, and are copied unchecked.
    pub fn copy(
        &mut self,
        shared: &Shared,
        source: Source,
        twin: Option<Twin>,
        start: u64,
        out: [&mut [f32]; 2],
    ) -> Result<bool, Rogue> {
        let Source { slot, validated } = source;
        let (input, ring) = (&shared.input, shared.ring(validated));
        let agreed = |chunk, digest| twin.is_none_or(|t| t.agrees(chunk, digest));
        let [l, r] = out;
        let end = start + l.len().min(r.len()) as u64;
        let mut at = start;
        while at < end {
            let o = (at - start) as usize;
            let Some((chunk, chunk_start, frames)) = self.chunk_at(input, at) else {
                return shared.copy_validated(slot, validated, at, [&mut l[o..], &mut r[o..]]);
            };
            let chunk_end = chunk_start + frames as u64;
            let n = (chunk_end.min(end) - at) as usize;
            let (dl, dr) = (&mut l[o..o + n], &mut r[o..o + n]);
            let this = Staged {
                chunk,
                slot,
                epoch: validated.epoch,
            };
            if chunk_start >= start && chunk_end <= end {
                // Whole inside the block: checked where the host gets it.
                if !shared.copy_validated(slot, validated, at, [&mut *dl, &mut *dr])? {
                    return Ok(false);
                }
                let digest = ring.check_chunk(chunk, frames, [&*dl, &*dr], &mut self.ends)?;
                if !agreed(chunk, digest) {
                    return Ok(false);
                }
            } else {
                if self.staged != Some(this) {
                    self.staged = None;
                    let [sl, sr] = &mut self.audio;
                    let whole = [&mut sl[..frames as usize], &mut sr[..frames as usize]];
                    if !shared.copy_validated(slot, validated, chunk_start, whole)? {
                        return Ok(false);
                    }
                    let [sl, sr] = &self.audio;
                    let staged = [&sl[..frames as usize], &sr[..frames as usize]];
                    let digest = ring.check_chunk(chunk, frames, staged, &mut self.ends)?;
                    if !agreed(chunk, digest) {
                        return Ok(false);
                    }
                    self.staged = Some(this);
                }
                if shared.slots[slot].generation.load() != validated {
                    return Ok(false);
                }
                let from = (at - chunk_start) as usize;
                dl.copy_from_slice(&self.audio[0][from..from + n]);
                dr.copy_from_slice(&self.audio[1][from..from + n]);
            }
            at += n as u64;
        }
        Ok(true)
    }

    /// The chunk holding `frame` and its span, if the input ring still holds it.
    fn chunk_at(&mut self, input: &InputRing, frame: u64) -> Option<(u64, u64, u32)> {
        let mut went_back = false;
        loop {
            let Some((start, frames)) = input.chunk_span(self.cursor) else {
                if self.cursor < input.published() && !went_back {
                    // Overwritten by newer chunks: on to the next.
                    self.cursor += 1;
                    continue;
                }
                return None;
            };
            if frame < start {
                // Not after a forward-only delivery, but then look back rather than guess.
                self.cursor = self.cursor.checked_sub(1)?;
                went_back = true;
            } else if frame >= start + frames as u64 {
                self.cursor += 1;
            } else {
                return Some((self.cursor, start, frames));
            }
        }
    }
}
