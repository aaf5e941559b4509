//! The logs of several processes read as one (`rhizome logs NAME NAME...`, `logs --all`): what is
//! asked, and the tagged pieces the answer is made of.

use serde::{Deserialize, Serialize};

use super::LogGap;

/// Print the logs of several processes interleaved by time, each piece tagged with its process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergedLogsRequest {
    /// `<ID|NAME|PID>` each; ignored with `all`.
    pub targets: Vec<String>,
    /// Every process that is not finished, and with `follow` every process started meanwhile.
    pub all: bool,
    /// Only the last this many lines of each process; all that are kept when `None`.
    pub lines: Option<u64>,
    pub follow: bool,
}

/// One piece of a merged log: what happened in the log of the process `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedPiece {
    pub id: u32,
    pub part: LogPart,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogPart {
    /// The process joins the stream under this name; sent before any of its bytes.
    Source(String),
    /// Bytes of its log, already formatted line by line. Before `LogCaughtUp` they are whole
    /// lines in time order across processes; after it, what was written as it comes, so a line
    /// may arrive in pieces.
    Bytes(Vec<u8>),
    /// Part of its log will never be sent, at this point of the stream.
    Gap(LogGap),
}
