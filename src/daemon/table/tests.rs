//! The table's rules, in process: ids, one tunnel per target, names.

use std::num::NonZeroU16;
use std::time::Duration;

use tokio::sync::Notify;

use super::*;
use crate::daemon::logs::ProcessLog;
use crate::daemon::process::{Context, Phase, TunnelPart, Work};
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
) -> Result<(Arc<Process>, mpsc::Receiver<Order>), ErrorReply> {
    made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let listener =
        Tunnel::bind(target.local_port).map_err(|err| ErrorReply::new(format!("bind: {err}")))?;
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
            lazy: false,
            idle_stop_ms: 0,
            by_up: false,
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
        Work::tunnel(part),
        log,
        Arc::new(Notify::new()),
    ))
}

/// A finished-looking command entry for `id`; nothing runs it.
fn command_entry(id: u32) -> (Arc<Process>, mpsc::Receiver<Order>) {
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
                match table.claim_tunnel(&target, |id| tunnel_entry(id, &target, &made)) {
                    Ok(Claim::New(process, _)) => (process.id, true),
                    Ok(Claim::Existing(process)) => (process.id, false),
                    Ok(Claim::Differs(..)) => panic!("the same configuration differs"),
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
    let found = table.claim_tunnel(&any, |id| tunnel_entry(id, &any, &made));
    assert!(matches!(found, Ok(Claim::Existing(p)) if p.id == 1));
    let other = target("staging/api", port);
    let refused = table.claim_tunnel(&other, |id| tunnel_entry(id, &other, &made));
    match refused {
        Err(reply) => assert!(reply.message.contains("(id 1)"), "{}", reply.message),
        Ok(_) => panic!("a second tunnel on one port"),
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = NonZeroU16::new(taken.local_addr().unwrap().port());
    let blocked = target("staging/db", busy);
    let failed = table.claim_tunnel(&blocked, |id| tunnel_entry(id, &blocked, &made));
    assert!(failed.is_err(), "the port is taken outside rhizome");
    let api = target("staging/api", None);
    let next = table.claim_tunnel(&api, |id| tunnel_entry(id, &api, &made));
    assert!(
        matches!(next, Ok(Claim::New(p, _)) if p.id == 2),
        "ids stay dense"
    );
}

fn free_port() -> NonZeroU16 {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    NonZeroU16::new(free.local_addr().unwrap().port()).unwrap()
}

#[tokio::test]
async fn a_target_has_one_tunnel_and_another_configuration_is_named() {
    let table = Table::default();
    let made = std::sync::atomic::AtomicU32::new(0);
    let web = target("staging/web", None);
    let Ok(Claim::New(first, _orders)) =
        table.claim_tunnel(&web, |id| tunnel_entry(id, &web, &made))
    else {
        panic!("a new tunnel");
    };
    let port = first.tunnel().unwrap().local_port();
    let moved = target("staging/web", Some(free_port()));
    match table.claim_tunnel(&moved, |id| tunnel_entry(id, &moved, &made)) {
        Ok(Claim::Differs(process, changed)) => {
            assert_eq!(process.id, first.id);
            let new = moved.local_port.unwrap();
            assert_eq!(changed, [format!("local_port {port} -> {new}")]);
        }
        _ => panic!("a second tunnel for one target"),
    }
    assert_eq!(
        made.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one bind"
    );

    // A restart may move it to a free port, not to another tunnel's.
    let api = target("staging/api", None);
    let Ok(Claim::New(other, _other_orders)) =
        table.claim_tunnel(&api, |id| tunnel_entry(id, &api, &made))
    else {
        panic!("a new tunnel");
    };
    let onto_other = target(
        "staging/web",
        NonZeroU16::new(other.tunnel().unwrap().local_port()),
    );
    let refused = table.check_port(&onto_other, first.id).unwrap_err();
    assert!(
        refused.message.contains(&format!("(id {})", other.id)),
        "{}",
        refused.message
    );
    assert!(table.check_port(&moved, first.id).is_ok());
    assert!(table.check_port(&web, first.id).is_ok(), "its own port");
}

#[test]
fn a_name_means_the_running_process_and_several_are_refused_with_their_ids() {
    let table = Table::default();
    let entries: Vec<Arc<Process>> = (0..3).map(|_| table.insert(command_entry).0).collect();
    entries[0].set_phase(Phase::Exited(0));
    let several = table.find("cmd").map(|p| p.id).unwrap_err();
    assert_eq!(
        several,
        Unresolved::Several {
            name: "cmd".into(),
            ids: vec![2, 3]
        }
    );
    let reply = several.reply("kill", true);
    assert_eq!(
        reply.message,
        "2 processes named `cmd` are running (ids 2, 3)"
    );
    assert_eq!(
        reply.hint.as_deref(),
        Some("name one by its id (`rhizome kill 2`), or all of them with `rhizome kill --all cmd`")
    );
    entries[2].set_phase(Phase::Exited(0));
    assert_eq!(
        table.find("cmd").unwrap().id,
        2,
        "the running one, not the newest"
    );
    entries[1].set_phase(Phase::Exited(0));
    assert_eq!(
        table.find("cmd").unwrap().id,
        3,
        "none running: the newest finished"
    );
    assert_eq!(table.listed_named("cmd").map(|v| v.len()), Ok(0));
    let unknown = table.find("cmdd").map(|p| p.id).unwrap_err();
    assert_eq!(
        unknown,
        Unresolved::Unknown {
            target: "cmdd".into(),
            close: vec!["cmd".into()]
        }
    );
    assert_eq!(
        unknown.reply("kill", true).hint.as_deref(),
        Some("did you mean cmd? (`rhizome ps --all` lists them all)")
    );
}

#[test]
fn a_finished_entry_is_revived_under_its_id_once() {
    let table = Table::default();
    let (old, _orders) = table.insert(command_entry);
    let still_running = table.revive(&old, None, |id| Ok::<_, ErrorReply>(command_entry(id)));
    assert!(still_running.is_err(), "only what finished");
    old.set_phase(Phase::Exited(0));
    let (new, _new_orders) = table
        .revive(&old, None, |id| Ok::<_, ErrorReply>(command_entry(id)))
        .unwrap();
    assert_eq!(new.id, old.id);
    assert!(!new.is_final());
    assert_eq!(table.list(true).len(), 1, "in its place");
    let again = table.revive(&old, None, |id| Ok::<_, ErrorReply>(command_entry(id)));
    assert!(again.is_err(), "the old entry is gone");
}
