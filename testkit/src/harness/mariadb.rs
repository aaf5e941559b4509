//! A throwaway MariaDB server for the end-to-end tests and benchmarks: its own data directory on
//! a free port, a small `shop.orders` table, and SQL through the `mariadb` client.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::net::free_port;
use super::process::Proc;
use super::skip::require_tool;
use super::wait::wait_for;

/// A MariaDB server, killed when dropped, its data directory removed.
pub struct MariaDb {
    /// `mariadbd` itself; declared before `dir` (fields drop in order), it is killed before its
    /// directory is removed.
    _server: Proc,
    /// The data directory, socket, pid file and error log.
    dir: tempfile::TempDir,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
}

impl MariaDb {
    /// A fresh server with `shop.orders` filled in, or `None` (see `skip`) without MariaDB.
    pub fn start() -> Option<MariaDb> {
        let install = require_tool("mariadb-install-db")?;
        let server = find_server()?;
        require_tool("mariadb")?;
        let dir = tempfile::Builder::new()
            .prefix("mdb")
            .tempdir_in("/tmp")
            .unwrap();
        let root = nix::unistd::geteuid().is_root();
        let as_root: &[&str] = if root { &["--user=root"] } else { &[] };
        let out = Command::new(install)
            .args([
                "--no-defaults",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .args(as_root)
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut server = Command::new(server);
        server
            .arg("--no-defaults")
            .args(as_root)
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-grant-tables",
                "--innodb-buffer-pool-size=16M",
            ])
            .arg(format!(
                "--log-error={}",
                dir.path().join("error.log").display()
            ))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let db = MariaDb {
            _server: Proc::spawn(&mut server, "mariadbd"),
            dir,
            port,
        };
        wait_for(
            "MariaDB to accept connections",
            Duration::from_secs(60),
            || db.sql_direct("SELECT 1").ok(),
        );
        db.sql_direct(
            "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(20)); \
             INSERT INTO shop.orders VALUES (1, 'apple'), (2, 'pear'), (3, 'plum');",
        )
        .unwrap();
        Some(db)
    }

    /// SQL over the server's Unix socket, not through any tunnel.
    pub fn sql_direct(&self, sql: &str) -> Result<String, String> {
        query(
            &[
                "--socket",
                &self.dir.path().join("sock").display().to_string(),
            ],
            sql,
        )
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// `mariadbd`, or `mysqld` on older packages.
fn find_server() -> Option<PathBuf> {
    ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| require_tool("mariadbd"))
}

/// Runs SQL with the `mariadb` client; its rows, tab-separated.
pub fn query(connect: &[&str], sql: &str) -> Result<String, String> {
    let out = Command::new("mariadb")
        .args(connect)
        .args([
            "-u",
            "root",
            "--batch",
            "--skip-column-names",
            "--connect-timeout=10",
            "-e",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs SQL with the `mariadb` client through TCP to 127.0.0.1:`port`.
pub fn query_port(port: u16, sql: &str) -> Result<String, String> {
    query(
        &["-h", "127.0.0.1", "-P", &port.to_string(), "--skip-ssl"],
        sql,
    )
}
