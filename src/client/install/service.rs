//! The text of the file that starts the daemon at login: a systemd user unit or a launchd agent.
//! Both run `rhizome daemon run`, which serves in the foreground (systemd's `Type=simple`,
//! launchd's default), by the absolute path of this binary, with the environment that decides
//! where the daemon's files are. Pure functions of a `Spec`, so their exact text is tested.

use std::path::{Path, PathBuf};

/// The first line of every file rhizome writes here: `uninstall` removes only a file that has it.
pub const MARK: &str =
    "Written by `rhizome daemon install`; `rhizome daemon uninstall` removes it.";

/// launchd's name for the agent, and its file's name without `.plist`.
pub const LABEL: &str = "rhizome";

/// What the service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// This binary, absolute.
    pub program: PathBuf,
    /// `RHIZOME_HOME` and `RHIZOME_CONFIG` as this shell has them (absolute): the daemon must find
    /// the home the clients look in, and read the config they read.
    pub env: Vec<(&'static str, PathBuf)>,
}

/// A path a service file cannot hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{path:?} cannot be written into the service file: {why}")]
pub struct Unwritable {
    pub path: PathBuf,
    pub why: &'static str,
}

fn utf8(path: &Path) -> Result<&str, Unwritable> {
    let text = path.to_str().ok_or_else(|| Unwritable {
        path: path.to_path_buf(),
        why: "it is not UTF-8",
    })?;
    if text.chars().any(char::is_control) {
        return Err(Unwritable {
            path: path.to_path_buf(),
            why: "it holds a control character",
        });
    }
    Ok(text)
}

/// The systemd user unit. `Restart=on-failure`: a crash is restarted, `rhizome daemon stop` (an
/// exit 0) is not; a daemon that finds another one running exits 1, so the start limit ends the
/// retries. `KillMode=mixed`: on `systemctl stop` only the daemon gets SIGTERM and stops what it
/// runs itself, in order, as on `daemon stop`; systemd kills what is left after it has exited.
pub fn systemd_unit(spec: &Spec) -> Result<String, Unwritable> {
    let mut environment = String::new();
    for (name, value) in &spec.env {
        let value = systemd_word(&format!("{name}={}", utf8(value)?));
        environment += &format!("Environment={value}\n");
    }
    Ok(format!(
        "# {MARK}\n\
         [Unit]\n\
         Description=rhizome daemon: keeps helper processes and kubectl tunnels alive\n\
         StartLimitIntervalSec=60\n\
         StartLimitBurst=5\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={} daemon run\n\
         {environment}\
         Restart=on-failure\n\
         RestartSec=2\n\
         KillMode=mixed\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        systemd_word(utf8(&spec.program)?)
    ))
}

/// One word of a unit file: `%` (specifiers) doubled, `$` (variables, in `ExecStart`) doubled,
/// and in double quotes, with `\` and `"` escaped, when it holds anything but plain path bytes.
fn systemd_word(word: &str) -> String {
    let word = word.replace('%', "%%").replace('$', "$$");
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@%$,".contains(c));
    if plain {
        word
    } else {
        format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The launchd agent: loaded at login (`RunAtLoad`), started again only when it did not exit
/// cleanly (`KeepAlive` with `SuccessfulExit` false), as the systemd unit is.
pub fn launchd_plist(spec: &Spec) -> Result<String, Unwritable> {
    let mut environment = String::new();
    if !spec.env.is_empty() {
        environment += "\t<key>EnvironmentVariables</key>\n\t<dict>\n";
        for (name, value) in &spec.env {
            environment += &format!(
                "\t\t<key>{name}</key>\n\t\t<string>{}</string>\n",
                xml(utf8(value)?)
            );
        }
        environment += "\t</dict>\n";
    }
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <!-- {MARK} -->\n\
         <plist version=\"1.0\">\n\
         <dict>\n\
         \t<key>Label</key>\n\
         \t<string>{LABEL}</string>\n\
         \t<key>ProgramArguments</key>\n\
         \t<array>\n\
         \t\t<string>{}</string>\n\
         \t\t<string>daemon</string>\n\
         \t\t<string>run</string>\n\
         \t</array>\n\
         {environment}\
         \t<key>RunAtLoad</key>\n\
         \t<true/>\n\
         \t<key>KeepAlive</key>\n\
         \t<dict>\n\
         \t\t<key>SuccessfulExit</key>\n\
         \t\t<false/>\n\
         \t</dict>\n\
         \t<key>ProcessType</key>\n\
         \t<string>Background</string>\n\
         </dict>\n\
         </plist>\n",
        xml(utf8(&spec.program)?)
    ))
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(program: &str, home: Option<&str>) -> Spec {
        Spec {
            program: PathBuf::from(program),
            env: home
                .map(|h| vec![("RHIZOME_HOME", PathBuf::from(h))])
                .unwrap_or_default(),
        }
    }

    #[test]
    fn unit_words_are_quoted_only_when_needed() {
        assert_eq!(systemd_word("/usr/bin/rhizome"), "/usr/bin/rhizome");
        assert_eq!(
            systemd_word("/opt/my apps/rhizome"),
            "\"/opt/my apps/rhizome\""
        );
        assert_eq!(systemd_word("/home/a%b/$x"), "/home/a%%b/$$x");
        assert_eq!(systemd_word("/a\"b\\c d"), "\"/a\\\"b\\\\c d\"");
    }

    #[test]
    fn a_path_a_file_cannot_hold_is_refused() {
        let err = systemd_unit(&spec("/tmp/a\nExecStartPre=/bin/evil", None)).unwrap_err();
        assert_eq!(err.why, "it holds a control character");
        use std::os::unix::ffi::OsStrExt;
        let odd = PathBuf::from(std::ffi::OsStr::from_bytes(b"/tmp/\xff"));
        let err = launchd_plist(&Spec {
            program: odd,
            env: vec![],
        })
        .unwrap_err();
        assert_eq!(err.why, "it is not UTF-8");
    }

    #[test]
    fn the_agent_runs_the_daemon_in_the_foreground_with_the_home() {
        let plist = launchd_plist(&spec("/Users/me/bin/rhizome", Some("/Users/me/r&d"))).unwrap();
        assert!(plist.contains(
            "\t\t<string>/Users/me/bin/rhizome</string>\n\t\t<string>daemon</string>\n\t\t<string>run</string>\n"
        ));
        assert!(
            plist.contains("\t\t<key>RHIZOME_HOME</key>\n\t\t<string>/Users/me/r&amp;d</string>\n")
        );
        assert!(
            !launchd_plist(&spec("/b/rhizome", None))
                .unwrap()
                .contains("EnvironmentVariables")
        );
    }
}
