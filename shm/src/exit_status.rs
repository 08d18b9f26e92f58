//! The worker's own exit statuses: part of the protocol, since the plugin reports them by name
//! (a worker that exits 13 on start could not enter its sandbox).

/// The plugin went away (a normal end).
pub const EXIT_PARENT_GONE: i32 = 0;
/// Bad arguments or regions.
pub const EXIT_SETUP: i32 = 10;
/// The worker fell a whole input ring behind and cannot catch up.
pub const EXIT_LAPPED: i32 = 11;
/// The snapshot it was told to start from was refused.
pub const EXIT_RESTORE: i32 = 12;
/// The sandbox could not be entered.
pub const EXIT_SANDBOX: i32 = 13;

/// What a worker's exit status means, for the plugin's log, or `None` for a status the worker
/// does not use (a panic exits 101, for example).
pub fn meaning(code: i32) -> Option<&'static str> {
    match code {
        EXIT_PARENT_GONE => Some("the plugin went away"),
        EXIT_SETUP => Some("bad arguments or regions"),
        EXIT_LAPPED => Some("fell a whole input ring behind"),
        EXIT_RESTORE => Some("refused its start state"),
        EXIT_SANDBOX => Some("could not enter its sandbox"),
        _ => None,
    }
}
