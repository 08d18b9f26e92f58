//! Splitting host blocks into chunks: the one place that decides chunk boundaries, shared by the
//! engine and the in-process reference so both see exactly the same chunk stream.

use dsp::{Event, N_PARAMS};
use shm::chunk::{Chunk, FLAG_HAS_INPUT, FLAG_RESET, MAX_CHUNK_EVENTS, MAX_CHUNK_FRAMES};

/// Numbers the chunks and frames of one activation and cuts blocks into chunks.
#[derive(Default)]
pub struct Chunker {
    chunk: Chunk,
    next_index: u64,
    next_frame: u64,
    reset_pending: bool,
}

impl Chunker {
    /// The absolute frame the next block starts at.
    pub fn next_frame(&self) -> u64 {
        self.next_frame
    }

    /// The index the next chunk will get.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Marks the next chunk as a reset.
    pub fn request_reset(&mut self) {
        self.reset_pending = true;
    }

    /// Cuts a block of `frames` frames into chunks of at most `MAX_CHUNK_FRAMES` frames and
    /// `MAX_CHUNK_EVENTS` events, and hands each to `emit` with its slice of the input audio.
    /// `decorate` fills in the chunk's control fields (snapshot requests, faults) before emit.
    /// Events are expected sorted by offset; one out of order is moved to its chunk's start,
    /// and one at or past `frames` is dropped.
    pub fn split(
        &mut self,
        frames: usize,
        events: &[Event],
        params: &[f32; N_PARAMS],
        input: Option<[&[f32]; 2]>,
        mut decorate: impl FnMut(&mut Chunk),
        mut emit: impl FnMut(&Chunk, Option<[&[f32]; 2]>),
    ) {
        let mut start = 0usize;
        let mut ev = 0usize;
        while start < frames {
            let mut end = (start + MAX_CHUNK_FRAMES).min(frames);
            let c = &mut self.chunk;
            c.n_events = 0;
            while ev < events.len() {
                let offset = events[ev].offset as usize;
                if offset >= frames {
                    ev += 1;
                    continue;
                }
                if offset >= end {
                    break;
                }
                if c.n_events as usize == MAX_CHUNK_EVENTS {
                    // Full: end this chunk just before the event that does not fit (never
                    // before the chunk's own start, so every chunk has at least one frame).
                    end = end.min(offset.max(start + 1));
                    break;
                }
                let mut e = events[ev];
                e.offset = offset.saturating_sub(start) as u32;
                c.events[c.n_events as usize] = e.to_raw();
                c.n_events += 1;
                ev += 1;
            }
            c.index = self.next_index;
            c.start_frame = self.next_frame + start as u64;
            c.frames = (end - start) as u32;
            c.flags = 0;
            if std::mem::take(&mut self.reset_pending) {
                c.flags |= FLAG_RESET;
            }
            if input.is_some() {
                c.flags |= FLAG_HAS_INPUT;
            }
            c.params[..N_PARAMS].copy_from_slice(params);
            c.snapshot_slots = 0;
            c.fault = Default::default();
            decorate(c);
            let slices = input.map(|[l, r]| [&l[start..end], &r[start..end]]);
            emit(&self.chunk, slices);
            self.next_index += 1;
            start = end;
        }
        self.next_frame += frames as u64;
    }
}
