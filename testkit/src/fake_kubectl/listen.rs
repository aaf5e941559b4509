//! port-forward's listeners, bound the way kubectl binds them: in order,
//! with local port 0 resolved by the first listener and reused by the rest;
//! a tolerant address (from `localhost`) may fail as long as one listener
//! binds, an explicit IP must bind. On failure, kubectl's two stderr lines.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use super::args::{BindAddr, Ports};

/// The bound listeners (all on one port), or the lines to print to stderr.
pub async fn bind(addrs: &[BindAddr], ports: Ports) -> Result<Vec<TcpListener>, Vec<String>> {
    let mut port = ports.local;
    let mut listeners = Vec::new();
    let mut errors = Vec::new();
    let mut must_fail = false;
    for a in addrs {
        let addr = SocketAddr::new(a.ip, port);
        let bound = match TcpListener::bind(addr).await {
            Ok(l) => l.local_addr().map(|local| (l, local.port())),
            Err(e) => Err(e),
        };
        match bound {
            Ok((listener, local)) => {
                port = local;
                listeners.push(listener);
            }
            Err(e) => {
                errors.push(describe(addr, &e));
                must_fail |= !a.tolerant;
            }
        }
    }
    if listeners.is_empty() || must_fail {
        return Err(vec![
            format!(
                "Unable to listen on port {port}: Listeners failed to create with the following errors: [{}]",
                errors.join(" ")
            ),
            format!(
                "error: unable to listen on any of the requested ports: [{{{} {}}}]",
                ports.local, ports.remote
            ),
        ]);
    }
    Ok(listeners)
}

/// Go's wording: `unable to create listener: Error listen tcp4 127.0.0.1:8080: bind: address already in use`.
fn describe(addr: SocketAddr, e: &io::Error) -> String {
    let net = if addr.is_ipv4() { "tcp4" } else { "tcp6" };
    let why = match e.kind() {
        io::ErrorKind::AddrInUse => "address already in use".to_string(),
        io::ErrorKind::AddrNotAvailable => "cannot assign requested address".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    format!("unable to create listener: Error listen {net} {addr}: bind: {why}")
}
