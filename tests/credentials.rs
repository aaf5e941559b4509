//! Issue 12: a target's login (`user`, `database`, `password_command`) in what `forward` prints,
//! the password fetched by the client and kept nowhere, and simulate mode leading to a real
//! database (`simulate_upstream`).

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn config(port: u16, op: &Path, subcommand: &str, upstream: Option<&str>) -> String {
    let upstream = upstream
        .map(|u| format!("simulate_upstream = \"{u}\"\n"))
        .unwrap_or_default();
    format!(
        "[environments.shop]\ncontext = \"c\"\nnamespace = \"n\"\ndeployment = \"cloudsql\"\n\n\
         [environments.shop.databases.orders]\nsql_connection = \"p:r:orders\"\nlocal_port = {port}\n\
         user = \"root\"\ndatabase = \"shop\"\npassword_command = [\"{}\", \"{subcommand}\", \"op://shop/orders/password\"]\n{upstream}",
        op.display()
    )
}

#[test]
fn the_url_has_the_login_and_the_password_only_when_asked() {
    let rh = Rhizome::new();
    let bin = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-Pa55";
    let op = fake_op(bin.path(), secret);
    let port = free_port();
    write_config(&rh, &config(port, &op, "read", None));
    let forward = |extra: &[&str]| -> Out {
        let mut args = vec!["forward", "shop/orders", "--simulate"];
        args.extend_from_slice(extra);
        rh.command(args).output().unwrap().into()
    };
    let out = forward(&[]);
    assert_eq!(
        out.stdout,
        format!("mysql://root@127.0.0.1:{port}/shop\n"),
        "{out:?}"
    );
    let out = forward(&["--with-password"]);
    assert_eq!(
        out.stdout,
        format!("mysql://root:{secret}@127.0.0.1:{port}/shop\n"),
        "{out:?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&forward(&["--format", "json"]).stdout).unwrap();
    assert_eq!(
        (&json["user"], &json["database"]),
        (&"root".into(), &"shop".into())
    );
    assert!(json.get("password").is_none(), "{json}");
    let json: serde_json::Value =
        serde_json::from_str(&forward(&["--format", "json", "--with-password"]).stdout).unwrap();
    assert_eq!(json["password"], secret);

    // Nowhere the daemon keeps anything, and not in what it shows.
    rh.ok(["logs", "shop/orders"]);
    assert_eq!(
        files_containing(rh.path(), secret),
        Vec::<PathBuf>::new(),
        "the password is kept nowhere under RHIZOME_HOME"
    );
    assert!(!rh.ok(["ps", "--all", "--json"]).contains(secret));
    assert!(!rh.logs("shop/orders").contains(secret));
}

#[test]
fn a_failing_password_command_is_one_line_naming_it() {
    let rh = Rhizome::new();
    let bin = tempfile::tempdir().unwrap();
    let op = fake_op(bin.path(), "unused");
    write_config(&rh, &config(free_port(), &op, "nosuch", None));
    let out: Out = rh
        .command(["forward", "shop/orders", "--simulate", "--with-password"])
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(1), "{out:?}");
    let error: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(
        error,
        [format!(
            "error: the password command `{} nosuch op://shop/orders/password` of shop/orders ended with exit status 3: op: giving up",
            op.display()
        )],
        "{out:?}"
    );
    assert_eq!(out.stdout, "", "no address without the password asked for");

    // A target without a password command has none to show.
    let out: Out = rh
        .command([
            "forward",
            "na-prod/billing-bookkeeper",
            "--simulate",
            "--with-password",
        ])
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("has no `password_command`"), "{out:?}");
}

#[test]
fn simulate_mode_leads_to_a_real_database_when_told() {
    let Some(db) = MariaDb::start() else {
        return;
    };
    let rh = Rhizome::new();
    let bin = tempfile::tempdir().unwrap();
    let op = fake_op(bin.path(), "x");
    let port = free_port();
    write_config(&rh, &config(port, &op, "read", Some(&db.addr())));
    let out: Out = rh
        .command(["forward", "shop/orders", "--simulate"])
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        query_port(port, "SELECT item FROM shop.orders ORDER BY id").unwrap(),
        "apple\npear\nplum\n"
    );

    // The environment variable wins over the config, for one call.
    let other = Rhizome::new();
    let port = free_port();
    let out: Out = other
        .command([
            "forward",
            "na-prod/billing-bookkeeper",
            "--simulate",
            "--port",
            &port.to_string(),
        ])
        .env("RHIZOME_SIMULATE_UPSTREAM", db.addr())
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        query_port(port, "SELECT COUNT(*) FROM shop.orders").unwrap(),
        "3\n"
    );
}
