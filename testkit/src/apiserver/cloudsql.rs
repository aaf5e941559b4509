//! The fake "Cloud SQL Auth Proxy" that `exec` starts inside the pod: a TCP
//! relay on 127.0.0.1:<free port> that forwards every connection to `--db`,
//! and the log lines the real proxy v2 prints with Go's default log prefix.

use std::io;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::clock;
use super::state::Shared;

/// The lines the real proxy prints when it has started (also when it is
/// asked again and is already running: the same port).
pub fn started_lines(instance: &str, port: u16) -> String {
    let ts = clock::log_prefix_now();
    format!(
        "{ts} Authorizing with Application Default Credentials\n\
         {ts} [{instance}] Listening on 127.0.0.1:{port}\n\
         {ts} The proxy has started successfully and is ready for new connections!\n"
    )
}

/// Binds a relay for `pod` and starts serving it until `token` is cancelled
/// (the pod is replaced). Returns its port. Must be called inside the runtime.
pub fn spawn_relay(
    shared: Arc<Shared>,
    pod: &str,
    instance: &str,
    token: CancellationToken,
) -> io::Result<u16> {
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    std_listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(std_listener)?;
    let port = listener.local_addr()?.port();
    let (pod, instance) = (pod.to_string(), instance.to_string());
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = token.cancelled() => return,
                a = listener.accept() => a,
            };
            let Ok((client, peer)) = accepted else {
                continue;
            };
            let line = format!(
                "{} [{instance}] Accepted connection from {peer}\n",
                clock::log_prefix_now()
            );
            shared.append_log(&pod, &line);
            let (shared, pod, instance, token) =
                (shared.clone(), pod.clone(), instance.clone(), token.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = token.cancelled() => {}
                    r = relay(client, &shared.cfg.db) => {
                        if let Err(e) = r {
                            let line = format!(
                                "{} [{instance}] connection to {} failed: {e}\n",
                                clock::log_prefix_now(),
                                shared.cfg.db
                            );
                            shared.append_log(&pod, &line);
                        }
                    }
                }
            });
        }
    });
    Ok(port)
}

async fn relay(mut client: TcpStream, db: &str) -> io::Result<()> {
    let mut upstream = TcpStream::connect(db).await?;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    // Errors after the connection was made are ordinary disconnects.
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    Ok(())
}
