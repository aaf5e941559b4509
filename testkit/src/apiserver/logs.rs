//! `kubectl logs` for the fake pod: the pod's log text, cut to the last
//! `tailLines` lines, either as one response or, with `follow=true`, as a
//! chunked stream that sends new lines as they are appended and ends cleanly
//! (terminating chunk) when the pod is replaced, or is cut by `drop-streams`.

use std::sync::Arc;

use super::http::{self, Body, Request, Response};
use super::objects;
use super::state::Shared;

/// The last `n` lines of `log` (all of it when `n` is `None` or negative).
pub fn tail(log: &str, n: Option<i64>) -> &str {
    let Some(n) = n.filter(|n| *n >= 0) else {
        return log;
    };
    let n = n as usize;
    if n == 0 {
        return "";
    }
    // Find the start of the n-th line from the end (a final line without a
    // newline still counts as a line).
    let body = log.strip_suffix('\n').unwrap_or(log);
    let mut seen = 0;
    for (i, b) in body.bytes().enumerate().rev() {
        if b == b'\n' {
            seen += 1;
            if seen == n {
                return &log[i + 1..];
            }
        }
    }
    log
}

fn tail_lines(req: &Request) -> Option<i64> {
    req.query("tailLines").and_then(|v| v.trim().parse().ok())
}

/// Answers a log request; a followed log streams from a task of its own.
pub fn respond(shared: &Arc<Shared>, req: &Request, pod: &str) -> hyper::Response<Body> {
    let Some(log) = shared.log_of(pod) else {
        let body = objects::not_found("pods", "pods", "", pod);
        return Response::json(404, &body).into_hyper();
    };
    let first = tail(&log, tail_lines(req)).as_bytes().to_vec();
    if !req.query_flag("follow") {
        return Response::text(200, first).into_hyper();
    }
    let (resp, body) = http::streaming("text/plain");
    let (shared, pod) = (shared.clone(), pod.to_string());
    tokio::spawn(async move {
        let mut changes = shared.subscribe();
        let dropped = shared.drop_token();
        if body.send(first).await.is_err() {
            return;
        }
        let mut sent = log.len();
        loop {
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = body.closed() => return,
                () = dropped.cancelled() => return body.abort().await,
            }
            let Some(log) = shared.log_of(&pod) else {
                return; // the pod is gone: end the stream cleanly
            };
            if log.len() > sent {
                if body.send(log.as_bytes()[sent..].to_vec()).await.is_err() {
                    return;
                }
                sent = log.len();
            }
        }
    });
    resp
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tails() {
        let log = "a\nb\nc\n";
        assert_eq!(tail(log, None), log);
        assert_eq!(tail(log, Some(-1)), log);
        assert_eq!(tail(log, Some(0)), "");
        assert_eq!(tail(log, Some(1)), "c\n");
        assert_eq!(tail(log, Some(2)), "b\nc\n");
        assert_eq!(tail(log, Some(5)), log);
        assert_eq!(tail("a\nb", Some(1)), "b");
        assert_eq!(tail("", Some(3)), "");
    }
}
