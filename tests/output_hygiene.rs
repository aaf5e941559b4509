//! Output a person or a pipe can trust: a reader that goes away (`| head`) ends a command
//! quietly, a stdout or stderr that cannot take more is one `error:` line (never a panic), and
//! what a managed process writes cannot drive the terminal `rhizome` runs in.

mod common;

use std::fs::File;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// A pipe as small as Linux allows (one page): a command with more to say than that blocks until
/// the reader reads, so a reader that leaves early always meets a writer that still writes.
fn small_pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    nix::fcntl::fcntl(writer.as_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096))
        .expect("the pipe can be made small");
    (reader, writer)
}

/// Runs `rhizome ARGS | READER...` through a small pipe and returns rhizome's result and what the
/// reader printed.
fn piped_into(rh: &Rhizome, args: &[&str], reader: &[&str]) -> (Out, String) {
    let (read_end, write_end) = small_pipe();
    let head = Command::new(reader[0])
        .args(&reader[1..])
        .stdin(read_end)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the reader starts");
    let rhizome = rh
        .command(args)
        .stdout(write_end)
        .stderr(Stdio::piped())
        .spawn()
        .expect("rhizome starts");
    // Both ends now belong to the children alone: the reader's exit closes the pipe.
    let shown = head.wait_with_output().expect("the reader ends");
    let out = rhizome.wait_with_output().expect("rhizome ends").into();
    (out, String::from_utf8_lossy(&shown.stdout).into_owned())
}

/// Starts `count` sleeping processes, four clients at a time. Their long name makes `ps` long
/// without starting more of them.
fn start_sleepers(rh: &Rhizome, count: usize) {
    let start = || rh.ok(["run", "--name", SLEEPER, "--", "sleep", "1000"]);
    start();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..(count - 1).div_ceil(4) {
                    start();
                }
            });
        }
    });
}

const SLEEPER: &str = "a-sleeping-process-with-a-long-name";

#[test]
fn a_reader_that_leaves_early_ends_the_command_quietly() {
    if require_tool("head").is_none() {
        return;
    }
    let rh = Rhizome::new();
    start_sleepers(&rh, 200);
    // More than the pipe holds twice over: rhizome is still writing when the reader leaves.
    let table = rh.ok(["ps"]);
    assert!(table.len() > 3 * 4096, "{} bytes", table.len());

    let (out, shown) = piped_into(&rh, &["ps"], &["head", "-1"]);
    assert!(
        shown.starts_with("ID ") && shown.contains("NAME") && shown.lines().count() == 1,
        "the first line: {shown:?}"
    );
    assert_eq!(out.code, Some(0), "`ps | head -1` ends cleanly: {out:?}");
    assert_eq!(out.stderr, "", "and quietly: {out:?}");

    let (out, shown) = piped_into(&rh, &["ps", "--json"], &["head", "-c", "10"]);
    assert!(
        shown.len() == 10 && shown.starts_with('{'),
        "the first ten bytes: {shown:?}"
    );
    assert_eq!(out.code, Some(0), "`ps --json | head -c 10`: {out:?}");
    assert_eq!(out.stderr, "", "{out:?}");

    let (out, _) = piped_into(&rh, &["ps", "--all"], &["true"]);
    assert_eq!(out.code, Some(0), "a reader that reads nothing: {out:?}");
    assert_eq!(out.stderr, "", "{out:?}");
}

/// `rhizome ARGS` with stdout going to /dev/full, which refuses every write with ENOSPC.
fn into_full(rh: &Rhizome, args: &[&str]) -> Out {
    let full = File::options().write(true).open("/dev/full").unwrap();
    rh.command(args).stdout(full).output().unwrap().into()
}

fn assert_one_stdout_error(args: &[&str], out: &Out) {
    assert_eq!(out.code, Some(1), "`rhizome {}`: {out:?}", args.join(" "));
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "`rhizome {}`: one line on stderr: {out:?}",
        args.join(" ")
    );
    assert!(
        lines[0].starts_with("error: ")
            && lines[0].contains("stdout")
            && lines[0].contains("No space left on device"),
        "the error names stdout and the OS error: {out:?}"
    );
}

#[test]
fn a_full_stdout_is_one_error_line_and_exit_1() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("SKIPPED: no /dev/full");
        return;
    }
    let rh = Rhizome::new();
    // The process starts even though its `started` line cannot be printed.
    let out = into_full(&rh, &["run", "--name", "napper", "--", "sleep", "1000"]);
    assert_one_stdout_error(&["run"], &out);
    wait_for("napper to run", Duration::from_secs(10), || {
        rh.processes()
            .iter()
            .any(|p| p["name"] == "napper" && p["status"] == "running")
            .then_some(())
    });
    for args in [
        &["ps"][..],
        &["ps", "--json"],
        &["targets"],
        &["targets", "--json"],
        &["daemon", "status"],
        &[],
        &["logs", "napper"],
        &["completions", "bash"],
        &["kill", "napper"],
        &["daemon", "stop"],
    ] {
        assert_one_stdout_error(args, &into_full(&rh, args));
    }
    assert!(!rh.daemon_running(), "`daemon stop` did stop it");
}

#[test]
fn a_full_stderr_never_panics() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("SKIPPED: no /dev/full");
        return;
    }
    let rh = Rhizome::new();
    rh.ok(["daemon", "start"]);
    for (args, code) in [
        (&["kill", "nosuch"][..], 1),
        (&["logs", "nosuch"], 1),
        // Says `nothing is running` on stderr.
        (&["kill", "--all"], 0),
    ] {
        let full = File::options().write(true).open("/dev/full").unwrap();
        let out: Out = rh.command(args).stderr(full).output().unwrap().into();
        assert_eq!(
            out.code,
            Some(code),
            "`rhizome {}` with stderr full: {out:?}",
            args.join(" ")
        );
    }
}

/// What the hostile process writes: a window title, a cleared screen, the clipboard (OSC 52),
/// and a carriage return that paints a forged `subprocess finished` line over a real one.
const HOSTILE: &str = r"printf 'a\033]0;pwned title\007b\n\033[2Jcleared\n\033]52;c;cHduZWQ=\007clip\nworking\r12:00:00 subprocess finished (exit 0)\n'";

#[test]
fn a_process_cannot_drive_the_terminal_through_logs() {
    let rh = Rhizome::new();
    rh.ok(["run", "--name", "evil", "--", "sh", "-c", HOSTILE]);
    let finished = |log: &[u8]| {
        String::from_utf8_lossy(log)
            .matches("subprocess finished")
            .count()
            >= 2
    };
    let piped = wait_for("evil to finish", Duration::from_secs(10), || {
        let out = rh.command(["logs", "evil"]).output().unwrap();
        finished(&out.stdout).then_some(out.stdout)
    });
    // In a pipe, the bytes the process wrote, exactly.
    for exact in [
        &b"a\x1b]0;pwned title\x07b "[..],
        b"\x1b[2Jcleared ",
        b"\x1b]52;c;cHduZWQ=\x07clip ",
        b"working\r12:00:00 subprocess finished (exit 0) ",
    ] {
        assert!(
            piped.windows(exact.len()).any(|w| w == exact),
            "{:?} in {:?}",
            String::from_utf8_lossy(exact),
            String::from_utf8_lossy(&piped)
        );
    }
    let raw = rh.command(["logs", "--raw", "evil"]).output().unwrap();
    assert!(
        raw.stdout.windows(12).any(|w| w == b"\x1b[2Jcleared\n"),
        "--raw in a pipe is exact too: {:?}",
        String::from_utf8_lossy(&raw.stdout)
    );

    // On a terminal, every control character is shown, not obeyed; colors are rhizome's own.
    for args in [
        &["logs", "evil"][..],
        &["logs", "--raw", "evil"],
        &["--color", "never", "logs", "evil"],
        &["logs", "--grep", "clip", "evil"],
    ] {
        let shown = terminal_output(on_terminal(&rh, args));
        let what = format!("`rhizome {}` on a terminal: {shown:?}", args.join(" "));
        assert!(!shown.contains("\x1b]"), "no OSC sequence: {what}");
        assert!(!shown.contains('\x07'), "no BEL: {what}");
        assert!(!shown.contains("\x1b[2J"), "no clear screen: {what}");
        assert!(
            !shown.replace("\r\n", "\n").contains('\r'),
            "no carriage return but the terminal's own: {what}"
        );
        let escaped = if args.contains(&"--grep") {
            r"\x1b]52;c;cHduZWQ=\x07clip"
        } else {
            r"a\x1b]0;pwned title\x07b"
        };
        assert!(shown.contains(escaped), "{escaped} visible: {what}");
        if !args.contains(&"--grep") {
            let screen = screen(&shown);
            assert!(
                screen
                    .lines()
                    .any(|l| l.contains(r"working\r12:00:00 subprocess finished (exit 0)")),
                "the forged line reads as part of the line it hides in: {screen}"
            );
            assert!(screen.contains(r"\x1b[2Jcleared"), "{screen}");
        }
    }
}

#[test]
fn names_and_errors_are_shown_escaped_even_in_a_pipe() {
    let rh = Rhizome::new();
    let hostile = "evil\x1b]0;pwned\x07\rname";
    let escaped = r"evil\x1b]0;pwned\x07\rname";

    // An error message the daemon builds from what the user typed.
    let out = rh.run(["logs", hostile]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        !out.stderr.contains('\x1b') && !out.stderr.contains('\r'),
        "{out:?}"
    );
    assert!(out.stderr.contains(escaped), "{out:?}");

    // A process named so is refused, and the refusal cannot drive the terminal either. Were
    // such a name let in, it would be shown escaped wherever rhizome shows it to a person.
    let out = rh.run(["run", "--name", hostile, "--", "sleep", "1000"]);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains('\x1b') && !all.contains('\r'), "{out:?}");
    if out.code != Some(0) {
        assert!(out.stderr.starts_with("error: "), "{out:?}");
        return;
    }
    assert!(out.stdout.contains(escaped), "{out:?}");
    for args in [&["ps"][..], &["kill", "--all"]] {
        let out = rh.run(args);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(!out.stdout.contains('\x1b'), "{out:?}");
        assert!(out.stdout.contains(escaped), "{out:?}");
    }
}

/// `rhizome ARGS` for this home, on a terminal that has colors.
fn on_terminal(rh: &Rhizome, args: &[&str]) -> Command {
    let mut command = rh.command(args);
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
    let bytes: Vec<u8> = session
        .exp_eof()
        .expect("the command ends")
        .chars()
        .map(|c| c as u32 as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The screen a person would be left looking at.
fn screen(output: &str) -> String {
    let size = |n| std::num::NonZeroU16::new(n).unwrap();
    let mut parser = vt100::Parser::new(size(24), size(200), 0);
    parser.process(output.as_bytes());
    parser.screen().contents()
}
