//! Opening a tunnel from the client: the request (with the tool this shell finds), the wait with
//! its progress on stderr, and Ctrl-C during it. Used by `forward` and `exec`.

use std::io::IsTerminal;
use std::time::Duration;

use super::output::note;
use super::sanitize;
use super::{Client, Failure, unexpected};
use crate::cli::Waiting;
use crate::config::{Config, TransportChoice};
use crate::forward::kubectl::{self, Tool};
use crate::forward::target::{self, ClientSide};
use crate::paths::Paths;
use crate::protocol::{
    ForwardInfo, ForwardRequest, Request, Response, Status, Target, TunnelSettings,
};

/// How a tunnel is asked for.
pub struct Wanted<'a> {
    /// The target as the user typed it, for the spinner.
    pub label: &'a str,
    /// `--timeout` (bounding the whole wait, reaching or starting the daemon included),
    /// `--simulate` (`RHIZOME_SIMULATE=1` counts too) and `--quiet`.
    pub waiting: &'a Waiting,
    /// `forward --replace`: a tunnel of the target with another configuration is restarted with
    /// this one instead of the forward being refused.
    pub replace: bool,
    /// Lazy whatever the config says (`forward --lazy`); `None`: as the config says.
    pub lazy: Option<bool>,
    /// `forward --transport`; `None`: as the config says.
    pub transport: Option<TransportChoice>,
    /// `rhizome up` asks, so that `rhizome down` finds it.
    pub by_up: bool,
}

/// How the wait for a tunnel ended.
pub enum Opened {
    Ready(Box<ForwardInfo>),
    /// Ctrl-C: the spinner is cleared and a tunnel still starting has been announced.
    Interrupted,
}

/// Opens the tunnel to `target` (or finds the one open) and waits until it carries traffic.
pub async fn open(
    paths: &Paths,
    config: &Config,
    target: Target,
    side: &ClientSide,
    how: &Wanted<'_>,
) -> anyhow::Result<Opened> {
    let simulate = how.waiting.simulate
        || std::env::var("RHIZOME_SIMULATE").is_ok_and(|v| !v.is_empty() && v != "0");
    let tool = if simulate {
        match simulate_upstream(side)? {
            Some(upstream) => Tool::SimulatedTo(upstream),
            None => Tool::Simulated,
        }
    } else {
        let choice = how
            .transport
            .or(side.transport)
            .unwrap_or(config.forward.transport);
        match choice {
            TransportChoice::Kubectl => Tool::Kubectl(find_kubectl(config)?),
            TransportChoice::Native => Tool::Native { fallback: None },
            TransportChoice::Auto => Tool::Native {
                fallback: find_kubectl(config).ok(),
            },
        }
    };
    let request = ForwardRequest {
        target,
        tool,
        timeout_ms: how.waiting.timeout.as_millis() as u64,
        context: super::context()?,
        settings: TunnelSettings {
            lazy: how.lazy.or(side.lazy).unwrap_or(config.forward.lazy),
            by_up: how.by_up,
            ..settings(config)
        },
        replace: how.replace,
    };
    let name = request.target.name.clone();
    let mut client = Client::connect_or_start_within(paths, how.waiting.timeout).await?;
    // Whether this command created the tunnel, for what Ctrl-C says: the daemon tells.
    let mut created = false;
    client.send(&Request::Forward(Box::new(request))).await?;
    let mut progress = Progress::new(how.waiting.quiet, how.label);
    if let Progress::Spinner(Some(spinner)) = &progress {
        let spinner = spinner.clone();
        client.on_notice(move |notice| {
            spinner.suspend(|| note(format_args!("rhizome: {}", sanitize::text(notice))))
        });
    }
    // One listener for the whole wait: a Ctrl-C between two answers is not missed.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let response = tokio::select! {
            response = client.receive() => response?,
            _ = &mut interrupted => {
                // The spinner would stay on the screen if the default handler ended us.
                progress.clear();
                drop(client);
                if created {
                    announce_if_starting(paths, &name).await;
                }
                return Ok(Opened::Interrupted);
            }
        };
        match response {
            Response::Progress(step) => progress.step(&step),
            Response::TunnelCreated => created = true,
            // Gone before the address appears; an error on the way clears it too (on drop).
            Response::Forwarded(info) => {
                progress.clear();
                return Ok(Opened::Ready(Box::new(info)));
            }
            other => return Err(unexpected(other)),
        }
    }
}

/// The status of the tunnel named `name` that the daemon runs, if it runs one.
async fn tunnel_status(client: &mut Client, name: &str) -> anyhow::Result<Option<Status>> {
    match client.call(&Request::Ps { all: false }).await? {
        Response::Ps(rows) => Ok(rows
            .into_iter()
            .find(|row| row.tunnel.is_some() && row.name == name && !row.status.is_final())
            .map(|row| row.status)),
        other => Err(unexpected(other)),
    }
}

/// After Ctrl-C: a tunnel this command created goes on starting in the daemon (a tunnel is
/// meant to outlive the command that asked for it), so it is said, with how to stop it. Nothing
/// is said once it is ready, or when the daemon cannot tell within a moment.
async fn announce_if_starting(paths: &Paths, name: &str) {
    let ask = async {
        let mut client = Client::connect(paths).await.ok()??;
        tunnel_status(&mut client, name).await.ok()?
    };
    let status = tokio::time::timeout(Duration::from_millis(500), ask).await;
    if let Ok(Some(status)) = status
        && status != Status::Running
    {
        note(format_args!(
            "rhizome: still starting in the background; rhizome kill {} stops it",
            sanitize::text(name)
        ));
    }
}

/// How `forward` shows its steps on stderr: a spinner naming the current step on a terminal,
/// `rhizome: STEP` lines elsewhere (logs, CI), nothing with `--quiet`.
enum Progress {
    /// `None` once cleared.
    Spinner(Option<indicatif::ProgressBar>),
    Lines,
    Quiet,
}

impl Progress {
    fn new(quiet: bool, target: &str) -> Progress {
        if quiet {
            return Progress::Quiet;
        }
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        if !std::io::stderr().is_terminal() || dumb {
            return Progress::Lines;
        }
        let style = indicatif::ProgressStyle::with_template("{spinner} {prefix}: {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
        let spinner =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr())
                .with_style(style)
                .with_prefix(target.to_string())
                .with_message("asking the daemon");
        spinner.enable_steady_tick(Duration::from_millis(80));
        Progress::Spinner(Some(spinner))
    }

    /// Shows a step, which may quote kubectl: escaped, as everything from outside.
    fn step(&self, step: &str) {
        let step = sanitize::text(step);
        match self {
            Progress::Spinner(Some(spinner)) => spinner.set_message(step.to_string()),
            Progress::Lines => note(format_args!("rhizome: {step}")),
            Progress::Spinner(None) | Progress::Quiet => {}
        }
    }

    fn clear(&mut self) {
        if let Progress::Spinner(spinner) = self
            && let Some(spinner) = spinner.take()
        {
            spinner.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The simulated tunnel's far end: `RHIZOME_SIMULATE_UPSTREAM`, else the target's
/// `simulate_upstream`, else none (the echo server).
fn simulate_upstream(side: &ClientSide) -> anyhow::Result<Option<String>> {
    match std::env::var("RHIZOME_SIMULATE_UPSTREAM") {
        Ok(upstream) if !upstream.is_empty() => {
            if !target::is_address(&upstream) {
                return Err(Failure::new(format!(
                    "RHIZOME_SIMULATE_UPSTREAM={upstream:?} is not HOST:PORT"
                ))
                .hint("set it to the address of a server, for example 127.0.0.1:3306")
                .into());
            }
            Ok(Some(upstream))
        }
        _ => Ok(side.simulate_upstream.clone()),
    }
}

/// kubectl as this shell would find it: `RHIZOME_KUBECTL`, else the config's `kubectl`, else
/// `kubectl`, looked up on PATH.
fn find_kubectl(config: &Config) -> anyhow::Result<std::path::PathBuf> {
    let wanted = std::env::var("RHIZOME_KUBECTL")
        .ok()
        .filter(|k| !k.is_empty())
        .or_else(|| config.kubectl.clone())
        .unwrap_or_else(|| "kubectl".into());
    kubectl::find_program(&wanted, std::env::var_os("PATH").as_deref()).map_err(|why| {
        Failure::new(format!("kubectl could not be found: {why}"))
            .hint("install kubectl, set RHIZOME_KUBECTL to its path, or try RHIZOME_SIMULATE=1 to run without a cluster")
            .into()
    })
}

/// How the config's `[forward]` section keeps tunnels up; eager unless a target says otherwise.
pub fn settings(config: &Config) -> TunnelSettings {
    TunnelSettings {
        backoff_max_ms: config.forward.backoff_max_secs.saturating_mul(1000),
        probe_interval_ms: config.forward.probe_interval_secs.saturating_mul(1000),
        lazy: false,
        idle_stop_ms: config.forward.idle_stop_secs.saturating_mul(1000),
        by_up: false,
    }
}
