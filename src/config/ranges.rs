//! The range of every number in `rhizome.toml`, and reading a number against its range with the
//! position of a value outside it.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// The whole numbers one setting accepts. A value outside them is refused where it stands in the
/// file: every loop and timer the settings drive stays bounded (a `keep_files` of 100000000 once
/// had `logs` look for a hundred million files, and the daemon's shutdown with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The key as it is written in the file.
    pub key: &'static str,
    /// What the number counts, as the error for a value of the wrong type names it: "a port
    /// number", not the `u16` it is read into.
    pub what: &'static str,
    pub min: u64,
    pub max: u64,
}

pub const MAX_FILE_BYTES: Range = Range {
    key: "max_file_bytes",
    what: "a size in bytes",
    min: 4096,
    max: 1 << 30,
};
pub const KEEP_FILES: Range = Range {
    key: "keep_files",
    what: "a number of files",
    min: 1,
    max: 100,
};
pub const BACKOFF_MAX_SECS: Range = Range {
    key: "backoff_max_secs",
    what: "a number of seconds",
    min: 1,
    max: 3600,
};
pub const PROBE_INTERVAL_SECS: Range = Range {
    key: "probe_interval_secs",
    what: "a number of seconds",
    min: 0,
    max: 3600,
};
pub const IDLE_STOP_SECS: Range = Range {
    key: "idle_stop_secs",
    what: "a number of seconds",
    min: 0,
    max: 7 * 24 * 3600,
};
pub const LOCAL_PORT: Range = Range {
    key: "local_port",
    what: "a port number",
    min: 0,
    max: 65535,
};
pub const REMOTE_PORT: Range = Range {
    key: "remote_port",
    what: "a port number",
    min: 1,
    max: 65535,
};

/// Every numeric setting's range, as the README's configuration section lists them.
pub const RANGES: [Range; 7] = [
    MAX_FILE_BYTES,
    KEEP_FILES,
    BACKOFF_MAX_SECS,
    PROBE_INTERVAL_SECS,
    IDLE_STOP_SECS,
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
            "`{}` to be {} from {} to {}",
            self.key, self.what, self.min, self.max
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

pub(super) fn max_file_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    MAX_FILE_BYTES.read(d)
}

pub(super) fn keep_files<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    KEEP_FILES.read(d)
}

pub(super) fn backoff_max_secs<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    BACKOFF_MAX_SECS.read(d)
}

pub(super) fn probe_interval_secs<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    PROBE_INTERVAL_SECS.read(d)
}

pub(super) fn idle_stop_secs<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    IDLE_STOP_SECS.read(d)
}

pub(super) fn local_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    LOCAL_PORT.read(d).map(Some)
}

pub(super) fn remote_port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    REMOTE_PORT.read(d)
}
