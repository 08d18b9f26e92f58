//! Voice ends: which notes stopped sounding in each chunk, from the worker back to the plugin.
//!
//! The synth decides when a voice ends (release over, steal or choke fade over, reset), and the
//! host must hear of it at that sample (CLAP's note-end event) to free what it keeps per note.
//! Each output ring has one voice-end table per chunk record, next to the digest table: a tag (the
//! chunk index, written last), a count, and up to [`MAX_VOICE_ENDS`] two-word records. The
//! plugin reads the table of the ring that served a chunk's frames, so what it emits follows
//! the audio through a failover: a record is neither lost nor sent twice.
//!
//! As every worker-written value, a table is read once, word by word, and judged before use:
//! the count within capacity, offsets within the chunk and in order, keys and channels in their
//! MIDI ranges. The records also enter the chunk's digest ([`fold`]), so the twins' digests
//! prove that both reported the same ends.

use crate::output::Rogue;
use crate::region::Region;
use std::sync::atomic::{fence, Ordering};

/// The most voice ends one chunk can carry (every voice ending, plus every note started
/// in the chunk ending too).
pub const MAX_VOICE_ENDS: usize = 128;

/// Words per chunk table: tag (u64), count, one spare word, then two words per record.
pub const TABLE_WORDS: usize = 4 + 2 * MAX_VOICE_ENDS;

/// One note that stopped sounding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VoiceEndRecord {
    /// Frame offset within its chunk.
    pub offset: u32,
    /// The host's note id, or -1.
    pub note_id: i32,
    /// MIDI key 0..=127.
    pub key: u8,
    /// MIDI channel 0..=15.
    pub channel: u8,
}

impl VoiceEndRecord {
    /// `[offset | key << 16 | channel << 24, note id]`.
    fn to_words(self) -> [u32; 2] {
        [
            self.offset | (self.key as u32) << 16 | (self.channel as u32) << 24,
            self.note_id as u32,
        ]
    }

    /// The record, if its fields are in range for a chunk of `frames` frames.
    fn from_words([head, id]: [u32; 2], frames: u32) -> Option<VoiceEndRecord> {
        let record = VoiceEndRecord {
            offset: head & 0xffff,
            key: ((head >> 16) & 0xff) as u8,
            channel: (head >> 24) as u8,
            note_id: id as i32,
        };
        let valid = record.offset < frames
            && record.key <= 127
            && record.channel <= 15
            && record.note_id >= -1;
        valid.then_some(record)
    }
}

/// Mixes the records into a chunk's audio digest (the FNV-1a-64 multiplier, one 32-bit word per
/// step, as [`crate::digest`]), so twins that report different ends have different digests. No
/// records leave the digest unchanged.
pub fn fold(digest: u64, records: &[VoiceEndRecord]) -> u64 {
    let mut h = digest;
    for r in records {
        for w in r.to_words() {
            h ^= w as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Worker side: writes chunk `chunk`'s records into the table at word `base`. Call before the
/// chunk is marked complete; records beyond the capacity are dropped.
pub(crate) fn write(r: &Region, base: usize, chunk: u64, records: &[VoiceEndRecord]) {
    let records = &records[..records.len().min(MAX_VOICE_ENDS)];
    r.dword(base).store(u64::MAX, Ordering::Relaxed);
    fence(Ordering::Release);
    r.word(base + 2)
        .store(records.len() as u32, Ordering::Relaxed);
    for (i, rec) in records.iter().enumerate() {
        for (j, w) in rec.to_words().into_iter().enumerate() {
            r.word(base + 4 + 2 * i + j).store(w, Ordering::Relaxed);
        }
    }
    r.dword(base).store(chunk, Ordering::Release);
}

/// Worker side, fault injection only: a table for `chunk` that claims more records than it
/// can hold.
pub(crate) fn write_overfull(r: &Region, base: usize, chunk: u64) {
    r.dword(base).store(u64::MAX, Ordering::Relaxed);
    fence(Ordering::Release);
    r.word(base + 2)
        .store(MAX_VOICE_ENDS as u32 + 1, Ordering::Relaxed);
    r.dword(base).store(chunk, Ordering::Release);
}

/// Plugin side: copies chunk `chunk`'s records (a chunk of `frames` frames) from the table at
/// word `base` into `out`. `Ok(None)`: the table holds another chunk (overwritten); `Ok(Some(n))`:
/// `out[..n]` are the records, each checked, in order of offset. A count beyond the capacity or
/// a record out of range or order is [`Rogue::BadVoiceEnds`].
pub(crate) fn read(
    r: &Region,
    base: usize,
    chunk: u64,
    frames: u32,
    out: &mut [VoiceEndRecord; MAX_VOICE_ENDS],
) -> Result<Option<usize>, Rogue> {
    let tag = r.dword(base).load(Ordering::Acquire);
    if tag != chunk {
        return Ok(None);
    }
    let count = r.word(base + 2).load(Ordering::Relaxed) as usize;
    if count > MAX_VOICE_ENDS {
        return Err(Rogue::BadVoiceEnds);
    }
    let mut last = 0;
    for (i, dest) in out[..count].iter_mut().enumerate() {
        let words = [
            r.word(base + 4 + 2 * i).load(Ordering::Relaxed),
            r.word(base + 5 + 2 * i).load(Ordering::Relaxed),
        ];
        let record = VoiceEndRecord::from_words(words, frames).ok_or(Rogue::BadVoiceEnds)?;
        if record.offset < last {
            return Err(Rogue::BadVoiceEnds);
        }
        last = record.offset;
        *dest = record;
    }
    fence(Ordering::Acquire);
    if r.dword(base).load(Ordering::Relaxed) != chunk {
        return Ok(None);
    }
    Ok(Some(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_range_checks() {
        let r = VoiceEndRecord {
            offset: 1023,
            note_id: i32::MAX,
            key: 127,
            channel: 15,
        };
        assert_eq!(VoiceEndRecord::from_words(r.to_words(), 1024), Some(r));
        assert_eq!(VoiceEndRecord::from_words(r.to_words(), 1023), None);
        for bad in [[5 | 128 << 16, 0], [5 | 16 << 24, 0], [5, (-2i32) as u32]] {
            assert_eq!(VoiceEndRecord::from_words(bad, 64), None, "{bad:?}");
        }
    }

    #[test]
    fn fold_sees_every_record_and_nothing_without_records() {
        let a = VoiceEndRecord {
            offset: 3,
            note_id: 1,
            key: 60,
            channel: 0,
        };
        let b = VoiceEndRecord { note_id: 2, ..a };
        assert_eq!(fold(7, &[]), 7);
        assert_ne!(fold(7, &[a]), fold(7, &[b]));
        assert_ne!(fold(7, &[a]), fold(7, &[a, a]));
    }
}
