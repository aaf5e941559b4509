//! The one thread that writes every process log.
//!
//! Capture tasks send formatted batches here over a bounded channel, so file I/O never blocks the
//! async runtime, the order of lines is the order they were read, and a child that floods its
//! output is slowed down (its pipe fills) instead of growing the daemon's memory: at most
//! `QUEUE` batches of at most `capture::BATCH` bytes wait at any time.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::ProcessLog;

/// Batches that may wait for the writer.
const QUEUE: usize = 64;

enum Op {
    Append(Arc<ProcessLog>, Vec<u8>),
    /// Answered once everything sent before it has been written.
    Barrier(oneshot::Sender<()>),
    Close(Arc<ProcessLog>),
    Remove(Arc<ProcessLog>),
}

/// A handle to the writer thread; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct LogWriter {
    tx: mpsc::Sender<Op>,
}

impl LogWriter {
    pub fn start() -> std::io::Result<(LogWriter, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || run(rx))?;
        Ok((LogWriter { tx }, thread))
    }

    pub async fn append(&self, log: &Arc<ProcessLog>, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            let _ = self.tx.send(Op::Append(log.clone(), bytes)).await;
        }
    }

    /// Waits until everything appended before this call is in the files.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Op::Barrier(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Closes a finished process's file, so finished processes hold no descriptors.
    pub async fn close(&self, log: &Arc<ProcessLog>) {
        let _ = self.tx.send(Op::Close(log.clone())).await;
    }

    pub async fn remove(&self, log: &Arc<ProcessLog>) {
        let _ = self.tx.send(Op::Remove(log.clone())).await;
    }
}

fn run(mut rx: mpsc::Receiver<Op>) {
    // Say once when writing starts failing and once when it works again, not once per line.
    let mut failing = false;
    while let Some(op) = rx.blocking_recv() {
        match op {
            Op::Append(log, bytes) => match log.append(&bytes) {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("process logs are being written again");
                }
                Ok(()) => {}
                Err(err) if !failing => {
                    failing = true;
                    tracing::error!(
                        "cannot write the process log {}: {err}; lines are dropped until it works again",
                        log.path_at(0).display()
                    );
                }
                Err(_) => {}
            },
            Op::Barrier(done) => {
                let _ = done.send(());
            }
            Op::Close(log) => log.close(),
            Op::Remove(log) => log.remove_files(),
        }
    }
}
