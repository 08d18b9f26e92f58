//! The README's parameter table is the parameter table in code (`dsp::ParamId::ALL` and its
//! `ParamInfo`): same ids, names, ranges, defaults and kinds, in the same order. A parameter
//! added, renamed or re-ranged in `dsp` fails here until the README says the same.

use dsp::{ParamId, ParamKind};

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

#[test]
fn readme_parameter_table_is_the_code_table() {
    let want: Vec<String> = ParamId::ALL.into_iter().map(row).collect();
    assert_eq!(
        readme_rows().join("\n"),
        want.join("\n"),
        "README.md's parameter table differs from dsp's (left: README, right: code)"
    );
}
