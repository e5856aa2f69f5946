//! Changes a check makes to its scenario's fixtures before probing: replacing
//! pods, making pods unready, deleting policies. The world is updated to match,
//! so expectations (Service backends, pod IPs) follow.

use crate::cluster::exec;
use crate::progress::progress;
use crate::scenario::Action;
use crate::setup::error::{Awaited, SetupError};
use crate::setup::fixtures::{self, AGENT_CONTAINER};
use crate::setup::world::World;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::DeleteParams;
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client};
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
    Ok(())
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
        let ip = ready
            .status
            .and_then(|s| s.pod_ip)
            .ok_or_else(|| SetupError::NoPodIp {
                object: member.object(),
            })?;
        world.set_pod_ip(&member.pod, &ip);
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
