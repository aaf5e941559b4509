//! The forward issue's performance figures: `cargo bench --bench forward`.
//!
//! The splice is measured through rhizome's own tunnel (library API) to an upstream on loopback,
//! against the same traffic sent to the upstream directly; the recovery time through the real
//! binary in simulate mode.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use rhizome::forward::tunnel::{Tunnel, Upstream};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let upstream = echo_server();
    let sink = sink_server();
    let _guard = runtime.enter();
    let tunnel_to = |addr: SocketAddr| {
        let tunnel = Tunnel::start(Tunnel::bind(None).unwrap(), Duration::from_secs(5)).unwrap();
        tunnel.set_upstream(Some(Upstream::Local(addr)));
        tunnel
    };
    let echo_tunnel = tunnel_to(upstream);
    let sink_tunnel = tunnel_to(sink);

    let gib = 2u64 << 30;
    let direct = throughput(sink, gib);
    let spliced = throughput(sink_tunnel.local, gib);
    println!(
        "bulk throughput, 2 GiB one way: through the tunnel {:.2} GB/s, direct {:.2} GB/s",
        spliced / 1e9,
        direct / 1e9
    );

    let direct_rtt = ping_pong(upstream, 20_000);
    let tunnel_rtt = ping_pong(echo_tunnel.local, 20_000);
    println!(
        "1-byte ping-pong, median round trip: through the tunnel {:.1} us, direct {:.1} us, added {:.1} us",
        tunnel_rtt.as_secs_f64() * 1e6,
        direct_rtt.as_secs_f64() * 1e6,
        (tunnel_rtt.as_secs_f64() - direct_rtt.as_secs_f64()) * 1e6
    );

    recovery();
}

/// Bytes per second for `total` bytes written to `addr`, counted by the far end.
fn throughput(addr: SocketAddr, total: u64) -> f64 {
    let mut stream = TcpStream::connect(addr).unwrap();
    let chunk = vec![7u8; 1 << 20];
    let start = Instant::now();
    let mut sent = 0;
    while sent < total {
        stream.write_all(&chunk).unwrap();
        sent += chunk.len() as u64;
    }
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut counted = [0u8; 8];
    stream.read_exact(&mut counted).unwrap();
    assert_eq!(u64::from_be_bytes(counted), total, "every byte arrived");
    total as f64 / start.elapsed().as_secs_f64()
}

/// Median time of `rounds` 1-byte round trips on one connection.
fn ping_pong(addr: SocketAddr, rounds: usize) -> Duration {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut byte = [1u8];
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        stream.write_all(&byte).unwrap();
        stream.read_exact(&mut byte).unwrap();
        samples.push(start.elapsed());
    }
    samples.sort();
    samples[rounds / 2]
}

/// A server that reads everything and answers with the count, as 8 big-endian bytes.
fn sink_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                let mut total = 0u64;
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => total += n as u64,
                    }
                }
                let _ = conn.write_all(&total.to_be_bytes());
            });
        }
    });
    addr
}

/// From the forwarder's death to the tunnel carrying traffic again (simulate mode, real binary).
fn recovery() {
    let samples: Vec<Duration> = (0..5)
        .map(|_| {
            let rh = Rhizome::new();
            let port = free_port();
            let out = rh
                .command([
                    "forward",
                    "na-prod/billing-bookkeeper",
                    "--port",
                    &port.to_string(),
                    "-q",
                ])
                .env("RHIZOME_SIMULATE", "1")
                .output()
                .unwrap();
            assert!(out.status.success());
            let pid = rh.ps()["running"][0]["pid"].as_u64().unwrap() as i32;
            let start = Instant::now();
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
                .unwrap();
            wait_for("the forwarder to die", Duration::from_secs(5), || {
                (!alive(pid as u32)).then_some(())
            });
            let back = echo_round_trip(format!("127.0.0.1:{port}"), b"ping");
            assert_eq!(back, b"ping");
            start.elapsed()
        })
        .collect();
    let mut sorted = samples.clone();
    sorted.sort();
    println!(
        "from forwarder exit to traffic again: median {:.0} ms, worst {:.0} ms (of {})",
        sorted[sorted.len() / 2].as_secs_f64() * 1000.0,
        sorted[sorted.len() - 1].as_secs_f64() * 1000.0,
        samples.len()
    );
}
