//! Harness for the end-to-end tests and benchmarks: a throwaway MariaDB server, the fake
//! Kubernetes API server, and the real kubectl binaries.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, require_tool, testkit_bin, wait_for};

/// A throwaway MariaDB server on a free port, with a small `shop.orders` table.
pub struct MariaDb {
    dir: tempfile::TempDir,
    pub port: u16,
    server: Child,
}

impl MariaDb {
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
        let server = Command::new(server)
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
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let db = MariaDb { dir, port, server };
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

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// `mariadbd`, or `mysqld` on older packages.
pub fn find_server() -> Option<PathBuf> {
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

pub fn query_port(port: u16, sql: &str) -> Result<String, String> {
    query(
        &["-h", "127.0.0.1", "-P", &port.to_string(), "--skip-ssl"],
        sql,
    )
}

/// The fake API server, stopped (its stdin closed, then killed) when dropped.
pub struct ApiServer {
    server: Child,
    pub addr: String,
    pub kubeconfig: PathBuf,
}

impl ApiServer {
    pub fn start(dir: &Path, db: &str) -> Option<ApiServer> {
        let bin = testkit_bin("fake-apiserver")?;
        let kubeconfig = dir.join("kubeconfig");
        let mut server = Command::new(bin)
            .args(["--db", db, "--kubeconfig-out"])
            .arg(&kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = server.stdout.take().unwrap();
        let mut byte = [0u8; 1];
        while !line.ends_with('\n') && stdout.read(&mut byte).unwrap() == 1 {
            line.push(byte[0] as char);
        }
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .expect("the server's first line")
            .to_string();
        Some(ApiServer {
            server,
            addr,
            kubeconfig,
        })
    }

    /// A fault control: `drop-streams`, `replace-pod`, `pod-phase?phase=Pending`, ...
    pub fn control(&self, what: &str) -> serde_json::Value {
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(stream, "POST /_control/{what} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or("{}");
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
    }

    pub fn state(&self) -> serde_json::Value {
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(
            stream,
            "GET /_control/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        drop(self.server.stdin.take());
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// The real kubectl binaries: the one on PATH and the versioned ones the Cloud SDK ships.
pub fn kubectl_versions() -> Option<Vec<PathBuf>> {
    let kubectl = require_tool("kubectl")?;
    let real = std::fs::canonicalize(&kubectl).unwrap_or(kubectl.clone());
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(real.parent().unwrap())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let minor = name.strip_prefix("kubectl.1.")?.parse().ok()?;
            Some((minor, e.path()))
        })
        .collect();
    versions.sort();
    Some(match (versions.first(), versions.last()) {
        (Some(oldest), Some(newest)) if oldest.0 != newest.0 => {
            vec![oldest.1.clone(), newest.1.clone()]
        }
        (Some(only), _) => vec![only.1.clone()],
        _ => vec![kubectl],
    })
}
