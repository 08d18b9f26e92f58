//! A CPU budget the supervisor enforces, measured against the twin.
//!
//! `RLIMIT_RTTIME` stops a real-time worker that runs 2 s without blocking, but a hostile
//! worker can reset the kernel's count with a 1 ns sleep now and then and keep a core to itself
//! while it renders every chunk on time, so neither the hang check nor the digests see anything.
//! Twins do identical work on identical input, so the honest one is the measure: once a second,
//! with both workers verified throughout and caught up at both ends of the window, a worker whose own CPU time (`/proc/<pid>/schedstat`,
//! which it cannot lie about) exceeds [`TWIN_FACTOR`] times its twin's plus [`SLACK`] of the
//! window is evicted (`EvictReason::CpuBudget`). An honest worker never comes near that: a
//! starved one has less CPU than its twin, not more, and both render the same chunks.
//!
//! Eco has no twin, but each audit and each hedge brings a measure: the standby's CPU time per
//! chunk from its call to its verification (a restore and a replay, rendered back to back). At
//! the end of an audit, or of a hedge the late active caught up with, the active worker's CPU
//! time since the last such end may not exceed [`TWIN_FACTOR`] times that per chunk for the
//! chunks it rendered, plus [`SLACK`] of the window (`Supervisor::audit_cpu`). A hog is late
//! often, so its hedges judge it well before the next audit. The standby's time is read once
//! it is off its core (up to the hang timeout): the kernel brings a running process's CPU time
//! up to date only at a tick, and a measure a tick short made an honest active on a loaded
//! machine look like a hog (`engine_eco`'s hang trials beside a busy loop, 2 runs in 10).

use super::starvation::Sched;
use super::Supervisor;
use crate::engine::events::EvictReason;

/// How often the two workers' CPU times are compared.
const WINDOW_NS: u64 = 1_000_000_000;
/// A worker may use this many times its twin's CPU time...
const TWIN_FACTOR: u64 = 3;
/// ...plus this fraction (1/N) of the window.
const SLACK: u64 = 4;
/// Behind for longer than this, a worker is not caught up (rendering a chunk takes far less).
const LAG_NS: u64 = 10_000_000;

/// Eco: a worker's CPU time and chunks rendered at a mark (an audit's end, or the standby's
/// call).
#[derive(Clone, Copy, Debug)]
pub(super) struct CpuMark {
    at: u64,
    epoch: u32,
    ran_ns: u64,
    chunks: u64,
    /// Running or about to: the kernel brings a process's CPU time up to date only at a tick
    /// or when it leaves its core, so `ran_ns` may be up to a tick short (4 ms at 250 Hz, more
    /// than a dozen chunks of a debug build, hundreds of a release one).
    runnable: bool,
}

impl CpuMark {
    /// The worker in `slot` now; `None` if there is none or `/proc` does not say.
    fn of(sup: &Supervisor, slot: usize, now: u64) -> Option<CpuMark> {
        let w = sup.workers[slot].as_ref()?;
        let sched = Sched::of(w.process.pid())?;
        Some(CpuMark {
            at: now,
            epoch: w.epoch,
            ran_ns: sched.ran_ns,
            chunks: w.progress.map_or(w.floor_chunks, |p| p.chunks_done),
            runnable: sched.runnable(),
        })
    }
}

/// What [`Supervisor::audit_cpu`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CpuVerdict {
    /// Within its budget, or nothing to judge it by.
    Within,
    /// Evicted for its CPU.
    Evicted,
    /// The standby is on a core, its CPU time perhaps a tick short: a measure that low per
    /// chunk would make an honest active look like a hog, so ask again on a later pass.
    NotYet,
}

/// Both workers' CPU times at the start of a window.
#[derive(Clone, Copy, Debug)]
pub(super) struct CpuWindow {
    at: u64,
    epochs: [u32; 2],
    ran_ns: [u64; 2],
}

impl Supervisor {
    /// Compares the two verified workers' CPU use once a window and evicts one that used far
    /// more than its twin.
    pub(super) fn check_cpu_budget(&mut self, now: u64) {
        if self
            .cpu_window
            .is_some_and(|w| now.saturating_sub(w.at) < WINDOW_NS)
        {
            return;
        }
        let (Some(a), Some(b)) = (&self.workers[0], &self.workers[1]) else {
            self.cpu_window = None;
            return;
        };
        // Judge only windows both workers begin and end caught up: then both rendered the same
        // chunks in between and did the same work (a starved or outrun worker is behind).
        let lagging = |w: &super::Worker| {
            w.behind_since
                .is_some_and(|s| now.saturating_sub(s) > LAG_NS)
        };
        if !(a.verified && b.verified) || lagging(a) || lagging(b) {
            self.cpu_window = None;
            return;
        }
        let epochs = [a.epoch, b.epoch];
        let (Some(sa), Some(sb)) = (Sched::of(a.process.pid()), Sched::of(b.process.pid())) else {
            self.cpu_window = None;
            return;
        };
        let sample = CpuWindow {
            at: now,
            epochs,
            ran_ns: [sa.ran_ns, sb.ran_ns],
        };
        let previous = self.cpu_window.replace(sample);
        let Some(start) = previous.filter(|p| p.epochs == epochs) else {
            return;
        };
        let window = now.saturating_sub(start.at);
        let used = [0, 1].map(|s| sample.ran_ns[s].saturating_sub(start.ran_ns[s]));
        for slot in 0..2 {
            if used[slot] > used[1 - slot] * TWIN_FACTOR + window / SLACK {
                self.cpu_window = None;
                return self.evict(slot, EvictReason::CpuBudget, now);
            }
        }
    }

    /// Eco: notes the standby's CPU time as it is called into `slot` for an audit or a hedge.
    pub(super) fn mark_standby_cpu(&mut self, slot: usize, now: u64) {
        self.standby_cpu = CpuMark::of(self, slot, now);
    }

    /// Eco, an audit's or a hedge's standby in `standby` verified: judges the CPU the active
    /// worker in `active` used since the last audit's or hedge's end against the standby's cost
    /// per chunk (module doc). While the standby is on a core its measure waits
    /// ([`CpuVerdict::NotYet`]) if `may_wait`.
    pub(super) fn audit_cpu(
        &mut self,
        active: usize,
        standby: usize,
        now: u64,
        may_wait: bool,
    ) -> CpuVerdict {
        let s1 = CpuMark::of(self, standby, now);
        if may_wait && s1.is_some_and(|s1| s1.runnable) && self.standby_cpu.is_some() {
            return CpuVerdict::NotYet;
        }
        let (Some(s0), Some(s1)) = (self.standby_cpu.take(), s1) else {
            return CpuVerdict::Within;
        };
        let Some(a1) = CpuMark::of(self, active, now) else {
            return CpuVerdict::Within;
        };
        let a0 = self
            .active_cpu
            .replace(a1)
            .filter(|a0| a0.epoch == a1.epoch);
        let (Some(a0), true) = (a0, s0.epoch == s1.epoch) else {
            return CpuVerdict::Within;
        };
        let replayed = s1.chunks.saturating_sub(s0.chunks).max(1);
        let per_chunk = s1.ran_ns.saturating_sub(s0.ran_ns) / replayed;
        let rendered = a1.chunks.saturating_sub(a0.chunks);
        let used = a1.ran_ns.saturating_sub(a0.ran_ns);
        let window = now.saturating_sub(a0.at);
        if used > rendered * per_chunk * TWIN_FACTOR + window / SLACK {
            self.active_cpu = None;
            self.evict(active, EvictReason::CpuBudget, now);
            return CpuVerdict::Evicted;
        }
        CpuVerdict::Within
    }
}
