//! The in-process reference: the same chunk stream rendered by the same code, with no processes.
//!
//! Tests, benchmarks and the demo compare the engine's output with this frame for frame; it is
//! also the "no isolation" mode of the overhead benchmark.

use super::{Chunker, EngineError};
use dsp::{Event, N_PARAMS};
use render::ChunkRenderer;

/// Renders like [`super::Engine`] (chunking, latency, silence before frame 0) but in-process.
pub struct ReferenceEngine {
    chunker: Chunker,
    renderer: ChunkRenderer,
    latency: u64,
    /// Rendered audio not yet delivered, as a ring indexed by absolute frame.
    history: [Vec<f32>; 2],
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
        })
    }

    /// Resets the DSP at the next chunk, like [`super::Engine::reset`].
    pub fn reset(&mut self) {
        self.chunker.request_reset();
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
        let (renderer, history) = (&mut self.renderer, &mut self.history);
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
                for (h, rendered) in history.iter_mut().zip(renderer.rendered(frames)) {
                    for (k, s) in rendered.iter().enumerate() {
                        h[((chunk.start_frame + k as u64) & mask) as usize] = *s;
                    }
                }
            },
        );
        for (k, (l, r)) in out_l.iter_mut().zip(out_r.iter_mut()).enumerate() {
            let frame = (block_start + k as u64).checked_sub(self.latency);
            (*l, *r) = match frame {
                Some(f) => (
                    self.history[0][(f & mask) as usize],
                    self.history[1][(f & mask) as usize],
                ),
                None => (0.0, 0.0),
            };
        }
    }
}
