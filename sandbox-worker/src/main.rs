//! `tandem-worker --slot S --epoch E [--spin-us N]`: spawned by the Tandem plugin, never by hand.

fn main() {
    // A panic ends the worker as a crash (SIGABRT), its message on stderr first. Unwinding
    // would drop the shared regions on the way out, with syscalls the sandbox forbids: the
    // worker would end by SIGSYS, as if it had tried to escape.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
    sandbox_worker::worker::name_process();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match sandbox_worker::worker::Args::parse(&args) {
        Ok(args) => sandbox_worker::worker::run(args),
        Err(e) => {
            eprintln!("tandem-worker: {e}");
            sandbox_worker::worker::EXIT_SETUP
        }
    };
    std::process::exit(code);
}
