//! Where every file of rhizome lives, and the checks that keep those places private.
//!
//! `RHIZOME_HOME=DIR` puts everything under one directory (tests use this to run isolated
//! daemons side by side). Without it the XDG layout applies: config in the config dir, logs and
//! state in the state dir (the data-local dir where there is none, as on macOS), socket and lock in
//! the runtime dir (`/tmp/rhizome-$UID` where there is none).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use directories::ProjectDirs;

/// Unix socket addresses are limited to 104 (macOS) or 108 (Linux) bytes; stay clear of both.
pub const MAX_SOCKET_PATH: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("no home directory could be found for this user; set RHIZOME_HOME to a directory")]
    NoHome,
    #[error(
        "the socket path {path} is {len} bytes long, over the {MAX_SOCKET_PATH}-byte limit of Unix sockets; set RHIZOME_HOME to a shorter directory"
    )]
    SocketPathTooLong { path: PathBuf, len: usize },
    #[error("could not create the directory {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("{path} is not a directory; remove it or set RHIZOME_HOME to another directory")]
    NotADirectory { path: PathBuf },
    #[error(
        "{path} belongs to uid {owner}, not to you (uid {me}); rhizome keeps its files private, so set RHIZOME_HOME to a directory of your own"
    )]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
    #[error("could not make {path} private (mode 0700): {source}")]
    Chmod { path: PathBuf, source: io::Error },
}

/// Every path rhizome uses, resolved once per process.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Shown by `daemon status`: `RHIZOME_HOME`, or the state directory.
    pub home: PathBuf,
    /// Directory of the socket and lock file.
    pub runtime_dir: PathBuf,
    pub socket: PathBuf,
    pub lock: PathBuf,
    pub config_dir: PathBuf,
    /// Per-process logs and the daemon's own log.
    pub logs: PathBuf,
    pub state: PathBuf,
}

impl Paths {
    /// Resolves the paths from `RHIZOME_HOME` or the XDG directories. Creates nothing.
    pub fn from_env() -> Result<Paths, PathError> {
        let paths = match std::env::var_os("RHIZOME_HOME").filter(|home| !home.is_empty()) {
            Some(home) => {
                Paths::under(&std::path::absolute(PathBuf::from(home)).map_err(|source| {
                    PathError::Create {
                        path: PathBuf::from("RHIZOME_HOME"),
                        source,
                    }
                })?)
            }
            None => Paths::xdg()?,
        };
        let len = paths.socket.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            return Err(PathError::SocketPathTooLong {
                path: paths.socket,
                len,
            });
        }
        Ok(paths)
    }

    /// Everything under one directory.
    pub fn under(home: &Path) -> Paths {
        Paths {
            home: home.to_path_buf(),
            runtime_dir: home.to_path_buf(),
            socket: home.join("rhizome.sock"),
            lock: home.join("rhizome.lock"),
            config_dir: home.to_path_buf(),
            logs: home.join("logs"),
            state: home.join("state"),
        }
    }

    fn xdg() -> Result<Paths, PathError> {
        let dirs = ProjectDirs::from("", "", "rhizome").ok_or(PathError::NoHome)?;
        let state_root = dirs
            .state_dir()
            .unwrap_or_else(|| dirs.data_local_dir())
            .to_path_buf();
        let runtime_dir = match dirs.runtime_dir() {
            Some(dir) => dir.to_path_buf(),
            None => std::env::temp_dir().join(format!("rhizome-{}", nix::unistd::geteuid())),
        };
        Ok(Paths {
            home: state_root.clone(),
            socket: runtime_dir.join("rhizome.sock"),
            lock: runtime_dir.join("rhizome.lock"),
            runtime_dir,
            config_dir: dirs.config_dir().to_path_buf(),
            logs: state_root.join("logs"),
            state: state_root.join("state"),
        })
    }

    /// The config file: `rhizome.toml` in the config directory.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("rhizome.toml")
    }

    /// Creates the daemon's directories, private to this user, and refuses ones that are not.
    pub fn ensure_dirs(&self) -> Result<(), PathError> {
        for dir in [&self.home, &self.runtime_dir, &self.logs, &self.state] {
            ensure_private_dir(dir)?;
        }
        Ok(())
    }
}

/// Creates `dir` (mode 0700) if it is missing; otherwise checks that it is a directory owned by
/// this user and tightens its mode to 0700. A symlink is followed, and then its target must pass the
/// same checks, so a link into another user's directory is refused.
pub fn ensure_private_dir(dir: &Path) -> Result<(), PathError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| PathError::Create {
            path: dir.to_path_buf(),
            source,
        })?;
    let meta = fs::metadata(dir).map_err(|source| PathError::Create {
        path: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(PathError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(PathError::NotOwned {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|source| {
            PathError::Chmod {
                path: dir.to_path_buf(),
                source,
            }
        })?;
    }
    Ok(())
}

/// This program, for running itself as a child. A binary replaced on disk since the daemon started
/// (an upgrade, a rebuild) is gone from its path; on Linux the kernel still has it as
/// `/proc/self/exe`, which a forked child resolves to the same file.
pub fn own_executable() -> PathBuf {
    match std::env::current_exe() {
        Ok(path) if path.exists() => path,
        _ if cfg!(target_os = "linux") => PathBuf::from("/proc/self/exe"),
        Ok(path) => path,
        Err(_) => PathBuf::from("rhizome"),
    }
}
