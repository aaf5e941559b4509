//! kubectl as rhizome drives it: the command lines (argument vectors, never shell text) and what
//! its output means.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

pub use crate::protocol::Tool;
use crate::protocol::{Route, Target};

/// kubectl's command lines for one target.
pub struct Kubectl<'a> {
    pub program: &'a Path,
    pub target: &'a Target,
}

impl Kubectl<'_> {
    fn base(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![self.program.into()];
        if let Some(kubeconfig) = &self.target.kubeconfig {
            args.extend(["--kubeconfig".into(), kubeconfig.into()]);
        }
        args.extend([
            "--context".into(),
            OsString::from(&self.target.context),
            "--namespace".into(),
            OsString::from(&self.target.namespace),
        ]);
        args
    }

    /// `kubectl exec deploy/D -- <connect...>`: starts the Cloud SQL proxy in the pod.
    pub fn exec(&self) -> Option<Vec<OsString>> {
        let Route::Database { connect, .. } = &self.target.route else {
            return None;
        };
        let mut args = self.base();
        args.extend(["exec".into(), self.target.resource().into(), "--".into()]);
        args.extend(connect.iter().map(OsString::from));
        Some(args)
    }

    /// `kubectl logs deploy/D --tail=500`: where the proxy says which port it listens on.
    pub fn logs(&self) -> Vec<OsString> {
        let mut args = self.base();
        args.extend([
            "logs".into(),
            self.target.resource().into(),
            "--tail=500".into(),
        ]);
        args
    }

    /// `kubectl port-forward RESOURCE 0:REMOTE --address 127.0.0.1`: kubectl picks the local port.
    pub fn port_forward(&self, remote: u16) -> Vec<OsString> {
        let mut args = self.base();
        args.extend([
            "port-forward".into(),
            self.target.resource().into(),
            format!("0:{remote}").into(),
            "--address".into(),
            "127.0.0.1".into(),
        ]);
        args
    }
}

/// The local port in kubectl's `Forwarding from 127.0.0.1:N -> R` line.
pub fn forwarding_port(line: &str) -> Option<u16> {
    let rest = line.trim().strip_prefix("Forwarding from 127.0.0.1:")?;
    let (port, _) = rest.split_once(" -> ")?;
    port.parse().ok()
}

/// Output that means a connection through kubectl failed; newer versions exit after it, older
/// ones may go on running without a working stream.
pub fn is_connection_error(line: &str) -> bool {
    let line = line.to_ascii_lowercase();
    [
        "an error occurred forwarding",
        "error forwarding port",
        "lost connection to pod",
        "error upgrading connection",
        // A client's reset; kubectl 1.27 may go on running with a wedged session after it.
        "error copying from",
    ]
    .iter()
    .any(|needle| line.contains(needle))
        || is_session_dead(&line)
}

/// Output that means kubectl's session can no longer open a stream for a connection: it runs,
/// and forwards nothing. kubectl 1.27 ends up so after a client's reset, and says it only when
/// a new connection's stream times out (30 s).
pub fn is_session_dead(line: &str) -> bool {
    let line = line.to_ascii_lowercase();
    [
        "error creating error stream",
        "error creating forwarding stream",
    ]
    .iter()
    .any(|needle| line.contains(needle))
}

/// The port in the last line of `text` that matches the target's port pattern.
pub fn proxy_port(pattern: &regex::Regex, text: &str) -> Option<u16> {
    text.lines()
        .filter_map(|line| pattern.captures(line)?.get(1)?.as_str().parse().ok())
        .next_back()
}

/// Finds `program` the way a shell would on `path` (the client's PATH).
pub fn find_program(program: &str, path: Option<&OsStr>) -> Result<PathBuf, String> {
    if program.contains('/') {
        let candidate = PathBuf::from(program);
        return if is_executable(&candidate) {
            Ok(candidate)
        } else {
            Err(format!("{program} does not exist or is not executable"))
        };
    }
    let dirs: Vec<PathBuf> = path
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    dirs.iter()
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| {
            let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            format!(
                "`{program}` was not found on PATH (looked in {})",
                looked.join(":")
            )
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forwarding_line() {
        assert_eq!(
            forwarding_port("Forwarding from 127.0.0.1:64160 -> 3306"),
            Some(64160)
        );
        assert_eq!(forwarding_port("Forwarding from [::1]:64160 -> 3306"), None);
        assert_eq!(forwarding_port("Handling connection for 64160"), None);
    }

    #[test]
    fn spots_connection_errors_across_versions() {
        assert!(is_connection_error("error: lost connection to pod"));
        assert!(is_connection_error(
            "E1125 08:00:00.000000 1 portforward.go:413] an error occurred forwarding 5432 -> 5432: error forwarding port"
        ));
        assert!(is_connection_error(
            r#"E1125 "Unhandled Error" err="An error occurred forwarding 1 -> 2""#
        ));
        assert!(!is_connection_error("Handling connection for 5432"));
    }

    #[test]
    fn the_last_matching_line_wins() {
        let re = regex::Regex::new(r"\[p:r:i\] Listening on [^ ]+:(\d+)").unwrap();
        let log = "[p:r:i] Listening on 127.0.0.1:3307\nother\n[p:r:i] Listening on 127.0.0.1:3308\n[p:r:j] Listening on 127.0.0.1:4000\n";
        assert_eq!(proxy_port(&re, log), Some(3308));
        assert_eq!(proxy_port(&re, "nothing"), None);
    }

    #[test]
    fn builds_argument_vectors() {
        let config = crate::config::parse(crate::config::BUILT_IN).unwrap();
        let target = super::super::target::resolve(&config, "na-prod/billing-bookkeeper").unwrap();
        let kubectl = Kubectl {
            program: Path::new("/bin/kubectl"),
            target: &target,
        };
        let args: Vec<String> = kubectl
            .port_forward(3307)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "/bin/kubectl",
                "--context",
                "gke_clover-prod-kubernetes_us-central1_na-prod-us-central1-cluster",
                "--namespace",
                "gke-cloudsql-access",
                "port-forward",
                "deploy/gke-cloudsql-access",
                "0:3307",
                "--address",
                "127.0.0.1"
            ]
        );
    }
}
