//! Per-scenario namespaces: created with generated names and run labels, and
//! deleted only by those labels, never by name alone.

use crate::cluster::run::{RunId, LABEL_RUN};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::time::Duration;

/// `nc-<scenario>-<logical>-<run>`, within the 63 characters a name may have.
pub fn namespace_name(scenario: &str, logical: &str, run: &RunId) -> String {
    let mut name = format!("nc-{scenario}-{logical}");
    name.truncate(63 - run.as_str().len() - 1);
    format!("{}-{run}", name.trim_end_matches('-'))
}

pub async fn create(
    client: &Client,
    name: &str,
    labels: BTreeMap<String, String>,
) -> kube::Result<Namespace> {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
}

/// Waits on a watch until the namespace's `default` ServiceAccount exists (the
/// API server admits no pod before it does).
pub async fn wait_default_service_account(
    client: &Client,
    namespace: &str,
    limit: Duration,
) -> Result<(), String> {
    use k8s_openapi::api::core::v1::ServiceAccount;
    let api = Api::<ServiceAccount>::namespaced(client.clone(), namespace);
    match tokio::time::timeout(limit, await_condition(api, "default", |sa: Option<&ServiceAccount>| sa.is_some())).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("watching the default ServiceAccount of {namespace}: {e}")),
        Err(_) => Err(format!("namespace {namespace} got no default ServiceAccount within {}s (is the controller manager running?)", limit.as_secs())),
    }
}

/// Grace for the run's own pods at teardown: the agent exits on SIGTERM at once.
const POD_GRACE_SECONDS: u32 = 1;

/// Deletes the namespaces that carry `selector` (which must include the run
/// label) and returns their names; then stops their pods that carry `selector`.
///
/// The namespace controller starts on a deleted namespace only 5 s later (its
/// `namespaceDeletionGracePeriod`), so the pods are deleted here as well: they
/// stop within a second instead of loading the nodes for those 5 s. The
/// namespaces are deleted first, so that a StatefulSet cannot recreate a pod
/// in them (a terminating namespace admits nothing new).
pub async fn delete_by_label(client: &Client, selector: &str) -> kube::Result<Vec<String>> {
    let names = delete_namespaces(client, selector).await?;
    super::session::close_in(&names);
    let pod_deletions = names.iter().map(|ns| async move {
        let pods = Api::<Pod>::namespaced(client.clone(), ns);
        let grace = DeleteParams {
            grace_period_seconds: Some(POD_GRACE_SECONDS),
            ..DeleteParams::background()
        };
        match pods
            .delete_collection(&grace, &ListParams::default().labels(selector))
            .await
        {
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        }
    });
    for r in futures::future::join_all(pod_deletions).await {
        r?;
    }
    Ok(names)
}

async fn delete_namespaces(client: &Client, selector: &str) -> kube::Result<Vec<String>> {
    assert!(
        selector.contains(LABEL_RUN),
        "namespaces are only ever deleted by their run label"
    );
    let api = Api::<Namespace>::all(client.clone());
    let found = api.list(&ListParams::default().labels(selector)).await?;
    let mut names = Vec::new();
    for ns in found.items {
        let Some(name) = ns.metadata.name else {
            continue;
        };
        if ns.metadata.deletion_timestamp.is_none() {
            match api.delete(&name, &DeleteParams::background()).await {
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
        names.push(name);
    }
    Ok(names)
}

/// Waits (bounded, on watches) until no pod carries `selector`; returns the
/// `namespace/name` of those still there when time ran out.
pub async fn wait_pods_gone(
    client: &Client,
    selector: &str,
    limit: Duration,
) -> kube::Result<Vec<String>> {
    let api = Api::<Pod>::all(client.clone());
    let present = api
        .list(&ListParams::default().labels(selector))
        .await?
        .items;
    let waits = present.iter().filter_map(|pod| {
        let ns = pod.metadata.namespace.clone()?;
        let (name, uid) = (pod.metadata.name.clone()?, pod.metadata.uid.clone()?);
        let api = Api::<Pod>::namespaced(client.clone(), &ns);
        Some(async move {
            let gone = tokio::time::timeout(
                limit,
                await_condition(api, &name, conditions::is_deleted(&uid)),
            )
            .await;
            (!matches!(gone, Ok(Ok(_)))).then(|| format!("{ns}/{name}"))
        })
    });
    Ok(futures::future::join_all(waits)
        .await
        .into_iter()
        .flatten()
        .collect())
}

/// The namespaces that carry `selector` and are not being deleted.
pub async fn not_terminating(client: &Client, selector: &str) -> kube::Result<Vec<String>> {
    let api = Api::<Namespace>::all(client.clone());
    Ok(api
        .list(&ListParams::default().labels(selector))
        .await?
        .items
        .into_iter()
        .filter(|ns| ns.metadata.deletion_timestamp.is_none())
        .filter_map(|ns| ns.metadata.name)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_end_with_the_run() {
        let run = RunId::generate();
        let n = namespace_name("pod-to-pod", "main", &run);
        assert_eq!(n, format!("nc-pod-to-pod-main-{run}"));
        let long = namespace_name(&"x".repeat(30), &"y".repeat(12), &run);
        assert!(long.len() <= 63 && long.ends_with(run.as_str()), "{long}");
    }
}
