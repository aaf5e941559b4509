//! Where a command's words go. Data goes to stdout through `print` and `write`, the only writers
//! of stdout in the client, so that a reader that goes away (`rhizome ps | head -1`) and a stdout
//! that takes no more (a full disk) end every command the same way: their error travels up to
//! `main`, which ends quietly for a closed pipe and says `error:` for anything else. Messages go
//! to stderr through `note`, which never fails: a stderr nobody can read is no reason to stop, and
//! `eprintln!` would panic.

use std::fmt::Display;
use std::io::{self, Write};

/// A write to stdout that failed.
#[derive(Debug, thiserror::Error)]
#[error("could not write to stdout: {0}")]
pub struct StdoutError(io::Error);

impl StdoutError {
    /// The reader went away (`| head`): the end of the output it wanted, not a failure. Rust
    /// ignores SIGPIPE, so a closed pipe arrives here as EPIPE rather than killing the process.
    pub fn is_closed(&self) -> bool {
        self.0.kind() == io::ErrorKind::BrokenPipe
    }
}

/// Writes `text` to stdout, flushed before this returns, as `print!` would without its panic.
pub fn print(text: impl Display) -> Result<(), StdoutError> {
    let mut stdout = io::stdout().lock();
    write!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(StdoutError)
}

/// `text` and a newline, as `println!` would without its panic.
pub fn println(text: impl Display) -> Result<(), StdoutError> {
    print(format_args!("{text}\n"))
}

/// Writes `bytes` to stdout as they are, flushed before this returns.
pub fn write(bytes: &[u8]) -> Result<(), StdoutError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(StdoutError)
}

/// `text` and a newline on stderr; a stderr that cannot take it is ignored.
pub fn note(text: impl Display) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}
