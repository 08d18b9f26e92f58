//! The worker's render path allocates nothing: reading a chunk from the input ring, rendering
//! it, writing the output ring (audio, digest, progress) and publishing a snapshot, exactly the
//! calls of the render loop, run here under an allocator that aborts on any allocation.

use dsp::{Event, EventKind, ParamId};
use nice_assert_no_alloc::{assert_no_alloc, AllocDisabler};
use render::ChunkRenderer;
use shm::chunk::{Chunk, MAX_CHUNK_FRAMES};
use shm::{InputRing, OutputRing, RingConfig};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn read_render_write_snapshot_never_allocate() {
    let sample_rate = 48_000.0;
    let mut renderer = ChunkRenderer::new(sample_rate).unwrap();
    let mut snapshot = vec![0u8; renderer.synth.snapshot_len().next_multiple_of(8)];
    let config = RingConfig {
        record_count: 64,
        audio_capacity: 1 << 16,
        snapshot_max: snapshot.len() as u32,
        sample_rate,
    };
    let input = InputRing::create(config).unwrap();
    let output = OutputRing::create(config).unwrap();
    let mut posted = Chunk::default();
    for id in ParamId::ALL {
        posted.params[id.index()] = id.info().default;
    }
    let mut chunk = Chunk::default();
    output.begin(1, 0, 0);
    for index in 0..200u64 {
        posted.index = index;
        posted.start_frame = index * 256;
        posted.frames = 256;
        posted.snapshot_slots = (index % 10 == 0) as u32;
        let key = 40 + (index % 40) as u8;
        let on = Event {
            offset: 3,
            kind: EventKind::NoteOn { key, velocity: 0.8 },
        };
        let off = Event {
            offset: 200,
            kind: EventKind::NoteOff {
                key: key.wrapping_sub(7),
            },
        };
        posted.events[0] = on.to_raw();
        posted.events[1] = off.to_raw();
        posted.n_events = 2;
        input.publish(&posted, None);
        assert_no_alloc(|| {
            let [il, ir] = &mut renderer.input;
            input
                .read(index, &mut chunk, [&mut il[..], &mut ir[..]])
                .unwrap();
            renderer.render(&chunk);
            let frames = (chunk.frames as usize).min(MAX_CHUNK_FRAMES);
            let [l, r] = renderer.rendered(frames);
            output.write_audio(chunk.start_frame, [l, r]);
            output.write_voice_ends(index, renderer.voice_ends());
            output.complete_chunk(index, chunk.start_frame + frames as u64, shm::digest(l, r));
            if chunk.snapshot_slots & 1 != 0 {
                let n = renderer.synth.snapshot_into(&mut snapshot).unwrap();
                output.write_snapshot(index, &snapshot[..n]);
            }
        });
    }
}
