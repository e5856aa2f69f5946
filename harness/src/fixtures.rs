//! Fixture workloads: agent pods built from scenario fixtures, applied with
//! server-side apply, and waited for on a watch. A wait that times out says
//! why: the pod's phase, its containers' states and its recent events.

use crate::scenario::{AgentPorts, PodFixture};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

pub const FIELD_MANAGER: &str = "netconform";
pub const AGENT_CONTAINER: &str = "agent";
pub const AGENT_BINARY: &str = "/netconform-agent";
/// Where the agent image comes from. The default is a local name that is never
/// pulled; clusters with a registry set NETCONFORM_AGENT_IMAGE and maybe
/// NETCONFORM_AGENT_PULL_POLICY.
pub const DEFAULT_AGENT_IMAGE: &str = concat!("localhost/netconform/agent:", env!("CARGO_PKG_VERSION"));

#[derive(Clone, Debug)]
pub struct AgentImage {
    pub image: String,
    pub pull_policy: String,
}

impl AgentImage {
    pub fn from_env() -> AgentImage {
        AgentImage {
            image: std::env::var("NETCONFORM_AGENT_IMAGE").unwrap_or_else(|_| DEFAULT_AGENT_IMAGE.to_string()),
            pull_policy: std::env::var("NETCONFORM_AGENT_PULL_POLICY").unwrap_or_else(|_| "IfNotPresent".to_string()),
        }
    }
}

/// The Pod for a fixture: the agent serving its ports, pinned to `node`,
/// non-root, no capabilities, read-only root filesystem.
pub fn agent_pod(
    fixture: &PodFixture,
    namespace: &str,
    node: &str,
    labels: &BTreeMap<String, String>,
    image: &AgentImage,
) -> Pod {
    let ports = fixture.ports.clone().unwrap_or_else(AgentPorts::defaults);
    let mut args = vec!["serve".to_string()];
    let mut container_ports = Vec::new();
    for (flag, proto, list) in [("--http", "TCP", &ports.http), ("--tcp", "TCP", &ports.tcp), ("--udp", "UDP", &ports.udp)] {
        for p in list {
            args.extend([flag.to_string(), p.to_string()]);
            container_ports.push(json!({"name": format!("{}-{p}", &flag[2..]), "containerPort": p, "protocol": proto}));
        }
    }
    let mut all_labels = fixture.labels.clone();
    all_labels.extend(labels.clone());
    // Ports below 1024 without CAP_NET_BIND_SERVICE: a namespaced, "safe" sysctl.
    let low_port = ports.http.iter().chain(&ports.tcp).chain(&ports.udp).any(|p| *p < 1024);
    let sysctls = if low_port { json!([{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]) } else { json!([]) };
    let readiness = match (ports.http.first(), ports.tcp.first()) {
        (Some(p), _) => json!({"httpGet": {"path": "/healthz", "port": p}, "periodSeconds": 1}),
        (None, Some(p)) => json!({"tcpSocket": {"port": p}, "periodSeconds": 1}),
        (None, None) => json!({"exec": {"command": [AGENT_BINARY, "info"]}, "periodSeconds": 2}),
    };
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": fixture.name, "namespace": namespace, "labels": all_labels},
        "spec": {
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}
            ]}}},
            "terminationGracePeriodSeconds": 2,
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "securityContext": {
                "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
                "sysctls": sysctls
            },
            "containers": [{
                "name": AGENT_CONTAINER,
                "image": image.image,
                "imagePullPolicy": image.pull_policy,
                "command": [AGENT_BINARY],
                "args": args,
                "ports": container_ports,
                "readinessProbe": readiness,
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "capabilities": {"drop": ["ALL"]}
                },
                "resources": {"requests": {"cpu": "5m", "memory": "8Mi"}, "limits": {"memory": "64Mi"}}
            }]
        }
    }))
    .expect("the agent pod template is a valid Pod")
}

pub async fn apply_pod(client: &Client, pod: &Pod) -> kube::Result<Pod> {
    let ns = pod.metadata.namespace.as_deref().expect("fixture pods are namespaced");
    let name = pod.metadata.name.as_deref().expect("fixture pods are named");
    Api::<Pod>::namespaced(client.clone(), ns)
        .patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(pod))
        .await
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Waits on a watch until the pod is Ready; on timeout, explains the pod's state.
pub async fn wait_ready(client: &Client, ns: &str, name: &str, limit: Duration) -> Result<Pod, String> {
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let cond = |p: Option<&Pod>| p.is_some_and(is_ready);
    match tokio::time::timeout(limit, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(Some(pod))) => Ok(pod),
        Ok(Ok(None)) => Err(format!("pod {ns}/{name} was deleted while waiting for it to be Ready")),
        Ok(Err(e)) => Err(format!("watching pod {ns}/{name}: {e}")),
        Err(_) => Err(format!(
            "pod {ns}/{name} not Ready after {}s: {}",
            limit.as_secs(),
            diagnose(client, &api, ns, name).await
        )),
    }
}

/// Phase, container states and the last events of a pod, in one paragraph.
async fn diagnose(client: &Client, api: &Api<Pod>, ns: &str, name: &str) -> String {
    let mut parts = Vec::new();
    match api.get(name).await {
        Ok(pod) => {
            let status = pod.status.unwrap_or_default();
            parts.push(format!("phase {}", status.phase.unwrap_or_else(|| "unknown".into())));
            if let Some(node) = pod.spec.and_then(|s| s.node_name) {
                parts.push(format!("node {node}"));
            }
            for cs in status.container_statuses.unwrap_or_default() {
                let state = cs.state.unwrap_or_default();
                let text = if let Some(w) = state.waiting {
                    format!("waiting ({}: {})", w.reason.unwrap_or_default(), w.message.unwrap_or_default())
                } else if let Some(t) = state.terminated {
                    format!("terminated (exit {}, {})", t.exit_code, t.reason.unwrap_or_default())
                } else if state.running.is_some() {
                    "running, not ready".to_string()
                } else {
                    "no state".to_string()
                };
                parts.push(format!("container {} {text}, restarts {}", cs.name, cs.restart_count));
            }
        }
        Err(e) => parts.push(format!("cannot read the pod: {e}")),
    }
    let events = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await;
    if let Ok(mut events) = events {
        events.items.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
        let recent: Vec<String> = events
            .items
            .iter()
            .rev()
            .take(5)
            .map(|e| format!("{}: {}", e.reason.clone().unwrap_or_default(), e.message.clone().unwrap_or_default().trim()))
            .collect();
        if !recent.is_empty() {
            parts.push(format!("recent events: {}", recent.join(" | ")));
        }
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Placement;

    #[test]
    fn agent_pods_are_non_root_pinned_and_serve_their_ports() {
        let fixture = PodFixture {
            name: "server".into(),
            namespace: None,
            labels: BTreeMap::from([("app".into(), "server".into())]),
            placement: Placement::any(),
            ports: None,
        };
        let image = AgentImage { image: "img:1".into(), pull_policy: "Never".into() };
        let pod = agent_pod(&fixture, "ns1", "node-a", &BTreeMap::from([("netconform.io/run".into(), "r1".into())]), &image);
        let v = serde_json::to_value(&pod).unwrap();
        assert_eq!(v["metadata"]["labels"]["app"], "server");
        assert_eq!(v["metadata"]["labels"]["netconform.io/run"], "r1");
        assert_eq!(v["spec"]["securityContext"]["runAsNonRoot"], true);
        assert_eq!(v["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"][0], "ALL");
        assert_eq!(v["spec"]["containers"][0]["args"], json!(["serve", "--http", "80", "--tcp", "8080", "--udp", "8081"]));
        assert_eq!(v["spec"]["securityContext"]["sysctls"][0]["value"], "0", "port 80 needs the unprivileged-port sysctl");
        assert_eq!(
            v["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0],
            "node-a"
        );
        assert_eq!(v["spec"]["containers"][0]["imagePullPolicy"], "Never");
    }
}
