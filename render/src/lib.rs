//! Turning one chunk into audio: the single definition of what a chunk means to the synth.
//!
//! The worker runs this in its render loop, and the plugin's in-process reference runs the very
//! same code, so "equals the reference" in tests means the same function on the same input.
//!
//! It is a crate of its own, between `shm` (which knows chunks but no synthesis) and `dsp`
//! (which knows synthesis but no chunks), so the plugin can link it without linking the
//! worker's sandbox (seccompiler, landlock).

use dsp::{Event, ParamId, Synth};
use shm::chunk::{Chunk, FLAG_HAS_INPUT, FLAG_RESET, MAX_CHUNK_EVENTS, MAX_CHUNK_FRAMES};

/// A synth plus the fixed buffers one chunk needs; nothing allocates after `new`.
pub struct ChunkRenderer {
    /// The synth whose state the snapshots carry.
    pub synth: Synth,
    events: [Event; MAX_CHUNK_EVENTS],
    /// Input audio for the current chunk (the caller fills it when the chunk has input).
    pub input: [Vec<f32>; 2],
    /// Rendered audio of the last chunk (`frames` long).
    pub output: [Vec<f32>; 2],
}

impl ChunkRenderer {
    /// A renderer for `sample_rate`, taking chunks of up to `MAX_CHUNK_FRAMES`.
    pub fn new(sample_rate: f32) -> Result<ChunkRenderer, dsp::ConfigError> {
        let filler = Event {
            offset: 0,
            kind: dsp::EventKind::AllNotesOff,
        };
        Ok(ChunkRenderer {
            synth: Synth::new(sample_rate, MAX_CHUNK_FRAMES)?,
            events: [filler; MAX_CHUNK_EVENTS],
            input: [vec![0.0; MAX_CHUNK_FRAMES], vec![0.0; MAX_CHUNK_FRAMES]],
            output: [vec![0.0; MAX_CHUNK_FRAMES], vec![0.0; MAX_CHUNK_FRAMES]],
        })
    }

    /// Renders `chunk` into `self.output[..][..frames]`: reset if asked, every parameter's
    /// target at the chunk's first frame, then the events at their offsets. Malformed event
    /// records are skipped (the synth decodes them totally).
    pub fn render(&mut self, chunk: &Chunk) {
        let frames = (chunk.frames as usize).min(MAX_CHUNK_FRAMES);
        if chunk.flags & FLAG_RESET != 0 {
            self.synth.reset();
        }
        for id in ParamId::ALL {
            self.synth.set_param(id, chunk.params[id.index()]);
        }
        let mut n = 0;
        for raw in chunk.events() {
            if let Some(e) = Event::from_raw(*raw) {
                self.events[n] = e;
                n += 1;
            }
        }
        let [il, ir] = &self.input;
        let input = (chunk.flags & FLAG_HAS_INPUT != 0).then(|| [&il[..frames], &ir[..frames]]);
        let [ol, or] = &mut self.output;
        self.synth.render(
            &self.events[..n],
            input,
            [&mut ol[..frames], &mut or[..frames]],
        );
    }

    /// The last chunk's audio, `frames` long.
    pub fn rendered(&self, frames: usize) -> [&[f32]; 2] {
        [&self.output[0][..frames], &self.output[1][..frames]]
    }
}
