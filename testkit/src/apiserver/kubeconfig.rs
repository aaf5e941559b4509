//! What the server writes for its clients with `--kubeconfig-out PATH`, each file written
//! atomically:
//!
//! - `PATH`: the kubeconfig: one cluster at `https://127.0.0.1:PORT` with the test CA as
//!   `certificate-authority-data`, one context (named by `--context`) with the namespace, and
//!   a user whose credential comes from an exec plugin, as with GKE's `gke-gcloud-auth-plugin`.
//!   With `--plain-http`: `http://` and a user with no credentials, as before TLS.
//! - `PATH.credential-plugin`: that plugin, a shell script printing an `ExecCredential` with the
//!   server's current token (read from `PATH.token`, so `/_control/rotate-token` can change it),
//!   and appending a line to `PATH.plugin-calls` on every run, so a test can see it ran.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::config::Config;

/// The `ExecCredential` API version the plugin speaks: GA since Kubernetes 1.22, understood by
/// kubectl 1.27+, kube-rs and the Python client alike.
pub const EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1";

/// The files beside the kubeconfig that belong to its credential plugin.
#[derive(Debug, Clone)]
pub struct PluginFiles {
    pub script: PathBuf,
    pub token: PathBuf,
    pub calls: PathBuf,
}

impl PluginFiles {
    pub fn beside(kubeconfig: &Path) -> Self {
        let with = |suffix: &str| {
            let mut p = kubeconfig.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        };
        PluginFiles {
            script: with(".credential-plugin"),
            token: with(".token"),
            calls: with(".plugin-calls"),
        }
    }
}

/// A YAML scalar that stays one string whatever the path holds (JSON strings are YAML).
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The kubeconfig for a server at `addr`: TLS with `ca_pem` and the plugin `script`, or plain
/// HTTP without credentials when either is absent.
pub fn render(cfg: &Config, addr: SocketAddr, tls: Option<(&str, &Path)>) -> String {
    let ctx = &cfg.context;
    let (cluster, user) = match tls {
        Some((ca_pem, script)) => {
            let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
            (
                format!("    server: https://{addr}\n    certificate-authority-data: {ca}\n"),
                format!(
                    "  user:\n    exec:\n      apiVersion: {EXEC_API_VERSION}\n      command: {}\n      interactiveMode: Never\n      provideClusterInfo: false\n",
                    quoted(&script.display().to_string())
                ),
            )
        }
        None => (
            format!("    server: http://{addr}\n"),
            "  user: {}\n".to_string(),
        ),
    };
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: {ctx}\n  cluster:\n{cluster}\
         contexts:\n\
         - name: {ctx}\n  context:\n    cluster: {ctx}\n    namespace: {ns}\n    user: {ctx}\n\
         current-context: {ctx}\n\
         users:\n\
         - name: {ctx}\n{user}\
         preferences: {{}}\n",
        ns = cfg.namespace
    )
}

/// Single-quotes `s` for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The plugin script for `files`.
pub fn plugin_script(files: &PluginFiles) -> String {
    format!(
        "#!/bin/sh\n\
         # The exec credential plugin of a fake-apiserver kubeconfig: the server's current token\n\
         # as an ExecCredential, and one line in the calls file per run.\n\
         # Shell builtins only: it must work whatever PATH the client gives it.\n\
         echo run >> {calls}\n\
         IFS= read -r token < {token}\n\
         printf '{{\"apiVersion\":\"{EXEC_API_VERSION}\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"%s\"}}}}\\n' \"$token\"\n",
        calls = sh_quote(&files.calls.display().to_string()),
        token = sh_quote(&files.token.display().to_string()),
    )
}

/// Writes the plugin script (executable) and the token it hands out.
pub fn write_plugin(files: &PluginFiles, token: &str) -> io::Result<()> {
    write_atomic(&files.token, token)?;
    write_atomic(&files.script, &plugin_script(files))?;
    std::fs::set_permissions(&files.script, std::fs::Permissions::from_mode(0o755))
}

/// Writes `contents` to `path` via a temporary file and a rename.
pub fn write_atomic(path: &Path, contents: &str) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_plain_context() {
        let mut cfg = Config::with_db("x:1");
        cfg.context = "c1".into();
        let text = render(&cfg, "127.0.0.1:4242".parse().unwrap(), None);
        assert!(text.contains("server: http://127.0.0.1:4242\n"));
        assert!(text.contains("current-context: c1\n"));
        assert!(text.contains("namespace: e2e\n"));
        assert!(text.contains("  user: {}\n"));
    }

    #[test]
    fn renders_tls_with_the_plugin() {
        let cfg = Config::with_db("x:1");
        let script = Path::new("/tmp/k it/kubeconfig.credential-plugin");
        let text = render(&cfg, "127.0.0.1:1".parse().unwrap(), Some(("PEM", script)));
        assert!(text.contains("server: https://127.0.0.1:1\n"), "{text}");
        assert!(
            text.contains("certificate-authority-data: UEVN\n"),
            "{text}"
        );
        assert!(
            text.contains("command: \"/tmp/k it/kubeconfig.credential-plugin\"\n"),
            "{text}"
        );
        assert!(text.contains("interactiveMode: Never\n"), "{text}");
    }

    #[test]
    fn the_plugin_prints_an_exec_credential() {
        let dir = tempfile::tempdir().unwrap();
        let files = PluginFiles::beside(&dir.path().join("kube'config"));
        write_plugin(&files, "tok3n").unwrap();
        for _ in 0..2 {
            let out = std::process::Command::new(&files.script)
                .env_clear()
                .output()
                .unwrap();
            assert!(out.status.success());
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["kind"], "ExecCredential");
            assert_eq!(v["apiVersion"], EXEC_API_VERSION);
            assert_eq!(v["status"]["token"], "tok3n");
        }
        let calls = std::fs::read_to_string(&files.calls).unwrap();
        assert_eq!(calls.lines().count(), 2);
    }
}
