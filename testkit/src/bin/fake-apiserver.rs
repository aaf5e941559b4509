//! `fake-apiserver`: a fake Kubernetes API server for tests of tools that run
//! the real kubectl. See `rhizome_testkit::apiserver` for what it serves.

use std::process::ExitCode;

use rhizome_testkit::apiserver::{self, Config};

fn main() -> ExitCode {
    let cfg = match Config::parse(std::env::args().skip(1)) {
        Ok(cfg) => cfg,
        Err(msg) => {
            eprintln!("fake-apiserver: {msg}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fake-apiserver: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(apiserver::run(cfg));
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("fake-apiserver: {e}");
            1
        }
    };
    // Exit at once: the stdin reader is a blocking thread that would keep the
    // runtime's shutdown waiting.
    std::process::exit(code)
}
