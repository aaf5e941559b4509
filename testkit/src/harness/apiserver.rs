//! The fake Kubernetes API server (`fake-apiserver`) as a test drives it: started on a free port
//! with a kubeconfig for it (HTTPS with its test CA and the token of its exec credential plugin,
//! unless started with `--plain-http`), its fault controls, requests to its API as a client with
//! the token would make them, and stopped when dropped. Also a kubeconfig for the same server
//! with another user: the legacy `auth-provider: oidc` that kubectl still serves and native
//! clients may not.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;

use super::net::{http, https};
use super::process::{Collector, Proc};

/// A running fake API server.
pub struct FakeApi {
    /// Where it listens, `127.0.0.1:PORT`.
    pub addr: String,
    /// A kubeconfig whose one context (`e2e` unless `--context` says otherwise) points at it.
    pub kubeconfig: PathBuf,
    /// The CA certificate (PEM) its kubeconfig trusts; `None` with `--plain-http`.
    pub ca_pem: Option<String>,
    /// Its stdin: closing it (EOF) stops the server, which a test may check.
    pub stdin: ChildStdin,
    /// The process, killed when dropped whether or not it stopped by itself.
    pub proc: Proc,
}

impl FakeApi {
    /// Starts `bin` (the `fake-apiserver` binary) with its relay to the database at `db`, its
    /// kubeconfig written into `dir`, and `extra` arguments.
    pub fn start(bin: impl AsRef<OsStr>, dir: &Path, db: &str, extra: &[&str]) -> FakeApi {
        let kubeconfig = dir.join("kubeconfig");
        let mut cmd = Command::new(bin);
        cmd.arg("--db")
            .arg(db)
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut proc = Proc::spawn(&mut cmd, "fake-apiserver");
        let stdin = proc.child.stdin.take().unwrap();
        let out = Collector::new(proc.child.stdout.take().unwrap());
        let addr = out
            .wait_line(Duration::from_secs(10), |l| {
                l.strip_prefix("listening on ").map(str::to_string)
            })
            .expect("fake-apiserver did not print `listening on ADDR`");
        assert!(kubeconfig.exists(), "kubeconfig not written");
        let text = std::fs::read_to_string(&kubeconfig).unwrap();
        let ca_pem = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
            .map(|b64| {
                let pem = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .expect("certificate-authority-data is base64");
                String::from_utf8(pem).expect("a PEM certificate")
            });
        FakeApi {
            addr,
            kubeconfig,
            ca_pem,
            stdin,
            proc,
        }
    }

    /// A fault control or the state: `/_control/drop-streams`, `/_control/pod-phase?phase=P`,
    /// ...; its JSON answer, which must be a 200.
    pub fn control(&self, path: &str) -> serde_json::Value {
        let (code, body) = http(&self.addr, "POST", path);
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    /// What the server counted and holds: upgrades, open streams, the pod, proxy ports.
    pub fn state(&self) -> serde_json::Value {
        self.control("/_control/state")
    }

    /// Fails one forwarded connection (`id`, or the newest) with `message` on its error
    /// stream, as the kubelet does when the pod's port breaks; the id it failed.
    pub fn fail_stream(&self, id: Option<u64>, message: &str) -> u64 {
        let mut path = format!("/_control/fail-stream?message={}", query_escape(message));
        if let Some(id) = id {
            path.push_str(&format!("&id={id}"));
        }
        self.control(&path)["id"].as_u64().expect("the failed id")
    }

    /// Replaces the pod (DELETED, then ADDED: a new name, no proxy yet), Ready or not; the new
    /// pod's name.
    pub fn replace_pod(&self, ready: bool) -> String {
        let v = self.control(&format!("/_control/replace-pod?ready={ready}"));
        v["pod"].as_str().expect("the new pod").to_string()
    }

    /// Makes the pod Ready or not (a MODIFIED event).
    pub fn set_ready(&self, ready: bool) {
        self.control(&format!("/_control/pod-ready?ready={ready}"));
    }

    /// Stops the server answering anything for `d`.
    pub fn stall(&self, d: Duration) {
        self.control(&format!("/_control/stall?ms={}", d.as_millis()));
    }

    /// The bearer token its credential plugin hands out now.
    pub fn token(&self) -> String {
        let mut path = self.kubeconfig.as_os_str().to_owned();
        path.push(".token");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", PathBuf::from(path).display()))
    }

    /// How many times its credential plugin has run.
    pub fn plugin_calls(&self) -> usize {
        let mut path = self.kubeconfig.as_os_str().to_owned();
        path.push(".plugin-calls");
        std::fs::read_to_string(path)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// Writes to `path` its kubeconfig with the user's credential replaced by `user`: the
    /// lines under `user:`, indented by four spaces (see [`oidc_user`]).
    pub fn write_kubeconfig_with_user(&self, path: &Path, user: &str) {
        let text = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let context = text
            .lines()
            .find_map(|l| l.strip_prefix("current-context: "))
            .expect("a current-context");
        let (head, tail) = text.split_once("users:\n").expect("a users section");
        let rest = &tail[tail.find("preferences:").expect("preferences after users")..];
        let text = format!("{head}users:\n- name: {context}\n  user:\n{user}{rest}");
        std::fs::write(path, text).unwrap();
    }

    /// An API request as an authenticated client makes it (TLS with the token, or plain HTTP
    /// with `--plain-http`); (status, body).
    pub fn api(&self, method: &str, path: &str) -> (u16, String) {
        match &self.ca_pem {
            Some(ca) => https(&self.addr, ca, Some(&self.token()), method, path),
            None => http(&self.addr, method, path),
        }
    }
}

/// `s` escaped for a query value.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An OpenID Connect ID token as an identity provider hands one out: a JWT (unsigned, which no
/// client checks: the API server would) whose `exp` is an hour from now, which is what makes
/// kubectl's `oidc` auth provider send it as the bearer token without asking the issuer.
pub fn oidc_id_token() -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64(&format!(
            r#"{{"iss":"https://issuer.invalid","sub":"e2e","aud":"rhizome-e2e","exp":{exp}}}"#
        )),
        b64("not-a-signature")
    )
}

/// The user of a kubeconfig whose credential is the legacy `auth-provider: oidc` with
/// `id_token`, for [`FakeApi::write_kubeconfig_with_user`]. The issuer is never asked while the
/// token is valid.
pub fn oidc_user(id_token: &str) -> String {
    format!(
        "    auth-provider:\n      name: oidc\n      config:\n        client-id: rhizome-e2e\n        idp-issuer-url: https://issuer.invalid\n        id-token: {id_token}\n"
    )
}
