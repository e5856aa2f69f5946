//! Changes a check makes to its scenario's fixtures before probing: replacing
//! pods, making pods unready, deleting or updating policies, relabelling pods
//! and namespaces, redefining Services in place. The world is updated to match,
//! so expectations (Service backends, pod IPs) follow.

use crate::cluster::exec;
use crate::progress::progress;
use crate::scenario::{Action, LabelChange, PolicyUpdate, ServiceFixture};
use crate::setup::error::{Awaited, SetupError};
use crate::setup::fixtures::{self, AGENT_CONTAINER};
use crate::setup::world::{self, Labelled, World};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::time::Duration;

const LIMIT: Duration = crate::timeouts::TIMEOUTS.action;

/// Carries out one action; progress goes to stderr.
pub async fn run(
    client: &Client,
    world: &mut World,
    action: &Action,
    scenario: &str,
) -> Result<(), SetupError> {
    if let Some(fixture) = &action.replace_pods {
        replace_pods(client, world, fixture).await?;
        progress(scenario, format!("replaced the pods of {fixture}"));
    }
    if let Some(fixture) = &action.make_unready {
        make_unready(client, world, fixture).await?;
        progress(scenario, format!("pods of {fixture} are not Ready"));
    }
    if let Some(policy) = &action.delete_policy {
        let ns = world
            .policy_namespaces
            .get(policy)
            .cloned()
            .ok_or_else(|| SetupError::Unknown {
                what: "policy",
                name: policy.clone(),
            })?;
        Api::<NetworkPolicy>::namespaced(client.clone(), &ns)
            .delete(policy, &DeleteParams::default())
            .await
            .map_err(|e| SetupError::api("deleting NetworkPolicy", format!("{ns}/{policy}"), e))?;
        progress(scenario, format!("deleted NetworkPolicy {ns}/{policy}"));
    }
    if let Some(update) = &action.update_policy {
        update_policy(client, world, update).await?;
        progress(scenario, format!("updated NetworkPolicy {}", update.name));
    }
    if let Some(change) = &action.label {
        let object = relabel(client, world, change).await?;
        progress(scenario, format!("relabelled {object}"));
    }
    if let Some(fixture) = &action.update_service {
        let object = update_service(client, world, fixture).await?;
        progress(scenario, format!("updated Service {object}"));
    }
    Ok(())
}

/// Gives a fixture Service the new definition on the same object (a PUT with
/// its resourceVersion and labels). The API server keeps the clusterIP and
/// node ports a type change still needs, allocates those it newly needs and
/// releases the rest. The world keeps the clusterIP it saw before when both
/// types have one, so a changed one is reported (`cluster_ips_unchanged`).
async fn update_service(
    client: &Client,
    world: &mut World,
    fixture: &ServiceFixture,
) -> Result<String, SetupError> {
    let before = world
        .services
        .get(&fixture.name)
        .cloned()
        .ok_or_else(|| SetupError::Unknown {
            what: "service",
            name: fixture.name.clone(),
        })?;
    let object = format!("{}/{}", before.namespace, fixture.name);
    let fixture = world::with_names_expanded(fixture, world)?;
    let api = Api::<Service>::namespaced(client.clone(), &before.namespace);
    let live = api
        .get(&fixture.name)
        .await
        .map_err(|e| SetupError::api("reading Service", object.clone(), e))?;
    let labels = live.metadata.labels.clone().unwrap_or_default();
    let mut desired = fixtures::service(&fixture, &before.namespace, &labels);
    desired.metadata.resource_version = live.metadata.resource_version;
    let answer = api
        .replace(&fixture.name, &PostParams::default(), &desired)
        .await
        .map_err(|e| SetupError::api("updating Service", object.clone(), e))?;
    let backends = world::selected_pods(world, &before.namespace, &fixture.selector);
    let mut info = world::service_info(&answer, &fixture, backends);
    if before.cluster_ip.is_some() && info.cluster_ip.is_some() {
        info.cluster_ip = before.cluster_ip;
        info.cluster_ipv6 = before.cluster_ipv6.or(info.cluster_ipv6);
    }
    world.services.insert(fixture.name.clone(), info);
    Ok(object)
}

/// Replaces the policy's spec on the same object (a PUT with its
/// resourceVersion): what an enforcer sees is an update, not a new policy.
async fn update_policy(
    client: &Client,
    world: &World,
    update: &PolicyUpdate,
) -> Result<(), SetupError> {
    let ns = world
        .policy_namespaces
        .get(&update.name)
        .cloned()
        .ok_or_else(|| SetupError::Unknown {
            what: "policy",
            name: update.name.clone(),
        })?;
    let object = format!("{ns}/{}", update.name);
    let spec =
        world::expand_policy_spec(&update.spec, world).map_err(|detail| SetupError::BadPolicy {
            policy: update.name.clone(),
            detail,
        })?;
    let api = Api::<NetworkPolicy>::namespaced(client.clone(), &ns);
    let mut policy = api
        .get(&update.name)
        .await
        .map_err(|e| SetupError::api("reading NetworkPolicy", object.clone(), e))?;
    policy.spec = Some(
        serde_json::from_value(spec).map_err(|e| SetupError::BadPolicy {
            policy: update.name.clone(),
            detail: e.to_string(),
        })?,
    );
    api.replace(&update.name, &PostParams::default(), &policy)
        .await
        .map_err(|e| SetupError::api("updating NetworkPolicy", object, e))?;
    Ok(())
}

/// Merge-patches the labels of one fixture pod or namespace, keeping the
/// labels it had before its first change in `world.relabelled`.
async fn relabel(
    client: &Client,
    world: &mut World,
    change: &LabelChange,
) -> Result<Labelled, SetupError> {
    let target = match (&change.pod, &change.namespace) {
        (Some(pod), _) => {
            let member = world
                .groups
                .get(pod)
                .and_then(|m| m.first())
                .ok_or_else(|| SetupError::Unknown {
                    what: "pod",
                    name: pod.clone(),
                })?;
            Labelled::Pod {
                namespace: member.namespace.clone(),
                name: member.pod.clone(),
            }
        }
        (None, Some(ns)) => {
            Labelled::Namespace(world.namespaces.get(ns).cloned().ok_or_else(|| {
                SetupError::Unknown {
                    what: "namespace",
                    name: ns.clone(),
                }
            })?)
        }
        (None, None) => {
            return Err(SetupError::Unknown {
                what: "pod or namespace for",
                name: "label".into(),
            })
        }
    };
    if !world.relabelled.contains_key(&target) {
        let before = labels_of(client, &target).await?;
        world.relabelled.insert(target.clone(), before);
    }
    let patch = serde_json::json!({"metadata": {"labels": change.labels}});
    patch_labels(client, &target, &patch).await?;
    if let Labelled::Pod { name, .. } = &target {
        for e in world
            .groups
            .values_mut()
            .flatten()
            .filter(|e| &e.pod == name)
        {
            for (k, v) in &change.labels {
                match v {
                    Some(v) => e.labels.insert(k.clone(), v.clone()),
                    None => e.labels.remove(k),
                };
            }
        }
    }
    Ok(target)
}

/// Gives every object a check relabelled its labels from before the first
/// change back (a shared world must look the same to the next scenario), and
/// checks that the patched object has exactly them.
pub async fn restore_labels(client: &Client, world: &mut World) -> Result<(), SetupError> {
    for (target, original) in std::mem::take(&mut world.relabelled) {
        let now = labels_of(client, &target).await?;
        let mut labels: BTreeMap<String, Option<String>> =
            now.keys().map(|k| (k.clone(), None)).collect();
        labels.extend(original.iter().map(|(k, v)| (k.clone(), Some(v.clone()))));
        let patch = serde_json::json!({"metadata": {"labels": labels}});
        let after = patch_labels(client, &target, &patch).await?;
        if after != original {
            return Err(SetupError::Cluster(format!(
                "{target}: labels {after:?} after restoring, expected {original:?}"
            )));
        }
    }
    Ok(())
}

/// The object's labels now.
async fn labels_of(
    client: &Client,
    target: &Labelled,
) -> Result<BTreeMap<String, String>, SetupError> {
    let read = |e| SetupError::api("reading", target.to_string(), e);
    let meta = match target {
        Labelled::Pod { namespace, name } => {
            Api::<Pod>::namespaced(client.clone(), namespace)
                .get(name)
                .await
                .map_err(read)?
                .metadata
        }
        Labelled::Namespace(name) => {
            Api::<Namespace>::all(client.clone())
                .get(name)
                .await
                .map_err(read)?
                .metadata
        }
    };
    Ok(meta.labels.unwrap_or_default())
}

/// Applies a JSON merge patch to the object's metadata and returns the labels
/// it has afterwards (from the API server's answer).
async fn patch_labels(
    client: &Client,
    target: &Labelled,
    patch: &serde_json::Value,
) -> Result<BTreeMap<String, String>, SetupError> {
    let (params, patch) = (PatchParams::default(), Patch::Merge(patch));
    let relabel = |e| SetupError::api("relabelling", target.to_string(), e);
    let meta = match target {
        Labelled::Pod { namespace, name } => {
            Api::<Pod>::namespaced(client.clone(), namespace)
                .patch(name, &params, &patch)
                .await
                .map_err(relabel)?
                .metadata
        }
        Labelled::Namespace(name) => {
            Api::<Namespace>::all(client.clone())
                .patch(name, &params, &patch)
                .await
                .map_err(relabel)?
                .metadata
        }
    };
    Ok(meta.labels.unwrap_or_default())
}

async fn replace_pods(client: &Client, world: &mut World, fixture: &str) -> Result<(), SetupError> {
    let members = world
        .groups
        .get(fixture)
        .cloned()
        .ok_or_else(|| SetupError::Unknown {
            what: "pods for",
            name: fixture.to_string(),
        })?;
    for member in members {
        let api = Api::<Pod>::namespaced(client.clone(), &member.namespace);
        let old = api
            .get(&member.pod)
            .await
            .map_err(|e| SetupError::api("reading pod", member.object(), e))?;
        let uid = old.metadata.uid.clone().unwrap_or_default();
        api.delete(
            &member.pod,
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| SetupError::api("deleting pod", member.object(), e))?;
        crate::cluster::session::close_pod(&member.namespace, &member.pod);
        tokio::time::timeout(
            LIMIT,
            await_condition(api.clone(), &member.pod, conditions::is_deleted(&uid)),
        )
        .await
        .map_err(|_| SetupError::Timeout {
            object: member.object(),
            awaited: Awaited::Gone,
            limit_s: LIMIT.as_secs(),
            diagnosis: None,
        })?
        .map_err(|e| SetupError::api("watching pod", member.object(), e))?;
        let spec =
            world
                .pod_specs
                .get(&member.pod)
                .cloned()
                .ok_or_else(|| SetupError::Unknown {
                    what: "kept pod spec for",
                    name: member.pod.clone(),
                })?;
        fixtures::apply(client, &spec)
            .await
            .map_err(|e| SetupError::api("re-creating pod", member.object(), e))?;
        let ready = fixtures::wait_ready(client, &member.namespace, &member.pod, LIMIT).await?;
        let status = ready.status.unwrap_or_default();
        let ip = status.pod_ip.clone().ok_or_else(|| SetupError::NoPodIp {
            object: member.object(),
        })?;
        world.set_pod_ips(&member.pod, &ip, world::ipv6_of(&status).as_deref());
    }
    Ok(())
}

async fn make_unready(client: &Client, world: &mut World, fixture: &str) -> Result<(), SetupError> {
    let members = world
        .groups
        .get(fixture)
        .cloned()
        .ok_or_else(|| SetupError::Unknown {
            what: "pods for",
            name: fixture.to_string(),
        })?;
    for member in members {
        exec::exec(
            client,
            &member.namespace,
            &member.pod,
            AGENT_CONTAINER,
            &[fixtures::AGENT_BINARY, "set-ready", "false"],
            b"",
        )
        .await
        .map_err(SetupError::Cluster)?;
        let api = Api::<Pod>::namespaced(client.clone(), &member.namespace);
        let unready = |p: Option<&Pod>| p.is_some_and(|p| !fixtures::is_ready(p));
        tokio::time::timeout(LIMIT, await_condition(api, &member.pod, unready))
            .await
            .map_err(|_| SetupError::Timeout {
                object: member.object(),
                awaited: Awaited::NotReady,
                limit_s: LIMIT.as_secs(),
                diagnosis: None,
            })?
            .map_err(|e| SetupError::api("watching pod", member.object(), e))?;
        world.remove_backend(&member.pod);
    }
    Ok(())
}

/// Problems with the Services' cluster IPs now: each must be what setup saw.
pub async fn cluster_ips_unchanged(client: &Client, world: &World) -> Vec<ClusterIpChange> {
    let mut changes = Vec::new();
    for svc in world.services.values() {
        let Some(before) = &svc.cluster_ip else {
            continue;
        };
        let after = match Api::<Service>::namespaced(client.clone(), &svc.namespace)
            .get(&svc.name)
            .await
        {
            Ok(now) => now.spec.and_then(|s| s.cluster_ip).unwrap_or_default(),
            Err(e) => format!("<could not be read: {e}>"),
        };
        if &after != before {
            changes.push(ClusterIpChange {
                service: svc.name.clone(),
                before: before.clone(),
                after,
            });
        }
    }
    changes
}

/// A fixture Service whose clusterIP changed while a check changed its backends.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ClusterIpChange {
    pub service: String,
    pub before: String,
    pub after: String,
}
