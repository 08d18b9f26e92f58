//! Timed input to the synth: notes, controllers, parameter targets.
//!
//! Events carry a sample offset into the block being rendered, so the synth applies them at the
//! exact sample whatever the block size; this is what lets two workers, or one worker rendering
//! in different chunkings, produce the same bits. The wire form is four plain `u32`s so the
//! shared-memory protocol can copy records without knowing Rust layouts, and decoding it is total:
//! bytes from the other side of a trust boundary yield `None`, never a panic.

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

impl Event {
    /// Plain 16-byte wire form for the shared-memory chunk records (no padding, no pointers).
    ///
    /// Layout: `[offset, tag | data << 8, value bits, 0]`, where `data` is the key, the pedal
    /// state or the parameter index, and `value` is the velocity, bend, wheel or parameter value
    /// as `f32` bits. Unused fields are zero, and [`Event::from_raw`] insists on that so that a
    /// record has exactly one valid spelling.
    pub fn to_raw(&self) -> [u32; 4] {
        let (tag, data, value) = match self.kind {
            EventKind::NoteOn { key, velocity } => (TAG_NOTE_ON, key as u32, velocity.to_bits()),
            EventKind::NoteOff { key } => (TAG_NOTE_OFF, key as u32, 0),
            EventKind::PitchBend(b) => (TAG_PITCH_BEND, 0, b.to_bits()),
            EventKind::ModWheel(w) => (TAG_MOD_WHEEL, 0, w.to_bits()),
            EventKind::Sustain(on) => (TAG_SUSTAIN, on as u32, 0),
            EventKind::AllNotesOff => (TAG_ALL_NOTES_OFF, 0, 0),
            EventKind::Reset => (TAG_RESET, 0, 0),
            EventKind::Param { id, value } => (TAG_PARAM, id.index() as u32, value.to_bits()),
        };
        [self.offset, tag | (data << 8), value, 0]
    }

    /// Decodes the wire form; None for anything malformed (unknown kind, bad param id,
    /// non-finite or out-of-range value, key > 127, non-zero unused bits). Never panics.
    pub fn from_raw(raw: [u32; 4]) -> Option<Event> {
        let [offset, head, bits, reserved] = raw;
        if reserved != 0 {
            return None;
        }
        let tag = head & 0xff;
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
            [0, 0, 0, 0],                              // tag 0
            [0, 9, 0, 0],                              // unknown tag
            [0, 1 | (128 << 8), 0, 0],                 // key 128
            [0, 1 | (60 << 8), f32::NAN.to_bits(), 0], // NaN velocity
            [0, 1 | (60 << 8), 2.0f32.to_bits(), 0],   // velocity > 1
            [0, 8 | (35 << 8), 0, 0],                  // param index 35
            [0, 8, f32::INFINITY.to_bits(), 0],        // infinite param
            [0, 5 | (2 << 8), 0, 0],                   // pedal state 2
            [0, 2 | (60 << 8), 1, 0],                  // note off with value bits
            [ok[0], ok[1], ok[2], 1],                  // reserved word set
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
