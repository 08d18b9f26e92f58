//! The plugin's editor in the test host, on a private X server.
//!
//! [`screen`] starts one Xvfb per test process on a free display number (Mesa renders the
//! editor's OpenGL in software there), points `DISPLAY` at it and connects to it. On that
//! screen a test creates a parent window the way a DAW does ([`Screen::parent_window`]), asks
//! the plugin to embed its editor into it ([`open_editor`]), reads the window's pixels
//! ([`Screen::capture`]) and moves the pointer with XTEST ([`Screen::drag`]), which reaches the
//! editor exactly like a person's mouse.
//!
//! Xvfb runs with `-terminate`: it exits when its last client disconnects, which at the latest
//! is when the test process ends.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clack_extensions::gui::{GuiApiType, GuiConfiguration, GuiSize, PluginGui, Window};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    self, ConnectionExt as _, CreateWindowAux, ImageFormat, WindowClass,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use crate::Instance;

/// How long waits for the X server or for the editor to draw may take before a test gives up
/// (generous: software OpenGL on a loaded two-core machine). Never an assertion about speed.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The private X server and a connection to it.
pub struct Screen {
    conn: RustConnection,
    root: xproto::Window,
    /// The display name, e.g. `:97`.
    pub display: String,
}

/// The process's X server, started on first use. Sets `DISPLAY` for the plugin's windows.
pub fn screen() -> &'static Screen {
    static SCREEN: OnceLock<Screen> = OnceLock::new();
    SCREEN.get_or_init(|| {
        let (xvfb, display, (conn, screen_num)) = start_xvfb();
        // Set once, before any plugin window exists, while the tests are serialized.
        std::env::set_var("DISPLAY", &display);
        let root = conn.setup().roots[screen_num].root;
        // The child handle is dropped without waiting: Xvfb ends with its last client.
        drop(xvfb);
        Screen {
            conn,
            root,
            display,
        }
    })
}

/// Starts Xvfb on the first display number with no server, returning it, its name and the
/// first connection to it (which must stay open: `-terminate` ends the server when the last
/// client disconnects).
fn start_xvfb() -> (Child, String, (RustConnection, usize)) {
    for n in 90..200 {
        if Path::new(&format!("/tmp/.X{n}-lock")).exists()
            || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        {
            continue;
        }
        let display = format!(":{n}");
        let mut child = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1920x1200x24", "-nolisten", "tcp"])
            .arg("-terminate")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting Xvfb (apt install xvfb)");
        let socket = format!("/tmp/.X11-unix/X{n}");
        let started = Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break; // Lost a race for this number; try the next.
            }
            if Path::new(&socket).exists() {
                if let Ok(connection) = x11rb::connect(Some(&display)) {
                    return (child, display, connection);
                }
            }
            assert!(started.elapsed() < PATIENCE, "Xvfb {display} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("no free X display number between 90 and 199");
}

/// An RGB picture of a window.
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Red, green, blue per pixel, row by row.
    pub rgb: Vec<u8>,
}

impl Image {
    /// How many different colours it has (a blank or single-colour window has one).
    pub fn colours(&self) -> usize {
        let mut seen: Vec<[u8; 3]> = self
            .rgb
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    /// The smallest rectangle `(x0, y0, x1, y1)` (exclusive ends) holding every pixel that
    /// differs from `other`'s; `None` if none does.
    pub fn difference(&self, other: &Image) -> Option<(u32, u32, u32, u32)> {
        assert_eq!((self.width, self.height), (other.width, other.height));
        let mut bounds: Option<(u32, u32, u32, u32)> = None;
        for (i, (a, b)) in self
            .rgb
            .chunks_exact(3)
            .zip(other.rgb.chunks_exact(3))
            .enumerate()
        {
            if a != b {
                let (x, y) = (i as u32 % self.width, i as u32 / self.width);
                let (x0, y0, x1, y1) = bounds.unwrap_or((x, y, x + 1, y + 1));
                bounds = Some((x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1)));
            }
        }
        bounds
    }

    /// Writes it as a PNG file (creating the folder).
    pub fn save_png(&self, path: &Path) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("creating the screenshot folder");
        }
        let file = std::fs::File::create(path).expect("creating the PNG file");
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("PNG header");
        writer.write_image_data(&self.rgb).expect("PNG data");
    }
}

/// A top-level window that hosts the plugin's editor, as a DAW's plugin window does.
pub struct ParentWindow<'s> {
    screen: &'s Screen,
    /// The X11 window id handed to the plugin.
    pub id: xproto::Window,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
}

impl Drop for ParentWindow<'_> {
    fn drop(&mut self) {
        let _ = self.screen.conn.destroy_window(self.id);
        let _ = self.screen.conn.flush();
    }
}

impl Screen {
    /// A mapped window of `size` at the screen's top-left corner (no window manager runs, so
    /// window and screen coordinates agree).
    pub fn parent_window(&self, size: GuiSize) -> ParentWindow<'_> {
        let (width, height) = (size.width as u16, size.height as u16);
        let id = self.conn.generate_id().expect("an X id");
        let aux = CreateWindowAux::new().background_pixel(0);
        self.conn
            .create_window(
                x11rb::COPY_DEPTH_FROM_PARENT,
                id,
                self.root,
                0,
                0,
                width,
                height,
                0,
                WindowClass::INPUT_OUTPUT,
                x11rb::COPY_FROM_PARENT,
                &aux,
            )
            .expect("create_window");
        self.conn.map_window(id).expect("map_window");
        // A round trip: the server has made the window before the plugin's own connection
        // asks to embed into it.
        self.conn
            .get_input_focus()
            .expect("get_input_focus")
            .reply()
            .expect("the X server's answer");
        ParentWindow {
            screen: self,
            id,
            width,
            height,
        }
    }

    /// What the window shows now, including the plugin's embedded child window.
    pub fn capture(&self, window: &ParentWindow) -> Image {
        let reply = self
            .conn
            .get_image(
                ImageFormat::Z_PIXMAP,
                window.id,
                0,
                0,
                window.width,
                window.height,
                !0,
            )
            .expect("get_image")
            .reply()
            .expect("the window's pixels");
        // 24-bit depth comes as 32 bits per pixel, blue first (little-endian X server).
        let rgb = reply
            .data
            .chunks_exact(4)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect();
        Image {
            width: u32::from(window.width),
            height: u32::from(window.height),
            rgb,
        }
    }

    /// Moves the pointer to screen position `(x, y)`.
    pub fn move_pointer(&self, x: i16, y: i16) {
        self.conn
            .xtest_fake_input(
                xproto::MOTION_NOTIFY_EVENT,
                0,
                x11rb::CURRENT_TIME,
                self.root,
                x,
                y,
                0,
            )
            .expect("xtest motion");
        self.conn.flush().expect("flush");
    }

    /// Presses (`true`) or releases the left button.
    pub fn button(&self, down: bool) {
        let kind = if down {
            xproto::BUTTON_PRESS_EVENT
        } else {
            xproto::BUTTON_RELEASE_EVENT
        };
        self.conn
            .xtest_fake_input(kind, 1, x11rb::CURRENT_TIME, self.root, 0, 0, 0)
            .expect("xtest button");
        self.conn.flush().expect("flush");
    }

    /// A left-button drag from `from` by `(dx, dy)` in `steps` moves, pausing `pause` after
    /// each event so the editor sees them in separate frames, as it does a hand's.
    pub fn drag(&self, from: (i16, i16), by: (i16, i16), steps: i16, pause: Duration) {
        self.move_pointer(from.0, from.1);
        std::thread::sleep(pause);
        self.button(true);
        std::thread::sleep(pause);
        for i in 1..=steps {
            self.move_pointer(from.0 + by.0 * i / steps, from.1 + by.1 * i / steps);
            std::thread::sleep(pause);
        }
        self.button(false);
        std::thread::sleep(pause);
    }
}

fn x11() -> GuiConfiguration<'static> {
    GuiConfiguration {
        api_type: GuiApiType::X11,
        is_floating: false,
    }
}

/// Creates the plugin's editor (embedded X11) and returns the size it asks for.
pub fn create_editor(instance: &mut Instance) -> GuiSize {
    let plugin = instance.plugin();
    let handle = plugin.plugin_handle();
    let gui: PluginGui = handle.get_extension().expect("the gui extension");
    assert!(
        gui.is_api_supported(&handle, x11()),
        "embedded X11 unsupported"
    );
    gui.create(&handle, x11()).expect("creating the editor");
    gui.get_size(&handle).expect("the editor's size")
}

/// Embeds the created editor into `parent` and shows it.
pub fn show_editor(instance: &mut Instance, parent: &ParentWindow) {
    let plugin = instance.plugin();
    let handle = plugin.plugin_handle();
    let gui: PluginGui = handle.get_extension().expect("the gui extension");
    // SAFETY: `parent` is a live X11 window that outlives the editor (the tests destroy the
    // editor before dropping the window).
    unsafe { gui.set_parent(&handle, Window::from_x11_handle(parent.id as _)) }
        .expect("embedding the editor");
    gui.show(&handle).expect("showing the editor");
}

/// [`create_editor`], a parent window of its size, and [`show_editor`].
pub fn open_editor<'s>(instance: &mut Instance, screen: &'s Screen) -> ParentWindow<'s> {
    let size = create_editor(instance);
    let parent = screen.parent_window(size);
    show_editor(instance, &parent);
    parent
}

/// Destroys the editor.
pub fn close_editor(instance: &mut Instance) {
    let plugin = instance.plugin();
    let handle = plugin.plugin_handle();
    let gui: PluginGui = handle.get_extension().expect("the gui extension");
    gui.destroy(&handle);
}

/// Captures `window` until `done` accepts a picture (running the plugin's main-thread
/// callbacks meanwhile); panics with `what` after [`PATIENCE`].
pub fn wait_for_picture(
    instance: &mut Instance,
    screen: &Screen,
    window: &ParentWindow,
    what: &str,
    mut done: impl FnMut(&Image) -> bool,
) -> Image {
    let started = Instant::now();
    loop {
        instance.run_main_thread_callbacks();
        let image = screen.capture(window);
        if done(&image) {
            return image;
        }
        assert!(started.elapsed() < PATIENCE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the editor has drawn (many colours) and stopped changing (two captures a
/// moment apart agree), and returns that picture.
pub fn settled_picture(instance: &mut Instance, screen: &Screen, window: &ParentWindow) -> Image {
    let mut previous: Option<Image> = None;
    wait_for_picture(
        instance,
        screen,
        window,
        "a drawn, settled editor",
        |image| {
            let settled = image.colours() > 50 && previous.as_ref() == Some(image);
            previous = Some(image.clone());
            settled
        },
    )
}

/// The threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// The open file descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Bytes the process has allocated with malloc and not freed, over all of glibc's arenas.
///
/// The leak measure, rather than resident memory: glibc gives each new thread (every opened
/// editor has one) its own arena and keeps what is freed there for reuse, so resident memory
/// grows over the first dozens of openings even though nothing leaks.
pub fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let info = unsafe { libc::mallinfo2() };
    info.uordblks + info.hblkhd
}
