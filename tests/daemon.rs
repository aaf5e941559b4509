//! The daemon's life: starting by itself, one per home, stale files, stopping, permissions, and who
//! may talk to it.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use common::*;
use rhizome::protocol::{Hello, Request};

#[test]
fn the_first_command_starts_the_daemon_and_status_never_does() {
    let rh = Rhizome::new();
    let status = rh.run(["daemon", "status"]);
    assert_eq!(status.code, Some(3), "{status:?}");
    assert!(status.stdout.contains("not running"), "{status:?}");
    assert!(
        !rh.daemon_running(),
        "daemon status must not start a daemon"
    );

    let ps = rh.ps();
    assert_eq!(ps["count"], 0);
    assert!(rh.daemon_running());

    let status = rh.run(["daemon", "status"]);
    assert_eq!(status.code, Some(0), "{status:?}");
    let pid = rh.daemon_pid().unwrap();
    assert!(
        status.stdout.contains(&format!("pid       {pid}")),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains(&rh.path().display().to_string()),
        "{}",
        status.stdout
    );
}

#[test]
fn thirty_two_concurrent_first_commands_share_one_daemon() {
    let rh = Rhizome::new();
    let outs: Vec<Out> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..32)
            .map(|_| scope.spawn(|| rh.run(["sleeper", "--count", "100"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    let mut ids: Vec<u64> = outs.iter().map(|o| parse_started(&o.stdout).0).collect();
    ids.sort();
    assert_eq!(
        ids,
        (1..=32).collect::<Vec<_>>(),
        "one table gave out every id"
    );
    assert_eq!(rh.ps()["count"], 32);
    let daemon = rh.daemon_pid().unwrap();
    // Every sleeper is a child of that one daemon.
    let children = children_of(daemon);
    for pid in outs.iter().map(|o| parse_started(&o.stdout).1) {
        assert!(
            children.contains(&pid),
            "{pid} is not a child of the daemon {daemon}: {children:?}"
        );
    }
}

#[test]
fn a_killed_daemon_leaves_nothing_that_blocks_the_next() {
    let rh = Rhizome::new();
    let (_, sleeper) = rh.start(["sleeper", "--count", "1000"]);
    let _orphan = GroupGuard(vec![sleeper]);
    let old = rh.kill_daemon_hard();
    assert!(
        rh.path().join("rhizome.sock").exists(),
        "a killed daemon leaves its socket file"
    );

    assert_eq!(rh.ps()["count"], 0);
    let new = rh.daemon_pid().unwrap();
    assert_ne!(new, old);
}

#[test]
fn a_stale_socket_file_and_lock_file_are_replaced() {
    let rh = Rhizome::new();
    // A socket nobody listens on any more, and a lock file naming a process that is long gone.
    drop(UnixListener::bind(rh.path().join("rhizome.sock")).unwrap());
    std::fs::write(rh.path().join("rhizome.lock"), "999999\n").unwrap();
    let out = rh.ok(["sleeper", "--count", "1"]);
    assert!(out.starts_with("started sleeper  id=1"), "{out}");
    assert_ne!(rh.daemon_pid(), Some(999999));
}

#[test]
fn a_socket_path_taken_by_another_file_is_refused_not_deleted() {
    let rh = Rhizome::new();
    std::fs::write(rh.path().join("rhizome.sock"), "precious").unwrap();
    let out = rh.run(["ps"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("exists and is not a socket"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(rh.path().join("rhizome.sock")).unwrap(),
        "precious"
    );
}

#[test]
fn files_are_private_to_the_user() {
    let rh = Rhizome::new();
    std::fs::set_permissions(rh.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    rh.start(["sleeper", "--count", "1"]);
    let mode = |p: &str| std::fs::metadata(rh.path().join(p)).unwrap().mode() & 0o777;
    assert_eq!(mode(""), 0o700, "home");
    assert_eq!(mode("logs"), 0o700);
    assert_eq!(mode("state"), 0o700);
    assert_eq!(mode("rhizome.sock"), 0o600);
    assert_eq!(mode("rhizome.lock"), 0o600);
    for entry in std::fs::read_dir(rh.path().join("logs")).unwrap() {
        let entry = entry.unwrap();
        assert_eq!(
            entry.metadata().unwrap().mode() & 0o077,
            0,
            "{:?}",
            entry.path()
        );
    }
}

#[test]
fn a_too_long_socket_path_is_explained() {
    let rh = Rhizome::new();
    let deep = rh.path().join("x".repeat(120));
    let out = rh
        .command(["ps"])
        .env("RHIZOME_HOME", &deep)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("over the 100-byte limit"), "{stderr}");
    assert!(stderr.contains("RHIZOME_HOME"), "{stderr}");
}

#[test]
fn daemon_stop_ends_children_and_returns_when_the_daemon_is_gone() {
    let rh = Rhizome::new();
    let (_, first) = rh.start(["sleeper", "--count", "1000"]);
    let (_, second) = rh.start(["run", "--", "sleep", "1000"]);
    let daemon = rh.daemon_pid().unwrap();
    let out = rh.ok(["daemon", "stop"]);
    assert_eq!(out.trim(), format!("daemon stopped  pid={daemon}"));
    assert!(!rh.daemon_running());
    assert!(
        !rh.path().join("rhizome.sock").exists(),
        "the socket is removed"
    );
    assert!(
        !alive(first) && !alive(second),
        "children are stopped with the daemon"
    );
    assert_eq!(rh.ok(["daemon", "stop"]).trim(), "daemon is not running");
}

#[test]
fn sigterm_to_the_daemon_stops_it_cleanly() {
    let rh = Rhizome::new();
    let (_, child) = rh.start(["run", "--", "sleep", "1000"]);
    let daemon = rh.daemon_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    wait_for("the daemon to exit", Duration::from_secs(10), || {
        (!rh.daemon_running()).then_some(())
    });
    assert!(!alive(child));
    assert!(!rh.path().join("rhizome.sock").exists());
}

#[test]
fn daemon_restart_gives_a_new_daemon() {
    let rh = Rhizome::new();
    rh.ok(["daemon", "start"]);
    let before = rh.daemon_pid().unwrap();
    let out = rh.ok(["daemon", "restart"]);
    let after = rh.daemon_pid().unwrap();
    assert_ne!(before, after);
    assert_eq!(out.trim(), format!("daemon restarted  pid={after}"));
    assert!(rh.ok(["daemon", "start"]).contains("already running"));
}

/// A fake daemon of another version: answers the greeting, as any version does, with its own,
/// then hands back the next request it gets (if any) and hangs up.
fn fake_daemon(
    rh: &Rhizome,
    version: &'static str,
) -> std::thread::JoinHandle<Option<rhizome::protocol::Request>> {
    fake_daemon_speaking(rh, rhizome::protocol::PROTOCOL, version)
}

/// A fake daemon of this `version` that speaks `protocol`.
fn fake_daemon_speaking(
    rh: &Rhizome,
    protocol: u32,
    version: &'static str,
) -> std::thread::JoinHandle<Option<rhizome::protocol::Request>> {
    use rhizome::protocol::{Hello, Response};
    let listener = UnixListener::bind(rh.path().join("rhizome.sock")).unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        // Gone before it answers, as a stopping daemon is: a client that connects again is
        // refused, not left waiting on a backlog nobody reads.
        drop(listener);
        read_frame(&mut stream)?;
        let answer = postcard::to_stdvec(&Response::Hello(Hello {
            protocol,
            version: version.into(),
        }))
        .unwrap();
        send_frame(&mut stream, &answer);
        postcard::from_bytes(&read_frame(&mut stream)?).ok()
    })
}

#[test]
fn an_older_daemon_is_replaced_by_this_version() {
    let rh = Rhizome::new();
    let old = fake_daemon(&rh, "0.0.1-old");
    let out = rh.run(["ps", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains("the running daemon is rhizome 0.0.1-old; restarting it as"),
        "one line says so: {}",
        out.stderr
    );
    assert!(
        matches!(old.join().unwrap(), Some(rhizome::protocol::Request::Stop)),
        "the old daemon was asked to stop"
    );
    assert!(rh.daemon_running(), "a daemon of this version serves now");
}

#[test]
fn a_daemon_of_this_version_but_another_protocol_is_named_by_its_protocol() {
    let rh = Rhizome::new();
    let ours = rhizome::protocol::PROTOCOL;
    let old = fake_daemon_speaking(&rh, ours + 1000, rhizome::protocol::VERSION);
    let out = rh.run(["ps", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let version = rhizome::protocol::VERSION;
    assert!(
        out.stderr.contains(&format!(
            "the running daemon is rhizome {version} (protocol {}); restarting it as protocol {ours}",
            ours + 1000
        )),
        "not `restarting {version} as {version}`: {}",
        out.stderr
    );
    assert!(matches!(
        old.join().unwrap(),
        Some(rhizome::protocol::Request::Stop)
    ));
}

#[test]
fn a_connection_reset_is_reported_once() {
    use rhizome::protocol::{Hello, Response};
    let rh = Rhizome::new();
    let listener = UnixListener::bind(rh.path().join("rhizome.sock")).unwrap();
    let daemon = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        drop(listener);
        read_frame(&mut stream);
        let hello = postcard::to_stdvec(&Response::Hello(Hello::ours())).unwrap();
        send_frame(&mut stream, &hello);
        // Hang up with the request unread: the client's read fails with ECONNRESET.
        wait_for("the request", Duration::from_secs(10), || {
            let mut pending = 0i32;
            // SAFETY: FIONREAD writes one int.
            let got = unsafe {
                nix::libc::ioctl(
                    std::os::fd::AsRawFd::as_raw_fd(&stream),
                    nix::libc::FIONREAD,
                    &mut pending,
                )
            };
            (got == 0 && pending > 0).then_some(())
        });
        drop(stream);
    });
    let out = rh.run(["ps"]);
    daemon.join().unwrap();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr.matches("os error").count(),
        1,
        "the OS error once: {}",
        out.stderr
    );
}

#[test]
fn a_newer_daemon_is_left_alone_and_named() {
    let rh = Rhizome::new();
    let newer = fake_daemon(&rh, "99.0.0");
    let out = rh.run(["ps"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.starts_with(
            "error: the running daemon is rhizome 99.0.0 but this is the older rhizome"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint: "), "{}", out.stderr);
    drop(newer);
}

const NOBODY: u32 = 65534;

/// The socket lives in a 0700 directory: another user cannot even reach it.
#[test]
fn another_user_cannot_reach_the_socket() {
    if !require_root_or_skip("to act as another user") {
        return;
    }
    let rh = Rhizome::new();
    rh.ok(["daemon", "start"]);
    let out = rh.command(["ps"]).uid(NOBODY).gid(NOBODY).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("belongs to uid 0"), "{stderr}");
    assert_eq!(rh.ps()["count"], 0);
}

/// Even a peer that gets through the file permissions (root does) is refused by the daemon's
/// uid check, and what it asked for is not done. (rhizome's own client refuses first: the
/// directory is not its user's.)
#[test]
fn the_daemon_refuses_a_peer_of_another_uid() {
    if !require_root_or_skip("to run a daemon as another user") {
        return;
    }
    let rh = Rhizome::new();
    nix::unistd::chown(rh.path(), Some(NOBODY.into()), Some(NOBODY.into())).unwrap();
    let as_nobody = |args: &[&str]| {
        let out = rh
            .command(args)
            .uid(NOBODY)
            .gid(NOBODY)
            .current_dir("/")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let _stop_as_nobody = StopAs(&rh);
    assert_eq!(as_nobody(&["daemon", "start"]).0, Some(0));

    let out = rh.run(["sleeper", "--count", "100"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("belongs to uid 65534"), "{out:?}");
    let mut raw = std::os::unix::net::UnixStream::connect(rh.path().join("rhizome.sock")).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let hello = postcard::to_stdvec(&Request::Hello(Hello::ours())).unwrap();
    raw.write_all(&(hello.len() as u32).to_be_bytes()).unwrap();
    raw.write_all(&hello).unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    assert!(
        String::from_utf8_lossy(&answer).contains("does not serve uid 0"),
        "{answer:?}"
    );
    let (code, ps) = as_nobody(&["ps", "--all", "--json"]);
    assert_eq!(code, Some(0));
    assert!(
        ps.contains("\"count\":0") && !ps.contains("sleeper"),
        "the request was not acted on: {ps}"
    );

    struct StopAs<'a>(&'a Rhizome);
    impl Drop for StopAs<'_> {
        fn drop(&mut self) {
            let _ = self
                .0
                .command(["daemon", "stop"])
                .uid(NOBODY)
                .gid(NOBODY)
                .current_dir("/")
                .output();
        }
    }
}

#[test]
fn a_rhizome_home_that_is_a_file_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("home");
    std::fs::write(&file, b"").unwrap();
    let out: Out = std::process::Command::new(BIN)
        .arg("ps")
        .env("RHIZOME_HOME", &file)
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.starts_with(&format!(
            "error: {} is not a directory (it belongs to uid",
            file.display()
        )) && out.stderr.contains("hint: remove it, or set RHIZOME_HOME"),
        "not `Not a directory (os error 20)`: {}",
        out.stderr
    );
}
