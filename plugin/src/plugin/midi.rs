//! From the host's note and MIDI events to the synth's events.
//!
//! The synth is one polyphonic instrument across all MIDI channels: one voice per key, whatever
//! the channel. A note's channel and the host's note id travel with its note-on, so that per-note
//! events can address it and its voice end can name it. What it understands:
//!
//! | host event | synth event |
//! |---|---|
//! | note on (velocity 0..1; velocity 0 counts as a note off) | `NoteOnId` |
//! | note off (its velocity is ignored) | `NoteOff` |
//! | note off for every key (CLAP wildcard key) | `AllNotesOff` |
//! | choke (of one note, or of every note matching wildcards) | `Choke` |
//! | CLAP polyphonic modulation (by note id) | `PolyMod` |
//! | CLAP note expressions: tuning, volume, pan, brightness, pressure | `Expression` |
//! | MIDI polyphonic aftertouch (by key and channel) | `Expression` (pressure) |
//! | MIDI channel pressure (every note on its channel) | `Expression` (pressure) |
//! | pitch bend (14 bits, centre 8192) | `PitchBend(-1..1)` |
//! | CC 1, mod wheel | `ModWheel(0..1)` |
//! | CC 64, sustain pedal (down from 64 up) | `Sustain` |
//! | CC 120 all sound off, CC 123 all notes off | `AllNotesOff` |
//! | CC 121, reset all controllers | bend 0, wheel 0, pedal up |
//!
//! Everything else (the vibrato and expression note expressions, other CCs, program changes) is
//! dropped; monophonic automation of a poly-modulated parameter needs nothing here, since every
//! chunk carries every parameter's value and per-voice offsets are relative to it.

use dsp::{Event, EventKind, Expression, ParamId, VoiceTarget};
use nice_plug::midi::{Channel, Key, VoiceID};
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
            voice_id,
            channel,
            key,
            velocity,
        } => match key {
            Key::Number(key) if key <= 127 && velocity > 0.0 => push(
                timing,
                EventKind::NoteOnId {
                    key,
                    velocity: sanitize_unit(velocity),
                    channel: channel.number().filter(|&c| c <= 15).unwrap_or(0),
                    note_id: voice_id.id().filter(|&id| id >= 0).unwrap_or(-1),
                },
            ),
            Key::Number(key) if key <= 127 => push(timing, EventKind::NoteOff { key }),
            _ => {}
        },
        NoteEvent::NoteOff { timing, key, .. } => match key {
            Key::Number(key) if key <= 127 => push(timing, EventKind::NoteOff { key }),
            Key::Number(_) => {}
            _ => push(timing, EventKind::AllNotesOff),
        },
        NoteEvent::Choke {
            timing,
            voice_id,
            channel,
            key,
        } => {
            if let Some(target) = target(voice_id, channel, key) {
                push(timing, EventKind::Choke(target));
            }
        }
        NoteEvent::PolyModulation {
            timing,
            voice_id,
            poly_modulation_id,
            normalized_offset,
        } => {
            let id = ParamId::from_index(poly_modulation_id as usize);
            if let (Some(id), true) = (id, voice_id >= 0 && !normalized_offset.is_nan()) {
                let target = VoiceTarget {
                    note_id: Some(voice_id),
                    ..VoiceTarget::ALL
                };
                let offset = normalized_offset.clamp(-1.0, 1.0);
                push(timing, EventKind::PolyMod { target, id, offset });
            }
        }
        NoteEvent::PolyTuning {
            timing,
            voice_id,
            channel,
            key,
            tuning,
        } => {
            if let Some(kind) = expression(voice_id, channel, key, Expression::Tuning, tuning) {
                push(timing, kind);
            }
        }
        NoteEvent::PolyVolume {
            timing,
            voice_id,
            channel,
            key,
            gain,
        } => {
            if let Some(kind) = expression(voice_id, channel, key, Expression::Volume, gain) {
                push(timing, kind);
            }
        }
        NoteEvent::PolyPan {
            timing,
            voice_id,
            channel,
            key,
            pan,
        } => {
            if let Some(kind) = expression(voice_id, channel, key, Expression::Pan, pan) {
                push(timing, kind);
            }
        }
        NoteEvent::PolyBrightness {
            timing,
            voice_id,
            channel,
            key,
            brightness,
        } => {
            if let Some(kind) =
                expression(voice_id, channel, key, Expression::Brightness, brightness)
            {
                push(timing, kind);
            }
        }
        NoteEvent::PolyPressure {
            timing,
            voice_id,
            channel,
            key,
            pressure,
        } => {
            if let Some(kind) = expression(voice_id, channel, key, Expression::Pressure, pressure) {
                push(timing, kind);
            }
        }
        NoteEvent::MidiChannelPressure {
            timing,
            channel,
            pressure,
        } => {
            let kind = expression(
                VoiceID::Wildcard,
                Channel::Number(channel),
                Key::Wildcard,
                Expression::Pressure,
                pressure,
            );
            if let Some(kind) = kind {
                push(timing, kind);
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

/// The voices a host event addresses; `None` if a named field is out of range.
fn target(voice_id: VoiceID, channel: Channel, key: Key) -> Option<VoiceTarget> {
    let target = VoiceTarget {
        note_id: voice_id.id(),
        key: key.number(),
        channel: channel.number(),
    };
    target.is_valid().then_some(target)
}

/// A note expression for the voices a host event addresses; `None` for a NaN value or a named
/// field out of range.
fn expression(
    voice_id: VoiceID,
    channel: Channel,
    key: Key,
    kind: Expression,
    value: f32,
) -> Option<EventKind> {
    let target = target(voice_id, channel, key)?;
    let (lo, hi) = kind.range();
    (!value.is_nan()).then(|| EventKind::Expression {
        target,
        kind,
        value: value.clamp(lo, hi),
    })
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
            voice_id: VoiceID::ID(42),
            channel: Channel::Number(9),
            key: Key::Number(60),
            velocity: 0.75,
        });
        assert_eq!(
            on,
            [Event {
                offset: 5,
                kind: EventKind::NoteOnId {
                    key: 60,
                    velocity: 0.75,
                    channel: 9,
                    note_id: 42,
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
        assert_eq!(all[0].kind, EventKind::Choke(VoiceTarget::ALL));
    }

    #[test]
    fn per_note_events_address_their_note() {
        let pm = one(NoteEvent::PolyModulation {
            timing: 3,
            voice_id: 7,
            poly_modulation_id: ParamId::Cutoff.index() as u32,
            normalized_offset: 2.0,
        });
        let by_id = VoiceTarget {
            note_id: Some(7),
            ..VoiceTarget::ALL
        };
        assert_eq!(
            pm[0].kind,
            EventKind::PolyMod {
                target: by_id,
                id: ParamId::Cutoff,
                offset: 1.0
            }
        );
        let pan = one(NoteEvent::PolyPan {
            timing: 0,
            voice_id: VoiceID::ID(7),
            channel: Channel::Wildcard,
            key: Key::Wildcard,
            pan: -0.5,
        });
        assert_eq!(
            pan[0].kind,
            EventKind::Expression {
                target: by_id,
                kind: Expression::Pan,
                value: -0.5
            }
        );
        let channel_pressure = one(NoteEvent::MidiChannelPressure {
            timing: 0,
            channel: 4,
            pressure: 0.5,
        });
        assert_eq!(
            channel_pressure[0].kind,
            EventKind::Expression {
                target: VoiceTarget {
                    channel: Some(4),
                    ..VoiceTarget::ALL
                },
                kind: Expression::Pressure,
                value: 0.5
            }
        );
        // Nothing for a NaN expression or a channel out of range.
        assert!(one(NoteEvent::PolyTuning {
            timing: 0,
            voice_id: VoiceID::Wildcard,
            channel: Channel::Wildcard,
            key: Key::Number(60),
            tuning: f32::NAN,
        })
        .is_empty());
        assert!(one(NoteEvent::MidiChannelPressure {
            timing: 0,
            channel: 16,
            pressure: 0.5,
        })
        .is_empty());
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
