//! Who holds a local TCP port, so that "port in use" names the culprit.

/// A description of the process listening on `127.0.0.1:port` (or any address), such as
/// `pid 4242 (python3 -m http.server 3306)`, when it can be found.
pub fn holder(port: u16) -> Option<String> {
    #[cfg(target_os = "linux")]
    if let Some(found) = linux::holder(port) {
        return Some(found);
    }
    lsof(port)
}

/// `lsof`, where installed (macOS has it; it is the fallback on Linux).
fn lsof(port: u16) -> Option<String> {
    let output = std::process::Command::new("lsof")
        .args(["-nP", &format!("-iTCP:{port}"), "-sTCP:LISTEN", "-Fpc"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let pid = text.lines().find_map(|l| l.strip_prefix('p'))?.to_string();
    let command = text
        .lines()
        .find_map(|l| l.strip_prefix('c'))
        .unwrap_or("?");
    Some(format!("pid {pid} ({command})"))
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs;

    /// Finds the listening socket's inode in /proc/net/tcp{,6}, then the process holding it.
    pub fn holder(port: u16) -> Option<String> {
        let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|table| fs::read_to_string(table).ok())
            .find_map(|table| listening_inode(&table, port))?;
        let wanted = format!("socket:[{inode}]");
        for entry in fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
                continue;
            };
            let holds = fds.flatten().any(|fd| {
                fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == wanted.as_str())
            });
            if holds {
                let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
                let command: Vec<String> = cmdline
                    .split(|&b| b == 0)
                    .filter(|part| !part.is_empty())
                    .map(|part| String::from_utf8_lossy(part).into_owned())
                    .collect();
                return Some(format!("pid {pid} ({})", command.join(" ")));
            }
        }
        None
    }

    /// The inode of a LISTEN socket on `port` in one /proc/net/tcp table.
    fn listening_inode(table: &str, port: u16) -> Option<u64> {
        let wanted = format!(":{port:04X}");
        table.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            // State 0A is LISTEN.
            (local.ends_with(&wanted) && fields.get(3) == Some(&"0A"))
                .then(|| fields.get(9)?.parse().ok())?
        })
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn names_the_process_holding_a_port() {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let found = super::holder(port).expect("our own listener is found");
            assert!(
                found.starts_with(&format!("pid {} (", std::process::id())),
                "{found}"
            );
        }
    }
}
