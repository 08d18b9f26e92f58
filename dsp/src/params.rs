//! The parameter table: one entry per knob, in plain units.
//!
//! Every parameter lives here once, with its stable id, range, default and kind, so the plugin,
//! the worker and the DSP can never disagree about what a value means. Values travel in plain
//! units (Hz, ms, dB, semitones, 0..1 fractions, choice indices) rather than normalised 0..1,
//! because the DSP is the only place that needs to map them and we want exactly one mapping.

/// Defines the parameters from one list: the [`ParamId`] enum, [`N_PARAMS`], the table behind
/// [`ParamId::info`], [`ParamId::ALL`], and how many of the synth's smoothed values each one
/// drives (`ParamId::first_smoother`). One entry per parameter, in index order:
/// `Variant: id, name, unit, min, max, default, kind; smoothed n;`.
macro_rules! params {
    ($(
        $(#[$doc:meta])*
        $variant:ident: $id:literal, $name:literal, $unit:literal, $min:expr, $max:expr,
            $default:expr, $kind:expr; smoothed $smoothed:literal;
    )*) => {
        /// Identifies one parameter; the discriminant is its index into [`ParamId::ALL`].
        ///
        /// The order is part of the wire format of [`crate::EventKind::Param`] and of
        /// snapshots, so new parameters are only ever appended.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum ParamId {
            $($(#[$doc])* $variant,)*
        }

        /// Number of parameters.
        pub const N_PARAMS: usize = [$(ParamId::$variant),*].len();

        static INFO: [ParamInfo; N_PARAMS] = [
            $(p($id, $name, $unit, $min, $max, $default, $kind),)*
        ];

        /// How many smoothed values of the synth each parameter drives, by index.
        const SMOOTHED: [usize; N_PARAMS] = [$($smoothed),*];

        impl ParamId {
            /// Every parameter in index order, for hosts that enumerate them.
            pub const ALL: [ParamId; N_PARAMS] = [$(ParamId::$variant),*];
        }
    };
}

/// How a parameter's range should be presented and quantised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamKind {
    /// A continuous value, smoothed inside the DSP.
    Continuous {
        /// The value at the slider's middle for skewed (logarithmic-feeling) ranges such as
        /// frequencies and times; `None` means linear.
        skew_center: Option<f32>,
    },
    /// An integer step value (octaves, semitones, voice count); targets are rounded.
    Stepped,
    /// One of the named options; the value is the index (rounded).
    Choice(&'static [&'static str]),
    /// Off (0) or on (1); targets are rounded.
    Toggle,
}

/// Static description of one parameter, enough for a host to build its parameter list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamInfo {
    /// Stable identifier for host automation and presets; never renamed.
    pub id: &'static str,
    /// Human-readable name.
    pub name: &'static str,
    /// Display suffix of the plain value (" Hz", " ms", " dB", " st", " ct", or "" for
    /// fractions 0..1 and choices, which a host may show as a percentage or a name).
    pub unit: &'static str,
    /// Smallest plain value.
    pub min: f32,
    /// Largest plain value.
    pub max: f32,
    /// Value of the default patch.
    pub default: f32,
    /// Presentation and quantisation.
    pub kind: ParamKind,
}

/// Oscillator waveform names, in index order.
pub const OSC_WAVES: &[&str] = &["Saw", "Pulse", "Triangle", "Sine"];
/// Filter mode names, in index order.
pub const FILTER_MODES: &[&str] = &["Low-pass", "Band-pass", "High-pass"];
/// LFO waveform names, in index order.
pub const LFO_WAVES: &[&str] = &["Sine", "Triangle", "Square", "Saw", "Sample & Hold"];

const fn lin() -> ParamKind {
    ParamKind::Continuous { skew_center: None }
}
const fn skew(c: f32) -> ParamKind {
    ParamKind::Continuous {
        skew_center: Some(c),
    }
}
const fn p(
    id: &'static str,
    name: &'static str,
    unit: &'static str,
    min: f32,
    max: f32,
    default: f32,
    kind: ParamKind,
) -> ParamInfo {
    ParamInfo {
        id,
        name,
        unit,
        min,
        max,
        default,
        kind,
    }
}

params! {
    // Each oscillator's waveform drives one crossfade weight per wave, and its octave entry
    // carries the oscillator's tuning (octave, semitone and fine summed into one smoothed value).
    /// Oscillator 1 waveform (saw, pulse, triangle, sine).
    Osc1Wave: "osc1_wave", "Osc 1 Waveform", "", 0.0, 3.0, 0.0, ParamKind::Choice(OSC_WAVES); smoothed 4;
    /// Oscillator 1 octave shift.
    Osc1Octave: "osc1_octave", "Osc 1 Octave", "", -3.0, 3.0, 0.0, ParamKind::Stepped; smoothed 1;
    /// Oscillator 1 semitone shift.
    Osc1Semitone: "osc1_semitone", "Osc 1 Semitone", " st", -12.0, 12.0, 0.0, ParamKind::Stepped; smoothed 0;
    /// Oscillator 1 fine tune in cents.
    Osc1Fine: "osc1_fine", "Osc 1 Fine", " ct", -100.0, 100.0, 0.0, lin(); smoothed 0;
    /// Oscillator 1 pulse width (pulse wave only).
    Osc1PulseWidth: "osc1_pw", "Osc 1 Pulse Width", "", 0.05, 0.95, 0.5, lin(); smoothed 1;
    /// Oscillator 2 waveform.
    Osc2Wave: "osc2_wave", "Osc 2 Waveform", "", 0.0, 3.0, 0.0, ParamKind::Choice(OSC_WAVES); smoothed 4;
    /// Oscillator 2 octave shift.
    Osc2Octave: "osc2_octave", "Osc 2 Octave", "", -3.0, 3.0, 0.0, ParamKind::Stepped; smoothed 1;
    /// Oscillator 2 semitone shift.
    Osc2Semitone: "osc2_semitone", "Osc 2 Semitone", " st", -12.0, 12.0, 0.0, ParamKind::Stepped; smoothed 0;
    /// Oscillator 2 fine tune in cents.
    Osc2Fine: "osc2_fine", "Osc 2 Fine", " ct", -100.0, 100.0, 7.0, lin(); smoothed 0;
    /// Oscillator 2 pulse width.
    Osc2PulseWidth: "osc2_pw", "Osc 2 Pulse Width", "", 0.05, 0.95, 0.5, lin(); smoothed 1;
    /// Balance between oscillator 1 (0) and oscillator 2 (1).
    OscMix: "osc_mix", "Osc Mix", "", 0.0, 1.0, 0.5, lin(); smoothed 1;
    /// Level of the square sub oscillator one octave below oscillator 1.
    SubLevel: "sub_level", "Sub Level", "", 0.0, 1.0, 0.0, lin(); smoothed 1;
    /// Level of the white noise source.
    NoiseLevel: "noise_level", "Noise Level", "", 0.0, 1.0, 0.0, lin(); smoothed 1;
    /// Filter response: low-pass, band-pass or high-pass.
    FilterMode: "filter_mode", "Filter Mode", "", 0.0, 2.0, 0.0, ParamKind::Choice(FILTER_MODES); smoothed 3;
    /// Filter cutoff frequency before key tracking, envelope and LFO.
    Cutoff: "cutoff", "Cutoff", " Hz", 20.0, 20000.0, 3000.0, skew(630.0); smoothed 1;
    /// Filter resonance; 1 self-oscillates.
    Resonance: "resonance", "Resonance", "", 0.0, 1.0, 0.25, lin(); smoothed 1;
    /// How far the filter envelope moves the cutoff, in semitones.
    FilterEnvAmount: "filter_env_amount", "Filter Env Amount", " st", -96.0, 96.0, 24.0, lin(); smoothed 1;
    /// How much the cutoff follows the played note (1 = one octave per octave).
    KeyTracking: "key_tracking", "Key Tracking", "", 0.0, 1.0, 0.5, lin(); smoothed 1;
    /// Filter envelope attack time.
    FilterAttack: "filter_attack", "Filter Attack", " ms", 1.0, 10000.0, 5.0, skew(100.0); smoothed 0;
    /// Filter envelope decay time.
    FilterDecay: "filter_decay", "Filter Decay", " ms", 1.0, 10000.0, 400.0, skew(100.0); smoothed 0;
    /// Filter envelope sustain level.
    FilterSustain: "filter_sustain", "Filter Sustain", "", 0.0, 1.0, 0.3, lin(); smoothed 1;
    /// Filter envelope release time.
    FilterRelease: "filter_release", "Filter Release", " ms", 1.0, 10000.0, 300.0, skew(100.0); smoothed 0;
    /// Amplitude envelope attack time.
    AmpAttack: "amp_attack", "Amp Attack", " ms", 1.0, 10000.0, 5.0, skew(100.0); smoothed 0;
    /// Amplitude envelope decay time.
    AmpDecay: "amp_decay", "Amp Decay", " ms", 1.0, 10000.0, 300.0, skew(100.0); smoothed 0;
    /// Amplitude envelope sustain level.
    AmpSustain: "amp_sustain", "Amp Sustain", "", 0.0, 1.0, 0.7, lin(); smoothed 1;
    /// Amplitude envelope release time.
    AmpRelease: "amp_release", "Amp Release", " ms", 1.0, 10000.0, 300.0, skew(100.0); smoothed 0;
    /// LFO rate.
    LfoRate: "lfo_rate", "LFO Rate", " Hz", 0.05, 40.0, 5.0, skew(2.0); smoothed 1;
    /// LFO waveform (sine, triangle, square, saw, sample and hold).
    LfoWave: "lfo_wave", "LFO Waveform", "", 0.0, 4.0, 0.0, ParamKind::Choice(LFO_WAVES); smoothed 0;
    /// LFO depth to pitch at full mod wheel, in semitones.
    LfoToPitch: "lfo_to_pitch", "LFO to Pitch", " st", 0.0, 12.0, 0.3, skew(1.0); smoothed 1;
    /// LFO depth to cutoff at full mod wheel, in semitones.
    LfoToCutoff: "lfo_to_cutoff", "LFO to Cutoff", " st", 0.0, 48.0, 0.0, lin(); smoothed 1;
    /// Portamento time from the previous note's pitch.
    Glide: "glide", "Glide", " ms", 0.0, 5000.0, 0.0, skew(300.0); smoothed 0;
    /// Number of voices that may sound at once.
    Polyphony: "polyphony", "Polyphony", "", 1.0, 32.0, 16.0, ParamKind::Stepped; smoothed 0;
    /// Level of the stereo input (summed to mono) fed into every sounding voice before its
    /// filter: the keyboard plays the input through the filter and amplifier, as on a
    /// Minimoog's external input, so it is silent while no note sounds.
    InputLevel: "input_level", "Input Level", "", 0.0, 1.0, 0.0, lin(); smoothed 1;
    /// Output gain in dB.
    MasterGain: "master_gain", "Master Gain", " dB", -60.0, 6.0, -6.0, lin(); smoothed 1;
    /// Crossfades (over about 10 ms) from the synth's output to the dry stereo input, or to
    /// silence when there is none; the voices keep running so switching back is seamless.
    Bypass: "bypass", "Bypass", "", 0.0, 1.0, 0.0, ParamKind::Toggle; smoothed 1;
}

/// Where each parameter's smoothed values start in the synth's array of smoothed values: the
/// `smoothed` column summed in table order.
const FIRST_SMOOTHER: [usize; N_PARAMS] = {
    let mut first = [0; N_PARAMS];
    let mut i = 1;
    while i < N_PARAMS {
        first[i] = first[i - 1] + SMOOTHED[i - 1];
        i += 1;
    }
    first
};

/// How many smoothed values the parameters drive (the synth's controllers follow them).
pub(crate) const PARAM_SMOOTHERS: usize = FIRST_SMOOTHER[N_PARAMS - 1] + SMOOTHED[N_PARAMS - 1];

impl ParamId {
    /// Index of this parameter's first smoothed value in the synth, from the table's
    /// `smoothed` column (meaningful for the parameters whose count there is not 0).
    pub(crate) const fn first_smoother(self) -> usize {
        FIRST_SMOOTHER[self as usize]
    }

    /// Dense index, used for arrays of targets and on the wire.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Inverse of [`ParamId::index`]; `None` for indices from untrusted data that name no
    /// parameter.
    pub fn from_index(i: usize) -> Option<ParamId> {
        Self::ALL.get(i).copied()
    }

    /// The static description: range, default, unit and kind.
    pub fn info(self) -> &'static ParamInfo {
        &INFO[self.index()]
    }

    /// Clamps (and for stepped kinds rounds) a plain value into this parameter's range, so
    /// every target the DSP stores is one the table allows; `None` for NaN, which has no
    /// meaningful nearest value.
    pub fn sanitize(self, value: f32) -> Option<f32> {
        if value.is_nan() {
            return None;
        }
        let info = self.info();
        let v = value.clamp(info.min, info.max);
        let v = match info.kind {
            ParamKind::Continuous { .. } => v,
            ParamKind::Stepped | ParamKind::Choice(_) | ParamKind::Toggle => v.round(),
        };
        // One spelling of zero, so equal targets are equal bits (snapshots compare bits).
        Some(if v == 0.0 { 0.0 } else { v })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let mut ids = std::collections::BTreeSet::new();
        for (i, id) in ParamId::ALL.iter().enumerate() {
            assert_eq!(id.index(), i);
            assert_eq!(ParamId::from_index(i), Some(*id));
            let info = id.info();
            assert!(ids.insert(info.id), "duplicate id {}", info.id);
            assert!(info.min < info.max, "{}", info.id);
            assert!(
                info.default >= info.min && info.default <= info.max,
                "{}",
                info.id
            );
            assert_eq!(id.sanitize(info.default), Some(info.default), "{}", info.id);
            if let ParamKind::Choice(names) = info.kind {
                assert_eq!(info.min, 0.0);
                assert_eq!(info.max as usize + 1, names.len(), "{}", info.id);
            }
            if let ParamKind::Continuous {
                skew_center: Some(c),
            } = info.kind
            {
                assert!(c > info.min && c < info.max, "{}", info.id);
            }
        }
        assert_eq!(ParamId::from_index(N_PARAMS), None);
    }
}
