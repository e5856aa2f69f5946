//! Fixture workloads: agent pods built from scenario fixtures, applied with
//! server-side apply, and waited for on a watch. A wait that times out says
//! why: the pod's phase, its containers' states and its recent events.

use crate::scenario::{
    AgentPorts, HostIp, PodFixture, PolicyFixture, PortRef, ServiceFixture, ServiceKind,
    StatefulSetFixture, SIDECAR_CONTAINER,
};
use crate::setup::error::{Awaited, SetupError};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use netconform_protocol::KUBE_ROOT_CA;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

pub const FIELD_MANAGER: &str = "netconform";
pub use crate::cluster::exec::{AGENT_BINARY, AGENT_CONTAINER};
/// The non-root identity fixture pods run as.
const FIXTURE_USER: u32 = 65532;
const FIXTURE_GROUP: u32 = 65532;
/// Every fixture pod carries the name of the fixture it belongs to.
pub const LABEL_FIXTURE: &str = "netconform.io/fixture";
/// Where the agent image comes from. The default is a local name that is never
/// pulled; clusters with a registry set NETCONFORM_AGENT_IMAGE and maybe
/// NETCONFORM_AGENT_PULL_POLICY.
pub const DEFAULT_AGENT_IMAGE: &str =
    concat!("localhost/netconform/agent:", env!("CARGO_PKG_VERSION"));

#[derive(Clone, Debug)]
pub struct AgentImage {
    pub image: String,
    pub pull_policy: String,
}

impl AgentImage {
    pub fn from_env() -> AgentImage {
        AgentImage {
            image: std::env::var("NETCONFORM_AGENT_IMAGE")
                .unwrap_or_else(|_| DEFAULT_AGENT_IMAGE.to_string()),
            pull_policy: std::env::var("NETCONFORM_AGENT_PULL_POLICY")
                .unwrap_or_else(|_| "IfNotPresent".to_string()),
        }
    }
}

/// The directory the agent reads the cluster's root CA from.
fn kube_root_ca_dir() -> &'static str {
    KUBE_ROOT_CA
        .rsplit_once('/')
        .map(|(dir, _)| dir)
        .expect("KUBE_ROOT_CA is a path")
}

fn agent_container(
    name: &str,
    ports: &AgentPorts,
    image: &AgentImage,
    port_prefix: &str,
    // Some(hostIP) publishes every port as a hostPort ("" for every address).
    host_ports: Option<&str>,
) -> serde_json::Value {
    let mut args = vec!["serve".to_string()];
    let mut container_ports = Vec::new();
    for (flag, proto, list) in [
        ("--http", "TCP", &ports.http),
        ("--tcp", "TCP", &ports.tcp),
        ("--udp", "UDP", &ports.udp),
    ] {
        for p in list {
            args.extend([flag.to_string(), p.to_string()]);
            let mut port = json!({"name": format!("{port_prefix}{}-{p}", &flag[2..]), "containerPort": p, "protocol": proto});
            if let Some(host_ip) = host_ports {
                port["hostPort"] = json!(p);
                if !host_ip.is_empty() {
                    port["hostIP"] = json!(host_ip);
                }
            }
            container_ports.push(port);
        }
    }
    // Without a TCP port (node agents, UDP-only servers) the agent is checked
    // by an exec once, as a startup probe: a readiness probe would exec into
    // the container every period for the pod's life, and each exec costs the
    // node a runc process (a tenth of the catalogue's runc work).
    let (probe_kind, probe) = match (ports.http.first(), ports.tcp.first()) {
        (Some(p), _) => (
            "readinessProbe",
            json!({"httpGet": {"path": "/healthz", "port": p}, "periodSeconds": 1}),
        ),
        (None, Some(p)) => (
            "readinessProbe",
            json!({"tcpSocket": {"port": p}, "periodSeconds": 1}),
        ),
        (None, None) => (
            "startupProbe",
            json!({"exec": {"command": [AGENT_BINARY, "info"]}, "periodSeconds": 1, "failureThreshold": 120}),
        ),
    };
    json!({
        "name": name,
        "image": image.image,
        "imagePullPolicy": image.pull_policy,
        "command": [AGENT_BINARY],
        "args": args,
        "ports": container_ports,
        probe_kind: probe,
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]}
        },
        "resources": {"requests": {"cpu": "5m", "memory": "8Mi"}, "limits": {"memory": "64Mi"}},
        // The root filesystem is read-only; /tmp holds the readiness marker.
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "kube-root-ca", "mountPath": kube_root_ca_dir(), "readOnly": true}
        ]
    })
}

/// The Pod `name` for a fixture: the agent serving its ports (and a sidecar's),
/// pinned to `node` (whose InternalIP is `node_ip`), non-root, no
/// capabilities, read-only root filesystem.
pub fn agent_pod(
    fixture: &PodFixture,
    name: &str,
    namespace: &str,
    node: &str,
    node_ip: &str,
    labels: &BTreeMap<String, String>,
    image: &AgentImage,
) -> Pod {
    let ports = fixture.main_ports();
    let host_ip = match fixture.host_ip {
        None => "",
        Some(HostIp::Loopback) => "127.0.0.1",
        Some(HostIp::NodeAddress) => node_ip,
    };
    let mut containers = vec![agent_container(
        AGENT_CONTAINER,
        &ports,
        image,
        "",
        fixture.host_ports.then_some(host_ip),
    )];
    if let Some(sidecar) = &fixture.sidecar {
        containers.push(agent_container(
            SIDECAR_CONTAINER,
            sidecar,
            image,
            "s",
            None,
        ));
    }
    let mut all_labels = fixture.labels.clone();
    all_labels.extend(labels.clone());
    all_labels.insert(LABEL_FIXTURE.to_string(), fixture.name.clone());
    let sidecar_ports = fixture.sidecar.clone().unwrap_or_default();
    let all_ports = || {
        ports
            .http
            .iter()
            .chain(&ports.tcp)
            .chain(&ports.udp)
            .chain(&sidecar_ports.http)
            .chain(&sidecar_ports.tcp)
            .chain(&sidecar_ports.udp)
    };
    // Namespaced, Kubernetes-"safe" sysctls instead of capabilities (neither
    // allowed nor needed on the host network): ports below 1024 without
    // CAP_NET_BIND_SERVICE, and ICMP ping sockets for the pod's own group only.
    let mut sysctls = Vec::new();
    if !fixture.host_network {
        if all_ports().any(|p| *p < 1024) {
            sysctls.push(json!({"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}));
        }
        let group = FIXTURE_GROUP.to_string();
        sysctls.push(
            json!({"name": "net.ipv4.ping_group_range", "value": format!("{group} {group}")}),
        );
    }
    let mut spec = json!({
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}
        ]}}},
        "terminationGracePeriodSeconds": 2,
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": FIXTURE_USER, "runAsGroup": FIXTURE_GROUP,
            "seccompProfile": {"type": "RuntimeDefault"},
            "sysctls": sysctls
        },
        "containers": containers,
        "volumes": [
            // The readiness marker and the agent's kept probe results (about
            // two minutes' worth; see agent/src/kept.rs).
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
            // The cluster's root CA, to verify the API server like a client library.
            {"name": "kube-root-ca", "configMap": {"name": "kube-root-ca.crt", "optional": true}}
        ]
    });
    if fixture.host_network {
        spec["hostNetwork"] = json!(true);
        spec["dnsPolicy"] = json!("ClusterFirstWithHostNet");
    }
    if fixture.per_node && (fixture.host_network || fixture.tolerate_taints) {
        // A node agent (or a node-pair fixture) runs on every node, the
        // tainted control plane included.
        spec["tolerations"] = json!([{"operator": "Exists"}]);
    }
    if let Some(h) = &fixture.hostname {
        spec["hostname"] = json!(h);
    }
    if let Some(sd) = &fixture.subdomain {
        spec["subdomain"] = json!(sd);
    }
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": all_labels},
        "spec": spec
    }))
    .expect("the agent pod template is a valid Pod")
}

/// The StatefulSet for a fixture: its pods are agent pods like any fixture's,
/// left to the scheduler.
pub fn statefulset(
    fixture: &StatefulSetFixture,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    image: &AgentImage,
) -> StatefulSet {
    let pod_fixture = PodFixture {
        name: fixture.name.clone(),
        labels: fixture.labels.clone(),
        ports: fixture.ports.clone(),
        ..Default::default()
    };
    let template = agent_pod(
        &pod_fixture,
        &fixture.name,
        namespace,
        "",
        "",
        labels,
        image,
    );
    let mut template = serde_json::to_value(template).expect("a pod serialises");
    template["spec"]
        .as_object_mut()
        .expect("pod spec")
        .remove("affinity");
    let mut selector = fixture.labels.clone();
    selector.insert(LABEL_FIXTURE.to_string(), fixture.name.clone());
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": fixture.name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": fixture.replicas,
            "serviceName": fixture.service,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": template["metadata"]["labels"]}, "spec": template["spec"]}
        }
    }))
    .expect("the statefulset template is a valid StatefulSet")
}

/// The Service for a fixture.
pub fn service(
    fixture: &ServiceFixture,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Service {
    let ports: Vec<serde_json::Value> = fixture
        .ports
        .iter()
        .map(|p| {
            let mut port = json!({"port": p.port, "protocol": p.protocol.as_str().to_uppercase()});
            if let Some(name) = &p.name {
                port["name"] = json!(name);
            }
            match &p.target_port {
                Some(PortRef::Number(n)) => port["targetPort"] = json!(n),
                Some(PortRef::Name(n)) => port["targetPort"] = json!(n),
                None => {}
            }
            port
        })
        .collect();
    // Both families where the cluster has both, one where it has one: the
    // IPv6 twins of checks need the IPv6 ClusterIP and AAAA records.
    let policy = if fixture.require_dual_stack {
        "RequireDualStack"
    } else {
        "PreferDualStack"
    };
    let mut spec = json!({"ports": ports, "ipFamilyPolicy": policy});
    match fixture.kind {
        ServiceKind::ClusterIp => spec["type"] = json!("ClusterIP"),
        ServiceKind::NodePort => spec["type"] = json!("NodePort"),
        ServiceKind::Headless => {
            spec["type"] = json!("ClusterIP");
            spec["clusterIP"] = json!("None");
        }
        ServiceKind::ExternalName => {
            spec["type"] = json!("ExternalName");
            // An ExternalName Service has no addresses, so no families.
            spec.as_object_mut()
                .expect("spec is an object")
                .remove("ipFamilyPolicy");
            spec["externalName"] = json!(fixture.external_name.clone().unwrap_or_default());
        }
    }
    if !fixture.selector.is_empty() {
        spec["selector"] = json!(fixture.selector);
    }
    if fixture.external_traffic_policy_local {
        spec["externalTrafficPolicy"] = json!("Local");
    }
    if let Some(affinity) = &fixture.client_ip_affinity {
        spec["sessionAffinity"] = json!("ClientIP");
        if let Some(t) = affinity.timeout_seconds {
            spec["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": t}});
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": fixture.name, "namespace": namespace, "labels": labels},
        "spec": spec
    }))
    .expect("the service template is a valid Service")
}

/// The addresses of a Service's synthetic endpoints: 192.0.2.1 onwards
/// (TEST-NET-1, RFC 5737), carried only in DNS answers.
pub fn synthetic_addresses(count: u8) -> Vec<String> {
    (1..=u16::from(count))
        .map(|i| format!("192.0.2.{i}"))
        .collect()
}

/// The EndpointSlice of a selector-less Service with synthetic endpoints.
pub fn synthetic_endpoint_slice(
    fixture: &ServiceFixture,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> k8s_openapi::api::discovery::v1::EndpointSlice {
    let endpoints: Vec<serde_json::Value> =
        synthetic_addresses(fixture.synthetic_endpoints.unwrap_or(0))
            .into_iter()
            .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
            .collect();
    endpoint_slice(
        fixture,
        &[],
        namespace,
        labels,
        "synthetic",
        "IPv4",
        endpoints,
    )
}

/// The EndpointSlices of a selector-less Service with `endpoint_slices` for
/// its `index`th entry: one backend pod's address for the Service ports named
/// in `ports` (all of them when empty), in a slice per family the pod has (a
/// slice holds one address type; a dual-stack Service needs both).
pub fn pod_endpoint_slices(
    fixture: &ServiceFixture,
    ports: &[String],
    namespace: &str,
    labels: &BTreeMap<String, String>,
    index: usize,
    pod: &crate::setup::world::Endpoint,
) -> Vec<k8s_openapi::api::discovery::v1::EndpointSlice> {
    let endpoint = |ip: &str| {
        json!({
            "addresses": [ip],
            "conditions": {"ready": true},
            "nodeName": pod.node,
            "targetRef": {"kind": "Pod", "name": pod.pod, "namespace": pod.namespace}
        })
    };
    let mut slices = vec![endpoint_slice(
        fixture,
        ports,
        namespace,
        labels,
        &index.to_string(),
        "IPv4",
        vec![endpoint(&pod.ip)],
    )];
    if let Some(ipv6) = &pod.ipv6 {
        slices.push(endpoint_slice(
            fixture,
            ports,
            namespace,
            labels,
            &format!("{index}-ipv6"),
            "IPv6",
            vec![endpoint(ipv6)],
        ));
    }
    slices
}

/// An EndpointSlice netconform writes for a fixture Service, named
/// `<service>-<suffix>`, labelled with the run's labels, its Service's name
/// and netconform as its manager (the EndpointSlice controller leaves it
/// alone); its ports are the Service's numeric target ports (or `port`), of
/// the ports named in `only` (every port when empty).
fn endpoint_slice(
    fixture: &ServiceFixture,
    only: &[String],
    namespace: &str,
    labels: &BTreeMap<String, String>,
    suffix: &str,
    address_type: &str,
    endpoints: Vec<serde_json::Value>,
) -> k8s_openapi::api::discovery::v1::EndpointSlice {
    let mut all_labels = labels.clone();
    all_labels.insert("kubernetes.io/service-name".into(), fixture.name.clone());
    all_labels.insert(
        "endpointslice.kubernetes.io/managed-by".into(),
        "netconform.io".into(),
    );
    let ports: Vec<serde_json::Value> = fixture
        .ports
        .iter()
        .filter(|p| only.is_empty() || p.name.as_ref().is_some_and(|n| only.contains(n)))
        .map(|p| {
            let target = match p.target_port {
                Some(PortRef::Number(n)) => n,
                _ => p.port,
            };
            json!({"name": p.name.clone().unwrap_or_default(), "port": target, "protocol": p.protocol.as_str().to_uppercase()})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": format!("{}-{suffix}", fixture.name), "namespace": namespace, "labels": all_labels},
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": ports
    }))
    .expect("the endpoint slice template is a valid EndpointSlice")
}

/// The NetworkPolicy for a fixture; its spec must be a valid NetworkPolicySpec.
pub fn network_policy(
    fixture: &PolicyFixture,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Result<NetworkPolicy, SetupError> {
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": fixture.name, "namespace": namespace, "labels": labels},
        "spec": fixture.spec
    }))
    .map_err(|e| SetupError::BadPolicy {
        policy: fixture.name.clone(),
        detail: e.to_string(),
    })
}

/// Deletes a NetworkPolicy this run created; one already gone is fine.
pub async fn delete_network_policy(client: &Client, ns: &str, name: &str) -> kube::Result<()> {
    let api = Api::<NetworkPolicy>::namespaced(client.clone(), ns);
    match api.delete(name, &kube::api::DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Server-side apply of a namespaced fixture object (Pod, Service, NetworkPolicy).
pub async fn apply<K>(client: &Client, object: &K) -> kube::Result<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let meta = object.meta();
    let ns = meta
        .namespace
        .as_deref()
        .expect("fixture objects are namespaced");
    let name = meta.name.as_deref().expect("fixture objects are named");
    Api::<K>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Waits on a watch until the pod is Ready; on timeout, explains the pod's state.
pub async fn wait_ready(
    client: &Client,
    ns: &str,
    name: &str,
    limit: Duration,
) -> Result<Pod, SetupError> {
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let cond = |p: Option<&Pod>| p.is_some_and(is_ready);
    match tokio::time::timeout(limit, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(Some(pod))) => Ok(pod),
        Ok(Ok(None)) => Err(SetupError::PodDeleted {
            object: format!("{ns}/{name}"),
        }),
        Ok(Err(e)) => Err(SetupError::api("watching pod", format!("{ns}/{name}"), e)),
        Err(_) => Err(SetupError::Timeout {
            object: format!("{ns}/{name}"),
            awaited: Awaited::Ready,
            limit_s: limit.as_secs(),
            diagnosis: Some(diagnose(client, &api, ns, name).await),
        }),
    }
}

/// Phase, container states and the last events of a pod, in one paragraph.
async fn diagnose(client: &Client, api: &Api<Pod>, ns: &str, name: &str) -> String {
    let mut parts = Vec::new();
    match api.get(name).await {
        Ok(pod) => {
            let status = pod.status.unwrap_or_default();
            parts.push(format!(
                "phase {}",
                status.phase.unwrap_or_else(|| "unknown".into())
            ));
            if let Some(node) = pod.spec.and_then(|s| s.node_name) {
                parts.push(format!("node {node}"));
            }
            for cs in status.container_statuses.unwrap_or_default() {
                let state = cs.state.unwrap_or_default();
                let text = if let Some(w) = state.waiting {
                    format!(
                        "waiting ({}: {})",
                        w.reason.unwrap_or_default(),
                        w.message.unwrap_or_default()
                    )
                } else if let Some(t) = state.terminated {
                    format!(
                        "terminated (exit {}, {})",
                        t.exit_code,
                        t.reason.unwrap_or_default()
                    )
                } else if state.running.is_some() {
                    "running, not ready".to_string()
                } else {
                    "no state".to_string()
                };
                parts.push(format!(
                    "container {} {text}, restarts {}",
                    cs.name, cs.restart_count
                ));
            }
        }
        Err(e) => parts.push(format!("cannot read the pod: {e}")),
    }
    let events = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await;
    if let Ok(mut events) = events {
        events
            .items
            .sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
        let recent: Vec<String> = events
            .items
            .iter()
            .rev()
            .take(5)
            .map(|e| {
                format!(
                    "{}: {}",
                    e.reason.clone().unwrap_or_default(),
                    e.message.clone().unwrap_or_default().trim()
                )
            })
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

    fn test_image() -> AgentImage {
        AgentImage {
            image: "img:1".into(),
            pull_policy: "Never".into(),
        }
    }

    #[test]
    fn agent_pods_are_non_root_pinned_and_serve_their_ports() {
        let fixture = PodFixture {
            name: "server".into(),
            namespace: None,
            labels: BTreeMap::from([("app".into(), "server".into())]),
            placement: Placement::any(),
            ..Default::default()
        };
        let image = test_image();
        let pod = agent_pod(
            &fixture,
            "server",
            "ns1",
            "node-a",
            "10.0.0.1",
            &BTreeMap::from([("netconform.io/run".into(), "r1".into())]),
            &image,
        );
        let v = serde_json::to_value(&pod).unwrap();
        assert_eq!(v["metadata"]["labels"]["app"], "server");
        assert_eq!(v["metadata"]["labels"]["netconform.io/run"], "r1");
        assert_eq!(v["spec"]["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            v["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"][0],
            "ALL"
        );
        assert_eq!(
            v["spec"]["containers"][0]["args"],
            json!(["serve", "--http", "80", "--tcp", "8080", "--udp", "8081"])
        );
        assert_eq!(
            v["spec"]["securityContext"]["sysctls"][0]["value"], "0",
            "port 80 needs the unprivileged-port sysctl"
        );
        assert_eq!(
            v["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                ["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0],
            "node-a"
        );
        assert_eq!(v["spec"]["containers"][0]["imagePullPolicy"], "Never");
        assert_eq!(
            v["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"],
            80
        );
    }

    #[test]
    fn an_agent_without_tcp_ports_is_checked_once_at_startup_not_every_period() {
        let fixture = PodFixture {
            name: "node-agent".into(),
            host_network: true,
            ports: Some(AgentPorts::default()),
            ..Default::default()
        };
        let image = test_image();
        let pod = agent_pod(
            &fixture,
            "node-agent",
            "ns1",
            "node-a",
            "10.0.0.1",
            &BTreeMap::new(),
            &image,
        );
        let c = &serde_json::to_value(&pod).unwrap()["spec"]["containers"][0];
        assert!(c.get("readinessProbe").is_none(), "{c}");
        assert_eq!(c["startupProbe"]["exec"]["command"][1], "info");
    }

    #[rstest::rstest]
    #[case::every_address(None, None)]
    #[case::loopback(Some(HostIp::Loopback), Some("127.0.0.1"))]
    #[case::node_address(Some(HostIp::NodeAddress), Some("10.0.0.1"))]
    fn host_ports_are_bound_to_the_host_ip_asked_for(
        #[case] host_ip: Option<HostIp>,
        #[case] want: Option<&str>,
    ) {
        let fixture = PodFixture {
            name: "hp".into(),
            host_ports: true,
            host_ip,
            ports: Some(AgentPorts {
                tcp: vec![9181],
                ..Default::default()
            }),
            ..Default::default()
        };
        let pod = agent_pod(
            &fixture,
            "hp",
            "ns1",
            "node-a",
            "10.0.0.1",
            &BTreeMap::new(),
            &test_image(),
        );
        let port = &serde_json::to_value(&pod).unwrap()["spec"]["containers"][0]["ports"][0];
        assert_eq!(port["hostPort"], 9181);
        assert_eq!(port["hostIP"].as_str(), want);
    }
}
