//! Hostile input: garbage on the socket, idle and abandoned connections, other users, bad
//! config, secrets, and paths that are not what they seem. The daemon keeps serving everyone else.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::*;
use rhizome::protocol::{Hello, Request, Response};

fn connect(rh: &Rhizome) -> UnixStream {
    let stream = UnixStream::connect(rh.path().join("rhizome.sock")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// The next frame, decoded; `None` once the daemon hung up.
fn read_response(stream: &mut UnixStream) -> Option<Response> {
    postcard::from_bytes(&read_frame(stream)?).ok()
}

/// The daemon ends the connection: it answers with an error or nothing, then hangs up.
fn assert_hung_up(stream: &mut UnixStream) -> Option<String> {
    let mut message = None;
    while let Some(response) = read_response(stream) {
        match response {
            Response::Error(reply) => message = Some(reply.message),
            other => panic!("unexpected answer to garbage: {other:?}"),
        }
    }
    message
}

fn hello() -> Vec<u8> {
    postcard::to_stdvec(&Request::Hello(Hello::ours())).unwrap()
}

/// After each bad client, a good one is still served.
fn assert_still_serving(rh: &Rhizome) {
    let out = rh.run(["ps", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[test]
fn malformed_frames_are_refused_and_the_daemon_serves_on() {
    let rh = Rhizome::new();
    rh.ok(["daemon", "start"]);

    // A length over the 16 MiB cap: refused before anything is read or allocated.
    let mut s = connect(&rh);
    s.write_all(&u32::MAX.to_be_bytes()).unwrap();
    assert_hung_up(&mut s);
    assert_still_serving(&rh);

    // A truncated frame, then the client disappears.
    let mut s = connect(&rh);
    s.write_all(&100u32.to_be_bytes()).unwrap();
    s.write_all(b"only ten b").unwrap();
    drop(s);
    assert_still_serving(&rh);

    // Random bytes.
    let mut s = connect(&rh);
    let _ = s.write_all(&random_bytes(4096));
    assert_hung_up(&mut s);
    assert_still_serving(&rh);

    // A well-formed frame with a variant no version has, instead of the greeting.
    let mut s = connect(&rh);
    send_frame(&mut s, &[200, 1, 2, 3]);
    let message = assert_hung_up(&mut s).expect("an explanation");
    assert!(
        message.contains("greeting") || message.contains("Hello"),
        "{message}"
    );
    assert_still_serving(&rh);

    // A greeting, then an unknown variant.
    let mut s = connect(&rh);
    send_frame(&mut s, &hello());
    assert!(matches!(read_response(&mut s), Some(Response::Hello(_))));
    send_frame(&mut s, &[250, 0]);
    let message = assert_hung_up(&mut s).expect("an explanation");
    assert!(message.contains("could not be decoded"), "{message}");
    assert_still_serving(&rh);

    // A request before the greeting is not acted on.
    let mut s = connect(&rh);
    send_frame(&mut s, &postcard::to_stdvec(&Request::Stop).unwrap());
    assert_hung_up(&mut s);
    assert!(
        rh.daemon_running(),
        "a Stop without a greeting did not stop the daemon"
    );
    assert_still_serving(&rh);
}

#[test]
fn a_client_that_says_nothing_is_dropped_after_the_handshake_deadline() {
    let rh = Rhizome::new();
    rh.ok(["daemon", "start"]);
    let mut silent = connect(&rh);
    let started = Instant::now();
    assert_still_serving(&rh);
    let message = assert_hung_up(&mut silent).expect("a reason");
    assert!(message.contains("no greeting within 5 s"), "{message}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(9),
        "{waited:?}"
    );
}

#[test]
fn a_thousand_idle_connections_do_not_stop_the_daemon() {
    let rh = Rhizome::new();
    rh.ok(["daemon", "start"]);
    let idle: Vec<UnixStream> = (0..1000).map(|_| connect(&rh)).collect();
    let started = Instant::now();
    assert_still_serving(&rh);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
    assert_still_serving(&rh);
}

#[test]
fn clients_that_leave_mid_request_leave_the_daemon_unaffected() {
    let rh = Rhizome::new();
    rh.start(["sleeper", "--count", "100000"]);
    for _ in 0..5 {
        let mut follower = rh
            .command(["logs", "-f", "sleeper"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 8];
        follower
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
        follower.kill().unwrap();
        follower.wait().unwrap();
    }
    // A forward abandoned while it waits for its tunnel.
    let mut forward = rh
        .command([
            "forward",
            "na-prod/billing-bookkeeper",
            "--port",
            &free_port().to_string(),
        ])
        .env("RHIZOME_SIMULATE", "1")
        .spawn()
        .unwrap();
    forward.kill().unwrap();
    forward.wait().unwrap();
    assert_still_serving(&rh);
    assert_eq!(rh.process(1)["status"], "running");
}

#[test]
fn config_values_that_could_reach_a_shell_are_refused_by_field() {
    let rh = Rhizome::new();
    for (field, value, name) in [
        ("context", "prod;rm -rf ~", "context"),
        ("namespace", "db$(id)", "namespace"),
        ("namespace", "../../etc", "namespace"),
        ("context", "a\\nb", "context"),
    ] {
        let other = if field == "context" {
            "namespace = \"ok\""
        } else {
            "context = \"ok\""
        };
        write_config(
            &rh,
            &format!(
                "[environments.e.services.s]\nresource = \"svc/x\"\nremote_port = 1\n{other}\n{field} = \"{value}\"\n"
            ),
        );
        let out = rh
            .command(["forward", "e/s"])
            .env("RHIZOME_SIMULATE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("`{name}`")),
            "{field}={value:?}: {stderr}"
        );
    }
    let out = rh.run(["forward", "e/s;id"]);
    assert_eq!(out.code, Some(1));
    assert!(!rh.daemon_running(), "nothing reached the daemon");
}

#[test]
fn secrets_never_reach_a_log() {
    if require_tool("sh").is_none() {
        return;
    }
    let rh = Rhizome::new();
    rh.ok([
        "run",
        "--name",
        "leaky",
        "--",
        "sh",
        "-c",
        "echo connecting to postgres://admin:hunter2@db/app; echo PASSWORD=hunter2; echo '{\"token\": \"hunter2\"}'; echo Authorization: Bearer hunter2",
    ]);
    let log = rh.finished_log("leaky");
    assert!(log.contains("postgres://admin:***@db/app"), "{log}");
    for file in std::fs::read_dir(rh.path().join("logs")).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap_or_default();
        assert!(!text.contains("hunter2"), "a secret reached a log: {text}");
    }
    let ps = rh.ok(["ps", "--all", "--json"]);
    assert!(!ps.contains("hunter2"), "{ps}");
}

#[test]
fn a_home_that_links_into_another_users_directory_is_refused() {
    if !require_root_or_skip("to create another user's directory") {
        return;
    }
    let rh = Rhizome::new();
    let theirs = rh.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    nix::unistd::chown(&theirs, Some(65534.into()), Some(65534.into())).unwrap();
    let link = rh.path().join("link");
    std::os::unix::fs::symlink(&theirs, &link).unwrap();
    let out = rh
        .command(["ps"])
        .env("RHIZOME_HOME", &link)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(&theirs).unwrap().count(),
        0,
        "nothing was written there"
    );
}
