//! The block size a host actually uses, which the default latency (one block) follows.
//!
//! Hosts advertise a largest block at activation and then often run much smaller ones: one that
//! advertises 8192 frames and runs 128 would get 85 ms of latency from "one advertised block".
//! So the plugin watches the blocks `process()` is given (audio thread: two integer updates) and
//! sizes `L` by the largest one seen, rounded up to a power of two (hosts with varying blocks
//! then settle on one value) and never above the advertised maximum. A change of `L` needs a
//! reactivation (CLAP reports latency only there), which the plugin asks the host for:
//!
//! - Up at once: a block larger than `L` makes every such call wait for the chunk it has just
//!   posted, so `L` is never left below the block size in use.
//! - Down only after [`WARM_UP_CALLS`] calls, so a host's first short calls do not count as its
//!   block size.
//!
//! The first activation knows nothing yet and uses the advertised maximum (no call waits).

/// Calls seen before a smaller block size than `L` is trusted.
pub const WARM_UP_CALLS: u32 = 32;

/// What the plugin knows about the host's block sizes.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockSizes {
    /// The largest block the host advertised at the last activation.
    advertised: u32,
    /// The block size the current latency was sized by.
    basis: u32,
    /// The largest block `process()` was given since the last activation.
    largest: u32,
    /// `process()` calls since the last activation.
    calls: u32,
}

impl BlockSizes {
    /// At activation with an advertised largest block: the block size to size `L` by, from what
    /// the previous activation saw if the host advertises the same maximum again.
    pub fn activate(&mut self, advertised: u32) -> u32 {
        self.basis = if advertised == self.advertised && self.basis > 0 {
            self.wanted()
        } else {
            advertised
        };
        self.advertised = advertised;
        self.largest = 0;
        self.calls = 0;
        self.basis
    }

    /// Audio thread: one `process()` call of `frames` frames.
    pub fn saw(&mut self, frames: usize) {
        if frames > 0 {
            self.largest = self.largest.max(frames.min(u32::MAX as usize) as u32);
            self.calls = self.calls.saturating_add(1);
        }
    }

    /// The block size `L` should follow now (equal to the activation's while nothing says
    /// otherwise).
    pub fn wanted(&self) -> u32 {
        let seen = self.largest.next_power_of_two().min(self.advertised);
        if seen > self.basis || (self.calls >= WARM_UP_CALLS && seen < self.basis) {
            seen
        } else {
            self.basis
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sizes: &mut BlockSizes, frames: usize, calls: u32) {
        for _ in 0..calls {
            sizes.saw(frames);
        }
    }

    #[test]
    fn a_host_that_advertises_8192_and_runs_128_gets_one_128_frame_block() {
        let mut sizes = BlockSizes::default();
        assert_eq!(sizes.activate(8192), 8192, "nothing seen yet");
        run(&mut sizes, 128, WARM_UP_CALLS - 1);
        assert_eq!(sizes.wanted(), 8192, "too few calls to trust");
        sizes.saw(128);
        assert_eq!(sizes.wanted(), 128);
        assert_eq!(sizes.activate(8192), 128);
        run(&mut sizes, 128, 1000);
        assert_eq!(sizes.wanted(), 128, "settled: no further restart");
    }

    #[test]
    fn a_larger_block_raises_the_latency_at_once() {
        let mut sizes = BlockSizes::default();
        sizes.activate(8192);
        run(&mut sizes, 128, 100);
        assert_eq!(sizes.activate(8192), 128);
        sizes.saw(512);
        assert_eq!(sizes.wanted(), 512, "every 512-frame call would wait");
        assert_eq!(sizes.activate(8192), 512);
    }

    #[test]
    fn varying_blocks_settle_on_a_power_of_two_within_the_advertised_maximum() {
        let mut sizes = BlockSizes::default();
        sizes.activate(1000);
        for frames in (1..=700).cycle().step_by(37).take(200) {
            sizes.saw(frames);
        }
        assert_eq!(sizes.wanted(), 1000, "1024 is above the advertised 1000");
        let mut sizes = BlockSizes::default();
        sizes.activate(8192);
        for frames in [100, 90, 128, 77].repeat(20) {
            sizes.saw(frames);
        }
        assert_eq!(sizes.wanted(), 128);
    }

    #[test]
    fn a_new_advertised_maximum_starts_over() {
        let mut sizes = BlockSizes::default();
        sizes.activate(8192);
        run(&mut sizes, 64, 100);
        assert_eq!(sizes.activate(8192), 64);
        assert_eq!(sizes.activate(2048), 2048);
    }
}
