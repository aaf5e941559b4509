//! The tenth day, where things are (issue 13, items 11 and 13): `daemon status` and bare `rhizome`
//! show the config file, the logs and whether the daemon starts at login; the man pages document
//! the environment, the files and the exit codes, and rhizome.toml(5) and the README's table of
//! keys come from one source; a config error is said in the file's words; and `daemon install`
//! writes a systemd user unit that systemd's own checker accepts, for a `daemon run` that stays
//! in the foreground beside the daemons commands start by themselves.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A user's home of their own, so that the service files are written and read there and never in
/// the home of whoever runs the tests.
struct Login {
    home: tempfile::TempDir,
}

impl Login {
    fn new() -> Login {
        Login {
            home: tempfile::tempdir().expect("a temporary home"),
        }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    /// `rhizome ARGS` of `rh`, with this HOME and no XDG_CONFIG_HOME (so `~/.config`).
    fn command(&self, rh: &Rhizome, args: &[&str]) -> Command {
        let mut command = rh.command(args);
        command
            .env("HOME", self.home())
            .env_remove("XDG_CONFIG_HOME");
        command
    }

    fn run(&self, rh: &Rhizome, args: &[&str]) -> Out {
        self.command(rh, args)
            .output()
            .expect("rhizome runs")
            .into()
    }

    fn ok(&self, rh: &Rhizome, args: &[&str]) -> String {
        let out = self.run(rh, args);
        assert_eq!(out.code, Some(0), "`rhizome {}`: {out:?}", args.join(" "));
        out.stdout
    }

    /// Where systemd looks for the user's own units with XDG_CONFIG_HOME unset.
    fn unit(&self) -> PathBuf {
        self.home().join(".config/systemd/user/rhizome.service")
    }

    /// `systemctl --user enable rhizome`, as far as the files go: the link in the target's
    /// `.wants` directory.
    fn enable(&self) -> PathBuf {
        let wants = self
            .home()
            .join(".config/systemd/user/default.target.wants");
        std::fs::create_dir_all(&wants).unwrap();
        let link = wants.join("rhizome.service");
        std::os::unix::fs::symlink("../rhizome.service", &link).unwrap();
        link
    }
}

/// The value of `label` under `daemon status` (`  config    VALUE`).
fn field(status: &str, label: &str) -> String {
    let prefix = format!("  {label:<10}");
    status
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{status}"))
        .to_string()
}

#[test]
fn status_and_overview_say_where_the_config_and_the_logs_are() {
    let rh = Rhizome::new();
    let login = Login::new();
    let config = rh.path().join("rhizome.toml");
    let logs = rh.path().join("logs");

    let out = login.run(&rh, &["daemon", "status"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(
        field(&out.stdout, "config"),
        format!(
            "{}  (not there: only the built-in targets)",
            config.display()
        )
    );
    assert_eq!(field(&out.stdout, "logs"), logs.display().to_string());
    assert_eq!(
        field(&out.stdout, "at login"),
        "not installed  (`rhizome daemon install` starts the daemon at login)"
    );

    write_config(&rh, "[logs]\nkeep_files = 5\n");
    login.ok(&rh, &["daemon", "start"]);
    let status = login.ok(&rh, &["daemon", "status"]);
    assert!(status.starts_with("daemon is running\n"), "{status}");
    assert_eq!(field(&status, "config"), config.display().to_string());
    assert_eq!(field(&status, "logs"), logs.display().to_string());

    let overview = login.ok(&rh, &[]);
    assert!(
        overview.contains(&format!("\nconfig     {}\n", config.display())),
        "{overview}"
    );
    assert!(
        overview.contains(&format!("\nlogs       {}\n", logs.display())),
        "{overview}"
    );

    // The file in use is the one RHIZOME_CONFIG names.
    let other = rh.path().join("elsewhere.toml");
    let status = login
        .command(&rh, &["daemon", "status"])
        .env("RHIZOME_CONFIG", &other)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert_eq!(
        field(&status, "config"),
        format!(
            "{}  (not there: only the built-in targets)",
            other.display()
        )
    );
}

#[test]
fn a_config_error_says_what_is_wrong_in_the_files_words() {
    let rh = Rhizome::new();
    let config = rh.path().join("rhizome.toml");
    for (text, said) in [
        (
            "probe_interval_secs = 0\n",
            "line 1, column 1: `probe_interval_secs` does not go at the top level; it belongs in [forward]",
        ),
        (
            "[forward]\nprobe_intervall_secs = 0\n",
            "line 2, column 1: unknown key `probe_intervall_secs` in [forward]; did you mean `probe_interval_secs`?",
        ),
        (
            "[environments.e.services.web]\nresource = \"svc/web\"\nremote_port = \"80\"\n",
            "line 3, column 15: `remote_port` must be a port number from 1 to 65535, not the text \"80\" (a number goes without quotes)",
        ),
        (
            "[environments.e.services.web]\nresource = \"svc/web\"\n",
            "line 1, column 1: `remote_port` is missing: every [environments.ENV.services.NAME] needs it (the port on the resource)",
        ),
    ] {
        write_config(&rh, text);
        let out = rh.run(["targets"]);
        assert_eq!(out.code, Some(1), "{text}: {out:?}");
        assert_eq!(
            out.stderr,
            format!(
                "error: the config file {path} is invalid: {said}\n\
                 hint: fix {path} (or point RHIZOME_CONFIG at another file)\n",
                path = config.display()
            ),
            "{text}"
        );
    }
}

/// The unit `daemon install` writes for `rh`, as systemd gets it.
fn expected_unit(rh: &Rhizome) -> String {
    format!(
        "# Written by `rhizome daemon install`; `rhizome daemon uninstall` removes it.\n\
         [Unit]\n\
         Description=rhizome daemon: keeps helper processes and kubectl tunnels alive\n\
         StartLimitIntervalSec=60\n\
         StartLimitBurst=5\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={BIN} daemon run\n\
         Environment=RHIZOME_HOME={}\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         KillMode=mixed\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        rh.path().display()
    )
}

#[cfg(target_os = "linux")]
#[test]
fn install_writes_a_systemd_user_unit_and_status_and_uninstall_follow_it() {
    let rh = Rhizome::new();
    let login = Login::new();
    let unit = login.unit();

    let said = login.ok(&rh, &["daemon", "install"]);
    assert_eq!(
        said.lines().take(3).collect::<Vec<_>>(),
        [
            format!("wrote {}", unit.display()),
            format!(
                "  it runs {BIN} daemon run  (RHIZOME_HOME={})",
                rh.path().display()
            ),
            "next: systemctl --user enable --now rhizome".to_string(),
        ],
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), expected_unit(&rh));
    assert!(!rh.daemon_running(), "installing starts no daemon");

    let status = login.run(&rh, &["daemon", "status"]).stdout;
    assert_eq!(
        field(&status, "at login"),
        "installed, not enabled  (`systemctl --user enable rhizome`)"
    );
    assert_eq!(field(&status, "unit"), unit.display().to_string());
    let again = login.ok(&rh, &["daemon", "install"]);
    assert!(
        again.starts_with(&format!(
            "already installed: {} (unchanged)\n",
            unit.display()
        )),
        "{again}"
    );

    // Enabled, it is what systemd starts at login: uninstall leaves it to systemctl first.
    let link = login.enable();
    let status = login.run(&rh, &["daemon", "status"]).stdout;
    assert_eq!(field(&status, "at login"), "installed and enabled");
    let out = login.run(&rh, &["daemon", "uninstall"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        "error: rhizome.service is enabled, and systemd would go on looking for it at every login; nothing was removed\n\
         hint: run `systemctl --user disable --now rhizome` first (it stops the daemon systemd started), then `rhizome daemon uninstall`\n"
    );
    assert!(unit.is_file());

    std::fs::remove_file(link).unwrap();
    assert_eq!(
        login.ok(&rh, &["daemon", "uninstall"]),
        format!("removed {}\n", unit.display())
    );
    assert!(!unit.exists());
    assert_eq!(
        login.ok(&rh, &["daemon", "uninstall"]),
        format!(
            "nothing to uninstall: the daemon is not installed to start at login (no {})\n",
            unit.display()
        )
    );
    let status = login.run(&rh, &["daemon", "status"]).stdout;
    assert!(
        field(&status, "at login").starts_with("not installed"),
        "{status}"
    );
    assert!(!status.contains("\n  unit "), "{status}");
}

#[cfg(target_os = "linux")]
#[test]
fn the_unit_goes_where_xdg_config_home_says() {
    let rh = Rhizome::new();
    let login = Login::new();
    let config_home = login.home().join("elsewhere");
    let out = login
        .command(&rh, &["daemon", "install"])
        .env("XDG_CONFIG_HOME", &config_home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let unit = config_home.join("systemd/user/rhizome.service");
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), expected_unit(&rh));
    assert!(!login.unit().exists());
}

#[cfg(target_os = "linux")]
#[test]
fn install_while_a_daemon_runs_says_that_it_goes_on_serving() {
    let rh = Rhizome::new();
    let login = Login::new();
    login.ok(&rh, &["daemon", "start"]);
    let pid = rh.daemon_pid().expect("a daemon");
    let said = login.ok(&rh, &["daemon", "install"]);
    assert!(
        said.contains(&format!(
            "next: systemctl --user enable rhizome   (it starts at the next login)\n  \
             a daemon runs now (pid {pid}); to hand it over now, stopping what it runs:\n  \
             rhizome daemon stop && systemctl --user enable --now rhizome\n"
        )),
        "{said}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_unit_of_another_home_or_of_someone_else_is_told_apart() {
    let rh = Rhizome::new();
    let other = Rhizome::new();
    let login = Login::new();
    login.ok(&rh, &["daemon", "install"]);
    let status = login.run(&other, &["daemon", "status"]).stdout;
    assert_eq!(
        field(&status, "at login"),
        "installed for another rhizome, home or config  (`rhizome daemon install` rewrites it)"
    );
    let said = login.ok(&other, &["daemon", "install"]);
    assert!(
        said.starts_with(&format!("replaced {}\n", login.unit().display())),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(login.unit()).unwrap(),
        expected_unit(&other)
    );

    // Enabled, a replaced unit needs systemd to read it again.
    login.enable();
    let said = login.ok(&rh, &["daemon", "install"]);
    assert!(
        said.contains(
            "\nnext: systemctl --user daemon-reload   (it applies at the daemon's next start)\n"
        ),
        "{said}"
    );

    // A unit the user wrote is theirs: neither command touches it.
    let theirs = "[Service]\nExecStart=/usr/bin/true\n";
    std::fs::write(login.unit(), theirs).unwrap();
    for command in ["install", "uninstall"] {
        let out = login.run(&rh, &["daemon", command]);
        assert_eq!(out.code, Some(1), "{command}: {out:?}");
        assert!(
            out.stderr
                .contains("was not written by `rhizome daemon install`; nothing was"),
            "{command}: {out:?}"
        );
    }
    assert_eq!(std::fs::read_to_string(login.unit()).unwrap(), theirs);
}

#[cfg(target_os = "linux")]
#[test]
fn systemd_analyze_verifies_the_unit() {
    let Some(analyze) = require_tool("systemd-analyze") else {
        return;
    };
    // A home whose path needs quoting in a unit file: a space, a `%` (a specifier to systemd).
    let rh = Rhizome::new();
    let home = rh.path().join("my home 100%");
    std::fs::create_dir(&home).unwrap();
    let login = Login::new();
    let out = login
        .command(&rh, &["daemon", "install"])
        .env("RHIZOME_HOME", &home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let unit = std::fs::read_to_string(login.unit()).unwrap();
    assert!(
        unit.contains(&format!(
            "\nEnvironment=\"RHIZOME_HOME={}/my home 100%%\"\n",
            rh.path().display()
        )),
        "{unit}"
    );
    // `--user` wants a runtime directory; this user's own is not for tests.
    let runtime = tempfile::tempdir().unwrap();
    let out = Command::new(analyze)
        .args(["--user", "verify"])
        .arg(login.unit())
        .env("HOME", login.home())
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env_remove("XDG_CONFIG_HOME")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "systemd-analyze --user verify: {}{}\n{unit}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_launchd_agent_is_a_plist_that_python_reads() {
    use rhizome::client::install::service::{Spec, launchd_plist};
    let Some(python) = require_tool("python3") else {
        return;
    };
    let plist = launchd_plist(&Spec {
        program: PathBuf::from("/Users/me/.cargo/bin/rhizome"),
        env: vec![("RHIZOME_HOME", PathBuf::from("/Users/me/R&D <work>"))],
    })
    .unwrap();
    let script = "import json, plistlib, sys\nprint(json.dumps(plistlib.loads(sys.stdin.buffer.read()), sort_keys=True))";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plist.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        read,
        serde_json::json!({
            "Label": "rhizome",
            "ProgramArguments": ["/Users/me/.cargo/bin/rhizome", "daemon", "run"],
            "EnvironmentVariables": {"RHIZOME_HOME": "/Users/me/R&D <work>"},
            "RunAtLoad": true,
            "KeepAlive": {"SuccessfulExit": false},
            "ProcessType": "Background",
        })
    );
}

#[cfg(target_os = "macos")]
#[test]
fn install_writes_a_launch_agent() {
    let rh = Rhizome::new();
    let login = Login::new();
    let agent = login.home().join("Library/LaunchAgents/rhizome.plist");
    let said = login.ok(&rh, &["daemon", "install"]);
    assert!(
        said.starts_with(&format!("wrote {}\n", agent.display())),
        "{said}"
    );
    assert!(
        std::fs::read_to_string(&agent)
            .unwrap()
            .contains("<string>daemon</string>")
    );
    let status = login.run(&rh, &["daemon", "status"]).stdout;
    assert_eq!(field(&status, "at login"), "installed");
    login.ok(&rh, &["daemon", "uninstall"]);
    assert!(!agent.exists());
}

/// What a service manager relies on: `daemon run` serves in the foreground (systemd's
/// `Type=simple`) and commands use it rather than starting their own; one started beside it
/// exits 1 (which the unit's start limit ends) and SIGTERM ends it with 0 (which the unit does not
/// restart).
#[test]
fn daemon_run_stays_in_the_foreground_and_commands_use_it() {
    let rh = Rhizome::new();
    let mut foreground = rh.command(["daemon", "run"]);
    foreground.stdout(Stdio::null()).stderr(Stdio::null());
    let mut served = Proc::spawn(&mut foreground, "rhizome daemon run");
    let pid = served.child.id();
    wait_for(
        "the foreground daemon to hold the lock",
        Duration::from_secs(10),
        || (rh.daemon_running() && rh.daemon_pid() == Some(pid)).then_some(()),
    );
    let (_, sleeper) = rh.start(["run", "--", "sleep", "30"]);
    assert_eq!(
        rh.daemon_pid(),
        Some(pid),
        "the command used the daemon that runs"
    );
    assert!(
        !cfg!(target_os = "linux") || children_of(pid).contains(&sleeper),
        "its child"
    );
    assert!(
        rh.ok(["daemon", "status"])
            .contains(&format!("\n  pid       {pid}\n"))
    );

    let beside = rh.run(["daemon", "run"]);
    assert_eq!(beside.code, Some(1), "{beside:?}");
    assert!(
        beside
            .stderr
            .contains(&format!("a daemon (pid {pid}) already runs for")),
        "{beside:?}"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    let status = served
        .wait_timeout(Duration::from_secs(20))
        .expect("the daemon ends on SIGTERM");
    assert_eq!(status.code(), Some(0), "a clean stop: {status:?}");
    assert!(!alive(sleeper), "it stopped what it ran");
}

/// Every `RHIZOME_` name in the sources.
fn rhizome_variables() -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![Path::new(REPO).join("src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (at, _) in text.match_indices("RHIZOME_") {
                    let name: String = text[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    // A mention of the prefix itself (`RHIZOME_` in a comment) names nothing.
                    let name = name.trim_end_matches('_');
                    if name != "RHIZOME" {
                        found.push(name.to_string());
                    }
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The text of one `.SH` section of a man page, from its heading to the next.
fn section<'a>(page: &'a str, name: &str) -> &'a str {
    let heading = if name.contains(' ') {
        format!("\n.SH \"{name}\"\n")
    } else {
        format!("\n.SH {name}\n")
    };
    let start = page
        .find(&heading)
        .unwrap_or_else(|| panic!("no {name} section"))
        + heading.len();
    let end = page[start..]
        .find("\n.SH ")
        .map_or(page.len(), |e| start + e);
    &page[start..end]
}

#[test]
fn the_man_page_documents_every_variable_every_file_and_every_exit_code() {
    let page = std::fs::read_to_string(Path::new(REPO).join("man/rhizome.1")).unwrap();
    let environment = section(&page, "ENVIRONMENT");
    let variables = rhizome_variables();
    assert!(variables.len() >= 10, "{variables:?}");
    let per_target = ".TP\n\\fBRHIZOME_<ENV>_<NAME>_URL\\fR\n";
    assert!(environment.contains(per_target), "{environment}");
    for name in &variables {
        let tag = format!(".TP\n\\fB{}\\fR\n", name.replace('-', "\\-"));
        // `exec`'s variables of one target (`RHIZOME_STAGING_ORDERS_URL`), under their pattern.
        let of_a_target = ["_URL", "_HOST", "_PORT"].iter().any(|end| {
            name.strip_suffix(end)
                .is_some_and(|rest| rest.len() > "RHIZOME_".len())
        });
        assert!(
            environment.contains(&tag) || of_a_target,
            "rhizome(1) ENVIRONMENT lacks {name} (add it to src/client/manual/mod.rs)"
        );
    }
    let exit_status = section(&page, "EXIT STATUS");
    for code in [0, 1, 2, 3, 4, 130] {
        assert!(
            exit_status.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "{exit_status}"
        );
    }
    // `daemon status` exits as documented.
    let rh = Rhizome::new();
    assert_eq!(rh.run(["daemon", "status"]).code, Some(3));
    let files = section(&page, "FILES");
    for file in ["rhizome.toml", "logs/", "rhizome.sock", "rhizome.service"] {
        assert!(files.contains(&format!("\\fI{file}")), "{file}: {files}");
    }
    assert!(section(&page, "SEE ALSO").contains("\\fBrhizome.toml\\fR(5)"));
}

#[test]
fn rhizome_toml_5_and_the_readme_document_the_same_keys() {
    let page = std::fs::read_to_string(Path::new(REPO).join("man/rhizome.toml.5")).unwrap();
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let keys = section(&page, "KEYS");
    for table in rhizome::config::keys::TABLES {
        for key in table.keys {
            let in_readme = format!("| `{}` |", key.name);
            let in_page = format!("\\fB{}\\fR = ", key.name.replace('-', "\\-"));
            let is_table = key.value == rhizome::config::keys::Value::Table;
            assert!(
                is_table || readme.contains(&in_readme),
                "README: {in_readme}"
            );
            assert!(
                is_table || keys.contains(&in_page),
                "rhizome.toml(5): {in_page}"
            );
        }
    }

    // The README's table is what `__generate` makes now.
    let rh = Rhizome::new();
    let fresh = tempfile::tempdir().unwrap();
    std::fs::write(fresh.path().join("README.md"), &readme).unwrap();
    rh.ok(["__generate".as_ref(), fresh.path().as_os_str()]);
    let generated = std::fs::read_to_string(fresh.path().join("README.md")).unwrap();
    assert!(
        generated == readme,
        "the README's table of keys is stale; refresh it with `cargo run -q -- __generate .` from \
         the repository's root (it is generated from src/config/keys.rs)"
    );
}
