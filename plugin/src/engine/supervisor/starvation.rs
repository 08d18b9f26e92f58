//! Overload is not a hang: telling a starved worker from a hung one.
//!
//! A worker with work pending and no progress for `Tuning::hang_timeout` used to be evicted as
//! hung. On an overloaded machine (a CPU spike, many instances on few cores) an honest worker
//! can wait that long for a core, and its replacement would wait just the same. So once a stall
//! has lasted a twentieth of the timeout ([`LOOK_FRACTION`]) beside a twin that keeps rendering
//! (the whole timeout otherwise) the supervisor asks the kernel, which the worker cannot lie
//! to, what the worker did meanwhile (`/proc/<pid>/stat` for its run state,
//! `/proc/<pid>/schedstat` for the CPU time it ran and the time it waited on a run queue):
//!
//! - stopped (`SIGSTOP`, a tracer: state `T` or `t`) at two looks in a row (a tick apart)
//!   while its twin was not: hung, evicted then; with the twin stopped too, after the whole
//!   timeout;
//! - ran for a fifth of the hang timeout ([`SUSPECT_FRACTION`]) of its own CPU since the first
//!   look without finishing a chunk: an endless loop (an honest chunk costs a small fraction of
//!   that), evicted;
//! - asleep (not runnable) and slept through the hang timeout with work pending (neither
//!   running nor queued): hung, evicted, since the audio thread's wake would have ended an
//!   honest sleep;
//! - otherwise it was waiting for a core: starved, not hung. It keeps its slot, up to
//!   [`STALL_LIMIT`] without progress in any case.
//!
//! Judging a stop or a loop that early (a tick past 2.5 ms, and 12.5 ms, by default, not 50)
//! replaces the worker sooner; its replacement starts from the twin's newest snapshot
//! (`Supervisor::remove`), whatever the stall's length. Only while the twin
//! keeps rendering: with both stalled (or alone, in Eco, where the audio thread's hedge calls
//! the standby in at once) the whole timeout applies, since a stop of both is more likely the
//! plugin's whole process stopped than two hangs, and evicting both costs the state they hold.
//!
//! A worker left far behind while its twin serves (starved for long, or a host that renders
//! faster than real time) is rebuilt from the latest checkpoint (`EvictReason::FellBehind`)
//! once it is three quarters of the input ring behind, before the ring laps it (a lapped worker
//! can only exit: `EXIT_LAPPED`). Offline, `Engine::wait_for_laggards` keeps workers within
//! half a ring, so this never fires there.
//!
//! A newcomer that has not reached its render loop yet (exec, sandbox entry) is judged only by
//! its run state and the same limit: its start-up takes CPU and I/O that no chunk does. If
//! `/proc` cannot be read, the old rule holds: past the hang timeout, hung.

use super::{Supervisor, Worker, STARTUP_BOUND};
use std::time::Duration;

/// No worker keeps its slot longer than this without progress, however starved: past it a
/// replacement (which also starts with a fresh scheduling class) is the better bet.
const STALL_LIMIT: Duration = STARTUP_BOUND;

/// The part of `Tuning::hang_timeout` a stall lasts before the kernel is first asked about it,
/// while its twin keeps rendering (otherwise the whole timeout). A worker seen stopped then and
/// at the next look goes; a look costs two small `/proc` reads, only for a stalled worker.
const LOOK_FRACTION: u64 = 20;

/// The part of `Tuning::hang_timeout` of CPU time without a finished chunk, counted from the
/// first look, that makes a running worker an endless loop while its twin keeps rendering
/// (otherwise the whole timeout); also how long the twin may itself stall and still count as
/// rendering.
const SUSPECT_FRACTION: u64 = 5;

/// What the kernel says about a process: its run state and its scheduling times.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sched {
    /// The state letter of `/proc/<pid>/stat` (`R`, `S`, `D`, `T`, ...).
    state: u8,
    /// CPU time it has run, in ns.
    pub ran_ns: u64,
    /// Time it has waited on a run queue for a core, in ns.
    queued_ns: u64,
}

impl Sched {
    /// Reads the process's state and scheduling times; `None` if it is gone or `/proc` does
    /// not say.
    pub fn of(pid: u32) -> Option<Sched> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces and parentheses: the state follows the last ')'.
        let state = *stat.rsplit_once(')')?.1.trim_start().as_bytes().first()?;
        let schedstat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
        let mut times = schedstat.split_whitespace().map(|v| v.parse::<u64>().ok());
        Some(Sched {
            state,
            ran_ns: times.next()??,
            queued_ns: times.next()??,
        })
    }

    fn stopped(&self) -> bool {
        matches!(self.state, b'T' | b't')
    }

    /// Running or waiting for a core. (The kernel adds a wait on the run queue to
    /// `queued_ns` only once the wait ends, so a starved process shows as runnable, not yet
    /// as queued.)
    pub fn runnable(&self) -> bool {
        self.state == b'R'
    }
}

/// A worker's stall as the first look saw it ([`LOOK_FRACTION`]): the baseline the next looks
/// compare with.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stall {
    /// The `behind_since` of the stall this belongs to.
    since: u64,
    /// When the baseline was read.
    at: u64,
    sched: Sched,
    /// The last look saw it stopped while its twin was not.
    stopped_alone: bool,
}

impl Supervisor {
    /// Whether some worker's stall has lasted [`LOOK_FRACTION`] of the hang timeout at `now`:
    /// from then on its judgement needs looks on the tick (`wait.rs`).
    pub(super) fn stall_to_judge(&self, now: u64) -> bool {
        let look = self.tuning.hang_timeout.as_nanos() as u64 / LOOK_FRACTION;
        self.workers.iter().flatten().any(|w| {
            w.behind_since
                .is_some_and(|t| now.saturating_sub(t) >= look)
        })
    }

    /// Whether the worker in `slot`, behind since `Worker::behind_since`, is hung rather than
    /// starved (see the module doc). Reads `/proc` only once the stall has lasted
    /// [`LOOK_FRACTION`] of the hang timeout (beside a rendering twin; the whole timeout otherwise).
    pub(super) fn hung(&mut self, slot: usize, now: u64) -> bool {
        let timeout = self.tuning.hang_timeout.as_nanos() as u64;
        // Early only beside a twin that keeps rendering (it has finished chunks this worker
        // has not, and is not stalled for long itself): both stalled at once is more likely
        // the whole plugin stopped (a debugger, a paused machine) than two hangs, and evicting
        // both costs what they hold.
        let done = |w: &Worker| w.progress.map_or(w.floor_chunks, |p| p.chunks_done);
        let twin_renders = match (&self.workers[slot], &self.workers[1 - slot]) {
            (Some(w), Some(t)) => {
                done(t) > done(w)
                    && t.behind_since
                        .is_none_or(|since| now.saturating_sub(since) <= timeout / SUSPECT_FRACTION)
            }
            _ => false,
        };
        let (look, suspect) = if twin_renders {
            (timeout / LOOK_FRACTION, timeout / SUSPECT_FRACTION)
        } else {
            (timeout, timeout)
        };
        let twin_pid = self.workers[1 - slot].as_ref().map(|t| t.process.pid());
        let Some(w) = self.workers[slot].as_mut() else {
            return false;
        };
        let sleeping = self.shared.rings[w.ring].sleeping();
        let Some(since) = w.behind_since else {
            w.stall = None;
            return false;
        };
        let stalled = now.saturating_sub(since);
        if stalled <= look {
            return false;
        }
        if stalled > (STALL_LIMIT.as_nanos() as u64).max(timeout) {
            return true;
        }
        let Some(sched) = Sched::of(w.process.pid()) else {
            return stalled > timeout;
        };
        // Both stopped is more likely the whole plugin stopped (a debugger, a paused host) than
        // two hangs, whatever their stalls' stamps say: the whole timeout then. And one look
        // can fall between the signals that stop or resume both, so a stop beside a twin that
        // is not stopped counts only when two looks in a row see it.
        let stopped_alone =
            sched.stopped() && !twin_pid.and_then(Sched::of).is_some_and(|t| t.stopped());
        let (base, stopped_alone_before) = match w.stall.as_mut() {
            Some(stall) if stall.since == since => {
                let before = std::mem::replace(&mut stall.stopped_alone, stopped_alone);
                (*stall, before)
            }
            _ => {
                w.stall = Some(Stall {
                    since,
                    at: now,
                    sched,
                    stopped_alone,
                });
                return false;
            }
        };
        if sched.stopped() {
            return (stopped_alone && stopped_alone_before) || stalled > timeout;
        }
        let started = sleeping || w.progress.is_some_and(|p| p.chunks_done > w.floor_chunks);
        if !started {
            return false;
        }
        let window = now.saturating_sub(base.at);
        let ran = sched.ran_ns.saturating_sub(base.sched.ran_ns);
        let queued = sched.queued_ns.saturating_sub(base.sched.queued_ns);
        let slept = window.saturating_sub(ran + queued);
        ran > suspect || (!sched.runnable() && slept > timeout)
    }
}

impl Supervisor {
    /// Whether the worker in `slot` is so far behind the head (three quarters of the input
    /// ring, in chunks or in frames) that the ring may lap it, while its verified twin is not:
    /// rebuilt from the twin's checkpoint, it starts near the head.
    pub(super) fn left_behind(&self, slot: usize) -> bool {
        let input = &self.shared.input;
        let ring = input.config();
        let (published, posted) = (input.published(), input.posted_frames());
        let far = |w: &Worker| {
            let (frames, chunks) = w.progress.map_or((w.floor_frames, w.floor_chunks), |p| {
                (p.frames_done, p.chunks_done)
            });
            published.saturating_sub(chunks) * 4 > ring.record_count as u64 * 3
                || posted.saturating_sub(frames) * 4 > ring.audio_capacity as u64 * 3
        };
        match (&self.workers[slot], &self.workers[1 - slot]) {
            (Some(w), Some(twin)) => twin.verified && far(w) && !far(twin),
            _ => false,
        }
    }
}
