//! A fake `kubectl` for rhizome's tests: the command line of the real one for
//! `exec`, `logs` and `port-forward`, with no cluster behind it. State lives
//! in the directory `FAKE_KUBECTL_DIR`; faults come from a plan file.
//!
//! Environment:
//! - `FAKE_KUBECTL_DIR` (required): `calls.log`, the `*.count` start
//!   counters, `pod.log`, `port-forward.pid`; see [`state`].
//! - `FAKE_KUBECTL_BACKEND=HOST:PORT`: where port-forward splices connections.
//! - `FAKE_KUBECTL_CONTEXTS=a,b`: the contexts that exist (unset: all); any
//!   other `--context` fails with real kubectl's message, exit 1.
//! - `FAKE_KUBECTL_REMOTE_PORT` (default 3307): the fake proxy's pod port.
//! - `FAKE_KUBECTL_PLAN`: fault plan, read at every start; see [`plan`].
//!
//! Modules, one concern each:
//! - [`args`]: the command line; [`settings`]: the environment
//! - [`state`]: files in `FAKE_KUBECTL_DIR`; [`plan`]: the fault plan
//! - [`exec`], [`logs`], [`port_forward`]: the three commands
//! - [`listen`]: port-forward's listeners and their bind errors
//! - [`klog`]: kubectl's per-connection error lines

pub mod args;
pub mod exec;
pub mod klog;
pub mod listen;
pub mod logs;
pub mod plan;
pub mod port_forward;
pub mod settings;
pub mod state;

use std::io::Write as _;

use args::Command;
use plan::Action;
use settings::Settings;
use state::StateDir;

/// Runs one invocation (`args` without the program name); the exit code.
pub fn main(args: &[String]) -> i32 {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => return fail(&format!("fake-kubectl: {e}")),
    };
    let state = StateDir::new(&settings.dir);
    // Rejected before the subcommand starts: logged with start 0, not counted.
    let rejected = |stderr: &str| {
        if let Err(e) = state.record(None, args) {
            err_line(&format!("fake-kubectl: {e}"));
        }
        err_line(stderr);
        1
    };
    let inv = match args::parse(args) {
        Ok(inv) => inv,
        Err(e) => return rejected(&format!("error: {e}")),
    };
    if let Err(line) = settings.check_context(inv.context.as_deref()) {
        return rejected(&line);
    }
    let name = inv.command.name();
    let start = match state.record(Some(name), args) {
        Ok(n) => n,
        Err(e) => return fail(&format!("fake-kubectl: {e}")),
    };
    let actions = match &settings.plan {
        Some(path) => match plan::actions_for(path, name, start) {
            Ok(a) => a,
            Err(e) => return fail(&format!("fake-kubectl: {e}")),
        },
        None => Vec::new(),
    };
    if let Some(delay) = actions.iter().find_map(|a| match a {
        Action::SlowMs(d) => Some(*d),
        _ => None,
    }) {
        std::thread::sleep(delay);
    }
    match &inv.command {
        Command::Exec { argv, .. } => exec::run(argv, &settings, &state, &actions),
        Command::Logs { tail, .. } => logs::run(*tail, &state, &actions),
        Command::PortForward {
            ports, addresses, ..
        } => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return fail(&format!("fake-kubectl: cannot start the runtime: {e}")),
            };
            let pf = port_forward::Session {
                ports: *ports,
                addresses,
                settings: &settings,
                state: &state,
                actions: &actions,
            };
            runtime.block_on(pf.run())
        }
    }
}

/// Prints `error: <msg>` to stderr; exit code 1, as kubectl does.
pub fn fail(msg: &str) -> i32 {
    err_line(&format!("error: {msg}"));
    1
}

/// One line to stdout, flushed; a closed pipe is ignored, never a panic.
pub fn out_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// One line to stderr; errors ignored.
pub fn err_line(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
