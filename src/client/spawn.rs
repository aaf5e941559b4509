//! `rhizome sleeper` and `rhizome run`: ask the daemon to start a process.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::Context;

use super::exit::Exit;
use super::output;
use super::sanitize;
use super::{Client, Failure, unexpected};
use crate::cli::{RunArgs, SleeperArgs};
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
    let name = name(args)?;
    let request = SpawnRequest {
        name,
        kind: CommandKind::Run,
        argv: args.command.iter().map(|a| a.as_bytes().to_vec()).collect(),
        restart: args.restart.into(),
        context: super::context()?,
    };
    start(paths, request).await
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
