//! `rhizome sleeper` and `rhizome run`: ask the daemon to start a process.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::ValueEnum;

use super::exit::Exit;
use super::output;
use super::sanitize;
use super::{Client, Failure, unexpected};
use crate::cli::{Restart, RunArgs, SleeperArgs};
use crate::names;
use crate::paths::Paths;
use crate::protocol::{ClientContext, CommandKind, Request, Response, RestartPolicy, SpawnRequest};

pub async fn sleeper(paths: &Paths, args: &SleeperArgs) -> anyhow::Result<Exit> {
    let exe = std::env::current_exe().context("could not find the rhizome executable")?;
    let argv: [std::ffi::OsString; 6] = [
        exe.into_os_string(),
        "__sleeper".into(),
        "--count".into(),
        args.count.to_string().into(),
        "--interval".into(),
        args.interval.to_string().into(),
    ];
    let request = SpawnRequest {
        name: "sleeper".into(),
        kind: CommandKind::Sleeper,
        argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        restart: RestartPolicy::Never,
        context: super::context()?,
        max_restarts: None,
    };
    start(paths, request).await
}

pub async fn run(paths: &Paths, args: &RunArgs) -> anyhow::Result<Exit> {
    if !args.before.is_empty() {
        return Err(before_the_dashes(args).into());
    }
    if args.max_restarts.is_some() && args.restart == Restart::Never {
        return Err(usage(
            Failure::new("--max-restarts limits restarts, and without --restart there are none")
                .hint("add --restart on-failure (or --restart always)"),
        )
        .into());
    }
    let name = name(args)?;
    let context = run_context(args)?;
    let cwd = PathBuf::from(OsString::from_vec(context.cwd.clone()));
    let request = SpawnRequest {
        name,
        kind: CommandKind::Run,
        argv: args.command.iter().map(|a| a.as_bytes().to_vec()).collect(),
        restart: args.restart.into(),
        context,
        max_restarts: args.max_restarts,
    };
    let program = args.command[0].clone();
    start(paths, request)
        .await
        .map_err(|err| teach(err, &program, &cwd))
}

/// The directory and environment the command runs with: this shell's, with `--cwd` (relative to
/// this shell's directory, and checked here so that a missing one is refused before anything
/// starts; `PWD` follows it) and then every `--env`, the last of one key winning.
fn run_context(args: &RunArgs) -> anyhow::Result<ClientContext> {
    let mut context = super::context()?;
    if let Some(dir) = &args.cwd {
        let here = PathBuf::from(OsString::from_vec(context.cwd.clone()));
        let cwd = here.join(dir);
        check_dir(dir, &cwd, &here)?;
        set_var(&mut context.env, OsStr::new("PWD"), cwd.as_os_str());
        context.cwd = cwd.into_os_string().into_vec();
    }
    for var in &args.env {
        set_var(&mut context.env, &var.key, &var.value);
    }
    Ok(context)
}

/// Refuses a `--cwd` that is not a directory one can run in, naming the path it was taken as.
fn check_dir(given: &Path, cwd: &Path, here: &Path) -> Result<(), Failure> {
    let shown = given.display();
    let problem = match std::fs::metadata(cwd) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => format!("--cwd {shown}: {} is not a directory", cwd.display()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            format!("--cwd {shown}: {} does not exist", cwd.display())
        }
        Err(err) => format!("--cwd {shown}: {} cannot be used: {err}", cwd.display()),
    };
    let hint = if given.starts_with("~") {
        "`~` was not expanded by the shell; write $HOME/... or put --cwd and the path in two words"
            .to_string()
    } else {
        format!(
            "a relative --cwd starts at this shell's directory, {}",
            here.display()
        )
    };
    Err(usage(Failure::new(problem).hint(hint)))
}

/// Sets `key` in `env`, in place of any value it had.
fn set_var(env: &mut Vec<(Vec<u8>, Vec<u8>)>, key: &OsStr, value: &OsStr) {
    let (key, value) = (key.as_bytes().to_vec(), value.as_bytes().to_vec());
    env.retain(|(k, _)| *k != key);
    env.push((key, value));
}

/// A failure in what was typed: exit code 2, as clap's own.
fn usage(mut failure: Failure) -> Failure {
    failure.code = Exit::Usage;
    failure
}

/// `rhizome run prog ...`: the command goes after `--`, so that its flags stay its own. Said
/// with the command line that would have worked.
fn before_the_dashes(args: &RunArgs) -> Failure {
    let mut fixed = vec!["rhizome run".to_string()];
    if let Some(name) = &args.name {
        fixed.push(format!("--name {}", quoted(name)));
    }
    if let Some(restart) = args
        .restart
        .to_possible_value()
        .filter(|_| args.restart != Restart::Never)
    {
        fixed.push(format!("--restart {}", restart.get_name()));
    }
    if let Some(max) = args.max_restarts {
        fixed.push(format!("--max-restarts {max}"));
    }
    for var in &args.env {
        let mut word = var.key.clone();
        word.push("=");
        word.push(&var.value);
        fixed.push(format!("--env {}", quoted(&word.to_string_lossy())));
    }
    if let Some(dir) = &args.cwd {
        fixed.push(format!("--cwd {}", quoted(&dir.to_string_lossy())));
    }
    fixed.push("--".into());
    fixed.extend(
        args.before
            .iter()
            .chain(&args.command)
            .map(|word| quoted(&word.to_string_lossy())),
    );
    usage(
        Failure::new(
            "the command to run goes after `--`, so that its own flags are not read as rhizome's",
        )
        .hint(fixed.join(" ")),
    )
}

/// A word as a shell would need it: in single quotes when it holds anything but plain characters.
fn quoted(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A program the daemon could not start, with the fix this shell can see: the daemon says what
/// went wrong, and its generic hint is replaced where the file itself tells more.
fn teach(err: anyhow::Error, program: &OsStr, cwd: &Path) -> anyhow::Error {
    let Some(failure) = err.downcast_ref::<Failure>() else {
        return err;
    };
    // Only the daemon's refusal to start this program (`could not start NAME (id N): ...`).
    if !failure.message.starts_with("could not start ") {
        return err;
    }
    let Some(hint) = hint_for(program, cwd) else {
        return err;
    };
    Failure::new(failure.message.clone()).hint(hint).into()
}

/// What to do about `program` that did not start, judged from the file it names (relative to
/// `cwd`, the directory it was to run in), if that says anything.
fn hint_for(program: &OsStr, cwd: &Path) -> Option<String> {
    let shown = program.to_string_lossy();
    let path = cwd.join(program);
    let is_path = shown.contains('/');
    match std::fs::metadata(&path) {
        Ok(meta) if is_path && meta.is_dir() => {
            Some(format!("`{shown}` is a directory; name the program in it"))
        }
        Ok(meta) if is_path && meta.permissions().mode() & 0o111 == 0 => {
            Some(format!("make it executable: chmod +x {}", quoted(&shown)))
        }
        // Not on PATH, but here: a program in a directory is named by its path, as in a shell.
        Ok(meta) if !is_path && meta.is_file() => Some(format!(
            "`{shown}` is in {}, which is not on PATH; name it by its path: rhizome run -- ./{}{}",
            cwd.display(),
            quoted(&shown),
            if meta.permissions().mode() & 0o111 == 0 {
                format!(" (after chmod +x {})", quoted(&shown))
            } else {
                String::new()
            }
        )),
        Ok(_) => None,
        Err(_) if shown.contains(char::is_whitespace) => {
            let words: Vec<String> = shown.split_whitespace().map(quoted).collect();
            Some(format!(
                "split the words: `rhizome run -- {}`, or let a shell read them: `rhizome run -- sh -c {}`",
                words.join(" "),
                quoted(&shown)
            ))
        }
        Err(_) if is_path && !Path::new(program).is_absolute() => Some(format!(
            "check the path; a relative one starts at {}",
            cwd.display()
        )),
        Err(_) if is_path => Some("check the path".to_string()),
        Err(_) => None,
    }
}

/// `--name`, else the program's file name; checked here, before anything is sent, so that a name
/// taken from the command is refused with the advice to pass `--name`.
fn name(args: &RunArgs) -> Result<String, Failure> {
    match &args.name {
        Some(name) => names::check(name)
            .map(|()| name.clone())
            .map_err(|err| Failure::new(err.to_string()).hint(err.rule.hint())),
        None => {
            let name = Path::new(&args.command[0])
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| args.command[0].to_string_lossy().into_owned());
            names::check(&name).map(|()| name).map_err(|err| {
                Failure::new(err.from_command()).hint("pass --name NAME to choose the name")
            })
        }
    }
}

async fn start(paths: &Paths, request: SpawnRequest) -> anyhow::Result<Exit> {
    let mut client = Client::connect_or_start(paths).await?;
    match client.call(&Request::Spawn(request)).await? {
        Response::Spawned(info) => {
            let pid = info
                .pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into());
            output::println(format_args!(
                "started {}  id={}  pid={pid}",
                sanitize::field(&info.name),
                info.id
            ))?;
            Ok(Exit::Success)
        }
        other => Err(unexpected(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_where_a_shell_needs_it() {
        assert_eq!(quoted("./script.sh"), "./script.sh");
        assert_eq!(quoted("python3 -m http.server"), "'python3 -m http.server'");
        assert_eq!(quoted("it's"), r"'it'\''s'");
        assert_eq!(quoted(""), "''");
    }

    #[test]
    fn the_file_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let hint = |program: &str| hint_for(OsStr::new(program), dir.path());
        assert_eq!(
            hint("./s.sh").unwrap(),
            "make it executable: chmod +x ./s.sh"
        );
        assert!(hint("./nope").unwrap().starts_with("check the path"));
        assert!(
            hint("no such words")
                .unwrap()
                .contains("sh -c 'no such words'")
        );
        assert_eq!(hint("nosuchprog"), None, "the daemon's PATH hint stands");
        assert!(
            hint("s.sh")
                .unwrap()
                .ends_with("rhizome run -- ./s.sh (after chmod +x s.sh)"),
            "a file here is named by its path"
        );
        assert_eq!(hint("/nonexistent/x").unwrap(), "check the path");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(hint("./s.sh"), None);
        assert!(hint("s.sh").unwrap().ends_with("rhizome run -- ./s.sh"));
    }
}
