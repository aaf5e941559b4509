//! The kubeconfig the server writes with `--kubeconfig-out`: one cluster at
//! `http://127.0.0.1:PORT`, one context (named by `--context`) with the
//! namespace, and a user with no credentials. Written atomically.

use std::io;
use std::net::SocketAddr;
use std::path::Path;

use super::config::Config;

pub fn render(cfg: &Config, addr: SocketAddr) -> String {
    let ctx = &cfg.context;
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: {ctx}\n  cluster:\n    server: http://{addr}\n\
         contexts:\n\
         - name: {ctx}\n  context:\n    cluster: {ctx}\n    namespace: {ns}\n    user: {ctx}\n\
         current-context: {ctx}\n\
         users:\n\
         - name: {ctx}\n  user: {{}}\n\
         preferences: {{}}\n",
        ns = cfg.namespace
    )
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
    fn renders_context() {
        let mut cfg = Config::with_db("x:1");
        cfg.context = "c1".into();
        let text = render(&cfg, "127.0.0.1:4242".parse().unwrap());
        assert!(text.contains("server: http://127.0.0.1:4242\n"));
        assert!(text.contains("current-context: c1\n"));
        assert!(text.contains("namespace: e2e\n"));
        assert!(text.contains("  user: {}\n"));
    }
}
