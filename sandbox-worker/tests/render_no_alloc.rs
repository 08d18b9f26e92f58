//! The worker's render path allocates nothing: the render loop's own step (read a chunk, render
//! it, write audio, digest and progress, publish a snapshot when asked, ring the doorbell) runs
//! here under an allocator that aborts on any allocation.

use dsp::{Event, EventKind, ParamId};
use nice_assert_no_alloc::{assert_no_alloc, AllocDisabler};
use render::ChunkRenderer;
use sandbox_worker::worker::{Args, RenderLoop, Step};
use shm::chunk::Chunk;
use shm::{Doorbell, InputRing, OutputRing, RingConfig};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn render_loop_steps_never_allocate() {
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
    let doorbell = Doorbell::create().unwrap();
    let args = Args {
        slot: 0,
        spare: false,
        epoch: 1,
        spin_us: 0,
    };
    let mut posted = Chunk::default();
    for id in ParamId::ALL {
        posted.params[id.index()] = id.info().default;
    }
    let mut worker = RenderLoop::new(
        args,
        &input,
        &output,
        &doorbell,
        &mut renderer,
        &mut snapshot,
        0,
    );
    let mut snapshots = 0;
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
        let step = assert_no_alloc(|| worker.step());
        assert_eq!(step, Step::Rendered, "chunk {index}");
        assert_eq!(assert_no_alloc(|| worker.step()), Step::NotYet);
        snapshots += usize::from(posted.snapshot_slots != 0);
    }
    // What the loop wrote is there: every chunk's progress and the last snapshot.
    let mut buf = vec![0u8; config.snapshot_max as usize];
    assert_eq!(
        output
            .read_snapshot(&mut buf)
            .unwrap()
            .map(|(chunk, _)| chunk),
        Some(190)
    );
    assert_eq!(snapshots, 20);
    assert_eq!(doorbell.count(), 200, "one ring per chunk");
}
