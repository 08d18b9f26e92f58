//! CLAP remote-controls pages: the parameters grouped as a hardware controller's eight knobs
//! would want them, one synth section per page, in signal-flow order.

use dsp::ParamId;
use nice_plug::prelude::*;

use crate::params::TandemParams;

/// A named page of eight knobs (`None`: an empty knob, to keep related controls in the same
/// place on every page).
pub type Page = (&'static str, &'static [Option<ParamId>]);

/// Sections of pages.
pub const REMOTE_CONTROLS: &[(&str, &[Page])] = {
    use ParamId::*;
    &[
        (
            "Oscillators",
            &[
                (
                    "Oscillators",
                    &[
                        Some(Osc1Wave),
                        Some(Osc1Octave),
                        Some(Osc1Semitone),
                        Some(Osc1Fine),
                        Some(Osc2Wave),
                        Some(Osc2Octave),
                        Some(Osc2Semitone),
                        Some(Osc2Fine),
                    ],
                ),
                (
                    "Mixer",
                    &[
                        Some(OscMix),
                        Some(Osc1PulseWidth),
                        Some(Osc2PulseWidth),
                        Some(SubLevel),
                        Some(NoiseLevel),
                        Some(InputLevel),
                        Some(Glide),
                        Some(MasterGain),
                    ],
                ),
            ],
        ),
        (
            "Filter",
            &[
                (
                    "Filter",
                    &[
                        Some(FilterMode),
                        Some(Cutoff),
                        Some(Resonance),
                        Some(FilterEnvAmount),
                        Some(KeyTracking),
                        Some(LfoToCutoff),
                        None,
                        None,
                    ],
                ),
                (
                    "Envelopes",
                    &[
                        Some(FilterAttack),
                        Some(FilterDecay),
                        Some(FilterSustain),
                        Some(FilterRelease),
                        Some(AmpAttack),
                        Some(AmpDecay),
                        Some(AmpSustain),
                        Some(AmpRelease),
                    ],
                ),
            ],
        ),
        (
            "Modulation",
            &[(
                "LFO and voices",
                &[
                    Some(LfoRate),
                    Some(LfoWave),
                    Some(LfoToPitch),
                    Some(LfoToCutoff),
                    Some(Polyphony),
                    Some(Glide),
                    None,
                    Some(Bypass),
                ],
            )],
        ),
    ]
};

/// Declares [`REMOTE_CONTROLS`] to the host.
pub fn pages(params: &TandemParams, context: &mut impl RemoteControlsContext) {
    for (section, pages) in REMOTE_CONTROLS {
        context.add_section(*section, |s| {
            for (page, knobs) in pages.iter() {
                s.add_page(*page, |p| {
                    for knob in knobs.iter() {
                        match knob {
                            Some(id) => params.add_to_page(*id, p),
                            None => p.add_spacer(),
                        }
                    }
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_hold_eight_knobs_and_every_sound_parameter() {
        let mut seen = Vec::new();
        for (_, pages) in REMOTE_CONTROLS {
            for (name, knobs) in pages.iter() {
                assert_eq!(knobs.len(), 8, "{name}");
                seen.extend(knobs.iter().flatten());
            }
        }
        for id in ParamId::ALL {
            assert!(seen.contains(&id), "{} is on no page", id.info().id);
        }
    }
}
