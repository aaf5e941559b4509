//! kubectl's per-connection error lines, in klog's format:
//! `E1125 08:00:00.000000   12345 portforward.go:424] "Unhandled Error" err="..."`
//! (UTC; real kubectl uses local time).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::apiserver::clock::civil;

/// A fake sandbox id, as in `error forwarding port 3307 to pod <id>, uid :`.
pub const SANDBOX_ID: &str = "5f0c8e7f3a9b4d2e1c6a7b8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f";

/// The line for a forwarded connection that failed: `cause` is the error text
/// after the pod id.
pub fn forwarding_error(local: u16, remote: u16, cause: &str) -> String {
    let err = format!(
        "an error occurred forwarding {local} -> {remote}: error forwarding port {remote} to pod {SANDBOX_ID}, uid : {cause}"
    );
    error_line(
        "portforward.go:424",
        &format!("\"Unhandled Error\" err=\"{}\"", err.replace('"', "\\\"")),
    )
}

/// `cause` when nothing listens on `remote` in the pod (or the test's backend
/// refused the connection).
pub fn refused_cause(remote: u16) -> String {
    format!(
        "failed to execute portforward in network namespace \"/var/run/netns/cni-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\": failed to connect to localhost:{remote} inside namespace \"{SANDBOX_ID}\", IPv4: dial tcp4 127.0.0.1:{remote}: connect: connection refused IPv6 dial tcp6 [::1]:{remote}: connect: connection refused "
    )
}

/// `E<MMDD> <hh:mm:ss.micros> <pid> <file:line>] <msg>`
pub fn error_line(file_line: &str, msg: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (_, month, day, h, m, s) = civil(now.as_secs());
    format!(
        "E{month:02}{day:02} {h:02}:{m:02}:{s:02}.{:06} {:>7} {file_line}] {msg}",
        now.subsec_micros(),
        std::process::id()
    )
}
