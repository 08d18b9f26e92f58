//! Voice ends on their way to the host: read from the ring that served the frames they belong
//! to, delivered with the same latency `L` as the audio.
//!
//! Audio thread only. A voice that ended at absolute frame `t` is reported in the `process()`
//! call that delivers frame `t`, at `t`'s position in that block. The cursor walks the chunk
//! stream in order (the input ring says, trustworthily, where each chunk starts), and each
//! record is taken exactly once, from whichever ring served its frame: a failover between two
//! blocks, or inside one, can neither drop nor repeat one. Records of frames the fallback
//! filled (a realtime xrun) are dropped with the audio they belonged to.

use shm::{InputRing, OutputRing, Rogue, VoiceEndRecord, MAX_VOICE_ENDS};

/// A voice end in the block a `process()` call delivers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockVoiceEnd {
    /// Frame offset in the block.
    pub timing: u32,
    /// The host's note id, or -1.
    pub note_id: i32,
    /// MIDI key.
    pub key: u8,
    /// MIDI channel.
    pub channel: u8,
}

impl BlockVoiceEnd {
    /// The end `record` describes, at offset `timing` of the block.
    pub(crate) fn at(timing: u32, record: &VoiceEndRecord) -> BlockVoiceEnd {
        BlockVoiceEnd {
            timing,
            note_id: record.note_id,
            key: record.key,
            channel: record.channel,
        }
    }
}

/// The most voice ends one `process()` call reports; more are dropped (never allocated for).
pub const MAX_BLOCK_VOICE_ENDS: usize = 1024;

/// Where the next voice end to report is, and the ends of the current block.
pub(crate) struct VoiceEnds {
    /// The chunk whose records come next, and how many of them were already taken.
    chunk: u64,
    taken: usize,
    /// Scratch copy of one chunk's records.
    table: [VoiceEndRecord; MAX_VOICE_ENDS],
    /// This block's ends: `block[..len]`.
    block: Box<[BlockVoiceEnd; MAX_BLOCK_VOICE_ENDS]>,
    len: usize,
}

impl VoiceEnds {
    pub(crate) fn new() -> VoiceEnds {
        VoiceEnds {
            chunk: 0,
            taken: 0,
            table: [VoiceEndRecord::default(); MAX_VOICE_ENDS],
            block: Box::new([BlockVoiceEnd::default(); MAX_BLOCK_VOICE_ENDS]),
            len: 0,
        }
    }

    /// Starts a new block.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// The ends collected since [`VoiceEnds::clear`].
    pub(crate) fn block(&self) -> &[BlockVoiceEnd] {
        &self.block[..self.len]
    }

    /// Frames `[start, start + len)` were served from `ring` and sit at offset `at` of the
    /// block: reports the ends of those frames from that ring. Ends of earlier frames not yet
    /// reported belong to frames the fallback filled, and are skipped. Err if the ring's table
    /// for one of the chunks is malformed (the caller evicts the ring; that chunk's ends are
    /// lost).
    pub(crate) fn served(
        &mut self,
        input: &InputRing,
        ring: &OutputRing,
        start: u64,
        len: usize,
        at: usize,
    ) -> Result<(), Rogue> {
        let end = start + len as u64;
        loop {
            let Some((chunk_start, frames)) = input.chunk_span(self.chunk) else {
                if self.chunk < input.published() {
                    // Overwritten by newer chunks before anybody delivered it: its ends are
                    // gone (only a flood of tiny chunks can do that).
                    self.next_chunk();
                    continue;
                }
                break;
            };
            if chunk_start >= end {
                break;
            }
            let chunk_end = chunk_start + frames as u64;
            if chunk_end > start {
                let n = match ring.voice_ends(self.chunk, frames, &mut self.table) {
                    Ok(Some(n)) => n,
                    // Overwritten: only a ring lapped by a flood of tiny chunks; nothing to read.
                    Ok(None) => 0,
                    Err(rogue) => {
                        self.next_chunk();
                        return Err(rogue);
                    }
                };
                while let Some(record) = self.table[..n].get(self.taken) {
                    let frame = chunk_start + record.offset as u64;
                    if frame >= end {
                        break;
                    }
                    if frame >= start {
                        let timing = (at as u64 + frame - start) as u32;
                        self.push(BlockVoiceEnd::at(timing, record));
                    }
                    self.taken += 1;
                }
            }
            if chunk_end > end {
                break;
            }
            self.next_chunk();
        }
        Ok(())
    }

    fn next_chunk(&mut self) {
        self.chunk += 1;
        self.taken = 0;
    }

    fn push(&mut self, end: BlockVoiceEnd) {
        if let Some(dest) = self.block.get_mut(self.len) {
            *dest = end;
            self.len += 1;
        }
    }
}
