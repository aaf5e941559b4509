//! `rhizome forward` and `rhizome targets`: targets come from the config, read here in the client,
//! so the daemon gets a resolved, validated target and the client's environment.

use std::io::IsTerminal;
use std::time::Duration;

use serde_json::json;

use super::exit::Exit;
use super::output::{self, note};
use super::sanitize;
use super::{Client, Failure, unexpected};
use crate::cli::{ForwardArgs, ForwardFormat, TargetsArgs};
use crate::config::{self, Config};
use crate::forward::kubectl::{self, Tool};
use crate::forward::target::{self, Route, TargetError};
use crate::paths::Paths;
use crate::protocol::{ForwardInfo, ForwardRequest, Request, Response, Status, TunnelSettings};

pub async fn forward(paths: &Paths, args: &ForwardArgs) -> anyhow::Result<Exit> {
    let config = load_config(paths)?;
    let mut target = target::resolve(&config, &args.target).map_err(target_failure)?;
    if let Some(port) = args.port {
        target.local_port = std::num::NonZeroU16::new(port);
    }
    let simulate =
        args.simulate || std::env::var("RHIZOME_SIMULATE").is_ok_and(|v| !v.is_empty() && v != "0");
    let tool = if simulate {
        Tool::Simulated
    } else {
        Tool::Kubectl(find_kubectl(&config)?)
    };
    let timeout = args.timeout;
    let request = ForwardRequest {
        target,
        tool,
        timeout_ms: timeout.as_millis() as u64,
        context: super::context()?,
        settings: settings(&config),
        replace: args.replace,
    };
    let name = request.target.name.clone();
    let mut client = Client::connect_or_start_within(paths, timeout).await?;
    // Whether this command created the tunnel, for what Ctrl-C says: the daemon tells.
    let mut created = false;
    client.send(&Request::Forward(Box::new(request))).await?;
    let mut progress = Progress::new(args.quiet, &args.target);
    if let Progress::Spinner(Some(spinner)) = &progress {
        let spinner = spinner.clone();
        client.on_notice(move |notice| {
            spinner.suspend(|| note(format_args!("rhizome: {}", sanitize::text(notice))))
        });
    }
    // One listener for the whole wait: a Ctrl-C between two answers is not missed.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let info = loop {
        let response = tokio::select! {
            response = client.receive() => response?,
            _ = &mut interrupted => {
                // The spinner would stay on the screen if the default handler ended us.
                progress.clear();
                drop(client);
                if created {
                    announce_if_starting(paths, &name).await;
                }
                return Ok(Exit::Interrupted);
            }
        };
        match response {
            Response::Progress(step) => progress.step(&step),
            Response::TunnelCreated => created = true,
            Response::Forwarded(info) => break info,
            other => return Err(unexpected(other)),
        }
    };
    // Gone before the address appears; an error on the way clears it too (on drop).
    progress.clear();
    output::print(render(&info, args.format))?;
    Ok(Exit::Success)
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

fn render(info: &ForwardInfo, format: ForwardFormat) -> String {
    match format {
        ForwardFormat::Url => format!("{}\n", info.connection_string),
        ForwardFormat::Port => format!("{}\n", info.local_port),
        ForwardFormat::Json => format!(
            "{}\n",
            json!({
                "connection_string": info.connection_string,
                "local_port": info.local_port,
                "sql_connection": info.sql_connection,
                "target": info.target,
                "id": info.id,
                "pid": info.pid,
            })
        ),
        ForwardFormat::Env => format!(
            "export RHIZOME_HOST=127.0.0.1\nexport RHIZOME_PORT={}\nexport RHIZOME_URL={}\n",
            info.local_port, info.connection_string
        ),
    }
}

/// A target that does not resolve, said as an error and, for a name that is not there, the
/// names it may have meant as the hint.
fn target_failure(err: TargetError) -> Failure {
    match err {
        TargetError::Unknown { name, close } => {
            let hint = match close.as_slice() {
                [] => "`rhizome targets` lists the targets".to_string(),
                names => format!(
                    "did you mean {}? (`rhizome targets` lists them all)",
                    names.join(", ")
                ),
            };
            Failure::new(format!("there is no target `{name}`")).hint(hint)
        }
        other => Failure::new(other.to_string()),
    }
}

/// How the config's `[forward]` section keeps tunnels up.
pub fn settings(config: &Config) -> TunnelSettings {
    TunnelSettings {
        backoff_max_ms: config.forward.backoff_max_secs.saturating_mul(1000),
        probe_interval_ms: config.forward.probe_interval_secs.saturating_mul(1000),
    }
}

/// The config with the built-in targets, or the config's error as the user should read it.
pub fn load_config(paths: &Paths) -> anyhow::Result<Config> {
    let path = config::path(paths);
    config::load_with_built_ins(&path).map_err(|err| {
        Failure::new(err.to_string())
            .hint(format!(
                "fix {} (or point RHIZOME_CONFIG at another file)",
                path.display()
            ))
            .into()
    })
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

pub fn targets(paths: &Paths, args: &TargetsArgs) -> anyhow::Result<Exit> {
    let config = load_config(paths)?;
    let described = target::describe(&config);
    if args.json {
        let list: Vec<serde_json::Value> = described
            .iter()
            .map(|(name, resolved)| match resolved {
                Ok(t) => json!({
                    "name": name,
                    "kind": match t.route { Route::Database { .. } => "database", Route::Service { .. } => "service" },
                    "context": t.context,
                    "namespace": t.namespace,
                    "resource": t.resource(),
                    "sql_connection": t.sql_connection(),
                    "local_port": t.local_port.map_or(0, |p| p.get()),
                    "scheme": t.scheme,
                }),
                Err(err) => json!({ "name": name, "error": err.to_string() }),
            })
            .collect();
        output::println(serde_json::Value::Array(list))?;
        return Ok(Exit::Success);
    }
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(["TARGET", "KIND", "LOCAL", "CONTEXT", "UPSTREAM"]);
    // Names and values come from a config file: shown escaped, like everything from outside.
    for (name, resolved) in &described {
        let row: [String; 5] = match resolved {
            Ok(t) => [
                name.clone(),
                match t.route {
                    Route::Database { .. } => "database".into(),
                    Route::Service { .. } => "service".into(),
                },
                match t.local_port {
                    None => "any".into(),
                    Some(port) => port.to_string(),
                },
                t.context.clone(),
                format!(
                    "{}/{}{}",
                    t.namespace,
                    t.resource(),
                    t.sql_connection()
                        .map(|s| format!(" {s}"))
                        .unwrap_or_default()
                ),
            ],
            Err(err) => [
                name.clone(),
                "invalid".into(),
                "".into(),
                "".into(),
                err.to_string(),
            ],
        };
        table.add_row(row.map(|cell| sanitize::field(&cell).into_owned()));
    }
    super::render::tidy(&mut table);
    output::println(table)?;
    if std::io::stdout().is_terminal() {
        note(format_args!("config: {}", config::path(paths).display()));
    }
    Ok(Exit::Success)
}
