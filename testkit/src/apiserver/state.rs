//! The fake cluster's state: the Deployment's one pod (or none, between a delete and the next
//! create), its name, phase, readiness, log and running Cloud SQL proxies; the resource versions
//! every change of it takes and the recent events a watch resumes from; the server-wide
//! counters and fault switches that `/_control` reads and sets; the open forwarded connections
//! (for `fail-stream`); and the cancellation tokens that end upgraded connections (per pod, and
//! all at once for `drop-streams`).

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::config::Config;
use super::{clock, cloudsql, objects};

/// Characters Kubernetes uses for generated name suffixes.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// How many pod events are kept for watches that resume from a resource version; a watch from
/// a version older than these gets `410 Gone`, as from a real server after compaction.
const EVENT_HISTORY: usize = 256;

/// The first resource version handed out (any number works; a large one looks like a cluster's).
const FIRST_RESOURCE_VERSION: u64 = 1000;

/// One pod of the Deployment.
#[derive(Debug)]
struct Pod {
    name: String,
    uid: String,
    phase: String,
    /// The Ready condition (only while Running): `pod-ready` turns it off without a new pod.
    ready: bool,
    created: String,
    log: String,
    /// instance connection name -> local port of its relay.
    proxies: BTreeMap<String, u16>,
    /// Cancelled when the pod is deleted: closes relays and streams to it.
    token: CancellationToken,
    /// The resource version of its last change.
    resource_version: u64,
}

/// A copy of what API objects need to know about a pod.
#[derive(Debug, Clone)]
pub struct PodView {
    pub name: String,
    pub uid: String,
    pub phase: String,
    pub ready: bool,
    pub created: String,
    pub template_hash: String,
    pub resource_version: u64,
}

/// What happened to a pod, as a watch reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change of the pod, with the object as it was right after it.
#[derive(Debug, Clone)]
pub struct Event {
    pub resource_version: u64,
    pub kind: EventType,
    pub object: Value,
}

/// Why a watch cannot resume from a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone {
    /// The oldest version still resumable from.
    pub oldest: u64,
}

/// The pod and its history, under one lock so that an event and the state it describes never
/// disagree.
#[derive(Debug)]
struct Cluster {
    pod: Option<Pod>,
    /// The last resource version handed out.
    resource_version: u64,
    /// Recent events, oldest first.
    events: VecDeque<Event>,
    /// Events up to this version have been dropped from `events`.
    compacted: u64,
}

/// An open forwarded connection, as `/_control/state` lists it.
#[derive(Debug)]
struct Forward {
    pod: String,
    port: u16,
    transport: &'static str,
    /// Bytes sent to the client so far: what tells one connection from another when a test
    /// picks the one to fail.
    bytes_down: Arc<AtomicU64>,
    /// Fires the connection's failure (`fail-stream`) with the message to send.
    fail: Option<oneshot::Sender<String>>,
}

/// Shared by every connection.
#[derive(Debug)]
pub struct Shared {
    pub cfg: Config,
    template_hash: String,
    cluster: Mutex<Cluster>,
    /// Bumped on every log append and pod change (wakes `logs -f` and watches).
    changes: watch::Sender<u64>,
    drop_token: Mutex<CancellationToken>,
    /// The bearer token API requests must carry (unused with `--plain-http`).
    token: Mutex<String>,
    /// Open forwarded connections by id, for `fail-stream`.
    forwards: Mutex<BTreeMap<u64, Forward>>,
    next_forward: AtomicU64,
    /// Until when the server answers nothing (`stall`).
    stalled_until: Mutex<Option<tokio::time::Instant>>,
    requests: AtomicU64,
    unauthorized: AtomicU64,
    upgrades: AtomicU64,
    websocket_upgrades: AtomicU64,
    spdy_upgrades: AtomicU64,
    open_streams: AtomicU64,
    watches: AtomicU64,
    delay_ms: AtomicU64,
    refusals: AtomicU64,
}

fn random_name(len: usize) -> String {
    (0..len)
        .map(|_| NAME_ALPHABET[fastrand::usize(..NAME_ALPHABET.len())] as char)
        .collect()
}

fn random_uid() -> String {
    let hex = |n: usize| -> String {
        (0..n)
            .map(|_| format!("{:x}", fastrand::u8(..16)))
            .collect()
    };
    format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not wedge the server: keep using the data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn no_pod() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "the deployment has no pod")
}

impl Shared {
    pub fn new(cfg: Config, token: String) -> Arc<Self> {
        let template_hash = random_name(10);
        let shared = Arc::new(Shared {
            cfg,
            template_hash,
            cluster: Mutex::new(Cluster {
                pod: None,
                resource_version: FIRST_RESOURCE_VERSION,
                events: VecDeque::new(),
                compacted: FIRST_RESOURCE_VERSION,
            }),
            changes: watch::channel(0).0,
            drop_token: Mutex::new(CancellationToken::new()),
            token: Mutex::new(token),
            forwards: Mutex::new(BTreeMap::new()),
            next_forward: AtomicU64::new(1),
            stalled_until: Mutex::new(None),
            requests: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
            upgrades: AtomicU64::new(0),
            websocket_upgrades: AtomicU64::new(0),
            spdy_upgrades: AtomicU64::new(0),
            open_streams: AtomicU64::new(0),
            watches: AtomicU64::new(0),
            delay_ms: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
        });
        shared.create_pod(true);
        // The first pod is there from the start: no watch needs to see it being made.
        let mut c = lock(&shared.cluster);
        c.compacted = c.resource_version;
        c.events.clear();
        drop(c);
        shared
    }

    fn view(&self, p: &Pod) -> PodView {
        PodView {
            name: p.name.clone(),
            uid: p.uid.clone(),
            phase: p.phase.clone(),
            ready: p.ready,
            created: p.created.clone(),
            template_hash: self.template_hash.clone(),
            resource_version: p.resource_version,
        }
    }

    fn bump(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Gives the pod the next resource version and records the event, under the lock.
    fn record(&self, c: &mut Cluster, kind: EventType, deleted: bool) {
        c.resource_version += 1;
        let rv = c.resource_version;
        let Some(p) = c.pod.as_mut() else { return };
        p.resource_version = rv;
        let view = self.view(p);
        let mut object = objects::pod(&self.cfg, &view);
        if deleted {
            object["metadata"]["deletionTimestamp"] = clock::rfc3339_now().into();
            object["metadata"]["deletionGracePeriodSeconds"] = 0.into();
        }
        c.events.push_back(Event {
            resource_version: rv,
            kind,
            object,
        });
        while c.events.len() > EVENT_HISTORY {
            if let Some(e) = c.events.pop_front() {
                c.compacted = e.resource_version;
            }
        }
    }

    /// The current pod, if the Deployment has one.
    pub fn pod(&self) -> Option<PodView> {
        lock(&self.cluster).pod.as_ref().map(|p| self.view(p))
    }

    /// The current pod and the cluster's resource version, read together (for a list).
    pub fn snapshot(&self) -> (Option<PodView>, u64) {
        let c = lock(&self.cluster);
        (c.pod.as_ref().map(|p| self.view(p)), c.resource_version)
    }

    /// The events after `after`, or `Gone` if some of them are no longer kept.
    pub fn events_since(&self, after: u64) -> Result<Vec<Event>, Gone> {
        let c = lock(&self.cluster);
        if after < c.compacted {
            return Err(Gone {
                oldest: c.compacted,
            });
        }
        Ok(c.events
            .iter()
            .filter(|e| e.resource_version > after)
            .cloned()
            .collect())
    }

    /// Forgets every event so far: a watch from any earlier version gets `410 Gone`.
    pub fn compact(&self) -> u64 {
        let mut c = lock(&self.cluster);
        c.events.clear();
        c.compacted = c.resource_version;
        c.compacted
    }

    /// The cancellation token of `pod` if it is the current pod.
    pub fn pod_token(&self, pod: &str) -> Option<CancellationToken> {
        let c = lock(&self.cluster);
        c.pod
            .as_ref()
            .filter(|p| p.name == pod)
            .map(|p| p.token.clone())
    }

    /// Sets the pod's phase (a MODIFIED event); `false` without a pod.
    pub fn set_phase(&self, phase: &str) -> bool {
        self.modify(|p| p.phase = phase.to_string())
    }

    /// Sets the pod's Ready condition (a MODIFIED event); `false` without a pod.
    pub fn set_ready(&self, ready: bool) -> bool {
        self.modify(|p| p.ready = ready)
    }

    fn modify(&self, f: impl FnOnce(&mut Pod)) -> bool {
        let mut c = lock(&self.cluster);
        let Some(p) = c.pod.as_mut() else {
            return false;
        };
        f(p);
        self.record(&mut c, EventType::Modified, false);
        drop(c);
        self.bump();
        true
    }

    /// Deletes the pod (a DELETED event): its relays and streams end. Returns its name, or
    /// `None` if there was none.
    pub fn delete_pod(&self) -> Option<String> {
        let mut c = lock(&self.cluster);
        c.pod.as_ref()?;
        self.record(&mut c, EventType::Deleted, true);
        let old = c.pod.take()?;
        old.token.cancel();
        drop(c);
        self.bump();
        Some(old.name)
    }

    /// Creates a new pod, Running, Ready or not (an ADDED event), with no proxy and an empty
    /// log, if there is none. Returns the pod's name.
    pub fn create_pod(&self, ready: bool) -> String {
        let mut c = lock(&self.cluster);
        if let Some(p) = &c.pod {
            return p.name.clone();
        }
        let name = format!(
            "{}-{}-{}",
            self.cfg.deployment,
            self.template_hash,
            random_name(5)
        );
        c.pod = Some(Pod {
            name: name.clone(),
            uid: random_uid(),
            phase: "Running".into(),
            ready,
            created: clock::rfc3339_now(),
            log: String::new(),
            proxies: BTreeMap::new(),
            token: CancellationToken::new(),
            resource_version: 0,
        });
        self.record(&mut c, EventType::Added, false);
        drop(c);
        self.bump();
        name
    }

    /// Replaces the pod as a rollout does: the old one is deleted, a new one (another name, no
    /// proxy, an empty log) created. Returns the new pod's name.
    pub fn replace_pod(&self, ready: bool) -> String {
        let old = self.delete_pod();
        loop {
            let name = self.create_pod(ready);
            // Names are random: never hand out the one just deleted.
            if Some(&name) != old.as_ref() {
                return name;
            }
            self.delete_pod();
        }
    }

    /// Appends to `pod`'s log if it is the current pod.
    pub fn append_log(&self, pod: &str, text: &str) -> bool {
        let mut c = lock(&self.cluster);
        let Some(p) = c.pod.as_mut().filter(|p| p.name == pod) else {
            return false;
        };
        p.log.push_str(text);
        drop(c);
        self.bump();
        true
    }

    /// `pod`'s log if it is the current pod.
    pub fn log_of(&self, pod: &str) -> Option<String> {
        let c = lock(&self.cluster);
        c.pod
            .as_ref()
            .filter(|p| p.name == pod)
            .map(|p| p.log.clone())
    }

    /// Wakes on every state change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The port of `pod`'s proxy for `instance`, starting one (on a new free
    /// port) if none runs. Returns the port and whether it was just started.
    pub fn ensure_proxy(self: &Arc<Self>, pod: &str, instance: &str) -> io::Result<(u16, bool)> {
        let mut c = lock(&self.cluster);
        let p = c
            .pod
            .as_mut()
            .filter(|p| p.name == pod)
            .ok_or_else(no_pod)?;
        if let Some(port) = p.proxies.get(instance) {
            return Ok((*port, false));
        }
        let port = cloudsql::spawn_relay(self.clone(), pod, instance, p.token.clone())?;
        p.proxies.insert(instance.to_string(), port);
        Ok((port, true))
    }

    /// Whether a proxy of `pod` (the current pod) listens on `port`.
    pub fn pod_has_port(&self, pod: &str, port: u16) -> bool {
        let c = lock(&self.cluster);
        c.pod
            .as_ref()
            .is_some_and(|p| p.name == pod && p.proxies.values().any(|&q| q == port))
    }

    /// Ends every open upgraded connection, watch and followed log now.
    pub fn drop_streams(&self) {
        let old = std::mem::take(&mut *lock(&self.drop_token));
        old.cancel();
    }

    /// The token `drop-streams` cancels next: streams that are no upgrade (a followed log, a
    /// watch) end on it too.
    pub fn drop_token(&self) -> CancellationToken {
        lock(&self.drop_token).clone()
    }

    /// Registers an upgraded connection to `pod`; `None` if the pod is gone.
    pub fn open_stream(self: &Arc<Self>, pod: &str) -> Option<StreamGuard> {
        let pod_token = self.pod_token(pod)?;
        let drop_token = self.drop_token();
        self.open_streams.fetch_add(1, Ordering::SeqCst);
        Some(StreamGuard {
            shared: self.clone(),
            pod_token,
            drop_token,
        })
    }

    /// Registers one forwarded connection (a data/error pair) to `port` of `pod`.
    pub fn open_forward(
        self: &Arc<Self>,
        pod: &str,
        port: u16,
        transport: &'static str,
    ) -> ForwardGuard {
        let id = self.next_forward.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        let bytes_down = Arc::new(AtomicU64::new(0));
        lock(&self.forwards).insert(
            id,
            Forward {
                pod: pod.to_string(),
                port,
                transport,
                bytes_down: bytes_down.clone(),
                fail: Some(tx),
            },
        );
        ForwardGuard {
            shared: self.clone(),
            id,
            bytes_down,
            failed: rx,
        }
    }

    /// Fails the forwarded connection `id` (the newest if `None`) with `message` on its error
    /// stream. Returns the id failed, or `None` if there was no such connection.
    pub fn fail_forward(&self, id: Option<u64>, message: &str) -> Option<u64> {
        let mut forwards = lock(&self.forwards);
        let id = match id {
            Some(id) => id,
            None => *forwards
                .iter()
                .rev()
                .find(|(_, f)| f.fail.is_some())
                .map(|(id, _)| id)?,
        };
        let fail = forwards.get_mut(&id)?.fail.take()?;
        let _ = fail.send(message.to_string());
        Some(id)
    }

    /// The bearer token API requests must carry.
    pub fn token(&self) -> String {
        lock(&self.token).clone()
    }

    /// Changes the token: the credential plugin hands out the new one from now on.
    pub fn set_token(&self, token: String) {
        *lock(&self.token) = token;
    }

    /// Stops answering for `d` from now: new connections, requests and streams wait it out.
    pub fn stall(&self, d: Duration) {
        *lock(&self.stalled_until) = Some(tokio::time::Instant::now() + d);
    }

    /// Waits while the server is stalled.
    pub async fn stall_wait(&self) {
        loop {
            let until = *lock(&self.stalled_until);
            match until {
                Some(t) if t > tokio::time::Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }

    pub fn count_unauthorized(&self) {
        self.unauthorized.fetch_add(1, Ordering::SeqCst);
    }

    pub fn count_upgrade(&self, websocket: bool) {
        self.upgrades.fetch_add(1, Ordering::SeqCst);
        let c = if websocket {
            &self.websocket_upgrades
        } else {
            &self.spdy_upgrades
        };
        c.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts an open watch for as long as the guard lives.
    pub fn open_watch(self: &Arc<Self>) -> WatchGuard {
        self.watches.fetch_add(1, Ordering::SeqCst);
        WatchGuard(self.clone())
    }

    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(Ordering::SeqCst))
    }

    pub fn set_delay_ms(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    pub fn set_refusals(&self, n: u64) {
        self.refusals.store(n, Ordering::SeqCst);
    }

    /// Whether to refuse this upgrade. A refused WebSocket attempt does not
    /// use up the budget (kubectl retries the same command over SPDY, and
    /// that attempt is refused and counted), so `n` is the number of kubectl
    /// commands whose upgrade fails, whatever their transport.
    pub fn take_refusal(&self, websocket: bool) -> bool {
        if websocket {
            return self.refusals.load(Ordering::SeqCst) > 0;
        }
        self.refusals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// The `/_control/state` document.
    pub fn state_json(&self) -> Value {
        let c = lock(&self.cluster);
        let forwards: Vec<Value> = lock(&self.forwards)
            .iter()
            .map(|(id, f)| {
                serde_json::json!({"id": id, "pod": f.pod, "port": f.port,
                                   "transport": f.transport,
                                   "bytes_down": f.bytes_down.load(Ordering::Relaxed)})
            })
            .collect();
        let stalled = lock(&self.stalled_until).is_some_and(|t| t > tokio::time::Instant::now());
        let pod = c.pod.as_ref();
        serde_json::json!({
            "pod": pod.map(|p| p.name.clone()),
            "phase": pod.map(|p| p.phase.clone()),
            "ready": pod.is_some_and(|p| p.ready && p.phase == "Running"),
            "resource_version": c.resource_version.to_string(),
            "proxy_ports": pod.map(|p| p.proxies.values().copied().collect::<Vec<_>>()).unwrap_or_default(),
            "open_streams": self.open_streams.load(Ordering::SeqCst),
            "forwards": forwards,
            "watches": self.watches.load(Ordering::SeqCst),
            "upgrades": self.upgrades.load(Ordering::SeqCst),
            "websocket_upgrades": self.websocket_upgrades.load(Ordering::SeqCst),
            "spdy_upgrades": self.spdy_upgrades.load(Ordering::SeqCst),
            "requests": self.requests.load(Ordering::SeqCst),
            "unauthorized": self.unauthorized.load(Ordering::SeqCst),
            "refuse_upgrades": self.refusals.load(Ordering::SeqCst),
            "delay_ms": self.delay_ms.load(Ordering::SeqCst),
            "stalled": stalled,
        })
    }
}

/// One open upgraded connection: counted in `open_streams` while alive, and
/// told to end when its pod is deleted or on `drop-streams`.
#[derive(Debug)]
pub struct StreamGuard {
    shared: Arc<Shared>,
    pod_token: CancellationToken,
    drop_token: CancellationToken,
}

impl StreamGuard {
    /// Resolves when this connection must end abruptly.
    pub async fn cancelled(&self) {
        tokio::select! {
            _ = self.pod_token.cancelled() => {}
            _ = self.drop_token.cancelled() => {}
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.shared.open_streams.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One open forwarded connection: listed in the state while alive, and told when
/// `fail-stream` picks it.
#[derive(Debug)]
pub struct ForwardGuard {
    shared: Arc<Shared>,
    pub id: u64,
    bytes_down: Arc<AtomicU64>,
    failed: oneshot::Receiver<String>,
}

impl ForwardGuard {
    /// The counter of bytes sent to the client, for the task that sends them.
    pub fn bytes_down(&self) -> Arc<AtomicU64> {
        self.bytes_down.clone()
    }

    /// Resolves with the message to fail with, once `fail-stream` picks this connection.
    pub async fn failed(&mut self) -> String {
        match (&mut self.failed).await {
            Ok(message) => message,
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for ForwardGuard {
    fn drop(&mut self) {
        lock(&self.shared.forwards).remove(&self.id);
    }
}

/// An open watch, counted in `watches` while alive.
#[derive(Debug)]
pub struct WatchGuard(Arc<Shared>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.watches.fetch_sub(1, Ordering::SeqCst);
    }
}
