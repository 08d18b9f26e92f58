//! A simulated host for the benchmarks: a period clock, a deterministic phrase, and a recording
//! that can be replayed through the in-process reference to count differing frames.

use anyhow::{Context, Result};
use dsp::{Event, EventKind, ParamId, N_PARAMS};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use tandem::engine::{Engine, ReferenceEngine};

/// Builds the release worker the benchmarks spawn and returns its path.
pub fn build_worker() -> Result<PathBuf> {
    crate::util::run(std::process::Command::new(crate::util::cargo()).args([
        "build",
        "--release",
        "-p",
        "sandbox-worker",
        "--bin",
        "tandem-worker",
    ]))?;
    let path = crate::util::cargo_target_dir()?.join("release/tandem-worker");
    path.is_file()
        .then_some(path.clone())
        .with_context(|| format!("{} was not built", path.display()))
}

/// CLOCK_MONOTONIC now, in nanoseconds (the clock the engine's events use).
pub fn now_ns() -> u64 {
    shm::futex::monotonic_ns()
}

/// Sleeps until the absolute CLOCK_MONOTONIC time `t_ns` (no drift across periods).
pub fn sleep_until(t_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (t_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (t_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: clock_nanosleep reads the timespec we own; a null remainder is allowed with
    // TIMER_ABSTIME.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

/// Asks for SCHED_FIFO for the calling thread, as a DAW's audio thread has; true if granted.
pub fn try_realtime_priority() -> bool {
    let param = libc::sched_param { sched_priority: 20 };
    // SAFETY: sched_setscheduler on the calling thread (0) with a param we own.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
}

/// A 16-voice passage that keeps every voice busy: chords of eight notes re-struck every half
/// second, a bass line, and cutoff/resonance automation every block. Deterministic.
pub struct Phrase {
    sample_rate: f32,
    frame: u64,
    /// Parameter targets of the current block.
    pub params: [f32; N_PARAMS],
    events: Vec<Event>,
    held: Vec<u8>,
    step: u64,
}

impl Phrase {
    /// A phrase at `sample_rate`.
    pub fn new(sample_rate: f32) -> Phrase {
        let mut params = test_support::default_params();
        params[ParamId::Polyphony.index()] = 16.0;
        Phrase {
            sample_rate,
            frame: 0,
            params,
            events: Vec::with_capacity(64),
            held: Vec::with_capacity(16),
            step: 0,
        }
    }

    /// Events and parameter targets for the next block of `n` frames.
    pub fn block(&mut self, n: usize) -> (&[Event], &[f32; N_PARAMS]) {
        self.events.clear();
        let t = self.frame as f32 / self.sample_rate;
        self.params[ParamId::Cutoff.index()] = 400.0 + 5000.0 * (0.5 + 0.5 * (t * 0.9).sin());
        self.params[ParamId::Resonance.index()] = 0.35 + 0.25 * (t * 1.7).sin().abs();
        let stride = (self.sample_rate / 2.0) as u64;
        let end = self.frame + n as u64;
        let mut next = self.step * stride;
        while next < end {
            if next >= self.frame {
                let offset = (next - self.frame) as u32;
                for key in self.held.drain(..) {
                    self.events.push(Event {
                        offset,
                        kind: EventKind::NoteOff { key },
                    });
                }
                const CHORDS: [[u8; 4]; 4] = [
                    [0, 4, 7, 11],
                    [5, 9, 12, 16],
                    [7, 11, 14, 17],
                    [2, 5, 9, 12],
                ];
                let chord = CHORDS[(self.step % 4) as usize];
                for (i, base) in [48u8, 60].into_iter().enumerate() {
                    for (j, k) in chord.iter().enumerate() {
                        let key = base + k;
                        let velocity = 0.5 + 0.1 * ((i * 4 + j) % 5) as f32;
                        self.events.push(Event {
                            offset,
                            kind: EventKind::NoteOn { key, velocity },
                        });
                        self.held.push(key);
                    }
                }
            }
            self.step += 1;
            next = self.step * stride;
        }
        self.frame = end;
        (&self.events, &self.params)
    }
}

/// Everything a host fed the engine and everything it got back, for replay against the
/// reference afterwards.
pub struct Recording {
    blocks: Vec<(Vec<Event>, [f32; N_PARAMS])>,
    out: [Vec<f32>; 2],
}

impl Recording {
    /// An empty recording with room for `frames` frames.
    pub fn with_capacity(frames: usize) -> Recording {
        Recording {
            blocks: Vec::with_capacity(frames / 32 + 1),
            out: [Vec::with_capacity(frames), Vec::with_capacity(frames)],
        }
    }

    /// Plays one block through `engine` and records it.
    pub fn process(
        &mut self,
        engine: &mut Engine,
        phrase: &mut Phrase,
        out: [&mut [f32]; 2],
    ) -> u32 {
        let n = out[0].len();
        let (events, params) = phrase.block(n);
        let [l, r] = out;
        let report = engine.process(events, params, None, [&mut *l, &mut *r]);
        self.blocks.push((events.to_vec(), *params));
        self.out[0].extend_from_slice(l);
        self.out[1].extend_from_slice(r);
        report.fallback_frames
    }

    /// Frames (either channel) that differ from the in-process reference render.
    pub fn differing_frames(&self, sample_rate: f32, block: usize, latency: u32) -> Result<u64> {
        Ok(self
            .differing_frame_list(sample_rate, block, latency)?
            .len() as u64)
    }

    /// The frames (either channel) that differ from the in-process reference render, in order.
    pub fn differing_frame_list(
        &self,
        sample_rate: f32,
        block: usize,
        latency: u32,
    ) -> Result<Vec<u64>> {
        let mut reference = ReferenceEngine::new(sample_rate, block, latency)?;
        let (mut l, mut r) = (vec![0.0; block], vec![0.0; block]);
        let mut frame = 0usize;
        let mut differing = Vec::new();
        for (events, params) in &self.blocks {
            reference.process(events, params, None, [&mut l, &mut r]);
            for k in 0..block {
                let same = self.out[0][frame + k].to_bits() == l[k].to_bits()
                    && self.out[1][frame + k].to_bits() == r[k].to_bits();
                if !same {
                    differing.push((frame + k) as u64);
                }
            }
            frame += block;
        }
        Ok(differing)
    }
}

impl Recording {
    /// As [`Recording::process`], also returning how long `engine.process` itself took (ns),
    /// measured around that call alone so the recording's own copying is not counted.
    pub fn process_timed(
        &mut self,
        engine: &mut Engine,
        phrase: &mut Phrase,
        out: [&mut [f32]; 2],
    ) -> (u32, u64) {
        let n = out[0].len();
        let (events, params) = phrase.block(n);
        let [l, r] = out;
        let t0 = now_ns();
        let report = engine.process(events, params, None, [&mut *l, &mut *r]);
        let took = now_ns() - t0;
        self.blocks.push((events.to_vec(), *params));
        self.out[0].extend_from_slice(l);
        self.out[1].extend_from_slice(r);
        (report.fallback_frames, took)
    }
}

/// Puts the calling thread back in the normal scheduling class (`SCHED_OTHER`, nice 0).
pub fn normal_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler on the calling thread (0) with a param we own.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
}

/// CPU time of this whole process (every thread, live or exited), in nanoseconds, from
/// `getrusage(RUSAGE_SELF)` (microsecond resolution; the kernel scales user+system time to the
/// scheduler's exact runtime, unlike the 10 ms ticks of `/proc/self/stat`).
pub fn self_cpu_ns() -> u64 {
    rusage_ns(libc::RUSAGE_SELF)
}

/// CPU time of this process's children that have ended and been reaped, in nanoseconds.
pub fn reaped_children_cpu_ns() -> u64 {
    rusage_ns(libc::RUSAGE_CHILDREN)
}

fn rusage_ns(who: libc::c_int) -> u64 {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(who, &mut usage) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(usage.ru_utime) + us(usage.ru_stime)) * 1000
}

/// What the scheduler says of a thread, or of a process summed over its threads: the first and
/// third fields of `schedstat`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sched {
    /// CPU time it has run, in ns (the scheduler's exact runtime).
    pub run_ns: u64,
    /// Times it was put on a CPU: each wake-up from a sleep counts one, and so does each
    /// return after a preemption.
    pub slices: u64,
}

impl Sched {
    fn read(path: &std::path::Path) -> Sched {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut fields = text
            .split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0));
        let run_ns = fields.next().unwrap_or(0);
        Sched {
            run_ns,
            slices: fields.nth(1).unwrap_or(0),
        }
    }

    /// What ran since `earlier`.
    pub fn since(self, earlier: Sched) -> Sched {
        Sched {
            run_ns: self.run_ns.saturating_sub(earlier.run_ns),
            slices: self.slices.saturating_sub(earlier.slices),
        }
    }
}

/// Process `pid` so far, summed over its threads (`/proc/<pid>/task/<tid>/schedstat`).
/// `None` once the process is gone.
pub fn pid_sched(pid: u32) -> Option<Sched> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = Sched::default();
    for task in tasks.flatten() {
        let t = Sched::read(&task.path().join("schedstat"));
        total.run_ns += t.run_ns;
        total.slices += t.slices;
    }
    Some(total)
}

/// CPU time of process `pid` so far, in nanoseconds: the sum over its threads of the first field
/// of `/proc/<pid>/task/<tid>/schedstat` (the scheduler's exact runtime). `/proc/<pid>/stat`'s
/// utime+stime say the same in 10 ms ticks, too coarse for a few seconds of a light worker.
/// `None` once the process is gone.
pub fn pid_cpu_ns(pid: u32) -> Option<u64> {
    pid_sched(pid).map(|s| s.run_ns)
}

/// Thread `tid` of this process so far (`/proc/self/task/<tid>/schedstat`).
pub fn thread_sched(tid: u32) -> Sched {
    Sched::read(std::path::Path::new(&format!(
        "/proc/self/task/{tid}/schedstat"
    )))
}

/// The calling thread's id.
pub fn this_thread_id() -> u32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// The id of this process's thread named `name` (`/proc/self/task/<tid>/comm`, where the kernel
/// keeps the first 15 bytes of a name), if there is one.
pub fn thread_named(name: &str) -> Option<u32> {
    let kept = &name.as_bytes()[..name.len().min(15)];
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .flatten()
        .find(|task| {
            std::fs::read(task.path().join("comm"))
                .is_ok_and(|c| c.strip_suffix(b"\n").unwrap_or(&c) == kept)
        })?
        .file_name()
        .to_str()?
        .parse()
        .ok()
}

/// Proportional set size of process `pid` in KiB, from `/proc/<pid>/smaps_rollup`: each shared
/// page counts 1/N to each of the N processes that map it, so summing PSS over processes counts
/// every page once.
pub fn pss_kib(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines()
        .find(|l| l.starts_with("Pss:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Sends SIGKILL to `pid` only if it is still a child of this process (checked through a pidfd,
/// so a recycled pid of somebody else's process is never signalled). Returns the pidfd if the
/// signal was sent: it becomes readable once the process has exited.
pub fn kill_child(pid: u32) -> Option<OwnedFd> {
    let fd = child_pidfd(pid)?;
    tandem::sys::pidfd_kill(fd.as_fd());
    Some(fd)
}

/// A pidfd on `pid` if it is a live child of this process: a handle that signals that very
/// process, never a successor with a recycled pid.
pub fn child_pidfd(pid: u32) -> Option<OwnedFd> {
    if pid == 0 {
        return None;
    }
    let fd = tandem::sys::pidfd_open(pid).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The parent pid is the second field after the parenthesised command name.
    let ppid = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse::<u32>().ok());
    // The pidfd still unreadable after reading `stat` means its process was alive throughout,
    // so `stat` described that very process and not a successor with a recycled pid.
    let ours = !exited(&fd, 0) && ppid == Some(std::process::id());
    ours.then_some(fd)
}

/// Sends `signal` to the process behind `pidfd` (best effort: an exited process needs none).
pub fn signal(pidfd: &OwnedFd, signal: i32) {
    // SAFETY: pidfd_send_signal on a pidfd we keep open for the call; a null siginfo is allowed
    // and nothing else is dereferenced.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

/// Waits up to `timeout_ms` for the process behind `pidfd` to exit; true if it has.
pub fn exited(pidfd: &OwnedFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one pollfd we own.
    unsafe { libc::poll(&mut pfd, 1, timeout_ms) > 0 }
}

/// CPU pressure: one busy-spinning thread per core at normal priority, until dropped.
pub struct Pressure {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pressure {
    /// Starts `threads` spinners (none for 0). They drop to `SCHED_OTHER` first, whatever the
    /// spawning thread's class, so they compete like a busy DAW's other work would.
    pub fn start(threads: usize) -> Pressure {
        Self::start_at(threads, 0)
    }

    /// As [`Pressure::start`], the spinners at `SCHED_FIFO` `priority` when it is above 0 and
    /// granted (a real-time hog, like another plugin's audio work), else in the normal class.
    pub fn start_at(threads: usize, priority: i32) -> Pressure {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|i| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("pressure-{i}"))
                    .spawn(move || {
                        normal_priority();
                        if priority > 0 {
                            let param = libc::sched_param {
                                sched_priority: priority,
                            };
                            // SAFETY: sched_setscheduler on the calling thread (0) with a param
                            // we own.
                            unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
                        }
                        let mut x = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            x = std::hint::black_box(x.wrapping_mul(6364136223846793005) + 1);
                        }
                    })
                    .expect("spawning a pressure thread")
            })
            .collect();
        Pressure { stop, threads }
    }
}

impl Drop for Pressure {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The number of cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Time the hypervisor ran something else while this VM's vCPUs wanted to run (the `steal`
/// column of `/proc/stat`, all CPUs), in milliseconds; 10 ms resolution.
pub fn steal_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(8))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1000 / hz
}
