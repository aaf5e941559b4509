//! The local end of a tunnel: the daemon's own listener on `127.0.0.1:LOCAL`, which stays bound
//! for the tunnel's whole life, and the splice from each accepted connection to the current
//! upstream: kubectl's ephemeral port, or a stream of its own to the pod (the native transport).
//!
//! While the upstream is down, new connections wait for the next one instead of being refused.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Buffer per direction: large enough for bulk transfers at memory speed.
const SPLICE_BUFFER: usize = 256 * 1024;

/// Opens a stream of its own to the pod for each connection.
pub trait Dial: Send + Sync + 'static {
    fn dial(self: Arc<Self>) -> Pin<Box<dyn Future<Output = io::Result<DuplexStream>> + Send>>;
}

/// Where a connection goes.
#[derive(Clone)]
pub enum Upstream {
    /// A local port that forwards (kubectl's).
    Local(SocketAddr),
    /// A stream per connection.
    Streams(Arc<dyn Dial>),
}

/// Where connections go now. `generation` changes with every new upstream, so a connection that
/// failed against one upstream waits for the next rather than retrying the same.
#[derive(Clone, Default)]
struct Current {
    upstream: Option<Upstream>,
    generation: u64,
}

/// Connection counters, shown by `ps --json`.
#[derive(Debug, Default)]
pub struct Stats {
    pub open: AtomicU64,
    pub total: AtomicU64,
    /// Client to upstream.
    pub bytes_up: AtomicU64,
    /// Upstream to client.
    pub bytes_down: AtomicU64,
}

pub struct Tunnel {
    pub local: SocketAddr,
    upstream: watch::Sender<Current>,
    pub stats: Stats,
    /// Signalled when a connection to the upstream failed, so the pipeline probes at once.
    pub splice_failed: Notify,
    /// Signalled whenever a connection opens or closes: what a lazy tunnel wakes and sleeps by.
    activity: Notify,
    /// How long a connection waits for an upstream.
    wait: Duration,
    /// Closes the listener and every connection.
    closed: CancellationToken,
}

impl Tunnel {
    /// Binds `127.0.0.1:port` (`None`: any free port). Synchronous, so "in use" is known at once.
    pub fn bind(port: Option<NonZeroU16>) -> io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port.map_or(0, NonZeroU16::get)))?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    }

    /// Starts accepting on `listener`; connections wait up to `wait` for an upstream.
    pub fn start(listener: std::net::TcpListener, wait: Duration) -> io::Result<Arc<Tunnel>> {
        let listener = TcpListener::from_std(listener)?;
        let tunnel = Arc::new(Tunnel {
            local: listener.local_addr()?,
            upstream: watch::Sender::new(Current::default()),
            stats: Stats::default(),
            splice_failed: Notify::new(),
            activity: Notify::new(),
            wait,
            closed: CancellationToken::new(),
        });
        tokio::spawn(accept(listener, tunnel.clone()));
        Ok(tunnel)
    }

    /// A tunnel that could not listen on `port`: closed from the start, so that a tunnel whose
    /// port was taken while its daemon was away can still be shown as failed.
    pub fn unbound(port: u16) -> Arc<Tunnel> {
        let closed = CancellationToken::new();
        closed.cancel();
        Arc::new(Tunnel {
            local: SocketAddr::from(([127, 0, 0, 1], port)),
            upstream: watch::Sender::new(Current::default()),
            stats: Stats::default(),
            splice_failed: Notify::new(),
            activity: Notify::new(),
            wait: Duration::ZERO,
            closed,
        })
    }

    /// Points new connections at `upstream`, or makes them wait with `None`. Setting the same
    /// upstream again lets connections that failed against it try once more.
    pub fn set_upstream(&self, upstream: Option<Upstream>) {
        self.upstream.send_modify(|u| {
            u.upstream = upstream;
            u.generation += 1;
        });
    }

    /// Whether a client connection is open now.
    pub fn has_client(&self) -> bool {
        self.stats.open.load(Ordering::Relaxed) > 0
    }

    /// Returns once a client connection is open: at once when one is.
    pub async fn wait_for_client(&self) {
        while self.stats.open.load(Ordering::Relaxed) == 0 {
            self.activity.notified().await;
        }
    }

    /// Returns once no client connection has been open for `idle`.
    pub async fn idle_for(&self, idle: Duration) {
        loop {
            if self.stats.open.load(Ordering::Relaxed) > 0 {
                self.activity.notified().await;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(idle) => {
                    if self.stats.open.load(Ordering::Relaxed) == 0 {
                        return;
                    }
                }
                _ = self.activity.notified() => {}
            }
        }
    }

    /// Stops listening and ends every connection.
    pub fn close(&self) {
        self.closed.cancel();
    }
}

async fn accept(listener: TcpListener, tunnel: Arc<Tunnel>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    tokio::spawn(splice(client, tunnel.clone()));
                }
                Err(err) => {
                    tracing::warn!("tunnel {}: accept failed: {err}", tunnel.local);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = tunnel.closed.cancelled() => return,
        }
    }
}

async fn splice(mut client: TcpStream, tunnel: Arc<Tunnel>) {
    tunnel.stats.total.fetch_add(1, Ordering::Relaxed);
    tunnel.stats.open.fetch_add(1, Ordering::Relaxed);
    tunnel.activity.notify_one();
    tokio::select! {
        _ = relay(&mut client, &tunnel) => {}
        _ = tunnel.closed.cancelled() => {}
    }
    tunnel.stats.open.fetch_sub(1, Ordering::Relaxed);
    tunnel.activity.notify_one();
}

/// An open connection to the upstream.
enum Connected {
    Tcp(TcpStream),
    Stream(DuplexStream),
}

async fn relay(client: &mut TcpStream, tunnel: &Tunnel) {
    let Some(server) = connect_upstream(tunnel).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    match server {
        Connected::Tcp(mut server) => {
            let _ = server.set_nodelay(true);
            copy(client, &mut server, tunnel).await;
        }
        Connected::Stream(mut server) => copy(client, &mut server, tunnel).await,
    }
}

async fn copy<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut TcpStream,
    server: &mut S,
    tunnel: &Tunnel,
) {
    let copied =
        tokio::io::copy_bidirectional_with_sizes(client, server, SPLICE_BUFFER, SPLICE_BUFFER)
            .await;
    if let Ok((up, down)) = copied {
        tunnel.stats.bytes_up.fetch_add(up, Ordering::Relaxed);
        tunnel.stats.bytes_down.fetch_add(down, Ordering::Relaxed);
        // An upstream that closes without a byte is what a wedged kubectl does: have it probed.
        if down == 0 {
            tunnel.splice_failed.notify_one();
        }
    }
}

/// Connects to the current upstream, waiting for one (and for a new one after a failure) until
/// the tunnel's wait runs out.
async fn connect_upstream(tunnel: &Tunnel) -> Option<Connected> {
    let deadline = Instant::now() + tunnel.wait;
    let mut upstream = tunnel.upstream.subscribe();
    let mut failed_generation = None;
    loop {
        let usable = |u: &Current| u.upstream.is_some() && Some(u.generation) != failed_generation;
        let current = match tokio::time::timeout_at(deadline, upstream.wait_for(usable)).await {
            Ok(Ok(current)) => current.clone(),
            _ => return None,
        };
        let connected = match current.upstream? {
            Upstream::Local(addr) => TcpStream::connect(addr).await.map(Connected::Tcp),
            Upstream::Streams(dial) => match tokio::time::timeout_at(deadline, dial.dial()).await {
                Ok(dialed) => dialed.map(Connected::Stream),
                Err(_) => return None,
            },
        };
        match connected {
            Ok(server) => return Some(server),
            Err(_) => {
                failed_generation = Some(current.generation);
                tunnel.splice_failed.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// An upstream that greets every connection with `greeting`, as a database does.
    async fn upstream(greeting: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let _ = conn.write_all(greeting).await;
            }
        });
        addr
    }

    /// An address where nothing listens.
    fn refusing() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    async fn greeting(client: &mut TcpStream) -> Vec<u8> {
        let mut got = vec![0u8; 5];
        client.read_exact(&mut got).await.unwrap();
        got
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_connection_follows_the_next_upstream() {
        let tunnel = Tunnel::start(Tunnel::bind(None).unwrap(), Duration::from_secs(60)).unwrap();
        let mut client = TcpStream::connect(tunnel.local).await.unwrap();
        // No upstream for most of the wait: the connection is held, not refused.
        tokio::time::sleep(Duration::from_secs(50)).await;
        assert_eq!(tunnel.stats.open.load(Ordering::Relaxed), 1);
        // An upstream that refuses is skipped; the connection waits for the one after it.
        tunnel.set_upstream(Some(Upstream::Local(refusing())));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(tunnel.stats.open.load(Ordering::Relaxed), 1);
        tunnel.set_upstream(Some(Upstream::Local(upstream(b"first").await)));
        assert_eq!(greeting(&mut client).await, b"first");
        // New connections go to whatever is current now.
        tunnel.set_upstream(Some(Upstream::Local(upstream(b"again").await)));
        let mut next = TcpStream::connect(tunnel.local).await.unwrap();
        assert_eq!(greeting(&mut next).await, b"again");
    }

    #[tokio::test(start_paused = true)]
    async fn idleness_is_counted_from_the_last_connection_closing() {
        let tunnel = Tunnel::start(Tunnel::bind(None).unwrap(), Duration::from_secs(60)).unwrap();
        tunnel.set_upstream(Some(Upstream::Local(upstream(b"hello").await)));
        let began = Instant::now();
        let idle = tokio::spawn({
            let tunnel = tunnel.clone();
            async move { tunnel.idle_for(Duration::from_secs(600)).await }
        });
        // A client at 300 s, gone at 400 s: idle from then, so stopped at 1000 s.
        tokio::time::sleep(Duration::from_secs(300)).await;
        let mut client = TcpStream::connect(tunnel.local).await.unwrap();
        assert_eq!(greeting(&mut client).await, b"hello");
        tunnel.wait_for_client().await;
        tokio::time::sleep(Duration::from_secs(100)).await;
        drop(client);
        idle.await.unwrap();
        let took = began.elapsed();
        assert!(
            took >= Duration::from_secs(1000) && took < Duration::from_secs(1001),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_wakes_whoever_waits_for_a_client() {
        let tunnel = Tunnel::start(Tunnel::bind(None).unwrap(), Duration::from_secs(60)).unwrap();
        let woken = tokio::spawn({
            let tunnel = tunnel.clone();
            async move {
                tunnel.wait_for_client().await;
                Instant::now()
            }
        });
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!woken.is_finished(), "no client, no wake");
        let _client = TcpStream::connect(tunnel.local).await.unwrap();
        let at = woken.await.unwrap();
        assert!(at.duration_since(Instant::now()) < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_an_upstream_is_closed_when_the_wait_runs_out() {
        let tunnel = Tunnel::start(Tunnel::bind(None).unwrap(), Duration::from_secs(60)).unwrap();
        let mut client = TcpStream::connect(tunnel.local).await.unwrap();
        let began = Instant::now();
        let mut byte = [0u8; 1];
        assert_eq!(client.read(&mut byte).await.unwrap(), 0, "closed, no bytes");
        assert_eq!(began.elapsed(), Duration::from_secs(60));
    }
}
