//! What the audio thread and the supervisor thread share: the rings, one record per worker slot,
//! and the few words they signal each other with.
//!
//! The packed words have one type each, with their packing in one place: a slot's
//! [`Generation`] (epoch, [`SlotState`] and output ring) and a test's [`FaultRequest`]. Everything here is
//! created on the main thread at activation; afterwards only atomics change, so the audio
//! thread may touch any of it without locking or allocating.

use super::config::{EngineConfig, EngineError};
use super::events::Stats;
use shm::chunk::MAX_CHUNK_FRAMES;
use shm::{Doorbell, InputRing, OutputRing, RingConfig, Rogue};
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// What a worker slot holds (see docs/ARCHITECTURE.md, "Worker slot states").
///
/// `Empty -> Joining` when the supervisor spawns a worker into it, `Joining -> Live` when the
/// newcomer has caught up and matched its twin bit for bit, and back to `Empty` when the worker
/// dies or is evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum SlotState {
    /// No worker: the audio thread ignores the slot's ring.
    Empty = 0,
    /// A worker started and is catching up; its ring may serve frames it has rendered.
    Joining = 1,
    /// A verified worker in lockstep with its twin.
    Live = 2,
}

/// Output rings: one per worker slot and one more, so that the spare renders into a ring of its
/// own and a dead (or evicted, maybe still running) worker's ring is recycled only once its
/// pidfd says it is gone, off the rebuild's path (docs/ARCHITECTURE.md, "Ring layouts").
pub(crate) const OUTPUT_RINGS: usize = 3;

/// A slot's generation: its worker's spawn epoch and stint, the slot's state and the output
/// ring that worker writes, read and written as one atomic word, so the audio thread can read it
/// before and after copying from a ring and use the copy only if nothing changed in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Generation {
    /// The spawn epoch of the slot's worker (0 for an empty slot).
    pub epoch: u32,
    /// Which call into a slot this is (the supervisor counts them, wrapping): an Eco standby
    /// sent back to sleep keeps its epoch, and called into the same slot again it starts from
    /// a checkpoint that may be older than where its last stint ended. What the audio thread
    /// knows of a slot's progress belongs to one stint.
    pub stint: u16,
    /// What the slot holds.
    pub state: SlotState,
    /// The worker's output ring, an index into `Shared::rings` (below `OUTPUT_RINGS`).
    pub ring: usize,
}

impl Generation {
    /// An empty slot.
    pub const EMPTY: Generation = Generation {
        epoch: 0,
        stint: 0,
        state: SlotState::Empty,
        ring: 0,
    };

    /// The worker writing the slot's ring, as the audio thread tells workers apart.
    pub fn worker(self) -> (u32, u16) {
        (self.epoch, self.stint)
    }

    /// The stint in the top 16 bits, the epoch below it, the ring in the second byte, the
    /// state in the low byte.
    fn pack(self) -> u64 {
        ((self.stint as u64) << 48)
            | ((self.epoch as u64) << 16)
            | ((self.ring as u64 & 0xff) << 8)
            | self.state as u64
    }

    /// Inverse of `pack`. Only the plugin writes the word, so every value is one `pack` made
    /// (and its ring one below `OUTPUT_RINGS`).
    fn unpack(word: u64) -> Generation {
        let state = match word & 0xff {
            1 => SlotState::Joining,
            2 => SlotState::Live,
            _ => SlotState::Empty,
        };
        Generation {
            epoch: (word >> 16) as u32,
            stint: (word >> 48) as u16,
            state,
            ring: ((word >> 8) & 0xff) as usize % OUTPUT_RINGS,
        }
    }
}

/// A [`Generation`] in one atomic word.
pub(crate) struct AtomicGeneration(AtomicU64);

impl AtomicGeneration {
    /// A word holding `generation`.
    pub fn new(generation: Generation) -> AtomicGeneration {
        AtomicGeneration(AtomicU64::new(generation.pack()))
    }

    /// The current generation (acquire: what the supervisor stored before it is visible).
    pub fn load(&self) -> Generation {
        Generation::unpack(self.0.load(Ordering::Acquire))
    }

    /// Publishes a new generation (supervisor thread only).
    pub fn store(&self, generation: Generation) {
        self.0.store(generation.pack(), Ordering::Release);
    }
}

/// A test's or benchmark's request that the worker in `slot` commit fault `kind` (a
/// `shm::FaultKind` code or a sandbox escape code) while rendering the next chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FaultRequest {
    /// Worker slot 0 or 1.
    pub slot: usize,
    /// The fault code (16 bits travel).
    pub kind: u32,
    /// The fault's parameter (31 bits travel).
    pub arg: u32,
}

impl FaultRequest {
    /// Bit 63 marks a request; the argument sits in bits 32..63, the kind in bits 8..24 and
    /// the slot in bit 0.
    fn pack(self) -> u64 {
        (1u64 << 63)
            | ((self.arg as u64 & 0x7fff_ffff) << 32)
            | ((self.kind as u64 & 0xffff) << 8)
            | (self.slot as u64 & 1)
    }

    /// Inverse of `pack`; `None` for the empty word.
    fn unpack(word: u64) -> Option<FaultRequest> {
        (word >> 63 != 0).then_some(FaultRequest {
            slot: (word & 1) as usize,
            kind: ((word >> 8) & 0xffff) as u32,
            arg: ((word >> 32) & 0x7fff_ffff) as u32,
        })
    }
}

/// Holds at most one [`FaultRequest`], posted by any thread and taken by the audio thread.
#[derive(Default)]
pub(crate) struct FaultMailbox(AtomicU64);

impl FaultMailbox {
    /// Posts `request`, replacing one not yet taken.
    pub fn post(&self, request: FaultRequest) {
        self.0.store(request.pack(), Ordering::Release);
    }

    /// Takes the pending request, if any (audio thread).
    pub fn take(&self) -> Option<FaultRequest> {
        FaultRequest::unpack(self.0.swap(0, Ordering::AcqRel))
    }
}

/// What the plugin side knows about one worker slot, shared by the audio thread and the
/// supervisor.
pub(crate) struct SlotShared {
    /// The slot's worker epoch and state, and the ring it writes.
    pub generation: AtomicGeneration,
    /// First frame this epoch's output is valid from.
    pub valid_from: AtomicU64,
    /// First chunk this epoch renders.
    pub floor_chunk: AtomicU64,
    /// The worker's pid (0 when empty).
    pub pid: AtomicU32,
}

/// State shared between the audio thread and the supervisor thread.
pub(crate) struct Shared {
    /// The broadcast input ring (the audio thread is its only writer).
    pub input: InputRing,
    /// Rung by the workers after each chunk; the audio thread sleeps on it.
    pub doorbell: Doorbell,
    /// Worker slots 0 and 1.
    pub slots: [SlotShared; 2],
    /// The output rings (`OUTPUT_RINGS`): each slot's generation names the one its worker
    /// writes, the spare holds another, and the supervisor hands a ring out again only once
    /// the process that wrote it is reaped.
    pub rings: [OutputRing; OUTPUT_RINGS],
    /// The slot whose ring the audio thread served its last block from.
    pub serving: AtomicUsize,
    /// The spare worker's pid (0 when there is none).
    pub spare_pid: AtomicU32,
    /// The spare has entered its sandbox: a call into a slot now skips its whole start-up.
    pub spare_ready: AtomicBool,
    /// Bit `s`: the supervisor asks the worker in slot `s` for a snapshot after the first chunk
    /// of the next block that starts at `snapshot_from_frame` or later.
    pub snapshot_request: AtomicU32,
    /// Where `snapshot_request` applies from (stored before it): the supervisor asks for its
    /// next checkpoint as soon as it takes one, so one pass per checkpoint suffices (a
    /// re-asked request applies at once, from the frame posted then).
    pub snapshot_from_frame: AtomicU64,
    /// A fault for the next chunk (tests and benchmarks).
    pub fault_request: FaultMailbox,
    /// Set when the engine is dropped: the supervisor ends.
    pub shutdown: AtomicBool,
    /// Set while no worker can be started: an offline render stops waiting then.
    pub workers_failing: AtomicBool,
    /// The end of what the audio thread has delivered to the host: frames before it can never
    /// be asked for again, so a checkpoint may end there at the latest (a rebuild from a later
    /// one would leave frames the host still needs in no ring).
    pub delivered_frames: AtomicU64,
    /// Where the newest state the supervisor keeps (its checkpoint or a newer candidate) ends:
    /// the first chunk after it and its end frame. Offline, the audio thread keeps it within
    /// half the input ring of what it posts (`Engine::wait_for_checkpoint`), so a double death
    /// always finds a state to rebuild from.
    pub state_chunk: AtomicU64,
    /// The end frame of that state (see `state_chunk`).
    pub state_frame: AtomicU64,
    /// Set while the supervisor waits for a snapshot it asked for (`snapshot_request`).
    pub checkpoint_pending: AtomicBool,
    /// Counters for anyone to read.
    pub stats: Stats,
    /// The supervisor's wake word: bumped and futex-woken to end its sleep early.
    pub wake: AtomicU32,
    /// Eco: set by the audio thread when the active worker is late with frames it needs (a
    /// hedge); the supervisor calls the standby into the empty slot and clears it.
    pub hedge_request: AtomicBool,
    /// Set while the supervisor sleeps without a timeout (an idle engine): whoever posts a
    /// chunk must then wake it (`Shared::wake_supervisor`, a `FUTEX_WAKE`).
    pub supervisor_asleep: AtomicBool,
    /// The audio thread wakes the supervisor with the post that reaches this frame (its next
    /// checkpoint is due, or a snapshot may be in), once; `u64::MAX`: no such wake
    /// (`supervisor/wait.rs`).
    pub supervisor_due_frame: AtomicU64,
}

impl Shared {
    /// Main thread, at activation: sizes and creates the rings for `config` and a synth
    /// snapshot of `snapshot_len` bytes. Every slot starts empty.
    pub fn create(config: &EngineConfig, snapshot_len: usize) -> Result<Shared, EngineError> {
        // About half a second of audio (capped for the validators' megahertz rates), and always
        // room for a rebuild to replay while blocks keep coming. Half a second is ten hang
        // timeouts and a hundred Lockstep checkpoints; the plugin locks the rings in memory, so
        // each frame of span costs four rings' worth of locked memory. 512 records hold that
        // span in 64-frame chunks.
        let span = (config.sample_rate as usize / 2)
            .min(1 << 17)
            .max(4 * (config.max_block + config.latency as usize + MAX_CHUNK_FRAMES));
        let ring = RingConfig {
            record_count: 512,
            audio_capacity: span.next_power_of_two() as u32,
            snapshot_max: (snapshot_len as u32).next_multiple_of(8),
            sample_rate: config.sample_rate,
        };
        let slot = || SlotShared {
            generation: AtomicGeneration::new(Generation::EMPTY),
            valid_from: AtomicU64::new(0),
            floor_chunk: AtomicU64::new(0),
            pid: AtomicU32::new(0),
        };
        let output = || OutputRing::create(ring).map_err(EngineError::SharedMemory);
        Ok(Shared {
            input: InputRing::create(ring).map_err(EngineError::SharedMemory)?,
            doorbell: Doorbell::create().map_err(EngineError::SharedMemory)?,
            slots: [slot(), slot()],
            rings: [output()?, output()?, output()?],
            serving: AtomicUsize::new(0),
            spare_pid: AtomicU32::new(0),
            spare_ready: AtomicBool::new(false),
            snapshot_request: AtomicU32::new(0),
            snapshot_from_frame: AtomicU64::new(0),
            fault_request: FaultMailbox::default(),
            shutdown: AtomicBool::new(false),
            workers_failing: AtomicBool::new(false),
            delivered_frames: AtomicU64::new(0),
            state_chunk: AtomicU64::new(0),
            state_frame: AtomicU64::new(0),
            checkpoint_pending: AtomicBool::new(false),
            stats: Stats::default(),
            wake: AtomicU32::new(0),
            hedge_request: AtomicBool::new(false),
            supervisor_asleep: AtomicBool::new(false),
            supervisor_due_frame: AtomicU64::new(u64::MAX),
        })
    }

    /// The output ring the worker of `generation` writes.
    pub fn ring(&self, generation: Generation) -> &OutputRing {
        &self.rings[generation.ring]
    }

    /// Audio thread: copies frames `[start, start + n)` out of the ring of the worker in `slot`
    /// that `validated` names, the generation under which the caller checked that its ring
    /// holds them. `Ok(false)`, with nothing to serve, when the slot changed before or during
    /// the copy: a worker evicted (and maybe replaced, in another ring) after the check is
    /// never served. A seqlock reader: the ring's words are read relaxed, so an acquire fence
    /// keeps those reads before the second look at the generation on weakly ordered CPUs. `Err`
    /// only for audio the validated worker wrote.
    pub fn copy_validated(
        &self,
        slot: usize,
        validated: Generation,
        start: u64,
        out: [&mut [f32]; 2],
    ) -> Result<bool, Rogue> {
        let generation = &self.slots[slot].generation;
        if generation.load() != validated {
            return Ok(false);
        }
        let copied = self.ring(validated).copy_frames(start, out);
        fence(Ordering::Acquire);
        if generation.load() != validated {
            return Ok(false);
        }
        copied.map(|()| true)
    }

    /// Ends the supervisor's current or next sleep early. Only a futex wake: the audio thread
    /// may call it.
    pub fn wake_supervisor(&self) {
        self.wake.fetch_add(1, Ordering::SeqCst);
        shm::futex::wake_all(&self.wake);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_round_trip() {
        for state in [SlotState::Empty, SlotState::Joining, SlotState::Live] {
            for epoch in [0, 1, 77, u32::MAX >> 8, u32::MAX] {
                for ring in 0..OUTPUT_RINGS {
                    for stint in [0, 1, u16::MAX] {
                        let g = Generation {
                            epoch,
                            stint,
                            state,
                            ring,
                        };
                        assert_eq!(Generation::unpack(g.pack()), g);
                    }
                }
            }
        }
    }

    fn generation(epoch: u32, state: SlotState, ring: usize) -> Generation {
        Generation {
            epoch,
            stint: 1,
            state,
            ring,
        }
    }

    fn shared() -> Shared {
        let config = EngineConfig {
            sample_rate: 48_000.0,
            max_block: 256,
            latency: 256,
            mode: super::super::config::ProcessMode::Realtime,
            worker_path: std::path::PathBuf::new(),
            protection: super::super::config::Protection::Lockstep,
        };
        Shared::create(&config, 64).unwrap()
    }

    /// Writes chunk 0 (256 frames of `value`) into `ring` as the worker of `epoch` would.
    fn render(ring: &OutputRing, epoch: u32, value: f32) {
        let audio = [value; 256];
        ring.begin(epoch, 0, 0);
        ring.write_audio(0, [&audio, &audio]);
        ring.complete_chunk(0, 256, shm::digest(&audio, &audio));
    }

    /// A slot whose worker is evicted and replaced between the check of what its ring holds and
    /// the copy: the copy serves nothing, not the newcomer's (or a half-written) audio, whether
    /// the newcomer writes another ring (the spare) or the same one.
    #[test]
    fn a_slot_changed_since_validation_is_never_served() {
        for second_ring in [2, 0] {
            let shared = shared();
            let slot = &shared.slots[0];
            let first = generation(1, SlotState::Live, 0);
            slot.generation.store(first);
            render(&shared.rings[0], 1, 0.5);
            let (mut l, mut r) = ([0.0; 256], [0.0; 256]);
            assert_eq!(
                shared.copy_validated(0, first, 0, [&mut l, &mut r]),
                Ok(true)
            );
            assert!(l.iter().chain(&r).all(|&s| s == 0.5));

            // The audio thread checked under `first`; then the supervisor evicts that worker and
            // calls another into the slot, which renders different audio over the same frames.
            slot.generation.store(Generation::EMPTY);
            slot.generation
                .store(generation(2, SlotState::Joining, second_ring));
            render(&shared.rings[second_ring], 2, -0.25);
            let (mut l, mut r) = ([0.0; 256], [0.0; 256]);
            assert_eq!(
                shared.copy_validated(0, first, 0, [&mut l, &mut r]),
                Ok(false)
            );
        }
    }

    /// A worker evicted but still running keeps writing its old ring; its slot's newcomer
    /// writes another. What the slot serves under the newcomer's generation is the newcomer's
    /// ring, never the old one, whatever the old worker writes there.
    #[test]
    fn an_evicted_workers_ring_is_not_its_slots_any_more() {
        let shared = shared();
        let slot = &shared.slots[1];
        slot.generation.store(generation(1, SlotState::Live, 1));
        render(&shared.rings[1], 1, 0.5);
        slot.generation.store(Generation::EMPTY);
        let newcomer = generation(2, SlotState::Joining, 2);
        slot.generation.store(newcomer);
        render(&shared.rings[2], 2, 0.5);
        // The evicted worker, not yet killed, overwrites its finished frames.
        render(&shared.rings[1], 1, -0.75);
        let (mut l, mut r) = ([0.0; 256], [0.0; 256]);
        assert_eq!(
            shared.copy_validated(1, newcomer, 0, [&mut l, &mut r]),
            Ok(true)
        );
        assert!(l.iter().chain(&r).all(|&s| s == 0.5));
    }

    #[test]
    fn fault_requests_round_trip() {
        let mailbox = FaultMailbox::default();
        assert_eq!(mailbox.take(), None);
        for slot in [0, 1] {
            for (kind, arg) in [(0, 0), (1, 0), (6, 250), (0xffff, 0x7fff_ffff)] {
                let request = FaultRequest { slot, kind, arg };
                mailbox.post(request);
                assert_eq!(mailbox.take(), Some(request));
                assert_eq!(mailbox.take(), None);
            }
        }
    }
}
