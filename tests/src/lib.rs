//! A small CLAP host for Tandem's end-to-end tests, built on clack-host.
//!
//! It does what a DAW does with the built plugin, and nothing Tandem-specific: load the bundle,
//! instantiate, choose the render mode and audio layout, activate, send notes (each with its own
//! note id, as CLAP hosts do), parameter automation, polyphonic and monophonic modulation and
//! note expressions as CLAP events, collect the note-end events the plugin sends back, process
//! blocks, save and load state, query voice info and remote-controls pages, deactivate, destroy. On top of
//! that it can see the process tree, so tests can SIGKILL a worker mid-render and check that no
//! process outlives the plugin.
//!
//! Renders use CLAP's offline render mode: the engine then waits for exact frames however long
//! they take, so the assertions are about bits, never about time, on a loaded 2-core machine.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

pub mod gui;

use clack_extensions::audio_ports_config::{AudioPortsConfigBuffer, PluginAudioPortsConfig};
use clack_extensions::gui::{GuiSize, HostGui, HostGuiImpl};
use clack_extensions::latency::PluginLatency;
use clack_extensions::params::{
    HostParams, HostParamsImplMainThread, HostParamsImplShared, ParamClearFlags, ParamInfoBuffer,
    ParamInfoFlags, ParamRescanFlags, PluginParams,
};
use clack_extensions::remote_controls::{PluginRemoteControls, RemoteControlsPageBuffer};
use clack_extensions::render::{PluginRender, RenderMode};
use clack_extensions::state::PluginState;
use clack_extensions::tail::PluginTail;
use clack_extensions::voice_info::{PluginVoiceInfo, VoiceInfo};
use clack_host::events::event_types::{
    MidiEvent, NoteExpressionEvent, NoteExpressionType, NoteOffEvent, NoteOnEvent, ParamModEvent,
    ParamValueEvent,
};
use clack_host::events::spaces::CoreEventSpace;
use clack_host::events::Match;
use clack_host::prelude::*;

/// Sample rate of every test render.
pub const SAMPLE_RATE: f64 = 48_000.0;

/// Serializes the tests that start workers: they count this process's children, and cargo runs
/// the tests of one binary on parallel threads of one process.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The workspace's `target/bundled`, or `TANDEM_BUNDLE_DIR`.
pub fn bundle_dir() -> PathBuf {
    match std::env::var_os("TANDEM_BUNDLE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bundled"),
    }
}

/// A copy of the built `Tandem.clap`, alone in a fresh temporary folder (once per process), so
/// the tests prove the bundle needs nothing next to it.
pub fn isolated_clap() -> &'static Path {
    static COPY: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = COPY.get_or_init(|| {
        let source = bundle_dir().join("Tandem.clap");
        assert!(
            source.is_file(),
            "{} is missing: run `cargo xtask bundle tandem --release` first",
            source.display()
        );
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("Tandem.clap");
        std::fs::copy(&source, &path).expect("copying the bundle");
        (dir, path)
    });
    path
}

/// The debug build of the plugin that `cargo test` puts next to the test binaries
/// (`target/<profile>/deps/libtandem.so`), built with nice-plug's `assert_process_allocs` by
/// this package's dev-dependency. Without the `embed-worker` feature it looks for the worker on
/// disk (`TANDEM_WORKER`, else `target/<profile>/tandem-worker`).
pub fn debug_plugin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the deps folder");
    let candidates = [
        deps.join("libtandem.so"),
        deps.parent()
            .expect("the profile folder")
            .join("libtandem.so"),
    ];
    let path = candidates
        .iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no libtandem.so in {candidates:?}"))
        .clone();
    // Make sure this is the checking build, or a no-allocation test would prove nothing.
    let bytes = std::fs::read(&path).expect("reading libtandem.so");
    let marker = b"Memory allocation of";
    assert!(
        bytes.windows(marker.len()).any(|w| w == marker),
        "{} was built without assert_process_allocs",
        path.display()
    );
    path
}

/// Loads a CLAP library.
pub fn load_entry(path: &Path) -> PluginEntry {
    // SAFETY: loading a CLAP library runs its initialisation code; these are the plugins we test.
    unsafe { PluginEntry::load(path) }
        .unwrap_or_else(|e| panic!("loading {}: {e:?}", path.display()))
}

/// The process ids of this process's children, zombies included (from `/proc/*/stat`).
pub fn child_pids() -> Vec<u32> {
    let me = std::process::id();
    let mut children = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return children;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain spaces; the parent pid is the
        // second field after it.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let ppid = after.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        if ppid == Some(me) {
            children.push(pid);
        }
    }
    children.sort_unstable();
    children
}

/// Whether `pid` runs the worker executable (embedded: a memfd named `tandem-worker`).
pub fn is_worker(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|exe| exe.to_string_lossy().contains("tandem-worker"))
        .unwrap_or(false)
}

/// Whether `pid` was spawned as a spare worker (`--spare`): asleep until a slot needs it. One
/// that has since taken a slot keeps its command line, so it still counts.
pub fn is_spare(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| cmdline.split(|&b| b == 0).any(|arg| arg == b"--spare"))
}

/// This process's children that run the worker and were spawned into a slot (not as spares).
pub fn worker_pids() -> Vec<u32> {
    child_pids()
        .into_iter()
        .filter(|&p| is_worker(p) && !is_spare(p))
        .collect()
}

/// This process's spare workers.
pub fn spare_pids() -> Vec<u32> {
    child_pids()
        .into_iter()
        .filter(|&p| is_worker(p) && is_spare(p))
        .collect()
}

/// SIGKILLs a process.
pub fn kill(pid: u32) {
    // SAFETY: kill(2) with a pid we just read from /proc; no memory is involved.
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill({pid}): {}", std::io::Error::last_os_error());
}

/// Flags the plugin raises through the host callbacks.
#[derive(Default)]
pub struct Shared {
    /// How often the plugin called `request_restart` (e.g. after a latency change).
    pub restart_requests: AtomicUsize,
    /// The plugin asked for `request_callback`.
    pub callback_requested: AtomicBool,
    /// The plugin asked for `clap_host_params::request_flush` (its editor changed a parameter).
    pub flush_requested: AtomicBool,
    /// The plugin's editor asked to be resized (its scale buttons).
    pub resize_requests: AtomicUsize,
    /// The plugin said its editor window is gone.
    pub gui_closed: AtomicBool,
}

impl HostGuiImpl for Shared {
    fn resize_hints_changed(&self) {}
    fn request_resize(&self, _new_size: GuiSize) -> Result<(), HostError> {
        self.resize_requests.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn request_show(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn request_hide(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn closed(&self, _was_destroyed: bool) {
        self.gui_closed.store(true, Ordering::SeqCst);
    }
}

impl HostParamsImplShared for Shared {
    fn request_flush(&self) {
        self.flush_requested.store(true, Ordering::SeqCst);
    }
}

/// The host's main-thread state: nothing but the parameter callbacks.
pub struct MainThread;

impl<'a> MainThreadHandler<'a> for MainThread {}

impl HostParamsImplMainThread for MainThread {
    fn rescan(&self, _flags: ParamRescanFlags) {}
    fn clear(&self, _param_id: ClapId, _flags: ParamClearFlags) {}
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {
        self.restart_requests.fetch_add(1, Ordering::SeqCst);
    }
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callback_requested.store(true, Ordering::SeqCst);
    }
}

/// The host's handler types.
pub struct TestHost;

impl HostHandlers for TestHost {
    type Shared<'a> = Shared;
    type MainThread<'a> = MainThread;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder.register::<HostGui>().register::<HostParams>();
    }
}

/// A parameter event the plugin sent to the host (from its editor).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamOut {
    /// A gesture on the parameter begins (the user grabbed a knob).
    Begin(ClapId),
    /// A new value for the parameter, as a CLAP value.
    Value(ClapId, f64),
    /// The gesture ends.
    End(ClapId),
}

/// The parameter events in `events`, in order.
fn param_events(events: &EventBuffer) -> Vec<ParamOut> {
    events
        .iter()
        .filter_map(|e| match e.as_core_event()? {
            CoreEventSpace::ParamGestureBegin(g) => Some(ParamOut::Begin(g.param_id()?)),
            CoreEventSpace::ParamGestureEnd(g) => Some(ParamOut::End(g.param_id()?)),
            CoreEventSpace::ParamValue(v) => Some(ParamOut::Value(v.param_id()?, v.value())),
            _ => None,
        })
        .collect()
}

/// A note in a phrase, in frames.
#[derive(Clone, Copy, Debug)]
pub struct Note {
    /// First frame.
    pub start: u64,
    /// Length in frames.
    pub length: u64,
    /// MIDI key.
    pub key: u16,
    /// Velocity 0..1.
    pub velocity: f64,
}

/// Per-note input and modulation, as a CLAP host sends it.
#[derive(Clone, Debug)]
pub enum NoteControl {
    /// Polyphonic modulation of one note (by its note id): a normalized offset.
    PolyMod {
        /// The note's index in [`Phrase::notes`] (its note id).
        note: usize,
        /// Parameter name.
        param: String,
        /// Offset in the parameter's CLAP units.
        amount: f64,
    },
    /// Monophonic modulation (`CLAP_EVENT_PARAM_MOD` for every note).
    MonoMod {
        /// Parameter name.
        param: String,
        /// Offset in the parameter's CLAP units.
        amount: f64,
    },
    /// A note expression for one note (by its note id, key and channel).
    Expression {
        /// The note's index in [`Phrase::notes`].
        note: usize,
        /// Which expression.
        kind: NoteExpressionType,
        /// Its CLAP value.
        value: f64,
    },
}

/// What to play: notes, MIDI messages and automation, all at absolute frames.
#[derive(Clone, Debug, Default)]
pub struct Phrase {
    /// Total length in frames.
    pub frames: u64,
    /// Notes (CLAP note events; note `i` has note id `i`, channel 0).
    pub notes: Vec<Note>,
    /// Raw MIDI 1 messages (pitch bend, CCs) at absolute frames.
    pub midi: Vec<(u64, [u8; 3])>,
    /// Parameter automation: (frame, parameter name, CLAP value).
    pub automation: Vec<(u64, String, f64)>,
    /// Per-note control and modulation at absolute frames, sent after the notes starting there.
    pub controls: Vec<(u64, NoteControl)>,
}

impl Phrase {
    /// A repeating pattern of chords: every half second a new chord of three notes, held for
    /// 0.4 s, over `seconds` seconds.
    pub fn chords(seconds: f64) -> Phrase {
        let frames = (seconds * SAMPLE_RATE) as u64;
        let step = (SAMPLE_RATE * 0.5) as u64;
        let roots = [48u16, 53, 55, 50];
        let mut notes = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while start < frames {
            let root = roots[i % roots.len()];
            for (j, interval) in [0u16, 4, 7].into_iter().enumerate() {
                notes.push(Note {
                    start,
                    length: (SAMPLE_RATE * 0.4) as u64,
                    key: root + interval,
                    velocity: 0.6 + 0.1 * j as f64,
                });
            }
            start += step;
            i += 1;
        }
        Phrase {
            frames,
            notes,
            ..Phrase::default()
        }
    }

    /// Adds a linear ramp of a parameter's CLAP value from `from` to `to` over the whole
    /// phrase, one event every `every` frames.
    pub fn ramp(mut self, param: &str, from: f64, to: f64, every: u64) -> Phrase {
        let mut frame = 0;
        while frame < self.frames {
            let t = frame as f64 / self.frames as f64;
            self.automation
                .push((frame, param.to_owned(), from + (to - from) * t));
            frame += every;
        }
        self
    }
}

/// A note-end event the plugin sent (CLAP `NOTE_END`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NoteEnd {
    /// Absolute output frame: the block's first frame plus the event's time.
    pub frame: u64,
    /// The note id (-1 for none).
    pub note_id: i64,
    /// Key (-1 for any).
    pub key: i32,
    /// Channel (-1 for any).
    pub channel: i32,
}

/// A rendered stereo signal.
#[derive(Clone, Debug, PartialEq)]
pub struct Render {
    /// Left channel.
    pub left: Vec<f32>,
    /// Right channel.
    pub right: Vec<f32>,
    /// Note-end events in the order the plugin sent them.
    pub note_ends: Vec<NoteEnd>,
    /// The tail in frames the plugin reported after the last block (CLAP tail extension; `u32::MAX`
    /// is infinite), if it has the extension.
    pub tail: Option<u32>,
    /// Parameter events the plugin sent during the render, with the first frame of the block
    /// whose `process()` call returned them (they take effect from the next block on).
    pub param_out: Vec<(u64, ParamOut)>,
}

impl Render {
    /// Whether every sample is finite.
    pub fn is_finite(&self) -> bool {
        self.left.iter().chain(&self.right).all(|s| s.is_finite())
    }

    /// Root mean square over both channels.
    pub fn rms(&self) -> f64 {
        let n = (self.left.len() + self.right.len()).max(1) as f64;
        let sum: f64 = self
            .left
            .iter()
            .chain(&self.right)
            .map(|&s| f64::from(s) * f64::from(s))
            .sum();
        (sum / n).sqrt()
    }

    /// The first frame at which the two renders differ, if any (bitwise).
    pub fn first_difference(&self, other: &Render) -> Option<usize> {
        let len = self.left.len().max(other.left.len());
        (0..len).find(|&i| {
            let a = (self.left.get(i), self.right.get(i));
            let b = (other.left.get(i), other.right.get(i));
            a.0.map(|x| x.to_bits()) != b.0.map(|x| x.to_bits())
                || a.1.map(|x| x.to_bits()) != b.1.map(|x| x.to_bits())
        })
    }

    /// The spectral centroid in Hz of the left channel over frames `[start, end)`, averaged
    /// over Hann-windowed 2048-frame FFTs weighted by their energy.
    pub fn centroid(&self, start: usize, end: usize) -> f64 {
        spectral_centroid(&self.left[start..end.min(self.left.len())], SAMPLE_RATE)
    }
}

/// Energy-weighted spectral centroid of `signal` (Hann windows of 2048 frames, hop 1024).
pub fn spectral_centroid(signal: &[f32], sample_rate: f64) -> f64 {
    const N: usize = 2048;
    let mut weighted = 0.0;
    let mut total = 0.0;
    let mut start = 0;
    while start + N <= signal.len() {
        let mut re: Vec<f64> = (0..N)
            .map(|i| {
                let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N as f64).cos();
                f64::from(signal[start + i]) * w
            })
            .collect();
        let mut im = vec![0.0; N];
        fft(&mut re, &mut im);
        for k in 1..N / 2 {
            let power = re[k] * re[k] + im[k] * im[k];
            weighted += power * k as f64 * sample_rate / N as f64;
            total += power;
        }
        start += N / 2;
    }
    if total > 0.0 {
        weighted / total
    } else {
        0.0
    }
}

/// In-place radix-2 FFT; `re.len()` must be a power of two.
fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let angle = -2.0 * std::f64::consts::PI / len as f64;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                let (s, c) = (angle * k as f64).sin_cos();
                let (a, b) = (start + k, start + k + len / 2);
                let (tr, ti) = (re[b] * c - im[b] * s, re[b] * s + im[b] * c);
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
        len <<= 1;
    }
}

/// How to run one render.
#[derive(Clone, Copy, Debug)]
pub struct RenderSetup {
    /// Frames per `process()` call (also the activation's max block).
    pub block: u32,
    /// Offline (exact) or realtime render mode.
    pub offline: bool,
    /// Use the layout with the stereo input, fed with this constant-free test signal.
    pub input: bool,
}

impl RenderSetup {
    /// Offline, stereo out only.
    pub fn offline(block: u32) -> RenderSetup {
        RenderSetup {
            block,
            offline: true,
            input: false,
        }
    }
}

/// One plugin instance in the test host.
pub struct Instance {
    instance: PluginInstance<TestHost>,
    params: Vec<(String, ClapId, ParamInfoFlags)>,
}

impl Instance {
    /// Instantiates the first plugin of `entry` (Tandem) and reads its parameter list.
    pub fn new(entry: &PluginEntry) -> Instance {
        let host = HostInfo::new("tandem-tests", "Tandem", "", "0.1").expect("host info");
        let factory = entry.get_plugin_factory().expect("a plugin factory");
        let descriptor = factory.plugin_descriptor(0).expect("one plugin");
        let id = CString::from(descriptor.id().expect("an id"));
        let mut instance = PluginInstance::<TestHost>::new(
            |_| Shared::default(),
            |_| MainThread,
            entry,
            &id,
            &host,
        )
        .expect("instantiating the plugin");
        let mut params = Vec::new();
        {
            let handle = instance.plugin_handle();
            let ext: PluginParams = handle.get_extension().expect("the params extension");
            let mut buffer = ParamInfoBuffer::new();
            for i in 0..ext.count(&handle) {
                let info = ext.get_info(&handle, i, &mut buffer).expect("param info");
                params.push((
                    String::from_utf8_lossy(info.name).into_owned(),
                    info.id,
                    info.flags,
                ));
            }
        }
        Instance { instance, params }
    }

    /// The plugin's voice info (CLAP voice-info extension), if it has one.
    pub fn voice_info(&mut self) -> Option<VoiceInfo> {
        let handle = self.instance.plugin_handle();
        let ext: PluginVoiceInfo = handle.get_extension()?;
        ext.get(&handle)
    }

    /// The remote-controls pages: (section, page, the parameter names of its eight knobs).
    pub fn remote_control_pages(&mut self) -> Vec<(String, String, Vec<Option<String>>)> {
        let names: Vec<(ClapId, String)> = self
            .params
            .iter()
            .map(|(n, id, _)| (*id, n.clone()))
            .collect();
        let handle = self.instance.plugin_handle();
        let Some(ext) = handle.get_extension::<PluginRemoteControls>() else {
            return Vec::new();
        };
        let mut buffer = RemoteControlsPageBuffer::new();
        (0..ext.count(&handle))
            .filter_map(|i| {
                let page = ext.get(&handle, i, &mut buffer)?;
                let knobs = page
                    .param_ids
                    .iter()
                    .map(|id| {
                        let id = (*id)?;
                        let name = names.iter().find(|(i, _)| *i == id);
                        Some(name.map_or_else(|| format!("unknown id {id:?}"), |(_, n)| n.clone()))
                    })
                    .collect();
                Some((
                    String::from_utf8_lossy(page.section_name).into_owned(),
                    String::from_utf8_lossy(page.page_name).into_owned(),
                    knobs,
                ))
            })
            .collect()
    }

    /// Every parameter: (name, CLAP id, flags).
    pub fn params(&self) -> &[(String, ClapId, ParamInfoFlags)] {
        &self.params
    }

    /// The CLAP id of the parameter called `name`.
    pub fn param_id(&self, name: &str) -> ClapId {
        self.params
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, id, _)| *id)
            .unwrap_or_else(|| panic!("no parameter called {name:?}"))
    }

    /// A parameter's current CLAP value.
    pub fn param_value(&mut self, name: &str) -> f64 {
        let id = self.param_id(name);
        let handle = self.instance.plugin_handle();
        let ext: PluginParams = handle.get_extension().expect("params");
        ext.get_value(&handle, id).expect("a value")
    }

    /// Sets parameters while inactive, through `clap_plugin_params::flush`.
    pub fn set_params(&mut self, values: &[(&str, f64)]) {
        let mut events = EventBuffer::new();
        for (name, value) in values {
            let id = self.param_id(name);
            events.push(&ParamValueEvent::new(0, id, Pckn::match_all(), *value));
        }
        let mut out = EventBuffer::new();
        let mut handle = self
            .instance
            .inactive_plugin_handle()
            .expect("set_params needs an inactive plugin");
        let ext: PluginParams = handle.get_extension().expect("params");
        ext.flush(&mut handle, &events.as_input(), &mut out.as_output());
    }

    /// While inactive: if the plugin asked for a flush (its editor changed parameters), flushes
    /// and returns the parameter events it sent; empty otherwise.
    pub fn flush_param_events(&mut self) -> Vec<ParamOut> {
        let asked = self
            .instance
            .access_shared_handler(|s| s.flush_requested.swap(false, Ordering::SeqCst));
        if !asked {
            return Vec::new();
        }
        let events = EventBuffer::new();
        let mut out = EventBuffer::new();
        let mut handle = self
            .instance
            .inactive_plugin_handle()
            .expect("flush_param_events needs an inactive plugin");
        let ext: PluginParams = handle.get_extension().expect("params");
        ext.flush(&mut handle, &events.as_input(), &mut out.as_output());
        param_events(&out)
    }

    /// The plugin instance, for the GUI calls in [`gui`].
    pub fn plugin(&mut self) -> &mut PluginInstance<TestHost> {
        &mut self.instance
    }

    /// Saves the plugin's state.
    pub fn save_state(&mut self) -> Vec<u8> {
        let handle = self.instance.plugin_handle();
        let ext: PluginState = handle.get_extension().expect("the state extension");
        let mut bytes = Vec::new();
        ext.save(&handle, &mut bytes).expect("saving state");
        bytes
    }

    /// Loads a state; whether the plugin accepted it.
    pub fn load_state(&mut self, bytes: &[u8]) -> bool {
        let handle = self.instance.plugin_handle();
        let ext: PluginState = handle.get_extension().expect("the state extension");
        let ok = ext.load(&handle, &mut &bytes[..]).is_ok();
        self.run_main_thread_callbacks();
        ok
    }

    /// Runs `on_main_thread` if the plugin asked for it.
    pub fn run_main_thread_callbacks(&mut self) {
        let asked = self
            .instance
            .access_shared_handler(|s| s.callback_requested.swap(false, Ordering::SeqCst));
        if asked {
            self.instance.call_on_main_thread_callback();
        }
    }

    /// How often the plugin has asked the host to restart it.
    pub fn restart_requests(&self) -> usize {
        self.instance
            .access_shared_handler(|s| s.restart_requests.load(Ordering::SeqCst))
    }

    /// Activates with `setup`, returning the processor and the latency the plugin reports.
    pub fn activate(&mut self, setup: RenderSetup) -> (StoppedPluginAudioProcessor<TestHost>, u32) {
        self.try_activate(setup).expect("activating the plugin")
    }

    /// Activates with `setup`; the error if the plugin refused.
    pub fn try_activate(
        &mut self,
        setup: RenderSetup,
    ) -> Result<(StoppedPluginAudioProcessor<TestHost>, u32), PluginInstanceError> {
        self.try_activate_advertising(setup, setup.block)
    }

    /// Activates with `setup` but advertises `max_frames` as the largest block, as hosts that
    /// then run smaller blocks do.
    pub fn activate_advertising(
        &mut self,
        setup: RenderSetup,
        max_frames: u32,
    ) -> (StoppedPluginAudioProcessor<TestHost>, u32) {
        self.try_activate_advertising(setup, max_frames)
            .expect("activating the plugin")
    }

    fn try_activate_advertising(
        &mut self,
        setup: RenderSetup,
        max_frames: u32,
    ) -> Result<(StoppedPluginAudioProcessor<TestHost>, u32), PluginInstanceError> {
        {
            let handle = self.instance.plugin_handle();
            let render: PluginRender = handle.get_extension().expect("the render extension");
            let mode = if setup.offline {
                RenderMode::Offline
            } else {
                RenderMode::Realtime
            };
            render.set(&handle, mode).expect("setting the render mode");
            let configs: PluginAudioPortsConfig = handle
                .get_extension()
                .expect("the audio-ports-config extension");
            let mut buffer = AudioPortsConfigBuffer::new();
            let wanted_inputs = u32::from(setup.input);
            let mut id = None;
            for i in 0..configs.count(&handle) {
                if let Some(c) = configs.get(&handle, i, &mut buffer) {
                    if c.input_port_count == wanted_inputs {
                        id = Some(c.id);
                        break;
                    }
                }
            }
            let id = id.expect("a layout with the wanted inputs");
            configs.select(&handle, id).expect("selecting the layout");
        }
        let config = PluginAudioConfiguration {
            sample_rate: SAMPLE_RATE,
            min_frames_count: 1,
            max_frames_count: max_frames,
        };
        let processor = self.instance.activate(|_, _| (), config)?;
        self.run_main_thread_callbacks();
        let handle = self.instance.plugin_handle();
        let latency = handle
            .get_extension::<PluginLatency>()
            .map(|l| l.get(&handle))
            .unwrap_or(0);
        Ok((processor, latency))
    }

    /// Deactivates.
    pub fn deactivate(&mut self, processor: StoppedPluginAudioProcessor<TestHost>) {
        self.instance.deactivate(processor);
        self.run_main_thread_callbacks();
    }

    /// Activates, renders `phrase`, deactivates. `on_block(frame)` runs before each block (on
    /// the audio thread), e.g. to kill a worker at a chosen frame.
    pub fn render(
        &mut self,
        setup: RenderSetup,
        phrase: &Phrase,
        on_block: impl FnMut(u64) + Send,
    ) -> Render {
        let (processor, _latency) = self.activate(setup);
        let (processor, render) = self.process(processor, setup, phrase, on_block);
        self.deactivate(processor);
        render
    }

    /// Renders `phrase` with an already active processor, on a separate audio thread.
    pub fn process(
        &mut self,
        processor: StoppedPluginAudioProcessor<TestHost>,
        setup: RenderSetup,
        phrase: &Phrase,
        mut on_block: impl FnMut(u64) + Send,
    ) -> (StoppedPluginAudioProcessor<TestHost>, Render) {
        let ids = self.ids();
        let result = std::thread::scope(|scope| {
            let audio = scope.spawn(move || {
                let mut player = Player::start(processor, setup, phrase, ids);
                while player.step(&mut on_block) {}
                player.finish()
            });
            // Meanwhile this is the main thread, as in a host: it runs the callbacks the plugin
            // asks for (nice-plug posts a task per parameter change for its editor).
            while !audio.is_finished() {
                self.run_main_thread_callbacks();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            audio.join().expect("the audio thread panicked")
        });
        self.run_main_thread_callbacks();
        result
    }

    fn ids(&self) -> Vec<(String, ClapId)> {
        self.params
            .iter()
            .map(|(n, id, _)| (n.clone(), *id))
            .collect()
    }
}

/// Renders `phrase_for(i)` on instance `i` of `instances`, all active at once and processed
/// block by block in turn on one audio thread, as a DAW's mixer runs its tracks.
pub fn render_interleaved(
    instances: &mut [Instance],
    setup: RenderSetup,
    phrase_for: impl Fn(u16) -> Phrase,
) -> Vec<Render> {
    let phrases: Vec<Phrase> = (0..instances.len() as u16).map(&phrase_for).collect();
    let started: Vec<_> = instances
        .iter_mut()
        .map(|instance| (instance.activate(setup).0, instance.ids()))
        .collect();
    let results = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut players: Vec<Player> = started
                    .into_iter()
                    .zip(&phrases)
                    .map(|((processor, ids), phrase)| Player::start(processor, setup, phrase, ids))
                    .collect();
                loop {
                    let mut any = false;
                    for player in &mut players {
                        any |= player.step(&mut |_| {});
                    }
                    if !any {
                        break;
                    }
                }
                players.into_iter().map(Player::finish).collect::<Vec<_>>()
            })
            .join()
            .expect("the audio thread panicked")
    });
    let mut renders = Vec::new();
    for (instance, (processor, render)) in instances.iter_mut().zip(results) {
        instance.deactivate(processor);
        renders.push(render);
    }
    renders
}

/// One instance's audio-thread state during a render.
struct Player<'p> {
    processor: StartedPluginAudioProcessor<TestHost>,
    setup: RenderSetup,
    phrase: &'p Phrase,
    ids: Vec<(String, ClapId)>,
    out: Render,
    buffers: [Vec<f32>; 4],
    input_ports: AudioPorts,
    output_ports: AudioPorts,
    events: EventBuffer,
    out_events: EventBuffer,
    frame: u64,
}

impl<'p> Player<'p> {
    fn start(
        processor: StoppedPluginAudioProcessor<TestHost>,
        setup: RenderSetup,
        phrase: &'p Phrase,
        ids: Vec<(String, ClapId)>,
    ) -> Player<'p> {
        let block = setup.block as usize;
        let total = phrase.frames as usize;
        Player {
            processor: processor.start_processing().expect("start_processing"),
            setup,
            phrase,
            ids,
            out: Render {
                left: Vec::with_capacity(total),
                right: Vec::with_capacity(total),
                note_ends: Vec::new(),
                tail: None,
                param_out: Vec::new(),
            },
            buffers: std::array::from_fn(|_| vec![0.0f32; block]),
            input_ports: AudioPorts::with_capacity(2, 1),
            output_ports: AudioPorts::with_capacity(2, 1),
            events: EventBuffer::new(),
            out_events: EventBuffer::new(),
            frame: 0,
        }
    }

    /// Processes the next block; false when the phrase is done.
    fn step(&mut self, on_block: &mut dyn FnMut(u64)) -> bool {
        let total = self.phrase.frames;
        if self.frame >= total {
            return false;
        }
        let frame = self.frame;
        on_block(frame);
        let n = (self.setup.block as u64).min(total - frame) as usize;
        let end = frame + n as u64;
        let phrase = self.phrase;
        let events = &mut self.events;
        events.clear();
        let at = |f: u64| (f - frame) as u32;
        let id_of = |name: &str| {
            self.ids
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, id)| *id)
                .unwrap_or_else(|| panic!("no parameter called {name:?}"))
        };
        let pckn_of = |i: usize| Pckn::new(0u16, 0u16, phrase.notes[i].key, i as u32);
        for (i, note) in phrase.notes.iter().enumerate() {
            let key = pckn_of(i);
            if (frame..end).contains(&note.start) {
                events.push(&NoteOnEvent::new(at(note.start), key, note.velocity));
            }
            let off = note.start + note.length;
            if (frame..end).contains(&off) {
                events.push(&NoteOffEvent::new(at(off), key, 0.0));
            }
        }
        for (f, data) in &phrase.midi {
            if (frame..end).contains(f) {
                events.push(&MidiEvent::new(at(*f), 0, *data));
            }
        }
        for (f, name, value) in &phrase.automation {
            if (frame..end).contains(f) {
                let id = id_of(name);
                events.push(&ParamValueEvent::new(at(*f), id, Pckn::match_all(), *value));
            }
        }
        for (f, control) in &phrase.controls {
            if !(frame..end).contains(f) {
                continue;
            }
            match control {
                NoteControl::PolyMod {
                    note,
                    param,
                    amount,
                } => {
                    let target = Pckn::new(Match::All, Match::All, Match::All, *note as u32);
                    events.push(&ParamModEvent::new(at(*f), id_of(param), target, *amount));
                }
                NoteControl::MonoMod { param, amount } => {
                    let target = Pckn::match_all();
                    events.push(&ParamModEvent::new(at(*f), id_of(param), target, *amount));
                }
                NoteControl::Expression { note, kind, value } => {
                    let event = NoteExpressionEvent::new(at(*f), pckn_of(*note), *kind, *value);
                    events.push(&event);
                }
            }
        }
        events.sort();
        let [out_l, out_r, in_l, in_r] = &mut self.buffers;
        if self.setup.input {
            // A deterministic, bright test signal: a 220 Hz saw plus a 3 kHz sine.
            for i in 0..n {
                let t = (frame + i as u64) as f64 / SAMPLE_RATE;
                let saw = 2.0 * (t * 220.0).fract() - 1.0;
                let sine = (t * 3000.0 * 2.0 * std::f64::consts::PI).sin();
                in_l[i] = (0.3 * saw + 0.2 * sine) as f32;
                in_r[i] = (0.3 * saw - 0.2 * sine) as f32;
            }
        }
        let input = if self.setup.input {
            self.input_ports.with_input_buffers([AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_input_only(
                    [&mut in_l[..n], &mut in_r[..n]]
                        .into_iter()
                        .map(InputChannel::variable),
                ),
            }])
        } else {
            InputAudioBuffers::empty()
        };
        let mut output = self.output_ports.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(
                [&mut out_l[..n], &mut out_r[..n]].into_iter(),
            ),
        }]);
        self.out_events.clear();
        self.processor
            .process(
                &input,
                &mut output,
                &self.events.as_input(),
                &mut self.out_events.as_output(),
                Some(frame),
                None,
            )
            .expect("process");
        self.out.left.extend_from_slice(&out_l[..n]);
        self.out.right.extend_from_slice(&out_r[..n]);
        for event in param_events(&self.out_events) {
            self.out.param_out.push((frame, event));
        }
        for event in &self.out_events {
            if let Some(CoreEventSpace::NoteEnd(e)) = event.as_core_event() {
                let field = |m: Match<u16>| m.into_specific().map_or(-1, i32::from);
                self.out.note_ends.push(NoteEnd {
                    frame: frame + u64::from(e.header().time()),
                    note_id: e.note_id().into_specific().map_or(-1, i64::from),
                    key: field(e.key()),
                    channel: field(e.channel()),
                });
            }
        }
        self.frame = end;
        true
    }

    fn finish(mut self) -> (StoppedPluginAudioProcessor<TestHost>, Render) {
        let handle = self.processor.plugin_handle();
        self.out.tail = handle
            .get_extension::<PluginTail>()
            .map(|tail| tail.get(&handle).to_raw());
        (self.processor.stop_processing(), self.out)
    }
}

/// Kills one worker at the first block at or after `at_frame`; remembers whom.
pub struct Killer {
    at_frame: u64,
    /// The pid killed, once it has happened.
    pub killed: Option<u32>,
    /// The workers alive just before the kill.
    pub workers_before: Vec<u32>,
}

impl Killer {
    /// Kills at `at_frame`.
    pub fn at(at_frame: u64) -> Killer {
        Killer {
            at_frame,
            killed: None,
            workers_before: Vec::new(),
        }
    }

    /// Call before each block.
    pub fn on_block(&mut self, frame: u64) {
        if self.killed.is_none() && frame >= self.at_frame {
            self.workers_before = worker_pids();
            let victim = *self
                .workers_before
                .first()
                .expect("no worker process to kill");
            kill(victim);
            self.killed = Some(victim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centroid_of_a_sine_is_its_frequency() {
        let sine: Vec<f32> = (0..48_000)
            .map(|i| (i as f64 * 1000.0 * 2.0 * std::f64::consts::PI / SAMPLE_RATE).sin() as f32)
            .collect();
        let c = spectral_centroid(&sine, SAMPLE_RATE);
        assert!((c - 1000.0).abs() < 30.0, "{c}");
    }

    #[test]
    fn children_are_found() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(child_pids().contains(&child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!child_pids().contains(&child.id()));
    }
}
