//! TAB completion in real shells: bash (with bash-completion), zsh and fish each load the
//! checked-in script from where an installed one is found, and we look at what they offer for
//! subcommands, flags, target names and process ids, with a daemon running and without one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A home with one configured target (`sim/api`, beside the built-in
/// `na-prod/billing-bookkeeper`) and two running processes, `sleeper` (id 1) and `web` (id 2).
struct Setup {
    rh: Rhizome,
    /// HOME and XDG directories for the shells, so that none touches the user's.
    scratch: tempfile::TempDir,
}

fn setup() -> Setup {
    let rh = Rhizome::new();
    write_config(
        &rh,
        "[environments.sim.services.api]\ncontext = \"sim\"\nnamespace = \"sim\"\nresource = \"svc/api\"\nremote_port = 80\nlocal_port = 18080\nscheme = \"http\"\n",
    );
    assert_eq!(rh.start(["sleeper", "--count", "1000"]).0, 1);
    assert_eq!(
        rh.start(["run", "--name", "web", "--", "sleep", "300"]).0,
        2
    );
    Setup {
        rh,
        scratch: tempfile::tempdir().unwrap(),
    }
}

impl Setup {
    /// `program` with `rhizome` on PATH being the binary under test, for this home.
    fn shell(&self, program: &Path) -> Command {
        let bin_dir = Path::new(BIN).parent().unwrap();
        let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        let scratch = self.scratch.path();
        let mut command = Command::new(program);
        command
            .env("PATH", path)
            .env("RHIZOME_HOME", self.rh.path())
            .env_remove("RHIZOME_CONFIG")
            .env_remove("RHIZOME_SIMULATE")
            .env_remove("COMPLETE")
            .env("HOME", scratch)
            .env("XDG_CONFIG_HOME", scratch.join("config"))
            .env("XDG_DATA_HOME", scratch.join("data"))
            .env("XDG_CACHE_HOME", scratch.join("cache"))
            .env("TERM", "xterm")
            // What is tested here is what is offered; a busy machine must not make ids vanish.
            .env("RHIZOME_COMPLETE_TIMEOUT_MS", "5000")
            .stdin(Stdio::null());
        command
    }

    /// Installs a checked-in script as `dir/name` and returns `dir`.
    fn install(&self, script: &str, dir: &str, name: &str) -> PathBuf {
        let dir = self.scratch.path().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            Path::new(REPO).join("completions").join(script),
            dir.join(name),
        )
        .unwrap();
        dir
    }
}

/// Runs a driver script and splits its output into (line completed, what the shell offered).
fn run_driver(mut command: Command, lines: &[&str]) -> Vec<(String, String)> {
    command.args(lines);
    let out = command.output().expect("the shell runs");
    let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        out.status.success(),
        "the shell failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in stdout.lines() {
        match line.strip_prefix("== ") {
            Some(completed) => blocks.push((completed.to_string(), String::new())),
            None => {
                if let Some((_, block)) = blocks.last_mut() {
                    block.push_str(line);
                    block.push('\n');
                }
            }
        }
    }
    assert_eq!(blocks.len(), lines.len(), "one answer per line:\n{stdout}");
    blocks
}

/// The lines every shell completes, and what must (and must not) be offered for each.
const LINES: [&str; 10] = [
    "rhizome ",
    "rhizome fo",
    "rhizome logs --fo",
    "rhizome --color ",
    "rhizome daemon ",
    "rhizome forward ",
    "rhizome forward si",
    "rhizome exec si",
    "rhizome logs ",
    "rhizome kill w",
];

fn check(shell: &str, offered: &[(String, Vec<String>)]) {
    let of = |line: &str| -> &Vec<String> {
        &offered
            .iter()
            .find(|(l, _)| l == line)
            .unwrap_or_else(|| panic!("{shell}: nothing for {line:?}"))
            .1
    };
    let has = |line: &str, wanted: &[&str]| {
        let got = of(line);
        for w in wanted {
            assert!(
                got.iter().any(|g| g == w),
                "{shell}: `{line}<TAB>` should offer {w}; it offered {got:?}"
            );
        }
    };
    let only = |line: &str, wanted: &[&str]| {
        assert_eq!(of(line), wanted, "{shell}: `{line}<TAB>`");
    };
    has(
        "rhizome ",
        &[
            "sleeper",
            "run",
            "ps",
            "logs",
            "kill",
            "daemon",
            "forward",
            "exec",
            "targets",
            "completions",
        ],
    );
    for hidden in ["__sleeper", "__simulate-forward", "__generate"] {
        assert!(
            !of("rhizome ").iter().any(|c| c == hidden),
            "{shell}: internal commands stay hidden"
        );
    }
    only("rhizome fo", &["forward"]);
    only("rhizome logs --fo", &["--follow"]);
    has("rhizome --color ", &["auto", "always", "never"]);
    has(
        "rhizome daemon ",
        &["start", "stop", "restart", "status", "run"],
    );
    has(
        "rhizome forward ",
        &["sim/api", "na-prod/billing-bookkeeper"],
    );
    only("rhizome forward si", &["sim/api"]);
    only("rhizome exec si", &["sim/api"]);
    has("rhizome logs ", &["1", "2", "sleeper", "web"]);
    only("rhizome kill w", &["web"]);
}

/// After the daemon is stopped: no ids, and completing did not start a daemon.
fn check_without_daemon(shell: &str, rh: &Rhizome, offered: &[String]) {
    assert!(
        offered.iter().any(|c| c == "--follow"),
        "{shell}: flags still complete: {offered:?}"
    );
    for id in ["1", "2", "sleeper", "web"] {
        assert!(
            !offered.iter().any(|c| c == id),
            "{shell}: no daemon, no ids: {offered:?}"
        );
    }
    assert!(!rh.daemon_running(), "{shell}: completing started a daemon");
}

const BASH_DRIVER: &str = r#"
source /usr/share/bash-completion/bash_completion
eval "$1"; shift
fn=$(complete -p rhizome | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
[[ -n $fn ]] || { echo "rhizome has no completion: $(complete -p rhizome 2>&1)" >&2; exit 1; }
for line in "$@"; do
    read -ra COMP_WORDS <<< "$line"
    [[ $line == *' ' ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMP_LINE=$line COMP_POINT=${#line} COMP_TYPE=9 COMP_KEY=9
    COMPREPLY=()
    "$fn" rhizome "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    echo "== $line"
    printf '%s\n' "${COMPREPLY[@]}"
done
"#;

#[test]
fn bash_with_bash_completion_completes_commands_flags_targets_and_ids() {
    let (Some(bash), Some(_)) = (
        require_tool("bash"),
        require_file(
            "/usr/share/bash-completion/bash_completion",
            "bash-completion",
        ),
    ) else {
        return;
    };
    let s = setup();
    // Where bash-completion looks for a user's completions: $BASH_COMPLETION_USER_DIR/completions.
    let dir = s.install("rhizome.bash", "bash/completions", "rhizome");
    // Found the way bash-completion finds an installed script (on the first TAB for a command
    // it has no completion for yet), or loaded by a profile.
    let installed = "_completion_loader rhizome";
    let sourced = "source <(COMPLETE=bash rhizome)";
    let bash_run = |init: &str, lines: &[&str]| {
        let mut command = s.shell(&bash);
        command
            .env("BASH_COMPLETION_USER_DIR", dir.parent().unwrap())
            .args(["--norc", "--noprofile", "-c", BASH_DRIVER, "bash", init]);
        run_driver(command, lines)
            .into_iter()
            .map(|(line, block)| (line, block.lines().map(String::from).collect()))
            .collect::<Vec<(String, Vec<String>)>>()
    };
    for init in [installed, sourced] {
        check(&format!("bash ({init})"), &bash_run(init, &LINES));
    }

    s.rh.ok(["daemon", "stop"]);
    check_without_daemon("bash", &s.rh, &bash_run(installed, &["rhizome logs "])[0].1);
}

const FISH_DRIVER: &str = r#"
set -p fish_complete_path $argv[1]
for line in $argv[2..]
    echo "== $line"
    complete -C"$line"
end
"#;

#[test]
fn fish_completes_commands_flags_targets_and_ids_with_descriptions() {
    let Some(fish) = require_tool("fish") else {
        return;
    };
    let s = setup();
    // Autoloaded on the first TAB from a directory on $fish_complete_path, as when installed in
    // ~/.config/fish/completions.
    let dir = s.install("rhizome.fish", "fish", "rhizome.fish");
    let fish_run = |lines: &[&str]| {
        let mut command = s.shell(&fish);
        command
            .args(["--no-config", "-c", FISH_DRIVER, "--"])
            .arg(&dir);
        run_driver(command, lines)
    };
    let blocks = fish_run(&LINES);
    let offered: Vec<(String, Vec<String>)> = blocks
        .iter()
        .map(|(line, block)| {
            let values = block
                .lines()
                .map(|l| l.split('\t').next().unwrap_or("").to_string())
                .collect();
            (line.clone(), values)
        })
        .collect();
    check("fish", &offered);
    let described = |line: &str| &blocks.iter().find(|(l, _)| l == line).unwrap().1;
    for wanted in ["1\tsleeper running", "2\tweb running", "web\tid 2, running"] {
        assert!(
            described("rhizome logs ").contains(wanted),
            "fish shows the status: {wanted:?} in {:?}",
            described("rhizome logs ")
        );
    }
    assert!(
        described("rhizome forward ").contains("sim/api\tservice sim/svc/api"),
        "{:?}",
        described("rhizome forward ")
    );

    s.rh.ok(["daemon", "stop"]);
    let (_, block) = &fish_run(&["rhizome logs "])[0];
    let values: Vec<String> = block
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect();
    check_without_daemon("fish", &s.rh, &values);
}

/// Completes each line in an interactive zsh on a pseudo-terminal (zsh's own zpty), by typing
/// it and TAB, after running the set-up line $1 (which loads the completion). Each candidate the
/// completion system is handed is printed as <<VALUE>>; the listing zsh draws follows.
const ZSH_DRIVER: &str = r#"
zmodload zsh/zpty zsh/datetime
local init=$1; shift
zpty rh zsh -f -i
local out chunk deadline
# Reads until the shell prints @@done@@ (the command asking for it echoes as '@@''done@@').
await() {
    out=
    deadline=$(( EPOCHREALTIME + 20 ))
    while [[ $out != *'@@done@@'* ]] && (( EPOCHREALTIME < deadline )); do
        zpty -rt rh chunk && out+=$chunk || sleep 0.01
    done
    [[ $out == *'@@done@@'* ]] || { print -u2 "zsh did not answer: $out"; exit 1 }
}
zpty -w rh "PROMPT='> '; RPROMPT=''; $init"
zpty -w rh 'compadd() { local -a __m; builtin compadd -O __m "$@"; print -rl -- "<""<"${^__m}">"">"; builtin compadd "$@" }'
zpty -w rh "bindkey '^I' complete-word; print -r -- '@@''done@@'"
await
local line
for line in "$@"; do
    zpty -n -w rh "$line"$'\t'
    zpty -n -w rh $'\x15'
    zpty -w rh "print -r -- '@@''done@@'"
    await
    print -r -- "== $line"
    print -r -- "$out"
done
zpty -d rh
"#;

/// The <<VALUE>> candidates in a zsh block, each once, in order.
fn zsh_candidates(block: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = block;
    while let Some(start) = rest.find("<<") {
        let Some(len) = rest[start + 2..].find(">>") else {
            break;
        };
        let value = &rest[start + 2..start + 2 + len];
        if !found.iter().any(|f| f == value) {
            found.push(value.to_string());
        }
        rest = &rest[start + 2 + len + 2..];
    }
    found
}

#[test]
fn zsh_completes_commands_flags_targets_and_ids_with_descriptions() {
    let Some(zsh) = require_tool("zsh") else {
        return;
    };
    let s = setup();
    // On $fpath, as `_rhizome`: the way compinit finds an installed completion.
    let dir = s.install("_rhizome", "zsh", "_rhizome");
    let installed = format!(
        "fpath=({} $fpath); autoload -Uz compinit; compinit -u -D",
        dir.display()
    );
    // And as a profile loads it.
    let sourced = "autoload -Uz compinit; compinit -u -D; source <(COMPLETE=zsh rhizome)";
    let zsh_run = |init: &str, lines: &[&str]| {
        let mut command = s.shell(&zsh);
        command.args(["-f", "-c", ZSH_DRIVER, "zsh", init]);
        run_driver(command, lines)
    };
    for init in [installed.as_str(), sourced] {
        let blocks = zsh_run(init, &LINES);
        let offered: Vec<(String, Vec<String>)> = blocks
            .iter()
            .map(|(line, block)| (line.clone(), zsh_candidates(block)))
            .collect();
        check(&format!("zsh ({init})"), &offered);
        let listing = &blocks.iter().find(|(l, _)| l == "rhizome logs ").unwrap().1;
        for wanted in ["-- sleeper running", "-- id 2, running"] {
            assert!(
                listing.contains(wanted),
                "zsh lists the status ({wanted:?}): {listing}"
            );
        }
    }

    s.rh.ok(["daemon", "stop"]);
    let (_, block) = &zsh_run(&installed, &["rhizome logs "])[0];
    check_without_daemon("zsh", &s.rh, &zsh_candidates(block));
}

/// What the shells run on TAB, timed: with a daemon that answers, and with one that accepted the
/// connection but never answers (completion must give up on it quickly, and offer no ids).
#[test]
fn completing_ids_is_quick_and_never_hangs_on_a_silent_daemon() {
    let complete = |rh: &Rhizome| {
        let start = Instant::now();
        let out = rh
            .command(["--", "rhizome", "logs", ""])
            .env("COMPLETE", "fish")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            start.elapsed(),
        )
    };

    let rh = Rhizome::new();
    rh.start(["sleeper", "--count", "1000"]);
    // Within the default budget; as a person would, TAB again if a busy machine made one slow.
    let (_, took) = (0..3)
        .map(|_| complete(&rh))
        .find(|(offered, _)| offered.contains("1\tsleeper running"))
        .expect("the ids of a running daemon are offered");
    eprintln!("completing ids took {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    drop(rh);

    let rh = Rhizome::new();
    // Accepts connections (the kernel does) but never reads or answers.
    let _silent = std::os::unix::net::UnixListener::bind(rh.path().join("rhizome.sock")).unwrap();
    let (offered, took) = complete(&rh);
    assert!(offered.contains("--follow"), "{offered}");
    assert!(!offered.contains("sleeper"), "{offered}");
    assert!(took < Duration::from_secs(2), "gave up after {took:?}");
    assert!(!rh.daemon_running(), "completing started a daemon");
}

/// The lines of `run` each shell completes, and what must (and must not) be offered: after `--`
/// the programs on PATH and the executables and directories here, then files for the program's
/// arguments; before `--` no program (it would be refused). Paths start at `--cwd`, as the
/// command will.
const RUN_LINES: [&str; 6] = [
    "rhizome run -- rhizome-test-t",
    "rhizome run -- ./",
    "rhizome run --cwd sub -- ./",
    "rhizome run --name x -- cat no",
    "rhizome run rhizome-test-t",
    "rhizome run --cwd su",
];

/// A home with no daemon, a program `rhizome-test-tool` on PATH, and a directory to complete in:
/// `serve.sh` (executable), `notes.txt` and `sub/` (with `inner.sh`, executable).
struct RunSetup {
    s: Setup,
    tools: PathBuf,
    here: PathBuf,
}

fn run_setup() -> RunSetup {
    let s = Setup {
        rh: Rhizome::new(),
        scratch: tempfile::tempdir().unwrap(),
    };
    let tools = s.scratch.path().join("tools");
    let here = s.scratch.path().join("here");
    for dir in [&tools, &here.join("sub")] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let make = |file: PathBuf, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    make(tools.join("rhizome-test-tool"), 0o755);
    make(here.join("serve.sh"), 0o755);
    make(here.join("notes.txt"), 0o644);
    make(here.join("sub/inner.sh"), 0o755);
    RunSetup { s, tools, here }
}

impl RunSetup {
    /// `program`, as `Setup::shell` runs it, with the tools on PATH too, in the directory `here`.
    fn shell(&self, program: &Path) -> Command {
        let mut command = self.s.shell(program);
        let path = command
            .get_envs()
            .find(|(k, _)| *k == "PATH")
            .and_then(|(_, v)| v.map(|v| v.to_os_string()))
            .unwrap();
        let path = std::env::join_paths(
            std::iter::once(self.tools.clone()).chain(std::env::split_paths(&path)),
        )
        .unwrap();
        command.env("PATH", path).current_dir(&self.here);
        command
    }
}

fn check_run(shell: &str, offered: &[(String, Vec<String>)]) {
    let of = |line: &str| -> Vec<String> {
        offered
            .iter()
            .find(|(l, _)| l == line)
            .unwrap_or_else(|| panic!("{shell}: nothing for {line:?}"))
            .1
            .iter()
            // zsh takes the `/` of a directory as its suffix.
            .map(|c| c.trim_end_matches('/').to_string())
            .collect()
    };
    // In any order: zsh lists directories apart.
    let only = |line: &str, wanted: &[&str]| {
        let mut got = of(line);
        got.sort();
        assert_eq!(got, wanted, "{shell}: `{line}<TAB>`");
    };
    only("rhizome run -- rhizome-test-t", &["rhizome-test-tool"]);
    only("rhizome run -- ./", &["./serve.sh", "./sub"]);
    only("rhizome run --cwd sub -- ./", &["./inner.sh"]);
    only("rhizome run --name x -- cat no", &["notes.txt"]);
    only("rhizome run rhizome-test-t", &[]);
    only("rhizome run --cwd su", &["sub"]);
}

#[test]
fn bash_completes_programs_and_files_after_run_dashes() {
    let (Some(bash), Some(_)) = (
        require_tool("bash"),
        require_file(
            "/usr/share/bash-completion/bash_completion",
            "bash-completion",
        ),
    ) else {
        return;
    };
    let r = run_setup();
    let mut command = r.shell(&bash);
    command.args([
        "--norc",
        "--noprofile",
        "-c",
        BASH_DRIVER,
        "bash",
        "source <(COMPLETE=bash rhizome)",
    ]);
    // `printf` prints one empty line for no candidates.
    let offered: Vec<(String, Vec<String>)> = run_driver(command, &RUN_LINES)
        .into_iter()
        .map(|(line, block)| {
            let values = block.lines().filter(|l| !l.is_empty()).map(String::from);
            (line, values.collect())
        })
        .collect();
    check_run("bash", &offered);
}

#[test]
fn zsh_completes_programs_and_files_after_run_dashes() {
    let Some(zsh) = require_tool("zsh") else {
        return;
    };
    let r = run_setup();
    let dir = r.s.install("_rhizome", "zsh", "_rhizome");
    let init = format!(
        "fpath=({} $fpath); autoload -Uz compinit; compinit -u -D",
        dir.display()
    );
    let mut command = r.shell(&zsh);
    command.args(["-f", "-c", ZSH_DRIVER, "zsh", &init]);
    let offered: Vec<(String, Vec<String>)> = run_driver(command, &RUN_LINES)
        .iter()
        .map(|(line, block)| (line.clone(), zsh_candidates(block)))
        .collect();
    check_run("zsh", &offered);
}

#[test]
fn fish_completes_programs_and_files_after_run_dashes() {
    let Some(fish) = require_tool("fish") else {
        return;
    };
    let r = run_setup();
    let dir = r.s.install("rhizome.fish", "fish", "rhizome.fish");
    let mut command = r.shell(&fish);
    command
        .args(["--no-config", "-c", FISH_DRIVER, "--"])
        .arg(&dir);
    let blocks = run_driver(command, &RUN_LINES);
    let offered: Vec<(String, Vec<String>)> = blocks
        .iter()
        .map(|(line, block)| {
            let values = block
                .lines()
                .map(|l| l.split('\t').next().unwrap_or("").to_string())
                .collect();
            (line.clone(), values)
        })
        .collect();
    check_run("fish", &offered);
    let (_, tool) = &blocks[0];
    assert!(
        tool.contains(&format!("rhizome-test-tool\t{}", r.tools.display())),
        "fish describes a program by its directory: {tool:?}"
    );
}
