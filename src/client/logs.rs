//! `rhizome logs`: print a process's log, and follow it with `-f`.

use std::io::{self, Write};

use super::{Client, unexpected};
use crate::cli::LogsArgs;
use crate::paths::Paths;
use crate::protocol::{LogsRequest, Request, Response};

pub async fn run(paths: &Paths, args: &LogsArgs) -> anyhow::Result<i32> {
    let mut client = Client::connect_or_start(paths).await?;
    client
        .send(&Request::Logs(LogsRequest {
            target: args.target.clone(),
            lines: args.lines,
            follow: args.follow,
        }))
        .await?;
    let mut stdout = io::stdout().lock();
    loop {
        match client.next().await? {
            Some(Response::LogChunk(bytes)) => {
                if let Err(err) = stdout.write_all(&bytes).and_then(|()| stdout.flush()) {
                    // `rhizome logs x | head` closed the pipe: that is a normal end.
                    if err.kind() == io::ErrorKind::BrokenPipe {
                        return Ok(0);
                    }
                    return Err(err.into());
                }
            }
            Some(Response::LogEnd) => return Ok(0),
            Some(other) => return Err(unexpected(other)),
            None => {
                eprintln!("rhizome: the daemon stopped; no more lines will come");
                return Ok(0);
            }
        }
    }
}
