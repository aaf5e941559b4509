//! `rhizome sleeper` and `rhizome run`: ask the daemon to start a process.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;
use clap::ValueEnum;

use super::exit::Exit;
use super::output;
use super::sanitize;
use super::{Client, Failure, unexpected};
use crate::cli::{Restart, RunArgs, SleeperArgs};
use crate::names;
use crate::paths::Paths;
use crate::protocol::{CommandKind, Request, Response, RestartPolicy, SpawnRequest};

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
    };
    start(paths, request).await
}

pub async fn run(paths: &Paths, args: &RunArgs) -> anyhow::Result<Exit> {
    if !args.before.is_empty() {
        return Err(before_the_dashes(args).into());
    }
    let name = name(args)?;
    let request = SpawnRequest {
        name,
        kind: CommandKind::Run,
        argv: args.command.iter().map(|a| a.as_bytes().to_vec()).collect(),
        restart: args.restart.into(),
        context: super::context()?,
    };
    let program = args.command[0].clone();
    start(paths, request)
        .await
        .map_err(|err| teach(err, &program))
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
    fixed.push("--".into());
    fixed.extend(
        args.before
            .iter()
            .chain(&args.command)
            .map(|word| quoted(&word.to_string_lossy())),
    );
    let mut failure = Failure::new(
        "the command to run goes after `--`, so that its own flags are not read as rhizome's",
    )
    .hint(fixed.join(" "));
    failure.code = Exit::Usage;
    failure
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
fn teach(err: anyhow::Error, program: &OsStr) -> anyhow::Error {
    let Some(failure) = err.downcast_ref::<Failure>() else {
        return err;
    };
    // Only the daemon's refusal to start this program (`could not start NAME (id N): ...`).
    if !failure.message.starts_with("could not start ") {
        return err;
    }
    let Some(hint) = hint_for(program, std::env::current_dir().ok().as_deref()) else {
        return err;
    };
    Failure::new(failure.message.clone()).hint(hint).into()
}

/// What to do about `program` that did not start, judged from the file it names (relative to
/// `cwd`), if that says anything.
fn hint_for(program: &OsStr, cwd: Option<&Path>) -> Option<String> {
    let shown = program.to_string_lossy();
    let path = match cwd {
        Some(cwd) => cwd.join(program),
        None => Path::new(program).to_path_buf(),
    };
    let is_path = shown.contains('/');
    match std::fs::metadata(&path) {
        Ok(meta) if is_path && meta.is_dir() => {
            Some(format!("`{shown}` is a directory; name the program in it"))
        }
        Ok(meta) if is_path && meta.permissions().mode() & 0o111 == 0 => {
            Some(format!("make it executable: chmod +x {}", quoted(&shown)))
        }
        Ok(_) => None,
        Err(_) if shown.contains(char::is_whitespace) => {
            let words: Vec<String> = shown.split_whitespace().map(quoted).collect();
            Some(format!(
                "split the words: `rhizome run -- {}`, or let a shell read them: `rhizome run -- sh -c {}`",
                words.join(" "),
                quoted(&shown)
            ))
        }
        Err(_) if is_path => {
            Some("check the path; a relative one starts at this shell's directory".to_string())
        }
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
        let hint = |program: &str| hint_for(OsStr::new(program), Some(dir.path()));
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
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(hint("./s.sh"), None);
    }
}
