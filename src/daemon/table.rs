//! The process table: every process the daemon manages, by id.
//!
//! The lock is a plain mutex held only for lookups and inserts, never across an await.

use std::collections::BTreeMap;
use std::num::NonZeroU16;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, watch};

use super::process::{KillOrder, Process};
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

    /// Finds the live tunnel for `target` on `port` (`None`: any port), or, when there is none,
    /// adds the one `make` builds, in one step, so that concurrent requests for the same tunnel
    /// all get the same one. A live tunnel of another target on that port is an error, and so is
    /// whatever `make` fails with (then no id is used up).
    pub fn claim_tunnel<E: From<ErrorReply>>(
        &self,
        target: &Target,
        port: Option<NonZeroU16>,
        make: impl FnOnce(u32) -> Result<(Arc<Process>, mpsc::Receiver<KillOrder>), E>,
    ) -> Result<Claim, E> {
        let mut inner = self.lock();
        for process in inner.processes.values().filter(|p| !p.is_final()) {
            let Some(tunnel) = process.tunnel() else {
                continue;
            };
            let same_port = port.is_some_and(|port| tunnel.local_port() == port.get());
            if tunnel.target.name == target.name && (port.is_none() || same_port) {
                return Ok(Claim::Existing(process.clone()));
            }
            if same_port {
                let port = tunnel.local_port();
                return Err(ErrorReply::new(format!(
                    "local port {port} is already used by the tunnel {} (id {})",
                    tunnel.target.name, process.id
                ))
                .with_hint(format!(
                    "stop it with `rhizome kill {}`, or choose another port with --port",
                    process.id
                ))
                .into());
            }
        }
        let (process, orders) = make(inner.next_id())?;
        inner.add(process.clone());
        self.added.send_modify(|n| *n += 1);
        Ok(Claim::New(process, orders))
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

    /// Resolves `<ID|NAME|PID>`: a number is a managed pid first, then an id; a name is the
    /// running process of that name (an error when several run), else the newest finished one.
    pub fn resolve(&self, target: &str) -> Result<Arc<Process>, ErrorReply> {
        let inner = self.lock();
        let newest_first = || inner.processes.values().rev();
        let found = match target.parse::<u32>() {
            Ok(number) => newest_first()
                .find(|p| p.pid() == Some(number))
                .or_else(|| inner.processes.get(&number)),
            Err(_) => {
                // The running process of that name; a name shared by several running ones is
                // ambiguous; with none running, the newest finished one (for its log).
                let running: Vec<&Arc<Process>> = inner
                    .processes
                    .values()
                    .filter(|p| p.name == target && !p.is_final())
                    .collect();
                if running.len() > 1 {
                    let ids: Vec<String> = running.iter().map(|p| p.id.to_string()).collect();
                    return Err(ErrorReply::new(format!(
                        "{} processes named `{target}` are running (ids {})",
                        running.len(),
                        ids.join(", ")
                    ))
                    .with_hint(format!("name one by its id, for example `{}`", ids[0])));
                }
                running
                    .first()
                    .copied()
                    .or_else(|| newest_first().find(|p| p.name == target))
            }
        };
        found.cloned().ok_or_else(|| {
            if target.parse::<u32>().is_ok() {
                return ErrorReply::new(format!("no managed process has the pid or id {target}"))
                    .with_hint("`rhizome ps --all` lists what the daemon manages");
            }
            let names = inner.processes.values().map(|p| p.name.as_str());
            let hint = match closest(target, names).as_slice() {
                [] => "`rhizome ps --all` lists what the daemon manages".to_string(),
                close => format!(
                    "did you mean {}? (`rhizome ps --all` lists them all)",
                    close.join(", ")
                ),
            };
            ErrorReply::new(format!("no managed process is named `{target}`")).with_hint(hint)
        })
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
    New(Arc<Process>, mpsc::Receiver<KillOrder>),
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::Notify;

    use super::*;
    use crate::daemon::logs::ProcessLog;
    use crate::daemon::process::{Context, TunnelPart, Work};
    use crate::forward::tunnel::Tunnel;
    use crate::protocol::{Route, Tool, TunnelSettings};

    fn target(name: &str, port: Option<NonZeroU16>) -> Target {
        Target {
            name: name.into(),
            context: "c".into(),
            namespace: "n".into(),
            kubeconfig: None,
            local_port: port,
            scheme: "http".into(),
            route: Route::Service {
                resource: "svc/web".into(),
                remote_port: 80,
            },
        }
    }

    /// What the forward handler's `make` does: bind the port, build the entry.
    fn tunnel_entry(
        id: u32,
        target: &Target,
        made: &std::sync::atomic::AtomicU32,
    ) -> Result<(Arc<Process>, mpsc::Receiver<KillOrder>), ErrorReply> {
        made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let listener = Tunnel::bind(target.local_port)
            .map_err(|err| ErrorReply::new(format!("bind: {err}")))?;
        let part = TunnelPart {
            target: target.clone(),
            tool: Tool::Simulated,
            context: Context {
                env: Vec::new(),
                cwd: "/".into(),
            },
            wait: Duration::from_secs(1),
            settings: TunnelSettings {
                backoff_max_ms: 1000,
                probe_interval_ms: 0,
            },
            tunnel: Tunnel::start(listener, Duration::from_secs(1)).unwrap(),
        };
        let log = Arc::new(ProcessLog::new(
            std::path::Path::new("/nonexistent"),
            id,
            &target.name,
            Default::default(),
        ));
        Ok(Process::new(
            id,
            target.name.clone(),
            Work::Tunnel(Arc::new(part)),
            log,
            Arc::new(Notify::new()),
        ))
    }

    /// A finished-looking command entry for `id`; nothing runs it.
    fn command_entry(id: u32) -> (Arc<Process>, mpsc::Receiver<KillOrder>) {
        let spec = crate::daemon::process::Spec {
            kind: crate::protocol::CommandKind::Run,
            argv: vec!["true".into()],
            context: Context::default(),
            restart: crate::protocol::RestartPolicy::Never,
            max_restarts: None,
        };
        let log = Arc::new(ProcessLog::new(
            std::path::Path::new("/nonexistent"),
            id,
            "cmd",
            Default::default(),
        ));
        Process::new(
            id,
            "cmd".into(),
            Work::Command(spec),
            log,
            Arc::new(Notify::new()),
        )
    }

    #[test]
    fn ids_start_above_what_was_given_and_never_replace_an_entry() {
        let table = Table::default();
        table.start_ids_at(5);
        assert_eq!(table.insert(command_entry).0.id, 5);
        table.restore(command_entry(9).0);
        assert_eq!(table.insert(command_entry).0.id, 10);
        assert_eq!(table.all().0, 11, "the state file's next_id");
        table.start_ids_at(3);
        assert_eq!(table.insert(command_entry).0.id, 11, "ids only grow");

        // Past the last id the count goes round, but never onto an id in the table.
        table.restore(command_entry(1).0);
        table.start_ids_at(u32::MAX);
        assert_eq!(table.insert(command_entry).0.id, u32::MAX);
        assert_eq!(table.insert(command_entry).0.id, 2);
        assert_eq!(table.list(true).len(), 7, "nothing was replaced");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claims_of_one_tunnel_all_get_the_same_entry() {
        let table = Arc::new(Table::default());
        let made = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = NonZeroU16::new(free.local_addr().unwrap().port());
        drop(free);
        let claims: Vec<_> = (0..32)
            .map(|_| {
                let (table, made) = (table.clone(), made.clone());
                tokio::spawn(async move {
                    let target = target("staging/web", port);
                    match table.claim_tunnel(&target, port, |id| tunnel_entry(id, &target, &made)) {
                        Ok(Claim::New(process, _)) => (process.id, true),
                        Ok(Claim::Existing(process)) => (process.id, false),
                        Err(reply) => panic!("{}", reply.message),
                    }
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for claim in claims {
            outcomes.push(claim.await.unwrap());
        }
        assert_eq!(
            made.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one bind"
        );
        assert_eq!(
            outcomes.iter().filter(|(_, new)| *new).count(),
            1,
            "one new"
        );
        assert!(outcomes.iter().all(|(id, _)| *id == 1), "{outcomes:?}");

        // Any port finds it too; another target on its port is refused with the holder's id; a
        // failed bind uses up no id.
        let any = target("staging/web", None);
        let found = table.claim_tunnel(&any, None, |id| tunnel_entry(id, &any, &made));
        assert!(matches!(found, Ok(Claim::Existing(p)) if p.id == 1));
        let other = target("staging/api", port);
        let refused = table.claim_tunnel(&other, port, |id| tunnel_entry(id, &other, &made));
        match refused {
            Err(reply) => assert!(reply.message.contains("(id 1)"), "{}", reply.message),
            Ok(_) => panic!("a second tunnel on one port"),
        }
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = NonZeroU16::new(taken.local_addr().unwrap().port());
        let blocked = target("staging/db", busy);
        let failed = table.claim_tunnel(&blocked, busy, |id| tunnel_entry(id, &blocked, &made));
        assert!(failed.is_err(), "the port is taken outside rhizome");
        let api = target("staging/api", None);
        let next = table.claim_tunnel(&api, None, |id| tunnel_entry(id, &api, &made));
        assert!(
            matches!(next, Ok(Claim::New(p, _)) if p.id == 2),
            "ids stay dense"
        );
    }
}
