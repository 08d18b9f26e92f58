//! The death word with the real kernel: a thread that arms it and exits has it released by the
//! kernel (`OWNER_DIED`), and a waiter sleeping on it in `futex::wait_any` is woken.

use shm::death::{self, Watch, OWNER_DIED};
use shm::futex::{monotonic_ns, wait_any};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};

#[test]
fn the_kernel_releases_a_dead_owners_word_and_wakes_its_waiter() {
    let word = Arc::new(AtomicU32::new(0));
    let (tid_tx, tid_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let owner = {
        let word = word.clone();
        std::thread::spawn(move || {
            death::arm(&word).expect("set_robust_list");
            // SAFETY: gettid takes no arguments.
            tid_tx
                .send(unsafe { libc::syscall(libc::SYS_gettid) } as u32)
                .unwrap();
            // Hold the word until told to exit.
            let _ = go_rx.recv();
        })
    };
    let tid = tid_rx.recv().unwrap();
    let Watch::Held(value) = death::watch(&word, tid) else {
        panic!(
            "word not held by its owner: {:#x}",
            word.load(Ordering::SeqCst)
        );
    };
    drop(go_tx);
    // Sleep on it (a liveness bound only: 60 s); only the kernel's release ends this early.
    let idle = AtomicU32::new(0);
    while word.load(Ordering::SeqCst) == value {
        wait_any(
            &[(&idle, 0), (&word, value)],
            Some(monotonic_ns() + 60_000_000_000),
        )
        .expect("futex_waitv");
    }
    owner.join().unwrap();
    assert_ne!(word.load(Ordering::SeqCst) & OWNER_DIED, 0);
    assert_eq!(death::watch(&word, tid), Watch::Released);
}
