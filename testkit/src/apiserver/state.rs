//! The fake cluster's state: one Deployment with one pod (its name, phase,
//! log and running Cloud SQL proxies), plus the server-wide counters and fault
//! switches that `/_control` reads and sets, and the cancellation tokens that
//! end upgraded connections (per pod, and all at once for `drop-streams`).

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::Config;
use super::{clock, cloudsql};

/// Characters Kubernetes uses for generated name suffixes.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// One pod of the Deployment.
#[derive(Debug)]
struct Pod {
    name: String,
    uid: String,
    phase: String,
    created: String,
    log: String,
    /// instance connection name -> local port of its relay.
    proxies: BTreeMap<String, u16>,
    /// Cancelled when the pod is replaced: closes relays and streams to it.
    token: CancellationToken,
}

/// A copy of what API objects need to know about the current pod.
#[derive(Debug, Clone)]
pub struct PodView {
    pub name: String,
    pub uid: String,
    pub phase: String,
    pub created: String,
    pub template_hash: String,
}

/// Shared by every connection.
#[derive(Debug)]
pub struct Shared {
    pub cfg: Config,
    template_hash: String,
    pod: Mutex<Pod>,
    /// Bumped on every log append and pod change (wakes `logs -f`).
    changes: watch::Sender<u64>,
    drop_token: Mutex<CancellationToken>,
    /// The bearer token API requests must carry (unused with `--plain-http`).
    token: String,
    requests: AtomicU64,
    unauthorized: AtomicU64,
    upgrades: AtomicU64,
    websocket_upgrades: AtomicU64,
    spdy_upgrades: AtomicU64,
    open_streams: AtomicU64,
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

impl Shared {
    pub fn new(cfg: Config, token: String) -> Arc<Self> {
        let template_hash = random_name(10);
        let pod = Self::new_pod(&cfg.deployment, &template_hash, "");
        Arc::new(Shared {
            cfg,
            template_hash,
            pod: Mutex::new(pod),
            changes: watch::channel(0).0,
            drop_token: Mutex::new(CancellationToken::new()),
            token,
            requests: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
            upgrades: AtomicU64::new(0),
            websocket_upgrades: AtomicU64::new(0),
            spdy_upgrades: AtomicU64::new(0),
            open_streams: AtomicU64::new(0),
            delay_ms: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
        })
    }

    fn new_pod(deployment: &str, hash: &str, previous: &str) -> Pod {
        let name = loop {
            let n = format!("{deployment}-{hash}-{}", random_name(5));
            if n != previous {
                break n;
            }
        };
        Pod {
            name,
            uid: random_uid(),
            phase: "Running".into(),
            created: clock::rfc3339_now(),
            log: String::new(),
            proxies: BTreeMap::new(),
            token: CancellationToken::new(),
        }
    }

    fn bump(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// The current pod.
    pub fn pod(&self) -> PodView {
        let p = lock(&self.pod);
        PodView {
            name: p.name.clone(),
            uid: p.uid.clone(),
            phase: p.phase.clone(),
            created: p.created.clone(),
            template_hash: self.template_hash.clone(),
        }
    }

    /// The cancellation token of `pod` if it is the current pod.
    pub fn pod_token(&self, pod: &str) -> Option<CancellationToken> {
        let p = lock(&self.pod);
        (p.name == pod).then(|| p.token.clone())
    }

    pub fn set_phase(&self, phase: &str) {
        lock(&self.pod).phase = phase.to_string();
        self.bump();
    }

    /// Replaces the pod: the old one's relays and streams end; the new one has
    /// no proxy and an empty log. Returns the new pod's name.
    pub fn replace_pod(&self) -> String {
        let mut p = lock(&self.pod);
        let next = Self::new_pod(&self.cfg.deployment, &self.template_hash, &p.name);
        let old = std::mem::replace(&mut *p, next);
        old.token.cancel();
        let name = p.name.clone();
        drop(p);
        self.bump();
        name
    }

    /// Appends to `pod`'s log if it is the current pod.
    pub fn append_log(&self, pod: &str, text: &str) -> bool {
        let mut p = lock(&self.pod);
        if p.name != pod {
            return false;
        }
        p.log.push_str(text);
        drop(p);
        self.bump();
        true
    }

    /// `pod`'s log if it is the current pod.
    pub fn log_of(&self, pod: &str) -> Option<String> {
        let p = lock(&self.pod);
        (p.name == pod).then(|| p.log.clone())
    }

    /// Wakes on every state change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The port of `pod`'s proxy for `instance`, starting one (on a new free
    /// port) if none runs. Returns the port and whether it was just started.
    pub fn ensure_proxy(self: &Arc<Self>, pod: &str, instance: &str) -> io::Result<(u16, bool)> {
        let mut p = lock(&self.pod);
        if p.name != pod {
            return Err(io::Error::new(io::ErrorKind::NotFound, "pod is gone"));
        }
        if let Some(port) = p.proxies.get(instance) {
            return Ok((*port, false));
        }
        let port = cloudsql::spawn_relay(self.clone(), pod, instance, p.token.clone())?;
        p.proxies.insert(instance.to_string(), port);
        Ok((port, true))
    }

    /// Whether a proxy of `pod` (the current pod) listens on `port`.
    pub fn pod_has_port(&self, pod: &str, port: u16) -> bool {
        let p = lock(&self.pod);
        p.name == pod && p.proxies.values().any(|&q| q == port)
    }

    /// Ports of the current pod's proxies.
    pub fn proxy_ports(&self) -> Vec<u16> {
        lock(&self.pod).proxies.values().copied().collect()
    }

    /// Ends every open upgraded connection now.
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
        let drop_token = lock(&self.drop_token).clone();
        self.open_streams.fetch_add(1, Ordering::SeqCst);
        Some(StreamGuard {
            shared: self.clone(),
            pod_token,
            drop_token,
        })
    }

    /// The bearer token API requests must carry.
    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn count_unauthorized(&self) {
        self.unauthorized.fetch_add(1, Ordering::SeqCst);
    }

    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
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
    pub fn state_json(&self) -> serde_json::Value {
        let p = lock(&self.pod);
        serde_json::json!({
            "pod": p.name,
            "phase": p.phase,
            "proxy_ports": p.proxies.values().collect::<Vec<_>>(),
            "open_streams": self.open_streams.load(Ordering::SeqCst),
            "upgrades": self.upgrades.load(Ordering::SeqCst),
            "websocket_upgrades": self.websocket_upgrades.load(Ordering::SeqCst),
            "spdy_upgrades": self.spdy_upgrades.load(Ordering::SeqCst),
            "requests": self.requests.load(Ordering::SeqCst),
            "unauthorized": self.unauthorized.load(Ordering::SeqCst),
            "refuse_upgrades": self.refusals.load(Ordering::SeqCst),
            "delay_ms": self.delay_ms.load(Ordering::SeqCst),
        })
    }
}

/// One open upgraded connection: counted in `open_streams` while alive, and
/// told to end when its pod is replaced or on `drop-streams`.
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
