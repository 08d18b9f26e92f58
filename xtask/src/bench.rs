//! `cargo xtask bench NAME`: benchmarks that print a table and write `target/bench/NAME.json`.
//!
//! Figures are distributions over many trials (p50/p95/p99/max) measured in one run, so ratios
//! hold on a noisy shared machine. None of this runs in `cargo test`.

mod baselines;
mod bounce;
mod failover;
pub mod host;
mod overhead;
mod poison;
mod realtime;
mod report;
mod sandbox;
mod scale;
pub mod schema;
mod served_check;
mod soak;

use anyhow::{bail, Context, Result};
use schema::Quantiles;

const USAGE: &str = "Usage: cargo xtask bench NAME [options]
  bounce [--seconds S] [--block N]                 long dense offline bounce (default 600 s)
  failover [--kills N] [--block N] [--latency N] [--no-spare] [--protection eco]
            [--kinds sigstop,loop,...] [--checkpoint-frames N]
                                                   detection, switch, rebuild under faults
  overhead [--seconds S] [--rounds R]              CPU and audio-thread cost, five modes
  poison [--trials N] [--block N] [--latency N]    audible gap of a note that kills every worker
  realtime [--seconds N]                           xruns on a period clock, pressure, kills
                                                   (kills in Lockstep and in Eco)
  scale [--seconds S] [--counts N,..] [--pressure T] 1/4/16/32 instances: spawn, memory, CPU
  served-check [--chunks N]                        the audio thread's check of what it serves, per chunk
  soak [--seconds S] [--seed N] [--block N] [--latency-blocks K]
       [--protection lockstep|eco] [--checkpoint-frames N]
                                                   random faults of every kind, every frame checked
  report [--quick]                                 all of the above, docs/PERFORMANCE.md
  sandbox [TRIALS] [REGION_MIB]                    the sandbox's cost on worker start-up";

/// Dispatches `bench NAME [options]`.
pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("bounce") => bounce::run(&args[1..]),
        Some("failover") => failover::run(&args[1..]),
        Some("overhead") => overhead::run(&args[1..]),
        Some("poison") => poison::run(&args[1..]),
        Some("realtime") => realtime::run(&args[1..]),
        Some("scale") => scale::run(&args[1..]),
        Some("report") => report::run(&args[1..]),
        Some("sandbox") => sandbox::run(&args[1..]),
        Some("served-check") => served_check::run(&args[1..]),
        Some("soak") => soak::run(&args[1..]),
        // Not a benchmark: the children of the baselines (`bench/baselines.rs`).
        Some(baselines::CHILD_COMMAND) => baselines::child(&args[1..]),
        _ => bail!("{USAGE}"),
    }
}

/// A distribution of samples, summarised as the figures we publish.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Sorted samples.
    samples: Vec<f64>,
}

impl Summary {
    /// Summarises `samples` (any order).
    pub fn new(mut samples: Vec<f64>) -> Summary {
        samples.sort_by(f64::total_cmp);
        Summary { samples }
    }

    /// The `q` quantile (nearest rank), or NaN for no samples.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.samples.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.samples.len() as f64).ceil() as usize).clamp(1, self.samples.len());
        self.samples[rank - 1]
    }

    /// Number of samples.
    pub fn count(&self) -> usize {
        self.samples.len()
    }

    /// The published figures: p50, p95, p99, max and the count.
    pub fn quantiles(&self) -> Quantiles {
        Quantiles {
            p50: self.quantile(0.50),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
            max: self.quantile(1.0),
            n: self.count(),
        }
    }

    /// One table row: name, unit, p50, p95, p99, max ([`Quantiles::row`]).
    pub fn row(&self, name: &str, unit: &str) -> String {
        self.quantiles().row(name, unit)
    }
}

/// The table header matching [`Quantiles::row`] (and so [`Summary::row`]).
pub fn header() -> String {
    format!(
        "{:<24} {:>10} {:>10} {:>10} {:>10}",
        "figure", "p50", "p95", "p99", "max"
    )
}

/// The number after `name`, or `default` without the flag.
pub fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T> {
    Ok(optional_flag(args, name)?.unwrap_or(default))
}

/// The number after `name`, if the flag is given.
pub fn optional_flag<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .map(Some)
            .with_context(|| format!("{name} needs a number")),
    }
}
