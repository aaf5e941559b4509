//! The Cloud SQL proxy in the pod, over the API: the connect command run with the exec API (what
//! `kubectl exec` does), its output as lines, how it ended, and the pod's log (what `kubectl
//! logs` reads), where a proxy that runs in the background says its port.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Api;
use kube::api::{AttachParams, AttachedProcess, LogParams};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::describe;

/// Lines of the pod's log searched for the port, as `kubectl logs --tail=500`.
const LOG_TAIL: i64 = 500;

/// The connect command running in the pod. Dropping it closes the exec stream.
pub struct ProxyExec {
    attached: AttachedProcess,
    /// The command's exit code once it has ended (`None`: the stream ended without a status).
    pub exit: oneshot::Receiver<Option<i32>>,
}

impl Drop for ProxyExec {
    fn drop(&mut self) {
        self.attached.abort();
    }
}

/// Runs `command` in `pod`; its stdout and stderr lines go to `lines`.
pub async fn start(
    api: &Api<Pod>,
    pod: &str,
    command: &[String],
    lines: mpsc::Sender<String>,
) -> Result<ProxyExec, kube::Error> {
    let params = AttachParams::default().stdout(true).stderr(true);
    let mut attached = api.exec(pod, command.to_vec(), &params).await?;
    let stdout = attached.stdout();
    let stderr = attached.stderr();
    let status = attached.take_status();
    let (exit_tx, exit) = oneshot::channel();
    tokio::spawn(async move {
        tokio::join!(pump(stdout, lines.clone()), pump(stderr, lines));
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        let _ = exit_tx.send(status.as_ref().map(exit_code));
    });
    Ok(ProxyExec { attached, exit })
}

async fn pump(reader: Option<impl AsyncRead + Unpin>, lines: mpsc::Sender<String>) {
    let Some(reader) = reader else { return };
    let mut reader = BufReader::new(reader).lines();
    while let Ok(Some(line)) = reader.next_line().await {
        if lines.send(line).await.is_err() {
            return;
        }
    }
}

/// The exit code a `Status` of the exec API carries: 0 on success, the `ExitCode` cause on a
/// non-zero exit, 1 for any other failure.
fn exit_code(status: &Status) -> i32 {
    if status.status.as_deref() == Some("Success") {
        return 0;
    }
    status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref()?.parse().ok())
        .unwrap_or(1)
}

/// The last lines of the pod's log.
pub async fn pod_log(api: &Api<Pod>, pod: &str) -> Result<String, String> {
    let params = LogParams {
        tail_lines: Some(LOG_TAIL),
        ..LogParams::default()
    };
    api.logs(pod, &params).await.map_err(|err| describe(&err))
}
