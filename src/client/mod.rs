//! The client half of every command: reach the daemon (starting it when needed), greet it, and
//! render its answers. One module per command's rendering, plus what every command shares:
//! colors (`style`), shell completion (`complete`) and the generated files (`generate`).

pub mod complete;
mod complete_run;
mod connect;
pub mod daemon;
mod deadline;
pub mod exec;
pub mod exit;
pub mod forward;
pub mod generate;
pub mod install;
pub mod json;
pub mod kill;
pub mod logs;
mod manual;
pub mod output;
pub mod overview;
pub mod password;
pub mod places;
pub mod ps;
pub mod render;
pub mod restart;
pub mod sanitize;
pub mod spawn;
mod start;
mod status_json;
pub mod style;
pub mod table;
pub mod targets;
pub mod trust;
pub mod tunnel;
pub mod up;

use std::os::unix::ffi::OsStringExt;

use anyhow::Context;

pub use self::connect::{Client, Reached};
pub use self::deadline::{CONNECT_DEADLINE, not_answering};
use self::exit::Exit;
pub use self::start::start_daemon_process;
use crate::protocol::{ClientContext, ErrorReply, Response};

/// A failure to show the user: one sentence, maybe a hint, and the exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub message: String,
    pub hint: Option<String>,
    pub code: Exit,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            hint: None,
            code: Exit::Failure,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl From<ErrorReply> for Failure {
    fn from(reply: ErrorReply) -> Self {
        Failure {
            message: reply.message,
            hint: reply.hint,
            code: Exit::Failure,
        }
    }
}

/// An answer that does not fit the request: a bug on one side, reported as such.
pub fn unexpected(response: Response) -> anyhow::Error {
    anyhow::anyhow!("the daemon gave an unexpected answer: {response:?}")
}

/// This shell's directory and environment, sent with requests that start processes.
pub fn context() -> anyhow::Result<ClientContext> {
    let cwd = std::env::current_dir()
        .context("the current directory cannot be read (was it removed?)")?;
    Ok(ClientContext {
        cwd: cwd.into_os_string().into_vec(),
        env: std::env::vars_os()
            .map(|(k, v)| (k.into_vec(), v.into_vec()))
            .collect(),
    })
}
