//! The fake API server's `--token`, checked by the real kubectl: a kubeconfig whose user is the
//! legacy `auth-provider: oidc` (an `id-token` that kubectl sends as its bearer token while the
//! JWT's `exp` is ahead) gets through to a server started with that token, and is refused by one
//! that wants another. Without kubectl on PATH the test says so and passes, unless CI=true.

use std::process::{Command, Stdio};

use rhizome_testkit::harness::{
    FakeApi, Out, Proc, find_kubectl, free_port, oidc_id_token, oidc_user, testkit_bin,
};

fn kubectl(bin: &std::path::Path, kubeconfig: &std::path::Path, home: &std::path::Path) -> Out {
    let mut cmd = Command::new(bin);
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "pods", "-o", "name"])
        .env("HOME", home)
        .env("KUBECACHEDIR", home.join("cache"))
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Proc::spawn(&mut cmd, "kubectl get pods").finish(std::time::Duration::from_secs(30))
}

#[test]
fn kubectl_s_oidc_auth_provider_sends_the_id_token_the_server_wants() {
    let Some(bin) = find_kubectl("kubectl") else {
        return;
    };
    let Some(apiserver) = testkit_bin("fake-apiserver") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("127.0.0.1:{}", free_port());
    let token = oidc_id_token();
    let api = FakeApi::start(&apiserver, dir.path(), &db, &["--token", &token]);
    let oidc = dir.path().join("kubeconfig-oidc");
    api.write_kubeconfig_with_user(&oidc, &oidc_user(&token));

    let out = kubectl(&bin, &oidc, dir.path());
    assert_eq!(out.code, Some(0), "{out:?}");
    let pod = api.state()["pod"].as_str().unwrap().to_string();
    assert_eq!(out.stdout, format!("pod/{pod}\n"));
    assert_eq!(api.plugin_calls(), 0, "the exec plugin is not this user's");
    assert_eq!(api.state()["unauthorized"], 0);
    // The plugin's kubeconfig still works: it hands out the same token.
    assert_eq!(kubectl(&bin, &api.kubeconfig, dir.path()).code, Some(0));

    // A server that wants another token refuses the same kubeconfig.
    let other = tempfile::tempdir().unwrap();
    let api = FakeApi::start(&apiserver, other.path(), &db, &[]);
    let oidc = other.path().join("kubeconfig-oidc");
    api.write_kubeconfig_with_user(&oidc, &oidc_user(&token));
    let out = kubectl(&bin, &oidc, other.path());
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("Unauthorized") || out.stderr.contains("credentials"),
        "{out:?}"
    );
}
