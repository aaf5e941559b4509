//! A port-forward stream of the API server per client connection, so that one connection's
//! reset, refusal or error ends that connection alone; kubectl carries them all in one session
//! and ends it on the first error.
//!
//! One stream is kept opened ahead, so that a connection does not wait for a TLS and WebSocket
//! handshake. The pod side of a stream is a connection to the pod's port, which a database counts
//! (MySQL closes one that sends no handshake after `connect_timeout`, 10 s, and counts it against
//! `max_connect_errors`), so the spare is refilled only as connections are made and is thrown
//! away after `SPARE_TTL` unused, rather than kept up for ever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::forward::tunnel::Dial;

/// How long a spare stream is offered to a connection. By both clocks: a machine that slept
/// keeps no stream from before.
pub const SPARE_TTL: Duration = Duration::from_secs(5);

/// What happened to the streams, for the tunnel's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A client connection was given a stream.
    Connection,
    /// The server ended a stream with this message (the kubelet's words).
    Failed(String),
}

/// The streams to one port of one pod.
pub struct PodStreams {
    api: Api<Pod>,
    pub pod: String,
    pub port: u16,
    spare: Mutex<Option<Spare>>,
    /// A spare is being opened: no second one.
    refilling: AtomicBool,
    notes: mpsc::UnboundedSender<Note>,
}

struct Spare {
    stream: DuplexStream,
    opened: Instant,
    opened_wall: SystemTime,
    /// Set once the stream's WebSocket has ended.
    ended: Arc<AtomicBool>,
}

impl Spare {
    fn usable(&self) -> bool {
        let wall_age = self.opened_wall.elapsed().unwrap_or(Duration::MAX);
        !self.ended.load(Ordering::Acquire)
            && self.opened.elapsed() < SPARE_TTL
            && wall_age < SPARE_TTL
    }
}

impl PodStreams {
    pub fn new(
        api: Api<Pod>,
        pod: String,
        port: u16,
        notes: mpsc::UnboundedSender<Note>,
    ) -> Arc<PodStreams> {
        Arc::new(PodStreams {
            api,
            pod,
            port,
            spare: Mutex::new(None),
            refilling: AtomicBool::new(false),
            notes,
        })
    }

    /// Opens a stream and keeps it as the spare: proof that the path works, and the first
    /// connection's stream.
    pub async fn prime(&self) -> Result<(), kube::Error> {
        let spare = self.open().await?;
        *self.spare.lock().unwrap_or_else(|p| p.into_inner()) = Some(spare);
        Ok(())
    }

    /// Throws the spare away (after a sleep or a freeze, when it may be dead).
    pub fn forget_spare(&self) {
        self.spare.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn take_spare(&self) -> Option<DuplexStream> {
        let spare = self
            .spare
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        spare.usable().then_some(spare.stream)
    }

    async fn open(&self) -> Result<Spare, kube::Error> {
        let mut forwarder = self.api.portforward(&self.pod, &[self.port]).await?;
        let stream = forwarder
            .take_stream(self.port)
            .ok_or_else(|| kube::Error::Service("the port-forward has no stream".into()))?;
        let error = forwarder.take_error(self.port);
        let ended = Arc::new(AtomicBool::new(false));
        let notes = self.notes.clone();
        let flag = ended.clone();
        // The error future ends with the server's message, or with the WebSocket.
        tokio::spawn(async move {
            if let Some(error) = error
                && let Some(message) = error.await
            {
                let _ = notes.send(Note::Failed(message));
            }
            flag.store(true, Ordering::Release);
        });
        Ok(Spare {
            stream,
            opened: Instant::now(),
            opened_wall: SystemTime::now(),
            ended,
        })
    }

    /// Opens the next spare in the background, unless one is there or on its way.
    fn refill(self: &Arc<Self>) {
        if self.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let has_one = me
                .spare
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(Spare::usable);
            if !has_one && let Ok(spare) = me.open().await {
                *me.spare.lock().unwrap_or_else(|p| p.into_inner()) = Some(spare);
            }
            me.refilling.store(false, Ordering::Release);
        });
    }
}

impl Dial for PodStreams {
    fn dial(self: Arc<Self>) -> Pin<Box<dyn Future<Output = io::Result<DuplexStream>> + Send>> {
        Box::pin(async move {
            let _ = self.notes.send(Note::Connection);
            let stream = match self.take_spare() {
                Some(stream) => stream,
                None => self.open().await.map_err(io::Error::other)?.stream,
            };
            self.refill();
            Ok(stream)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spare(opened_wall: SystemTime) -> Spare {
        Spare {
            stream: tokio::io::duplex(64).0,
            opened: Instant::now(),
            opened_wall,
            ended: Arc::new(AtomicBool::new(false)),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_spare_is_offered_for_five_seconds_and_never_once_its_stream_ended() {
        let fresh = spare(SystemTime::now());
        tokio::time::sleep(SPARE_TTL - Duration::from_millis(1)).await;
        assert!(fresh.usable());
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!fresh.usable(), "too old");

        let ended = spare(SystemTime::now());
        ended.ended.store(true, Ordering::Release);
        assert!(!ended.usable(), "its WebSocket is gone");
    }

    #[tokio::test(start_paused = true)]
    async fn a_spare_from_before_a_sleep_is_not_offered() {
        // The monotonic clock stands still while the machine sleeps; the wall clock does not.
        let from_before = spare(SystemTime::now() - Duration::from_secs(3600));
        assert!(!from_before.usable());
    }
}
