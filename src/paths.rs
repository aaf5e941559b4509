//! Where every file of rhizome lives, and the checks that keep those places private.
//!
//! `RHIZOME_HOME=DIR` puts everything under one directory (tests use this to run isolated
//! daemons side by side). Without it the XDG layout applies: config in the config dir, logs and
//! state in the state dir (the data-local dir where there is none, as on macOS), socket and lock in
//! the runtime dir (`$TMPDIR/rhizome-$UID` where there is none, `TMPDIR` defaulting to `/tmp`).
//!
//! Those places may be shared with other users (`/tmp` above all), so nothing here follows a link
//! at a directory rhizome creates or tightens, and the client checks the socket's directory
//! before it connects: see `PrivateDir` and `check_socket_dir`.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use directories::ProjectDirs;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::libc;
use nix::sys::stat::{Mode, fstatat, mkdirat};

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
    #[error("could not inspect {path}: {source}")]
    Inspect { path: PathBuf, source: io::Error },
    #[error("{path} is not a directory (it belongs to uid {owner})")]
    NotADirectory { path: PathBuf, owner: u32 },
    #[error(
        "{path} is a symbolic link (to {target}, made by uid {owner}); rhizome does not follow links to its directories"
    )]
    Symlink {
        path: PathBuf,
        target: PathBuf,
        owner: u32,
    },
    #[error("{path} belongs to uid {owner}, not to you (uid {me})")]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
    #[error("could not make {path} private (mode 0700): {source}")]
    Chmod { path: PathBuf, source: io::Error },
}

impl PathError {
    /// What the user can do about it, shown on a `hint:` line.
    pub fn hint(&self) -> Option<String> {
        let owner = match self {
            PathError::NotADirectory { owner, .. }
            | PathError::Symlink { owner, .. }
            | PathError::NotOwned { owner, .. } => *owner,
            _ => return None,
        };
        let who = if owner == nix::unistd::geteuid().as_raw() {
            String::new()
        } else {
            format!(" (uid {owner} put it there)")
        };
        Some(format!(
            "remove it{who}, or set RHIZOME_HOME to a directory of your own"
        ))
    }
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
    /// Each is reached from an opened parent, so a link swapped in on the way is never followed.
    pub fn ensure_dirs(&self) -> Result<(), PathError> {
        let home = PrivateDir::ensure(&self.home)?;
        if self.runtime_dir != self.home {
            PrivateDir::ensure(&self.runtime_dir)?;
        }
        for dir in [&self.logs, &self.state] {
            match (dir.parent(), dir.file_name()) {
                (Some(parent), Some(name)) if parent == self.home => home.child(name)?,
                _ => PrivateDir::ensure(dir)?,
            };
        }
        Ok(())
    }
}

/// Creates `dir` (mode 0700) if it is missing; otherwise checks that it is a directory owned by
/// this user and tightens its mode to 0700. Its parent is trusted as a path (the user chose it,
/// as `RHIZOME_HOME`, `XDG_RUNTIME_DIR` or `TMPDIR`, or it is the user's home); `dir` itself is
/// never followed if it is a link, since another user can plant one in a shared `/tmp`.
pub fn ensure_private_dir(dir: &Path) -> Result<(), PathError> {
    PrivateDir::ensure(dir).map(drop)
}

/// A directory of this user's, private, held open: what rhizome makes in it is reached through
/// the descriptor, and its mode was checked and tightened on the descriptor (`fstat`, `fchmod`),
/// not again by a path that could have changed in between.
pub struct PrivateDir {
    file: File,
    path: PathBuf,
}

impl PrivateDir {
    /// `dir`, made private (see `ensure_private_dir`).
    pub fn ensure(dir: &Path) -> Result<PrivateDir, PathError> {
        let create = |source| PathError::Create {
            path: dir.to_path_buf(),
            source,
        };
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            // `/` or a path ending in `..`: nothing to create, only to check.
            let file = open_directory(dir).map_err(create)?;
            return PrivateDir::checked(file, dir);
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|source| PathError::Create {
                path: parent.to_path_buf(),
                source,
            })?;
        let parent = open_directory(parent).map_err(|source| PathError::Create {
            path: parent.to_path_buf(),
            source,
        })?;
        ensure_in(parent.as_fd(), name, dir)
    }

    /// The directory `name` in this one, made private the same way.
    pub fn child(&self, name: &OsStr) -> Result<PrivateDir, PathError> {
        ensure_in(self.file.as_fd(), name, &self.path.join(name))
    }

    fn checked(file: File, path: &Path) -> Result<PrivateDir, PathError> {
        let meta = file.metadata().map_err(|source| PathError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let me = nix::unistd::geteuid().as_raw();
        if !meta.is_dir() {
            return Err(PathError::NotADirectory {
                path: path.to_path_buf(),
                owner: meta.uid(),
            });
        }
        if meta.uid() != me {
            return Err(PathError::NotOwned {
                path: path.to_path_buf(),
                owner: meta.uid(),
                me,
            });
        }
        if meta.mode() & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(0o700))
                .map_err(|source| PathError::Chmod {
                    path: path.to_path_buf(),
                    source,
                })?;
        }
        Ok(PrivateDir {
            file,
            path: path.to_path_buf(),
        })
    }
}

/// Makes `name` in `parent` (0700) unless it exists, opens it without following a link, and
/// checks it.
fn ensure_in(parent: BorrowedFd<'_>, name: &OsStr, path: &Path) -> Result<PrivateDir, PathError> {
    let create = |source: nix::Error| PathError::Create {
        path: path.to_path_buf(),
        source: source.into(),
    };
    match mkdirat(parent, name, Mode::S_IRWXU) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(err) => return Err(create(err)),
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => PrivateDir::checked(File::from(fd), path),
        // ELOOP for a link (ENOTDIR on some systems), ENOTDIR for a file: say which it is.
        Err(err) => match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) if stat.st_mode & libc::S_IFMT == libc::S_IFLNK => Err(PathError::Symlink {
                path: path.to_path_buf(),
                target: readlinkat(parent, name)
                    .map(PathBuf::from)
                    .unwrap_or_default(),
                owner: stat.st_uid,
            }),
            Ok(stat) if stat.st_mode & libc::S_IFMT != libc::S_IFDIR => {
                Err(PathError::NotADirectory {
                    path: path.to_path_buf(),
                    owner: stat.st_uid,
                })
            }
            _ => Err(create(err)),
        },
    }
}

/// Opens a directory the user named, following links: its path is trusted.
fn open_directory(dir: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
}

/// What the client found at the socket's directory before connecting.
#[derive(Debug, PartialEq, Eq)]
pub enum SocketDir {
    /// There is none: no daemon runs; the one started next creates it.
    Missing,
    /// The user's own private directory: the socket in it may be connected to.
    Private,
}

/// Checks the socket's directory the way tmux and ssh-agent do, before the client says anything
/// to the socket: `lstat`, so that a link is not followed, then a directory owned by this user
/// with no group or other bits. One of the user's own that is merely too open is tightened (on
/// its descriptor, as the daemon does when it starts) rather than refused: whatever another user
/// could have put in it is still caught by the peer check on the socket.
pub fn check_socket_dir(paths: &Paths) -> Result<SocketDir, PathError> {
    let dir = &paths.runtime_dir;
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(SocketDir::Missing),
        Err(source) => {
            return Err(PathError::Inspect {
                path: dir.clone(),
                source,
            });
        }
    };
    let me = nix::unistd::geteuid().as_raw();
    if meta.file_type().is_symlink() {
        return Err(PathError::Symlink {
            path: dir.clone(),
            target: fs::read_link(dir).unwrap_or_default(),
            owner: meta.uid(),
        });
    }
    if !meta.is_dir() {
        return Err(PathError::NotADirectory {
            path: dir.clone(),
            owner: meta.uid(),
        });
    }
    if meta.uid() != me {
        return Err(PathError::NotOwned {
            path: dir.clone(),
            owner: meta.uid(),
            me,
        });
    }
    if meta.mode() & 0o077 != 0 {
        PrivateDir::ensure(dir)?;
    }
    Ok(SocketDir::Private)
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
