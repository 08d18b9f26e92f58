//! The goals the report judges, each stated once: the sentence in the goals table, its verdict
//! and the goal lines on the plots all come from the same [`Goal`].
//!
//! A verdict is strict: a goal is met only if every benchmark that measures it meets it in the
//! run (the detection goal looks at `bench failover` and at every SIGKILL of `bench realtime`).

use super::data::{self, Data};
use super::markdown::{f1, f2};
use crate::bench::schema::Mode;
use crate::bench::Summary;
use std::fmt;

/// How a measured figure must compare with its goal's limit.
#[derive(Clone, Copy, Debug)]
pub enum Bound {
    /// Equal to the limit (a count that must be zero).
    Exactly,
    /// Strictly below.
    Below,
    /// Below or equal.
    AtMost,
}

/// A goal: `figure`, compared by `bound` with `limit` `unit`, `scope`.
#[derive(Debug)]
pub struct Goal {
    /// What is measured, as the sentence opens ("detection p99").
    pub figure: &'static str,
    /// How every measurement compares with the limit.
    pub bound: Bound,
    /// The limit, in `unit`.
    pub limit: f64,
    /// The unit as written right after the limit, with its leading space if it takes one.
    pub unit: &'static str,
    /// The rest of the sentence (" per 64-frame block").
    pub scope: &'static str,
}

impl Goal {
    /// Whether one measurement meets the goal (NaN, a missing figure, never does).
    pub fn holds(&self, measured: f64) -> bool {
        match self.bound {
            Bound::Exactly => measured == self.limit,
            Bound::Below => measured < self.limit,
            Bound::AtMost => measured <= self.limit,
        }
    }

    /// Whether the goal is met: something was measured and every measurement holds.
    pub fn met(&self, measured: &[f64]) -> bool {
        !measured.is_empty() && measured.iter().all(|&v| self.holds(v))
    }
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bound = match self.bound {
            Bound::Exactly => "",
            Bound::Below => "< ",
            Bound::AtMost => "≤ ",
        };
        write!(
            f,
            "{} {bound}{}{}{}",
            self.figure, self.limit, self.unit, self.scope
        )
    }
}

/// No frame of a failover differs from the reference render.
pub const GAP: Goal = Goal {
    figure: "failover gap",
    bound: Bound::Exactly,
    limit: 0.0,
    unit: " frames",
    scope: " in every trial",
};

/// From a worker's death to the supervisor knowing.
pub const DETECTION: Goal = Goal {
    figure: "detection p99",
    bound: Bound::Below,
    limit: 0.5,
    unit: " ms",
    scope: "",
};

/// From a worker's death to a new standby verified in lockstep.
pub const REBUILD: Goal = Goal {
    figure: "rebuild p99",
    bound: Bound::Below,
    limit: 5.0,
    unit: " ms",
    scope: "",
};

/// What two workers cost against the DSP in the host's process.
pub const CPU: Goal = Goal {
    figure: "lockstep CPU",
    bound: Bound::AtMost,
    limit: 2.3,
    unit: "x",
    scope: " in-process at 64 frames",
};

/// What Eco costs against the DSP in the host's process at small blocks.
pub const ECO_CPU_64: Goal = Goal {
    figure: "eco CPU",
    bound: Bound::AtMost,
    limit: 1.5,
    unit: "x",
    scope: " in-process at 64 frames",
};

/// What Eco costs against the DSP in the host's process at common blocks.
pub const ECO_CPU: Goal = Goal {
    figure: "eco CPU",
    bound: Bound::AtMost,
    limit: 1.15,
    unit: "x",
    scope: " in-process at 128 and 256 frames",
};

/// Eco's failover against isolation without it (`single_worker`).
pub const ECO_VS_SINGLE: Goal = Goal {
    figure: "eco CPU",
    bound: Bound::AtMost,
    limit: 1.05,
    unit: "x",
    scope: " single_worker at every block size",
};

/// The block size the CPU and audio-thread goals are set at.
pub const GOAL_BLOCK: usize = 64;

/// The audio thread's time in `process()`.
pub const AUDIO_THREAD: Goal = Goal {
    figure: "audio thread p99",
    bound: Bound::Below,
    limit: 20.0,
    unit: " µs",
    scope: " per 64-frame block",
};

/// Kills without pressure cost no audio.
pub const XRUNS: Goal = Goal {
    figure: "realtime, 64 frames, 16 voices, kill every 2 s, no pressure:",
    bound: Bound::Exactly,
    limit: 0.0,
    unit: " xruns",
    scope: "",
};

/// The instance count the memory and spawn goals are set at.
pub const GOAL_INSTANCES: usize = 32;

/// What an instance costs in memory beyond the synth itself.
pub const MEMORY: Goal = Goal {
    figure: "32 instances:",
    bound: Bound::Below,
    limit: 5.0,
    unit: " MB",
    scope: " per instance beyond the DSP's own state",
};

/// Activating an instance among many.
pub const SPAWN: Goal = Goal {
    figure: "32 instances: spawn",
    bound: Bound::Below,
    limit: 20.0,
    unit: " ms",
    scope: " each",
};

/// One row of the goals table: the goal, what was measured in words, and the figures judged
/// (in the goal's unit).
pub struct Judged {
    /// The goal.
    pub goal: &'static Goal,
    /// What the benchmarks measured, in words, for the table.
    pub measured: String,
    /// The figures the verdict compares with the limit.
    pub figures: Vec<f64>,
}

impl Judged {
    /// Whether the goal is met.
    pub fn met(&self) -> bool {
        self.goal.met(&self.figures)
    }
}

/// Every goal, judged on `d`, in the table's order.
pub fn judge(d: &Data) -> Vec<Judged> {
    let fo = &d.failover;
    let scen = d.scenarios();

    let gap = fo.gap_frames_total;
    let eco_gap = d.failover_eco.as_ref().map(|f| f.gap_frames_total);
    let kill_mismatch: u64 = scen
        .iter()
        .filter(|s| s.kills)
        .map(|s| s.mismatched_frames)
        .sum();

    let det = fo.detection_us.p99;
    let det_rt = Summary::new(d.pooled(data::detection, |_| true));
    let det_rt_calm = Summary::new(d.pooled(data::detection, |s| !s.pressure));

    let reb = fo.rebuild_ms.p99;
    let reb_rt = Summary::new(d.pooled(data::rebuild, |_| true));

    let lock = d.overhead(Mode::Lockstep, GOAL_BLOCK);
    let ratio = lock.map_or(f64::NAN, |r| r.cpu_vs_in_process.unwrap_or(f64::NAN));
    let audio_thread = lock.map_or(f64::NAN, |r| r.audio_thread_us.p99);
    let wake_call_64 = d
        .overhead(Mode::InProcessWoken, GOAL_BLOCK)
        .and_then(|r| r.wake_syscall_us.as_ref())
        .map_or(f64::NAN, |q| q.p99);

    let eco_vs = |block: usize, f: fn(&crate::bench::schema::OverheadRecord) -> Option<f64>| {
        d.overhead(Mode::Eco, block).and_then(f).unwrap_or(f64::NAN)
    };
    let eco_64 = eco_vs(GOAL_BLOCK, |r| r.cpu_vs_in_process);
    let eco_common = [128, 256].map(|b| eco_vs(b, |r| r.cpu_vs_in_process));
    // What waking an idle child once a block alone costs, in the same run.
    let woken = |block: usize| {
        d.overhead(Mode::InProcessWoken, block)
            .and_then(|r| r.cpu_vs_in_process)
            .unwrap_or(f64::NAN)
    };
    let eco_single: Vec<(usize, f64)> = crate::bench::overhead::BLOCKS
        .iter()
        .map(|&b| (b, eco_vs(b, |r| r.cpu_vs_single_worker)))
        .collect();

    let rt: Vec<_> = scen
        .iter()
        .filter(|s| s.block == GOAL_BLOCK && s.kills && !s.pressure)
        .collect();

    let many = d.scale(GOAL_INSTANCES);
    let mem = many.map_or(f64::NAN, |r| r.memory_beyond_dsp_kib * 1024.0 / 1e6);
    let spawn = many.map_or(f64::NAN, |r| r.activate_ms.max);
    let ready = many.map_or(f64::NAN, |r| r.ready_ms.max);

    vec![
        Judged {
            goal: &GAP,
            measured: format!(
                "`bench failover`: {gap} frames differ from the reference over {} trials{}; \
                 `bench realtime` with kills: {kill_mismatch}",
                fo.trials,
                eco_gap.map_or(String::new(), |g| format!(", in Eco {g}"))
            ),
            figures: [gap, kill_mismatch]
                .into_iter()
                .chain(eco_gap)
                .map(|v| v as f64)
                .collect(),
        },
        Judged {
            goal: &DETECTION,
            measured: format!(
                "`bench failover` SIGKILL: p99 {} µs (n={}; its baseline, an idle child's death \
                 word killed in the same run: p99 {} µs); `bench realtime` SIGKILLs: p99 {} \
                 µs (n={}), without pressure {} µs",
                f1(det),
                fo.detection_us.n,
                f1(fo.detection_baseline_us.p99),
                f1(det_rt.quantile(0.99)),
                det_rt.count(),
                f1(det_rt_calm.quantile(0.99)),
            ),
            figures: vec![det / 1000.0, det_rt.quantile(0.99) / 1000.0],
        },
        Judged {
            goal: &REBUILD,
            measured: format!(
                "`bench failover` (all fault kinds): p99 {} ms (n={}); `bench realtime` \
                 SIGKILLs: p99 {} ms (n={})",
                f2(reb),
                fo.rebuild_ms.n,
                f2(reb_rt.quantile(0.99)),
                reb_rt.count(),
            ),
            figures: vec![reb, reb_rt.quantile(0.99)],
        },
        Judged {
            goal: &CPU,
            measured: format!("{}x", f2(ratio)),
            figures: vec![ratio],
        },
        Judged {
            goal: &ECO_CPU_64,
            measured: format!(
                "{}x (`in_process_woken`: {}x)",
                f2(eco_64),
                f2(woken(GOAL_BLOCK))
            ),
            figures: vec![eco_64],
        },
        Judged {
            goal: &ECO_CPU,
            measured: format!(
                "{}x at 128, {}x at 256 (`in_process_woken`, the in-process render waking an \
                 idle child once a block: {}x, {}x)",
                f2(eco_common[0]),
                f2(eco_common[1]),
                f2(woken(128)),
                f2(woken(256))
            ),
            figures: eco_common.to_vec(),
        },
        Judged {
            goal: &ECO_VS_SINGLE,
            measured: eco_single
                .iter()
                .map(|(b, x)| format!("{}x at {b}", f2(*x)))
                .collect::<Vec<_>>()
                .join(", "),
            figures: eco_single.iter().map(|(_, x)| *x).collect(),
        },
        Judged {
            goal: &AUDIO_THREAD,
            measured: format!(
                "lockstep, latency one block: {} µs (the `FUTEX_WAKE` that wakes a sleeping \
                 process, alone, on the audio thread of `in_process_woken`: p99 {} µs)",
                f1(audio_thread),
                f1(wake_call_64)
            ),
            figures: vec![audio_thread],
        },
        Judged {
            goal: &XRUNS,
            measured: rt
                .iter()
                .map(|s| {
                    format!(
                        "{}, latency {}: {} xrun frames, {} failovers",
                        s.protection.name(),
                        s.latency,
                        s.xrun_frames,
                        s.failovers
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            figures: rt.iter().map(|s| s.xrun_frames as f64).collect(),
        },
        Judged {
            goal: &MEMORY,
            measured: format!("{} MB", f2(mem)),
            figures: vec![mem],
        },
        Judged {
            goal: &SPAWN,
            measured: format!(
                "slowest `activate` {} ms (slowest until both workers verified: {} ms)",
                f1(spawn),
                f1(ready)
            ),
            figures: vec![spawn],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_read_as_the_goals_are_stated() {
        assert_eq!(DETECTION.to_string(), "detection p99 < 0.5 ms");
        assert_eq!(
            CPU.to_string(),
            "lockstep CPU ≤ 2.3x in-process at 64 frames"
        );
        assert_eq!(GAP.to_string(), "failover gap 0 frames in every trial");
    }

    #[test]
    fn a_verdict_needs_every_figure_and_at_least_one() {
        assert!(DETECTION.met(&[0.3, 0.49]));
        assert!(!DETECTION.met(&[0.3, 0.5]));
        assert!(!DETECTION.met(&[0.3, f64::NAN]));
        assert!(!XRUNS.met(&[]));
        assert!(CPU.met(&[2.3]));
        assert!(!GAP.met(&[0.0, 1.0]));
    }
}
