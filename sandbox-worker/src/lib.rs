//! The Tandem worker: a sandboxed process that renders the synth for the plugin.
//!
//! It maps the regions it was handed (see [`worker`] for the fd numbers), restores the state the
//! plugin gave it, locks itself down, and then renders every chunk of the broadcast input ring
//! into its own output ring until the plugin goes away. The plugin never trusts what it writes.

pub mod escape;
pub mod fault;
pub mod sandbox;
mod spare;
pub mod worker;

/// Locks the process down before it reads any chunk (see [`sandbox`]). Returns an exit status
/// on failure: a worker that cannot be sandboxed does not run.
fn enter_sandbox() -> Result<(), i32> {
    let handed = [
        worker::FD_INPUT,
        worker::FD_OUTPUT,
        worker::FD_DOORBELL,
        worker::FD_PARENT,
    ];
    // The plugin locks the rings in memory once for every worker that will ever map them, so
    // a replacement neither faults them in again (about 0.6 ms per MiB) nor unlocks them when it
    // dies (which slows the death the supervisor waits to see): nothing to lock here.
    match sandbox::enter(&handed, &[]) {
        Ok(report) => {
            // Every worker restart would repeat the same line; say it only when a layer is
            // missing on this kernel.
            let degraded = report.seccomp_syscalls.is_none()
                || report.landlock != sandbox::LandlockState::Full;
            if degraded {
                log_line(&format!("tandem-worker: {report}"));
            }
            Ok(())
        }
        Err(e) => {
            log_line(&format!("tandem-worker: {e}"));
            Err(worker::EXIT_SANDBOX)
        }
    }
}

/// Tries a forbidden action (a sandbox escape code, 100 and up) for the sandbox tests.
fn attempt_escape(code: u32, input: &shm::InputRing, output: &shm::OutputRing) {
    let Some(kind) = escape::Escape::from_u32(code) else {
        log_line(&format!("tandem-worker: unknown fault code {code}"));
        return;
    };
    let (input_ptr, input_len) = input.span();
    let ctx = escape::EscapeContext {
        input_ptr,
        input_len,
        input_fd: input.fd(),
        output_fd: output.fd(),
        parent_pid: sandbox::parent_pid(),
    };
    log_line(&format!("tandem-worker: {}", escape::attempt(kind, &ctx)));
}

/// Writes one line to stderr in a single `write`, so the two workers' lines never interleave.
fn log_line(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}
