//! Presets: the factory sounds and the user's own, saved as small text files.
//!
//! A preset is a value for every synth parameter except Bypass (loading a sound must not switch
//! the plugin off), in the table's plain units. Factory presets are written as the few values
//! that differ from the default patch. User presets live as files in the platform's data folder
//! ([`user_dir`]), one per preset, in a format a person can read and a newer Tandem can extend:
//!
//! ```text
//! # Tandem preset
//! format = tandem-preset 1
//! name = Warm Pad
//! category = Pad
//! cutoff = 800
//! ...
//! ```
//!
//! Loading never half-applies: a file is parsed and checked completely first, and a broken or
//! foreign file gives a message naming the file and the line, changes nothing and is never
//! deleted or overwritten.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use dsp::{ParamId, N_PARAMS};

/// The first line (after comments) every preset file starts with.
pub const FORMAT_LINE: &str = "format = tandem-preset 1";
/// The file extension of user presets.
pub const EXTENSION: &str = "tandem-preset";
/// The categories factory presets are grouped in, in the order the editor lists them.
pub const CATEGORIES: &[&str] = &[
    "Bass", "Lead", "Pad", "Pluck", "Keys", "Brass", "Strings", "FX",
];
/// The category of user presets that name none.
pub const USER_CATEGORY: &str = "User";

/// One sound: a name, a group and every parameter's value.
#[derive(Clone, Debug, PartialEq)]
pub struct Preset {
    /// What the editor shows.
    pub name: String,
    /// The group it is listed in.
    pub category: String,
    /// Every parameter in plain units, indexed by `ParamId::index()`; Bypass is ignored.
    pub values: [f32; N_PARAMS],
}

/// Whether a preset sets `id`. Bypass belongs to the host, not to a sound.
pub fn in_presets(id: ParamId) -> bool {
    id != ParamId::Bypass
}

impl Preset {
    /// The default patch with `changes` applied.
    pub fn from_changes(name: &str, category: &str, changes: &[(ParamId, f32)]) -> Preset {
        let mut values = ParamId::ALL.map(|id| id.info().default);
        for &(id, v) in changes {
            values[id.index()] = v;
        }
        Preset {
            name: name.to_owned(),
            category: category.to_owned(),
            values,
        }
    }

    /// The preset as the text of a preset file.
    pub fn to_file_text(&self) -> String {
        let mut text = format!(
            "# Tandem preset\n{FORMAT_LINE}\nname = {}\ncategory = {}\n",
            one_line(&self.name),
            one_line(&self.category)
        );
        for id in ParamId::ALL.into_iter().filter(|&id| in_presets(id)) {
            let _ = writeln!(text, "{} = {}", id.info().id, self.values[id.index()]);
        }
        text
    }

    /// Parses the text of a preset file; a message for people if it is not a valid one.
    /// Parameters the file does not mention keep their defaults (files from older versions).
    pub fn from_file_text(text: &str) -> Result<Preset, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, line)| (i + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
        match lines.next() {
            Some((_, line)) if squash(line) == squash(FORMAT_LINE) => {}
            Some((n, line)) if line.starts_with("format") => {
                return Err(format!(
                    "line {n}: {line:?} is a preset format this version of Tandem does not know"
                ))
            }
            _ => {
                return Err(format!(
                    "not a Tandem preset (it does not start with \"{FORMAT_LINE}\")"
                ))
            }
        }
        let mut preset = Preset::from_changes("", USER_CATEGORY, &[]);
        for (n, line) in lines {
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!(
                    "line {n}: expected \"name = value\", found {line:?}"
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "name" => preset.name = value.to_owned(),
                "category" => preset.category = value.to_owned(),
                _ => {
                    let id = ParamId::ALL
                        .into_iter()
                        .find(|id| id.info().id == key && in_presets(*id))
                        .ok_or_else(|| format!("line {n}: unknown parameter {key:?}"))?;
                    let number: f32 = value
                        .parse()
                        .map_err(|_| format!("line {n}: {key} = {value:?} is not a number"))?;
                    let info = id.info();
                    if !(info.min..=info.max).contains(&number) {
                        return Err(format!(
                            "line {n}: {key} = {value} is outside {}..{}",
                            info.min, info.max
                        ));
                    }
                    preset.values[id.index()] = id.sanitize(number).unwrap_or(info.default);
                }
            }
        }
        if preset.name.is_empty() {
            return Err(String::from("the preset has no name line"));
        }
        Ok(preset)
    }
}

/// Lower-cased without spaces, so `format=tandem-preset 1` matches too.
fn squash(line: &str) -> String {
    line.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A name or category on one line (a newline would end the field early).
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ").trim().to_owned()
}

/// The factory presets, grouped by [`CATEGORIES`] in that order.
// One line per group of related values reads better than rustfmt's one value per line.
#[rustfmt::skip]
pub fn factory() -> Vec<Preset> {
    use ParamId::*;
    // Waveform indices (dsp::params::OSC_WAVES, LFO_WAVES, FILTER_MODES); Saw is the default.
    const PULSE: f32 = 1.0;
    const TRIANGLE: f32 = 2.0;
    const SINE: f32 = 3.0;
    const BAND_PASS: f32 = 1.0;
    const LFO_TRIANGLE: f32 = 1.0;
    const LFO_SAMPLE_HOLD: f32 = 4.0;
    let p = Preset::from_changes;
    vec![
        // Bass: mono, tight envelopes, the low end from the sub oscillator.
        p("Fat Saw Bass", "Bass", &[
            (Osc1Octave, -1.0), (Osc2Octave, -1.0), (Osc2Fine, 9.0), (SubLevel, 0.5),
            (Cutoff, 320.0), (Resonance, 0.3), (FilterEnvAmount, 36.0), (KeyTracking, 0.3),
            (FilterAttack, 1.0), (FilterDecay, 250.0), (FilterSustain, 0.2), (FilterRelease, 150.0),
            (AmpAttack, 1.0), (AmpDecay, 200.0), (AmpSustain, 0.9), (AmpRelease, 120.0),
            (LfoToPitch, 0.0), (Polyphony, 1.0), (MasterGain, -0.5),
        ]),
        p("Round Sub Bass", "Bass", &[
            (Osc1Wave, PULSE), (Osc1Octave, -1.0), (Osc2Wave, SINE), (Osc2Octave, -1.0),
            (Osc2Fine, 0.0), (OscMix, 0.4), (SubLevel, 0.7), (Cutoff, 520.0), (Resonance, 0.1),
            (FilterEnvAmount, 20.0), (FilterAttack, 1.0), (FilterDecay, 300.0),
            (FilterSustain, 0.3), (FilterRelease, 100.0), (AmpAttack, 2.0), (AmpDecay, 100.0),
            (AmpSustain, 1.0), (AmpRelease, 80.0), (LfoToPitch, 0.0), (Glide, 40.0),
            (Polyphony, 1.0), (MasterGain, -1.0),
        ]),
        p("Acid Line", "Bass", &[
            (Osc1Octave, -1.0), (OscMix, 0.0), (Cutoff, 260.0), (Resonance, 0.78),
            (FilterEnvAmount, 48.0), (KeyTracking, 0.4), (FilterAttack, 1.0),
            (FilterDecay, 180.0), (FilterSustain, 0.0), (FilterRelease, 100.0),
            (AmpAttack, 1.0), (AmpDecay, 200.0), (AmpSustain, 0.8), (AmpRelease, 60.0),
            (LfoToPitch, 0.0), (Glide, 60.0), (Polyphony, 1.0), (MasterGain, -4.5),
        ]),
        // Leads: mono with glide; the mod wheel brings in vibrato.
        p("Fifth Lead", "Lead", &[
            (Osc2Wave, PULSE), (Osc2Semitone, 7.0), (Osc2Fine, 3.0), (OscMix, 0.4),
            (Cutoff, 2400.0), (Resonance, 0.35), (FilterEnvAmount, 24.0),
            (FilterDecay, 500.0), (FilterSustain, 0.5), (AmpAttack, 2.0), (AmpDecay, 200.0),
            (AmpSustain, 0.9), (AmpRelease, 250.0), (LfoToPitch, 0.5), (Glide, 60.0),
            (Polyphony, 1.0), (MasterGain, 0.0),
        ]),
        p("Soft Sine Lead", "Lead", &[
            (Osc1Wave, SINE), (Osc2Wave, TRIANGLE), (Osc2Octave, 1.0), (Osc2Fine, 0.0),
            (OscMix, 0.3), (Cutoff, 5000.0), (Resonance, 0.0), (FilterEnvAmount, 0.0),
            (AmpAttack, 15.0), (AmpDecay, 300.0), (AmpSustain, 0.8), (AmpRelease, 400.0),
            (LfoRate, 5.5), (LfoToPitch, 0.4), (Glide, 80.0), (Polyphony, 1.0),
            (MasterGain, 4.5),
        ]),
        p("Screamer", "Lead", &[
            (Osc2Fine, 15.0), (Cutoff, 1200.0), (Resonance, 0.7), (FilterEnvAmount, 36.0),
            (FilterAttack, 5.0), (FilterDecay, 800.0), (FilterSustain, 0.6),
            (FilterRelease, 400.0), (AmpAttack, 3.0), (AmpSustain, 0.9), (AmpRelease, 300.0),
            (LfoToPitch, 0.6), (LfoToCutoff, 12.0), (Glide, 30.0), (Polyphony, 1.0),
            (MasterGain, 0.5),
        ]),
        // Pads: slow envelopes, detuned, quieter so chords stay below full scale.
        p("Warm Pad", "Pad", &[
            (Osc2Fine, 9.0), (Cutoff, 800.0), (Resonance, 0.2), (FilterEnvAmount, 12.0),
            (FilterAttack, 800.0), (FilterDecay, 2000.0), (FilterSustain, 0.6),
            (FilterRelease, 2500.0), (AmpAttack, 600.0), (AmpDecay, 1500.0), (AmpSustain, 0.8),
            (AmpRelease, 2500.0), (LfoRate, 0.3), (LfoWave, LFO_TRIANGLE), (LfoToPitch, 0.1),
            (LfoToCutoff, 6.0), (MasterGain, -1.5),
        ]),
        p("Glass Pad", "Pad", &[
            (Osc1Wave, TRIANGLE), (Osc2Wave, SINE), (Osc2Octave, 1.0), (Osc2Fine, 4.0),
            (NoiseLevel, 0.03), (Cutoff, 4000.0), (Resonance, 0.15), (FilterEnvAmount, 0.0),
            (AmpAttack, 1200.0), (AmpDecay, 2000.0), (AmpSustain, 0.8), (AmpRelease, 3000.0),
            (LfoToPitch, 0.15), (MasterGain, -3.0),
        ]),
        p("Dark Sweep", "Pad", &[
            (Osc1Wave, PULSE), (Osc1PulseWidth, 0.3), (Osc2Fine, 11.0), (Cutoff, 300.0),
            (Resonance, 0.5), (FilterEnvAmount, 36.0), (FilterAttack, 3000.0),
            (FilterDecay, 4000.0), (FilterSustain, 0.3), (FilterRelease, 3000.0),
            (AmpAttack, 1500.0), (AmpDecay, 1000.0), (AmpSustain, 1.0), (AmpRelease, 3000.0),
            (MasterGain, -7.0),
        ]),
        // Plucks: no sustain, the filter envelope makes the attack.
        p("Bright Pluck", "Pluck", &[
            (Osc2Wave, PULSE), (Cutoff, 400.0), (Resonance, 0.3), (FilterEnvAmount, 60.0),
            (FilterAttack, 1.0), (FilterDecay, 250.0), (FilterSustain, 0.0),
            (FilterRelease, 200.0), (AmpAttack, 1.0), (AmpDecay, 400.0), (AmpSustain, 0.0),
            (AmpRelease, 300.0), (LfoToPitch, 0.0), (MasterGain, -4.5),
        ]),
        p("Harp Pluck", "Pluck", &[
            (Osc1Wave, TRIANGLE), (Osc2Fine, 5.0), (OscMix, 0.35), (Cutoff, 900.0),
            (Resonance, 0.1), (FilterEnvAmount, 40.0), (KeyTracking, 0.8), (FilterAttack, 1.0),
            (FilterDecay, 150.0), (FilterSustain, 0.0), (FilterRelease, 300.0),
            (AmpAttack, 1.0), (AmpDecay, 900.0), (AmpSustain, 0.0), (AmpRelease, 900.0),
            (LfoToPitch, 0.0), (MasterGain, -4.0),
        ]),
        p("Muted Pluck", "Pluck", &[
            (Osc1Wave, PULSE), (Osc1PulseWidth, 0.25), (OscMix, 0.0), (Cutoff, 300.0),
            (Resonance, 0.45), (FilterEnvAmount, 36.0), (FilterAttack, 1.0),
            (FilterDecay, 90.0), (FilterSustain, 0.0), (FilterRelease, 80.0), (AmpAttack, 1.0),
            (AmpDecay, 180.0), (AmpSustain, 0.0), (AmpRelease, 150.0), (LfoToPitch, 0.0),
            (MasterGain, -6.5),
        ]),
        // Keys.
        p("Electric Piano", "Keys", &[
            (Osc1Wave, SINE), (Osc2Wave, TRIANGLE), (Osc2Octave, 1.0), (Osc2Fine, 2.0),
            (OscMix, 0.3), (Cutoff, 3000.0), (Resonance, 0.0), (FilterEnvAmount, 12.0),
            (KeyTracking, 1.0), (FilterDecay, 600.0), (AmpAttack, 2.0), (AmpDecay, 1500.0),
            (AmpSustain, 0.3), (AmpRelease, 400.0), (LfoToPitch, 0.1), (MasterGain, -2.5),
        ]),
        p("Drawbar Organ", "Keys", &[
            (Osc1Wave, SINE), (Osc2Wave, SINE), (Osc2Octave, 1.0), (Osc2Fine, 0.0),
            (SubLevel, 0.4), (Cutoff, 6000.0), (Resonance, 0.0), (FilterEnvAmount, 0.0),
            (AmpAttack, 2.0), (AmpDecay, 10.0), (AmpSustain, 1.0), (AmpRelease, 30.0),
            (LfoRate, 6.5), (LfoToPitch, 0.2), (MasterGain, -6.5),
        ]),
        p("Clav", "Keys", &[
            (Osc1Wave, PULSE), (Osc1PulseWidth, 0.15), (OscMix, 0.0), (Cutoff, 1500.0),
            (Resonance, 0.3), (FilterEnvAmount, 30.0), (KeyTracking, 1.0), (FilterAttack, 1.0),
            (FilterDecay, 200.0), (FilterSustain, 0.1), (FilterRelease, 50.0),
            (AmpAttack, 1.0), (AmpDecay, 400.0), (AmpSustain, 0.2), (AmpRelease, 60.0),
            (LfoToPitch, 0.0), (MasterGain, -4.5),
        ]),
        // Brass: a slower filter attack than the amplifier's gives the "blat".
        p("Brass Section", "Brass", &[
            (Osc2Fine, 6.0), (Cutoff, 500.0), (Resonance, 0.15), (FilterEnvAmount, 30.0),
            (FilterAttack, 60.0), (FilterDecay, 500.0), (FilterSustain, 0.5),
            (FilterRelease, 200.0), (AmpAttack, 30.0), (AmpDecay, 300.0), (AmpSustain, 0.85),
            (AmpRelease, 200.0), (LfoToPitch, 0.2), (MasterGain, 0.0),
        ]),
        p("Synth Horn", "Brass", &[
            (Osc2Wave, PULSE), (Osc2PulseWidth, 0.4), (Cutoff, 700.0), (FilterEnvAmount, 24.0),
            (FilterAttack, 90.0), (FilterDecay, 700.0), (FilterSustain, 0.4),
            (FilterRelease, 300.0), (AmpAttack, 50.0), (AmpDecay, 400.0), (AmpSustain, 0.8),
            (AmpRelease, 300.0), (LfoToPitch, 0.2), (MasterGain, -5.0),
        ]),
        p("Brass Stab", "Brass", &[
            (Osc2Fine, 12.0), (Cutoff, 600.0), (Resonance, 0.2), (FilterEnvAmount, 40.0),
            (FilterAttack, 5.0), (FilterDecay, 300.0), (FilterSustain, 0.0),
            (FilterRelease, 150.0), (AmpAttack, 2.0), (AmpDecay, 300.0), (AmpSustain, 0.0),
            (AmpRelease, 150.0), (LfoToPitch, 0.0), (MasterGain, 1.5),
        ]),
        // Strings: wide detune, slow attack, open filter.
        p("String Ensemble", "Strings", &[
            (Osc2Fine, 12.0), (Cutoff, 2500.0), (Resonance, 0.1), (FilterEnvAmount, 0.0),
            (AmpAttack, 300.0), (AmpDecay, 800.0), (AmpSustain, 0.9), (AmpRelease, 1200.0),
            (LfoRate, 5.5), (LfoToPitch, 0.3), (MasterGain, -1.5),
        ]),
        p("Slow Strings", "Strings", &[
            (Osc1Wave, PULSE), (Osc1PulseWidth, 0.4), (Osc2Fine, 10.0), (Cutoff, 1800.0),
            (FilterEnvAmount, 6.0), (FilterAttack, 1000.0), (FilterDecay, 2000.0),
            (AmpAttack, 900.0), (AmpDecay, 1000.0), (AmpSustain, 0.9), (AmpRelease, 2500.0),
            (LfoRate, 4.5), (LfoToPitch, 0.25), (MasterGain, -4.5),
        ]),
        p("Cello", "Strings", &[
            (Osc1Octave, -1.0), (Osc2Octave, -1.0), (Osc2Fine, 4.0), (Cutoff, 1200.0),
            (Resonance, 0.2), (FilterEnvAmount, 12.0), (FilterAttack, 120.0),
            (FilterDecay, 600.0), (FilterSustain, 0.6), (FilterRelease, 400.0),
            (AmpAttack, 120.0), (AmpDecay, 400.0), (AmpSustain, 0.9), (AmpRelease, 500.0),
            (LfoRate, 5.0), (LfoToPitch, 0.35), (MasterGain, -1.0),
        ]),
        // Effects.
        p("Noise Wind", "FX", &[
            (Osc1Wave, SINE), (Osc2Wave, SINE), (OscMix, 0.5), (NoiseLevel, 1.0),
            (FilterMode, BAND_PASS), (Cutoff, 900.0), (Resonance, 0.8), (FilterEnvAmount, 24.0),
            (FilterAttack, 2000.0), (FilterDecay, 3000.0), (FilterSustain, 0.4),
            (FilterRelease, 2000.0), (AmpAttack, 1500.0), (AmpSustain, 1.0),
            (AmpRelease, 2000.0), (LfoRate, 0.2), (LfoToCutoff, 24.0), (MasterGain, -4.0),
        ]),
        p("Laser Zap", "FX", &[
            (OscMix, 0.0), (Cutoff, 200.0), (Resonance, 0.9), (FilterEnvAmount, 96.0),
            (FilterAttack, 1.0), (FilterDecay, 200.0), (FilterSustain, 0.0),
            (FilterRelease, 100.0), (AmpAttack, 1.0), (AmpDecay, 300.0), (AmpSustain, 0.0),
            (AmpRelease, 100.0), (LfoToPitch, 0.0), (Glide, 120.0), (MasterGain, -4.0),
        ]),
        p("Metal Bells", "FX", &[
            (Osc1Wave, SINE), (Osc2Wave, SINE), (Osc2Octave, 1.0), (Osc2Semitone, 6.0),
            (Osc2Fine, 13.0), (Cutoff, 8000.0), (Resonance, 0.0), (FilterEnvAmount, 0.0),
            (AmpAttack, 1.0), (AmpDecay, 2500.0), (AmpSustain, 0.0), (AmpRelease, 2500.0),
            (LfoToPitch, 0.0), (MasterGain, -5.0),
        ]),
        p("Random Bleeps", "FX", &[
            (Osc1Wave, PULSE), (Osc2Wave, TRIANGLE), (Osc2Octave, 1.0), (Cutoff, 1500.0),
            (Resonance, 0.6), (FilterEnvAmount, 12.0), (AmpAttack, 1.0), (AmpSustain, 0.8),
            (LfoRate, 8.0), (LfoWave, LFO_SAMPLE_HOLD), (LfoToPitch, 12.0),
            (LfoToCutoff, 24.0), (MasterGain, -5.0),
        ]),
    ]
}

/// Where user presets live: `$XDG_DATA_HOME/Tandem/presets`, else
/// `~/.local/share/Tandem/presets`; `None` if neither variable is set.
pub fn user_dir() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("Tandem").join("presets"))
}

/// The user presets in `dir`, sorted by name, and one message per file that could not be read.
/// A missing folder is simply empty.
pub fn load_user(dir: &Path) -> (Vec<Preset>, Vec<String>) {
    let mut presets = Vec::new();
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (presets, problems);
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| Preset::from_file_text(&text));
        match parsed {
            Ok(preset) => presets.push(preset),
            Err(why) => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                problems.push(format!("{name}: {why}"));
            }
        }
    }
    presets.sort_by_key(|p| p.name.to_lowercase());
    problems.sort();
    (presets, problems)
}

/// Writes `preset` into `dir` as `<name>.tandem-preset` (created if needed), replacing a
/// preset of the same name. Written to a temporary file first, so a failure (disk full) never
/// leaves a truncated preset. Returns the file's path.
pub fn save_user(dir: &Path, preset: &Preset) -> Result<PathBuf, String> {
    let stem: String = one_line(&preset.name)
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if stem.is_empty() || stem.starts_with('.') {
        return Err(String::from("give the preset a name first"));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{stem}.{EXTENSION}"));
    let temporary = dir.join(format!(".{stem}.{EXTENSION}.part"));
    std::fs::write(&temporary, preset.to_file_text())
        .and_then(|()| std::fs::rename(&temporary, &path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            format!("cannot save {}: {e}", path.display())
        })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dsp::{Event, EventKind, Synth};

    #[test]
    fn factory_presets_are_named_grouped_and_in_range() {
        let presets = factory();
        assert!(presets.len() >= 24, "{} presets", presets.len());
        let mut names: Vec<_> = presets.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), presets.len(), "preset names must be unique");
        for category in CATEGORIES {
            let n = presets.iter().filter(|p| p.category == *category).count();
            assert!(n >= 3, "{category}: {n} presets");
        }
        for preset in &presets {
            assert!(
                CATEGORIES.contains(&preset.category.as_str()),
                "{}",
                preset.name
            );
            for id in ParamId::ALL {
                let v = preset.values[id.index()];
                assert_eq!(id.sanitize(v), Some(v), "{}: {}", preset.name, id.info().id);
            }
        }
    }

    /// Every factory preset plays a loud four-note chord, held then released: the sound must be
    /// finite, audible, and stay below full scale.
    #[test]
    fn every_factory_preset_sounds_without_clipping() {
        const RATE: f32 = 48_000.0;
        const BLOCK: usize = 256;
        let held = (1.5 * RATE) as usize;
        let total = (2.5 * RATE) as usize;
        let chord = [48u8, 55, 60, 64];
        for preset in factory() {
            let mut synth = Synth::new(RATE, BLOCK).unwrap();
            for id in ParamId::ALL {
                synth.set_param(id, preset.values[id.index()]);
            }
            synth.reset();
            let (mut peak, mut energy) = (0.0f32, 0.0f64);
            let mut l = [0.0f32; BLOCK];
            let mut r = [0.0f32; BLOCK];
            for start in (0..total).step_by(BLOCK) {
                let events: Vec<Event> = match start {
                    0 => chord
                        .iter()
                        .map(|&key| Event {
                            offset: 0,
                            kind: EventKind::NoteOn { key, velocity: 1.0 },
                        })
                        .collect(),
                    s if (s..s + BLOCK).contains(&held) => chord
                        .iter()
                        .map(|&key| Event {
                            offset: (held - s) as u32,
                            kind: EventKind::NoteOff { key },
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                synth.render(&events, None, [&mut l, &mut r]);
                for &s in l.iter().chain(&r) {
                    assert!(s.is_finite(), "{}: non-finite output", preset.name);
                    peak = peak.max(s.abs());
                    energy += f64::from(s) * f64::from(s);
                }
            }
            let rms = (energy / (2 * total) as f64).sqrt();
            // Short sounds (stabs, plucks) have a low average: judge audibility by the peak.
            assert!(
                peak > 0.1 && rms > 0.002,
                "{}: nearly silent (peak {peak:.3}, rms {rms:.4})",
                preset.name
            );
            assert!(peak < 1.0, "{}: clips (peak {peak:.3})", preset.name);
        }
    }

    #[test]
    fn a_saved_preset_loads_back_identical() {
        let dir = std::env::temp_dir().join(format!("tandem-presets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut preset = factory().remove(5);
        preset.name = String::from("My / Lead\nTwo");
        preset.category = String::from(USER_CATEGORY);
        let path = save_user(&dir, &preset).unwrap();
        assert_eq!(path.file_name().unwrap(), "My _ Lead Two.tandem-preset");
        let (loaded, problems) = load_user(&dir);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].values, preset.values);
        assert_eq!(loaded[0].name, "My / Lead Two");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn broken_and_foreign_files_get_a_clear_message_and_stay() {
        let dir = std::env::temp_dir().join(format!("tandem-broken-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let good = Preset::from_changes("Good", USER_CATEGORY, &[(ParamId::Cutoff, 500.0)]);
        save_user(&dir, &good).unwrap();
        let files = [
            (
                "foreign.tandem-preset",
                String::from("<?xml version=\"1.0\"?><preset/>"),
            ),
            (
                "future.tandem-preset",
                String::from("format = tandem-preset 9\nname = x\n"),
            ),
            (
                "bad.tandem-preset",
                good.to_file_text().replace("cutoff = 500", "cutoff = loud"),
            ),
            (
                "range.tandem-preset",
                good.to_file_text().replace("cutoff = 500", "cutoff = 1e9"),
            ),
            ("binary.tandem-preset", String::from("\u{0}\u{1}\u{2}")),
        ];
        for (name, text) in &files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let (loaded, problems) = load_user(&dir);
        assert_eq!(loaded, [good]);
        assert_eq!(problems.len(), files.len(), "{problems:?}");
        let text = problems.join("\n");
        for wanted in [
            "bad.tandem-preset: line",
            "\"loud\" is not a number",
            "foreign.tandem-preset: not a Tandem preset",
            "future.tandem-preset: line 1",
            "does not know",
            "range.tandem-preset: line",
            "outside",
        ] {
            assert!(text.contains(wanted), "{wanted:?} missing in:\n{text}");
        }
        for (name, text) in &files {
            assert_eq!(&std::fs::read_to_string(dir.join(name)).unwrap(), text);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
