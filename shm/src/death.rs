//! The death word: a process-shared robust futex each worker holds while it lives, so the
//! supervisor learns of its death before the kernel has unmapped it (docs/ARCHITECTURE.md,
//! "Failure detection and rebuild").
//!
//! A worker stores its thread id in its output ring's death word and registers that word as its
//! robust futex ([`arm`]). When the worker's thread exits, however it exits, the kernel walks
//! its robust list in `exit_mm_release`, before unmapping its memory and long before its pidfd
//! becomes readable: it sets [`OWNER_DIED`] in the word and wakes a waiter if [`WAITERS`] is set.
//! The supervisor sets `WAITERS` ([`watch`]) and sleeps on the word with
//! [`crate::futex::wait_any`].
//!
//! The word lives in worker-writable memory, so it is a hint, never a verdict: a worker that
//! fakes its death gets killed for it, one that spoils the word is still found by its pidfd,
//! which stays the authority for reaping and for reusing its ring.

use std::sync::atomic::{AtomicU32, Ordering};

/// Set by a waiter: the kernel wakes the word when its owner dies only with this bit set.
pub const WAITERS: u32 = 0x8000_0000;
/// Set by the kernel when the owner died holding the word.
pub const OWNER_DIED: u32 = 0x4000_0000;
/// The bits that hold the owner's thread id.
const TID_MASK: u32 = 0x3fff_ffff;

/// The kernel's `struct robust_list_head` (`linux/futex.h`): a circular list of held futexes.
#[repr(C)]
struct RobustListHead {
    /// The first entry (here the only one); the list ends where it comes back to the head.
    next: *const RobustListHead,
    /// From an entry's address to its futex word, in bytes.
    futex_offset: isize,
    /// An entry being added or removed (none here).
    list_op_pending: *const RobustListHead,
}

/// The one entry of the list: just a `next` pointer back to the head.
#[repr(C)]
struct RobustEntry {
    next: *const RobustListHead,
}

/// Worker side: takes hold of `word` for the calling thread (the worker's only thread) and
/// registers it as the thread's robust futex, replacing the C library's list (the worker uses
/// no robust mutex). Call before the sandbox forbids `set_robust_list`. The list is leaked: the
/// kernel reads it when the thread exits.
pub fn arm(word: &AtomicU32) -> std::io::Result<()> {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
    word.store(tid & TID_MASK, Ordering::SeqCst);
    let head: &'static mut RobustListHead = Box::leak(Box::new(RobustListHead {
        next: std::ptr::null(),
        futex_offset: 0,
        list_op_pending: std::ptr::null(),
    }));
    let entry: &'static mut RobustEntry = Box::leak(Box::new(RobustEntry {
        next: &*head as *const RobustListHead,
    }));
    head.next = (&*entry as *const RobustEntry).cast();
    head.futex_offset = word.as_ptr() as isize - (&*entry as *const RobustEntry as isize);
    // SAFETY: the head and its entry are leaked, so they outlive the thread; the entry's
    // futex_offset leads to `word`, which stays mapped until the process exits. The kernel only
    // reads the list (and the word, as a futex) when the thread exits.
    let r = unsafe {
        libc::syscall(
            libc::SYS_set_robust_list,
            &*head as *const RobustListHead,
            std::mem::size_of::<RobustListHead>(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// What a death word says about the worker with process id `pid` (its only thread's id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    /// Not armed yet (the worker is starting): only its pidfd can tell.
    NotArmed,
    /// Held by `pid`: sleep on the word while it holds this value.
    Held(u32),
    /// Released: the owner died (or wrote something else; either way, check its pidfd now).
    Released,
}

/// Plugin side: reads the word once and, if `pid` holds it, sets [`WAITERS`] so that its death
/// wakes us. Returns what to do.
pub fn watch(word: &AtomicU32, pid: u32) -> Watch {
    let seen = word.load(Ordering::SeqCst);
    if seen == 0 {
        return Watch::NotArmed;
    }
    if seen & (OWNER_DIED | TID_MASK) != pid & TID_MASK {
        return Watch::Released;
    }
    let want = seen | WAITERS;
    if seen == want {
        return Watch::Held(want);
    }
    match word.compare_exchange(seen, want, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => Watch::Held(want),
        // It changed under us: look again on the next pass.
        Err(_) => Watch::Released,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_held_by_another_or_released_is_not_held() {
        let word = AtomicU32::new(0);
        assert_eq!(watch(&word, 42), Watch::NotArmed);
        word.store(42, Ordering::SeqCst);
        assert_eq!(watch(&word, 42), Watch::Held(42 | WAITERS));
        assert_eq!(word.load(Ordering::SeqCst), 42 | WAITERS);
        assert_eq!(watch(&word, 42), Watch::Held(42 | WAITERS));
        assert_eq!(watch(&word, 43), Watch::Released);
        word.store(WAITERS | OWNER_DIED, Ordering::SeqCst);
        assert_eq!(watch(&word, 42), Watch::Released);
    }
}
