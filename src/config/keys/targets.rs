//! The keys of a target's table (`[environments.ENV.databases.NAME]`,
//! `[environments.ENV.services.NAME]`), apart from the other tables for their length.

use super::Unset::{Default, Required};
use super::Value::{Bool, Choice, List, Number, Text};
use super::{ENVIRONMENTS, TRANSPORTS, Table, key};
use crate::config::ranges::{LOCAL_PORT, REMOTE_PORT};

pub const DATABASE: Table = Table {
    header: "[environments.ENV.databases.NAME]",
    about: "the target ENV/NAME: a Cloud SQL database, reached through a proxy in the pod",
    keys: &[
        key(
            "sql_connection",
            Text,
            Required,
            "the instance, `PROJECT:REGION:INSTANCE`",
        ),
        key(
            "local_port",
            Number(LOCAL_PORT),
            Default("0"),
            "the port rhizome listens on; 0 takes any free port",
        ),
        key(
            "scheme",
            Text,
            Default("`mysql`"),
            "the scheme of the URL `forward` prints",
        ),
        key("context", Text, ENVIRONMENTS, "the kubeconfig context"),
        key("namespace", Text, ENVIRONMENTS, "the namespace"),
        key("kubeconfig", Text, ENVIRONMENTS, "the kubeconfig file"),
        key(
            "deployment",
            Text,
            ENVIRONMENTS,
            "the deployment of the proxies",
        ),
        key(
            "user",
            Text,
            Default("none"),
            "the user name put in the URL `forward` prints and handed to `rhizome exec`'s command",
        ),
        key(
            "database",
            Text,
            Default("none"),
            "the database name put in the URL and handed to `rhizome exec`'s command",
        ),
        key(
            "password_command",
            List,
            Default("none"),
            "a command (an argument vector, never a shell) the client runs when a password is needed; its output, trimmed, is the password, never sent to the daemon or stored",
        ),
        key(
            "simulate_upstream",
            Text,
            Default("the echo server"),
            "in simulate mode, where the tunnel leads instead: `HOST:PORT` (`RHIZOME_SIMULATE_UPSTREAM` overrides it)",
        ),
        key(
            "lazy",
            Bool,
            Default("the environment's `lazy`"),
            "whether this target's tunnel is lazy (`forward --lazy` makes one lazy for a call)",
        ),
        key(
            "transport",
            Choice(TRANSPORTS),
            Default("the environment's `transport`"),
            "what carries this target's tunnel (`forward --transport` overrides it for a call)",
        ),
        key(
            "autostart",
            Bool,
            Default("`false`"),
            "whether `rhizome up` with no environment opens this target's tunnel",
        ),
    ],
};

pub const SERVICE: Table = Table {
    header: "[environments.ENV.services.NAME]",
    about: "the target ENV/NAME: a plain port-forward to a resource",
    keys: &[
        key(
            "resource",
            Text,
            Required,
            "what to forward to: `svc/NAME`, `deploy/NAME` or `pod/NAME`",
        ),
        key(
            "remote_port",
            Number(REMOTE_PORT),
            Required,
            "the port on the resource",
        ),
        key(
            "local_port",
            Number(LOCAL_PORT),
            Default("0"),
            "the port rhizome listens on; 0 takes any free port",
        ),
        key(
            "scheme",
            Text,
            Default("`http`"),
            "the scheme of the URL `forward` prints",
        ),
        key("context", Text, ENVIRONMENTS, "the kubeconfig context"),
        key("namespace", Text, ENVIRONMENTS, "the namespace"),
        key("kubeconfig", Text, ENVIRONMENTS, "the kubeconfig file"),
        key(
            "user",
            Text,
            Default("none"),
            "the user name put in the URL `forward` prints and handed to `rhizome exec`'s command",
        ),
        key(
            "database",
            Text,
            Default("none"),
            "the database name put in the URL and handed to `rhizome exec`'s command",
        ),
        key(
            "password_command",
            List,
            Default("none"),
            "a command (an argument vector, never a shell) the client runs when a password is needed; its output, trimmed, is the password, never sent to the daemon or stored",
        ),
        key(
            "simulate_upstream",
            Text,
            Default("the echo server"),
            "in simulate mode, where the tunnel leads instead: `HOST:PORT` (`RHIZOME_SIMULATE_UPSTREAM` overrides it)",
        ),
        key(
            "lazy",
            Bool,
            Default("the environment's `lazy`"),
            "whether this target's tunnel is lazy (`forward --lazy` makes one lazy for a call)",
        ),
        key(
            "transport",
            Choice(TRANSPORTS),
            Default("the environment's `transport`"),
            "what carries this target's tunnel (`forward --transport` overrides it for a call)",
        ),
        key(
            "autostart",
            Bool,
            Default("`false`"),
            "whether `rhizome up` with no environment opens this target's tunnel",
        ),
    ],
};
