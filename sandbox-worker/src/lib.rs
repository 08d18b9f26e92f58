//! The Tandem worker: a sandboxed process that renders the synth for the plugin.
//!
//! It maps the regions it was handed (see [`worker`] for the fd numbers), restores the state the
//! plugin gave it, locks itself down, and then renders every chunk of the broadcast input ring
//! into its own output ring until the plugin goes away. The plugin never trusts what it writes.
#![deny(missing_docs)]

pub mod escape;
pub mod fault;
pub mod render;
pub mod sandbox;
pub mod worker;

pub use render::ChunkRenderer;

/// Locks the process down before it reads any chunk. Returns an exit status on failure.
fn enter_sandbox(_input: &shm::InputRing, _output: &shm::OutputRing) -> Result<(), i32> {
    Ok(())
}

/// Tries a forbidden action (a sandbox escape code, 100 and up) for the sandbox tests.
fn attempt_escape(code: u32, _input: &shm::InputRing, _output: &shm::OutputRing) {
    eprintln!("tandem-worker: unknown fault code {code}");
}
