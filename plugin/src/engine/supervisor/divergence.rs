//! The third opinion on a finite divergence.
//!
//! Two workers whose digests differ for a chunk, both with finite audio, cannot tell us which
//! of them is right: being verified or serving says nothing about this chunk. So the
//! supervisor renders the chunks itself, in process, with the workers' own code
//! (`render::ChunkRenderer`): from the last checkpoint (a state both agreed on up to its chunk,
//! see `checkpoint.rs`) through the input ring to the chunk in question, computing each digest
//! as a worker does. The worker whose digest differs from the replay's is the one evicted. If
//! the replay cannot be made (the input ring no longer holds the chunks, the checkpoint does
//! not restore) or agrees with neither, there is no third opinion and the caller falls back on
//! trusting the verified or the serving worker.

use super::Supervisor;
use render::ChunkRenderer;
use shm::chunk::{Chunk, MAX_CHUNK_FRAMES};

/// The supervisor's in-process renderer and its chunk scratch.
pub(super) struct Referee {
    renderer: ChunkRenderer,
    chunk: Chunk,
}

impl Referee {
    /// A referee at `sample_rate`.
    pub fn new(sample_rate: f32) -> Result<Referee, dsp::ConfigError> {
        Ok(Referee {
            renderer: ChunkRenderer::new(sample_rate)?,
            chunk: Chunk::default(),
        })
    }
}

impl Supervisor {
    /// Which slot's digest for `chunk` (`digests`, slot 0 then 1) disagrees with the
    /// supervisor's own replay from the last checkpoint; `None` when there is no such opinion.
    pub(super) fn third_opinion(&mut self, chunk: u64, digests: [u64; 2]) -> Option<usize> {
        let first = self.checkpoint.chunk.map_or(0, |c| c + 1);
        if first > chunk {
            return None;
        }
        let referee = &mut self.referee;
        let renderer = &mut referee.renderer;
        renderer.synth.restore(&self.checkpoint.bytes).ok()?;
        let input = &self.shared.input;
        let mut digest = 0;
        for index in first..=chunk {
            let [il, ir] = &mut renderer.input;
            input
                .read(index, &mut referee.chunk, [&mut il[..], &mut ir[..]])
                .ok()?;
            if referee.chunk.index != index {
                return None;
            }
            if self.quarantine.chunk == Some(index) {
                // As every worker spawned since renders it.
                referee.chunk.n_events = 0;
            }
            renderer.render(&referee.chunk);
            let frames = (referee.chunk.frames as usize).min(MAX_CHUNK_FRAMES);
            let [l, r] = renderer.rendered(frames);
            digest = shm::voice_end::fold(shm::digest(l, r), renderer.voice_ends());
        }
        match digests.map(|d| d == digest) {
            [true, false] => Some(1),
            [false, true] => Some(0),
            _ => None,
        }
    }
}
