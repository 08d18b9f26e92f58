//! The four benchmarks' results as the report reads them, with the lookups its tables, plots
//! and goals share.

use crate::bench::schema::{
    BenchFile, Failover, Mode, Overhead, OverheadRecord, Realtime, Scale, ScaleResult, Scenario,
    FAILOVER_ECO,
};
use anyhow::Result;
use std::path::Path;

/// The benchmarks' JSON files, read.
pub struct Data {
    /// `bench failover`.
    pub failover: Failover,
    /// `bench failover --protection eco` (`failover-eco.json`), when it ran.
    pub failover_eco: Option<Failover>,
    /// `bench overhead`.
    pub overhead: Overhead,
    /// `bench realtime`.
    pub realtime: Realtime,
    /// `bench scale`.
    pub scale: Scale,
}

impl Data {
    /// Reads every file from `dir`.
    pub fn load(dir: &Path) -> Result<Data> {
        Ok(Data {
            failover: Failover::read(dir)?,
            failover_eco: Failover::read_as(dir, FAILOVER_ECO).ok(),
            overhead: Overhead::read(dir)?,
            realtime: Realtime::read(dir)?,
            scale: Scale::read(dir)?,
        })
    }

    /// `bench overhead`'s record for `mode` at `block` frames.
    pub fn overhead(&self, mode: Mode, block: usize) -> Option<&OverheadRecord> {
        self.overhead
            .records
            .iter()
            .find(|r| r.mode == mode && r.block == block)
    }

    /// `bench scale`'s result with `instances` instances.
    pub fn scale(&self, instances: usize) -> Option<&ScaleResult> {
        self.scale.results.iter().find(|r| r.instances == instances)
    }

    /// `bench realtime`'s scenarios.
    pub fn scenarios(&self) -> &[Scenario] {
        &self.realtime.scenarios
    }

    /// The samples `field` of the realtime scenarios that match `pick`, pooled.
    pub fn pooled(
        &self,
        field: fn(&Scenario) -> &[f64],
        pick: impl Fn(&Scenario) -> bool,
    ) -> Vec<f64> {
        self.scenarios()
            .iter()
            .filter(|s| pick(s))
            .flat_map(|s| field(s).iter().copied())
            .collect()
    }
}

/// Every detection sample of a realtime scenario.
pub fn detection(s: &Scenario) -> &[f64] {
    &s.detection_us_samples
}

/// Every rebuild sample of a realtime scenario.
pub fn rebuild(s: &Scenario) -> &[f64] {
    &s.rebuild_ms_samples
}

/// Every kill-to-pidfd-readable sample of a realtime scenario.
pub fn exit_seen(s: &Scenario) -> &[f64] {
    &s.exit_seen_us_samples
}
