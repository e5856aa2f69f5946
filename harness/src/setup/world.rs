//! A scenario's fixtures as they exist in the cluster: namespaces, pods (with
//! their IPs and nodes), Services (with cluster IPs, node ports and backends),
//! the nodes, and the cluster domain. Built by `setup`, read by checks.

use crate::cluster::exec;
use crate::cluster::namespaces;
use crate::cluster::run::RunId;
use crate::progress::progress;
use crate::scenario::{IpFamily, PolicyFixture, Scenario, ServiceFixture, ServiceKind};
use crate::setup::fixtures::{self, AgentImage, AGENT_CONTAINER};
use crate::setup::SetupError;
use crate::setup::{data_path, placement};
use futures::future::join_all;
use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::ListParams;
use kube::{Api, Client};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

use crate::timeouts::TIMEOUTS;

/// A fixture pod as the run found it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub pod: String,
    pub namespace: String,
    /// The pod's IPv4 address (its `podIP` on an IPv4 or dual-stack
    /// cluster); in a world seen in one family (`World::in_family`), the
    /// pod's address of that family, empty if it has none.
    pub ip: String,
    /// The pod's IPv6 address, if it has one (dual-stack `podIPs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    pub node: String,
    /// What the pod's hostname is (the pod name, or its fixture's `hostname`).
    pub hostname: String,
    #[serde(skip)]
    pub labels: BTreeMap<String, String>,
    pub host_network: bool,
}

impl Endpoint {
    /// `namespace/pod`, as errors and progress name it.
    pub fn object(&self) -> String {
        format!("{}/{}", self.namespace, self.pod)
    }
}

#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub name: String,
    pub internal_ip: String,
    /// The node's IPv6 InternalIP on a dual-stack cluster.
    pub internal_ipv6: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ServicePortInfo {
    pub name: Option<String>,
    pub port: u16,
    pub node_port: Option<u16>,
    pub protocol: String,
}

#[derive(Clone, Debug)]
pub struct ServiceInfo {
    pub name: String,
    pub namespace: String,
    pub kind: ServiceKind,
    pub cluster_ip: Option<String>,
    /// The IPv6 one of `clusterIPs` (a dual-stack Service).
    pub cluster_ipv6: Option<String>,
    pub ports: Vec<ServicePortInfo>,
    /// Fixture pods the selector matches (all Ready at setup).
    pub backends: Vec<Endpoint>,
    /// externalTrafficPolicy Local: only nodes with a backend answer the node port.
    pub local: bool,
    /// Addresses of the synthetic endpoints netconform wrote (DNS answers only).
    pub synthetic: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct World {
    /// logical namespace -> real namespace
    pub namespaces: BTreeMap<String, String>,
    pub default_namespace: String,
    /// fixture pod -> its pods (one, or one per node)
    pub groups: BTreeMap<String, Vec<Endpoint>>,
    pub services: BTreeMap<String, ServiceInfo>,
    /// Every Ready node of the cluster (NodePort answers on all of them).
    pub nodes: Vec<NodeInfo>,
    /// The cluster domain, from a fixture pod's resolv.conf search path.
    pub domain: Option<String>,
    /// When the scenario's NetworkPolicies were created (enforcement latency
    /// is measured from here).
    pub policies_applied: Option<Instant>,
    /// The Pod objects applied at setup, by pod name (to create them again).
    pub pod_specs: BTreeMap<String, k8s_openapi::api::core::v1::Pod>,
    /// fixture policy -> its real namespace
    pub policy_namespaces: BTreeMap<String, String>,
    /// The clusterIP of Service default/kubernetes (read only), the API
    /// server's in-cluster address.
    pub api_server_ip: Option<String>,
    /// The outside host's address in the world's family (`NETCONFORM_OUTSIDE_HOST`).
    pub outside_host: Option<String>,
    /// Its IPv6 address, when the user named one.
    pub outside_host_ipv6: Option<String>,
    /// Objects whose labels a check changed, with the labels they had before
    /// the first change (a shared world gets them back; see `actions::restore_labels`).
    pub relabelled: BTreeMap<Labelled, BTreeMap<String, String>>,
}

/// A fixture object whose labels can be changed, by its real name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Labelled {
    Pod { namespace: String, name: String },
    Namespace(String),
}

impl std::fmt::Display for Labelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Labelled::Pod { namespace, name } => write!(f, "pod {namespace}/{name}"),
            Labelled::Namespace(name) => write!(f, "namespace {name}"),
        }
    }
}

impl World {
    /// A replaced pod's new addresses, everywhere the world mentions the pod.
    pub fn set_pod_ips(&mut self, pod: &str, ip: &str, ipv6: Option<&str>) {
        for e in self.groups.values_mut().flatten().chain(
            self.services
                .values_mut()
                .flat_map(|s| s.backends.iter_mut()),
        ) {
            if e.pod == pod {
                e.ip = ip.to_string();
                e.ipv6 = ipv6.map(str::to_string);
            }
        }
    }

    /// The world as a check of `family` sees it: every pod, node and
    /// ClusterIP address replaced by its address of that family (a pod
    /// without one gets an empty `ip`, a Service none). Plans and verdicts
    /// then need nothing family-specific beyond the DNS record type asked for.
    pub fn in_family(&self, family: IpFamily) -> std::borrow::Cow<'_, World> {
        if family == IpFamily::Ipv4 {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut world = self.clone();
        let pod = |e: &mut Endpoint| e.ip = e.ipv6.clone().unwrap_or_default();
        for e in world.groups.values_mut().flatten() {
            pod(e);
        }
        for s in world.services.values_mut() {
            s.backends.iter_mut().for_each(pod);
            s.cluster_ip = s.cluster_ipv6.clone();
            s.synthetic.retain(|ip| IpFamily::of(ip) == family);
        }
        for n in &mut world.nodes {
            n.internal_ip = n.internal_ipv6.clone().unwrap_or_default();
        }
        world.api_server_ip = world.api_server_ip.filter(|ip| IpFamily::of(ip) == family);
        world.outside_host = world.outside_host_ipv6.clone();
        std::borrow::Cow::Owned(world)
    }

    /// A pod that is no longer Ready stops being any Service's backend.
    pub fn remove_backend(&mut self, pod: &str) {
        for s in self.services.values_mut() {
            s.backends.retain(|b| b.pod != pod);
        }
    }
}

/// Creates the scenario's namespaces, pods and Services and waits until they
/// serve. The caller deletes the namespaces (by label) whatever this returns.
pub async fn setup(
    client: &Client,
    run: &RunId,
    image: &AgentImage,
    schedulable: &[String],
    scenario: &Scenario,
) -> Result<World, SetupError> {
    let mut world = World::default();
    let assigned = placement::assign(
        &scenario
            .fixtures
            .pods
            .iter()
            .filter(|p| !p.per_node)
            .cloned()
            .collect::<Vec<_>>(),
        schedulable,
    )
    .map_err(|reason| SetupError::Placement { reason })?;
    let labels = run.labels(&scenario.name);

    let logical: Vec<_> = if scenario.fixtures.namespaces.is_empty() {
        vec![("main".to_string(), BTreeMap::new(), false)]
    } else {
        scenario
            .fixtures
            .namespaces
            .iter()
            .map(|n| (n.name.clone(), n.labels.clone(), n.privileged))
            .collect()
    };
    world.default_namespace = logical[0].0.clone();
    for (name, ns_labels, privileged) in &logical {
        let real = namespaces::namespace_name(&scenario.name, name, run);
        let mut all = ns_labels.clone();
        all.extend(labels.clone());
        if *privileged {
            all.insert(
                "pod-security.kubernetes.io/enforce".into(),
                "privileged".into(),
            );
        }
        namespaces::create(client, &real, all)
            .await
            .map_err(|e| SetupError::api("creating namespace", &real, e))?;
        world.namespaces.insert(name.clone(), real);
    }
    // Pods are admitted only once the namespace's default ServiceAccount exists.
    for real in world.namespaces.values() {
        namespaces::wait_default_service_account(client, real, TIMEOUTS.service_account)
            .await
            .map_err(SetupError::Cluster)?;
    }
    progress(
        &scenario.name,
        format!(
            "namespaces {}",
            world
                .namespaces
                .values()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );

    world.nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| SetupError::api("listing", "nodes", e))?
        .items
        .into_iter()
        .filter(crate::cluster::is_ready)
        .filter_map(|n| {
            let internal: Vec<String> = n
                .status
                .as_ref()?
                .addresses
                .as_ref()?
                .iter()
                .filter(|a| a.type_ == "InternalIP")
                .map(|a| a.address.clone())
                .collect();
            Some(NodeInfo {
                name: n.metadata.name?,
                internal_ip: internal.first()?.clone(),
                internal_ipv6: internal
                    .iter()
                    .find(|ip| IpFamily::of(ip) == IpFamily::Ipv6)
                    .cloned(),
            })
        })
        .collect();
    world.nodes.sort_by(|a, b| a.name.cmp(&b.name));

    // Pods: every member of every fixture, applied together, waited for together.
    let started = Instant::now();
    let mut members = Vec::new();
    for f in &scenario.fixtures.pods {
        let ns = world.namespaces[f.namespace.as_ref().unwrap_or(&world.default_namespace)].clone();
        if f.per_node {
            // A hostNetwork per_node pod is a node agent: like a DaemonSet, it runs
            // on every Ready node, tainted ones included (it tolerates any taint).
            let nodes: Vec<String> = if f.host_network || f.tolerate_taints {
                world.nodes.iter().map(|n| n.name.clone()).collect()
            } else {
                schedulable.to_vec()
            };
            for (i, node) in nodes.iter().enumerate() {
                members.push((f, format!("{}-{}", f.name, i + 1), ns.clone(), node.clone()));
            }
        } else {
            members.push((f, f.name.clone(), ns, assigned[&f.name].clone()));
        }
    }
    for (f, name, ns, node) in &members {
        let node_ip = world
            .nodes
            .iter()
            .find(|n| &n.name == node)
            .map(|n| n.internal_ip.clone())
            .unwrap_or_default();
        world.pod_specs.insert(
            name.clone(),
            fixtures::agent_pod(f, name, ns, node, &node_ip, &labels, image),
        );
    }
    let applies = members.iter().map(|(_, name, ns, _)| {
        let pod = world.pod_specs[name].clone();
        async move {
            fixtures::apply(client, &pod)
                .await
                .map_err(|e| SetupError::api("applying pod", format!("{ns}/{name}"), e))?;
            fixtures::wait_ready(client, ns, name, TIMEOUTS.pod_ready).await
        }
    });
    // StatefulSets: applied, then each of their pods waited for by its name.
    let mut set_members = Vec::new();
    for f in &scenario.fixtures.statefulsets {
        let ns = world.namespaces[f.namespace.as_ref().unwrap_or(&world.default_namespace)].clone();
        fixtures::apply(client, &fixtures::statefulset(f, &ns, &labels, image))
            .await
            .map_err(|e| SetupError::api("applying statefulset", format!("{ns}/{}", f.name), e))?;
        for i in 0..f.replicas {
            set_members.push((f.name.clone(), format!("{}-{i}", f.name), ns.clone()));
        }
    }
    let set_waits = set_members
        .iter()
        .map(|(_, name, ns)| fixtures::wait_ready(client, ns, name, TIMEOUTS.pod_ready));
    for ((set, name, _), ready) in set_members.iter().zip(join_all(set_waits).await) {
        let endpoint = ready_endpoint(ready?, name, name.clone(), false)?;
        world.groups.entry(set.clone()).or_default().push(endpoint);
    }
    for ((f, name, _, _), ready) in members.iter().zip(join_all(applies).await) {
        let hostname = f.hostname.clone().unwrap_or_else(|| {
            if f.host_network {
                String::new()
            } else {
                name.clone()
            }
        });
        let endpoint = ready_endpoint(ready?, name, hostname, f.host_network)?;
        world
            .groups
            .entry(f.name.clone())
            .or_default()
            .push(endpoint);
    }
    progress(
        &scenario.name,
        format!(
            "{} pods Ready in {:.1}s: {}",
            members.len() + set_members.len(),
            started.elapsed().as_secs_f64(),
            world
                .groups
                .values()
                .flatten()
                .map(|e| format!("{} {} on {}", e.pod, e.ip, e.node))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );

    // The cluster domain, as a pod sees it (never assumed); ExternalName targets may use it.
    if let Some(pod) = world.groups.values().flatten().find(|e| !e.host_network) {
        world.domain = discover_domain(client, pod).await;
    }
    let outside_hosts = crate::cluster::outside_hosts().unwrap_or_default();
    let outside_host = |v4: bool| {
        outside_hosts
            .iter()
            .find(|ip| ip.is_ipv4() == v4)
            .map(|ip| ip.to_string())
    };
    world.outside_host = outside_host(true);
    world.outside_host_ipv6 = outside_host(false);
    world.api_server_ip = Api::<Service>::namespaced(client.clone(), "default")
        .get_opt("kubernetes")
        .await
        .ok()
        .flatten()
        .and_then(|s| s.spec?.cluster_ip);

    for f in &scenario.fixtures.services {
        let ns = world.namespaces[f.namespace.as_ref().unwrap_or(&world.default_namespace)].clone();
        let f = &with_names_expanded(f, &world)?;
        let svc = fixtures::apply(client, &fixtures::service(f, &ns, &labels))
            .await
            .map_err(|e| SetupError::api("applying service", format!("{ns}/{}", f.name), e))?;
        let mut backends = selected_pods(&world, &ns, &f.selector);
        let sliced = f.endpoint_slices.iter().flat_map(|slice| {
            let members = world.groups.get(&slice.pod).cloned().unwrap_or_default();
            members.into_iter().map(move |pod| (slice, pod))
        });
        for (index, (slice, pod)) in sliced.enumerate() {
            for object in fixtures::pod_endpoint_slices(f, &slice.ports, &ns, &labels, index, &pod)
            {
                fixtures::apply(client, &object).await.map_err(|e| {
                    SetupError::api(
                        "applying an EndpointSlice of service",
                        format!("{ns}/{}", f.name),
                        e,
                    )
                })?;
            }
            if !backends.iter().any(|b| b.pod == pod.pod) {
                backends.push(pod);
            }
        }
        if f.synthetic_endpoints.is_some() {
            fixtures::apply(client, &fixtures::synthetic_endpoint_slice(f, &ns, &labels))
                .await
                .map_err(|e| {
                    SetupError::api(
                        "applying the synthetic endpoints of service",
                        format!("{ns}/{}", f.name),
                        e,
                    )
                })?;
        }
        let mut info = service_info(&svc, f, backends);
        info.synthetic = f
            .synthetic_endpoints
            .map(fixtures::synthetic_addresses)
            .unwrap_or_default();
        world.services.insert(f.name.clone(), info);
    }
    wait_endpoints(client, &world).await?;
    data_path::wait(client, &world, &scenario.name).await?;

    apply_policies(
        client,
        &mut world,
        &scenario.fixtures.policies,
        &labels,
        &scenario.name,
    )
    .await?;
    Ok(world)
}

/// A pod's IPv6 address among its `podIPs` (a dual-stack pod has one).
pub fn ipv6_of(status: &k8s_openapi::api::core::v1::PodStatus) -> Option<String> {
    status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.clone())
        .find(|ip| IpFamily::of(ip) == IpFamily::Ipv6)
}

/// A Ready pod as the world records it.
fn ready_endpoint(
    pod: k8s_openapi::api::core::v1::Pod,
    name: &str,
    hostname: String,
    host_network: bool,
) -> Result<Endpoint, SetupError> {
    let status = pod.status.unwrap_or_default();
    let ipv6 = ipv6_of(&status);
    Ok(Endpoint {
        pod: name.to_string(),
        namespace: pod.metadata.namespace.unwrap_or_default(),
        ip: status.pod_ip.ok_or_else(|| SetupError::NoPodIp {
            object: name.to_string(),
        })?,
        ipv6,
        node: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        hostname,
        labels: pod.metadata.labels.unwrap_or_default(),
        host_network,
    })
}

/// Creates `policies` in the world's namespaces (labelled with `labels`) and
/// notes when: enforcement is waited for from that moment.
pub async fn apply_policies(
    client: &Client,
    world: &mut World,
    policies: &[PolicyFixture],
    labels: &BTreeMap<String, String>,
    scenario: &str,
) -> Result<(), SetupError> {
    for p in policies {
        let ns = world.namespaces[p.namespace.as_ref().unwrap_or(&world.default_namespace)].clone();
        let mut p = p.clone();
        p.spec = expand_policy_spec(&p.spec, world).map_err(|detail| SetupError::BadPolicy {
            policy: p.name.clone(),
            detail,
        })?;
        world.policy_namespaces.insert(p.name.clone(), ns.clone());
        fixtures::apply(client, &fixtures::network_policy(&p, &ns, labels)?)
            .await
            .map_err(|e| {
                SetupError::api("applying NetworkPolicy", format!("{ns}/{}", p.name), e)
            })?;
    }
    if !policies.is_empty() {
        world.policies_applied = Some(Instant::now());
        progress(
            scenario,
            format!("{} NetworkPolicies applied", policies.len()),
        );
    }
    Ok(())
}

/// Deletes `policies` again: a scenario on a shared world leaves it as it
/// found it. (How soon the network forgets them is the next scenario's
/// business: its checks converge from its own policies' creation.)
pub async fn delete_policies(
    client: &Client,
    world: &mut World,
    policies: &[PolicyFixture],
) -> Result<(), SetupError> {
    for p in policies {
        let Some(ns) = world.policy_namespaces.remove(&p.name) else {
            continue;
        };
        fixtures::delete_network_policy(client, &ns, &p.name)
            .await
            .map_err(|e| {
                SetupError::api("deleting NetworkPolicy", format!("{ns}/{}", p.name), e)
            })?;
    }
    world.policies_applied = None;
    Ok(())
}

/// The fixture pods in `ns` that `selector` matches (none for an empty one).
pub fn selected_pods(
    world: &World,
    ns: &str,
    selector: &BTreeMap<String, String>,
) -> Vec<Endpoint> {
    world
        .groups
        .values()
        .flatten()
        .filter(|e| {
            e.namespace == ns
                && !selector.is_empty()
                && selector.iter().all(|(k, v)| e.labels.get(k) == Some(v))
        })
        .cloned()
        .collect()
}

/// The world's record of a Service as the API server answered it.
pub fn service_info(
    svc: &Service,
    fixture: &ServiceFixture,
    backends: Vec<Endpoint>,
) -> ServiceInfo {
    let spec = svc.spec.clone().unwrap_or_default();
    ServiceInfo {
        name: svc.metadata.name.clone().unwrap_or_default(),
        namespace: svc.metadata.namespace.clone().unwrap_or_default(),
        kind: fixture.kind,
        cluster_ip: spec.cluster_ip.filter(|ip| ip != "None" && !ip.is_empty()),
        cluster_ipv6: spec
            .cluster_ips
            .iter()
            .flatten()
            .find(|ip| IpFamily::of(ip) == IpFamily::Ipv6)
            .cloned(),
        ports: spec
            .ports
            .unwrap_or_default()
            .into_iter()
            .map(|p| ServicePortInfo {
                name: p.name,
                port: p.port as u16,
                node_port: p.node_port.map(|n| n as u16),
                protocol: p.protocol.unwrap_or_else(|| "TCP".into()),
            })
            .collect(),
        backends,
        local: fixture.external_traffic_policy_local,
        synthetic: vec![],
    }
}

/// Waits, bounded, until every selecting Service's EndpointSlices list all
/// its backends as ready.
async fn wait_endpoints(client: &Client, world: &World) -> Result<(), SetupError> {
    use futures::StreamExt;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::runtime::{watcher, WatchStreamExt};
    for svc in world.services.values().filter(|s| !s.backends.is_empty()) {
        let api = Api::<EndpointSlice>::namespaced(client.clone(), &svc.namespace);
        let selector = format!("kubernetes.io/service-name={}", svc.name);
        let want = svc.backends.len();
        // A dual-stack Service has a slice per family; each must hold every backend.
        let dual = (svc.cluster_ipv6.is_some() || svc.kind == ServiceKind::Headless)
            && svc.backends.iter().all(|b| b.ipv6.is_some());
        let ready_count = |slices: &[EndpointSlice]| {
            let ready_in = |address_type: &str| {
                slices
                    .iter()
                    .filter(|s| s.address_type == address_type)
                    .flat_map(|s| &s.endpoints)
                    .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false))
                    .count()
            };
            let ipv4 = ready_in("IPv4");
            if dual {
                ipv4.min(ready_in("IPv6"))
            } else {
                ipv4
            }
        };
        let mut store: BTreeMap<String, EndpointSlice> = BTreeMap::new();
        let stream = watcher(api, watcher::Config::default().labels(&selector))
            .default_backoff()
            .applied_objects();
        let wait = async {
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                let Ok(slice) = ev else { continue };
                store.insert(slice.metadata.name.clone().unwrap_or_default(), slice);
                if ready_count(&store.values().cloned().collect::<Vec<_>>()) >= want {
                    return true;
                }
            }
            false
        };
        if !matches!(
            tokio::time::timeout(TIMEOUTS.endpoints, wait).await,
            Ok(true)
        ) {
            return Err(SetupError::EndpointsNotReady {
                object: format!("{}/{}", svc.namespace, svc.name),
                want,
                limit_s: TIMEOUTS.endpoints.as_secs(),
            });
        }
    }
    Ok(())
}

/// The Service fixture with the placeholders of its `external_name` filled in.
pub fn with_names_expanded(
    fixture: &ServiceFixture,
    world: &World,
) -> Result<ServiceFixture, SetupError> {
    let mut fixture = fixture.clone();
    if let Some(target) = &fixture.external_name {
        fixture.external_name = Some(expand_name(target, world)?);
    }
    Ok(fixture)
}

/// `{domain}`, `{ns}` and `{ns:<logical>}` in a DNS name.
pub fn expand_name(name: &str, world: &World) -> Result<String, SetupError> {
    let mut out = name.to_string();
    if out.contains("{domain}") {
        let domain = world.domain.as_ref().ok_or(SetupError::NoClusterDomain)?;
        out = out.replace("{domain}", domain);
    }
    for (logical, real) in &world.namespaces {
        out = out.replace(&format!("{{ns:{logical}}}"), real);
    }
    if let Some(real) = world.namespaces.get(&world.default_namespace) {
        out = out.replace("{ns}", real);
    }
    if out.contains('{') {
        return Err(SetupError::UnknownPlaceholder {
            name: name.to_string(),
        });
    }
    Ok(out)
}

/// In a policy spec, `{ip:<pod>}` becomes that fixture pod's IP (pod IPs are
/// only known once the pods run, e.g. for an ipBlock `except`), `{ip6:<pod>}`
/// its IPv6 address, and
/// `{ns:<namespace>}` that namespace's real name (this run's; e.g. for the
/// `kubernetes.io/metadata.name` label every namespace carries).
pub fn expand_policy_spec(
    spec: &serde_json::Value,
    world: &World,
) -> Result<serde_json::Value, String> {
    let mut text = spec.to_string();
    fill(&mut text, "ns", |logical| {
        world
            .namespaces
            .get(logical)
            .cloned()
            .ok_or_else(|| format!("{{ns:{logical}}}: no fixture namespace `{logical}`"))
    })?;
    fill(&mut text, "ip", |pod| {
        world
            .groups
            .get(pod)
            .and_then(|g| g.first())
            .map(|e| e.ip.clone())
            .ok_or_else(|| format!("{{ip:{pod}}}: no fixture pod `{pod}`"))
    })?;
    fill(&mut text, "ip6", |pod| {
        let e = world
            .groups
            .get(pod)
            .and_then(|g| g.first())
            .ok_or_else(|| format!("{{ip6:{pod}}}: no fixture pod `{pod}`"))?;
        e.ipv6.clone().ok_or_else(|| {
            format!("{{ip6:{pod}}}: pod `{pod}` has no IPv6 address (a dual-stack cluster gives every pod one)")
        })
    })?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Replaces every `{<kind>:<key>}` in `text` with `value(key)`.
fn fill(
    text: &mut String,
    kind: &str,
    value: impl Fn(&str) -> Result<String, String>,
) -> Result<(), String> {
    let open = format!("{{{kind}:");
    while let Some(start) = text.find(&open) {
        let end = text[start..]
            .find('}')
            .ok_or_else(|| format!("unclosed {open}...}} placeholder"))?
            + start;
        let filled = value(&text[start + open.len()..end])?;
        text.replace_range(start..=end, &filled);
    }
    Ok(())
}

/// `<domain>` from a search path like `ns.svc.<domain> svc.<domain> <domain>`.
pub fn domain_from_search(search: &[String]) -> Option<String> {
    search
        .iter()
        .find_map(|s| s.strip_prefix("svc."))
        .map(str::to_string)
}

async fn discover_domain(client: &Client, pod: &Endpoint) -> Option<String> {
    let out = exec::exec(
        client,
        &pod.namespace,
        &pod.pod,
        AGENT_CONTAINER,
        &[fixtures::AGENT_BINARY, "info"],
        b"",
    )
    .await
    .ok()?;
    let info: serde_json::Value = serde_json::from_slice(&out).ok()?;
    let search: Vec<String> = serde_json::from_value(info.get("search")?.clone()).ok()?;
    domain_from_search(&search)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_placeholders_are_filled() {
        let mut w = World::default();
        w.namespaces.insert("y".into(), "y-r1".into());
        w.groups.insert(
            "yb".into(),
            vec![Endpoint {
                pod: "yb".into(),
                ip: "10.1.2.3".into(),
                ipv6: Some("fd00::3".into()),
                ..Default::default()
            }],
        );
        let spec = serde_json::json!({"ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["{ip:yb}/32"]}}]}]});
        let out = expand_policy_spec(&spec, &w).unwrap();
        assert_eq!(
            out["ingress"][0]["from"][0]["ipBlock"]["except"][0],
            "10.1.2.3/32"
        );
        let spec = serde_json::json!({"ipBlock": {"cidr": "::/0", "except": ["{ip6:yb}/128"]}});
        let out = expand_policy_spec(&spec, &w).unwrap();
        assert_eq!(out["ipBlock"]["except"][0], "fd00::3/128");
        let spec = serde_json::json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "{ns:y}"}}});
        let out = expand_policy_spec(&spec, &w).unwrap();
        assert_eq!(
            out["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "y-r1"
        );
        assert!(
            expand_policy_spec(&serde_json::json!({"a": "{ip:nope}"}), &w)
                .unwrap_err()
                .contains("no fixture pod")
        );
        assert!(
            expand_policy_spec(&serde_json::json!({"a": "{ns:nope}"}), &w)
                .unwrap_err()
                .contains("no fixture namespace")
        );
    }

    #[test]
    fn the_domain_comes_from_the_svc_search_entry() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            domain_from_search(&s(&[
                "a.svc.corp.example",
                "svc.corp.example",
                "corp.example"
            ]))
            .as_deref(),
            Some("corp.example")
        );
        assert_eq!(domain_from_search(&s(&["example.org"])), None);
    }
}
