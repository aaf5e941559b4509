//! The one test harness of the workspace, for the test kit's own tests and for rhizome's (which
//! add only what is about the rhizome binary, in `tests/common`): child processes killed by pid
//! when dropped, pipes collected in the background, deadline-bounded polls, loopback TCP helpers
//! with an echo server standing in for a database and a server of known bulk data, the fake API
//! server (and an `auth-provider: oidc` kubeconfig for it), what the fake kubectl
//! logged, a throwaway MariaDB, the real kubectl binaries, and the one rule for a test that
//! cannot run here (`skip`).
//!
//! Everything is re-exported here: `use rhizome_testkit::harness::*;`.

mod apiserver;
mod fake_kubectl;
mod kubectl;
mod mariadb;
mod net;
mod process;
mod skip;
mod wait;

pub use apiserver::{FakeApi, oidc_id_token, oidc_user};
pub use fake_kubectl::{KubectlCall, kubectl_calls, port_forward_pid};
pub use kubectl::{find_kubectl, kubectl_versions};
pub use mariadb::{MariaDb, query, query_port};
pub use net::{
    BulkServer, Transfer, bulk_ask, bulk_bytes, bulk_server, echo_on, echo_round_trip, echo_server,
    free_port, http, https, random_bytes, read_expecting, reset,
};
pub use process::{
    Collector, GroupGuard, Out, Proc, alive, children_of, group_members, kill_group,
};
pub use skip::{on_ci, require_file, require_root_or_skip, require_tool, skip, testkit_bin};
pub use wait::{poll, wait_for};
