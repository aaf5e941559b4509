//! `rhizome.toml`: the user's settings. Unknown keys are errors (with line and column), so a typo
//! never silently does nothing.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::daemon::logs::Rotation;
use crate::paths::Paths;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub logs: LogsConfig,
}

/// Rotation of the per-process logs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// A log file rotates once it would grow past this many bytes.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Files kept per process, the current one included.
    #[serde(default = "default_keep_files")]
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

impl LogsConfig {
    pub fn rotation(&self) -> Rotation {
        Rotation {
            max_bytes: self.max_file_bytes.max(4096),
            keep: self.keep_files.max(1),
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

/// Reads the config; a missing file is an empty config.
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

/// Parses config text; the error names the line and column.
pub fn parse(text: &str) -> Result<Config, String> {
    toml::from_str(text).map_err(|err| {
        let position = err.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
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
    fn an_empty_file_is_the_default() {
        let config = parse("").unwrap();
        assert_eq!(config.logs.rotation(), Rotation::default());
    }
}
