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
//!
//! Logging never blocks the thread that logs. The supervisor logs every failover as it handles
//! it, and a host whose stderr is a pipe nobody drains (a full pipe blocks `write`) must not
//! stall detection or a rebuild. So a line is formatted on the calling thread and handed over a
//! bounded channel to one writer thread (`tandem-log`), which does the blocking writes; when the
//! channel is full, lines are dropped and counted, and the writer says how many once it can
//! write again. The writer thread lives as long as the process, like the logger itself.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use log::{LevelFilter, Log, Metadata, Record};

/// Environment variable with the log level.
pub const LEVEL_ENV: &str = "TANDEM_LOG";
/// Environment variable with the log target (nice-plug's).
pub const TARGET_ENV: &str = "NICE_LOG";

/// Lines waiting for the writer thread; past this, new lines are dropped and counted.
const BACKLOG: usize = 1024;

enum Sink {
    Stderr,
    File(File),
}

impl Sink {
    /// Blocking write of one whole line (one `write` call where the line fits, so lines from
    /// several processes sharing the sink do not interleave mid-line).
    fn write_line(&mut self, line: &str) {
        let _ = match self {
            Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
            Sink::File(file) => file.write_all(line.as_bytes()),
        };
    }
}

struct Logger {
    lines: Sender<String>,
    /// Lines dropped because the writer was behind (its sink blocked).
    dropped: AtomicU64,
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
        if let Err(TrySendError::Full(_)) = self.lines.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines are written by the writer thread as they come; there is nothing buffered here.
    fn flush(&self) {}
}

/// The writer thread's loop: writes every line, and first says how many were dropped.
fn write_lines(lines: Receiver<String>, mut sink: Sink, logger: &Logger) {
    for line in lines {
        let dropped = logger.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            sink.write_line(&format!(
                "[WARN tandem::logging] {dropped} log lines dropped: the log output was blocked\n"
            ));
        }
        sink.write_line(&line);
    }
}

/// Lets one line of a kind through per interval and counts the ones it holds back, so a fault
/// that repeats every block (an xrun under overload) costs a line a second, not thousands.
#[derive(Debug)]
pub(crate) struct RateLimit {
    interval_ns: u64,
    next_ns: u64,
    held: Held,
}

/// What a [`RateLimit`] held back since the line it last let through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Held {
    /// Lines held back.
    pub count: u64,
    /// The sum of their amounts (frames, for xruns).
    pub amount: u64,
}

impl RateLimit {
    /// At most one line per `interval`.
    pub(crate) fn new(interval: std::time::Duration) -> RateLimit {
        RateLimit {
            interval_ns: interval.as_nanos() as u64,
            next_ns: 0,
            held: Held::default(),
        }
    }

    /// Whether a line about something of `amount` may be written at `now_ns` (monotonic); if so,
    /// what was held back before it.
    pub(crate) fn allow(&mut self, now_ns: u64, amount: u64) -> Option<Held> {
        if now_ns < self.next_ns {
            self.held.count += 1;
            self.held.amount += amount;
            return None;
        }
        self.next_ns = now_ns.saturating_add(self.interval_ns);
        Some(std::mem::take(&mut self.held))
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

/// Installs the logger once per process, with its writer thread. Returns whether this call
/// installed it.
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
            .map(Sink::File)
            .unwrap_or(Sink::Stderr),
        _ => Sink::Stderr,
    };
    static LOGGER: OnceLock<Logger> = OnceLock::new();
    let mut receiver = None;
    let logger = LOGGER.get_or_init(|| {
        let (lines, rx) = crossbeam_channel::bounded(BACKLOG);
        receiver = Some(rx);
        Logger {
            lines,
            dropped: AtomicU64::new(0),
        }
    });
    let Some(rx) = receiver else {
        return false;
    };
    let writer = std::thread::Builder::new()
        .name("tandem-log".into())
        .spawn(move || write_lines(rx, sink, logger));
    // Without the writer nothing would be written: then leave the host's logger alone.
    let installed = writer.is_ok() && log::set_logger(logger).is_ok();
    if installed {
        log::set_max_level(level);
    }
    installed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_lets_one_line_through_per_interval_and_counts_the_rest() {
        let mut limit = RateLimit::new(std::time::Duration::from_secs(1));
        assert_eq!(limit.allow(5, 64), Some(Held::default()));
        for i in 1..100u64 {
            assert_eq!(limit.allow(5 + i * 1_000_000, 64), None);
        }
        let held = Held {
            count: 99,
            amount: 99 * 64,
        };
        assert_eq!(limit.allow(1_000_000_005, 64), Some(held));
        assert_eq!(limit.allow(1_000_000_006, 64), None);
    }

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level(" Debug "), Some(LevelFilter::Debug));
        assert_eq!(parse_level("warning"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("loud"), None);
    }
}
