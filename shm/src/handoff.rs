//! Handing the regions' memfds to a new worker over a Unix socket (`SCM_RIGHTS`).
//!
//! The worker is spawned with one end of a socket pair as its stdin and nothing else, which lets
//! `std::process::Command` use `posix_spawn` (no `fork` of the host's whole address space, and no
//! code of ours between fork and exec). The plugin then sends the memfds over the socket. The
//! socket also serves as the parent link: when the plugin process dies, the worker's end reports
//! a hang-up.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The most fds one hand-off carries.
pub const MAX_FDS: usize = 8;

/// Sends `fds` (at most [`MAX_FDS`]) with a one-byte message over the socket `sock`.
pub fn send_fds(sock: RawFd, fds: &[RawFd]) -> io::Result<()> {
    assert!(fds.len() <= MAX_FDS);
    let mut byte = [b'T'];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let payload = std::mem::size_of_val(fds) as u32;
    let mut control = [0u64; 16];
    // SAFETY: an all-zero msghdr is valid; every pointer we set below points at locals that
    // outlive the sendmsg call, and the control buffer (128 bytes, 8-byte aligned) is larger
    // than CMSG_SPACE for MAX_FDS fds. The CMSG_* helpers only compute addresses inside it.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(payload) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as usize;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast(), fds.len());
        if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Receives exactly `n` fds (at most [`MAX_FDS`]) from the socket `sock`, blocking until they
/// arrive. The new fds are close-on-exec.
pub fn recv_fds(sock: RawFd, n: usize) -> io::Result<Vec<OwnedFd>> {
    assert!(n <= MAX_FDS);
    let mut byte = [0u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 16];
    let mut received = Vec::with_capacity(n);
    // SAFETY: as in `send_fds`: the msghdr points at locals that outlive recvmsg, and we read
    // only the cmsg the kernel filled in, bounded by its reported length.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        if libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) != 1 {
            return Err(io::Error::other("no fds arrived"));
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(io::Error::other("message without fds"));
        }
        let data_len = (*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize;
        let count = data_len / std::mem::size_of::<RawFd>();
        let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
        for i in 0..count {
            // Each fd the kernel installed for us is ours, even ones beyond `n`, which we
            // close by dropping.
            received.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
        }
    }
    if received.len() != n {
        return Err(io::Error::other(format!(
            "expected {n} fds, got {}",
            received.len()
        )));
    }
    Ok(received)
}
