//! Value-to-text and text-to-value conversions for the host's generic UI and automation lanes.
//!
//! Hosts (and clap-validator) expect a round trip to be stable: formatting a value, parsing the
//! text and formatting the result again must give the same text. Fixed decimals per magnitude
//! are not stable on their own (9.996 formats as "10.00", which parses to 10, which formats as
//! "10.0"), so [`format_number`] picks the precision from the value the text will parse back to.

/// How many decimals a plain value of this magnitude shows: three significant digits, and none
/// past the decimal point from 100 up.
fn decimals_for(value: f32) -> usize {
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        0
    } else if magnitude >= 10.0 {
        1
    } else {
        2
    }
}

/// Formats with `decimals` places and never shows a negative zero ("-0.00" would parse to a
/// value that formats as "0.00").
fn format_fixed(value: f32, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') {
        text[1..].to_owned()
    } else {
        text
    }
}

/// Formats a plain value with about three significant digits, stable under parse-and-format.
pub fn format_number(value: f32) -> String {
    let text = format_fixed(value, decimals_for(value));
    // The rounded text may sit in the next magnitude class (9.996 -> "10.00"); format what it
    // parses back to, which is stable because rounding to fewer decimals stays in its class.
    match text.parse::<f32>() {
        Ok(rounded) if decimals_for(rounded) != decimals_for(value) => {
            format_fixed(rounded, decimals_for(rounded))
        }
        _ => text,
    }
}

/// Parses the leading number of `text`, ignoring a trailing unit ("630 Hz", "-6dB", "1.5k").
/// A `k` right after the number multiplies by 1000, so "1.2 kHz" and "1.2k" both mean 1200.
pub fn parse_number(text: &str) -> Option<f32> {
    let text = text.trim();
    let end = text
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_digit()
                || c == '.'
                || ((c == '-' || c == '+') && i == 0)
                || ((c == 'e' || c == 'E') && i > 0))
        })
        .map_or(text.len(), |(i, _)| i);
    // "1e" would fail to parse, and a unit may start with 'e'; back off until it parses.
    let (mut number, mut rest_start) = (None, end);
    for cut in (1..=end).rev() {
        if let Ok(v) = text[..cut].parse::<f32>() {
            number = Some(v);
            rest_start = cut;
            break;
        }
    }
    let number = number.filter(|v| v.is_finite())?;
    let rest = text[rest_start..].trim_start();
    if rest.starts_with('k') || rest.starts_with('K') {
        Some(number * 1000.0)
    } else {
        Some(number)
    }
}

/// Parses a choice by its name (case-insensitive) or by its index.
pub fn parse_choice(text: &str, names: &[&str]) -> Option<i32> {
    let text = text.trim();
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Some(i as i32);
    }
    let index = parse_number(text)?.round();
    (index >= 0.0 && (index as usize) < names.len()).then_some(index as i32)
}

/// Parses "on"/"off" and their usual spellings.
pub fn parse_toggle(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "enabled" | "bypassed" => Some(true),
        "off" | "false" | "no" | "0" | "disabled" | "not bypassed" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_stable_under_parse() {
        let mut x = -25_000.0f32;
        while x < 25_000.0 {
            let text = format_number(x);
            let again = format_number(parse_number(&text).unwrap());
            assert_eq!(text, again, "{x}");
            x += 0.0137 * (1.0 + x.abs() / 10.0);
        }
        for x in [9.996, 99.96, 9.9951, -9.996, -0.001, 0.0, -0.0, 99.999] {
            let text = format_number(x);
            assert_eq!(text, format_number(parse_number(&text).unwrap()), "{x}");
        }
        assert_eq!(format_number(-0.001), "0.00");
        assert_eq!(format_number(9.996), "10.0");
        assert_eq!(format_number(3000.0), "3000");
    }

    #[test]
    fn parse_number_ignores_units() {
        assert_eq!(parse_number("630 Hz"), Some(630.0));
        assert_eq!(parse_number("-6dB"), Some(-6.0));
        assert_eq!(parse_number(" +3 st "), Some(3.0));
        assert_eq!(parse_number("1.2 kHz"), Some(1200.0));
        assert_eq!(parse_number("1.5k"), Some(1500.0));
        assert_eq!(parse_number("2e3"), Some(2000.0));
        assert_eq!(parse_number("5 ms"), Some(5.0));
        assert_eq!(parse_number("Hz"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("inf"), None);
    }

    #[test]
    fn choices_parse_by_name_or_index() {
        let names = ["Saw", "Pulse", "Triangle"];
        assert_eq!(parse_choice("pulse", &names), Some(1));
        assert_eq!(parse_choice("2", &names), Some(2));
        assert_eq!(parse_choice("3", &names), None);
        assert_eq!(parse_choice("Square", &names), None);
    }

    #[test]
    fn toggles_parse() {
        assert_eq!(parse_toggle("On"), Some(true));
        assert_eq!(parse_toggle("off"), Some(false));
        assert_eq!(parse_toggle("maybe"), None);
    }
}
