//! What a user sees when the cluster refuses them: the `netconform` command
//! run with credentials that may not create namespaces, with a token the API
//! server no longer accepts, and against a server that is not there, must
//! each stop with one line naming the kubeconfig and context and what went
//! wrong, and create nothing.
//!
//! Needs a cluster with admin credentials (it creates a labelled namespace
//! and a ServiceAccount without any role, and deletes them); ignored without
//! one unless NETCONFORM_REQUIRE_CLUSTER=1.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::config::Kubeconfig;
use kube::Api;
use libtest_mimic::{Arguments, Failed, Trial};
use netconform_harness::cluster::{self, namespaces, run::RunId};
use std::path::Path;
use std::process::Command;

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let require = std::env::var("NETCONFORM_REQUIRE_CLUSTER").is_ok_and(|v| v == "1");
    let reachable = runtime.block_on(cluster::connect()).is_ok();
    let trial = Trial::test("access::refusals-are-one-clear-line", move || {
        runtime.block_on(refusals_are_one_clear_line())
    })
    .with_ignored_flag(!reachable && !require);
    libtest_mimic::run(&args, vec![trial]).exit_code()
}

/// The netconform command with a kubeconfig; its exit status and stderr.
fn netconform(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netconform"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("NETCONFORM_CONTEXT")
        .env(
            "NETCONFORM_REPORT_DIR",
            std::env::temp_dir().join("netconform-access-reports"),
        )
        .output()
        .expect("the netconform binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The current kubeconfig with its user replaced by a bearer token.
fn kubeconfig_with_token(token: &str, dir: &Path) -> Result<std::path::PathBuf, Failed> {
    let source = std::env::var("KUBECONFIG")
        .ok()
        .and_then(|k| std::env::split_paths(&k).next())
        .ok_or("KUBECONFIG names no file")?;
    let mut config = Kubeconfig::read_from(&source).map_err(|e| e.to_string())?;
    for named in &mut config.auth_infos {
        if let Some(auth) = named.auth_info.as_mut() {
            *auth = kube::config::AuthInfo {
                token: Some(token.to_string().into()),
                ..Default::default()
            };
        }
    }
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        serde_yaml::to_string(&config).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    Ok(path)
}

async fn refusals_are_one_clear_line() -> Result<(), Failed> {
    let admin = cluster::connect().await.map_err(|e| e.to_string())?;
    let client = admin.client.clone();
    let run = RunId::generate();
    let namespace = namespaces::namespace_name("access", "main", &run);
    namespaces::create(&client, &namespace, run.labels("access"))
        .await
        .map_err(|e| e.to_string())?;
    let result = async {
        let accounts = Api::<ServiceAccount>::namespaced(client.clone(), &namespace);
        let account = ServiceAccount {
            metadata: ObjectMeta {
                name: Some("nobody".into()),
                labels: Some(run.labels("access")),
                ..Default::default()
            },
            ..Default::default()
        };
        accounts
            .create(&PostParams::default(), &account)
            .await
            .map_err(|e| e.to_string())?;
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![],
                expiration_seconds: Some(600),
                ..Default::default()
            },
            ..Default::default()
        };
        let token = accounts
            .create_token_request("nobody", &PostParams::default(), &request)
            .await
            .map_err(|e| e.to_string())?
            .status
            .ok_or("no token in the TokenRequest")?
            .token;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let kubeconfig = kubeconfig_with_token(&token, dir.path())?;
        let before = runs_on_cluster(&client).await?;

        // No API server where the kubeconfig says (a closed loopback port).
        let nowhere = dir.path().join("nowhere");
        let text = std::fs::read_to_string(&kubeconfig).map_err(|e| e.to_string())?;
        let server = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .ok_or("no server in the kubeconfig")?
            .to_string();
        std::fs::write(&nowhere, text.replace(&server, "https://127.0.0.1:1"))
            .map_err(|e| e.to_string())?;
        let (ok, stderr) = netconform(&nowhere, &["run", "pod-to-pod::tcp-same-node"]);
        let line = one_line(&stderr)?;
        if ok
            || !line.contains("no cluster reachable")
            || !line.contains(&nowhere.display().to_string())
            || !line.contains("server https://127.0.0.1:1")
            || !line.contains("Connection refused")
        {
            return Err(format!("an unreachable cluster: want one line naming the kubeconfig, context and server, got: {stderr}").into());
        }

        // A ServiceAccount without a role may not create namespaces.
        let (ok, stderr) = netconform(&kubeconfig, &["run", "pod-to-pod::tcp-same-node"]);
        let line = one_line(&stderr)?;
        if ok
            || !line.contains(&kubeconfig.display().to_string())
            || !line.contains("forbidden (403)")
            || !line.contains("cannot create resource \"namespaces\"")
        {
            return Err(format!("a forbidden verb: want one line naming the kubeconfig and the verb, got: {stderr}").into());
        }
        let (ok, stderr) = netconform(&kubeconfig, &["gc"]);
        let line = one_line(&stderr)?;
        if ok || !line.contains("forbidden (403)") || !line.contains("cannot list resource \"namespaces\"") {
            return Err(format!("gc without list: got: {stderr}").into());
        }
        if runs_on_cluster(&client).await? != before {
            return Err("a refused run left something behind".into());
        }

        // Its account deleted, the token is no longer accepted (once the API
        // server's token cache, 10 s for a success, has let it go).
        accounts
            .delete("nobody", &DeleteParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut last = String::new();
        for _ in 0..60 {
            let (ok, stderr) = netconform(&kubeconfig, &["gc"]);
            last = stderr;
            if !ok && last.contains("401 Unauthorized") {
                let line = one_line(&last)?;
                if line.contains(&kubeconfig.display().to_string()) && line.contains("context") {
                    return Ok(());
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        Err(format!("a revoked token: want one line saying 401 and naming the kubeconfig and context, got: {last}").into())
    }
    .await;
    let _ = namespaces::delete_by_label(&client, &run.selector()).await;
    result
}

/// The one non-empty line of a command's stderr.
fn one_line(stderr: &str) -> Result<&str, Failed> {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines.as_slice() {
        [line] => Ok(line),
        _ => Err(format!(
            "want exactly one line on stderr, got {}:\n{stderr}",
            lines.len()
        )
        .into()),
    }
}

/// The netconform run labels present on the cluster's namespaces.
async fn runs_on_cluster(client: &kube::Client) -> Result<Vec<String>, Failed> {
    let list = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=netconform"))
        .await
        .map_err(|e| e.to_string())?;
    let mut names: Vec<String> = list
        .items
        .into_iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter_map(|n| n.metadata.name)
        .filter(|n| !n.starts_with("nc-access-"))
        .collect();
    names.sort();
    Ok(names)
}
