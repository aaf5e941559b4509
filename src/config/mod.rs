//! `rhizome.toml`: the user's settings. Unknown keys and numbers outside their range are errors
//! (with line and column, in plain words: `plain.rs`), so a typo never silently does nothing and
//! no setting makes the daemon do unbounded work. `keys.rs` documents every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::paths::Paths;

pub mod keys;
mod plain;
mod ranges;

pub use self::ranges::{
    BACKOFF_MAX_SECS, IDLE_STOP_SECS, KEEP_FILES, LOCAL_PORT, MAX_FILE_BYTES, PROBE_INTERVAL_SECS,
    RANGES, REMOTE_PORT, Range,
};
use self::ranges::{
    backoff_max_secs, idle_stop_secs, keep_files, local_port, max_file_bytes, probe_interval_secs,
    remote_port,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The kubectl program; `RHIZOME_KUBECTL` overrides it.
    pub kubectl: Option<String>,
    #[serde(default)]
    pub logs: LogsConfig,
    #[serde(default)]
    pub forward: ForwardConfig,
    /// Forward targets, by environment: `ENV/NAME`.
    #[serde(default)]
    pub environments: BTreeMap<String, Environment>,
}

/// How tunnels are kept up.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// The longest wait between two attempts to rebuild a broken tunnel.
    #[serde(
        default = "default_backoff_max_secs",
        deserialize_with = "backoff_max_secs"
    )]
    pub backoff_max_secs: u64,
    /// How often a working tunnel is probed for a kubectl that runs but no longer forwards; 0
    /// probes only after a failed connection. Each probe is a connection through kubectl to the
    /// database, which some servers count (MySQL's max_connect_errors).
    #[serde(
        default = "default_probe_interval_secs",
        deserialize_with = "probe_interval_secs"
    )]
    pub probe_interval_secs: u64,
    /// Whether tunnels are lazy unless their target or environment says otherwise.
    #[serde(default)]
    pub lazy: bool,
    /// How long a lazy tunnel keeps its upstream without a client; 0 keeps it.
    #[serde(
        default = "default_idle_stop_secs",
        deserialize_with = "idle_stop_secs"
    )]
    pub idle_stop_secs: u64,
    /// What carries tunnels unless their target or environment says otherwise.
    #[serde(default)]
    pub transport: TransportChoice,
}

/// What carries a tunnel, as rhizome.toml and `forward --transport` say it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TransportChoice {
    /// The native client, or kubectl when the native client cannot serve the tunnel.
    #[default]
    Auto,
    /// rhizome's own Kubernetes client: a port-forward stream per connection, no process.
    Native,
    /// A `kubectl port-forward` process.
    Kubectl,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            backoff_max_secs: default_backoff_max_secs(),
            probe_interval_secs: default_probe_interval_secs(),
            lazy: false,
            idle_stop_secs: default_idle_stop_secs(),
            transport: TransportChoice::Auto,
        }
    }
}

fn default_idle_stop_secs() -> u64 {
    600
}

fn default_backoff_max_secs() -> u64 {
    30
}

fn default_probe_interval_secs() -> u64 {
    30
}

/// Settings shared by the targets of one environment (a cluster, usually).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub kubeconfig: Option<String>,
    /// The deployment whose pod runs the Cloud SQL proxies.
    pub deployment: Option<String>,
    /// Command run in the pod with `kubectl exec` to start a proxy; `{sql_connection}` is
    /// replaced by the instance.
    pub connect: Option<Vec<String>>,
    /// Regex finding the proxy's port in the pod's log; `{sql_connection}` is replaced by the
    /// escaped instance, the first capture group is the port.
    pub port_pattern: Option<String>,
    /// Whether this environment's tunnels are lazy (over `[forward] lazy`).
    pub lazy: Option<bool>,
    /// What carries this environment's tunnels (over `[forward] transport`).
    pub transport: Option<TransportChoice>,
    #[serde(default)]
    pub databases: BTreeMap<String, Database>,
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
}

/// A Cloud SQL database reached through a proxy started in a pod.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub sql_connection: String,
    /// 0 or absent: any free port.
    #[serde(default, deserialize_with = "local_port")]
    pub local_port: Option<u16>,
    pub scheme: Option<String>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub kubeconfig: Option<String>,
    pub deployment: Option<String>,
    /// The user name put in the URL and handed to `rhizome exec`'s command.
    pub user: Option<String>,
    /// The database name put in the URL and handed to `rhizome exec`'s command.
    pub database: Option<String>,
    /// An argument vector (never a shell) the client runs when a password is needed; its output,
    /// trimmed, is the password. It is never sent to the daemon or stored.
    pub password_command: Option<Vec<String>>,
    /// In simulate mode, where the tunnel leads instead of the echo server: `HOST:PORT`.
    pub simulate_upstream: Option<String>,
    /// Whether this target's tunnel is lazy (over its environment's and `[forward] lazy`).
    pub lazy: Option<bool>,
    /// What carries this target's tunnel (over its environment's and `[forward] transport`).
    pub transport: Option<TransportChoice>,
    /// Whether `rhizome up` with no environment opens this target's tunnel.
    #[serde(default)]
    pub autostart: bool,
}

/// A plain port-forward to a resource, with no proxy step.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// `svc/NAME`, `deploy/NAME` or `pod/NAME`.
    pub resource: String,
    #[serde(deserialize_with = "remote_port")]
    pub remote_port: u16,
    /// 0 or absent: any free port.
    #[serde(default, deserialize_with = "local_port")]
    pub local_port: Option<u16>,
    pub scheme: Option<String>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub kubeconfig: Option<String>,
    /// The user name put in the URL and handed to `rhizome exec`'s command.
    pub user: Option<String>,
    /// The database name put in the URL and handed to `rhizome exec`'s command.
    pub database: Option<String>,
    /// An argument vector (never a shell) the client runs when a password is needed; its output,
    /// trimmed, is the password. It is never sent to the daemon or stored.
    pub password_command: Option<Vec<String>>,
    /// In simulate mode, where the tunnel leads instead of the echo server: `HOST:PORT`.
    pub simulate_upstream: Option<String>,
    /// Whether this target's tunnel is lazy (over its environment's and `[forward] lazy`).
    pub lazy: Option<bool>,
    /// What carries this target's tunnel (over its environment's and `[forward] transport`).
    pub transport: Option<TransportChoice>,
    /// Whether `rhizome up` with no environment opens this target's tunnel.
    #[serde(default)]
    pub autostart: bool,
}

/// Rotation of the per-process logs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// A log file rotates once it would grow past this many bytes.
    #[serde(
        default = "default_max_file_bytes",
        deserialize_with = "max_file_bytes"
    )]
    pub max_file_bytes: u64,
    /// Files kept per process, the current one included.
    #[serde(default = "default_keep_files", deserialize_with = "keep_files")]
    pub keep_files: usize,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            max_file_bytes: default_max_file_bytes(),
            keep_files: default_keep_files(),
        }
    }
}

fn default_max_file_bytes() -> u64 {
    Rotation::default().max_bytes
}

fn default_keep_files() -> usize {
    Rotation::default().keep
}

/// How large a log file may grow and how many files (the current one included) are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_bytes: 10 * 1024 * 1024,
            keep: 3,
        }
    }
}

impl LogsConfig {
    pub fn rotation(&self) -> Rotation {
        Rotation {
            max_bytes: self.max_file_bytes,
            keep: self.keep_files,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
}

/// The config file in use: `RHIZOME_CONFIG`, else `rhizome.toml` in the config directory.
pub fn path(paths: &Paths) -> PathBuf {
    match std::env::var_os("RHIZOME_CONFIG").filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => paths.config_file(),
    }
}

/// The built-in targets: the original design's database works out of the box.
pub const BUILT_IN: &str = include_str!("../default.toml");

/// Reads the config; a missing file is an empty config. Built-in targets are not included (see
/// `load_with_built_ins`).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    parse(&text).map_err(|message| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    })
}

/// The built-in targets with the user's file laid over them: the user's settings win, and their
/// targets add to the built-in ones.
pub fn load_with_built_ins(path: &Path) -> Result<Config, ConfigError> {
    let user = load(path)?;
    let mut config = parse(BUILT_IN).map_err(|message| ConfigError::Parse {
        path: PathBuf::from("(built-in targets)"),
        message,
    })?;
    config.kubectl = user.kubectl.or(config.kubectl);
    config.logs = user.logs;
    config.forward = user.forward;
    for (name, theirs) in user.environments {
        match config.environments.get_mut(&name) {
            None => {
                config.environments.insert(name, theirs);
            }
            Some(ours) => {
                ours.context = theirs.context.or(ours.context.take());
                ours.namespace = theirs.namespace.or(ours.namespace.take());
                ours.kubeconfig = theirs.kubeconfig.or(ours.kubeconfig.take());
                ours.deployment = theirs.deployment.or(ours.deployment.take());
                ours.connect = theirs.connect.or(ours.connect.take());
                ours.port_pattern = theirs.port_pattern.or(ours.port_pattern.take());
                ours.lazy = theirs.lazy.or(ours.lazy.take());
                ours.databases.extend(theirs.databases);
                ours.services.extend(theirs.services);
            }
        }
    }
    Ok(config)
}

/// Parses config text; the error names the line and column (counted in characters) and says what
/// is wrong in the file's terms.
pub fn parse(text: &str) -> Result<Config, String> {
    toml::from_str(text).map_err(|err| {
        let position = err.span().map(|span| {
            let before = text.get(..span.start).unwrap_or(text);
            let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
            let line = before.matches('\n').count() + 1;
            let column = before[line_start..].chars().count() + 1;
            format!("line {line}, column {column}: ")
        });
        format!(
            "{}{}",
            position.unwrap_or_default(),
            plain::plain(err.message())
        )
    })
}

#[cfg(test)]
mod tests;
