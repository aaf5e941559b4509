//! `rhizome daemon install|uninstall`, and whether the daemon is installed to start at login (for
//! `daemon status`): a systemd user unit on Linux, a launchd agent on macOS.
//!
//! Neither command runs `systemctl` or `launchctl`: each prints the command that comes next. A
//! service manager started from here would meet the daemon that may be running now (the one the
//! first command of the day started), whose lock makes the service's daemon exit; and a session
//! without a user bus (ssh, a container) would fail where writing a file cannot. The daemon the
//! service starts serves clients like any other: they find it by its socket, and start one of
//! their own only when none runs.

pub mod service;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use self::service::{LABEL, MARK, Spec};
use super::Failure;
use super::exit::Exit;
use super::output;
use super::sanitize;
use crate::lock::{self, Holder};
use crate::paths::Paths;

/// The service manager that starts the daemon at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Systemd,
    Launchd,
}

/// The login service of this system: its manager and its file.
#[derive(Debug, Clone)]
pub struct Service {
    pub manager: Manager,
    pub file: PathBuf,
}

/// What `daemon status` says about starting at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// No file: the daemon starts when a command needs it.
    NotInstalled,
    /// The file `install` would write now; `enabled` is whether systemd starts it at login
    /// (`None` for launchd, which starts every agent in its directory).
    Installed { enabled: Option<bool> },
    /// A file is there, but not this one: it runs another binary, home or config.
    Other,
}

impl Service {
    /// The service of this system, where its manager looks: systemd reads
    /// `$XDG_CONFIG_HOME/systemd/user` (`~/.config/systemd/user`), launchd `~/Library/LaunchAgents`.
    pub fn here() -> anyhow::Result<Service> {
        let dirs = directories::BaseDirs::new().ok_or_else(|| {
            Failure::new("no home directory could be found for this user, so there is nowhere to install the service")
        })?;
        if cfg!(target_os = "macos") {
            return Ok(Service {
                manager: Manager::Launchd,
                file: dirs
                    .home_dir()
                    .join("Library/LaunchAgents")
                    .join(format!("{LABEL}.plist")),
            });
        }
        if cfg!(target_os = "linux") {
            return Ok(Service {
                manager: Manager::Systemd,
                file: dirs.config_dir().join("systemd/user/rhizome.service"),
            });
        }
        Err(Failure::new(
            "starting at login is supported with systemd (Linux) and launchd (macOS) only",
        )
        .hint("have your service manager run `rhizome daemon run`, which stays in the foreground")
        .into())
    }

    /// The link `systemctl --user enable` makes, whose presence means "starts at login".
    fn enabled_link(&self) -> Option<PathBuf> {
        (self.manager == Manager::Systemd).then(|| {
            self.file
                .with_file_name("default.target.wants")
                .join("rhizome.service")
        })
    }

    fn is_enabled(&self) -> Option<bool> {
        self.enabled_link()
            .map(|link| fs::symlink_metadata(link).is_ok())
    }

    /// The file's text for what runs.
    fn text(&self, spec: &Spec) -> anyhow::Result<String> {
        let text = match self.manager {
            Manager::Systemd => service::systemd_unit(spec),
            Manager::Launchd => service::launchd_plist(spec),
        };
        Ok(text.map_err(|err| {
            Failure::new(err.to_string())
                .hint("move rhizome, or its home (RHIZOME_HOME), to a path of printable UTF-8")
        })?)
    }

    /// What `daemon status` says: whether the file there is the one `install` writes now.
    pub fn login(&self, paths: &Paths) -> Login {
        match fs::read_to_string(&self.file) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => Login::NotInstalled,
            Ok(text)
                if spec(paths)
                    .and_then(|spec| self.text(&spec))
                    .is_ok_and(|ours| ours == text) =>
            {
                Login::Installed {
                    enabled: self.is_enabled(),
                }
            }
            _ => Login::Other,
        }
    }
}

/// What the service runs: this binary by its absolute path, and the environment that decides
/// where the daemon's files are. PATH and the rest are not needed: commands and kubectl run with
/// the environment of the client that started them.
fn spec(paths: &Paths) -> anyhow::Result<Spec> {
    let program =
        std::env::current_exe().context("the path of this rhizome binary could not be found")?;
    if !program.is_file() {
        return Err(Failure::new(format!(
            "this rhizome binary ({}) is no longer on disk (replaced or removed), so the service could not run it",
            program.display()
        ))
        .hint("run `rhizome daemon install` with the rhizome that is installed now")
        .into());
    }
    let mut env = Vec::new();
    if std::env::var_os("RHIZOME_HOME").is_some_and(|home| !home.is_empty()) {
        env.push(("RHIZOME_HOME", paths.home.clone()));
    }
    if std::env::var_os("RHIZOME_CONFIG").is_some_and(|file| !file.is_empty()) {
        let config = std::path::absolute(crate::config::path(paths))
            .context("the path in RHIZOME_CONFIG could not be made absolute")?;
        env.push(("RHIZOME_CONFIG", config));
    }
    Ok(Spec { program, env })
}

/// What `install` did to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrote {
    New,
    /// Rewritten: it ran another binary, home or config.
    Replaced,
    /// It was the file already.
    Unchanged,
}

/// `rhizome daemon install`.
pub fn install(paths: &Paths) -> anyhow::Result<Exit> {
    let service = Service::here()?;
    let spec = spec(paths)?;
    let text = service.text(&spec)?;
    let shown = sanitize::text(&service.file.to_string_lossy()).into_owned();
    let wrote = match fs::read_to_string(&service.file) {
        Ok(old) if old == text => Wrote::Unchanged,
        Ok(old) if !old.contains(MARK) => {
            return Err(Failure::new(format!(
                "{shown} exists and was not written by `rhizome daemon install`; nothing was written"
            ))
            .hint("move it away, then run `rhizome daemon install` again")
            .into());
        }
        Ok(_) => Wrote::Replaced,
        Err(_) => Wrote::New,
    };
    if wrote != Wrote::Unchanged {
        write_file(&service.file, &text)?;
    }
    let mut said = match wrote {
        Wrote::New => format!("wrote {shown}\n"),
        Wrote::Replaced => format!("replaced {shown}\n"),
        Wrote::Unchanged => format!("already installed: {shown} (unchanged)\n"),
    };
    said += &format!("  it runs {}\n", sanitize::text(&runs(&spec)));
    said += &next_steps(&service, paths, wrote);
    output::print(said)?;
    Ok(Exit::Success)
}

/// `PROGRAM daemon run  (NAME=VALUE ...)`, as the service runs it.
fn runs(spec: &Spec) -> String {
    let mut line = format!("{} daemon run", spec.program.display());
    if !spec.env.is_empty() {
        let env: Vec<String> = spec
            .env
            .iter()
            .map(|(name, value)| format!("{name}={}", value.display()))
            .collect();
        line += &format!("  ({})", env.join(" "));
    }
    line
}

/// The command that starts the systemd unit now and at every login.
const ENABLE_NOW: &str = "systemctl --user enable --now rhizome";
/// What comes next while another daemon runs: its lock would stop the unit's daemon now.
const ENABLE: &str = "next: systemctl --user enable rhizome   (it starts at the next login)\n";
/// What comes next for an enabled unit whose file changed.
const RELOAD: &str =
    "next: systemctl --user daemon-reload   (it applies at the daemon's next start)\n";

/// The commands that make the service start, printed rather than run (see the module's comment).
fn next_steps(service: &Service, paths: &Paths, wrote: Wrote) -> String {
    let running = match lock::holder(&paths.lock) {
        Ok(Holder::Daemon(pid)) => Some(pid),
        _ => None,
    };
    // Starting the service's daemon now would meet this one's lock.
    let handover = |start_now: &str| match running {
        Some(pid) => format!(
            "  a daemon runs now (pid {pid}); to hand it over now, stopping what it runs:\n  \
             rhizome daemon stop && {start_now}\n"
        ),
        None => String::new(),
    };
    match service.manager {
        Manager::Systemd => {
            let enabled = service.is_enabled() == Some(true);
            let mut next = match (enabled, running) {
                (true, _) if wrote == Wrote::Replaced => RELOAD.to_string(),
                (true, _) => {
                    "  it is enabled: systemd starts the daemon at every login\n".to_string()
                }
                (false, Some(_)) => format!("{ENABLE}{}", handover(ENABLE_NOW)),
                (false, None) => format!("next: {ENABLE_NOW}\n"),
            };
            if !on_path("systemctl") {
                next +=
                    "note: systemctl is not on PATH; the unit needs systemd to run the session\n";
            }
            next
        }
        Manager::Launchd => {
            let load = format!(
                "launchctl bootstrap gui/{} {}",
                nix::unistd::getuid(),
                sanitize::text(&service.file.to_string_lossy())
            );
            match running {
                Some(_) => format!(
                    "next: nothing; launchd loads it at the next login\n{}",
                    handover(&load)
                ),
                None => format!("next: {load}   (or log in again)\n"),
            }
        }
    }
}

/// `rhizome daemon uninstall`.
pub fn uninstall() -> anyhow::Result<Exit> {
    let service = Service::here()?;
    let shown = sanitize::text(&service.file.to_string_lossy()).into_owned();
    let text = match fs::read_to_string(&service.file) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            output::println(format_args!(
                "nothing to uninstall: the daemon is not installed to start at login (no {shown})"
            ))?;
            return Ok(Exit::Success);
        }
        Err(err) => return Err(anyhow::anyhow!("could not read {shown}: {err}")),
        Ok(text) => text,
    };
    if !text.contains(MARK) {
        return Err(Failure::new(format!(
            "{shown} was not written by `rhizome daemon install`; nothing was removed"
        ))
        .hint("remove it yourself if it is no longer wanted")
        .into());
    }
    if service.is_enabled() == Some(true) {
        return Err(Failure::new(
            "rhizome.service is enabled, and systemd would go on looking for it at every login; \
             nothing was removed",
        )
        .hint(
            "run `systemctl --user disable --now rhizome` first (it stops the daemon systemd \
             started), then `rhizome daemon uninstall`",
        )
        .into());
    }
    fs::remove_file(&service.file).with_context(|| format!("could not remove {shown}"))?;
    let mut said = format!("removed {shown}\n");
    if service.manager == Manager::Launchd {
        said += &format!(
            "  if it is loaded, `launchctl bootout gui/{}/{LABEL}` unloads it (and stops the \
             daemon it started)\n",
            nix::unistd::getuid()
        );
    }
    output::print(said)?;
    Ok(Exit::Success)
}

/// Writes `text` whole or not at all (a file beside it, renamed over it), creating the directory.
fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let partial = path.with_extension("partial");
    let write = || -> io::Result<()> {
        let mut file = fs::File::create(&partial)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&partial, path)
    };
    write().with_context(|| format!("could not write {}", path.display()))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
