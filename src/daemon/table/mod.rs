//! The process table: every process the daemon manages, by id.
//!
//! The lock is a plain mutex held only for lookups and inserts, never across an await.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, watch};

use super::process::{Order, Process};
use crate::forward::drift;
use crate::names::{self, Meaning};
use crate::protocol::ErrorReply;
use crate::protocol::Target;
use crate::similar::closest;

/// How many finished processes are remembered for `ps --all` and `logs`.
pub const KEEP_FINISHED: usize = 100;

#[derive(Default)]
pub struct Table {
    inner: Mutex<Inner>,
    /// Counts the processes added, so that `logs --all -f` can follow those started after it.
    added: watch::Sender<u64>,
}

#[derive(Default)]
struct Inner {
    /// The last id given out (0: none yet). Ids only grow, from daemon to daemon too: the state
    /// file keeps the next one, and a restore starts after it.
    last_id: u32,
    processes: BTreeMap<u32, Arc<Process>>,
}

impl Inner {
    /// The id the next process gets: one past the last. Should ids ever run out, the count goes
    /// round, past every id still in the table: an entry is never replaced by another.
    fn next_id(&self) -> u32 {
        let mut id = self.last_id;
        loop {
            id = id.checked_add(1).unwrap_or(1);
            if !self.processes.contains_key(&id) {
                return id;
            }
        }
    }

    fn add(&mut self, process: Arc<Process>) {
        self.last_id = process.id;
        self.processes.insert(process.id, process);
    }

    /// `target` as no process: with the names it may have meant.
    fn unknown(&self, target: &str) -> Unresolved {
        let close = match target.parse::<u32>() {
            Ok(_) => Vec::new(),
            Err(_) => closest(target, self.processes.values().map(|p| p.name.as_str())),
        };
        Unresolved::Unknown {
            target: target.to_string(),
            close,
        }
    }

    /// The processes named `name`, oldest first, each with whether it is running.
    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a Arc<Process>, bool)> {
        self.processes
            .values()
            .filter(move |p| p.name == name)
            .map(|p| (p, !p.is_final()))
    }

    /// The live tunnel of `target` (the oldest, should an older daemon have left several), or
    /// the refusal naming the live tunnel of another target on `target`'s port. `except` is not
    /// counted: the tunnel being restarted.
    fn tunnel_of(
        &self,
        target: &Target,
        except: Option<u32>,
    ) -> Result<Option<Arc<Process>>, ErrorReply> {
        let live = self
            .processes
            .values()
            .filter(|p| !p.is_final() && Some(p.id) != except);
        for process in live {
            let Some(tunnel) = process.tunnel() else {
                continue;
            };
            if tunnel.target.name == target.name {
                return Ok(Some(process.clone()));
            }
            let port = tunnel.local_port();
            if target.local_port.is_some_and(|wanted| wanted.get() == port) {
                return Err(ErrorReply::new(format!(
                    "local port {port} is already used by the tunnel {} (id {})",
                    tunnel.target.name, process.id
                ))
                .with_hint(format!(
                    "stop it with `rhizome kill {}`, or choose another port",
                    process.id
                )));
            }
        }
        Ok(None)
    }
}

impl Table {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds the process `make` builds for the next free id.
    pub fn insert<T>(&self, make: impl FnOnce(u32) -> (Arc<Process>, T)) -> (Arc<Process>, T) {
        let mut inner = self.lock();
        let (process, extra) = make(inner.next_id());
        inner.add(process.clone());
        self.added.send_modify(|n| *n += 1);
        (process, extra)
    }

    /// Changes whenever a process is added (after it is in the table).
    pub fn added(&self) -> watch::Receiver<u64> {
        self.added.subscribe()
    }

    /// Finds the live tunnel of `target`, or, when there is none, adds the one `make` builds, in
    /// one step, so that concurrent requests for the same tunnel all get the same one. A target
    /// has at most one tunnel: one that runs with another configuration is `Differs`, never joined
    /// by a second. A live tunnel of another target on the port is an error, and so is whatever
    /// `make` fails with (then no id is used up).
    pub fn claim_tunnel<E: From<ErrorReply>>(
        &self,
        target: &Target,
        make: impl FnOnce(u32) -> Result<(Arc<Process>, mpsc::Receiver<Order>), E>,
    ) -> Result<Claim, E> {
        let mut inner = self.lock();
        if let Some(process) = inner.tunnel_of(target, None)? {
            let part = process.tunnel().expect("a tunnel");
            let changed = drift::differences(&part.target, part.local_port(), target);
            return Ok(match changed.is_empty() {
                true => Claim::Existing(process),
                false => Claim::Differs(process, changed),
            });
        }
        let (process, orders) = make(inner.next_id())?;
        inner.add(process.clone());
        self.added.send_modify(|n| *n += 1);
        Ok(Claim::New(process, orders))
    }

    /// Whether a tunnel being restarted (`id`) may move to `target`'s port: no other live tunnel
    /// listens there.
    pub fn check_port(&self, target: &Target, id: u32) -> Result<(), ErrorReply> {
        self.lock().tunnel_of(target, Some(id)).map(drop)
    }

    /// Puts the entry `make` builds in place of `old`, a finished process, under its id: what
    /// `restart` does with what had finished. Refused when `old` has been forgotten meanwhile,
    /// and, for a tunnel (`target`), where `claim_tunnel` would not open it: its target has a live
    /// tunnel, or another tunnel has its port.
    pub fn revive<E: From<ErrorReply>>(
        &self,
        old: &Arc<Process>,
        target: Option<&Target>,
        make: impl FnOnce(u32) -> Result<(Arc<Process>, mpsc::Receiver<Order>), E>,
    ) -> Result<(Arc<Process>, mpsc::Receiver<Order>), E> {
        let mut inner = self.lock();
        if !inner
            .processes
            .get(&old.id)
            .is_some_and(|p| Arc::ptr_eq(p, old) && p.is_final())
        {
            return Err(ErrorReply::new(format!(
                "{} (id {}) changed while it was being restarted",
                old.name, old.id
            ))
            .with_hint("run the restart again")
            .into());
        }
        if let Some(target) = target
            && let Some(live) = inner.tunnel_of(target, None)?
        {
            return Err(ErrorReply::new(format!(
                "the target {} already has a running tunnel (id {}), and a target has one tunnel",
                target.name, live.id
            ))
            .with_hint(format!("`rhizome restart {}` restarts that one", live.id))
            .into());
        }
        let (process, orders) = make(old.id)?;
        inner.processes.insert(process.id, process.clone());
        Ok((process, orders))
    }

    /// All processes, oldest first; finished ones (but crash loops) only with `all`.
    pub fn list(&self, all: bool) -> Vec<Arc<Process>> {
        self.lock()
            .processes
            .values()
            .filter(|p| all || p.phase().is_listed())
            .cloned()
            .collect()
    }

    /// Finds `<ID|NAME|PID>`: a number is a managed pid first, then an id; a name is read by
    /// `names::meaning` (the running process of that name, else the newest finished one).
    pub fn find(&self, target: &str) -> Result<Arc<Process>, Unresolved> {
        let inner = self.lock();
        let found = match target.parse::<u32>() {
            Ok(number) => inner
                .processes
                .values()
                .rev()
                .find(|p| p.pid() == Some(number))
                .or_else(|| inner.processes.get(&number)),
            Err(_) => match names::meaning(inner.named(target)) {
                Meaning::Running(process) | Meaning::Finished(process) => Some(process),
                Meaning::Several(running) => {
                    return Err(Unresolved::Several {
                        name: target.to_string(),
                        ids: running.iter().map(|p| p.id).collect(),
                    });
                }
                Meaning::Unknown => None,
            },
        };
        found.cloned().ok_or_else(|| inner.unknown(target))
    }

    /// `find`, with the refusal as `rhizome logs` says it.
    pub fn resolve(&self, target: &str) -> Result<Arc<Process>, ErrorReply> {
        self.find(target).map_err(|err| err.reply("logs", false))
    }

    /// The processes named `name` that `ps` lists (`list(false)`: what is not over, and crash
    /// loops), oldest first: what `--all NAME` means. Unknown when no process has that name.
    pub fn listed_named(&self, name: &str) -> Result<Vec<Arc<Process>>, Unresolved> {
        let inner = self.lock();
        let named: Vec<&Arc<Process>> = inner.named(name).map(|(p, _)| p).collect();
        if named.is_empty() {
            return Err(inner.unknown(name));
        }
        Ok(named
            .into_iter()
            .filter(|p| p.phase().is_listed())
            .cloned()
            .collect())
    }

    /// Forgets finished processes beyond the newest `KEEP_FINISHED`, returning them so their logs
    /// can be deleted. One with a previous daemon's child not yet ended stays: the state file
    /// must name that child until it is gone.
    pub fn prune(&self) -> Vec<Arc<Process>> {
        let mut inner = self.lock();
        let finished: Vec<u32> = inner
            .processes
            .values()
            .filter(|p| p.is_final() && p.state().children.is_empty())
            .map(|p| p.id)
            .collect();
        let excess = finished.len().saturating_sub(KEEP_FINISHED);
        finished[..excess]
            .iter()
            .filter_map(|id| inner.processes.remove(id))
            .collect()
    }

    /// The next id and every process, for the state file.
    pub fn all(&self) -> (u32, Vec<Arc<Process>>) {
        let inner = self.lock();
        (inner.next_id(), inner.processes.values().cloned().collect())
    }

    /// Ids given out from now on are `next_id` or above (a restore calls it before any client is
    /// served).
    pub fn start_ids_at(&self, next_id: u32) {
        let mut inner = self.lock();
        inner.last_id = inner.last_id.max(next_id.saturating_sub(1));
    }

    /// Puts back a process restored from the state file, under its old id, which the repaired
    /// file makes unique and below the `next_id` given to `start_ids_at`.
    pub fn restore(&self, process: Arc<Process>) {
        let mut inner = self.lock();
        inner.last_id = inner.last_id.max(process.id);
        inner.processes.insert(process.id, process);
    }

    pub fn counts(&self) -> (u32, u32) {
        let inner = self.lock();
        let running = inner.processes.values().filter(|p| !p.is_final()).count();
        (running as u32, (inner.processes.len() - running) as u32)
    }
}

/// The outcome of `claim_tunnel`.
pub enum Claim {
    /// The tunnel already exists: answer with it.
    Existing(Arc<Process>),
    /// A new entry: bind its port and start its supervisor.
    New(Arc<Process>, mpsc::Receiver<Order>),
    /// The target's tunnel runs with another configuration: these differences.
    Differs(Arc<Process>, Vec<String>),
}

/// Why `<ID|NAME|PID>` names no one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// No managed process has that pid, id or name; `close` are the names it may have meant.
    Unknown { target: String, close: Vec<String> },
    /// Several processes of that name run.
    Several { name: String, ids: Vec<u32> },
}

impl Unresolved {
    /// The refusal as `rhizome COMMAND` says it; `takes_all`: the command also takes `--all NAME`.
    pub fn reply(&self, command: &str, takes_all: bool) -> ErrorReply {
        match self {
            Unresolved::Unknown { target, close } => {
                let all = "`rhizome ps --all` lists what the daemon manages";
                if target.parse::<u32>().is_ok() {
                    return ErrorReply::new(format!(
                        "no managed process has the pid or id {target}"
                    ))
                    .with_hint(all);
                }
                let hint = match close.as_slice() {
                    [] => all.to_string(),
                    close => format!(
                        "did you mean {}? (`rhizome ps --all` lists them all)",
                        close.join(", ")
                    ),
                };
                ErrorReply::new(format!("no managed process is named `{target}`")).with_hint(hint)
            }
            Unresolved::Several { name, ids } => {
                let list: Vec<String> = ids.iter().map(u32::to_string).collect();
                let first = &list[0];
                let hint = match takes_all {
                    true => format!(
                        "name one by its id (`rhizome {command} {first}`), or all of them with `rhizome {command} --all {name}`"
                    ),
                    false => format!("name one by its id, for example `rhizome {command} {first}`"),
                };
                ErrorReply::new(format!(
                    "{} processes named `{name}` are running (ids {})",
                    ids.len(),
                    list.join(", ")
                ))
                .with_hint(hint)
            }
        }
    }
}

#[cfg(test)]
mod tests;
