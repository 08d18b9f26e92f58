//! The two workers render what the in-process reference renders, bit for bit.

mod common;
use common::*;
use tandem::engine::ProcessMode;

#[test]
fn workers_match_the_in_process_reference() {
    let mut engine = engine(ProcessMode::Offline, 256, 0);
    let (got, want) = render_both(&mut engine, 7, 256, 48_000 * 2 / 256, 0, |_, _| {});
    assert!(peak(&want) > 0.01, "the phrase must not be silent");
    assert_eq!(differing(&got, &want), 0);
    for line in engine.drain_log() {
        eprintln!("{line}");
    }
}
