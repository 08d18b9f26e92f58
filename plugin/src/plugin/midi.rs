//! From the host's note and MIDI events to the synth's events.
//!
//! The synth is one polyphonic instrument across all MIDI channels, so channels and voice ids are
//! ignored. What it understands:
//!
//! | host event | synth event |
//! |---|---|
//! | note on (velocity 0..1; velocity 0 counts as a note off) | `NoteOn` |
//! | note off (its velocity is ignored), choke | `NoteOff` |
//! | note off or choke for every key (CLAP wildcard key) | `AllNotesOff` |
//! | pitch bend (14 bits, centre 8192) | `PitchBend(-1..1)` |
//! | CC 1, mod wheel | `ModWheel(0..1)` |
//! | CC 64, sustain pedal (down from 64 up) | `Sustain` |
//! | CC 120 all sound off, CC 123 all notes off | `AllNotesOff` |
//! | CC 121, reset all controllers | bend 0, wheel 0, pedal up |
//!
//! Everything else (aftertouch, other CCs, program changes, note expressions) is dropped.

use dsp::{Event, EventKind};
use nice_plug::midi::Key;
use nice_plug::prelude::*;

/// The most synth events one `process()` call forwards; more are dropped (never allocated for).
pub const MAX_EVENTS: usize = 1024;

/// Appends the synth events that `event` stands for to `out`, up to its capacity.
///
/// Real-time safe as long as `out` was allocated with room for [`MAX_EVENTS`]: this never grows
/// it. Returns how many events had to be dropped because it was full.
pub fn translate<S>(event: &NoteEvent<S>, out: &mut Vec<Event>) -> usize {
    let mut dropped = 0;
    let mut push = |offset: u32, kind: EventKind| {
        if out.len() < out.capacity().min(MAX_EVENTS) {
            out.push(Event { offset, kind });
        } else {
            dropped += 1;
        }
    };
    match *event {
        NoteEvent::NoteOn {
            timing,
            key,
            velocity,
            ..
        } => match key {
            Key::Number(key) if key <= 127 && velocity > 0.0 => push(
                timing,
                EventKind::NoteOn {
                    key,
                    velocity: sanitize_unit(velocity),
                },
            ),
            Key::Number(key) if key <= 127 => push(timing, EventKind::NoteOff { key }),
            _ => {}
        },
        NoteEvent::NoteOff { timing, key, .. } | NoteEvent::Choke { timing, key, .. } => {
            match key {
                Key::Number(key) if key <= 127 => push(timing, EventKind::NoteOff { key }),
                Key::Number(_) => {}
                _ => push(timing, EventKind::AllNotesOff),
            }
        }
        NoteEvent::MidiPitchBend { timing, value, .. } => {
            push(timing, EventKind::PitchBend(bend_from_normalized(value)))
        }
        NoteEvent::MidiCC {
            timing, cc, value, ..
        } => match cc {
            control_change::MODULATION_MSB => {
                push(timing, EventKind::ModWheel(sanitize_unit(value)))
            }
            control_change::DAMPER_PEDAL => push(timing, EventKind::Sustain(value >= 0.5)),
            control_change::ALL_SOUND_OFF | control_change::ALL_NOTES_OFF => {
                push(timing, EventKind::AllNotesOff)
            }
            control_change::RESET_ALL_CONTROLLERS => {
                push(timing, EventKind::PitchBend(0.0));
                push(timing, EventKind::ModWheel(0.0));
                push(timing, EventKind::Sustain(false));
            }
            _ => {}
        },
        _ => {}
    }
    dropped
}

/// Clamps a 0..1 value from the host; NaN becomes 0.
fn sanitize_unit(value: f32) -> f32 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

/// nice-plug gives pitch bend as the 14-bit MIDI value over 16383 (centre 8192/16383, just above
/// 0.5). We map 8192 to exactly 0, 0 to -1 and 16383 to +1, so a centred wheel does not detune.
pub fn bend_from_normalized(value: f32) -> f32 {
    let raw = (sanitize_unit(value) * 16383.0).round();
    if raw >= 8192.0 {
        (raw - 8192.0) / 8191.0
    } else {
        (raw - 8192.0) / 8192.0
    }
}

/// Makes `events` fit a block of `frames` frames: offsets clamped below `frames` and sorted by
/// offset (stable, so same-offset events keep the host's order). Hosts send events in time order,
/// so the sort normally only checks; it is an in-place insertion sort either way (no allocation).
pub fn fit_to_block(events: &mut [Event], frames: usize) {
    let last = frames.saturating_sub(1) as u32;
    for e in events.iter_mut() {
        e.offset = e.offset.min(last);
    }
    for i in 1..events.len() {
        let mut j = i;
        while j > 0 && events[j - 1].offset > events[j].offset {
            events.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nice_plug::midi::{Channel, VoiceID};

    fn one(event: NoteEvent<()>) -> Vec<Event> {
        let mut out = Vec::with_capacity(MAX_EVENTS);
        assert_eq!(translate(&event, &mut out), 0);
        out
    }

    fn cc(cc: u8, value: f32) -> NoteEvent<()> {
        NoteEvent::MidiCC {
            timing: 7,
            channel: 3,
            cc,
            value,
        }
    }

    #[test]
    fn notes() {
        let on = one(NoteEvent::NoteOn {
            timing: 5,
            voice_id: VoiceID::Wildcard,
            channel: Channel::Number(9),
            key: Key::Number(60),
            velocity: 0.75,
        });
        assert_eq!(
            on,
            [Event {
                offset: 5,
                kind: EventKind::NoteOn {
                    key: 60,
                    velocity: 0.75
                }
            }]
        );
        let off = one(NoteEvent::NoteOff {
            timing: 9,
            voice_id: VoiceID::Wildcard,
            channel: Channel::Number(0),
            key: Key::Number(60),
            velocity: 0.2,
        });
        assert_eq!(off[0].kind, EventKind::NoteOff { key: 60 });
        let zero_velocity = one(NoteEvent::NoteOn {
            timing: 1,
            voice_id: VoiceID::Wildcard,
            channel: Channel::Number(0),
            key: Key::Number(61),
            velocity: 0.0,
        });
        assert_eq!(zero_velocity[0].kind, EventKind::NoteOff { key: 61 });
        let all = one(NoteEvent::Choke {
            timing: 0,
            voice_id: VoiceID::Wildcard,
            channel: Channel::Wildcard,
            key: Key::Wildcard,
        });
        assert_eq!(all[0].kind, EventKind::AllNotesOff);
    }

    #[test]
    fn controllers() {
        assert_eq!(one(cc(1, 0.5))[0].kind, EventKind::ModWheel(0.5));
        assert_eq!(one(cc(64, 64.0 / 127.0))[0].kind, EventKind::Sustain(true));
        assert_eq!(one(cc(64, 63.0 / 127.0))[0].kind, EventKind::Sustain(false));
        assert_eq!(one(cc(123, 0.0))[0].kind, EventKind::AllNotesOff);
        assert_eq!(one(cc(120, 0.0))[0].kind, EventKind::AllNotesOff);
        assert_eq!(one(cc(121, 0.0)).len(), 3);
        assert!(one(cc(7, 1.0)).is_empty());
        assert_eq!(one(cc(1, f32::NAN))[0].kind, EventKind::ModWheel(0.0));
    }

    #[test]
    fn pitch_bend_is_centred_and_bounded() {
        assert_eq!(bend_from_normalized(8192.0 / 16383.0), 0.0);
        assert_eq!(bend_from_normalized(0.0), -1.0);
        assert_eq!(bend_from_normalized(1.0), 1.0);
        assert_eq!(bend_from_normalized(2.0), 1.0);
        let e = one(NoteEvent::MidiPitchBend {
            timing: 0,
            channel: 0,
            value: 0.0,
        });
        assert_eq!(e[0].kind, EventKind::PitchBend(-1.0));
    }

    #[test]
    fn full_buffer_drops_instead_of_growing() {
        let mut out = Vec::with_capacity(2);
        let event = cc(121, 0.0);
        assert_eq!(translate(&event, &mut out), 1);
        assert_eq!(out.len(), 2);
        assert_eq!(out.capacity(), 2);
    }

    #[test]
    fn fit_clamps_and_sorts_stably() {
        let ev = |offset, key| Event {
            offset,
            kind: EventKind::NoteOff { key },
        };
        let mut events = [ev(70, 1), ev(3, 2), ev(3, 3), ev(0, 4), ev(63, 5)];
        fit_to_block(&mut events, 64);
        let order: Vec<_> = events
            .iter()
            .map(|e| match e.kind {
                EventKind::NoteOff { key } => (e.offset, key),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(order, [(0, 4), (3, 2), (3, 3), (63, 1), (63, 5)]);
    }
}
