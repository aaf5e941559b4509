//! A stand-in for `kubectl port-forward` when there is no cluster (`RHIZOME_SIMULATE=1`): the
//! rhizome binary itself, run as the tunnel's child, listening on a free port, answering like
//! kubectl does, and echoing every connection back as the "database", or relaying it to a real
//! server (`simulate_upstream`) so code under test meets a local database through the tunnel.

use std::io::Write;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// Serves until killed; prints kubectl's `Forwarding from` and `Handling connection for` lines,
/// and a line for each connection the upstream refuses.
pub fn run(remote: u16, upstream: Option<&str>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: {err}");
            return 1;
        }
    };
    runtime.block_on(async {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(err) => {
                eprintln!("error: unable to listen on any of the requested ports: {err}");
                return 1;
            }
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        say(&format!("Forwarding from 127.0.0.1:{port} -> {remote}"));
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            say(&format!("Handling connection for {port}"));
            let upstream = upstream.map(str::to_string);
            tokio::spawn(async move {
                match upstream {
                    None => {
                        let (mut read, mut write) = conn.split();
                        let _ = tokio::io::copy(&mut read, &mut write).await;
                        let _ = write.shutdown().await;
                    }
                    Some(upstream) => match TcpStream::connect(&upstream).await {
                        Ok(mut far) => {
                            let _ = tokio::io::copy_bidirectional(&mut conn, &mut far).await;
                        }
                        Err(err) => say(&format!(
                            "the simulated upstream {upstream} refused the connection: {err}"
                        )),
                    },
                }
            });
        }
    })
}

fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}
