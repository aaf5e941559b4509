//! `rhizome exec TARGET... -- CMD` (issue 12): the tunnels opened, the command run in the
//! foreground with their addresses (and a password from the target's `password_command`) in its
//! environment, its exit status and the signals sent to rhizome passed through, and the password
//! kept nowhere.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn exec_hands_the_command_its_database_through_the_real_kubectl() {
    let Some(kubectl) = require_tool("kubectl") else {
        return;
    };
    let Some(db) = MariaDb::start() else { return };
    let Some(apiserver) = testkit_bin("fake-apiserver") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let api = FakeApi::start(apiserver, home.path(), &db.addr(), &[]);
    let secret = "Pa55-w0rd-from-op";
    let op = fake_op(home.path(), secret);
    let rh = Rhizome::new();
    write_config(
        &rh,
        &format!(
            "[forward]\ntransport = \"kubectl\"\n\n[environments.e2e]\ncontext = \"e2e\"\nnamespace = \"e2e\"\ndeployment = \"db-proxy\"\nkubeconfig = \"{}\"\n\n[environments.e2e.databases.db]\nsql_connection = \"e2e-project:us-central1:db\"\nuser = \"root\"\ndatabase = \"shop\"\npassword_command = [\"{}\", \"read\", \"op://e2e/db/password\"]\n",
            api.kubeconfig.display(),
            op.display()
        ),
    );
    let exec = |command: &[&str]| -> Out {
        let mut args = vec!["exec", "e2e/db", "--"];
        args.extend_from_slice(command);
        rh.command(args)
            .env("RHIZOME_KUBECTL", &kubectl)
            .env("HOME", rh.path())
            .env("KUBECACHEDIR", rh.path().join("kube-cache"))
            .output()
            .unwrap()
            .into()
    };
    let out = exec(&[
        "mariadb",
        "--skip-ssl",
        "-u",
        "root",
        "--batch",
        "--skip-column-names",
        "-e",
        "SELECT item FROM shop.orders ORDER BY id",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "apple\npear\nplum\n", "{out:?}");
    let out = exec(&["printenv", "MYSQL_PWD"]);
    assert_eq!(out.stdout, format!("{secret}\n"), "{out:?}");
    let out = exec(&["sh", "-c", "exit 7"]);
    assert_eq!(out.code, Some(7), "{out:?}");

    assert_eq!(
        files_containing(rh.path(), secret),
        Vec::<PathBuf>::new(),
        "the password is kept nowhere under RHIZOME_HOME"
    );
    assert!(!rh.ok(["ps", "--all", "--json"]).contains(secret));
    assert!(!rh.logs("e2e/db").contains(secret));
}

#[test]
fn exec_names_every_target_and_gives_no_password_without_one() {
    let rh = Rhizome::new();
    write_config(
        &rh,
        "[environments.local.services.pg]\nresource = \"svc/pg\"\nremote_port = 5432\ncontext = \"c\"\nnamespace = \"n\"\nscheme = \"postgresql\"\nuser = \"app\"\ndatabase = \"orders\"\n",
    );
    let out: Out = rh
        .command([
            "exec",
            "local/pg",
            "na-prod/billing-bookkeeper",
            "--simulate",
            "--",
            "printenv",
        ])
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(0), "{out:?}");
    let var = |name: &str| -> Option<String> {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    let port = var("RHIZOME_PORT").expect("RHIZOME_PORT");
    assert_eq!(
        var("DATABASE_URL"),
        Some(format!("postgresql://app@127.0.0.1:{port}/orders"))
    );
    assert_eq!(var("PGPORT"), Some(port.clone()));
    assert_eq!(var("PGUSER").as_deref(), Some("app"));
    for secret in ["PGPASSWORD", "MYSQL_PWD"] {
        assert_eq!(var(secret), None, "{secret} without a password_command");
    }
    assert_eq!(
        var("RHIZOME_NA_PROD_BILLING_BOOKKEEPER_URL"),
        Some("mysql://127.0.0.1:3306".into())
    );
    assert_eq!(var("RHIZOME_LOCAL_PG_PORT"), Some(port));
}

#[test]
fn a_signal_sent_to_exec_reaches_the_command() {
    let rh = Rhizome::new();
    let script = "trap 'echo got-int; exit 5' INT; echo ready; while :; do sleep 0.05; done";
    let mut exec = Proc::spawn(
        rh.command([
            "exec",
            "na-prod/billing-bookkeeper",
            "--simulate",
            "--quiet",
            "--",
            "sh",
            "-c",
            script,
        ])
        .stdout(Stdio::piped()),
        "rhizome exec",
    );
    let mut lines = BufReader::new(exec.child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let pid = nix::unistd::Pid::from_raw(exec.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "got-int");
    let status = exec
        .wait_timeout(Duration::from_secs(10))
        .expect("exec ends with its command");
    assert_eq!(status.code(), Some(5), "the command's exit status");
}
