//! The protection panel (the Lockstep / Eco selector, both workers or the active worker and its
//! standby, failovers, the last fault, xruns, latency, CPU), the output meter and the scale
//! buttons.
//!
//! Everything comes from a [`StatusSnapshot`] of the supervisor's atomics, the [`RunningEngine`]
//! the plugin keeps, the meter's atomic and, for each worker's CPU load, its
//! `/proc/<pid>/stat`; nothing here waits for the audio thread or the supervisor.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

use egui::{self, pos2, vec2, Align2, Color32, FontId, Rect, Stroke, StrokeKind, Ui};
use nice_plug::prelude::ParamSetter;

use super::style::{self, BAD, DIM, GOOD, OUTLINE, PANEL, SMALL, TEXT, TRACK, WARN};
use super::{layout, SCALES};
use crate::engine::{FaultKind, Protection, StatusSnapshot, WorkerState};
use crate::params::{ProtectionSetting, TandemParams};

/// What the panel needs of the running engine besides its status: the protection it runs, which
/// differs from the setting until the host restarts the plugin, and the pid of its standby (the
/// engine's spare). The plugin writes both, the protection at activation and the pid once per
/// block while the editor is open (two relaxed atomics); the editor reads them.
#[derive(Debug, Default)]
pub struct RunningEngine {
    eco: AtomicBool,
    standby_pid: AtomicU32,
}

impl RunningEngine {
    /// Main thread, at activation: the protection the engine now runs.
    pub fn started(&self, protection: Protection) {
        self.eco
            .store(protection == Protection::Eco, Ordering::Relaxed);
    }

    /// Audio thread: the standby's pid (`Engine::spare_pid`), if one waits.
    pub fn standby(&self, pid: Option<u32>) {
        self.standby_pid.store(pid.unwrap_or(0), Ordering::Relaxed);
    }

    fn protection(&self) -> Protection {
        if self.eco.load(Ordering::Relaxed) {
            Protection::Eco
        } else {
            Protection::Lockstep
        }
    }
}

/// The trade-off of each protection, in one line.
fn hint(protection: Protection) -> &'static str {
    match protection {
        Protection::Lockstep => "Two workers render every block: any fault is inaudible.",
        Protection::Eco => {
            "About half the CPU; wrong but finite output is found only later, by the audit."
        }
    }
}

/// How long a fault is shown as an event (a red banner and a red worker) after it happened.
const EVENT_NS: u64 = 6_000_000_000;
/// The meter's range in dB.
const METER_FLOOR_DB: f32 = -60.0;
const METER_TOP_DB: f32 = 6.0;
/// How fast the meter falls, in dB per second, and how long the peak marker holds.
const FALL_DB_PER_S: f32 = 30.0;
const HOLD_S: f32 = 1.5;

/// The meter's displayed level: falls smoothly, holds its peak for a moment.
pub struct Level {
    db: f32,
    peak_db: f32,
    peak_at: Instant,
    last: Instant,
}

impl Default for Level {
    fn default() -> Self {
        Level {
            db: METER_FLOOR_DB,
            peak_db: METER_FLOOR_DB,
            peak_at: Instant::now(),
            last: Instant::now(),
        }
    }
}

impl Level {
    fn update(&mut self, peak: f32) {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f32();
        self.last = now;
        let db = (20.0 * peak.max(1e-6).log10()).max(METER_FLOOR_DB);
        self.db = db.max(self.db - FALL_DB_PER_S * dt);
        if db >= self.peak_db || now.duration_since(self.peak_at).as_secs_f32() > HOLD_S {
            self.peak_db = db.max(self.db);
            self.peak_at = now;
        }
    }
}

/// The bar's right part: the scale buttons and the output meter.
pub fn top_bar_right(ui: &mut Ui, level: &mut Level, peak: f32, zoom: f32) {
    level.update(peak);
    let mut x = 720.0;
    for scale in SCALES {
        let rect = Rect::from_min_size(pos2(x, 10.0), vec2(48.0, 24.0));
        let label = format!("{:.0}%", scale * 100.0);
        let button = egui::Button::new(label)
            .wrap_mode(egui::TextWrapMode::Extend)
            .selected((zoom - scale).abs() < 0.01);
        if ui
            .put(rect, button)
            .on_hover_text("Editor size (for high-resolution screens)")
            .clicked()
        {
            ui.ctx().set_zoom_factor(scale);
        }
        x += 52.0;
    }
    let painter = ui.painter();
    painter.text(
        pos2(836.0, 22.0),
        Align2::LEFT_CENTER,
        "OUT",
        FontId::proportional(SMALL),
        DIM,
    );
    let bar = Rect::from_min_size(pos2(866.0, 15.0), vec2(140.0, 14.0));
    painter.rect_filled(bar, 3.0, TRACK);
    let fraction =
        |db: f32| ((db - METER_FLOOR_DB) / (METER_TOP_DB - METER_FLOOR_DB)).clamp(0.0, 1.0);
    let colour = if level.peak_db >= 0.0 {
        BAD
    } else if level.peak_db > -6.0 {
        WARN
    } else {
        GOOD
    };
    let mut lit = bar;
    lit.max.x = bar.min.x + bar.width() * fraction(level.db);
    painter.rect_filled(lit, 3.0, colour);
    let marker = bar.min.x + bar.width() * fraction(level.peak_db);
    painter.line_segment(
        [pos2(marker, bar.min.y), pos2(marker, bar.max.y)],
        Stroke::new(2.0, TEXT),
    );
    let zero = bar.min.x + bar.width() * fraction(0.0);
    painter.line_segment(
        [pos2(zero, bar.max.y), pos2(zero, bar.max.y + 3.0)],
        Stroke::new(1.0, DIM),
    );
    let text = if level.peak_db <= METER_FLOOR_DB {
        String::from("-inf dB")
    } else {
        format!("{:.1} dB", level.peak_db)
    };
    painter.text(
        pos2(bar.center().x, bar.max.y + 1.0),
        Align2::CENTER_TOP,
        text,
        FontId::proportional(10.0),
        DIM,
    );
}

/// One worker's last CPU reading.
struct CpuReading {
    pid: u32,
    ticks: u64,
    at: Instant,
    /// The load computed from the previous reading, once there was one.
    load: Option<f32>,
}

/// Each worker's CPU load, from the growth of its `/proc/<pid>/stat` times.
#[derive(Default)]
pub struct CpuLoad {
    slots: [Option<CpuReading>; 2],
}

impl CpuLoad {
    /// The load of `pid` in `slot` as a fraction of one core, once two readings exist.
    fn update(&mut self, slot: usize, pid: u32) -> Option<f32> {
        if pid == 0 {
            self.slots[slot] = None;
            return None;
        }
        let ticks = cpu_ticks(pid)?;
        let now = Instant::now();
        match &mut self.slots[slot] {
            Some(last) if last.pid == pid => {
                let seconds = now.duration_since(last.at).as_secs_f32();
                if seconds >= 0.5 {
                    let used = ticks.saturating_sub(last.ticks) as f32 / clock_ticks_per_second();
                    last.load = Some(used / seconds);
                    (last.ticks, last.at) = (ticks, now);
                }
                last.load
            }
            entry => {
                *entry = Some(CpuReading {
                    pid,
                    ticks,
                    at: now,
                    load: None,
                });
                None
            }
        }
    }
}

/// User plus system time of a process in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; count fields after it.
    let mut fields = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f32 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f32
    } else {
        100.0
    }
}

/// The Lockstep / Eco buttons on the panel's title row: a click on the other one sets the
/// setting in one host gesture. Then the trade-off of the chosen one, or, while the engine still
/// runs the other, when the choice applies.
fn selector(
    ui: &mut Ui,
    params: &TandemParams,
    setter: &ParamSetter,
    running: Protection,
    show_hint: bool,
) {
    let chosen = params.protection.value();
    let buttons = layout::protection_buttons();
    for ((setting, label), at) in [
        (ProtectionSetting::Lockstep, "Lockstep"),
        (ProtectionSetting::Eco, "Eco"),
    ]
    .into_iter()
    .zip(buttons)
    {
        let button = egui::Button::new(label).selected(chosen == setting);
        if ui
            .put(at, button)
            .on_hover_text(hint(setting.into()))
            .clicked()
            && chosen != setting
        {
            setter.begin_set_parameter(&params.protection);
            setter.set_parameter(&params.protection, setting);
            setter.end_set_parameter(&params.protection);
        }
    }
    if !show_hint {
        return;
    }
    let wanted: Protection = chosen.into();
    let (text, colour) = if wanted == running {
        (String::from(hint(wanted)), DIM)
    } else {
        (
            format!("{wanted:?} from the next activation (the host restarts the plugin)."),
            WARN,
        )
    };
    ui.painter().text(
        pos2(buttons[1].max.x + 10.0, buttons[1].center().y),
        Align2::LEFT_CENTER,
        text,
        FontId::proportional(SMALL),
        colour,
    );
}

/// The panel along the bottom.
pub fn panel(
    ui: &mut Ui,
    rect: Rect,
    status: &StatusSnapshot,
    running: &RunningEngine,
    cpu: &mut CpuLoad,
    params: &TandemParams,
    setter: &ParamSetter,
) {
    style::section(ui, rect, "Protection");
    let recent_fault = status
        .last_fault
        .as_ref()
        .filter(|f| status.at_ns.saturating_sub(f.detected_ns) < EVENT_NS);
    let protection = running.protection();
    selector(ui, params, setter, protection, recent_fault.is_none());

    let tile_w = 200.0;
    let tiles = tiles(status, running, protection);
    for (i, shown) in tiles.into_iter().enumerate() {
        let tile = Rect::from_min_size(
            pos2(
                rect.min.x + 12.0 + i as f32 * (tile_w + 10.0),
                rect.min.y + 30.0,
            ),
            vec2(tile_w, rect.height() - 42.0),
        );
        let flash = shown
            .slot
            .is_some_and(|slot| recent_fault.is_some_and(|f| f.slot == slot));
        worker_tile(ui, tile, i, &shown, status.at_ns, cpu, flash);
    }

    let x = rect.min.x + 12.0 + 2.0 * (tile_w + 10.0) + 8.0;
    let painter = ui.painter();
    let row = |i: usize, label: &str, value: String, colour: Color32| {
        let y = rect.min.y + 34.0 + i as f32 * 19.0;
        painter.text(
            pos2(x, y),
            Align2::LEFT_TOP,
            label,
            FontId::proportional(SMALL),
            DIM,
        );
        painter.text(
            pos2(x + 118.0, y),
            Align2::LEFT_TOP,
            value,
            FontId::proportional(SMALL),
            colour,
        );
    };
    let latency = if status.sample_rate > 0.0 {
        format!(
            "{} frames ({:.1} ms)",
            status.latency_frames,
            status.latency_frames as f32 * 1000.0 / status.sample_rate
        )
    } else {
        String::from("-")
    };
    let count_colour = |n: u64| if n == 0 { TEXT } else { WARN };
    row(
        0,
        "Engine",
        String::from(if status.running {
            "running"
        } else {
            "stopped (not active)"
        }),
        TEXT,
    );
    row(1, "Latency", latency, TEXT);
    row(
        2,
        "Failovers",
        status.failovers.to_string(),
        count_colour(status.failovers),
    );
    row(3, "Ring switches", status.switches.to_string(), TEXT);
    row(
        4,
        "Xruns",
        status.xruns.to_string(),
        count_colour(status.xruns),
    );
    row(
        5,
        "Fallback frames",
        status.fallback_frames.to_string(),
        count_colour(status.fallback_frames),
    );

    // The last fault, on the right.
    let fx = x + 290.0;
    let painter = ui.painter();
    let line = |i: usize, text: String, colour: Color32| {
        painter.text(
            pos2(fx, rect.min.y + 34.0 + i as f32 * 19.0),
            Align2::LEFT_TOP,
            text,
            FontId::proportional(SMALL),
            colour,
        );
    };
    match &status.last_fault {
        None => line(0, String::from("No fault so far."), DIM),
        Some(fault) => {
            let kind = match fault.kind {
                FaultKind::Died => "died",
                FaultKind::Hung => "hung",
                FaultKind::Rogue => "rogue",
                FaultKind::Diverged => "diverged",
            };
            let ago = status.at_ns.saturating_sub(fault.detected_ns) as f64 / 1e9;
            line(0, String::from("Last fault"), DIM);
            line(
                1,
                format!(
                    "Worker {} {kind}, {}",
                    worker_name(fault.slot),
                    ago_text(ago)
                ),
                if recent_fault.is_some() { BAD } else { TEXT },
            );
            line(2, fault.cause.clone(), TEXT);
            line(
                3,
                match fault.rebuild_ns {
                    Some(ns) => format!("Replaced and verified in {:.1} ms", ns as f64 / 1e6),
                    None => String::from("Rebuilding..."),
                },
                if fault.rebuild_ns.is_some() {
                    GOOD
                } else {
                    WARN
                },
            );
        }
    }

    if let Some(fault) = recent_fault {
        let banner = Rect::from_min_size(
            pos2(rect.max.x - 330.0, rect.min.y + 5.0),
            vec2(320.0, 20.0),
        );
        let painter = ui.painter();
        painter.rect_filled(banner, 4.0, BAD);
        painter.text(
            banner.center(),
            Align2::CENTER_CENTER,
            match protection {
                Protection::Lockstep => format!(
                    "FAULT: worker {} lost, its twin kept playing",
                    worker_name(fault.slot)
                ),
                Protection::Eco => format!(
                    "FAULT: worker {} lost, the standby took over",
                    worker_name(fault.slot)
                ),
            },
            FontId::proportional(SMALL),
            Color32::WHITE,
        );
    }
}

fn worker_name(slot: usize) -> &'static str {
    if slot == 0 {
        "A"
    } else {
        "B"
    }
}

fn ago_text(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s ago")
    } else if seconds < 3600.0 {
        format!("{:.0} min ago", seconds / 60.0)
    } else {
        format!("{:.1} h ago", seconds / 3600.0)
    }
}

/// What one tile shows: a worker slot, or (in Eco) the standby.
struct Tile {
    /// "Worker A", "Standby".
    title: String,
    /// The word and colour of its state.
    state: (&'static str, Color32),
    /// The slot it shows (`None`: the standby, which has none until it takes over).
    slot: Option<usize>,
    pid: u32,
    spawned_ns: u64,
}

/// The two tiles: in Lockstep both worker slots; in Eco the slot that holds the active worker
/// and the standby, which sleeps and is no fault (an empty second slot is how Eco runs).
fn tiles(status: &StatusSnapshot, running: &RunningEngine, protection: Protection) -> [Tile; 2] {
    // In Eco the verified worker is the one that plays: "ACTIVE" says so.
    let live_word = match protection {
        Protection::Lockstep => "LIVE",
        Protection::Eco => "ACTIVE",
    };
    let slot_tile = |slot: usize| {
        let worker = status.workers[slot];
        Tile {
            title: format!("Worker {}", worker_name(slot)),
            state: match worker.state {
                WorkerState::Live => (live_word, GOOD),
                WorkerState::Joining => ("JOINING", WARN),
                WorkerState::Dead => ("DEAD", BAD),
                WorkerState::Stopped => ("STOPPED", DIM),
            },
            slot: Some(slot),
            pid: worker.pid,
            spawned_ns: worker.spawned_ns,
        }
    };
    match protection {
        Protection::Lockstep => [0, 1].map(slot_tile),
        Protection::Eco => {
            // The active worker: the slot that holds one (after a takeover, maybe B).
            let active = (0..2).find(|&s| status.workers[s].pid != 0).unwrap_or(0);
            let pid = running.standby_pid.load(Ordering::Relaxed);
            let standby = Tile {
                title: String::from("Standby"),
                state: if !status.running {
                    ("STOPPED", DIM)
                } else if pid != 0 {
                    ("ASLEEP", GOOD)
                } else {
                    ("STARTING", WARN)
                },
                slot: None,
                pid: if status.running { pid } else { 0 },
                spawned_ns: 0,
            };
            [slot_tile(active), standby]
        }
    }
}

fn worker_tile(
    ui: &Ui,
    tile: Rect,
    index: usize,
    shown: &Tile,
    at_ns: u64,
    cpu: &mut CpuLoad,
    flash: bool,
) {
    let (word, colour) = shown.state;
    let painter = ui.painter();
    let fill = if flash {
        BAD.gamma_multiply(0.25)
    } else {
        PANEL
    };
    painter.rect_filled(tile, 5.0, fill);
    let border = if flash { BAD } else { OUTLINE };
    painter.rect_stroke(
        tile,
        5.0,
        Stroke::new(if flash { 2.0 } else { 1.0 }, border),
        StrokeKind::Inside,
    );
    let left = tile.min.x + 12.0;
    painter.text(
        pos2(left, tile.min.y + 10.0),
        Align2::LEFT_TOP,
        &shown.title,
        FontId::proportional(14.0),
        TEXT,
    );
    painter.circle_filled(pos2(tile.max.x - 76.0, tile.min.y + 18.0), 5.0, colour);
    painter.text(
        pos2(tile.max.x - 66.0, tile.min.y + 11.0),
        Align2::LEFT_TOP,
        word,
        FontId::proportional(SMALL),
        colour,
    );
    let running = shown.pid != 0;
    let uptime = if running && shown.spawned_ns > 0 {
        let s = at_ns.saturating_sub(shown.spawned_ns) as f64 / 1e9;
        uptime_text(s)
    } else {
        String::from("-")
    };
    let load = cpu.update(index, shown.pid).map_or_else(
        || String::from("-"),
        |l| format!("{:.0} % of a core", l * 100.0),
    );
    let pid = if running {
        shown.pid.to_string()
    } else {
        String::from("-")
    };
    for (i, (label, value)) in [("pid", pid), ("uptime", uptime), ("CPU", load)]
        .into_iter()
        .enumerate()
    {
        let y = tile.min.y + 40.0 + i as f32 * 19.0;
        painter.text(
            pos2(left, y),
            Align2::LEFT_TOP,
            label,
            FontId::proportional(SMALL),
            DIM,
        );
        painter.text(
            pos2(left + 56.0, y),
            Align2::LEFT_TOP,
            value,
            FontId::proportional(SMALL),
            TEXT,
        );
    }
}

fn uptime_text(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        format!("{}:{:02} min", (seconds / 60.0) as u64, seconds as u64 % 60)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}
