//! The logs of several processes at once (issue 13, item 8): `rhizome logs NAME NAME...` and
//! `logs --all` interleave by time behind a `[name]` prefix, `-n` counts per process, `-f`
//! follows them all (with `--all`, those started later too), and one process reads as before.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

/// Lines with their time stamps and pids made alike, to pin what a user sees.
fn normalized(text: &str) -> String {
    let stamp = regex::Regex::new(r"\b\d\d:\d\d:\d\d\b").unwrap();
    let pid = regex::Regex::new(r"pid=\d+").unwrap();
    let text = stamp.replace_all(text, "HH:MM:SS");
    pid.replace_all(&text, "pid=N").into_owned()
}

/// A shell command line that waits for the file `go` before going on.
fn after(go: &Path) -> String {
    format!("until [ -e '{}' ]; do sleep 0.02; done", go.display())
}

fn go(rh: &Rhizome, name: &str) -> PathBuf {
    rh.path().join(name)
}

/// Waits until the log of `target` has a line with `text`.
fn wait_log(rh: &Rhizome, target: &str, text: &str) {
    wait_for(
        &format!("{target}'s log to say {text}"),
        Duration::from_secs(10),
        || rh.logs(target).contains(text).then_some(()),
    );
}

/// Waits until the clock has passed the second it is in now, so that what is written next has
/// a later stamp than what was written before.
fn next_second() {
    let second = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let now = second();
    wait_for("the next second", Duration::from_secs(3), || {
        (second() > now).then_some(())
    });
}

/// Starts `run --name NAME -- sh -c SCRIPT`.
fn start(rh: &Rhizome, name: &str, script: &str) -> u64 {
    rh.start(["run", "--name", name, "--", "sh", "-c", script])
        .0
}

#[test]
fn several_logs_interleave_by_time_behind_their_names() {
    let rh = Rhizome::new();
    let (w2, d1) = (go(&rh, "w2"), go(&rh, "d1"));
    start(
        &rh,
        "web",
        &format!("echo w1; {}; echo w2; exec sleep 1000", after(&w2)),
    );
    wait_log(&rh, "web", " w1 ");
    start(
        &rh,
        "database",
        &format!("{}; echo d1; exec sleep 1000", after(&d1)),
    );
    // w1, then d1 a second later, then w2 a second after that: their stamps say the order.
    next_second();
    std::fs::write(&d1, "").unwrap();
    wait_log(&rh, "database", " d1 ");
    next_second();
    std::fs::write(&w2, "").unwrap();
    wait_log(&rh, "web", " w2 ");

    let both = rh.ok(["logs", "web", "database"]);
    assert_eq!(
        normalized(&both),
        "\
[web]      HH:MM:SS subprocess started             pid=N
[web]      HH:MM:SS w1                             pid=N
[database] HH:MM:SS subprocess started             pid=N
[database] HH:MM:SS d1                             pid=N
[web]      HH:MM:SS w2                             pid=N
",
        "{both}"
    );
    assert_eq!(rh.ok(["logs", "--all"]), both, "--all: every running one");
    let named_the_other_way = rh.ok(["logs", "database", "web"]);
    assert_eq!(
        named_the_other_way
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2).filter(|w| w.len() == 2))
            .collect::<Vec<_>>(),
        ["w1", "d1", "w2"],
        "time decides the order, not the order named: {named_the_other_way}"
    );
    // What the processes wrote, for `jq` and friends: no prefix, no daemon lines.
    assert_eq!(rh.ok(["logs", "--raw", "web", "database"]), "w1\nd1\nw2\n");
    // One process reads exactly as it did: no prefix, its name at the end.
    let one = rh.ok(["logs", "web"]);
    assert_eq!(
        normalized(&one),
        "\
HH:MM:SS subprocess started             [web] pid=N
HH:MM:SS w1                             [web] pid=N
HH:MM:SS w2                             [web] pid=N
"
    );
}

#[test]
fn lines_count_per_process_and_the_filters_still_apply() {
    let rh = Rhizome::new();
    for name in ["a", "b", "c"] {
        start(&rh, name, "seq 1 5; exec sleep 1000");
        wait_log(&rh, name, " 5 ");
    }
    let texts = |out: &str| -> Vec<String> {
        out.lines()
            .map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                format!("{} {}", words[0], words[2])
            })
            .collect()
    };
    let last_two = rh.ok(["logs", "--all", "-n", "2"]);
    let mut shown = texts(&last_two);
    shown.sort();
    assert_eq!(
        shown,
        ["[a] 4", "[a] 5", "[b] 4", "[b] 5", "[c] 4", "[c] 5"],
        "{last_two}"
    );
    // With a filter, the last N that match, of each.
    let matching = rh.ok(["logs", "a", "c", "--grep", "^[13]$", "-n", "1"]);
    assert_eq!(texts(&matching), ["[a] 3", "[c] 3"], "{matching}");
    let recent = rh.ok(["logs", "b", "c", "--since", "1h", "-n", "1"]);
    assert_eq!(texts(&recent), ["[b] 5", "[c] 5"], "{recent}");
    let raw = rh.ok(["logs", "--raw", "--all", "-n", "1"]);
    assert_eq!(raw, "5\n5\n5\n");
    // One process named twice is shown once.
    let twice = rh.ok(["logs", "1", "a", "-n", "1"]);
    assert_eq!(texts(&twice), ["[a] 5"], "{twice}");
}

#[test]
fn follow_shows_every_one_until_all_have_ended() {
    let rh = Rhizome::new();
    let (x, y) = (go(&rh, "x"), go(&rh, "y"));
    start(&rh, "x", &format!("{}; echo from-x", after(&x)));
    start(&rh, "y", &format!("{}; echo from-y", after(&y)));
    let mut follower = Proc::spawn(
        rh.command(["logs", "-f", "x", "y"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "logs -f x y",
    );
    let stdout = Collector::new(follower.child.stdout.take().unwrap());
    let started = |name: &'static str| {
        move |l: &str| (l.starts_with(name) && l.contains("subprocess started")).then_some(())
    };
    stdout
        .wait_line(Duration::from_secs(10), started("[y]"))
        .expect("the follower shows what y's log holds");
    std::fs::write(&y, "").unwrap();
    stdout
        .wait_line(Duration::from_secs(10), |l| {
            l.starts_with("[y] ").then_some(())
        })
        .expect("y's new line");
    assert!(
        follower.wait_timeout(Duration::from_millis(200)).is_none(),
        "x has not ended: still following"
    );
    std::fs::write(&x, "").unwrap();
    let end = follower.finish(Duration::from_secs(10));
    assert_eq!(end.code, Some(0), "{end:?}");
    let log = stdout.text();
    for name in ["x", "y"] {
        let prefix = format!("[{name}] ");
        let own: Vec<&str> = log.lines().filter(|l| l.starts_with(&prefix)).collect();
        assert!(
            own.iter().any(|l| l.contains(&format!(" from-{name} "))),
            "{log}"
        );
        assert!(
            own.last().unwrap().contains("subprocess finished (exit 0)"),
            "{log}"
        );
    }
}

/// `logs --all -f` is a window on the daemon, as `pm2 logs` is: a process started while it
/// follows shows up in it; it ends when the daemon stops.
#[test]
fn follow_all_takes_in_processes_started_later() {
    let rh = Rhizome::new();
    let mut follower = Proc::spawn(
        rh.command(["logs", "--all", "-f"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "logs --all -f",
    );
    let stdout = Collector::new(follower.child.stdout.take().unwrap());
    let stderr = Collector::new(follower.child.stderr.take().unwrap());
    stderr
        .wait_line(Duration::from_secs(10), |l| {
            (l == "rhizome: no process is running yet; waiting for one to start (Ctrl-C stops)")
                .then_some(())
        })
        .expect("it says it waits");
    start(&rh, "late", "echo hello from late; exec sleep 1000");
    stdout
        .wait_line(Duration::from_secs(10), |l| {
            (l.starts_with("[late] ") && l.contains(" hello from late ")).then_some(())
        })
        .expect("the new process's lines");
    start(&rh, "later", "echo and from later; exec sleep 1000");
    stdout
        .wait_line(Duration::from_secs(10), |l| {
            (l.starts_with("[later] ") && l.contains(" and from later ")).then_some(())
        })
        .expect("another one's lines");
    rh.ok(["daemon", "stop"]);
    let end = follower.finish(Duration::from_secs(10));
    assert_eq!(end.code, Some(0), "the daemon stopped everything: {end:?}");
    let log = stdout.text();
    for name in ["[late]  ", "[later] "] {
        let last = log.lines().rfind(|l| l.starts_with(name)).unwrap();
        assert!(
            last.contains("subprocess finished (signal SIGTERM)"),
            "{log}"
        );
    }
}

#[test]
fn each_process_has_a_color_of_its_own_where_colors_are_on() {
    let rh = Rhizome::new();
    for name in ["a", "b", "c"] {
        start(&rh, name, &format!("echo {name}-says; exec sleep 1000"));
        wait_log(&rh, name, "-says");
    }
    let colored = |args: &[&str]| {
        let out = rh
            .command(["--color", "always", "logs"].iter().chain(args))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    // The escape sequence in front of `[name]`, per name.
    let color_of = |out: &str, name: &str| -> String {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("[{name}]")))
            .unwrap_or_else(|| panic!("no [{name}] in {out:?}"));
        let at = line.find(&format!("[{name}]")).unwrap();
        assert!(at > 0, "no color before [{name}]: {line:?}");
        line[..at].to_string()
    };
    let abc = colored(&["a", "b", "c"]);
    let (a, b, c) = (
        color_of(&abc, "a"),
        color_of(&abc, "b"),
        color_of(&abc, "c"),
    );
    assert!(
        a.starts_with("\x1b[") && a != b && b != c && a != c,
        "{abc:?}"
    );
    // The same process keeps its color, whatever it is shown with.
    assert_eq!(color_of(&colored(&["c", "a"]), "a"), a);
    assert_eq!(color_of(&colored(&["--all"]), "c"), c);
    // No colors in a pipe, with NO_COLOR, or with --color never.
    let plain = rh.ok(["logs", "a", "b"]);
    assert!(!plain.contains('\x1b'), "{plain:?}");
    let never = rh
        .command(["--color", "never", "logs", "a", "b"])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(!never.stdout.contains(&0x1b), "{never:?}");
}

#[test]
fn several_names_are_all_found_or_nothing_is_shown() {
    let rh = Rhizome::new();
    start(&rh, "web", "echo hi; exec sleep 1000");
    let out = rh.run(["logs", "web", "nosuch"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("no managed process is named `nosuch`"),
        "{}",
        out.stderr
    );
    let out = rh.run(["logs"]);
    assert_eq!(out.code, Some(2), "a name or --all is needed: {out:?}");
    let out = rh.run(["logs", "--all", "web"]);
    assert_eq!(out.code, Some(2), "names or --all, not both: {out:?}");

    rh.ok(["kill", "web"]);
    let out = rh.run(["logs", "--all"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "rhizome: no process is running; `rhizome ps --all` lists finished ones, \
         `rhizome logs ID` prints one's log\n"
    );
}
