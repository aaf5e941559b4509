//! Where things are, as `daemon status` and bare `rhizome` show them: the config file (and
//! whether it is there), the logs directory, and whether the daemon starts at login. All of it is
//! read from this shell's environment, which is what the commands typed in it use; nothing is
//! asked of the daemon.

use std::io;

use super::install::{Login, Manager, Service};
use super::sanitize;
use crate::paths::Paths;

/// The places, as (label, value) lines; the service's file only when there is one.
pub fn lines(paths: &Paths) -> Vec<(&'static str, String)> {
    let config = crate::config::path(paths);
    let state = match std::fs::metadata(&config) {
        Ok(meta) if meta.is_file() => "",
        Ok(_) => "  (not a file)",
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            "  (not there: only the built-in targets)"
        }
        Err(_) => "  (cannot be read)",
    };
    let mut lines = vec![
        ("config", format!("{}{state}", shown(&config))),
        ("logs", shown(&paths.logs)),
    ];
    match Service::here() {
        Ok(service) => {
            let login = service.login(paths);
            lines.push(("at login", login_state(&login)));
            if login != Login::NotInstalled {
                let label = match service.manager {
                    Manager::Systemd => "unit",
                    Manager::Launchd => "agent",
                };
                lines.push((label, shown(&service.file)));
            }
        }
        Err(_) => lines.push((
            "at login",
            "not supported here (a service manager can run `rhizome daemon run`)".to_string(),
        )),
    }
    lines
}

/// The lines under `daemon status`'s first one: two spaces in, labels in a column of `width`.
pub fn indented(paths: &Paths, width: usize) -> String {
    lines(paths)
        .into_iter()
        .map(|(label, value)| format!("  {label:<width$}{value}\n"))
        .collect()
}

fn login_state(login: &Login) -> String {
    match login {
        Login::NotInstalled => {
            "not installed  (`rhizome daemon install` starts the daemon at login)"
        }
        Login::Installed {
            enabled: Some(true),
        } => "installed and enabled",
        Login::Installed {
            enabled: Some(false),
        } => "installed, not enabled  (`systemctl --user enable rhizome`)",
        Login::Installed { enabled: None } => "installed",
        Login::Other => {
            "installed for another rhizome, home or config  (`rhizome daemon install` rewrites it)"
        }
    }
    .to_string()
}

fn shown(path: &std::path::Path) -> String {
    sanitize::text(&path.to_string_lossy()).into_owned()
}
