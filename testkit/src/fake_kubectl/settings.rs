//! The fake's settings, all from `FAKE_KUBECTL_*` environment variables.

use std::path::PathBuf;

pub struct Settings {
    /// `FAKE_KUBECTL_DIR`: the test's state directory.
    pub dir: PathBuf,
    /// `FAKE_KUBECTL_BACKEND`: `HOST:PORT` that port-forward splices to.
    pub backend: Option<String>,
    /// `FAKE_KUBECTL_CONTEXTS`: the contexts that exist; `None`: all of them.
    pub contexts: Option<Vec<String>>,
    /// `FAKE_KUBECTL_REMOTE_PORT`: where the fake Cloud SQL proxy listens.
    pub remote_port: u16,
    /// `FAKE_KUBECTL_PLAN`: the fault plan file.
    pub plan: Option<PathBuf>,
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let dir = var("FAKE_KUBECTL_DIR")
            .ok_or("FAKE_KUBECTL_DIR is not set (the directory for calls.log and pod.log)")?;
        let remote_port = match var("FAKE_KUBECTL_REMOTE_PORT") {
            None => 3307,
            Some(p) => p
                .parse()
                .map_err(|_| format!("FAKE_KUBECTL_REMOTE_PORT={p:?} is not a port"))?,
        };
        let contexts = std::env::var("FAKE_KUBECTL_CONTEXTS").ok().map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        });
        Ok(Settings {
            dir: PathBuf::from(dir),
            backend: var("FAKE_KUBECTL_BACKEND"),
            contexts,
            remote_port,
            plan: var("FAKE_KUBECTL_PLAN").map(PathBuf::from),
        })
    }

    /// For a `--context` missing from the kubeconfig, the whole stderr line
    /// of real kubectl (checked with 1.27 to 1.33; it has no `error: `).
    pub fn check_context(&self, context: Option<&str>) -> Result<(), String> {
        match (context, &self.contexts) {
            (Some(c), Some(known)) if !known.iter().any(|k| k == c) => Err(format!(
                "Error in configuration: context was not found for specified context: {c}"
            )),
            _ => Ok(()),
        }
    }
}
