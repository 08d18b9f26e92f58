//! `tandem-worker --slot S --epoch E [--spin-us N]`: spawned by the Tandem plugin, never by hand.

fn main() {
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
