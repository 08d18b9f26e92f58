//! Hosts that render faster than real time without saying so.
//!
//! pedalboard and DawDreamer call `process()` in realtime mode as fast as they can: nobody
//! listens, so the realtime deadline (and its fallback) only makes their renders differ from
//! run to run. The audio thread tells them from the call pace: a host that plays to a sound
//! card calls at the audio clock, ahead of it by at most what it buffers; a render runs
//! further and further ahead. While the host is ahead of the audio clock by more than
//! [`FAST_AHEAD_BLOCKS`] blocks and [`FAST_AHEAD_SLACK_NS`], the engine behaves as offline
//! (`ProcessMode::Offline`: exact frames, waits bounded by `Tuning::offline_wait_bound`, no
//! worker left a ring behind). A realtime host that bursts ahead (buffer prefill) loses that
//! lead as soon as it waits, so it is back on the realtime deadline within a few blocks.

use super::ProcessMode;

/// How many blocks ahead of the audio clock a host must run to count as rendering.
const FAST_AHEAD_BLOCKS: u64 = 2;

/// Plus this much, so a realtime host's scheduling jitter never counts.
const FAST_AHEAD_SLACK_NS: u64 = 2_000_000;

/// The audio thread's measure of the host's call pace against the audio clock. No allocation,
/// no system call: it reads the entry time `process()` already took.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Pace {
    /// When the previous call began, and how long its block lasts at the sample rate.
    last: Option<(u64, u64)>,
    /// How far the audio the host has asked for runs ahead of the wall clock, in ns: each call
    /// adds its block's duration, the wall time between calls drains it, never below zero.
    ahead_ns: u64,
}

impl Pace {
    /// Notes a call at `now` (ns) for `frames` frames and returns the mode the block gets: the
    /// host's, or offline for a realtime host that runs ahead of the audio clock.
    pub fn observe(
        &mut self,
        now: u64,
        frames: usize,
        sample_rate: f32,
        host: ProcessMode,
    ) -> ProcessMode {
        let block_ns = (frames as f64 / sample_rate as f64 * 1e9) as u64;
        if let Some((last_ns, last_block_ns)) = self.last {
            let elapsed = now.saturating_sub(last_ns);
            self.ahead_ns = (self.ahead_ns + last_block_ns).saturating_sub(elapsed);
        }
        self.last = Some((now, block_ns));
        let fast = self.ahead_ns > FAST_AHEAD_BLOCKS * block_ns + FAST_AHEAD_SLACK_NS;
        if fast {
            ProcessMode::Offline
        } else {
            host
        }
    }
}
