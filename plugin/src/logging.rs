//! The plugin's logger: one line per message on stderr, or appended to a file.
//!
//! Tandem and its engine log through the `log` crate (failovers, rebuilds, refused states,
//! activation failures), never from the audio thread. nice-plug logs through `tracing`; with no
//! tracing subscriber installed, the `tracing/log` feature forwards those messages here too, so
//! everything goes to one place.
//!
//! Where: `NICE_LOG=stderr` (the default) or `NICE_LOG=/path/to/file` (appended), the variable
//! nice-plug documents for its own logger. How much: `TANDEM_LOG=error|warn|info|debug|trace`
//! (default `info`).
//!
//! The logger lives in this library's own copy of the `log` crate, so it never collides with a
//! host's logger, even when the host is written in Rust.

use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use log::{LevelFilter, Log, Metadata, Record};

/// Environment variable with the log level.
pub const LEVEL_ENV: &str = "TANDEM_LOG";
/// Environment variable with the log target (nice-plug's).
pub const TARGET_ENV: &str = "NICE_LOG";

enum Sink {
    Stderr,
    File(Mutex<File>),
}

struct Logger {
    sink: Sink,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "[{} {}] {}\n",
            record.level(),
            record.target(),
            record.args()
        );
        match &self.sink {
            Sink::Stderr => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            Sink::File(file) => {
                if let Ok(mut file) = file.lock() {
                    let _ = file.write_all(line.as_bytes());
                }
            }
        }
    }

    fn flush(&self) {
        if let Sink::File(file) = &self.sink {
            if let Ok(mut file) = file.lock() {
                let _ = file.flush();
            }
        }
    }
}

/// Parses a level name; `None` for anything else.
fn parse_level(text: &str) -> Option<LevelFilter> {
    match text.trim().to_ascii_lowercase().as_str() {
        "off" => Some(LevelFilter::Off),
        "error" => Some(LevelFilter::Error),
        "warn" | "warning" => Some(LevelFilter::Warn),
        "info" => Some(LevelFilter::Info),
        "debug" => Some(LevelFilter::Debug),
        "trace" => Some(LevelFilter::Trace),
        _ => None,
    }
}

/// Installs the logger once per process. Returns whether this call installed it.
pub fn init() -> bool {
    let level = std::env::var(LEVEL_ENV)
        .ok()
        .and_then(|v| parse_level(&v))
        .unwrap_or(LevelFilter::Info);
    let sink = match std::env::var(TARGET_ENV) {
        Ok(target) if !target.is_empty() && target != "stderr" => File::options()
            .create(true)
            .append(true)
            .open(&target)
            .map(|f| Sink::File(Mutex::new(f)))
            .unwrap_or(Sink::Stderr),
        _ => Sink::Stderr,
    };
    static LOGGER: OnceLock<Logger> = OnceLock::new();
    let mut fresh = false;
    let logger = LOGGER.get_or_init(|| {
        fresh = true;
        Logger { sink }
    });
    let installed = fresh && log::set_logger(logger).is_ok();
    if installed {
        log::set_max_level(level);
    }
    installed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level(" Debug "), Some(LevelFilter::Debug));
        assert_eq!(parse_level("warning"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("loud"), None);
    }
}
