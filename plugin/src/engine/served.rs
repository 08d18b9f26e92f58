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

/// Whether a verified twin's digest has confirmed a chunk: the frames served on one worker's
/// word alone are counted (`Staging::take_unconfirmed`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Confirmed {
    Yes,
    No,
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
    /// Which of the twin's digests hold a chunk back.
    pub hold: Hold,
}

/// Which of the verified twin's digests hold a chunk back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// None (past the deadline): they only tell whether the chunk was confirmed.
    Never,
    /// One the twin has published that differs.
    IfDiffers,
    /// Any but the same one: a digest not published yet too (the caller can wait for it).
    UnlessAgreed,
}

impl Twin<'_> {
    /// Whether `chunk`, whose digest is `digest`, may be served, and whether the twin's own
    /// digest confirmed it.
    fn judge(&self, chunk: u64, digest: u64) -> Verdict {
        let theirs = (chunk >= self.from_chunk)
            .then(|| self.output.digest_of(chunk))
            .flatten();
        match (theirs, self.hold) {
            (Some(d), _) if d == digest => Verdict::Serve(Confirmed::Yes),
            (Some(_), Hold::IfDiffers | Hold::UnlessAgreed) => Verdict::Contradicted,
            (None, Hold::UnlessAgreed) if chunk >= self.from_chunk => Verdict::Wait,
            _ => Verdict::Serve(Confirmed::No),
        }
    }
}

/// What the twin's digest says of a chunk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Serve it; confirmed or on its ring's word alone.
    Serve(Confirmed),
    /// Not yet: the twin's digest must exist first.
    Wait,
    /// Not while the twin's published digest differs: one of the two is wrong.
    Contradicted,
}

/// The audio thread's checked copy from the rings.
pub(crate) struct Staging {
    /// One chunk's audio, left and right, `MAX_CHUNK_FRAMES` each.
    audio: [Box<[f32]>; 2],
    staged: Option<(Staged, Confirmed)>,
    /// Frames served whose chunk no verified twin's digest confirmed, since the last
    /// `take_unconfirmed`.
    unconfirmed: u32,
    /// A chunk was held back because the twin's published digest differs (`take_contradicted`).
    contradicted: bool,
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
            unconfirmed: 0,
            contradicted: false,
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
    /// long latency outruns its records) cannot be checked, and are copied unchecked.
    /// Frames served without the twin's digest confirming their chunk are counted
    /// (`take_unconfirmed`).
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
        let judge =
            |chunk, digest| twin.map_or(Verdict::Serve(Confirmed::No), |t| t.judge(chunk, digest));
        let mut unconfirmed = 0;
        let [l, r] = out;
        let end = start + l.len().min(r.len()) as u64;
        let mut at = start;
        while at < end {
            let o = (at - start) as usize;
            let Some((chunk, chunk_start, frames)) = self.chunk_at(input, at) else {
                let copied =
                    shared.copy_validated(slot, validated, at, [&mut l[o..], &mut r[o..]])?;
                if copied {
                    self.unconfirmed += unconfirmed + (end - at) as u32;
                }
                return Ok(copied);
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
                match judge(chunk, digest) {
                    Verdict::Serve(Confirmed::Yes) => {}
                    Verdict::Serve(Confirmed::No) => unconfirmed += n as u32,
                    held => {
                        self.contradicted |= held == Verdict::Contradicted;
                        return Ok(false);
                    }
                }
            } else {
                if self.staged.is_none_or(|(s, _)| s != this) {
                    self.staged = None;
                    let [sl, sr] = &mut self.audio;
                    let whole = [&mut sl[..frames as usize], &mut sr[..frames as usize]];
                    if !shared.copy_validated(slot, validated, chunk_start, whole)? {
                        return Ok(false);
                    }
                    let [sl, sr] = &self.audio;
                    let staged = [&sl[..frames as usize], &sr[..frames as usize]];
                    let digest = ring.check_chunk(chunk, frames, staged, &mut self.ends)?;
                    let confirmed = match judge(chunk, digest) {
                        Verdict::Serve(confirmed) => confirmed,
                        held => {
                            self.contradicted |= held == Verdict::Contradicted;
                            return Ok(false);
                        }
                    };
                    self.staged = Some((this, confirmed));
                }
                if shared.slots[slot].generation.load() != validated {
                    return Ok(false);
                }
                if self.staged.is_some_and(|(_, c)| c == Confirmed::No) {
                    unconfirmed += n as u32;
                }
                let from = (at - chunk_start) as usize;
                dl.copy_from_slice(&self.audio[0][from..from + n]);
                dr.copy_from_slice(&self.audio[1][from..from + n]);
            }
            at += n as u64;
        }
        self.unconfirmed += unconfirmed;
        Ok(true)
    }

    /// Whether a chunk was held back since the last call because the twin's published digest
    /// differs: the supervisor's comparison will evict one of the two, and the sooner it looks
    /// the shorter the wait.
    pub fn take_contradicted(&mut self) -> bool {
        std::mem::take(&mut self.contradicted)
    }

    /// The frames served since the last call whose chunk no verified twin's digest confirmed:
    /// served on one worker's word (Eco, a rebuild, a twin late past the deadline).
    pub fn take_unconfirmed(&mut self) -> u32 {
        std::mem::take(&mut self.unconfirmed)
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
