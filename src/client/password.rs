//! Running a target's `password_command`: in the client, so an interactive unlock (1Password,
//! gcloud) happens in the user's terminal, and the password stays in this process: it is never
//! sent to the daemon, written to a file or logged.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use super::Failure;

/// Runs `argv` (no shell) with the terminal as its stdin and returns its output, trimmed. Its
/// stderr is passed through (prompts show) and its last line kept to explain a failure.
pub fn fetch(target: &str, argv: &[String]) -> Result<String, Failure> {
    let shown = argv.join(" ");
    let Some((program, args)) = argv.split_first() else {
        return Err(Failure::new(format!(
            "target {target}: `password_command` is empty"
        )));
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| {
            Failure::new(format!(
                "the password command `{shown}` of {target} could not start: {err}"
            ))
            .hint("check `password_command` in rhizome.toml; it runs without a shell")
        })?;
    let stderr = child.stderr.take();
    let echo = std::thread::spawn(move || {
        let mut last = String::new();
        let Some(stderr) = stderr else {
            return last;
        };
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}", super::sanitize::text(&line));
            if !line.trim().is_empty() {
                last = line;
            }
        }
        last
    });
    let output = child.wait_with_output();
    let last = echo.join().unwrap_or_default();
    let output = output.map_err(|err| {
        Failure::new(format!(
            "the password command `{shown}` of {target} failed: {err}"
        ))
    })?;
    if !output.status.success() {
        let status = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "a signal".to_string(),
        };
        let said = if last.is_empty() {
            String::new()
        } else {
            format!(": {}", last.trim())
        };
        return Err(Failure::new(format!(
            "the password command `{shown}` of {target} ended with {status}{said}"
        )));
    }
    let password = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if password.is_empty() {
        return Err(Failure::new(format!(
            "the password command `{shown}` of {target} printed nothing"
        )));
    }
    Ok(password)
}
