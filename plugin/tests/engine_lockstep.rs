//! The two workers render what the in-process reference renders, bit for bit.

mod common;
use common::*;
use tandem::engine::ProcessMode;

#[test]
fn workers_match_the_in_process_reference() {
    let mut engine = engine(ProcessMode::Offline, 256, 0);
    let both = render_both(&mut engine, 7, 256, 48_000 * 2 / 256, 0, |_, _| {});
    assert!(peak(&both.want) > 0.01, "the phrase must not be silent");
    assert_eq!(differing(&both.got, &both.want), 0);
    assert!(!both.want_ends.is_empty(), "the phrase must end notes");
    assert_eq!(both.got_ends, both.want_ends);
    for line in engine.drain_log() {
        eprintln!("{line}");
    }
}

/// A reset travels through the chunk stream: both workers reset at the same frame, exactly as
/// the in-process reference does, and the output cuts to silence and starts again.
#[test]
fn reset_through_the_chunk_stream_matches_the_reference() {
    let n = 256;
    let mut engine = engine(ProcessMode::Offline, n, 0);
    let mut reference = tandem::engine::ReferenceEngine::new(SR, n, 0).unwrap();
    let mut phrase = Phrase::new(13);
    let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
    let (mut wl, mut wr) = (vec![0.0; n], vec![0.0; n]);
    let mut silent_after_reset = false;
    for b in 0..400 {
        if b == 200 {
            engine.reset();
            reference.reset();
        }
        let (events, params) = phrase.block(n);
        let events = if b == 200 { &[][..] } else { events };
        engine.process(events, params, None, [&mut l, &mut r]);
        reference.process(events, params, None, [&mut wl, &mut wr]);
        assert_eq!(differing(&l, &wl) + differing(&r, &wr), 0, "block {b}");
        assert_eq!(engine.voice_ends(), reference.voice_ends(), "block {b}");
        if b == 200 {
            silent_after_reset = peak(&l).max(peak(&r)) == 0.0;
        }
    }
    assert!(silent_after_reset, "a reset silences every voice at once");
}
