//! The fake API server's command line: `fake-apiserver --db HOST:PORT
//! [--namespace NS] [--deployment D] [--instance PROJECT:REGION:NAME]
//! [--kubeconfig-out PATH] [--context NAME] [--token T] [--no-websocket] [--plain-http]
//! [--verbose]`.

use std::path::PathBuf;

/// Everything the server is told at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where every fake Cloud SQL proxy relays its connections.
    pub db: String,
    pub namespace: String,
    pub deployment: String,
    /// The Cloud SQL instance connection name that `exec` recognises.
    pub instance: String,
    pub kubeconfig_out: Option<PathBuf>,
    pub context: String,
    /// The bearer token the API wants (and the credential plugin hands out) from the start;
    /// random when absent. A test sets it to what a credential other than the plugin sends: the
    /// `id-token` of a kubeconfig's legacy `auth-provider: oidc`, which kubectl sends as is.
    pub token: Option<String>,
    /// Refuse every WebSocket upgrade (400) so kubectl 1.30+ falls back to SPDY.
    pub no_websocket: bool,
    /// Serve the API on plain HTTP without credentials, as before TLS: no test CA, no token,
    /// a kubeconfig with `http://` and `user: {}`. Otherwise the API wants TLS and a token.
    pub plain_http: bool,
    /// Log each request to stderr.
    pub verbose: bool,
}

impl Config {
    /// The defaults, with `db` set.
    pub fn with_db(db: impl Into<String>) -> Self {
        Config {
            db: db.into(),
            namespace: "e2e".into(),
            deployment: "db-proxy".into(),
            instance: "e2e-project:us-central1:db".into(),
            kubeconfig_out: None,
            context: "e2e".into(),
            token: None,
            no_websocket: false,
            plain_http: false,
            verbose: false,
        }
    }

    /// Parses the arguments after the program name.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut cfg = Config::with_db(String::new());
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "--db" => cfg.db = value("--db")?,
                "--namespace" => cfg.namespace = value("--namespace")?,
                "--deployment" => cfg.deployment = value("--deployment")?,
                "--instance" => cfg.instance = value("--instance")?,
                "--kubeconfig-out" => cfg.kubeconfig_out = Some(value("--kubeconfig-out")?.into()),
                "--context" => cfg.context = value("--context")?,
                "--token" => cfg.token = Some(value("--token")?),
                "--no-websocket" => cfg.no_websocket = true,
                "--plain-http" => cfg.plain_http = true,
                "--verbose" => cfg.verbose = true,
                "-h" | "--help" => return Err(usage()),
                other => return Err(format!("unknown argument {other:?}\n{}", usage())),
            }
        }
        if cfg.db.is_empty() {
            return Err(format!("--db HOST:PORT is required\n{}", usage()));
        }
        Ok(cfg)
    }
}

pub fn usage() -> String {
    "usage: fake-apiserver --db HOST:PORT [--namespace NS] [--deployment D] \
     [--instance PROJECT:REGION:NAME] [--kubeconfig-out PATH] [--context NAME] [--token T] \
     [--no-websocket] [--plain-http] [--verbose]"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Config, String> {
        Config::parse(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_overrides() {
        let c = parse(&["--db", "127.0.0.1:5432"]).unwrap();
        assert_eq!(c, Config::with_db("127.0.0.1:5432"));
        let c = parse(&[
            "--db=h:1",
            "--namespace",
            "ns",
            "--context=c",
            "--token",
            "a.b.c",
            "--no-websocket",
            "--plain-http",
        ])
        .unwrap();
        assert_eq!(
            (c.db.as_str(), c.namespace.as_str(), c.context.as_str()),
            ("h:1", "ns", "c")
        );
        assert_eq!(c.token.as_deref(), Some("a.b.c"));
        assert!(c.no_websocket);
        assert!(c.plain_http);
    }

    #[test]
    fn errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--db"]).is_err());
        assert!(parse(&["--db", "x", "--bogus"]).is_err());
    }
}
