//! Futex wait and wake on words that live in shared mappings (hence the non-private ops).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, at most `timeout`. Returns early on a wake, a signal, or a
/// changed value; callers re-check their condition in a loop, so why it returned does not matter.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    wait_raw(word, expected, &ts);
}

/// As [`wait`] with no timeout: sleeps until a wake, a signal or a changed value. For sleepers
/// that someone always wakes when there is something to do, so an idle process costs nothing.
pub fn wait_untimed(word: &AtomicU32, expected: u32) {
    wait_raw(word, expected, std::ptr::null());
}

fn wait_raw(word: &AtomicU32, expected: u32, timeout: *const libc::timespec) {
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; FUTEX_WAIT only reads
    // it and the timespec (null: no timeout), and a relative timeout is what FUTEX_WAIT takes.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            timeout,
        );
    }
}

/// The kernel's `struct futex_waitv` (`linux/futex.h`).
#[repr(C)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// `FUTEX2_SIZE_U32`: a 32-bit futex word (shared: `FUTEX2_PRIVATE` is not set).
const FUTEX2_SIZE_U32: u32 = 0x02;

/// The most words [`wait_any`] takes at once.
pub const WAIT_ANY_MAX: usize = 4;

/// Sleeps until any of `words` no longer holds its expected value or is woken, or until
/// `deadline_ns` (`CLOCK_MONOTONIC`, see [`monotonic_ns`]; `None`: no deadline). At most
/// [`WAIT_ANY_MAX`] words. Returns early on a signal too; callers re-check in a loop.
/// `Err` only when the kernel lacks `futex_waitv` (before Linux 5.16).
pub fn wait_any(words: &[(&AtomicU32, u32)], deadline_ns: Option<u64>) -> std::io::Result<()> {
    let mut waiters: [FutexWaitv; WAIT_ANY_MAX] = std::array::from_fn(|_| FutexWaitv {
        val: 0,
        uaddr: 0,
        flags: 0,
        reserved: 0,
    });
    let n = words.len().min(WAIT_ANY_MAX);
    for (w, (word, expected)) in waiters.iter_mut().zip(words) {
        *w = FutexWaitv {
            val: *expected as u64,
            uaddr: word.as_ptr() as u64,
            flags: FUTEX2_SIZE_U32,
            reserved: 0,
        };
    }
    let ts = deadline_ns.map(|ns| libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `waiters[..n]` are valid futex_waitv entries pointing at live, aligned u32 words;
    // the kernel only reads them and the absolute timespec (or null), during the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            waiters.as_ptr(),
            n as libc::c_uint,
            0 as libc::c_uint,
            ts_ptr,
            libc::CLOCK_MONOTONIC,
        )
    };
    if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Wakes every process sleeping on `word`.
pub fn wake_all(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE does not dereference anything else.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the one clock that both processes and the benchmarks share.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
