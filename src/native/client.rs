//! A Kubernetes client for one tunnel, configured as kubectl would be from the environment of the
//! `rhizome forward` that created the tunnel: its `KUBECONFIG` (or the target's `kubeconfig`, or
//! `~/.kube/config` of its `HOME`), the target's context, and exec credential plugins run with
//! that environment, so that `gke-gcloud-auth-plugin` finds what it finds in the user's shell.
//!
//! The connections to the API server have TCP keepalive, so one that died with the network (a
//! laptop that moved, a NAT that forgot it) is noticed instead of hanging.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tower::ServiceBuilder;

use super::Refusal;

/// Idle time before the first keepalive probe, then the time between probes; a dead connection
/// is given up after `KEEPALIVE_PROBES` unanswered ones (about 30 s in all).
const KEEPALIVE: Duration = Duration::from_secs(15);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_PROBES: u32 = 3;
/// How long connecting to the API server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the tunnel's cluster is, and the environment to find it with.
pub struct Place<'a> {
    /// The target's `kubeconfig`, if it names one.
    pub kubeconfig: Option<&'a str>,
    pub context: &'a str,
    /// The client's environment and working directory.
    pub env: &'a [(OsString, OsString)],
    pub cwd: &'a Path,
}

/// A client for `place`'s context, or why there cannot be one.
pub async fn connect(place: &Place<'_>) -> Result<kube::Client, Refusal> {
    let mut kubeconfig = load(place)?;
    check_supported(&kubeconfig, place.context)?;
    with_environment(&mut kubeconfig, place.env);
    let options = KubeConfigOptions {
        context: Some(place.context.to_string()),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|err| {
            Refusal::Unsupported(format!(
                "the native client cannot use the kubeconfig: {err}"
            ))
        })?;
    if let Some(proxy) = &config.proxy_url {
        return Err(Refusal::Unsupported(format!(
            "the kubeconfig's cluster is reached through the proxy {proxy}, which the native client does not do"
        )));
    }
    build(config).map_err(|err| {
        Refusal::Unsupported(format!(
            "the native client cannot connect as the kubeconfig says: {}",
            super::describe(&err)
        ))
    })
}

/// The kubeconfig kubectl would read: the target's file, else every file in `KUBECONFIG`
/// (merged, the first to set a value wins, missing files skipped), else `~/.kube/config`. A
/// kubeconfig the native client cannot read is one kubectl may still read (or explain in its
/// own words): `Unsupported`.
fn load(place: &Place<'_>) -> Result<Kubeconfig, Refusal> {
    let var = |name: &str| {
        place
            .env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (paths, all_needed): (Vec<PathBuf>, bool) = match place.kubeconfig {
        Some(path) => (vec![place.cwd.join(path)], true),
        None => match var("KUBECONFIG").filter(|v| !v.is_empty()) {
            Some(list) => (
                std::env::split_paths(&list)
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|p| place.cwd.join(p))
                    .collect(),
                false,
            ),
            None => {
                let home = var("HOME").unwrap_or_default();
                (vec![Path::new(&home).join(".kube").join("config")], true)
            }
        },
    };
    let mut merged: Option<Kubeconfig> = None;
    for path in &paths {
        if !all_needed && !path.exists() {
            continue;
        }
        let read = Kubeconfig::read_from(path).map_err(|err| {
            Refusal::Unsupported(format!(
                "the native client cannot read the kubeconfig {}: {err}",
                path.display()
            ))
        })?;
        merged = Some(match merged {
            None => read,
            Some(first) => first.merge(read).map_err(|err| {
                Refusal::Unsupported(format!(
                    "the native client cannot merge the kubeconfig {}: {err}",
                    path.display()
                ))
            })?,
        });
    }
    merged
        .ok_or_else(|| Refusal::Unsupported("no kubeconfig file of KUBECONFIG exists".to_string()))
}

/// What the native client cannot do, found before it tries: a legacy `auth-provider` (kube-rs
/// has them only behind features rhizome does not build; kubectl still has `oidc`).
fn check_supported(kubeconfig: &Kubeconfig, context: &str) -> Result<(), Refusal> {
    let user = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.user.clone());
    let Some(user) = user else { return Ok(()) };
    let auth = kubeconfig
        .auth_infos
        .iter()
        .find(|a| a.name == user)
        .and_then(|a| a.auth_info.as_ref());
    if let Some(provider) = auth.and_then(|a| a.auth_provider.as_ref()) {
        return Err(Refusal::Unsupported(format!(
            "the kubeconfig's user `{user}` uses the legacy auth-provider `{}`, which the native client does not support",
            provider.name
        )));
    }
    Ok(())
}

/// Exec credential plugins get the client's environment (the kubeconfig's own `env` entries
/// still win), as they would under kubectl in the user's shell.
fn with_environment(kubeconfig: &mut Kubeconfig, env: &[(OsString, OsString)]) {
    let pairs: Vec<HashMap<String, String>> = env
        .iter()
        .filter_map(|(k, v)| Some((utf8(k)?, utf8(v)?)))
        .map(|(k, v)| HashMap::from([("name".to_string(), k), ("value".to_string(), v)]))
        .collect();
    for named in &mut kubeconfig.auth_infos {
        let Some(exec) = named.auth_info.as_mut().and_then(|a| a.exec.as_mut()) else {
            continue;
        };
        let own = exec.env.take().unwrap_or_default();
        exec.env = Some(pairs.iter().cloned().chain(own).collect());
    }
}

fn utf8(s: &OsStr) -> Option<String> {
    std::str::from_utf8(s.as_bytes()).ok().map(str::to_string)
}

/// kube-rs's client stack, with TCP keepalive and nodelay on its connections.
fn build(config: kube::Config) -> Result<kube::Client, kube::Error> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_keepalive(Some(KEEPALIVE));
    http.set_keepalive_interval(Some(KEEPALIVE_INTERVAL));
    http.set_keepalive_retries(Some(KEEPALIVE_PROBES));
    let https = config.rustls_https_connector_with_connector(http)?;
    let hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(https);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(hyper);
    Ok(kube::Client::new(service, config.default_namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_PROVIDER: &str = "apiVersion: v1
kind: Config
current-context: old
contexts:
- name: old
  context: {cluster: c, user: legacy}
- name: new
  context: {cluster: c, user: plugin}
clusters:
- name: c
  cluster: {server: 'https://127.0.0.1:6443'}
users:
- name: legacy
  user:
    auth-provider: {name: oidc, config: {id-token: x}}
- name: plugin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: gke-gcloud-auth-plugin
      env: [{name: OWN, value: kubeconfig}]
";

    fn place<'a>(env: &'a [(OsString, OsString)], cwd: &'a Path) -> Place<'a> {
        Place {
            kubeconfig: None,
            context: "old",
            env,
            cwd,
        }
    }

    #[test]
    fn a_legacy_auth_provider_is_refused_as_unsupported_and_named() {
        let kubeconfig = Kubeconfig::from_yaml(WITH_PROVIDER).unwrap();
        let refusal = check_supported(&kubeconfig, "old").unwrap_err();
        let Refusal::Unsupported(why) = refusal else {
            panic!("{refusal:?}")
        };
        assert!(
            why.contains("auth-provider `oidc`") && why.contains("`legacy`"),
            "{why}"
        );
        assert_eq!(check_supported(&kubeconfig, "new"), Ok(()));
    }

    #[test]
    fn exec_plugins_get_the_clients_environment_under_their_own() {
        let mut kubeconfig = Kubeconfig::from_yaml(WITH_PROVIDER).unwrap();
        let env = [
            (
                OsString::from("PATH"),
                OsString::from("/home/me/google-cloud-sdk/bin"),
            ),
            (OsString::from("OWN"), OsString::from("client")),
        ];
        with_environment(&mut kubeconfig, &env);
        let exec = kubeconfig.auth_infos[1]
            .auth_info
            .as_ref()
            .unwrap()
            .exec
            .as_ref()
            .unwrap();
        let pairs: Vec<(&str, &str)> = exec
            .env
            .iter()
            .flatten()
            .map(|e| (e["name"].as_str(), e["value"].as_str()))
            .collect();
        // Applied in order, so the kubeconfig's own entry, last, wins.
        assert_eq!(
            pairs,
            [
                ("PATH", "/home/me/google-cloud-sdk/bin"),
                ("OWN", "client"),
                ("OWN", "kubeconfig")
            ]
        );
    }

    #[test]
    fn kubeconfig_lists_skip_missing_files_and_the_first_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), WITH_PROVIDER).unwrap();
        let second = WITH_PROVIDER.replace("current-context: old", "current-context: new");
        std::fs::write(dir.path().join("b"), second).unwrap();
        let env = [(OsString::from("KUBECONFIG"), OsString::from("missing:a:b"))];
        let loaded = load(&place(&env, dir.path())).unwrap();
        assert_eq!(loaded.current_context.as_deref(), Some("old"));

        let none = [(OsString::from("KUBECONFIG"), OsString::from("missing"))];
        let Err(Refusal::Unsupported(why)) = load(&place(&none, dir.path())) else {
            panic!("a list of missing files is an error")
        };
        assert!(why.contains("KUBECONFIG"), "{why}");
    }
}
