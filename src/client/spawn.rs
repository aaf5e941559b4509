//! `rhizome sleeper` and `rhizome run`: ask the daemon to start a process.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::Context;

use super::exit::Exit;
use super::output;
use super::sanitize;
use super::{Client, unexpected};
use crate::cli::{RunArgs, SleeperArgs};
use crate::paths::Paths;
use crate::protocol::{Kind, Request, Response, RestartPolicy, SpawnRequest};

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
        kind: Kind::Sleeper,
        argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        restart: RestartPolicy::Never,
        context: super::context()?,
    };
    start(paths, request).await
}

pub async fn run(paths: &Paths, args: &RunArgs) -> anyhow::Result<Exit> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => Path::new(&args.command[0])
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| args.command[0].to_string_lossy().into_owned()),
    };
    let request = SpawnRequest {
        name,
        kind: Kind::Run,
        argv: args.command.iter().map(|a| a.as_bytes().to_vec()).collect(),
        restart: args.restart.into(),
        context: super::context()?,
    };
    start(paths, request).await
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
