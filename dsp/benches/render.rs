//! Render cost: the in-process baseline every later overhead figure is divided by.
//!
//! Each iteration renders one 512-frame block at 48 kHz with N voices sounding (held notes,
//! default patch: two saws, filter and envelopes all running). Criterion's throughput line is
//! in voice-samples, so its time per element is the ns per voice-sample:
//!
//! ```text
//! cargo bench -p dsp --bench render
//! ```

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dsp::{Event, EventKind, ParamId, Synth};
use std::hint::black_box;

const SR: f32 = 48_000.0;
const BLOCK: usize = 512;

fn sounding(voices: usize) -> Synth {
    let mut synth = Synth::new(SR, BLOCK).unwrap();
    synth.set_param(ParamId::Polyphony, voices as f32);
    synth.set_param(ParamId::AmpSustain, 1.0);
    let notes: Vec<Event> = (0..voices)
        .map(|i| Event {
            offset: 0,
            kind: EventKind::NoteOn {
                key: 30 + 3 * i as u8,
                velocity: 0.8,
            },
        })
        .collect();
    let mut l = [0.0; BLOCK];
    let mut r = [0.0; BLOCK];
    synth.render(&notes, None, [&mut l, &mut r]);
    // Past the attacks and smoother settling.
    for _ in 0..100 {
        synth.render(&[], None, [&mut l, &mut r]);
    }
    assert_eq!(synth.active_voices(), voices);
    synth
}

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render_48k_block512");
    for voices in [1usize, 16, 32] {
        let mut synth = sounding(voices);
        let mut l = [0.0f32; BLOCK];
        let mut r = [0.0f32; BLOCK];
        group.throughput(Throughput::Elements((BLOCK * voices) as u64));
        group.bench_with_input(BenchmarkId::new("voices", voices), &voices, |b, _| {
            b.iter(|| {
                synth.render(&[], None, [&mut l, &mut r]);
                black_box(&l);
                black_box(&r);
            })
        });
        assert_eq!(
            synth.active_voices(),
            voices,
            "voices stopped during the run"
        );
    }
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
