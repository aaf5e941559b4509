//! rhizome on a terminal, as a person sees it: commands run in a pseudo-terminal (rexpect), and
//! the screen is read back with a terminal emulator (vt100). Colors and the spinner appear there
//! and never in a pipe; Ctrl-C in `logs -f` gives the shell back at once.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::*;

/// `rhizome ARGS` for this home, on a terminal.
fn on_terminal(rh: &Rhizome, args: &[&str]) -> Command {
    terminal(rh.command(args))
}

/// A prepared rhizome command, on a terminal: no NO_COLOR (the harness sets it for pipes), a
/// terminal that has colors, and the pseudo-terminal as stdin too.
fn terminal(mut command: Command) -> Command {
    command
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::inherit());
    command
}

/// Everything a command wrote to its terminal, escape sequences included.
fn terminal_output(command: Command) -> String {
    let mut session = rexpect::session::spawn_command(command, Some(30_000)).expect("a pty");
    utf8(&session.exp_eof().expect("the command ends"))
}

/// rexpect hands back each byte as a char; the terminal would read UTF-8.
fn utf8(bytes_as_chars: &str) -> String {
    let bytes: Vec<u8> = bytes_as_chars.chars().map(|c| c as u32 as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The screen a person would be left looking at.
fn screen(output: &str) -> String {
    let size = |n| std::num::NonZeroU16::new(n).unwrap();
    let mut parser = vt100::Parser::new(size(24), size(120), 0);
    // A pty turns "\n" into "\r\n" already; the emulator needs nothing else.
    parser.process(output.as_bytes());
    parser.screen().contents()
}

/// A pipe's stdout and stderr, colors allowed (no NO_COLOR) so that their absence means something.
fn in_a_pipe(rh: &Rhizome, args: &[&str]) -> Out {
    let out = rh.command(args).env_remove("NO_COLOR").output().unwrap();
    out.into()
}

/// What the client's spinner says before the daemon has said anything: not a step of the daemon.
const PLACEHOLDER: &str = "asking the daemon";

/// The steps the daemon reports, in this order, while it opens a database tunnel it has not
/// opened before: the proxy in the pod (kubectl exec), then the forwarder (kubectl port-forward).
const DAEMON_STEPS: [&str; 2] = ["starting proxy in pod", "forwarding"];

/// The messages a spinner drew after `target: `, in the order drawn, a redraw of the same one
/// counted once.
fn spinner_messages(shown: &str, target: &str) -> Vec<String> {
    let prefix = format!("{target}: ");
    let mut messages: Vec<String> = Vec::new();
    for (at, _) in shown.match_indices(&prefix) {
        let rest = &shown[at + prefix.len()..];
        let end = rest.find(['\x1b', '\r', '\n']).unwrap_or(rest.len());
        // The message is padded to the terminal's width.
        let message = rest[..end].trim_end().to_string();
        if messages.last() != Some(&message) {
            messages.push(message);
        }
    }
    messages
}

#[test]
fn ps_colors_the_status_on_a_terminal_and_nowhere_else() {
    let rh = Rhizome::new();
    rh.start(["sleeper", "--count", "1000"]);
    let (failed, _) = rh.start(["run", "--name", "bad", "--", "sh", "-c", "exit 3"]);
    wait_for("bad to exit", Duration::from_secs(10), || {
        (rh.status(failed) == "exited(3)").then_some(())
    });

    let shown = terminal_output(on_terminal(&rh, &["ps", "--all"]));
    assert!(
        shown.contains("\x1b[32mrunning\x1b[0m"),
        "running is green: {shown:?}"
    );
    assert!(
        shown.contains("\x1b[31mexited(3)\x1b[0m"),
        "a failure is red: {shown:?}"
    );
    // The colors do not push the columns apart: what follows the status lines up.
    let screen = screen(&shown);
    let column = |word: &str| {
        screen
            .lines()
            .find(|l| l.contains(word))
            .and_then(|l| l.find(word))
            .unwrap_or_else(|| panic!("{word} on screen:\n{screen}"))
    };
    assert_eq!(column("STATUS"), column("running"), "{screen}");
    assert_eq!(column("STATUS"), column("exited(3)"), "{screen}");
    // Where the column after the status starts, in the row that has `word` as its status.
    let next_column = |word: &str| {
        let line = screen.lines().find(|l| l.contains(word)).unwrap();
        let end = line.find(word).unwrap() + word.len();
        end + line[end..].len() - line[end..].trim_start().len()
    };
    assert_eq!(next_column("running"), column("UPTIME"), "{screen}");
    // A finished process has no uptime: its next cell is RESTARTS.
    assert_eq!(next_column("exited(3)"), column("RESTARTS"), "{screen}");

    let piped = in_a_pipe(&rh, &["ps", "--all"]);
    assert!(
        !piped.stdout.contains('\x1b'),
        "no colors in a pipe: {piped:?}"
    );
    assert!(piped.stdout.contains("running"), "{piped:?}");

    let mut no_color = on_terminal(&rh, &["ps", "--all"]);
    no_color.env("NO_COLOR", "1");
    let shown = terminal_output(no_color);
    assert!(!shown.contains('\x1b'), "NO_COLOR: {shown:?}");

    let shown = terminal_output(on_terminal(&rh, &["--color", "never", "ps", "--all"]));
    assert!(!shown.contains('\x1b'), "--color never: {shown:?}");

    let forced = in_a_pipe(&rh, &["ps", "--all", "--color=always"]);
    assert!(
        forced.stdout.contains("\x1b[32mrunning"),
        "--color always: {forced:?}"
    );

    let json = terminal_output(on_terminal(&rh, &["ps", "--all", "--json"]));
    assert!(!json.contains('\x1b'), "JSON is never colored: {json:?}");
}

#[test]
fn logs_dims_time_stamps_and_names_on_a_terminal_only() {
    let rh = Rhizome::new();
    let (id, pid) = rh.start(["run", "--name", "talker", "--", "sh", "-c", "echo hello"]);
    wait_for("talker to end", Duration::from_secs(10), || {
        rh.logs("talker")
            .contains("subprocess finished")
            .then_some(())
    });

    let shown = terminal_output(on_terminal(&rh, &["logs", &id.to_string()]));
    let dim = "\x1b[2m";
    assert!(
        shown.contains(&format!(
            "hello                          {dim}[talker] pid={pid}\x1b[0m"
        )),
        "the name and pid are dim, the text is not: {shown:?}"
    );
    assert!(
        shown.lines().all(|l| l.is_empty() || l.starts_with(dim)),
        "time stamps are dim: {shown:?}"
    );
    // On screen it reads exactly as in a pipe.
    let piped = in_a_pipe(&rh, &["logs", "talker"]);
    assert!(!piped.stdout.contains('\x1b'), "{piped:?}");
    assert_eq!(
        screen(&shown).trim_end(),
        piped.stdout.trim_end(),
        "the same text on a terminal"
    );

    let raw = terminal_output(on_terminal(&rh, &["logs", "--raw", "talker"]));
    assert!(!raw.contains('\x1b'), "--raw has nothing to dim: {raw:?}");
    assert_eq!(raw, "hello\r\n", "--raw: what the process wrote, alone");
}

#[test]
fn forward_spins_on_a_terminal_prints_steps_in_a_pipe_and_nothing_when_quiet() {
    // The fake kubectl takes a third of a second for exec and for port-forward, as a real cluster
    // takes its time: each of the daemon's steps lasts long enough to be reported and drawn.
    let Some((cluster, rh)) = Cluster::new("exec * slow-ms 300\nport-forward * slow-ms 300\n")
    else {
        return;
    };
    let forward = |extra: &[&str]| {
        let mut args = vec!["forward", "fake/orders"];
        args.extend_from_slice(extra);
        terminal(cluster.command(&rh, &args))
    };
    let url = format!("mysql://127.0.0.1:{}", cluster.local_port);

    let shown = terminal_output(forward(&[]));
    // The spinner draws each step as it arrives (it may redraw 20 times a second, with a burst of
    // 20 to spend). Its own placeholder may come first; what follows can only be the daemon's.
    let drawn = spinner_messages(&shown, "fake/orders");
    let from_daemon: Vec<&str> = drawn
        .iter()
        .map(String::as_str)
        .skip_while(|&m| m == PLACEHOLDER)
        .collect();
    assert_eq!(
        from_daemon, DAEMON_STEPS,
        "the spinner names each step the daemon reports, not only its own {PLACEHOLDER:?}: {shown:?}"
    );
    assert!(
        ['⠁', '⠂', '⠄', '⡀', '⢀', '⠠', '⠐', '⠈']
            .iter()
            .any(|c| shown.contains(*c)),
        "a spinner frame: {shown:?}"
    );
    assert!(
        !shown.contains("rhizome: "),
        "no step lines on a terminal: {shown:?}"
    );
    let screen = screen(&shown);
    assert_eq!(
        screen.trim(),
        url,
        "the spinner is gone once the URL is printed: {shown:?}"
    );

    // The tunnel is open now; the second time finds it. In a pipe: plain step lines, URL alone.
    let mut piped = forward(&[]);
    piped.stdin(Stdio::null());
    let out = piped.output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{url}\n"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('⠁'),
        "{stderr:?}"
    );

    let quiet = terminal_output(forward(&["--quiet"]));
    assert_eq!(quiet, format!("{url}\r\n"), "--quiet: only the URL");

    // A tunnel opened from nothing, with no cluster and so as fast as it gets: its steps on
    // stderr, one `rhizome: STEP` line each, in the daemon's order.
    let rh = Rhizome::new();
    let out = rh
        .command([
            "forward",
            "na-prod/billing-bookkeeper",
            "--port",
            &free_port().to_string(),
        ])
        .env("RHIZOME_SIMULATE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let steps: Vec<&str> = stderr
        .lines()
        .map(|l| {
            l.strip_prefix("rhizome: ")
                .unwrap_or_else(|| panic!("only step lines on stderr: {stderr:?}"))
        })
        .collect();
    // Here a step lasts milliseconds, and every one is still reported: the daemon sends them as a
    // stream that cannot skip one.
    assert_eq!(
        steps, DAEMON_STEPS,
        "a fresh tunnel's steps, one per line, in a pipe: {stderr:?}"
    );
}

#[test]
fn ctrl_c_in_logs_follow_returns_to_the_shell_at_once() {
    let Some(bash) = require_tool("bash") else {
        return;
    };
    let rh = Rhizome::new();
    let (id, _) = parse_started(&String::from_utf8_lossy(
        &rh.command(["sleeper", "--count", "100000"])
            .env("SLEEP_OVERRIDE", "0.05")
            .output()
            .unwrap()
            .stdout,
    ));
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let mut shell = Command::new(bash);
    shell
        .args(["--norc", "--noprofile", "-i"])
        .env("PS1", "PROMPT> ")
        .env("RHIZOME_HOME", rh.path())
        .env("NO_COLOR", "1")
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
    let session = rexpect::session::spawn_command(shell, Some(20_000)).unwrap();
    let mut bash = rexpect::session::PtyReplSession::new(session, "PROMPT> ".to_string());
    bash.wait_for_prompt().unwrap();
    bash.send_line("rhizome logs -f sleeper").unwrap();
    bash.exp_regex(r"\n\d\d:\d\d:\d\d 5 +\[sleeper\] pid=")
        .expect("lines stream in");

    let pressed = Instant::now();
    bash.send_control('c').unwrap();
    bash.wait_for_prompt().expect("the prompt comes back");
    let took = pressed.elapsed();
    assert!(took < Duration::from_secs(1), "the prompt took {took:?}");

    bash.send_line("echo \"status=$?\"").unwrap();
    bash.exp_string("status=130").expect("ended by SIGINT");
    bash.wait_for_prompt().unwrap();
    bash.send_line("exit").unwrap();
    // Ctrl-C stopped the command, not the process it was following.
    assert_eq!(rh.process(id)["status"], "running");
}
