//! Every key of `rhizome.toml`, table by table: what it takes, what its absence means, and what it
//! does. The one source of the README's table of keys, of the rhizome.toml(5) man page, and of
//! where a key in the wrong table belongs; a test holds it to the serde structs in `mod.rs`.

use super::ranges::{
    BACKOFF_MAX_SECS, IDLE_STOP_SECS, KEEP_FILES, MAX_FILE_BYTES, PROBE_INTERVAL_SECS, Range,
};

/// What a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// A string, in quotes.
    Text,
    /// A list of strings: `["a", "b"]`.
    List,
    /// `true` or `false`.
    Bool,
    /// A whole number within its range.
    Number(Range),
    /// One of these words, in quotes.
    Choice(&'static [&'static str]),
    /// A table of its own, documented as one of `TABLES`.
    Table,
}

/// What it means to leave a key out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    /// The file is refused without it.
    Required,
    /// This default, as the user would read it (backticks mark literal text).
    Default(&'static str),
}

/// One key.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// As it is written in the file.
    pub name: &'static str,
    pub value: Value,
    pub unset: Unset,
    /// What it does, in a phrase (backticks mark literal text).
    pub meaning: &'static str,
}

/// One table and its keys, in the order the serde struct declares them.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// The header above its keys (`[logs]`); empty for the top level of the file.
    pub header: &'static str,
    /// What it holds, in a phrase.
    pub about: &'static str,
    pub keys: &'static [Key],
}

impl Table {
    /// Where in the file it is, after a preposition: "at the top level", "in [logs]".
    pub fn place(&self) -> String {
        if self.header.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in {}", self.header)
        }
    }

    pub fn key(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().find(|key| key.name == name)
    }
}

const fn key(name: &'static str, value: Value, unset: Unset, meaning: &'static str) -> Key {
    Key {
        name,
        value,
        unset,
        meaning,
    }
}

mod targets;

use self::Unset::Default;
use self::Value::{Bool, Choice, List, Number, Table as Sub, Text};
pub use self::targets::{DATABASE, SERVICE};

/// The environment's value, for a key a target may set for itself.
const ENVIRONMENTS: Unset = Default("the environment's");

pub const TOP: Table = Table {
    header: "",
    about: "the kubectl program and the tables below",
    keys: &[
        key(
            "kubectl",
            Text,
            Default("`kubectl` on PATH"),
            "the kubectl program, a name on PATH or a path; `RHIZOME_KUBECTL` overrides it",
        ),
        key("logs", Sub, Default("the defaults below"), "see `[logs]`"),
        key(
            "forward",
            Sub,
            Default("the defaults below"),
            "see `[forward]`",
        ),
        key(
            "environments",
            Sub,
            Default("the built-in targets only"),
            "see `[environments.ENV]`",
        ),
    ],
};

pub const LOGS: Table = Table {
    header: "[logs]",
    about: "rotation of the per-process logs (the daemon reads it when it starts)",
    keys: &[
        key(
            "max_file_bytes",
            Number(MAX_FILE_BYTES),
            Default("10485760"),
            "a process log rotates before it grows past this (4 KiB to 1 GiB)",
        ),
        key(
            "keep_files",
            Number(KEEP_FILES),
            Default("3"),
            "files kept per process, the current one included",
        ),
    ],
};

pub const FORWARD: Table = Table {
    header: "[forward]",
    about: "how tunnels are kept up",
    keys: &[
        key(
            "backoff_max_secs",
            Number(BACKOFF_MAX_SECS),
            Default("30"),
            "longest wait between two attempts to rebuild a broken tunnel",
        ),
        key(
            "probe_interval_secs",
            Number(PROBE_INTERVAL_SECS),
            Default("30"),
            "how often a working tunnel is probed (a connection to the database, which some servers count); 0 probes only after a failure",
        ),
        key(
            "lazy",
            Bool,
            Default("`false`"),
            "whether tunnels are lazy: the port is open at once, the path is built when the first client connects",
        ),
        key(
            "idle_stop_secs",
            Number(IDLE_STOP_SECS),
            Default("600"),
            "how long a lazy tunnel keeps its path without a client before it stops it (the port stays); 0 keeps it",
        ),
        key(
            "transport",
            Choice(TRANSPORTS),
            Default("`\"auto\"`"),
            "what carries tunnels: `native` (rhizome's own Kubernetes client, a stream per connection), `kubectl` (a `kubectl port-forward`), or `auto`: native, or kubectl when the native client cannot use the kubeconfig or the server refuses its streams",
        ),
    ],
};

/// The words `transport` takes.
pub const TRANSPORTS: &[&str] = &["auto", "native", "kubectl"];

pub const ENVIRONMENT: Table = Table {
    header: "[environments.ENV]",
    about: "one environment (a cluster, usually): what its targets share",
    keys: &[
        key(
            "context",
            Text,
            Default("none; each target sets it"),
            "the kubeconfig context of the cluster",
        ),
        key(
            "namespace",
            Text,
            Default("none; each target sets it"),
            "the namespace of the targets",
        ),
        key(
            "kubeconfig",
            Text,
            Default("kubectl's own (`KUBECONFIG`, `~/.kube/config`)"),
            "the kubeconfig file",
        ),
        key(
            "deployment",
            Text,
            Default("none; each database sets it"),
            "the deployment whose pod runs the Cloud SQL proxies",
        ),
        key(
            "connect",
            List,
            Default("`[\"/connect.sh\", \"{sql_connection}\"]`"),
            "the command run in that pod (`kubectl exec`) to start a proxy; `{sql_connection}` is replaced by the instance",
        ),
        key(
            "port_pattern",
            Text,
            Default("`\\[{sql_connection}\\] Listening on [^ ]+:(\\d+)`"),
            "a regular expression that finds the proxy's port in the pod's log: its first group",
        ),
        key(
            "lazy",
            Bool,
            Default("`[forward] lazy`"),
            "whether this environment's tunnels are lazy",
        ),
        key(
            "transport",
            Choice(TRANSPORTS),
            Default("`[forward] transport`"),
            "what carries this environment's tunnels",
        ),
        key(
            "databases",
            Sub,
            Default("none"),
            "see `[environments.ENV.databases.NAME]`",
        ),
        key(
            "services",
            Sub,
            Default("none"),
            "see `[environments.ENV.services.NAME]`",
        ),
    ],
};

/// Every table, in the order the file is documented.
pub const TABLES: [Table; 6] = [TOP, LOGS, FORWARD, ENVIRONMENT, DATABASE, SERVICE];

/// The table whose keys are exactly `names` (as the parser lists them for a key it does not
/// know): that is the table the key stood in.
pub fn table_with_keys(names: &[&str]) -> Option<&'static Table> {
    TABLES.iter().find(|table| {
        table.keys.len() == names.len() && names.iter().all(|name| table.key(name).is_some())
    })
}

/// The tables that have a key of this name.
pub fn tables_with(name: &str) -> impl Iterator<Item = &'static Table> {
    TABLES.iter().filter(move |table| table.key(name).is_some())
}

/// A short file that sets something in every table, shown in rhizome.toml(5).
pub const EXAMPLE: &str = r#"kubectl = "/usr/local/bin/kubectl"

[logs]
max_file_bytes = 10485760
keep_files = 3

[forward]
probe_interval_secs = 0

[environments.staging]
context = "gke_acme_us-central1_staging"
namespace = "apps"
deployment = "cloudsql-proxies"

[environments.staging.databases.orders]
sql_connection = "acme-staging:us-central1:orders"
local_port = 3307

[environments.staging.services.api]
resource = "svc/api"
remote_port = 80
local_port = 8080
"#;

#[cfg(test)]
mod tests;
