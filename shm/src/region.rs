//! Sealed memfd regions viewed as arrays of atomic words.
//!
//! Every byte of a region may be written by another process at any moment, so we never form a
//! plain `&[u8]` or `&[f32]` over it: all access goes through `AtomicU32`/`AtomicU64`, which is
//! sound under concurrent foreign writes and compiles to plain loads and stores.

use memmap2::{MmapOptions, MmapRaw};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64};

/// How a region is mapped into this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Shared, readable and writable.
    ReadWrite,
    /// Shared, read-only (the worker's view of the input ring).
    ReadOnly,
}

/// A mapped shared-memory region of `words` 32-bit words.
pub struct Region {
    map: MmapRaw,
    words: usize,
    fd: OwnedFd,
}

impl Region {
    /// Creates a memfd of `words` words, maps it read-write, and seals its size so that no
    /// process holding it can shrink it (a shrunk mapping raises `SIGBUS` in whoever reads it).
    pub fn create(name: &str, words: usize) -> io::Result<Region> {
        let bytes = words
            .checked_mul(4)
            .ok_or_else(|| io::Error::other("region size overflows"))?;
        let cname = std::ffi::CString::new(name).map_err(io::Error::other)?;
        // SAFETY: memfd_create with a valid NUL-terminated name; the flags are plain constants.
        let raw = unsafe {
            libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        File::from(fd.try_clone()?).set_len(bytes as u64)?;
        add_seals(fd.as_raw_fd(), libc::F_SEAL_SHRINK | libc::F_SEAL_GROW)?;
        Self::map(fd, words, Access::ReadWrite)
    }

    /// Maps the whole of an fd that was handed to us (the worker side). Its size seals, set by
    /// the plugin before the worker existed, keep the size fixed while it is mapped.
    pub fn map_whole(fd: OwnedFd, access: Access) -> io::Result<Region> {
        let len = File::from(fd.try_clone()?).metadata()?.len();
        let words = usize::try_from(len / 4).map_err(io::Error::other)?;
        Self::map(fd, words, access)
    }

    fn map(fd: OwnedFd, words: usize, access: Access) -> io::Result<Region> {
        let file = File::from(fd.try_clone()?);
        if words == 0 {
            return Err(io::Error::other("empty region"));
        }
        let mut opts = MmapOptions::new();
        opts.len(words * 4);
        let map = match access {
            Access::ReadWrite => opts.map_raw(&file)?,
            Access::ReadOnly => opts.map_raw_read_only(&file)?,
        };
        Ok(Region { map, words, fd })
    }

    /// Forbids any new writable mapping of this region (`F_SEAL_FUTURE_WRITE`); our own existing
    /// mapping stays writable. Applied to the input ring before a worker ever sees it, so a worker
    /// cannot `mprotect` or re-map its read-only view to write into what its twin reads.
    pub fn seal_future_writes(&self) -> io::Result<()> {
        add_seals(self.fd.as_raw_fd(), libc::F_SEAL_FUTURE_WRITE)
    }

    /// Makes the size seals final: nobody can remove them again.
    pub fn seal_seals(&self) -> io::Result<()> {
        add_seals(self.fd.as_raw_fd(), libc::F_SEAL_SEAL)
    }

    /// Locks the region's pages in memory so the render path never page-faults. The pages are
    /// shared, so one lock keeps them resident for every process that maps them. Best effort:
    /// returns false where `RLIMIT_MEMLOCK` refuses.
    pub fn lock(&self) -> bool {
        // SAFETY: mlock on our own live mapping of exactly its length; it does not touch the
        // contents.
        unsafe { libc::mlock(self.map.as_ptr().cast(), self.words * 4) == 0 }
    }

    /// The memfd, for handing to a worker.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Length in words.
    pub fn words(&self) -> usize {
        self.words
    }

    /// Base address, for `mlock`.
    pub fn as_ptr(&self) -> *const u8 {
        self.map.as_ptr()
    }

    /// The word at index `i`. Panics if `i` is out of range: callers pass indices computed from
    /// validated values, so a panic here is our bug, never a worker's doing.
    #[inline]
    pub fn word(&self, i: usize) -> &AtomicU32 {
        assert!(i < self.words, "word index {i} out of range");
        // SAFETY: the mapping is `words * 4` bytes, page-aligned, and lives as long as `self`;
        // `i < words` keeps the pointer inside it; AtomicU32 has the size and alignment of u32
        // and tolerates concurrent writes from other processes.
        unsafe { &*(self.map.as_ptr() as *const AtomicU32).add(i) }
    }

    /// The 64-bit word starting at the (even) word index `i`.
    #[inline]
    pub fn dword(&self, i: usize) -> &AtomicU64 {
        assert!(
            i.is_multiple_of(2) && i + 1 < self.words,
            "dword index {i} out of range"
        );
        // SAFETY: as in `word`; `i` is even and the base is page-aligned, so the address is
        // 8-byte aligned, and both halves are inside the mapping.
        unsafe { &*(self.map.as_ptr().add(i * 4) as *const AtomicU64) }
    }
}

fn add_seals(fd: RawFd, seals: libc::c_int) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own with an integer argument.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
