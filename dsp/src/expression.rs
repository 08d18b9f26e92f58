//! Per-note input: which voices an event addresses, the note expressions, and voice ends.
//!
//! CLAP hosts address one sounding note by its note id, key and channel, each of which may be a
//! wildcard; MIDI addresses it by key and channel only. [`VoiceTarget`] is that address, used
//! by note expressions, polyphonic modulation and chokes. [`VoiceEnd`] goes the other way: the
//! synth records when a note's voice stops sounding so the host can free what it kept for it.

/// Which sounding voices an event applies to. Each field either names one value or, when
/// `None`, matches every voice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoiceTarget {
    /// The host's note id (`>= 0`), given with the note-on.
    pub note_id: Option<i32>,
    /// MIDI key 0..=127.
    pub key: Option<u8>,
    /// MIDI channel 0..=15.
    pub channel: Option<u8>,
}

impl VoiceTarget {
    /// Every voice.
    pub const ALL: VoiceTarget = VoiceTarget {
        note_id: None,
        key: None,
        channel: None,
    };

    /// Whether a voice started as note `note_id` (-1: none) on `key` and `channel` is addressed.
    pub(crate) fn matches(&self, note_id: i32, key: u32, channel: u32) -> bool {
        self.note_id.is_none_or(|id| id == note_id)
            && self.key.is_none_or(|k| k as u32 == key)
            && self.channel.is_none_or(|c| c as u32 == channel)
    }

    /// Whether every named field is in range.
    pub fn is_valid(&self) -> bool {
        self.note_id.is_none_or(|id| id >= 0)
            && self.key.is_none_or(|k| k <= 127)
            && self.channel.is_none_or(|c| c <= 15)
    }
}

/// A per-note expression: how one sounding note departs from what every note shares.
///
/// Each has a neutral value, which a new note starts from, and a range its values are clamped
/// to. Values glide over a few milliseconds, like parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Expression {
    /// Detune in semitones, -120..120 (neutral 0).
    Tuning,
    /// Gain factor, 0..4 (neutral 1).
    Volume,
    /// Pan position, -1 (left) .. 1 (right), added to the voice's place in the stereo field
    /// (neutral 0).
    Pan,
    /// 0..1 (neutral 0.5): moves the cutoff by ±4 octaves.
    Brightness,
    /// Aftertouch 0..1 (neutral 0): opens the cutoff by up to 2 octaves.
    Pressure,
}

impl Expression {
    /// Every expression, in wire-code order.
    pub const ALL: [Expression; 5] = [
        Expression::Tuning,
        Expression::Volume,
        Expression::Pan,
        Expression::Brightness,
        Expression::Pressure,
    ];

    /// The wire code (the index into [`Expression::ALL`]).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Inverse of [`Expression::code`]; `None` for codes from untrusted data that name nothing.
    pub fn from_code(code: u32) -> Option<Expression> {
        Self::ALL.get(code as usize).copied()
    }

    /// The value a note starts with, which changes nothing.
    pub fn neutral(self) -> f32 {
        match self {
            Expression::Volume => 1.0,
            Expression::Brightness => 0.5,
            Expression::Tuning | Expression::Pan | Expression::Pressure => 0.0,
        }
    }

    /// The range values are clamped to.
    pub fn range(self) -> (f32, f32) {
        match self {
            Expression::Tuning => (-120.0, 120.0),
            Expression::Volume => (0.0, 4.0),
            Expression::Pan => (-1.0, 1.0),
            Expression::Brightness | Expression::Pressure => (0.0, 1.0),
        }
    }
}

/// A note whose voice stopped sounding, at a sample offset of the block that rendered it.
///
/// A voice ends when its release has faded to silence, when its steal or choke fade is over,
/// when a reset silences it, or when the same key is struck again under another note id or
/// channel (the voice carries on as the new note; the old one is over for the host).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VoiceEnd {
    /// Sample offset in the block (the first sample the voice no longer sounds).
    pub offset: u32,
    /// The note id it was started with, or -1.
    pub note_id: i32,
    /// Its key, 0..=127.
    pub key: u8,
    /// Its channel, 0..=15.
    pub channel: u8,
}

/// The most voice ends one `render` records; enough for every voice ending plus every note
/// started in a chunk of `shm`'s 64 events ending too.
pub const MAX_VOICE_ENDS: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_everything_and_names_match_one() {
        assert!(VoiceTarget::ALL.matches(-1, 60, 3));
        let t = VoiceTarget {
            note_id: Some(7),
            key: None,
            channel: Some(2),
        };
        assert!(t.matches(7, 60, 2));
        assert!(!t.matches(8, 60, 2));
        assert!(!t.matches(7, 60, 3));
        assert!(!t.matches(-1, 60, 2));
    }

    #[test]
    fn codes_round_trip_and_neutral_values_are_in_range() {
        for e in Expression::ALL {
            assert_eq!(Expression::from_code(e.code() as u32), Some(e));
            let (lo, hi) = e.range();
            assert!((lo..=hi).contains(&e.neutral()));
        }
        assert_eq!(Expression::from_code(5), None);
    }
}
