//! The pods behind a tunnel, followed through a list and watch of the API (kube-rs's watcher,
//! which relists when the server has compacted its history): first to choose a Running and Ready
//! pod, then to learn at once when that pod is deleted, replaced or stops being Ready, so that the
//! tunnel moves before a client needs it. No connection to the database is made for this.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};

/// Which pods may serve the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The pods of a Deployment or Service: `app=web,tier=db`.
    Labels(String),
    /// One pod, by name (`pod/NAME`).
    Named(String),
}

/// Why the chosen pod no longer serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gone {
    Deleted(String),
    NotReady(String),
}

impl Gone {
    pub fn describe(&self) -> String {
        match self {
            Gone::Deleted(pod) => format!("pod {pod} was deleted"),
            Gone::NotReady(pod) => format!("pod {pod} is not Ready"),
        }
    }
}

type Events = Pin<Box<dyn Stream<Item = Result<Event<Pod>, watcher::Error>> + Send>>;

/// A watch of the pods a selector names, and what it has seen of them.
pub struct PodWatch {
    events: Events,
    /// The pods as of the last complete list, updated by every event since.
    pods: BTreeMap<String, Pod>,
    /// Pods of a relist in progress.
    relisting: BTreeMap<String, Pod>,
    /// Whether one complete list has been seen.
    listed: bool,
    /// The last error of the watch, to explain a wait that ran out.
    last_error: Option<String>,
}

impl PodWatch {
    pub fn start(api: Api<Pod>, selector: &Selector) -> PodWatch {
        let config = match selector {
            Selector::Labels(labels) => watcher::Config::default().labels(labels),
            Selector::Named(name) => {
                watcher::Config::default().fields(&format!("metadata.name={name}"))
            }
        };
        PodWatch {
            events: watcher::watcher(api, config).default_backoff().boxed(),
            pods: BTreeMap::new(),
            relisting: BTreeMap::new(),
            listed: false,
            last_error: None,
        }
    }

    /// The Running and Ready pod the tunnel should use, once there is one: the oldest, as the
    /// one most likely to stay. Waits up to `within`, then says why none would do.
    pub async fn ready(&mut self, within: Duration) -> Result<Pod, String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.listed
                && let Some(pod) = self.first_ready()
            {
                return Ok(pod.clone());
            }
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(true) => {}
                Ok(false) => return Err("the pod watch ended".into()),
                Err(_) => return Err(self.why_none(within)),
            }
        }
    }

    /// Returns when `chosen` is deleted or stops being Ready.
    pub async fn gone(&mut self, chosen: &str) -> Gone {
        loop {
            if self.listed {
                match self.pods.get(chosen) {
                    None => return Gone::Deleted(chosen.to_string()),
                    Some(pod) if !is_ready(pod) => return Gone::NotReady(chosen.to_string()),
                    Some(_) => {}
                }
            }
            if !self.next().await {
                // The watcher retries for ever; an end is not expected, but is not a pod gone.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Takes in the next event; false once the stream has ended.
    async fn next(&mut self) -> bool {
        let Some(event) = self.events.next().await else {
            return false;
        };
        match event {
            Ok(Event::Apply(pod)) => {
                self.pods.insert(name(&pod), pod);
            }
            Ok(Event::Delete(pod)) => {
                self.pods.remove(&name(&pod));
            }
            Ok(Event::Init) => self.relisting.clear(),
            Ok(Event::InitApply(pod)) => {
                self.relisting.insert(name(&pod), pod);
            }
            Ok(Event::InitDone) => {
                self.pods = std::mem::take(&mut self.relisting);
                self.listed = true;
            }
            Err(err) => self.last_error = Some(err.to_string()),
        }
        true
    }

    fn first_ready(&self) -> Option<&Pod> {
        self.pods
            .values()
            .filter(|pod| is_ready(pod))
            .min_by_key(|pod| pod.metadata.creation_timestamp.clone())
    }

    fn why_none(&self, within: Duration) -> String {
        let secs = within.as_secs();
        if !self.listed {
            let why = self.last_error.as_deref().unwrap_or("no answer");
            return format!("the pods could not be listed within {secs} s: {why}");
        }
        if self.pods.is_empty() {
            return format!("no pod matched within {secs} s");
        }
        let states: Vec<String> = self
            .pods
            .values()
            .map(|pod| format!("{} is {}", name(pod), state(pod)))
            .collect();
        format!(
            "no pod was Running and Ready within {secs} s ({})",
            states.join(", ")
        )
    }
}

pub fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// Running, its Ready condition True, and not being deleted.
pub fn is_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    pod.metadata.deletion_timestamp.is_none()
        && status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn state(pod: &Pod) -> String {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".into());
    if phase == "Running" && !is_ready(pod) {
        "Running but not Ready".into()
    } else {
        phase
    }
}
