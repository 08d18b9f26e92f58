//! The worker process: map the regions it was handed, enter the sandbox, restore its starting
//! state (bytes a twin wrote), then render every chunk the plugin posts until the plugin goes away.

use crate::fault::{self, Aftermath};
use render::ChunkRenderer;
use shm::chunk::{Chunk, MAX_CHUNK_FRAMES};
use shm::{Doorbell, FaultKind, InputRing, OutputRing, ReadError};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Where the plugin's socket arrives (stdin); the memfds come over it, and the worker then moves
/// it to [`FD_PARENT`].
pub const FD_LINK: RawFd = 0;
/// The input ring's memfd (mapped read-only).
pub const FD_INPUT: RawFd = 3;
/// This worker's output ring's memfd.
pub const FD_OUTPUT: RawFd = 4;
/// The doorbell's memfd.
pub const FD_DOORBELL: RawFd = 5;
/// The socket to the plugin: a hang-up means the plugin process is gone.
pub const FD_PARENT: RawFd = 6;

pub use shm::exit_status::{EXIT_LAPPED, EXIT_PARENT_GONE, EXIT_RESTORE, EXIT_SANDBOX, EXIT_SETUP};

/// The name `ps` and `top` show for a worker (at most 15 bytes, the kernel's limit).
pub const PROCESS_NAME: &std::ffi::CStr = c"tandem-worker";

/// Names this process [`PROCESS_NAME`]. The plugin may execute the worker through a descriptor
/// path (`/proc/self/fd/N`), whose last component, a number, would otherwise be the name.
pub fn name_process() {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes from the pointer,
    // which points at a static C string literal.
    unsafe { libc::prctl(libc::PR_SET_NAME, PROCESS_NAME.as_ptr(), 0, 0, 0) };
}

/// The longest the render loop runs without blocking. An offline bounce can keep a worker busy
/// for minutes (the host posts the next chunk before the worker has finished the current one),
/// and `RLIMIT_RTTIME` kills a real-time process after 2 s of CPU without a blocking call, both
/// twins at about the same moment. So after this long awake it sleeps for [`NAP`], which resets
/// the kernel's count; far below the budget, and costing nothing measurable.
const MAX_AWAKE: Duration = Duration::from_millis(100);

/// Long enough that the sleep's timer cannot expire before the thread has blocked (a sleep of a
/// microsecond or so may return without ever leaving the CPU, which would reset nothing).
const NAP: Duration = Duration::from_micros(50);

/// What the plugin tells a worker on its command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Args {
    /// Slot 0 or 1 (a spare learns its slot when it is called).
    pub slot: u32,
    /// A spare: it sleeps until the plugin calls it into a slot.
    pub spare: bool,
    /// This spawn's epoch (non-zero).
    pub epoch: u32,
    /// How long to spin before sleeping on the input futex, in microseconds.
    pub spin_us: u32,
}

impl Args {
    /// Parses `--slot S --epoch E [--spin-us N]`, or `--spare --epoch E [--spin-us N]`.
    pub fn parse(args: &[String]) -> Result<Args, String> {
        let mut parsed = Args {
            slot: u32::MAX,
            spare: false,
            epoch: 0,
            spin_us: 0,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "--spare" {
                parsed.spare = true;
                parsed.slot = 0;
                continue;
            }
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .parse::<u32>()
                .map_err(|e| format!("{flag}: {e}"))?;
            match flag.as_str() {
                "--slot" => parsed.slot = value,
                "--epoch" => parsed.epoch = value,
                "--spin-us" => parsed.spin_us = value,
                _ => return Err(format!("unknown argument {flag}")),
            }
        }
        if parsed.slot > 1 || parsed.epoch == 0 {
            return Err("--slot 0|1 (or --spare) and --epoch N>0 are required".into());
        }
        Ok(parsed)
    }
}

/// Receives the memfds over the socket on stdin and puts everything at its fixed number: the
/// memfds at 3..=5, the socket at 6, `/dev/null` at 0. Whatever else sits at those numbers (an
/// fd the host leaked to us) is replaced.
fn place_fds() -> Result<(), String> {
    let received = shm::handoff::recv_fds(FD_LINK, 3).map_err(|e| format!("hand-off: {e}"))?;
    let mut sources: Vec<RawFd> = received
        .iter()
        .map(std::os::fd::AsRawFd::as_raw_fd)
        .collect();
    sources.insert(3, FD_LINK);
    let targets = [FD_INPUT, FD_OUTPUT, FD_DOORBELL, FD_PARENT];
    // SAFETY: fcntl/dup2/open on fds this fresh single-threaded process owns. Moving every
    // source above the targets first means no dup2 can clobber a source still to be moved.
    unsafe {
        let mut moved = [0; 4];
        for (m, src) in moved.iter_mut().zip(&sources) {
            *m = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, 64);
            if *m < 0 {
                return Err(std::io::Error::last_os_error().to_string());
            }
        }
        drop(received);
        for (m, dst) in moved.into_iter().zip(targets) {
            if libc::dup2(m, dst) < 0 {
                return Err(std::io::Error::last_os_error().to_string());
            }
            libc::close(m);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null < 0 || libc::dup2(null, FD_LINK) < 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        libc::close(null);
    }
    Ok(())
}

/// Runs the worker. Returns an exit status if it fails before the sandbox; once sandboxed, it
/// exits the process itself.
pub fn run(args: Args) -> i32 {
    if let Err(e) = place_fds() {
        eprintln!("tandem-worker: {e}");
        return EXIT_SETUP;
    }
    // SAFETY: `place_fds` just put these fds there; nothing else in this process owns them,
    // and each is wrapped exactly once.
    let (input_fd, output_fd, doorbell_fd) = unsafe {
        (
            OwnedFd::from_raw_fd(FD_INPUT),
            OwnedFd::from_raw_fd(FD_OUTPUT),
            OwnedFd::from_raw_fd(FD_DOORBELL),
        )
    };
    let setup = || -> Result<_, shm::OpenError> {
        let input = InputRing::open(input_fd)?;
        let output = OutputRing::open(output_fd, *input.config())?;
        let doorbell = Doorbell::open(doorbell_fd)?;
        Ok((input, output, doorbell))
    };
    let (input, output, doorbell) = match setup() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tandem-worker: {e}");
            return EXIT_SETUP;
        }
    };
    let mut renderer = match ChunkRenderer::new(input.config().sample_rate) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tandem-worker: {e}");
            return EXIT_SETUP;
        }
    };
    let mut snapshot = Vec::with_capacity(output.snapshot_max());
    if args.spare {
        return crate::spare::run(args, input, output, doorbell, renderer, snapshot);
    }
    if let Err(e) = shm::death::arm(output.death_word()) {
        // Not fatal: the supervisor then learns of our death from the pidfd only.
        eprintln!("tandem-worker: death word not armed: {e}");
    }
    if let Err(code) = crate::enter_sandbox() {
        return code;
    }
    // A worker spawned into its slot is never dismissed: only a standby called from the spare
    // is (`RenderLoop::run`).
    let code = render_stint(
        args,
        &input,
        &output,
        &doorbell,
        &mut renderer,
        &mut snapshot,
    );
    // Exit right here: dropping the regions would `close` and `munmap`, and freeing buffers may
    // `madvise`, none of which the sandbox allows (the process would end by SIGSYS instead of
    // its own status). The kernel releases everything anyway.
    std::process::exit(code.unwrap_or(EXIT_SETUP))
}

/// Restores the start state the plugin wrote into `output` (its spawn epoch must be ours) into
/// the renderer; `snapshot` (allocated with the snapshot area's capacity) is its scratch.
/// Returns the chunk that state follows, or the exit status to end with.
pub(crate) fn restore(
    args: Args,
    output: &OutputRing,
    renderer: &mut ChunkRenderer,
    snapshot: &mut Vec<u8>,
) -> Result<Option<u64>, i32> {
    let (epoch, restore_chunk) = output.spawn_info(snapshot);
    if epoch != args.epoch {
        eprintln!(
            "tandem-worker: spawned as epoch {} but the ring says {epoch}",
            args.epoch
        );
        return Err(EXIT_SETUP);
    }
    if !snapshot.is_empty() {
        if let Err(e) = renderer.synth.restore(snapshot) {
            eprintln!("tandem-worker: refused start state: {e}");
            return Err(EXIT_RESTORE);
        }
    }
    snapshot.resize(output.snapshot_max(), 0);
    Ok(restore_chunk)
}

/// Restores the start state the plugin wrote into `output` and runs the render loop from the
/// chunk after it. Called inside the sandbox: the start state, bytes a twin wrote, is parsed
/// only there. Returns the status to exit with, or `None` when the plugin dismissed this
/// standby from its slot.
pub(crate) fn render_stint(
    args: Args,
    input: &InputRing,
    output: &OutputRing,
    doorbell: &Doorbell,
    renderer: &mut ChunkRenderer,
    snapshot: &mut Vec<u8>,
) -> Option<i32> {
    let restore_chunk = match restore(args, output, renderer, snapshot) {
        Ok(c) => c,
        Err(code) => return Some(code),
    };
    RenderLoop::new(
        args,
        input,
        output,
        doorbell,
        renderer,
        snapshot,
        restore_chunk.map_or(0, |c| c + 1),
    )
    .run()
}

/// The render loop: no allocation, no locks, no I/O but the futexes and the parent check (an
/// injected test fault may log). Its one repeated step, [`RenderLoop::step`], is public so a test
/// can run exactly that under an allocator that aborts on allocation.
pub struct RenderLoop<'a> {
    args: Args,
    input: &'a InputRing,
    output: &'a OutputRing,
    doorbell: &'a Doorbell,
    renderer: &'a mut ChunkRenderer,
    snapshot: &'a mut [u8],
    chunk: Chunk,
    /// The next chunk to render.
    next: u64,
    /// Whether the output ring has been told where this worker starts.
    started: bool,
    /// Set by an injected `BadFields` fault: from then on, progress is bogus.
    rogue: bool,
    /// Set by an injected `MuteDigests` fault: from then on, no digests.
    mute_digests: bool,
    /// Set by an injected `BadVoiceEnds` fault: from then on, malformed voice-end tables.
    bad_ends: bool,
    /// Set by an injected `HogBetweenChunks` fault: from then on, busy between chunks.
    hog: bool,
    /// Set by an injected `BadSnapshot` fault: the next snapshot is damaged.
    bad_snapshot: bool,
    /// The chunk to render without its events (the supervisor's quarantine; `u64::MAX`: none).
    quarantined: u64,
}

/// What one [`RenderLoop::step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Rendered a chunk and published it.
    Rendered,
    /// The next chunk has not been posted yet.
    NotYet,
    /// The input ring has overwritten the next chunk: this worker can never catch up.
    Lapped,
}

impl<'a> RenderLoop<'a> {
    /// A loop that renders from chunk `first_chunk` on; `snapshot` is scratch of the output
    /// ring's snapshot size.
    pub fn new(
        args: Args,
        input: &'a InputRing,
        output: &'a OutputRing,
        doorbell: &'a Doorbell,
        renderer: &'a mut ChunkRenderer,
        snapshot: &'a mut [u8],
        first_chunk: u64,
    ) -> RenderLoop<'a> {
        RenderLoop {
            args,
            input,
            output,
            doorbell,
            renderer,
            snapshot,
            chunk: Chunk::default(),
            next: first_chunk,
            started: false,
            rogue: false,
            mute_digests: false,
            bad_ends: false,
            hog: false,
            bad_snapshot: false,
            quarantined: output.quarantined_chunk(),
        }
    }

    /// Renders until the plugin goes away (or this worker is lapped) and returns the exit
    /// status, or, a standby called from the spare, until the plugin dismisses it from its
    /// slot (`InputRing::dismiss`): `None`.
    pub fn run(mut self) -> Option<i32> {
        let spin = Duration::from_micros(self.args.spin_us as u64);
        let mut awake_since = Instant::now();
        loop {
            let slot = self.args.slot as usize;
            if self.args.spare && self.input.spare_called(self.args.epoch) != Some(slot) {
                return None;
            }
            match self.step() {
                Step::Rendered => {
                    if awake_since.elapsed() >= MAX_AWAKE {
                        std::thread::sleep(NAP);
                        awake_since = Instant::now();
                    }
                }
                Step::Lapped => {
                    eprintln!(
                        "tandem-worker: slot {} lapped at chunk {}",
                        self.args.slot, self.next
                    );
                    return Some(EXIT_LAPPED);
                }
                Step::NotYet if self.hog => fault::hog_a_millisecond(),
                Step::NotYet => {
                    if !wait_for_chunk(self.input, self.output, self.next, spin) && parent_gone() {
                        return Some(EXIT_PARENT_GONE);
                    }
                    awake_since = Instant::now();
                }
            }
        }
    }

    /// Reads the next chunk if it has been posted, renders it (committing a fault aimed at this
    /// worker first), writes its audio, digest and progress (and a snapshot if asked), and
    /// rings the doorbell.
    pub fn step(&mut self) -> Step {
        let [il, ir] = &mut self.renderer.input;
        match self
            .input
            .read(self.next, &mut self.chunk, [&mut il[..], &mut ir[..]])
        {
            Ok(()) => {}
            Err(ReadError::Lapped) => return Step::Lapped,
            Err(ReadError::NotYet) => return Step::NotYet,
        }
        if self.next == self.quarantined {
            self.chunk.n_events = 0;
        }
        let (args, output, chunk) = (&self.args, self.output, &self.chunk);
        if !self.started {
            output.begin(args.epoch, chunk.start_frame, self.next);
            self.started = true;
        }
        let mut poison = false;
        let mut flip = false;
        let mut overwrite = false;
        let f = chunk.fault;
        if f.kind == FaultKind::CrashOnNote as u32 {
            fault::crash_on_note(chunk, f.arg);
        } else if f.kind != 0 && f.slot == args.slot && f.epoch == args.epoch {
            match FaultKind::from_u32(f.kind) {
                Some(kind) => match fault::commit(kind, f.arg) {
                    Aftermath::Continue => {}
                    Aftermath::Rogue => self.rogue = true,
                    Aftermath::PoisonChunk => poison = true,
                    Aftermath::BadVoiceEnds => self.bad_ends = true,
                    Aftermath::MuteDigests => self.mute_digests = true,
                    Aftermath::FlipLowBit => flip = true,
                    Aftermath::OverwriteFinished => overwrite = true,
                    Aftermath::HogBetweenChunks => self.hog = true,
                    Aftermath::BadSnapshot => self.bad_snapshot = true,
                },
                None => crate::attempt_escape(f.kind, self.input, output),
            }
        }
        self.renderer.render(chunk);
        let frames = (chunk.frames as usize).min(MAX_CHUNK_FRAMES);
        if poison {
            self.renderer.output[0][..frames].fill(f32::NAN);
        }
        if flip {
            let first = &mut self.renderer.output[0][0];
            *first = f32::from_bits(first.to_bits() ^ 1);
        }
        let [l, r] = self.renderer.rendered(frames);
        output.write_audio(chunk.start_frame, [l, r]);
        let ends = self.renderer.voice_ends();
        if self.bad_ends {
            output.write_bogus_voice_ends(self.next);
        } else {
            output.write_voice_ends(self.next, ends);
        }
        let digest = shm::voice_end::fold(shm::digest(l, r), ends);
        let frames_done = chunk.start_frame + frames as u64;
        if self.mute_digests {
            output.complete_chunk_without_digest(self.next, frames_done);
        } else {
            output.complete_chunk(self.next, frames_done, digest);
        }
        if self.rogue {
            output.write_bogus_progress();
        }
        if overwrite {
            let [l, r] = &mut self.renderer.output;
            for s in l[..frames].iter_mut().chain(&mut r[..frames]) {
                *s = 0.5 * *s + 0.25;
            }
            let [l, r] = self.renderer.rendered(frames);
            output.write_audio(chunk.start_frame, [l, r]);
        }
        if chunk.snapshot_slots & (1 << args.slot) != 0 {
            if let Ok(n) = self.renderer.synth.snapshot_into(self.snapshot) {
                if std::mem::take(&mut self.bad_snapshot) {
                    self.snapshot[n - 1] ^= 1;
                }
                output.write_snapshot(self.next, &self.snapshot[..n]);
            }
        }
        self.doorbell.ring();
        self.next += 1;
        Step::Rendered
    }
}

/// Waits for chunk `next`: spins for `spin`, then sleeps on the futex with no timeout, so an
/// idle worker costs nothing (the plugin wakes it when it posts; if the plugin dies, the
/// parent-death signal ends us). Returns false if it woke with nothing new (then it checks on
/// the parent).
fn wait_for_chunk(input: &InputRing, output: &OutputRing, next: u64, spin: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < spin {
        if input.published() > next {
            return true;
        }
        std::hint::spin_loop();
    }
    output.set_sleeping(true);
    // Re-check after announcing the sleep: the plugin stores `published` and then reads our
    // flag (both SeqCst), so either we see its chunk here or it sees our flag and wakes us.
    if input.published() <= next {
        shm::futex::wait_untimed(input.seq_word(), next as u32);
    }
    output.set_sleeping(false);
    input.seq_word().load(Ordering::Acquire) != next as u32
}

/// True when the parent socket is closed (the plugin process died or dropped us).
pub(crate) fn parent_gone() -> bool {
    let mut pfd = libc::pollfd {
        fd: FD_PARENT,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one pollfd we own, with a zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n < 0
        || (n > 0
            && pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLIN | libc::POLLNVAL) != 0)
}
