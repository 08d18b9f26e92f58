//! Hosts that render faster than real time without saying so.
//!
//! pedalboard and DawDreamer call `process()` in realtime mode as fast as they can: nobody
//! listens, so the realtime deadline (and its fallback) only makes their renders differ from
//! run to run. The audio thread tells them from the call pace: a host that plays to a sound
//! card calls at the audio clock, ahead of it by at most what it buffers; a render runs
//! further and further ahead. While the host is ahead of the audio clock by more than
//! [`FAST_AHEAD_BLOCKS`] blocks and [`FAST_AHEAD_SLACK_NS`], the engine behaves as offline
//! (`ProcessMode::Offline`: exact frames, waits bounded by `Tuning::offline_wait_bound`, no
//! worker left a ring behind). A realtime host that got ahead once (a buffer prefill, a burst
//! that made up for a late start) and then plays at the audio clock sees that lead drain
//! ([`LEAD_DRAIN_NS`]), so it is back on the realtime deadline within seconds; one that catches
//! up in a burst after a stall first pays off the lateness ([`BEHIND_MEMORY_NS`]).

use super::ProcessMode;

/// How many blocks ahead of the audio clock a host must run to count as rendering.
const FAST_AHEAD_BLOCKS: u64 = 2;

/// Plus this much, so a realtime host's scheduling jitter never counts.
const FAST_AHEAD_SLACK_NS: u64 = 2_000_000;

/// The time constant with which a lead drains while the host calls at the audio clock: a host
/// that got ahead once (a prefilled buffer, a burst that made up for a late start) and then
/// plays in real time is back on the realtime deadline within seconds (a 300 ms lead: 1.6 s
/// at 256-frame blocks), instead of keeping that lead, and the offline waits, for good. A hung worker would
/// then block such a host until the hang check (50 ms) instead of being hedged. A render keeps
/// its lead: the lead settles where it drains as fast as the render adds to it, this constant
/// times how much faster than real time the render runs (25 ms at 1.05 times, far more at
/// usual speeds).
const LEAD_DRAIN_NS: i64 = 500_000_000;

/// How far behind the audio clock a host's lateness is remembered: a host on a period clock
/// that fell behind (a stall) catches up in a burst of calls, which must pay that lateness off
/// before it can look ahead. A longer gap between two calls is a pause (a render starting
/// after idle time), after which the count starts afresh.
const BEHIND_MEMORY_NS: i64 = 200_000_000;

/// The audio thread's measure of the host's call pace against the audio clock. No allocation,
/// no system call: it reads the entry time `process()` already took.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Pace {
    /// When the previous call began, and how long its block lasts at the sample rate.
    last: Option<(u64, u64)>,
    /// How far the audio the host has asked for runs ahead of the wall clock, in ns: each call
    /// adds its block's duration, the wall time between calls drains it, down to
    /// `-BEHIND_MEMORY_NS`; a lead also drains by itself (`LEAD_DRAIN_NS`).
    ahead_ns: i64,
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
            let elapsed = now.saturating_sub(last_ns).min(i64::MAX as u64) as i64;
            self.ahead_ns = if elapsed > last_block_ns as i64 + BEHIND_MEMORY_NS {
                0
            } else {
                let ahead = (self.ahead_ns + last_block_ns as i64 - elapsed).max(-BEHIND_MEMORY_NS);
                // Only a lead drains; lateness must be paid off in full.
                let drain = ahead.max(0) as i128 * elapsed.min(LEAD_DRAIN_NS) as i128
                    / LEAD_DRAIN_NS as i128;
                ahead - drain as i64
            };
        }
        self.last = Some((now, block_ns));
        let fast = self.ahead_ns > (FAST_AHEAD_BLOCKS * block_ns + FAST_AHEAD_SLACK_NS) as i64;
        if fast {
            ProcessMode::Offline
        } else {
            host
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: f32 = 48_000.0;
    const BLOCK: usize = 256;
    const PERIOD_NS: u64 = 5_333_333;

    /// The modes `calls` blocks get, the host calling at the given entry times.
    fn modes(times: impl IntoIterator<Item = u64>) -> Vec<ProcessMode> {
        let mut pace = Pace::default();
        times
            .into_iter()
            .map(|t| pace.observe(t, BLOCK, SR, ProcessMode::Realtime))
            .collect()
    }

    #[test]
    fn a_host_on_the_audio_clock_stays_realtime() {
        // With jitter of a third of a period either way.
        let jitter = [0, PERIOD_NS / 3, 0, PERIOD_NS / 3 * 2, PERIOD_NS / 3];
        let times = (0..1000).map(|k| k * PERIOD_NS + jitter[k as usize % 5]);
        assert!(modes(times).iter().all(|&m| m == ProcessMode::Realtime));
    }

    #[test]
    fn a_host_calling_back_to_back_is_rendering() {
        let got = modes((0..100).map(|k| k * 100_000));
        assert_eq!(got[..3], [ProcessMode::Realtime; 3]);
        assert!(got[4..].iter().all(|&m| m == ProcessMode::Offline));
    }

    #[test]
    fn catching_up_after_a_stall_is_not_rendering() {
        // On a period clock, a 50 ms stall, then the missed blocks back to back.
        let mut times: Vec<u64> = (0..100).map(|k| k * PERIOD_NS).collect();
        let stall_end = 99 * PERIOD_NS + 50_000_000;
        let missed = 50_000_000 / PERIOD_NS + 1;
        times.extend((0..missed).map(|k| stall_end + k * 10_000));
        times.extend((100 + missed..300).map(|k| k * PERIOD_NS + 50_000_000));
        assert!(modes(times).iter().all(|&m| m == ProcessMode::Realtime));
    }

    #[test]
    fn a_host_that_made_up_for_a_late_start_is_realtime_again() {
        // The first call 300 ms late on the host's own clock, the missed blocks back to back,
        // then the audio clock: the lead the burst left drains.
        let late = 300_000_000 / PERIOD_NS;
        let mut times: Vec<u64> = (0..late).map(|k| late * PERIOD_NS + k * 10_000).collect();
        times.extend((late + 1..2000).map(|k| k * PERIOD_NS));
        let got = modes(times);
        assert_eq!(
            got[late as usize - 1],
            ProcessMode::Offline,
            "the burst looks ahead"
        );
        assert!(got[1000..].iter().all(|&m| m == ProcessMode::Realtime));
    }

    #[test]
    fn a_render_only_slightly_faster_than_real_time_stays_a_render() {
        // Calls at 1.1 times real time keep a lead of about 50 ms.
        let got = modes((0..2000).map(|k| k * PERIOD_NS * 10 / 11));
        assert!(got[1000..].iter().all(|&m| m == ProcessMode::Offline));
    }

    #[test]
    fn a_render_after_a_pause_is_known_at_once() {
        // A realtime stretch, a long pause, then a render as fast as it goes.
        let mut times: Vec<u64> = (0..100).map(|k| k * PERIOD_NS).collect();
        let start = 100 * PERIOD_NS + 5_000_000_000;
        times.extend((0..100).map(|k| start + k * 100_000));
        let got = modes(times);
        assert!(got[..100].iter().all(|&m| m == ProcessMode::Realtime));
        assert!(got[105..].iter().all(|&m| m == ProcessMode::Offline));
    }
}
