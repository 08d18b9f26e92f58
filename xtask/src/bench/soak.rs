//! `cargo xtask bench soak [--seconds S] [--seed N] [--block B] [--latency-blocks K]
//! [--protection lockstep|eco] [--checkpoint-frames F]`: the chaos soak. The real engine plays the
//! dense 16-voice phrase, on a period clock in realtime phases and flat out in offline phases,
//! while a seeded schedule commits a random fault from [`FAULTS`] whenever the engine has settled
//! from the last one: every fault the worker knows (`shm::FaultKind`), signals, double deaths,
//! stalls, CPU bursts, resets, realtime/offline switches and reactivations (a new engine with a
//! new block size, latency and protection, the reference from a fresh state). In Eco a fault
//! aimed at either worker hits the active one (the other slot is empty), and a double death
//! kills the active worker and its standby.
//!
//! Every output frame is compared, bit for bit, with the in-process reference
//! (`ReferenceEngine`) fed the same blocks, replayed after each activation from a recording.
//! Each fault opens a window of output frames that closes when the engine has settled (fully
//! protected again, `Engine::settled`, the target replaced, and a block served whole since the
//! fault's stall or burst ended: workers starved of CPU must first render what was posted
//! meanwhile, so its fallback is the fault's); frames that differ inside the
//! window of a double death or of a poison note (which kills every worker too) are its gap,
//! every other differing frame is a mismatch (goal 0), attributed to the window's fault, except
//! a flipped bit's served on one worker's word (`unconfirmed_wrong_frames`): in Eco, which does
//! not check it at once by design, and in Lockstep when the engine reports the block served
//! without the twin's confirming digest (`BlockReport::unconfirmed_frames`: the twin was late
//! past the deadline at latency 0). A window's end is `L` frames later than the fault's
//! settling: what was rendered before it is heard `L` frames after.
//! The engine's own declared fallback (an xrun's fade) is told apart from audio it served as
//! exact. Also counted: offline waits that gave up (`stuck_waits`), workers that died or were
//! evicted with no fault aimed at them (`honest_evictions`), and fds and processes left behind.
//!
//! Adding a fault kind is one line in [`FAULTS`].

use super::host::{self, now_ns, Phrase};
use super::schema::{self, BenchFile, Machine, Protection};
use super::{flag, optional_flag, Summary};
use anyhow::{ensure, Result};
use dsp::{Event, EventKind, N_PARAMS};
use shm::FaultKind;
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use tandem::engine::{
    Engine, EngineConfig, EngineEvent, EvictReason, ProcessMode, ReferenceEngine, Tuning,
    WorkerExit,
};
use test_support::Rng;

const SAMPLE_RATE: f32 = 48_000.0;

/// How a fault is committed.
#[derive(Clone, Copy, Debug)]
enum Act {
    /// Send this signal to the target worker.
    Signal(i32),
    /// Ask the target worker to commit this fault, with this argument, in its next chunk.
    Inject(FaultKind, u32),
    /// `SIGSTOP` the target and `SIGCONT` it 2..40 ms later: slow, not hung.
    Stall,
    /// Send this signal to both workers together.
    Double(i32),
    /// Arm `CrashOnNote` at [`POISON_KEY`] for every worker (it stays armed for the rest of the
    /// activation) and play that key once, in the next block: every worker that renders that
    /// chunk aborts, twins and rebuilds alike, until the supervisor quarantines it. The
    /// reference drops the quarantined chunk's events as the workers do; the frames that differ
    /// in its window are a gap, as a double death's.
    Poison,
    /// One CPU hog per core for a moment, at this `SCHED_FIFO` priority (0: normal class; the
    /// workers run at 5 and the supervisor at 6 when granted, the host thread at 20). Above the
    /// workers it starves them: realtime audio cannot be on time then, so the frames that differ
    /// in its window are counted apart (`starved_frames`), not as mismatches.
    Overload(i32),
    /// The host stops calling `process()` for 20..300 ms, then resumes on a fresh clock.
    HostStall,
    /// `reset()` the engine (and the reference before the same block).
    Reset,
    /// Switch between realtime and offline.
    SwitchMode,
    /// Drop the engine and activate a new one with a new configuration.
    Reactivate,
}

/// Which worker a fault is aimed at.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Aim {
    /// Either slot, at random.
    Either,
    /// The one serving: only the audio thread reads what this fault corrupts.
    Serving,
}

/// What has to happen before the engine counts as settled from a fault.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// The target (both, for a double or a poison) dies or is evicted, and is replaced.
    Eviction,
    /// As `Eviction` in a realtime phase; offline nothing needs to fail: the CPU budget judges
    /// only twins that are caught up and idle between chunks, and offline both are always busy.
    EvictionInRealtime,
    /// As `Eviction` in Lockstep, whose twin sees a finite wrong value at once. In Eco one
    /// worker renders and the audit only samples now and then (README, "Protection"): nothing
    /// needs to fail, and the frames that differ in its window are Eco's documented limit,
    /// counted apart (`unconfirmed_wrong_frames`), not as mismatches; so are those Lockstep
    /// declares it served without the twin's confirmation.
    EvictionInLockstep,
    /// As `Eviction` at a latency of a block or more, unless the audio thread switched rings
    /// after the fault (it may then serve the chunk from the twin). At latency 0 the audio
    /// thread may copy a chunk as soon as it is published, before the worker overwrites it.
    /// Either way the overwrite may reach nobody, and nothing can see it (only what is served
    /// is checked), so nothing needs to fail.
    EvictionIfHeard,
    /// Nothing needs to fail; the engine only has to be fully protected.
    Nothing,
}

/// One kind of fault the soak commits.
struct Fault {
    name: &'static str,
    act: Act,
    aim: Aim,
    expect: Expect,
}

const fn fault(name: &'static str, act: Act, expect: Expect) -> Fault {
    Fault {
        name,
        act,
        aim: Aim::Either,
        expect,
    }
}

const fn inject(name: &'static str, kind: FaultKind, arg: u32, expect: Expect) -> Fault {
    fault(name, Act::Inject(kind, arg), expect)
}

/// Every fault the soak commits, equally likely. One line per kind.
const FAULTS: &[Fault] = &[
    fault("sigkill", Act::Signal(libc::SIGKILL), Expect::Eviction),
    // Not SIGSEGV or SIGBUS from outside: Rust's stack-overflow handler swallows the first one
    // not caused by a fault (it restores the default action and returns).
    fault("sigabrt", Act::Signal(libc::SIGABRT), Expect::Eviction),
    fault("sigterm", Act::Signal(libc::SIGTERM), Expect::Eviction),
    fault("sigstop", Act::Signal(libc::SIGSTOP), Expect::Eviction),
    inject("segv", FaultKind::Segv, 0, Expect::Eviction),
    inject("abort", FaultKind::Abort, 0, Expect::Eviction),
    inject("panic", FaultKind::Panic, 0, Expect::Eviction),
    inject("exit0", FaultKind::Exit0, 0, Expect::Eviction),
    inject("loop", FaultKind::InfiniteLoop, 0, Expect::Eviction),
    inject("sleep_short", FaultKind::Sleep, 5, Expect::Nothing),
    inject("sleep_hang", FaultKind::Sleep, 400, Expect::Eviction),
    inject("bad_fields", FaultKind::BadFields, 0, Expect::Eviction),
    inject("nan", FaultKind::NaN, 0, Expect::Eviction),
    Fault {
        aim: Aim::Serving,
        ..inject(
            "bad_voice_ends",
            FaultKind::BadVoiceEnds,
            0,
            Expect::Eviction,
        )
    },
    inject("mute_digests", FaultKind::MuteDigests, 0, Expect::Eviction),
    inject(
        "flip_low_bit",
        FaultKind::FlipLowBit,
        0,
        Expect::EvictionInLockstep,
    ),
    // Only what the plugin served is checked against the digest: aim at the serving worker.
    Fault {
        aim: Aim::Serving,
        ..inject(
            "overwrite_finished",
            FaultKind::OverwriteFinished,
            0,
            Expect::EvictionIfHeard,
        )
    },
    inject(
        "spin_sleeping",
        FaultKind::SpinSleeping,
        0,
        Expect::Eviction,
    ),
    inject(
        "hog_between_chunks",
        FaultKind::HogBetweenChunks,
        0,
        Expect::EvictionInRealtime,
    ),
    fault("stall", Act::Stall, Expect::Nothing),
    fault(
        "double_sigkill",
        Act::Double(libc::SIGKILL),
        Expect::Eviction,
    ),
    fault(
        "double_sigstop",
        Act::Double(libc::SIGSTOP),
        Expect::Eviction,
    ),
    fault("poison_note", Act::Poison, Expect::Eviction),
    fault("overload", Act::Overload(0), Expect::Nothing),
    fault("overload_rt", Act::Overload(10), Expect::Nothing),
    fault("host_stall", Act::HostStall, Expect::Nothing),
    fault("reset", Act::Reset, Expect::Nothing),
    fault("switch_mode", Act::SwitchMode, Expect::Nothing),
    fault("reactivate", Act::Reactivate, Expect::Nothing),
];

/// A double death's or a poison's gap longer than this is logged (`long_gap_log`): the hang
/// timeout and a rebuild account for about 60 ms.
const LONG_GAP_MS: f64 = 100.0;

/// How long a fault may take to settle before it counts as unsettled (and the engine is
/// replaced, so the soak goes on). A liveness bound, generous on a loaded machine.
const SETTLE_BOUND_NS: u64 = 10_000_000_000;

/// The longest audio one activation plays, so its recording stays small.
const MAX_SEGMENT_FRAMES: u64 = 60 * SAMPLE_RATE as u64;

/// The key `Act::Poison` crashes the workers with: outside the phrase's (48..=77).
const POISON_KEY: u8 = 100;

/// Blocks with mismatched frames logged (the counts cover them all), of which at most
/// `FALLBACK_LOG_LINES` with only declared fallback frames wrong.
const MISMATCH_LOG_LINES: usize = 200;
const FALLBACK_LOG_LINES: usize = 20;

/// Runs of wrong frames logged with the engine's events around them.
const WRONG_RUN_LOG_LINES: usize = 300;

/// A `process()` call this long is stuck, whatever the mode.
const STUCK_NS: u64 = 1_000_000_000;

/// One block as played, for the reference replay.
struct Played {
    events: Vec<Event>,
    params: [f32; N_PARAMS],
    /// `reset()` was called before this block.
    reset: bool,
    /// The engine's declared fallback: the block's last `fallback` frames.
    fallback: u32,
    /// Frames the engine served without a verified twin's confirming digest.
    unconfirmed: u32,
    /// The host's mode for this block.
    mode: ProcessMode,
    /// When the block's `process()` call began.
    at_ns: u64,
}

/// The output frames from a fault until the engine settled from it.
struct Window {
    start: u64,
    end: u64,
    fault: &'static Fault,
    offline: bool,
}

/// Runs `undo` on a thread of its own `ms` milliseconds from now: the end of a stall or of a
/// CPU burst must not wait for the host thread, which may itself be waiting in `process()` for
/// the worker the fault holds up.
fn undo_later(ms: u64, undo: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        undo();
    })
}

/// The fault in progress.
struct InFlight {
    fault: &'static Fault,
    window_start: u64,
    failures_before: u64,
    /// The engine's ring switches when the fault was committed.
    switches_before: u64,
    /// Failures the fault must cause before the engine counts as settled.
    failures_needed: u64,
    /// The workers the fault was aimed at (none: no particular one, or every worker). Gone,
    /// they need not have failed: in Eco a hedge can retire a target before it fails, and a
    /// standby stopped with the active (a double stop) may be dismissed as the spare and then,
    /// never having left its slot, be replaced at the next call without a failure counted.
    targets: Vec<u32>,
    /// What ends the fault's stall or burst, on its own thread.
    undo: Option<std::thread::JoinHandle<()>>,
    undo_at_ns: u64,
    since_ns: u64,
    /// The fault's stall or burst was seen over (at the previous block or before).
    undone_before: bool,
    /// A block was served whole (no fallback) since then: an engine starved or stopped by the
    /// fault has caught up with what was posted meanwhile.
    caught_up: bool,
    offline: bool,
    /// The activation's events before the fault.
    events_before: usize,
}

/// What the whole soak counts.
#[derive(Default)]
struct Totals {
    audio_frames: u64,
    activations: usize,
    eco_activations: usize,
    faults_by_kind: BTreeMap<String, u64>,
    double_deaths: u64,
    mismatched: u64,
    mismatched_served: u64,
    mismatched_by_kind: BTreeMap<String, u64>,
    mismatched_served_by_kind: BTreeMap<String, u64>,
    mismatched_in_eco: u64,
    mismatched_by_config: BTreeMap<String, u64>,
    mismatched_at_latency_zero: u64,
    mismatched_near_steal: u64,
    mismatch_log: Vec<String>,
    wrong_run_log: Vec<String>,
    fallback_blocks_logged: usize,
    gap_ms: Vec<f64>,
    long_gap_log: Vec<String>,
    starved_frames: u64,
    unconfirmed_wrong_frames: u64,
    state_lost_log: Vec<String>,
    offline_gap_frames: u64,
    xrun_frames: u64,
    stuck_waits: u64,
    stuck_log: Vec<String>,
    unsettled_by_kind: BTreeMap<String, u64>,
    unsettled_log: Vec<String>,
    honest_evictions: u64,
    honest_eviction_log: Vec<String>,
    catch_up_rebuilds: u64,
    state_lost: u64,
    leaked_processes: usize,
    realtime_priority: bool,
}

/// One activation's configuration, drawn at random (the block size and the latency in blocks
/// as `only` fixes them, if it does).
fn draw_config(rng: &mut Rng, worker: &std::path::Path, only: Only) -> EngineConfig {
    let block = [64usize, 128, 256, 512][rng.below(4) as usize];
    // Mostly one block of latency (the default), sometimes two, sometimes none.
    let latency_blocks = match rng.below(6) {
        0 => 0,
        1 => 2,
        _ => 1,
    };
    let block = only.block.unwrap_or(block);
    let latency = only.latency_blocks.unwrap_or(latency_blocks) * block as u32;
    let mode = if rng.below(3) == 0 {
        ProcessMode::Offline
    } else {
        ProcessMode::Realtime
    };
    let drawn = Protection::ALL[rng.below(2) as usize];
    let protection = only.protection.unwrap_or(drawn);
    EngineConfig {
        sample_rate: SAMPLE_RATE,
        max_block: block,
        latency,
        mode,
        protection: protection.into(),
        worker_path: worker.to_path_buf(),
    }
}

/// The hypervisor's steal through the soak, sampled by a thread of its own every
/// [`StealClock::PERIOD_MS`], so a run of wrong frames can be told whether this VM's vCPUs were
/// running something else around it (`host::steal_ms`, 10 ms resolution).
struct StealClock {
    /// (time, steal so far in ms), one per period.
    samples: std::sync::Arc<std::sync::Mutex<Vec<(u64, u64)>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StealClock {
    const PERIOD_MS: u64 = 20;
    /// How far before and after a block its steal is counted: a vCPU taken away delays the
    /// workers' wake-ups for a while after it is back.
    const AROUND_NS: u64 = 100_000_000;

    fn start() -> StealClock {
        let samples =
            std::sync::Arc::new(std::sync::Mutex::new(vec![(now_ns(), host::steal_ms())]));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (samples, stop) = (samples.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(Self::PERIOD_MS));
                    let sample = (now_ns(), host::steal_ms());
                    samples.lock().unwrap().push(sample);
                }
            })
        };
        StealClock {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// Steal in ms from `AROUND_NS` before `at_ns` to `AROUND_NS` after it.
    fn around(&self, at_ns: u64) -> u64 {
        let samples = self.samples.lock().unwrap();
        let at = |t: u64| {
            let i = samples.partition_point(|&(ns, _)| ns <= t);
            samples[i.saturating_sub(1)].1
        };
        at(at_ns + Self::AROUND_NS) - at(at_ns.saturating_sub(Self::AROUND_NS))
    }

    /// Stops sampling (so no `/proc/stat` is open when the soak counts its fds) and returns
    /// the steal in ms since the clock started.
    fn stop(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let samples = self.samples.lock().unwrap();
        samples.last().map_or(0, |l| l.1) - samples[0].1
    }
}

fn count_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// The soak's state across activations.
struct Chaos {
    rng: Rng,
    worker: std::path::PathBuf,
    deadline_ns: u64,
    totals: Totals,
    /// The activation has `CrashOnNote` armed: a worker no fault was aimed at that aborts (a
    /// rebuild replaying the poisoned chunk before it is quarantined) is the poison's.
    poison_armed: bool,
    only: Only,
    /// Every activation's tuning (the default, or `--checkpoint-frames`).
    tuning: Tuning,
    /// The hypervisor's steal over the soak.
    steal: StealClock,
    /// This activation's engine events as drained: (block, how many there were before).
    drained: Vec<(usize, usize)>,
}

/// What `--block`, `--latency-blocks` and `--protection` fix of the configurations drawn (to
/// look at one). The draws are made all the same, so a seed plays the same faults.
#[derive(Clone, Copy)]
struct Only {
    block: Option<usize>,
    latency_blocks: Option<u32>,
    protection: Option<Protection>,
}

impl Only {
    /// The flags that reproduce this choice.
    fn flags(&self) -> String {
        let mut flags = String::new();
        if let Some(b) = self.block {
            flags += &format!(" --block {b}");
        }
        if let Some(l) = self.latency_blocks {
            flags += &format!(" --latency-blocks {l}");
        }
        if let Some(p) = self.protection {
            flags += &format!(" --protection {}", p.name());
        }
        flags
    }
}

impl Chaos {
    /// Plays one activation until a reactivation, its recording's cap, an unsettled fault or the
    /// deadline; then checks it against the reference.
    fn activation(&mut self) -> Result<()> {
        let config = draw_config(&mut self.rng, &self.worker, self.only);
        let (block, latency) = (config.max_block, config.latency);
        // Activate as a DAW does, from a thread in the normal class; play from a real-time one.
        host::normal_priority();
        let mut engine = Engine::activate_with(config.clone(), self.tuning.clone())?;
        let up_since = now_ns();
        while !engine.settled() {
            ensure!(
                now_ns() - up_since < SETTLE_BOUND_NS,
                "the engine did not come up"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.totals.realtime_priority |= host::try_realtime_priority();
        self.totals.activations += 1;
        let eco = config.protection == tandem::engine::Protection::Eco;
        self.totals.eco_activations += eco as usize;
        let mut mode = config.mode;
        let period_ns = (block as f64 / SAMPLE_RATE as f64 * 1e9) as u64;
        let mut phrase = Phrase::new(SAMPLE_RATE);
        let mut played: Vec<Played> = Vec::new();
        let mut out: [Vec<f32>; 2] = [Vec::new(), Vec::new()];
        let (mut l, mut r) = (vec![0.0; block], vec![0.0; block]);
        let mut windows: Vec<Window> = Vec::new();
        let mut events: Vec<EngineEvent> = Vec::new();
        let mut targeted: BTreeSet<u32> = BTreeSet::new();
        let mut in_flight: Option<InFlight> = None;
        let mut context = format!(
            "no fault yet, {:?}, {mode:?}, block {block}, L {latency}",
            config.protection
        );
        let mut next_fault_block = 20 + self.rng.below(100);
        let mut reset_next = false;
        let mut poison_next = false;
        self.poison_armed = false;
        let mut t = now_ns();
        let mut reactivate = false;
        self.drained.clear();
        loop {
            let b = played.len() as u64;
            let frame = b * block as u64;
            if mode == ProcessMode::Realtime {
                t += period_ns;
                // A host that fell far behind (a stall, an offline phase) restarts its clock.
                if now_ns() > t + 8 * period_ns {
                    t = now_ns();
                }
                host::sleep_until(t);
            }
            if reset_next {
                engine.reset();
            }
            let (ev, params) = phrase.block(block);
            let (mut ev, params) = (ev.to_vec(), *params);
            if std::mem::take(&mut poison_next) {
                let kind = EventKind::NoteOn {
                    key: POISON_KEY,
                    velocity: 0.9,
                };
                ev.insert(0, Event { offset: 0, kind });
            }
            let t0 = now_ns();
            let report = engine.process(&ev, &params, None, [&mut l, &mut r]);
            let took = now_ns() - t0;
            let gave_up = mode == ProcessMode::Offline && report.fallback_frames > 0;
            if gave_up || took > STUCK_NS {
                self.totals.stuck_waits += 1;
                if self.totals.stuck_log.len() < 20 {
                    self.totals.stuck_log.push(format!(
                        "{:.3} s, {} fallback frames at frame {frame} ({context})",
                        took as f64 / 1e9,
                        report.fallback_frames
                    ));
                }
            }
            self.totals.xrun_frames += report.fallback_frames as u64;
            played.push(Played {
                events: ev,
                params,
                reset: std::mem::take(&mut reset_next),
                fallback: report.fallback_frames,
                unconfirmed: report.unconfirmed_frames,
                mode,
                at_ns: t0,
            });
            out[0].extend_from_slice(&l);
            out[1].extend_from_slice(&r);
            if b.is_multiple_of(64) {
                self.take_events(&engine, (&mut events, played.len()), &targeted, &context);
            }
            let failures = engine.stats().failures.load(Ordering::Relaxed);
            let now = now_ns();
            if let Some(f) = &mut in_flight {
                let undone = f.undo.as_ref().is_none_or(|h| h.is_finished());
                let switched = engine.stats().switches.load(Ordering::Relaxed) > f.switches_before;
                let unheard = f.fault.expect == Expect::EvictionIfHeard && switched;
                let failed = failures >= f.failures_before + f.failures_needed || unheard;
                let pids = engine.worker_pids();
                let spare = engine.spare_pid();
                let replaced = !f.targets.is_empty()
                    && f.targets
                        .iter()
                        .all(|t| !pids.contains(t) && spare != Some(*t));
                f.caught_up |= f.undone_before && report.fallback_frames == 0;
                f.undone_before |= undone;
                let settled = f.caught_up && engine.settled() && (failed || replaced);
                let late = now.saturating_sub(f.since_ns.max(f.undo_at_ns)) > SETTLE_BOUND_NS;
                if settled || late {
                    windows.push(Window {
                        start: f.window_start,
                        end: frame + 2 * block as u64 + latency as u64,
                        fault: f.fault,
                        offline: f.offline,
                    });
                    if !settled {
                        self.take_events(&engine, (&mut events, played.len()), &targeted, &context);
                        let recent: Vec<String> = events[f.events_before..]
                            .iter()
                            .filter(|e| !matches!(e, EngineEvent::Xrun { .. }))
                            .map(|e| e.to_string())
                            .collect();
                        if self.totals.unsettled_log.len() < 20 {
                            self.totals.unsettled_log.push(format!(
                                "{context}: protected {}, failures {} (before {}); since: {}",
                                engine.settled(),
                                failures,
                                f.failures_before,
                                recent.join("; ")
                            ));
                        }
                        *self
                            .totals
                            .unsettled_by_kind
                            .entry(f.fault.name.to_string())
                            .or_default() += 1;
                        reactivate = true;
                    }
                    in_flight = None;
                    next_fault_block = b + 10 + self.rng.below(150);
                }
            } else if b >= next_fault_block && !reactivate {
                let f = &FAULTS[self.rng.below(FAULTS.len() as u64) as usize];
                if mode == ProcessMode::Realtime {
                    // Land it at a random moment inside the period.
                    host::sleep_until(now_ns() + self.rng.below(period_ns / 2));
                }
                *self
                    .totals
                    .faults_by_kind
                    .entry(f.name.to_string())
                    .or_default() += 1;
                let slot = match f.aim {
                    Aim::Either if !eco => self.rng.below(2) as usize,
                    Aim::Either | Aim::Serving => engine.serving_slot(),
                };
                let mut failures_needed = match (f.expect, f.act) {
                    (Expect::Nothing, _) => 0,
                    (Expect::EvictionInRealtime, _) if mode == ProcessMode::Offline => 0,
                    // Offline, the host may be waiting for the chunk and copy it before the
                    // overwrite, as at latency 0.
                    (Expect::EvictionIfHeard, _)
                        if latency == 0 || mode == ProcessMode::Offline =>
                    {
                        0
                    }
                    (Expect::EvictionInLockstep, _) if eco => 0,
                    // A poison note kills every worker in a slot.
                    (Expect::Eviction, Act::Poison) => engine.worker_pids().len() as u64,
                    (
                        Expect::Eviction
                        | Expect::EvictionInRealtime
                        | Expect::EvictionInLockstep
                        | Expect::EvictionIfHeard,
                        _,
                    ) => 1,
                };
                let target = engine.worker_pid(slot).unwrap_or(0);
                self.take_events(&engine, (&mut events, played.len()), &targeted, &context);
                let events_before = events.len();
                context = format!(
                    "last fault {} on slot {slot} (pid {target}), {:?}, {mode:?}, block {block}, \
                     L {latency}, frame {frame}",
                    f.name, config.protection
                );
                let mut undo = None;
                let mut undo_in_ms = 0;
                let mut targets = Vec::new();
                match f.act {
                    Act::Signal(sig) => {
                        targeted.insert(target);
                        if let Some(pidfd) = host::child_pidfd(target) {
                            host::signal(&pidfd, sig);
                        }
                    }
                    Act::Inject(kind, arg) => {
                        targeted.insert(target);
                        engine.inject_fault(slot, kind as u32, arg);
                    }
                    Act::Stall => {
                        targeted.insert(target);
                        if let Some(pidfd) = host::child_pidfd(target) {
                            host::signal(&pidfd, libc::SIGSTOP);
                            undo_in_ms = 2 + self.rng.below(38);
                            undo = Some(undo_later(undo_in_ms, move || {
                                host::signal(&pidfd, libc::SIGCONT)
                            }));
                        }
                    }
                    Act::Double(sig) => {
                        self.totals.double_deaths += 1;
                        // Every worker in a slot dies, and must be replaced; in Eco the
                        // standby dies with the active worker.
                        let mut pids = engine.worker_pids();
                        failures_needed = pids.len() as u64;
                        if eco {
                            pids.extend(engine.spare_pid());
                        }
                        targets.clone_from(&pids);
                        let pidfds: Vec<OwnedFd> = pids
                            .into_iter()
                            .inspect(|p| {
                                targeted.insert(*p);
                            })
                            .filter_map(host::child_pidfd)
                            .collect();
                        for pidfd in &pidfds {
                            host::signal(pidfd, sig);
                        }
                    }
                    Act::Poison => {
                        targeted.extend(engine.worker_pids());
                        engine.inject_fault(0, FaultKind::CrashOnNote as u32, POISON_KEY as u32);
                        self.poison_armed = true;
                        poison_next = true;
                    }
                    Act::Overload(priority) => {
                        let hogs = host::Pressure::start_at(host::cores(), priority);
                        undo_in_ms = if priority > 0 {
                            20 + self.rng.below(80)
                        } else {
                            100 + self.rng.below(500)
                        };
                        undo = Some(undo_later(undo_in_ms, move || drop(hogs)));
                    }
                    Act::HostStall => {
                        std::thread::sleep(std::time::Duration::from_millis(
                            20 + self.rng.below(280),
                        ));
                    }
                    Act::Reset => reset_next = true,
                    Act::SwitchMode => {
                        mode = match mode {
                            ProcessMode::Realtime => ProcessMode::Offline,
                            ProcessMode::Offline => ProcessMode::Realtime,
                        };
                        engine.set_mode(mode);
                    }
                    Act::Reactivate => reactivate = true,
                }
                let now = now_ns();
                in_flight = Some(InFlight {
                    events_before,
                    fault: f,
                    window_start: frame + block as u64,
                    failures_before: failures,
                    switches_before: engine.stats().switches.load(Ordering::Relaxed),
                    failures_needed,
                    targets: match f.act {
                        Act::Signal(_) | Act::Inject(..) | Act::Stall
                            if failures_needed > 0 && target != 0 =>
                        {
                            vec![target]
                        }
                        _ => targets,
                    },
                    undo,
                    undo_at_ns: now + undo_in_ms * 1_000_000,
                    since_ns: now,
                    undone_before: false,
                    caught_up: false,
                    offline: mode == ProcessMode::Offline,
                });
            }
            let full = out[0].len() as u64 >= MAX_SEGMENT_FRAMES;
            let done = in_flight.is_none() && (reactivate || full || now >= self.deadline_ns);
            if done || now >= self.deadline_ns + SETTLE_BOUND_NS {
                break;
            }
        }
        // A fault still in flight (the soak's end) keeps its window to the end.
        if let Some(mut f) = in_flight.take() {
            if let Some(undo) = f.undo.take() {
                let _ = undo.join();
            }
            windows.push(Window {
                start: f.window_start,
                end: u64::MAX,
                fault: f.fault,
                offline: f.offline,
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        self.take_events(&engine, (&mut events, played.len()), &targeted, &context);
        host::normal_priority();
        drop(engine);
        self.count_leaked(&events);
        self.totals.audio_frames += out[0].len() as u64;
        for e in &events {
            // One chunk per block (see `compare`): the workers rendered this block without its
            // events, and so does the reference.
            if let EngineEvent::ChunkQuarantined { chunk, .. } = e {
                if let Some(p) = played.get_mut(*chunk as usize) {
                    p.events.clear();
                }
            }
        }
        self.compare(&played, &out, &windows, &events, eco, (block, latency))
    }

    /// Moves the engine's events into `events`, counting deaths and evictions of workers no
    /// fault was aimed at.
    fn take_events(
        &mut self,
        engine: &Engine,
        (events, block): (&mut Vec<EngineEvent>, usize),
        targeted: &BTreeSet<u32>,
        context: &str,
    ) {
        self.drained.push((block, events.len()));
        // What the engine did just before an event that needs explaining.
        let before = |events: &[EngineEvent]| {
            let recent: Vec<String> = events
                .iter()
                .rev()
                .take(8)
                .rev()
                .map(|e| e.to_string())
                .collect();
            recent.join("; ")
        };
        for e in engine.drain_events() {
            let pid = match &e {
                EngineEvent::WorkerDied { pid, .. } | EngineEvent::WorkerEvicted { pid, .. } => {
                    *pid
                }
                _ => 0,
            };
            // A worker left behind and rebuilt near the head is what the engine should do with
            // a starved twin (issue 13 item 7), not a lost worker: counted apart.
            if let EngineEvent::WorkerEvicted {
                reason: EvictReason::FellBehind,
                ..
            } = e
            {
                self.totals.catch_up_rebuilds += 1;
            } else if pid != 0 && !targeted.contains(&pid) && !self.poisoned(&e) {
                self.totals.honest_evictions += 1;
                if self.totals.honest_eviction_log.len() < 50 {
                    self.totals
                        .honest_eviction_log
                        .push(format!("{e} ({context}); before it: {}", before(events)));
                }
            }
            if let EngineEvent::StateLost { .. } = e {
                if self.totals.state_lost_log.len() < 20 {
                    self.totals
                        .state_lost_log
                        .push(format!("{e} ({context}); before it: {}", before(events)));
                }
            }
            events.push(e);
        }
    }

    /// Whether `e` is a worker's abort while the activation has `CrashOnNote` armed.
    fn poisoned(&self, e: &EngineEvent) -> bool {
        let abort = WorkerExit::Signalled(libc::SIGABRT);
        self.poison_armed && matches!(e, EngineEvent::WorkerDied { cause, .. } if *cause == abort)
    }

    /// Counts the workers an engine spawned that are still alive a second after it was dropped.
    fn count_leaked(&mut self, events: &[EngineEvent]) {
        let spawned: Vec<u32> = events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::WorkerSpawned { pid, .. } => Some(*pid),
                _ => None,
            })
            .collect();
        let alive = || {
            spawned
                .iter()
                .filter(|p| host::child_pidfd(**p).is_some())
                .count()
        };
        let since = now_ns();
        while alive() > 0 && now_ns() - since < 1_000_000_000 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.totals.leaked_processes += alive();
    }

    /// Logs the engine's events around block `b`, the first of a run of wrong frames (those
    /// drained within 64 blocks before and after), with the fault whose window it fell in and
    /// the hypervisor's steal around it: what the engine did when it lost the sound.
    fn log_wrong_run(
        &mut self,
        events: &[EngineEvent],
        (b, place, steal_ms): (usize, &str, u64),
        (eco, block, latency): (bool, usize, u32),
    ) {
        let at = |bound: usize| {
            self.drained
                .iter()
                .find(|(d, _)| *d >= bound)
                .map_or(events.len(), |&(_, n)| n)
        };
        let (from, to) = (at(b.saturating_sub(64)), at(b + 64));
        let around: Vec<String> = events[from.min(to)..to]
            .iter()
            .filter(|e| !matches!(e, EngineEvent::Xrun { .. }))
            .map(|e| e.to_string())
            .collect();
        self.totals.wrong_run_log.push(format!(
            "activation {}, block {b}, {}, block {block}, L {latency}, {place}, steal {steal_ms} \
             ms around: {}",
            self.totals.activations,
            if eco { "Eco" } else { "Lockstep" },
            around.join("; ")
        ));
    }

    /// Replays the activation's blocks through the reference and sorts every differing frame:
    /// a double death's gap, or a mismatch (served as exact, or the engine's declared fallback).
    /// `events`: the engine's, for its fresh restarts and what it did around wrong frames no
    /// fault explains. `eco`: the activation ran in Eco (see `Expect::EvictionInLockstep`).
    fn compare(
        &mut self,
        played: &[Played],
        out: &[Vec<f32>; 2],
        windows: &[Window],
        events: &[EngineEvent],
        eco: bool,
        (block, latency): (usize, u32),
    ) -> Result<()> {
        let lost_at: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::StateLost { from_chunk } => Some(*from_chunk),
                _ => None,
            })
            .collect();
        self.totals.state_lost += lost_at.len() as u64;
        // The block before had wrong frames: this one continues its run.
        let mut previous_wrong = false;
        let mut reference = ReferenceEngine::new(SAMPLE_RATE, block, latency)?;
        let (mut l, mut r) = (vec![0.0; block], vec![0.0; block]);
        let mut gaps = vec![0u64; windows.len()];
        for (b, p) in played.iter().enumerate() {
            // One chunk per block here (blocks of at most 512 frames, few events), so a chunk
            // index is a block index: the workers restarted from a fresh state at this block.
            if lost_at.contains(&(b as u64)) {
                reference = ReferenceEngine::new(SAMPLE_RATE, block, latency)?;
            }
            if p.reset {
                reference.reset();
            }
            reference.process(&p.events, &p.params, None, [&mut l, &mut r]);
            let (mut served_wrong, mut fallback_wrong, mut first_wrong) = (0, 0, None);
            for k in 0..block {
                let f = b * block + k;
                let same =
                    out[0][f].to_bits() == l[k].to_bits() && out[1][f].to_bits() == r[k].to_bits();
                if same {
                    continue;
                }
                let frame = f as u64;
                let fallback = k >= block - p.fallback as usize;
                let window = windows
                    .iter()
                    .position(|w| w.start <= frame && frame < w.end);
                match window.map(|i| (i, windows[i].fault.act)) {
                    Some((i, Act::Double(_) | Act::Poison)) => gaps[i] += 1,
                    Some((_, Act::Overload(priority))) if priority > 0 => {
                        self.totals.starved_frames += 1
                    }
                    Some((i, _))
                        if windows[i].fault.expect == Expect::EvictionInLockstep
                            && (eco || (p.unconfirmed > 0 && !fallback)) =>
                    {
                        self.totals.unconfirmed_wrong_frames += 1
                    }
                    _ => {
                        self.totals.mismatched += 1;
                        self.totals.mismatched_in_eco += eco as u64;
                        self.totals.mismatched_at_latency_zero += (latency == 0) as u64;
                        let config = format!(
                            "{} {:?} block {block} L {latency}",
                            if eco { "Eco" } else { "Lockstep" },
                            p.mode
                        );
                        *self.totals.mismatched_by_config.entry(config).or_default() += 1;
                        let kind = window.map_or("none", |i| windows[i].fault.name);
                        *self
                            .totals
                            .mismatched_by_kind
                            .entry(kind.to_string())
                            .or_default() += 1;
                        if fallback {
                            fallback_wrong += 1;
                        } else {
                            served_wrong += 1;
                            *self
                                .totals
                                .mismatched_served_by_kind
                                .entry(kind.to_string())
                                .or_default() += 1;
                        }
                        first_wrong.get_or_insert((k, window));
                    }
                }
            }
            self.totals.mismatched_served += served_wrong;
            let first_of_run = first_wrong.is_some() && !previous_wrong;
            previous_wrong = first_wrong.is_some();
            if let Some((k, window)) = first_wrong {
                let steal_ms = self.steal.around(p.at_ns);
                if steal_ms > 0 {
                    self.totals.mismatched_near_steal += served_wrong + fallback_wrong;
                }
                let frame = (b * block) as u64;
                let place = match window {
                    Some(i) => format!(
                        "in the window of {} [{}, {})",
                        windows[i].fault.name, windows[i].start, windows[i].end
                    ),
                    None => match windows.iter().rev().find(|w| w.end <= frame) {
                        Some(w) => format!(
                            "outside any window, {} frames after that of {} [{}, {})",
                            frame - w.end,
                            w.fault.name,
                            w.start,
                            w.end
                        ),
                        None => "outside any window, before the first fault".to_string(),
                    },
                };
                // Every run at a latency that should hide a late worker; at latency 0, where a
                // late wake-up is an xrun, the runs no fault explains.
                if first_of_run
                    && (latency > 0 || window.is_none())
                    && self.totals.wrong_run_log.len() < WRONG_RUN_LOG_LINES
                {
                    self.log_wrong_run(events, (b, &place, steal_ms), (eco, block, latency));
                }
                // Every block with wrong frames served as exact; a few with only the fallback.
                let fallback_only = served_wrong == 0;
                self.totals.fallback_blocks_logged += fallback_only as usize;
                if self.totals.mismatch_log.len() < MISMATCH_LOG_LINES
                    && (!fallback_only || self.totals.fallback_blocks_logged <= FALLBACK_LOG_LINES)
                {
                    self.totals.mismatch_log.push(format!(
                        "activation {}, block {b} (frame {frame}), from offset {k}: {served_wrong} \
                         served and {fallback_wrong} fallback frames wrong, {place}; {}, {:?}, \
                         block {block}, L {latency}{}",
                        self.totals.activations,
                        if eco { "Eco" } else { "Lockstep" },
                        p.mode,
                        if p.reset { ", reset before it" } else { "" }
                    ));
                }
            }
        }
        for (w, gap) in windows.iter().zip(gaps) {
            if matches!(w.fault.act, Act::Double(_) | Act::Poison) {
                let ms = gap as f64 / SAMPLE_RATE as f64 * 1e3;
                self.totals.gap_ms.push(ms);
                if ms > LONG_GAP_MS && self.totals.long_gap_log.len() < 20 {
                    self.totals.long_gap_log.push(format!(
                        "activation {}: {ms:.1} ms of {} in [{}, {}); {}, block {block}, L {latency}",
                        self.totals.activations,
                        w.fault.name,
                        w.start,
                        w.end,
                        if eco { "Eco" } else { "Lockstep" },
                    ));
                }
                if w.offline {
                    self.totals.offline_gap_frames += gap;
                }
            }
        }
        Ok(())
    }
}

/// Entry point.
pub fn run(args: &[String]) -> Result<()> {
    let seconds: f64 = flag(args, "--seconds", 600.0)?;
    let seed: u64 = flag(args, "--seed", 1)?;
    let only = Only {
        block: optional_flag(args, "--block")?,
        latency_blocks: optional_flag(args, "--latency-blocks")?,
        protection: if args.iter().any(|a| a == "--protection") {
            Some(Protection::from_args(args)?)
        } else {
            None
        },
    };
    let checkpoint_frames: Option<u32> = optional_flag(args, "--checkpoint-frames")?;
    let mut tuning = Tuning::default();
    if let Some(frames) = checkpoint_frames {
        ensure!(frames > 0, "--checkpoint-frames must be at least 1");
        tuning.checkpoint_frames = frames;
        tuning.eco_checkpoint_frames = frames;
    }
    let worker = host::build_worker()?;
    let fds_before = count_fds();
    let started = now_ns();
    let mut soak = Chaos {
        rng: Rng::new(seed),
        worker,
        deadline_ns: started + (seconds * 1e9) as u64,
        totals: Totals::default(),
        poison_armed: false,
        only,
        tuning,
        steal: StealClock::start(),
        drained: Vec::new(),
    };
    println!(
        "soak: {seconds} s, seed {seed}, {} fault kinds",
        FAULTS.len()
    );
    while now_ns() < soak.deadline_ns {
        soak.activation()?;
    }
    let wall_s = (now_ns() - started) as f64 / 1e9;
    let steal_ms = soak.steal.stop();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let leaked_fds = count_fds().saturating_sub(fds_before);
    let t = soak.totals;
    let gap = Summary::new(t.gap_ms.clone()).quantiles();
    let faults_total: u64 = t.faults_by_kind.values().sum();
    let json = schema::Soak {
        seconds: wall_s,
        audio_seconds: t.audio_frames as f64 / SAMPLE_RATE as f64,
        seed,
        activations: t.activations,
        eco_activations: t.eco_activations,
        faults_total,
        faults_by_kind: t.faults_by_kind,
        double_deaths: t.double_deaths,
        mismatched_frames: t.mismatched,
        mismatched_served_frames: t.mismatched_served,
        mismatched_by_kind: t.mismatched_by_kind,
        mismatched_served_by_kind: t.mismatched_served_by_kind,
        mismatched_in_eco: t.mismatched_in_eco,
        mismatched_by_config: t.mismatched_by_config,
        mismatched_at_latency_zero: t.mismatched_at_latency_zero,
        mismatched_near_steal: t.mismatched_near_steal,
        steal_ms,
        mismatch_log: t.mismatch_log,
        wrong_run_log: t.wrong_run_log,
        gap_ms: gap,
        long_gap_log: t.long_gap_log,
        starved_frames: t.starved_frames,
        unconfirmed_wrong_frames: t.unconfirmed_wrong_frames,
        state_lost_log: t.state_lost_log,
        offline_gap_frames: t.offline_gap_frames,
        xrun_frames: t.xrun_frames,
        stuck_waits: t.stuck_waits,
        stuck_log: t.stuck_log,
        unsettled_by_kind: t.unsettled_by_kind,
        unsettled_log: t.unsettled_log,
        honest_evictions: t.honest_evictions,
        catch_up_rebuilds: t.catch_up_rebuilds,
        honest_eviction_log: t.honest_eviction_log,
        state_lost: t.state_lost,
        leaked_fds,
        leaked_processes: t.leaked_processes,
        realtime_priority: t.realtime_priority,
        machine: Machine::this(),
        command: format!(
            "cargo xtask bench soak --seconds {seconds} --seed {seed}{}{}",
            only.flags(),
            checkpoint_frames.map_or(String::new(), |f| format!(" --checkpoint-frames {f}"))
        ),
    };
    print_summary(&json);
    let path = json.write()?;
    println!("wrote {}", path.display());
    Ok(())
}

fn print_summary(s: &schema::Soak) {
    println!(
        "{:.0} s wall, {:.0} s of audio, {} activations ({} in Eco), realtime priority {}",
        s.seconds,
        s.audio_seconds,
        s.activations,
        s.eco_activations,
        if s.realtime_priority {
            "granted"
        } else {
            "not granted"
        }
    );
    println!(
        "faults: {} ({} double deaths)",
        s.faults_total, s.double_deaths
    );
    for (kind, n) in &s.faults_by_kind {
        println!("  {kind:<16} {n}");
    }
    println!(
        "mismatched frames (goal 0): {} ({} served as exact, the rest declared fallback; {} in \
         Eco; {} at latency 0)",
        s.mismatched_frames,
        s.mismatched_served_frames,
        s.mismatched_in_eco,
        s.mismatched_at_latency_zero
    );
    for (kind, n) in &s.mismatched_by_kind {
        let served = s.mismatched_served_by_kind.get(kind).unwrap_or(&0);
        println!("  in the window of {kind:<16} {n} ({served} served as exact)");
    }
    for (config, n) in &s.mismatched_by_config {
        println!("  in {config:<34} {n}");
    }
    for line in s.mismatch_log.iter().take(40) {
        println!("  {line}");
    }
    println!(
        "hypervisor steal: {} ms in all; mismatched frames within {} ms of some: {}",
        s.steal_ms,
        StealClock::AROUND_NS / 1_000_000,
        s.mismatched_near_steal
    );
    println!(
        "engine events around runs of wrong frames (every run at a latency of a block or more; \
         at latency 0, those outside every window):"
    );
    for line in &s.wrong_run_log {
        println!("  {line}");
    }
    println!(
        "double-death and poison gap: p50 {:.2} ms, max {:.2} ms (n={}); offline gap frames {}",
        s.gap_ms.p50, s.gap_ms.max, s.gap_ms.n, s.offline_gap_frames
    );
    for line in &s.long_gap_log {
        println!("  {line}");
    }
    println!(
        "xrun frames: {}; frames differing while real-time hogs starved the workers: {}; \
         finite wrong frames served on one worker's word (Eco; Lockstep past the deadline): {}",
        s.xrun_frames, s.starved_frames, s.unconfirmed_wrong_frames
    );
    println!("stuck waits (goal 0): {}", s.stuck_waits);
    for line in &s.stuck_log {
        println!("  {line}");
    }
    println!("unsettled faults (goal none): {:?}", s.unsettled_by_kind);
    for line in s.unsettled_log.iter().take(10) {
        println!("  {line}");
    }
    println!(
        "honest evictions (goal 0): {}; starved workers rebuilt to catch up: {}",
        s.honest_evictions, s.catch_up_rebuilds
    );
    for line in s.honest_eviction_log.iter().take(10) {
        println!("  {line}");
    }
    println!("state lost (fresh restarts): {}", s.state_lost);
    for line in &s.state_lost_log {
        println!("  {line}");
    }
    println!(
        "leaked fds: {}, leaked processes: {}",
        s.leaked_fds, s.leaked_processes
    );
}
