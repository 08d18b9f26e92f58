//! Where the worker executable (`tandem-worker`) comes from.
//!
//! A bundle must start its workers wherever the user copies it, with no install step and no
//! `PATH` lookup (a `PATH` lookup would also let anything earlier on `PATH` run inside our
//! worker's place). So release bundles carry the worker inside the plugin binary: `cargo xtask
//! bundle` builds `tandem-worker` first and then the plugin with the `embed-worker` feature and
//! `TANDEM_WORKER_BIN=<path>`, which `include_bytes!` picks up. At the first activation we copy
//! those bytes once into a sealed memfd and hand the engine `/proc/self/fd/<fd>` as the path to
//! execute: `execve` opens that path before close-on-exec closes the descriptor (the same thing
//! `fexecve` does), which works for an ELF executable. The seals make the image immutable, so
//! nothing in the process can swap the worker after we wrote it.
//!
//! Builds without the feature (`cargo test`, the demo) look for the worker on disk: the
//! environment variable `TANDEM_WORKER` if set, else `tandem-worker` next to the running
//! executable or in its parent folder (`target/<profile>/` for `target/<profile>/deps/<test>`).

use std::path::PathBuf;
#[cfg(feature = "embed-worker")]
use std::sync::OnceLock;

/// Name of the environment variable that points at a worker executable (non-embedded builds).
pub const WORKER_ENV: &str = "TANDEM_WORKER";
/// File name of the worker executable.
pub const WORKER_NAME: &str = "tandem-worker";

#[cfg(feature = "embed-worker")]
static EMBEDDED: &[u8] = include_bytes!(env!(
    "TANDEM_WORKER_BIN",
    "the embed-worker feature needs TANDEM_WORKER_BIN=<path to tandem-worker> at build time; \
     `cargo xtask bundle` sets it"
));

/// The lowest descriptor number the embedded worker's memfd may use (see `sealed_memfd`).
#[cfg(feature = "embed-worker")]
const EMBEDDED_FD_FLOOR: std::os::fd::RawFd = 64;

/// The path the engine should execute for a worker, or why there is none.
///
/// With `embed-worker` this is a `/proc/self/fd/N` path to a sealed memfd that lives for the rest
/// of the process (created on the first call, shared by every instance). Main thread only: the
/// first call writes the image.
pub fn worker_path() -> Result<PathBuf, String> {
    #[cfg(feature = "embed-worker")]
    {
        static MEMFD: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        MEMFD.get_or_init(|| sealed_memfd(EMBEDDED)).clone()
    }
    #[cfg(not(feature = "embed-worker"))]
    {
        find_on_disk()
    }
}

/// Writes `image` into a new memfd, seals it against any change, and leaks the descriptor for the
/// rest of the process so its `/proc/self/fd` path stays valid.
#[cfg(feature = "embed-worker")]
fn sealed_memfd(image: &[u8]) -> Result<PathBuf, String> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    use std::io::Write;
    use std::os::fd::AsRawFd;

    let create = |flags: MemFdCreateFlag| memfd_create(c"tandem-worker", flags);
    let flags = MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING;
    // Kernels from 6.3 on may default memfds to non-executable (vm.memfd_noexec); ask for exec
    // explicitly (nix does not name the flag yet), and fall back for older kernels that do not
    // know it.
    let exec = MemFdCreateFlag::from_bits_retain(libc::MFD_EXEC);
    let fd = create(flags | exec)
        .or_else(|_| create(flags))
        .map_err(|e| format!("memfd_create for the embedded worker failed: {e}"))?;
    let mut file = std::fs::File::from(fd);
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
    // The engine's spawner dup2()s the worker's own descriptors onto 3..=6 in the child before
    // exec. In a fresh process the memfd would be one of those numbers and get replaced by a
    // shared-memory fd before execve opens /proc/self/fd/N, so move it well above them.
    let high = fcntl(
        file.as_raw_fd(),
        FcntlArg::F_DUPFD_CLOEXEC(EMBEDDED_FD_FLOOR),
    )
    .map_err(|e| format!("moving the embedded worker's memfd failed: {e}"))?;
    drop(file);
    let raw = high;
    log::debug!(
        "Tandem: embedded worker ({} bytes) in /proc/self/fd/{raw}",
        image.len()
    );
    Ok(PathBuf::from(format!("/proc/self/fd/{raw}")))
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
    fn embedded_worker_is_sealed_and_executable_path() {
        let path = worker_path().unwrap();
        let fd: i32 = path.file_name().unwrap().to_str().unwrap().parse().unwrap();
        assert!(
            fd >= EMBEDDED_FD_FLOOR,
            "fd {fd} may collide with the spawner's 3..=6"
        );
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), EMBEDDED.len() as u64);
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        assert!(
            std::io::Write::write_all(&mut file, b"x").is_err(),
            "the image must be sealed"
        );
    }
}
