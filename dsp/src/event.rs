//! Timed input to the synth: notes, controllers, parameter targets, per-note modulation.
//!
//! Events carry a sample offset into the block being rendered, so the synth applies them at the
//! exact sample whatever the block size; this is what lets two workers, or one worker rendering
//! in different chunkings, produce the same bits. The wire form is four plain `u32`s so the
//! shared-memory protocol can copy records without knowing Rust layouts, and decoding it is total:
//! bytes from the other side of a trust boundary yield `None`, never a panic.

use crate::expression::{Expression, VoiceTarget};
use crate::modulation::poly_mod_lane;
use crate::params::ParamId;

/// What happens at an event's offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EventKind {
    /// A key goes down; `velocity` is 0..1. A key that is already sounding is retriggered in place.
    NoteOn {
        /// MIDI key number 0..=127 (60 = middle C).
        key: u8,
        /// Strike strength 0..1; scales level and filter envelope depth.
        velocity: f32,
    },
    /// A key goes up (held on if the sustain pedal is down).
    NoteOff {
        /// MIDI key number 0..=127.
        key: u8,
    },
    /// Pitch bend, -1..1 for ±2 semitones; smoothed inside.
    PitchBend(f32),
    /// Mod wheel 0..1; scales the LFO depth to pitch and cutoff.
    ModWheel(f32),
    /// Sustain pedal down (`true`) or up.
    Sustain(bool),
    /// Releases every voice (their release tails still sound).
    AllNotesOff,
    /// Silences everything at once, like [`crate::Synth::reset`]; parameter targets are kept.
    Reset,
    /// Sets a parameter's target in plain units; clamped to its range and smoothed inside.
    Param {
        /// Which parameter.
        id: ParamId,
        /// The plain-unit target.
        value: f32,
    },
    /// A key goes down as a CLAP host sends it: with a channel and a note id, which later
    /// [`VoiceTarget`]s address and the voice's [`crate::expression::VoiceEnd`] reports.
    NoteOnId {
        /// MIDI key number 0..=127.
        key: u8,
        /// Strike strength 0..1.
        velocity: f32,
        /// MIDI channel 0..=15.
        channel: u8,
        /// The host's note id (`>= 0`), or -1 for none.
        note_id: i32,
    },
    /// Polyphonic modulation: offsets one parameter for the addressed voices only, in the
    /// host's normalized units (-1..1; see `modulation` for the scale). Only the parameters in
    /// [`crate::modulation::POLY_MOD_PARAMS`] take it.
    PolyMod {
        /// The voices.
        target: VoiceTarget,
        /// Which parameter.
        id: ParamId,
        /// The offset, -1..1.
        offset: f32,
    },
    /// Sets a note expression of the addressed voices (clamped to its range).
    Expression {
        /// The voices.
        target: VoiceTarget,
        /// Which expression.
        kind: Expression,
        /// Its new value.
        value: f32,
    },
    /// Stops the addressed voices at once (a 4 ms fade, as for a stolen voice).
    Choke(VoiceTarget),
}

/// An [`EventKind`] at a sample offset within one `render` call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event {
    /// Sample offset from the start of the block; must be below its frame count.
    pub offset: u32,
    /// What happens there.
    pub kind: EventKind,
}

const TAG_NOTE_ON: u32 = 1;
const TAG_NOTE_OFF: u32 = 2;
const TAG_PITCH_BEND: u32 = 3;
const TAG_MOD_WHEEL: u32 = 4;
const TAG_SUSTAIN: u32 = 5;
const TAG_ALL_NOTES_OFF: u32 = 6;
const TAG_RESET: u32 = 7;
const TAG_PARAM: u32 = 8;
const TAG_NOTE_ON_ID: u32 = 9;
const TAG_POLY_MOD: u32 = 10;
const TAG_EXPRESSION: u32 = 11;
const TAG_CHOKE: u32 = 12;
/// A wildcard key, channel or note id on the wire.
const ANY: u32 = 0xff;

/// Packs a voice target and an 8-bit selector (parameter index or expression code) into the
/// 24 data bits and the fourth word: `key | channel << 8 | selector << 16`, note id.
fn target_to_raw(t: &VoiceTarget, selector: u32) -> (u32, u32) {
    let key = t.key.map_or(ANY, u32::from);
    let channel = t.channel.map_or(ANY, u32::from);
    let note_id = t.note_id.map_or(u32::MAX, |id| id as u32);
    (key | channel << 8 | selector << 16, note_id)
}

/// Inverse of [`target_to_raw`]: the target and the selector; `None` for a non-canonical
/// spelling (a named key above 127 or channel above 15, a negative note id other than -1).
fn target_from_raw(data: u32, word: u32) -> Option<(VoiceTarget, u32)> {
    let field = |x: u32, max: u32| match x {
        ANY => Some(None),
        x if x <= max => Some(Some(x as u8)),
        _ => None,
    };
    let note_id = match word as i32 {
        -1 => None,
        id if id >= 0 => Some(id),
        _ => return None,
    };
    let target = VoiceTarget {
        note_id,
        key: field(data & 0xff, 127)?,
        channel: field((data >> 8) & 0xff, 15)?,
    };
    Some((target, data >> 16))
}

impl Event {
    /// Plain 16-byte wire form for the shared-memory chunk records (no padding, no pointers).
    ///
    /// Layout: `[offset, tag | data << 8, value bits, word]`, where `data` is the key, the pedal
    /// state or the parameter index, and `value` is the velocity, bend, wheel or parameter value
    /// as `f32` bits. Events that address voices put `key | channel << 8 | selector << 16` in
    /// `data` (0xff for a wildcard key or channel; the selector is the parameter index or the
    /// expression code) and the note id in `word` (-1 for none or any); `word` is zero for the
    /// rest. Unused fields are zero, and [`Event::from_raw`] insists on that so that a record
    /// has exactly one valid spelling.
    pub fn to_raw(&self) -> [u32; 4] {
        let mut word = 0;
        let (tag, data, value) = match self.kind {
            EventKind::NoteOn { key, velocity } => (TAG_NOTE_ON, key as u32, velocity.to_bits()),
            EventKind::NoteOff { key } => (TAG_NOTE_OFF, key as u32, 0),
            EventKind::PitchBend(b) => (TAG_PITCH_BEND, 0, b.to_bits()),
            EventKind::ModWheel(w) => (TAG_MOD_WHEEL, 0, w.to_bits()),
            EventKind::Sustain(on) => (TAG_SUSTAIN, on as u32, 0),
            EventKind::AllNotesOff => (TAG_ALL_NOTES_OFF, 0, 0),
            EventKind::Reset => (TAG_RESET, 0, 0),
            EventKind::Param { id, value } => (TAG_PARAM, id.index() as u32, value.to_bits()),
            EventKind::NoteOnId {
                key,
                velocity,
                channel,
                note_id,
            } => {
                word = note_id as u32;
                let data = key as u32 | (channel as u32) << 8;
                (TAG_NOTE_ON_ID, data, velocity.to_bits())
            }
            EventKind::PolyMod { target, id, offset } => {
                let (data, w) = target_to_raw(&target, id.index() as u32);
                word = w;
                (TAG_POLY_MOD, data, offset.to_bits())
            }
            EventKind::Expression {
                target,
                kind,
                value,
            } => {
                let (data, w) = target_to_raw(&target, kind.code() as u32);
                word = w;
                (TAG_EXPRESSION, data, value.to_bits())
            }
            EventKind::Choke(target) => {
                let (data, w) = target_to_raw(&target, 0);
                word = w;
                (TAG_CHOKE, data, 0)
            }
        };
        [self.offset, tag | (data << 8), value, word]
    }

    /// Decodes the wire form; None for anything malformed (unknown kind, bad param id,
    /// non-finite or out-of-range value, key > 127, non-zero unused bits). Never panics.
    pub fn from_raw(raw: [u32; 4]) -> Option<Event> {
        let [offset, head, bits, word] = raw;
        let tag = head & 0xff;
        let addresses_voices = matches!(
            tag,
            TAG_NOTE_ON_ID | TAG_POLY_MOD | TAG_EXPRESSION | TAG_CHOKE
        );
        if word != 0 && !addresses_voices {
            return None;
        }
        let data = head >> 8;
        let value = f32::from_bits(bits);
        let kind = match tag {
            TAG_NOTE_ON => EventKind::NoteOn {
                key: u8::try_from(data).ok()?,
                velocity: value,
            },
            TAG_NOTE_OFF if bits == 0 => EventKind::NoteOff {
                key: u8::try_from(data).ok()?,
            },
            TAG_PITCH_BEND if data == 0 => EventKind::PitchBend(value),
            TAG_MOD_WHEEL if data == 0 => EventKind::ModWheel(value),
            TAG_SUSTAIN if bits == 0 && data <= 1 => EventKind::Sustain(data == 1),
            TAG_ALL_NOTES_OFF if data == 0 && bits == 0 => EventKind::AllNotesOff,
            TAG_RESET if data == 0 && bits == 0 => EventKind::Reset,
            TAG_PARAM => EventKind::Param {
                id: ParamId::from_index(data as usize)?,
                value,
            },
            TAG_NOTE_ON_ID if data >> 16 == 0 => EventKind::NoteOnId {
                key: u8::try_from(data & 0xff).ok()?,
                velocity: value,
                channel: (data >> 8) as u8,
                note_id: word as i32,
            },
            TAG_POLY_MOD => {
                let (target, index) = target_from_raw(data, word)?;
                EventKind::PolyMod {
                    target,
                    id: ParamId::from_index(index as usize)?,
                    offset: value,
                }
            }
            TAG_EXPRESSION => {
                let (target, code) = target_from_raw(data, word)?;
                EventKind::Expression {
                    target,
                    kind: Expression::from_code(code)?,
                    value,
                }
            }
            TAG_CHOKE if bits == 0 => match target_from_raw(data, word)? {
                (target, 0) => EventKind::Choke(target),
                _ => return None,
            },
            _ => return None,
        };
        let event = Event { offset, kind };
        event.is_valid().then_some(event)
    }

    /// Whether the fields are in their documented ranges. `render` skips events that are not,
    /// since the fields are public and a caller can build any value.
    pub fn is_valid(&self) -> bool {
        match self.kind {
            EventKind::NoteOn { key, velocity } => key <= 127 && (0.0..=1.0).contains(&velocity),
            EventKind::NoteOff { key } => key <= 127,
            EventKind::PitchBend(b) => (-1.0..=1.0).contains(&b),
            EventKind::ModWheel(w) => (0.0..=1.0).contains(&w),
            EventKind::Sustain(_) | EventKind::AllNotesOff | EventKind::Reset => true,
            EventKind::Param { value, .. } => value.is_finite(),
            EventKind::NoteOnId {
                key,
                velocity,
                channel,
                note_id,
            } => key <= 127 && (0.0..=1.0).contains(&velocity) && channel <= 15 && note_id >= -1,
            EventKind::PolyMod { target, id, offset } => {
                target.is_valid() && poly_mod_lane(id).is_some() && (-1.0..=1.0).contains(&offset)
            }
            EventKind::Expression { target, value, .. } => target.is_valid() && value.is_finite(),
            EventKind::Choke(target) => target.is_valid(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_round_trip() {
        let kinds = [
            EventKind::NoteOn {
                key: 127,
                velocity: 0.5,
            },
            EventKind::NoteOff { key: 0 },
            EventKind::PitchBend(-1.0),
            EventKind::ModWheel(1.0),
            EventKind::Sustain(true),
            EventKind::Sustain(false),
            EventKind::AllNotesOff,
            EventKind::Reset,
            EventKind::Param {
                id: ParamId::Bypass,
                value: 1.0,
            },
            EventKind::NoteOnId {
                key: 60,
                velocity: 0.5,
                channel: 15,
                note_id: 0,
            },
            EventKind::NoteOnId {
                key: 0,
                velocity: 1.0,
                channel: 0,
                note_id: -1,
            },
            EventKind::PolyMod {
                target: VoiceTarget {
                    note_id: Some(i32::MAX),
                    key: None,
                    channel: Some(3),
                },
                id: ParamId::Cutoff,
                offset: -0.25,
            },
            EventKind::Expression {
                target: VoiceTarget {
                    note_id: None,
                    key: Some(127),
                    channel: None,
                },
                kind: Expression::Pressure,
                value: 0.75,
            },
            EventKind::Choke(VoiceTarget::ALL),
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            let e = Event {
                offset: i as u32 * 1000,
                kind,
            };
            assert_eq!(Event::from_raw(e.to_raw()), Some(e));
        }
    }

    #[test]
    fn malformed_raw_is_refused() {
        let ok = Event {
            offset: 3,
            kind: EventKind::NoteOn {
                key: 60,
                velocity: 1.0,
            },
        }
        .to_raw();
        assert!(Event::from_raw(ok).is_some());
        let bad = [
            [0, 0, 0, 0],                                                   // tag 0
            [0, 13, 0, 0],                                                  // unknown tag
            [0, 1 | (128 << 8), 0, 0],                                      // key 128
            [0, 1 | (60 << 8), f32::NAN.to_bits(), 0],                      // NaN velocity
            [0, 1 | (60 << 8), 2.0f32.to_bits(), 0],                        // velocity > 1
            [0, 8 | (35 << 8), 0, 0],                                       // param index 35
            [0, 8, f32::INFINITY.to_bits(), 0],                             // infinite param
            [0, 5 | (2 << 8), 0, 0],                                        // pedal state 2
            [0, 2 | (60 << 8), 1, 0], // note off with value bits
            [ok[0], ok[1], ok[2], 1], // fourth word set
            [0, 9 | (60 << 8) | (16 << 16), 0, 0], // note-on with channel 16
            [0, 9 | (60 << 8), 0, (-2i32) as u32], // note id -2
            [0, 10 | (0xffff << 8) | (34 << 24), 0, u32::MAX], // poly mod of Bypass
            [0, 10 | (128 << 8) | (0xff << 16) | (14 << 24), 0, u32::MAX], // key 128
            [0, 10 | (0xffff << 8) | (14 << 24), 2f32.to_bits(), u32::MAX], // offset 2
            [0, 11 | (0xffff << 8) | (5 << 24), 0, u32::MAX], // expression code 5
            [0, 11 | (0xffff << 8), f32::NAN.to_bits(), u32::MAX], // NaN expression
            [0, 12 | (0xffff << 8) | (1 << 24), 0, u32::MAX], // choke with a selector
        ];
        for raw in bad {
            assert_eq!(Event::from_raw(raw), None, "{raw:?}");
        }
        // Every tag with arbitrary bits: total, never panics.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let _ = Event::from_raw([x, x.rotate_left(7) & 0xffff_f00f, x.rotate_left(13), 0]);
        }
    }
}
