//! The in-process reference: the same chunk stream rendered by the same code, with no processes.
//!
//! Tests, benchmarks and the demo compare the engine's output with this frame for frame, and
//! its voice ends with the engine's; it is also the "no isolation" mode of the overhead
//! benchmark.

use super::{BlockVoiceEnd, Chunker, EngineError, MAX_BLOCK_VOICE_ENDS, OUTPUT_LIMIT};
use dsp::{Event, N_PARAMS};
use render::ChunkRenderer;
use shm::VoiceEndRecord;

/// Renders like [`super::Engine`] (chunking, latency, silence before frame 0) but in-process.
pub struct ReferenceEngine {
    chunker: Chunker,
    renderer: ChunkRenderer,
    latency: u64,
    /// Rendered audio not yet delivered, as a ring indexed by absolute frame.
    history: [Vec<f32>; 2],
    /// Voice ends rendered but not delivered yet, by absolute frame, in order (bounded by its
    /// capacity, so pushing never allocates).
    pending: Vec<(u64, VoiceEndRecord)>,
    /// The voice ends of the frames the last `process` delivered.
    block: Vec<BlockVoiceEnd>,
    /// As the engine's: frames before it are silence (the frame of the last reset).
    silent_before: u64,
}

impl ReferenceEngine {
    /// A reference at `sample_rate` with latency `latency` frames, for blocks up to `max_block`.
    pub fn new(sample_rate: f32, max_block: usize, latency: u32) -> Result<Self, EngineError> {
        let renderer = ChunkRenderer::new(sample_rate).map_err(EngineError::Synth)?;
        let capacity = (max_block + latency as usize + 1).next_power_of_two();
        Ok(ReferenceEngine {
            chunker: Chunker::default(),
            renderer,
            latency: latency as u64,
            history: [vec![0.0; capacity], vec![0.0; capacity]],
            pending: Vec::with_capacity(2 * MAX_BLOCK_VOICE_ENDS),
            block: Vec::with_capacity(MAX_BLOCK_VOICE_ENDS),
            silent_before: 0,
        })
    }

    /// Resets the DSP at the next chunk, like [`super::Engine::reset`].
    pub fn reset(&mut self) {
        self.silent_before = self.chunker.next_frame();
        self.chunker.request_reset();
    }

    /// Like [`super::Engine::voice_ends`]: the notes whose voices ended in the frames the last
    /// `process` delivered, at their offsets in that block.
    pub fn voice_ends(&self) -> &[BlockVoiceEnd] {
        &self.block
    }

    /// Same contract as [`super::Engine::process`].
    pub fn process(
        &mut self,
        events: &[Event],
        params: &[f32; N_PARAMS],
        input: Option<[&[f32]; 2]>,
        out: [&mut [f32]; 2],
    ) {
        let [out_l, out_r] = out;
        let n = out_l.len().min(out_r.len());
        let block_start = self.chunker.next_frame();
        let mask = self.history[0].len() as u64 - 1;
        let (renderer, history, pending) =
            (&mut self.renderer, &mut self.history, &mut self.pending);
        self.chunker.split(
            n,
            events,
            params,
            input,
            |_| {},
            |chunk, audio| {
                let frames = chunk.frames as usize;
                if let Some(channels) = audio {
                    for (dst, src) in renderer.input.iter_mut().zip(channels) {
                        dst[..frames].copy_from_slice(src);
                    }
                }
                renderer.render(chunk);
                for end in renderer.voice_ends() {
                    if pending.len() < pending.capacity() {
                        pending.push((chunk.start_frame + end.offset as u64, *end));
                    }
                }
                for (h, rendered) in history.iter_mut().zip(renderer.rendered(frames)) {
                    for (k, s) in rendered.iter().enumerate() {
                        h[((chunk.start_frame + k as u64) & mask) as usize] = *s;
                    }
                }
            },
        );
        for (k, (l, r)) in out_l.iter_mut().zip(out_r.iter_mut()).enumerate() {
            let frame = (block_start + k as u64)
                .checked_sub(self.latency)
                .filter(|&f| f >= self.silent_before);
            (*l, *r) = match frame {
                Some(f) => (
                    self.history[0][(f & mask) as usize].clamp(-OUTPUT_LIMIT, OUTPUT_LIMIT),
                    self.history[1][(f & mask) as usize].clamp(-OUTPUT_LIMIT, OUTPUT_LIMIT),
                ),
                None => (0.0, 0.0),
            };
        }
        // Frames before `delivered_end` have been delivered now, each at offset
        // `frame + latency - block_start` of this block.
        let delivered_end = (block_start + n as u64).saturating_sub(self.latency);
        let due = self
            .pending
            .iter()
            .take_while(|(frame, _)| *frame < delivered_end)
            .count();
        self.block.clear();
        for (frame, end) in self.pending.drain(..due) {
            if frame >= self.silent_before && self.block.len() < MAX_BLOCK_VOICE_ENDS {
                let timing = (frame + self.latency - block_start) as u32;
                self.block.push(BlockVoiceEnd::at(timing, &end));
            }
        }
    }
}
