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
/// no robust mutex). Call before the sandbox forbids `set_robust_list`.
pub fn arm(word: &AtomicU32) -> std::io::Result<()> {
    RobustList::register()?.hold(word);
    Ok(())
}

/// The calling thread's robust list, registered with the kernel while still empty, so that a
/// spare can register it before its sandbox and take hold of its ring's death word later, with
/// no system call. The list is leaked: the kernel reads it when the thread exits.
pub struct RobustList {
    head: &'static mut RobustListHead,
    entry: &'static mut RobustEntry,
}

impl RobustList {
    /// Registers an empty list (its head pointing back at itself) as the calling thread's,
    /// replacing the C library's (the worker uses no robust mutex).
    pub fn register() -> std::io::Result<RobustList> {
        let head: &'static mut RobustListHead = Box::leak(Box::new(RobustListHead {
            next: std::ptr::null(),
            futex_offset: 0,
            list_op_pending: std::ptr::null(),
        }));
        head.next = &*head as *const RobustListHead;
        let entry: &'static mut RobustEntry = Box::leak(Box::new(RobustEntry {
            next: &*head as *const RobustListHead,
        }));
        // SAFETY: the head is leaked, so it outlives the thread, and it is a valid (empty)
        // circular list. The kernel only reads it (and an entry's word, as a futex) when the
        // thread exits.
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
        Ok(RobustList { head, entry })
    }

    /// Takes hold of `word` for the calling thread, the one that registered the list: stores
    /// its thread id in the word and links the word in. `word` must stay mapped until the
    /// process exits. Returns the token to take hold of it again ([`Held::again`]).
    pub fn hold(self, word: &AtomicU32) -> Held {
        // SAFETY: gettid takes no arguments and cannot fail.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
        word.store(tid & TID_MASK, Ordering::SeqCst);
        self.head.futex_offset =
            word.as_ptr() as isize - (&*self.entry as *const RobustEntry as isize);
        // The offset before the link: an exit in between sees an empty list, never a stray word.
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
        self.head.next = (&*self.entry as *const RobustEntry).cast();
        Held { tid }
    }
}

/// A death word this thread holds (linked into its robust list).
pub struct Held {
    tid: u32,
}

impl Held {
    /// Stores the thread id in `word` again, the word it holds, after the plugin cleared it
    /// to call a returned standby into its slot again (`OutputRing::prepare_spawn`).
    pub fn again(&self, word: &AtomicU32) {
        word.store(self.tid & TID_MASK, Ordering::SeqCst);
    }
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
