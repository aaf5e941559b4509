//! `rhizome ps`: the process table as a table for people or JSON for programs, narrowed to the
//! processes and states asked for.
//!
//! The daemon sends its list and the client narrows it: one request either way, and the work is
//! a pass over at most a few hundred rows, so a filtered `ps` costs what a plain one does.

use std::path::Path;

use super::exit::Exit;
use super::json::{self, Processes};
use super::output;
use super::render::human_duration;
use super::sanitize;
use super::style::{self, Paint};
use super::table::{self, Cell, Column, Table};
use super::{Client, Failure, unexpected};
use crate::cli::PsArgs;
use crate::paths::Paths;
use crate::protocol::{ProcessInfo, Request, Response, State, Status};

pub async fn run(paths: &Paths, args: &PsArgs) -> anyhow::Result<Exit> {
    let filter = Filter {
        all: args.all,
        states: &args.status,
        targets: &args.targets,
    };
    let mut client = Client::connect_or_start(paths).await?;
    let listed = list(&mut client, filter.needs_finished()).await?;
    let shown = filter.apply(&listed)?;
    if args.json {
        output::println(serde_json::to_string(&Processes::of(shown))?)?;
    } else if !shown.is_empty() {
        output::print(to_table(&shown).render(table::width(), Paint::stdout()))?;
        for note in fallbacks(&shown) {
            output::println(note)?;
        }
    } else if filter.is_plain() && !args.all {
        // Said on stdout, as the table it stands for (and as `pueue status` does).
        let finished = list(&mut client, true).await?.len();
        output::println(empty(finished))?;
    } else if filter.is_plain() {
        output::println(empty(0))?;
    } else {
        output::println(
            "no process matches; `rhizome ps --all` lists every one the daemon remembers",
        )?;
    }
    Ok(Exit::Success)
}

async fn list(client: &mut Client, all: bool) -> anyhow::Result<Vec<ProcessInfo>> {
    match client.call(&Request::Ps { all }).await? {
        Response::Ps(processes) => Ok(processes),
        other => Err(unexpected(other)),
    }
}

/// What an empty `ps` says, knowing how many finished processes the daemon remembers.
fn empty(finished: usize) -> String {
    match finished {
        0 => "no processes; rhizome run -- CMD starts one".into(),
        n => format!(
            "no running processes ({n} finished: rhizome ps --all); rhizome run -- CMD starts one"
        ),
    }
}

/// Which processes `ps` shows: by default the running ones; with `--all` the finished ones too;
/// with `--status` exactly those in the states named; with ids, names or pids only those
/// processes (a name within the states shown, an id or pid whatever its state).
#[derive(Debug, Clone, Copy)]
struct Filter<'a> {
    all: bool,
    states: &'a [State],
    targets: &'a [String],
}

impl Filter<'_> {
    fn is_plain(&self) -> bool {
        self.states.is_empty() && self.targets.is_empty()
    }

    /// Whether the daemon must send finished processes too.
    fn needs_finished(&self) -> bool {
        self.all || !self.targets.is_empty() || self.states.iter().any(|s| s.is_final())
    }

    /// The processes shown, in the daemon's order; an id, name or pid that matches no process
    /// at all is an error, as it would be for `logs` or `kill`.
    fn apply<'p>(&self, processes: &'p [ProcessInfo]) -> Result<Vec<&'p ProcessInfo>, Failure> {
        if let Some(unknown) = self
            .targets
            .iter()
            .find(|t| !processes.iter().any(|p| named(p, t)))
        {
            let what = match unknown.parse::<u32>() {
                Ok(_) => format!("no managed process has the id or pid {unknown}"),
                Err(_) => format!("no managed process is named `{}`", sanitize::field(unknown)),
            };
            return Err(Failure::new(what).hint("`rhizome ps --all` lists what the daemon manages"));
        }
        Ok(processes.iter().filter(|p| self.shows(p)).collect())
    }

    fn shows(&self, p: &ProcessInfo) -> bool {
        let by_number = self
            .targets
            .iter()
            .any(|t| t.parse::<u32>().is_ok() && named(p, t));
        let in_view = match self.states {
            [] => self.all || p.status.is_listed() || by_number,
            states => states.contains(&p.status.state()),
        };
        in_view && (self.targets.is_empty() || self.targets.iter().any(|t| named(p, t)))
    }
}

/// Whether `target` (an id, pid or name) names `p`.
fn named(p: &ProcessInfo, target: &str) -> bool {
    match target.parse::<u32>() {
        Ok(number) => p.id == number || p.pid == Some(number),
        Err(_) => p.name == target,
    }
}

/// The columns of `ps`; PORT only when a tunnel is shown. PID is as wide as the largest pid
/// Linux gives (7 digits), so columns stay put from one `ps` to the next.
fn columns(tunnels: bool) -> Vec<Column> {
    let mut columns = vec![
        Column::keep("ID"),
        Column::shrink("NAME", 1),
        Column::keep("PID").at_least(7),
        Column::keep("STATUS"),
        Column::keep("UPTIME"),
        Column::keep("RESTARTS"),
    ];
    if tunnels {
        columns.push(Column::keep("PORT"));
        columns.push(Column::shrink("UPSTREAM", 2));
    }
    columns.push(Column::shrink("COMMAND", 0));
    columns
}

/// The table for people. Names and commands come from outside and are shown escaped, in a pipe
/// too: the table is for people. PID and UPTIME are empty when nothing of the process runs.
fn to_table(processes: &[&ProcessInfo]) -> Table {
    let tunnels = processes.iter().any(|p| p.tunnel.is_some());
    let mut table = Table::new(columns(tunnels));
    for p in processes {
        let running = p.status == Status::Running;
        let mut row = vec![
            Cell::new(p.id.to_string()),
            Cell::new(sanitize::field(&p.name)),
            Cell::new(
                json::live_pid(p)
                    .map(|pid| pid.to_string())
                    .unwrap_or_default(),
            ),
            Cell::styled(p.status.label(), style::status(&p.status)),
            Cell::new(if running {
                human_duration(p.uptime_secs)
            } else {
                String::new()
            }),
            Cell::new(p.restarts.to_string()),
        ];
        if tunnels {
            let port = p.tunnel.as_ref().map(|t| t.local_port.to_string());
            row.push(Cell::new(port.unwrap_or_default()));
            let upstream = p.tunnel.as_ref().and_then(|t| t.upstream.as_deref());
            row.push(Cell::new(sanitize::field(upstream.unwrap_or_default())));
        }
        row.push(Cell::new(sanitize::field(&command(&p.command))));
        table.row(row);
    }
    table
}

/// A line under the table for each tunnel that `transport = "auto"` moved to kubectl, and why.
fn fallbacks<'p>(processes: &'p [&ProcessInfo]) -> impl Iterator<Item = String> + 'p {
    processes.iter().filter_map(|p| {
        let why = p.tunnel.as_ref()?.transport_reason.as_deref()?;
        Some(format!(
            "{}: kubectl carries it: {}",
            sanitize::field(&p.name),
            sanitize::field(why)
        ))
    })
}

/// The command as the table shows it: the program by its file name (`kubectl`, not its path;
/// `--json` has the whole line), then its arguments.
fn command(argv: &[String]) -> String {
    let mut words = argv.iter().map(String::as_str);
    let program = words.next().map(|p| {
        Path::new(p)
            .file_name()
            .map_or(p.into(), |name| name.to_string_lossy())
    });
    program
        .into_iter()
        .chain(words.map(Into::into))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Kind, RestartPolicy};

    fn info(id: u32, name: &str, status: Status) -> ProcessInfo {
        ProcessInfo {
            id,
            name: name.into(),
            kind: Kind::Run,
            command: vec!["/usr/bin/sleep".into(), "1000".into()],
            pid: Some(100 + id),
            status,
            restart: RestartPolicy::Never,
            started_at_ms: 0,
            uptime_secs: 3,
            restarts: 0,
            detail: None,
            tunnel: None,
            ended_at_ms: None,
        }
    }

    #[test]
    fn names_cannot_drive_the_terminal_even_in_a_pipe() {
        let hostile = info(1, "evil\x1b]0;title\x07\rname", Status::Lost);
        let table = to_table(&[&hostile]).render(None, Paint::forced(true));
        assert!(
            !table.contains('\x1b') && !table.contains('\r'),
            "{table:?}"
        );
        assert!(table.contains(r"evil\x1b]0;title\x07\rname"), "{table}");
    }

    #[test]
    fn filters_narrow_by_state_and_by_id_name_or_pid() {
        let list = [
            info(1, "web", Status::Running),
            info(2, "web", Status::Exited(0)),
            info(3, "api", Status::Failed("no".into())),
            info(4, "api", Status::Restarting),
        ];
        let ids = |all: bool, states: &[State], targets: &[&str]| {
            let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
            let filter = Filter {
                all,
                states,
                targets: &targets,
            };
            filter
                .apply(&list)
                .map(|shown| shown.iter().map(|p| p.id).collect::<Vec<_>>())
                .map_err(|err| err.message)
        };
        assert_eq!(ids(false, &[], &[]), Ok(vec![1, 4]));
        assert_eq!(ids(true, &[], &[]), Ok(vec![1, 2, 3, 4]));
        assert_eq!(
            ids(false, &[State::Failed, State::Exited], &[]),
            Ok(vec![2, 3])
        );
        assert_eq!(ids(false, &[], &["web"]), Ok(vec![1]));
        assert_eq!(ids(true, &[], &["web"]), Ok(vec![1, 2]));
        // An id or a pid names one process, finished or not.
        assert_eq!(ids(false, &[], &["2", "103"]), Ok(vec![2, 3]));
        assert_eq!(ids(false, &[State::Running], &["api"]), Ok(vec![]));
        assert_eq!(
            ids(false, &[], &["web", "nosuch"]),
            Err("no managed process is named `nosuch`".into())
        );
        assert_eq!(
            ids(false, &[], &["99"]),
            Err("no managed process has the id or pid 99".into())
        );
    }

    #[test]
    fn the_command_column_names_the_program_by_its_file_name() {
        let argv = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(
            command(&argv(&["/usr/bin/kubectl", "get", "a/b"])),
            "kubectl get a/b"
        );
        assert_eq!(
            command(&argv(&["python3", "-m", "http.server"])),
            "python3 -m http.server"
        );
        assert_eq!(command(&[]), "");
    }
}
