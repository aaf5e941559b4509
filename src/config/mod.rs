//! `rhizome.toml`: the user's settings. Unknown keys and numbers outside their range are errors
//! (with line and column), so a typo never silently does nothing and no setting makes the daemon
//! do unbounded work.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::paths::Paths;

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
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            backoff_max_secs: default_backoff_max_secs(),
            probe_interval_secs: default_probe_interval_secs(),
        }
    }
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

/// The whole numbers one setting accepts. A value outside them is refused where it stands in the
/// file: every loop and timer the settings drive stays bounded (a `keep_files` of 100000000 once
/// had `logs` look for a hundred million files, and the daemon's shutdown with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The key as it is written in the file.
    pub key: &'static str,
    pub min: u64,
    pub max: u64,
}

pub const MAX_FILE_BYTES: Range = Range {
    key: "max_file_bytes",
    min: 4096,
    max: 1 << 30,
};
pub const KEEP_FILES: Range = Range {
    key: "keep_files",
    min: 1,
    max: 100,
};
pub const BACKOFF_MAX_SECS: Range = Range {
    key: "backoff_max_secs",
    min: 1,
    max: 3600,
};
pub const PROBE_INTERVAL_SECS: Range = Range {
    key: "probe_interval_secs",
    min: 0,
    max: 3600,
};
pub const LOCAL_PORT: Range = Range {
    key: "local_port",
    min: 0,
    max: 65535,
};
pub const REMOTE_PORT: Range = Range {
    key: "remote_port",
    min: 1,
    max: 65535,
};

/// Every numeric setting's range, as the README's configuration section lists them.
pub const RANGES: [Range; 6] = [
    MAX_FILE_BYTES,
    KEEP_FILES,
    BACKOFF_MAX_SECS,
    PROBE_INTERVAL_SECS,
    LOCAL_PORT,
    REMOTE_PORT,
];

impl Range {
    pub fn contains(&self, value: u64) -> bool {
        (self.min..=self.max).contains(&value)
    }

    /// Reads the setting's value; the toml deserializer puts the value's position on the error.
    fn read<'de, D, T>(self, deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<u64>,
    {
        let value = deserializer.deserialize_u64(self)?;
        T::try_from(value).map_err(|_| de::Error::custom(self.refusal(value)))
    }

    fn refusal(&self, value: impl fmt::Display) -> String {
        format!(
            "`{}` must be from {} to {}, not {value}",
            self.key, self.min, self.max
        )
    }
}

impl Visitor<'_> for Range {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "`{}` to be a whole number from {} to {}",
            self.key, self.min, self.max
        )
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
        if self.contains(value) {
            Ok(value)
        } else {
            Err(E::custom(self.refusal(value)))
        }
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(E::custom(self.refusal(value))),
        }
    }
}

fn max_file_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    MAX_FILE_BYTES.read(d)
}

fn keep_files<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    KEEP_FILES.read(d)
}

fn backoff_max_secs<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    BACKOFF_MAX_SECS.read(d)
}

fn probe_interval_secs<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    PROBE_INTERVAL_SECS.read(d)
}

fn local_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    LOCAL_PORT.read(d).map(Some)
}

fn remote_port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    REMOTE_PORT.read(d)
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
                ours.databases.extend(theirs.databases);
                ours.services.extend(theirs.services);
            }
        }
    }
    Ok(config)
}

/// Parses config text; the error names the line and column (counted in characters).
pub fn parse(text: &str) -> Result<Config, String> {
    toml::from_str(text).map_err(|err| {
        let position = err.span().map(|span| {
            let before = text.get(..span.start).unwrap_or(text);
            let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
            let line = before.matches('\n').count() + 1;
            let column = before[line_start..].chars().count() + 1;
            format!("line {line}, column {column}: ")
        });
        format!("{}{}", position.unwrap_or_default(), err.message())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named_with_their_position() {
        let err = parse("[logs]\nmax_file_bytes = 100\nkeep = 3\n").unwrap_err();
        assert!(
            err.starts_with("line 3, column 1: unknown field `keep`"),
            "{err}"
        );
    }

    #[test]
    fn the_users_file_adds_to_and_overrides_the_built_ins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rhizome.toml");
        std::fs::write(
            &path,
            "[environments.na-prod]\nnamespace = \"mine\"\n\n[environments.na-prod.databases.extra]\nsql_connection = \"p:r:extra\"\n",
        )
        .unwrap();
        let config = load_with_built_ins(&path).unwrap();
        let env = &config.environments["na-prod"];
        assert_eq!(env.namespace.as_deref(), Some("mine"));
        assert_eq!(env.deployment.as_deref(), Some("gke-cloudsql-access"));
        assert!(env.databases.contains_key("billing-bookkeeper"));
        assert!(env.databases.contains_key("extra"));
    }

    #[test]
    fn numbers_outside_their_range_are_refused_at_the_value() {
        let service = "[environments.e.services.s]\nresource = \"svc/x\"\n";
        for (text, expected) in [
            (
                "[logs]\nkeep_files = 100000000\n".to_string(),
                "line 2, column 14: `keep_files` must be from 1 to 100, not 100000000",
            ),
            (
                "[logs]\nkeep_files = 0\n".into(),
                "line 2, column 14: `keep_files` must be from 1 to 100, not 0",
            ),
            (
                "[logs]\nkeep_files = -3\n".into(),
                "line 2, column 14: `keep_files` must be from 1 to 100, not -3",
            ),
            (
                "[logs]\nmax_file_bytes = 100\n".into(),
                "line 2, column 18: `max_file_bytes` must be from 4096 to 1073741824, not 100",
            ),
            (
                "[logs]\nmax_file_bytes = 1073741825\n".into(),
                "line 2, column 18: `max_file_bytes` must be from 4096 to 1073741824, not 1073741825",
            ),
            (
                "[forward]\nbackoff_max_secs = 0\n".into(),
                "line 2, column 20: `backoff_max_secs` must be from 1 to 3600, not 0",
            ),
            (
                "[forward]\nprobe_interval_secs = 86400\n".into(),
                "line 2, column 23: `probe_interval_secs` must be from 0 to 3600, not 86400",
            ),
            (
                format!("{service}remote_port = 0\n"),
                "line 3, column 15: `remote_port` must be from 1 to 65535, not 0",
            ),
            (
                format!("{service}remote_port = 80\nlocal_port = 70000\n"),
                "line 4, column 14: `local_port` must be from 0 to 65535, not 70000",
            ),
            (
                "[environments.e.databases.d]\nsql_connection = \"p:r:d\"\nlocal_port = -1\n"
                    .into(),
                "line 3, column 14: `local_port` must be from 0 to 65535, not -1",
            ),
            (
                "[logs]\nkeep_files = 2.5\n".into(),
                "line 2, column 14: invalid type: floating point `2.5`, expected `keep_files` to be a whole number from 1 to 100",
            ),
            (
                "[logs]\nkeep_files = \"3\"\n".into(),
                "line 2, column 14: invalid type: string \"3\", expected `keep_files` to be a whole number from 1 to 100",
            ),
        ] {
            let err = parse(&text).unwrap_err();
            assert_eq!(err, expected, "{text}");
        }
    }

    #[test]
    fn every_range_takes_its_ends_and_refuses_past_them() {
        let file = |key: &str, value: i128| match key {
            "max_file_bytes" | "keep_files" => format!("[logs]\n{key} = {value}\n"),
            "backoff_max_secs" | "probe_interval_secs" => format!("[forward]\n{key} = {value}\n"),
            "remote_port" => format!(
                "[environments.e.services.s]\nresource = \"svc/x\"\nremote_port = {value}\n"
            ),
            "local_port" => format!(
                "[environments.e.services.s]\nresource = \"svc/x\"\nremote_port = 1\nlocal_port = {value}\n"
            ),
            other => panic!("no test file for `{other}`"),
        };
        for range in RANGES {
            for inside in [range.min, range.max] {
                let text = file(range.key, inside.into());
                assert!(parse(&text).is_ok(), "{text}: {:?}", parse(&text).err());
            }
            for outside in [i128::from(range.min) - 1, i128::from(range.max) + 1] {
                let text = file(range.key, outside);
                let err = parse(&text).unwrap_err();
                assert!(
                    err.contains(&format!("`{}` must be from", range.key)),
                    "{err}"
                );
            }
        }
        let config = parse("[logs]\nmax_file_bytes = 4096\nkeep_files = 100\n").unwrap();
        assert_eq!(
            config.logs.rotation(),
            Rotation {
                max_bytes: 4096,
                keep: 100
            }
        );
    }

    #[test]
    fn the_readme_documents_every_range() {
        let readme = include_str!("../README.md");
        for range in RANGES {
            let row = format!("| `{}` | {} to {} |", range.key, range.min, range.max);
            assert!(readme.contains(&row), "README.md lacks the row `{row}`");
        }
    }

    #[test]
    fn columns_count_characters() {
        let err = parse("kubectl = \"kübectl\"; [logs]\n").unwrap_err();
        assert!(err.starts_with("line 1, column 20: "), "{err}");
    }

    #[test]
    fn an_empty_file_is_the_default() {
        let config = parse("").unwrap();
        assert_eq!(config.logs.rotation(), Rotation::default());
    }
}
