//! The README's parameter table is the parameter table in code (`dsp::ParamId::ALL` and its
//! `ParamInfo`, then the plugin's protection setting): same ids, names, ranges, defaults and
//! kinds, in the same order. A parameter added, renamed or re-ranged fails here until the README
//! says the same.

use dsp::{ParamId, ParamKind};
use nice_plug::prelude::Param;
use tandem::params::{TandemParams, PROTECTION_ID};

/// The rows of the table under `## Parameters`, as written.
fn readme_rows() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("reading README.md");
    let section = readme
        .split("\n## Parameters\n")
        .nth(1)
        .expect("README.md has a `## Parameters` section");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(str::to_string)
        .collect()
}

/// The row the README should have for `id`.
fn row(id: ParamId) -> String {
    let info = id.info();
    let unit = info.unit;
    let kind = match info.kind {
        ParamKind::Continuous { skew_center: None } => "continuous".to_string(),
        ParamKind::Continuous {
            skew_center: Some(centre),
        } => format!("continuous, centre {centre}{unit}"),
        ParamKind::Stepped => "stepped".to_string(),
        ParamKind::Choice(names) => names.join(" / "),
        ParamKind::Toggle => "toggle".to_string(),
    };
    format!(
        "| `{}` | {} | {}{unit} .. {}{unit} | {}{unit} | {kind} |",
        info.id, info.name, info.min, info.max, info.default
    )
}

/// The row the README should have for the protection setting: a choice, by its index.
fn protection_row() -> String {
    let params = TandemParams::new();
    let setting = &params.protection;
    let steps = setting.step_count().expect("a choice has steps");
    let names: Vec<String> = (0..=steps)
        .map(|i| setting.normalized_value_to_string(i as f32 / steps as f32, false))
        .collect();
    let default = (setting.default_normalized_value() * steps as f32).round();
    format!(
        "| `{PROTECTION_ID}` | {} | 0 .. {steps} | {default} | {} |",
        setting.name(),
        names.join(" / ")
    )
}

#[test]
fn readme_parameter_table_is_the_code_table() {
    let mut want: Vec<String> = ParamId::ALL.into_iter().map(row).collect();
    want.push(protection_row());
    assert_eq!(
        readme_rows().join("\n"),
        want.join("\n"),
        "README.md's parameter table differs from dsp's (left: README, right: code)"
    );
}
