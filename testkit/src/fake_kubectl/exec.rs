//! `kubectl exec TARGET -- CMD...`. A command naming a Cloud SQL instance
//! (`project:region:instance`) "starts" the Cloud SQL Auth Proxy v2: its
//! start-up lines go to stdout and to `pod.log`, one `Listening` line per
//! instance (ports from `FAKE_KUBECTL_REMOTE_PORT` upwards). Any other
//! command is not found in the pod: the shell's message, then kubectl's
//! `command terminated with exit code 127`, exit 127.

use super::plan::Action;
use super::settings::Settings;
use super::state::StateDir;
use super::{err_line, fail, out_line};
use crate::apiserver::clock::log_prefix_now;

pub fn run(argv: &[String], settings: &Settings, state: &StateDir, actions: &[Action]) -> i32 {
    if actions.contains(&Action::Fail) {
        return fail("unable to upgrade connection: container not found (\"cloudsql-proxy\")");
    }
    let instances = instances(argv);
    if instances.is_empty() {
        err_line(&format!("sh: 1: {}: not found", argv[0]));
        err_line("command terminated with exit code 127");
        return 127;
    }
    let prefix = log_prefix_now();
    let mut lines = vec![format!(
        "{prefix} Authorizing with Application Default Credentials"
    )];
    for (i, instance) in instances.iter().enumerate() {
        let port = usize::from(settings.remote_port) + i;
        lines.push(format!(
            "{prefix} [{instance}] Listening on 127.0.0.1:{port}"
        ));
    }
    lines.push(format!(
        "{prefix} The proxy has started successfully and is ready for new connections!"
    ));
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if let Err(e) = state.append_pod_log(&text) {
        return fail(&format!("fake-kubectl: cannot write pod.log: {e}"));
    }
    for line in &lines {
        out_line(line);
    }
    if actions.contains(&Action::Hang) {
        // The proxy runs in the foreground until kubectl is killed.
        loop {
            std::thread::park();
        }
    }
    0
}

/// The Cloud SQL instance names in a command line: words (also inside
/// `sh -c "..."` strings and `--flag=value`) shaped `project:region:instance`,
/// without any `?port=N` options.
pub fn instances(argv: &[String]) -> Vec<String> {
    argv.iter()
        .flat_map(|arg| arg.split_whitespace())
        .map(|word| word.trim_matches(|c| c == '"' || c == '\''))
        .map(|word| match word.strip_prefix("--") {
            Some(flag) => flag.split_once('=').map_or("", |(_, v)| v),
            None => word,
        })
        .map(|word| word.split('?').next().unwrap_or(""))
        .filter(|word| {
            let parts: Vec<&str> = word.split(':').collect();
            parts.len() == 3
                && parts.iter().all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                })
        })
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_instances() {
        let argv: Vec<String> = [
            "sh",
            "-c",
            "cloud-sql-proxy 'p:r:a?port=3307' --instance=p:r:b http://x:1 a::b",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(instances(&argv), ["p:r:a", "p:r:b"]);
    }
}
