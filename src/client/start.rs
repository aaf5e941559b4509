//! Starting the daemon from a client: as a separate `rhizome daemon start`, since a daemon must be
//! forked from a process with no threads.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::Failure;
use super::deadline::seconds;
use crate::paths::Paths;

/// How long a client waits for a daemon that is starting (its own or another client's).
pub(super) const START_DEADLINE: Duration = Duration::from_secs(5);

/// Runs `rhizome daemon start` as a separate process and waits for it: the daemon must be forked
/// from a process with no threads, which this client (with its runtime) is not.
pub async fn start_daemon_process(paths: &Paths) -> anyhow::Result<()> {
    start_daemon_process_by(paths, Instant::now() + START_DEADLINE).await
}

pub(super) async fn start_daemon_process_by(
    paths: &Paths,
    deadline: Instant,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()
        .context("could not find the rhizome executable to start the daemon")?;
    let output = tokio::process::Command::new(&exe)
        .args(["daemon", "start"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    let left = deadline.saturating_duration_since(Instant::now());
    let output = match tokio::time::timeout(left, output).await {
        Ok(output) => output
            .with_context(|| format!("could not run {} to start the daemon", exe.display()))?,
        Err(_) => {
            return Err(
                Failure::new(format!("the daemon did not start within {}", seconds(left)))
                    .hint(format!("its output is in {}", paths.logs.display()))
                    .into(),
            );
        }
    };
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message = stderr
        .lines()
        .find_map(|line| line.strip_prefix("error: "))
        .unwrap_or(stderr.trim());
    let hint = stderr
        .lines()
        .find_map(|line| line.strip_prefix("hint: "))
        .map(str::to_string)
        .unwrap_or_else(|| format!("its output is in {}", paths.logs.display()));
    Err(
        Failure::new(format!("the daemon could not start: {message}"))
            .hint(hint)
            .into(),
    )
}
