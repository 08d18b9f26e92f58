//! Where the worker executable (`tandem-worker`) comes from.
//!
//! A bundle must start its workers wherever the user copies it, with no install step and no
//! `PATH` lookup (a `PATH` lookup would also let anything earlier on `PATH` run inside our
//! worker's place). So release bundles carry the worker inside the plugin binary: `cargo xtask
//! bundle` builds `tandem-worker` first and then the plugin with the `embed-worker` feature and
//! `TANDEM_WORKER_BIN=<path>`, which `include_bytes!` picks up. At the first activation we copy
//! those bytes once into a sealed memfd. The seals make the image immutable, so nothing in the
//! process can swap the worker after we wrote it.
//!
//! Executing it: the image's descriptor lives as long as the process, and other code in the host
//! may close any descriptor number and get it back for a file of its own. So no spawn executes
//! the image's own number: [`exec_target`] duplicates it into a fresh private descriptor for that
//! one spawn, checks that the duplicate is still our sealed image (its device and inode), and
//! hands the engine `/proc/self/fd/<private>`; `execve` opens that before close-on-exec closes it
//! (what `fexecve` does), and the engine closes it as soon as the spawn returns. What remains is
//! the spawn call itself: code that closed the private number and reused it during those
//! microseconds would be a host bug we cannot rule out from here. The worker names itself
//! `tandem-worker` in `ps` and `top` (its `argv[0]` and `comm`), since executing a descriptor
//! path would otherwise show the descriptor's number.
//!
//! Builds without the feature (`cargo test`, the demo) look for the worker on disk: the
//! environment variable `TANDEM_WORKER` if set, else `tandem-worker` next to the running
//! executable or in its parent folder (`target/<profile>/` for `target/<profile>/deps/<test>`).
//! Those are executed by path.

use std::path::{Path, PathBuf};

/// Name of the environment variable that points at a worker executable (non-embedded builds).
pub const WORKER_ENV: &str = "TANDEM_WORKER";
/// File name of the worker executable, and the name its processes carry.
pub const WORKER_NAME: &str = "tandem-worker";

#[cfg(feature = "embed-worker")]
static EMBEDDED: &[u8] = include_bytes!(env!(
    "TANDEM_WORKER_BIN",
    "the embed-worker feature needs TANDEM_WORKER_BIN=<path to tandem-worker> at build time; \
     `cargo xtask bundle` sets it"
));

/// The path the engine should execute for a worker, or why there is none.
///
/// With `embed-worker` this is the `/proc/self/fd/N` path of the sealed image (created on the
/// first call, shared by every instance): it names the image in the engine's configuration, and
/// [`exec_target`] turns it into a private descriptor for each spawn. Main thread only: the first
/// call writes the image.
pub fn worker_path() -> Result<PathBuf, String> {
    #[cfg(feature = "embed-worker")]
    {
        image::get().map(|image| image.path.clone())
    }
    #[cfg(not(feature = "embed-worker"))]
    {
        find_on_disk()
    }
}

/// One spawn's way to the worker executable: the path to execute and, for the embedded image, the
/// private descriptor that path goes through. Keep it until the spawn has returned.
pub struct ExecTarget {
    path: PathBuf,
    _private: Option<std::os::fd::OwnedFd>,
}

impl ExecTarget {
    /// The path to hand `execve`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What to execute for one spawn of the worker that `configured` (from [`worker_path`]) names:
/// the embedded image through a fresh private descriptor checked to still be the image (see the
/// module docs), a file on disk by its path.
pub fn exec_target(configured: &Path) -> Result<ExecTarget, String> {
    #[cfg(feature = "embed-worker")]
    if let Ok(image) = image::get() {
        if image.path == configured {
            return image.private_copy();
        }
    }
    Ok(ExecTarget {
        path: configured.to_path_buf(),
        _private: None,
    })
}

/// The sealed in-memory image of the embedded worker.
#[cfg(feature = "embed-worker")]
mod image {
    use super::{ExecTarget, EMBEDDED};
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    use std::fs::File;
    use std::io::Write;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;
    use std::sync::OnceLock;

    /// The image's descriptor (open for the rest of the process) and its identity.
    pub(super) struct Image {
        file: File,
        dev: u64,
        ino: u64,
        /// `/proc/self/fd/N` of `file`: the image's name in an engine configuration.
        pub(super) path: PathBuf,
    }

    /// The image, written and sealed on the first call.
    pub(super) fn get() -> Result<&'static Image, String> {
        static IMAGE: OnceLock<Result<Image, String>> = OnceLock::new();
        IMAGE
            .get_or_init(|| sealed_memfd(EMBEDDED))
            .as_ref()
            .map_err(Clone::clone)
    }

    impl Image {
        /// A fresh close-on-exec descriptor for one spawn, refused unless it still refers to the
        /// image: if other code closed the image's number and opened a file of its own there,
        /// the duplicate has another inode and we execute nothing.
        pub(super) fn private_copy(&self) -> Result<ExecTarget, String> {
            let copy = self
                .file
                .try_clone()
                .map_err(|e| format!("duplicating the embedded worker's descriptor: {e}"))?;
            let meta = copy
                .metadata()
                .map_err(|e| format!("checking the embedded worker's descriptor: {e}"))?;
            if (meta.dev(), meta.ino()) != (self.dev, self.ino) {
                return Err(format!(
                    "{} is no longer the embedded worker (closed and reused by other code in \
                     the host); not executing it",
                    self.path.display()
                ));
            }
            let fd = OwnedFd::from(copy);
            Ok(ExecTarget {
                path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
                _private: Some(fd),
            })
        }
    }

    /// Writes `image` into a new memfd and seals it against any change.
    fn sealed_memfd(image: &[u8]) -> Result<Image, String> {
        let create = |flags: MemFdCreateFlag| memfd_create(c"tandem-worker", flags);
        let flags = MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING;
        // Kernels from 6.3 on may default memfds to non-executable (vm.memfd_noexec); ask for
        // exec explicitly (nix does not name the flag yet), and fall back for older kernels that
        // do not know it.
        let exec = MemFdCreateFlag::from_bits_retain(libc::MFD_EXEC);
        let fd = create(flags | exec)
            .or_else(|_| create(flags))
            .map_err(|e| format!("memfd_create for the embedded worker failed: {e}"))?;
        let mut file = File::from(fd);
        file.write_all(image)
            .map_err(|e| format!("writing the embedded worker into its memfd failed: {e}"))?;
        fcntl(
            file.as_raw_fd(),
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SHRINK
                    | SealFlag::F_SEAL_GROW
                    | SealFlag::F_SEAL_WRITE
                    | SealFlag::F_SEAL_SEAL,
            ),
        )
        .map_err(|e| format!("sealing the embedded worker's memfd failed: {e}"))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("reading the embedded worker's memfd: {e}"))?;
        let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        log::debug!(
            "Tandem: embedded worker ({} bytes) in {}",
            image.len(),
            path.display()
        );
        Ok(Image {
            dev: meta.dev(),
            ino: meta.ino(),
            file,
            path,
        })
    }
}

/// The worker on disk for builds without an embedded one (see the module docs).
#[cfg(not(feature = "embed-worker"))]
fn find_on_disk() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(WORKER_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{WORKER_ENV}={} does not name a file",
                path.display()
            ))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find our executable: {e}"))?;
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(WORKER_NAME))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "no {WORKER_NAME} found (looked at {}); set {WORKER_ENV} or use a bundle built \
                 by `cargo xtask bundle`, which embeds it",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "embed-worker"))]
    #[test]
    fn env_var_must_name_a_file() {
        // The test harness runs tests on threads of one process, so only this test touches the
        // variable.
        std::env::set_var(WORKER_ENV, "/nonexistent/tandem-worker");
        let err = worker_path().unwrap_err();
        std::env::remove_var(WORKER_ENV);
        assert!(err.contains("does not name a file"), "{err}");
    }

    #[cfg(feature = "embed-worker")]
    #[test]
    fn each_spawn_executes_a_private_copy_of_the_sealed_image() {
        let path = worker_path().unwrap();
        let target = exec_target(&path).unwrap();
        assert_ne!(
            target.path(),
            path,
            "a spawn must not execute the shared number"
        );
        for p in [&path, &target.path().to_path_buf()] {
            assert_eq!(std::fs::metadata(p).unwrap().len(), EMBEDDED.len() as u64);
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(target.path())
            .unwrap();
        assert!(
            std::io::Write::write_all(&mut file, b"x").is_err(),
            "the image must be sealed"
        );
    }
}
