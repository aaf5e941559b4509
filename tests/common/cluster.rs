//! A fake cluster for `rhizome forward`: testkit's `fake-kubectl` as rhizome's kubectl, with its
//! state directory, fault plan and echo backend, and a home configured for it.

use std::path::PathBuf;
use std::process::Command;

use super::*;

/// A fake cluster: the fake kubectl's state directory, its backend and its plan.
pub struct Cluster {
    /// The fake kubectl, which rhizome runs as its kubectl (`RHIZOME_KUBECTL`).
    kubectl: PathBuf,
    /// Its state directory (`FAKE_KUBECTL_DIR`), with the plan in `plan`.
    dir: tempfile::TempDir,
    /// The echo server its port-forward splices to, standing in for the database.
    backend: std::net::SocketAddr,
    /// The local port of `fake/orders`.
    pub local_port: u16,
}

impl Cluster {
    /// The cluster and a home whose config has `fake/orders` (a database) and `fake/web` (a
    /// service) on the kubectl transport (the fake is a kubectl), with a short backoff cap so
    /// that tests of many restarts stay short.
    pub fn new(plan: &str) -> Option<(Cluster, Rhizome)> {
        let kubectl = testkit_bin("fake-kubectl")?;
        let cluster = Cluster {
            kubectl,
            dir: tempfile::tempdir().unwrap(),
            backend: echo_server(),
            local_port: free_port(),
        };
        std::fs::write(cluster.dir.path().join("plan"), plan).unwrap();
        let rh = Rhizome::new();
        write_config(
            &rh,
            &format!(
                "[forward]\ntransport = \"kubectl\"\nbackoff_max_secs = 1\n\n[environments.fake]\ncontext = \"fake-ctx\"\nnamespace = \"db\"\ndeployment = \"cloudsql\"\n\n[environments.fake.databases.orders]\nsql_connection = \"proj:region:orders\"\nlocal_port = {}\n\n[environments.fake.services.web]\nresource = \"svc/web\"\nremote_port = 8080\nlocal_port = {}\nscheme = \"http\"\n",
                cluster.local_port,
                free_port()
            ),
        );
        Some((cluster, rh))
    }

    /// `rhizome forward TARGET` with kubectl replaced by the fake.
    pub fn forward(&self, rh: &Rhizome, target: &str) -> Out {
        let out = self.command(rh, &["forward", target]).output().unwrap();
        out.into()
    }

    /// A `rhizome` command for `rh` with kubectl replaced by the fake.
    pub fn command(&self, rh: &Rhizome, args: &[&str]) -> Command {
        let mut command = rh.command(args);
        command
            .env("RHIZOME_KUBECTL", &self.kubectl)
            .env("FAKE_KUBECTL_DIR", self.dir.path())
            .env("FAKE_KUBECTL_BACKEND", self.backend.to_string())
            .env("FAKE_KUBECTL_PLAN", self.dir.path().join("plan"))
            .env("FAKE_KUBECTL_CONTEXTS", "fake-ctx");
        command
    }

    /// The pid of the port-forward that last printed its Forwarding line.
    pub fn forwarder(&self) -> Option<u32> {
        port_forward_pid(self.dir.path())
    }

    /// Every kubectl call the fake saw.
    pub fn calls(&self) -> Vec<KubectlCall> {
        kubectl_calls(self.dir.path())
    }

    /// The address of `fake/orders`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.local_port)
    }
}
