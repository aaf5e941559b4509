//! `kubectl exec` into the fake pod: what a command does (start or report the
//! Cloud SQL proxy, or fail with exit code 127), the `metav1.Status` that
//! reports the exit, and the two transports that carry it: SPDY/3.1 streams
//! (`error`, `stdin`, `stdout`, `stderr`, `resize`) and the WebSocket
//! `v5.channel.k8s.io` / `v4.channel.k8s.io` channel protocol.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};

use futures_util::SinkExt as _;
use tokio_tungstenite::WebSocketStream;

use super::http::Request;
use super::state::Shared;
use super::{cloudsql, spdy_session, websocket};

/// The channels of the exec protocols (`v4`/`v5.channel.k8s.io`) that carry output, and the
/// one that carries the `metav1.Status` of the exit.
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;

/// How long a WebSocket exec waits after the 101 before it writes output.
const WS_OUTPUT_DELAY: Duration = Duration::from_millis(100);

/// The streams/channels kubectl asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl ExecOptions {
    pub fn from_request(req: &Request) -> Self {
        ExecOptions {
            stdin: req.query_flag("stdin"),
            stdout: req.query_flag("stdout"),
            stderr: req.query_flag("stderr"),
            tty: req.query_flag("tty"),
        }
    }
}

/// What a command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: u8,
}

/// Runs `argv` "inside" `pod`.
pub fn run(shared: &Arc<Shared>, pod: &str, argv: &[String]) -> Outcome {
    let instance = shared.cfg.instance.as_str();
    if !argv.iter().any(|a| a.contains(instance)) {
        return Outcome {
            stdout: Vec::new(),
            stderr: b"fake pod: unknown command\n".to_vec(),
            exit_code: 127,
        };
    }
    match shared.ensure_proxy(pod, instance) {
        Ok((port, started)) => {
            let lines = cloudsql::started_lines(instance, port);
            if started {
                shared.append_log(pod, &lines);
            }
            Outcome {
                stdout: lines.into_bytes(),
                stderr: Vec::new(),
                exit_code: 0,
            }
        }
        Err(e) => Outcome {
            stdout: Vec::new(),
            stderr: format!("fake pod: cannot start the proxy: {e}\n").into_bytes(),
            exit_code: 1,
        },
    }
}

/// The status document for an exit code, as the kubelet sends it.
pub fn status_json(exit_code: u8) -> Vec<u8> {
    let v = if exit_code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        json!({"metadata": {}, "status": "Failure",
               "message": format!("command terminated with non-zero exit code: error executing command [...], exit code {exit_code}"),
               "reason": "NonZeroExitCode",
               "details": {"causes": [{"reason": "ExitCode", "message": exit_code.to_string()}]}})
    };
    v.to_string().into_bytes()
}

/// Serves an exec over an upgraded SPDY/3.1 connection. Returns when the
/// client has closed the connection.
pub async fn serve_spdy<R, W>(
    shared: Arc<Shared>,
    pod: String,
    argv: Vec<String>,
    opts: ExecOptions,
    reader: R,
    writer: W,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (session, mut incoming) = spdy_session::start(reader, writer);
    let app = async move {
        let mut wanted = vec!["error"];
        if opts.stdin {
            wanted.push("stdin");
        }
        if opts.stdout {
            wanted.push("stdout");
        }
        if opts.stderr && !opts.tty {
            wanted.push("stderr");
        }
        if opts.tty {
            wanted.push("resize");
        }
        let mut streams: HashMap<String, spdy_session::Stream> = HashMap::new();
        while !wanted.iter().all(|w| streams.contains_key(*w)) {
            match tokio::time::timeout(Duration::from_secs(30), incoming.recv()).await {
                Ok(Some(s)) => {
                    let kind = s.header("streamtype").unwrap_or_default().to_string();
                    streams.insert(kind, s);
                }
                _ => return,
            }
        }
        let mut out = run(&shared, &pod, &argv);
        if opts.tty {
            let err = std::mem::take(&mut out.stderr);
            out.stdout.extend_from_slice(&err);
        }
        for (kind, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            if let Some(s) = streams.get(kind) {
                let _ = s.tx.data(bytes).await;
                let _ = s.tx.fin().await;
            }
        }
        if let Some(s) = streams.get("error") {
            if out.exit_code != 0 {
                let _ = s.tx.data(&status_json(out.exit_code)).await;
            }
            let _ = s.tx.fin().await;
        }
        // Keep accepting (and ignoring) streams until the client goes away.
        while incoming.recv().await.is_some() {}
    };
    let _ = tokio::join!(session, app);
}

/// Serves an exec over an upgraded WebSocket connection (channel protocol
/// v4/v5: the first byte of each binary message is the channel).
pub async fn serve_websocket<S>(
    shared: Arc<Shared>,
    pod: String,
    argv: Vec<String>,
    opts: ExecOptions,
    mut ws: WebSocketStream<S>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // kubectl registers its channels while its reader already runs, and drops
    // messages for channels it has not registered yet ("Unknown stream id"),
    // status included, which would turn a failure into exit 0. A real command
    // takes a moment to start; so does this one.
    tokio::time::sleep(WS_OUTPUT_DELAY).await;
    let mut out = run(&shared, &pod, &argv);
    if opts.tty {
        let err = std::mem::take(&mut out.stderr);
        out.stdout.extend_from_slice(&err);
    }
    for (channel, bytes) in [(STDOUT, &out.stdout), (STDERR, &out.stderr)] {
        if !bytes.is_empty()
            && ws
                .feed(websocket::channel_message(channel, bytes))
                .await
                .is_err()
        {
            return;
        }
    }
    let status = websocket::channel_message(ERROR, &status_json(out.exit_code));
    if ws.send(status).await.is_err() {
        return;
    }
    // Then the close, and the client's reply to it (nothing more may be sent after a close).
    websocket::close(&mut ws).await;
}
