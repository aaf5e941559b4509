//! Which processes a `kill` or `restart` names: each `<ID|NAME|PID>` by the one rule
//! (`Table::find`), and with `--all` every process `ps` lists (what runs, and crash loops), or
//! every such process of the names given. All or none: a request naming one that is not found acts on nothing, and says so, since a
//! user who named several may think the others were done.

use std::sync::Arc;

use crate::daemon::Daemon;
use crate::daemon::process::Process;
use crate::protocol::ErrorReply;

/// The processes `targets` name for `rhizome COMMAND`, each once; `nothing` ends the refusal of a
/// request naming several (`nothing was stopped`).
pub(super) fn select(
    daemon: &Daemon,
    targets: &[String],
    all: bool,
    command: &str,
    nothing: &str,
) -> Result<Vec<Arc<Process>>, ErrorReply> {
    if all && targets.is_empty() {
        return Ok(daemon.table.list(false));
    }
    let mut found: Vec<Arc<Process>> = Vec::new();
    for target in targets {
        // With --all a name is every process of that name `ps` lists; an id or pid is still one.
        let named = match (all, target.parse::<u32>()) {
            (true, Err(_)) => daemon.table.listed_named(target),
            _ => daemon.table.find(target).map(|process| vec![process]),
        };
        match named {
            Ok(processes) => {
                for process in processes {
                    if !found.iter().any(|p| p.id == process.id) {
                        found.push(process);
                    }
                }
            }
            Err(unresolved) => {
                let reply = unresolved.reply(command, true);
                return Err(match targets.len() {
                    1 => reply,
                    _ => ErrorReply {
                        message: format!("{}; {nothing}", reply.message),
                        ..reply
                    },
                });
            }
        }
    }
    Ok(found)
}
