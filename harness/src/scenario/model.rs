//! The scenario file format (docs/scenarios.md). Every struct denies unknown
//! fields, so a typo is an error with its file, line, column and field path.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Agent ports every fixture pod serves unless it says otherwise.
pub const DEFAULT_HTTP_PORT: u16 = 80;
pub const DEFAULT_TCP_PORT: u16 = 8080;
pub const DEFAULT_UDP_PORT: u16 = 8081;
pub const DEFAULT_SAMPLES: u32 = 10;
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;
/// The second agent container of a pod with a `sidecar`.
pub const SIDECAR_CONTAINER: &str = "sidecar";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Lower-case letters, digits and '-', at most 30 characters: it becomes
    /// part of namespace names and of every trial name.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Features every check of this scenario belongs to (a check may add its own).
    #[serde(default)]
    pub features: Vec<String>,
    /// A shared fixture set this scenario builds on: `worlds/<name>.yaml` in
    /// the scenario directory. Its namespaces, pods, Services, StatefulSets and
    /// policies come first, then this file's own `fixtures`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<String>,
    #[serde(default)]
    pub fixtures: Fixtures,
    /// The part of `fixtures` that came from the world (set by the loader).
    #[serde(skip)]
    pub world_fixtures: Option<Fixtures>,
    /// Measure on an idle cluster: this scenario runs alone, before any other
    /// scenario starts, its probes one at a time. Latency thresholds are
    /// judged only in quiet scenarios (elsewhere the suite's own load is in
    /// every figure).
    #[serde(default)]
    pub quiet: bool,
    /// The IP families every check runs in (default `[ipv4]`); a check may
    /// name its own. A check runs once per family: in IPv4 under its name, in
    /// IPv6 as `<name>::ipv6`, needing feature `ipv6`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub families: Vec<IpFamily>,
    pub checks: Vec<Check>,
}

impl Scenario {
    /// A check's features: the scenario's, then the check's own.
    pub fn check_features(&self, check: &Check) -> Vec<String> {
        self.features
            .iter()
            .chain(&check.features)
            .cloned()
            .collect()
    }

    /// The world this scenario can share at run time with the other scenarios
    /// on it: the world has no policies of its own (so its resting state is
    /// all-allowed), the scenario adds only NetworkPolicies to it, its checks'
    /// `before` actions delete or update only its own policies (the world's
    /// pods stay; changed labels are restored when it ends), and it is not quiet. Such scenarios take turns on one copy
    /// of the world; any other scenario gets fixtures of its own.
    pub fn shared_world(&self) -> Option<(&str, &Fixtures)> {
        let (name, world) = (self.world.as_deref()?, self.world_fixtures.as_ref()?);
        let own = &self.fixtures;
        let adds_only_policies = own.namespaces.len() == world.namespaces.len()
            && own.pods.len() == world.pods.len()
            && own.services.len() == world.services.len()
            && own.statefulsets.len() == world.statefulsets.len();
        let own_policy = |name: &str| self.own_policies().iter().any(|p| p.name == name);
        let leaves_the_world_alone = self.checks.iter().flat_map(|c| &c.before).all(|a| {
            // Labels are given back when the scenario ends (runner::run_shared_world).
            a.replace_pods.is_none()
                && a.make_unready.is_none()
                && a.delete_policy.as_deref().is_none_or(own_policy)
                && a.update_policy.as_ref().is_none_or(|u| own_policy(&u.name))
                && a.update_service.is_none()
        });
        (world.policies.is_empty() && adds_only_policies && leaves_the_world_alone && !self.quiet)
            .then_some((name, world))
    }

    /// The policies this scenario adds to its world (all of them without one).
    pub fn own_policies(&self) -> &[PolicyFixture] {
        let inherited = self.world_fixtures.as_ref().map_or(0, |w| w.policies.len());
        &self.fixtures.policies[inherited..]
    }
}

/// A named fixture set several scenarios build on (`worlds/<name>.yaml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorldFile {
    /// Equal to the file name without `.yaml`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub fixtures: Fixtures,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    /// Logical namespaces; the first is the default. Without any, one namespace
    /// called `main` is made.
    #[serde(default)]
    pub namespaces: Vec<NamespaceFixture>,
    #[serde(default)]
    pub pods: Vec<PodFixture>,
    #[serde(default)]
    pub services: Vec<ServiceFixture>,
    /// NetworkPolicies applied once the pods are Ready.
    #[serde(default)]
    pub policies: Vec<PolicyFixture>,
    /// StatefulSets of agent pods (`<name>-0`, `<name>-1`, ...), placed by the scheduler.
    #[serde(default)]
    pub statefulsets: Vec<StatefulSetFixture>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatefulSetFixture {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub replicas: u16,
    /// The headless fixture Service that governs the set (gives each pod its
    /// DNS record `<pod>.<service>.<namespace>.svc.<domain>`).
    pub service: String,
    #[serde(default)]
    pub ports: Option<AgentPorts>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyFixture {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    /// A NetworkPolicy `spec`, as in Kubernetes (networking.k8s.io/v1).
    pub spec: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NamespaceFixture {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Allows privileged pods (hostNetwork) by the Pod Security admission label.
    /// Only hostNetwork fixtures belong in such a namespace.
    #[serde(default)]
    pub privileged: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodFixture {
    pub name: String,
    /// Logical namespace (default: the first one).
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub placement: Placement,
    /// One pod on every schedulable node, named `<name>-<n>` (n = 1, 2, ... in
    /// node order). `placement` does not apply.
    #[serde(default)]
    pub per_node: bool,
    /// Run in the node's network namespace (needs a `privileged` namespace).
    #[serde(default)]
    pub host_network: bool,
    /// Ports the agent serves (default: http 80, tcp 8080, udp 8081).
    #[serde(default)]
    pub ports: Option<AgentPorts>,
    /// A second agent container, `sidecar`, serving these ports (localhost checks).
    #[serde(default)]
    pub sidecar: Option<AgentPorts>,
    /// Pod hostname and subdomain (a headless Service's name gives the pod its
    /// own DNS record `<hostname>.<subdomain>.<namespace>.svc.<domain>`).
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub subdomain: Option<String>,
    /// Publish every TCP and UDP port the agent serves on the pod's node as
    /// the same hostPort (the CNI portmap plugin's job).
    #[serde(default)]
    pub host_ports: bool,
    /// With `host_ports`: the one node address they are published on
    /// (`hostIP`); every address of the node when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<HostIp>,
    /// With `per_node`: every Ready node, tainted ones (a control plane)
    /// included, tolerating their taints; for node-pair figures that should
    /// cover every node of the cluster.
    #[serde(default)]
    pub tolerate_taints: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPorts {
    #[serde(default)]
    pub http: Vec<u16>,
    #[serde(default)]
    pub tcp: Vec<u16>,
    #[serde(default)]
    pub udp: Vec<u16>,
}

impl PodFixture {
    /// The ports its main container serves: its own, or the defaults (none for
    /// a hostNetwork pod, which would otherwise take ports on the node).
    pub fn main_ports(&self) -> AgentPorts {
        match &self.ports {
            Some(p) => p.clone(),
            None if self.host_network => AgentPorts::default(),
            None => AgentPorts::defaults(),
        }
    }
}

/// `from: harness`: probes sent from the machine running netconform, not a pod.
pub const HARNESS: &str = "harness";

impl AgentPorts {
    pub fn defaults() -> AgentPorts {
        AgentPorts {
            http: vec![DEFAULT_HTTP_PORT],
            tcp: vec![DEFAULT_TCP_PORT],
            udp: vec![DEFAULT_UDP_PORT],
        }
    }
}

/// Where a pod runs, relative to other pods; nodes are picked at run time among
/// the schedulable ones. Empty: any node (spread round-robin). At most one field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// The node that pod runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_node_as: Option<String>,
    /// A schedulable node other than the one that pod runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_node_than: Option<String>,
}

impl Placement {
    pub fn any() -> Placement {
        Placement::default()
    }
    pub fn same_node_as(pod: &str) -> Placement {
        Placement {
            same_node_as: Some(pod.into()),
            ..Default::default()
        }
    }
    pub fn other_node_than(pod: &str) -> Placement {
        Placement {
            other_node_than: Some(pod.into()),
            ..Default::default()
        }
    }
    /// The pod this placement is relative to, if any.
    pub fn relative_to(&self) -> Option<&str> {
        self.same_node_as
            .as_deref()
            .or(self.other_node_than.as_deref())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceFixture {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: ServiceKind,
    /// Pod labels the Service selects (empty for external_name).
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    #[serde(default)]
    pub ports: Vec<ServicePortFixture>,
    /// For external_name: the CNAME target.
    #[serde(default)]
    pub external_name: Option<String>,
    /// For node_port: `local` keeps the client source address and answers only
    /// on nodes with a backend.
    #[serde(default)]
    pub external_traffic_policy_local: bool,
    /// `sessionAffinity: ClientIP`: a client's connections stay on one backend
    /// (for `timeout_seconds`, Kubernetes' default 10800 when not given).
    #[serde(default)]
    pub client_ip_affinity: Option<ClientIpAffinity>,
    /// headless, without a selector: this many addresses (1..=200) from
    /// 192.0.2.0/24 (TEST-NET-1, RFC 5737: documentation addresses, routed
    /// nowhere) in an EndpointSlice netconform writes. Only DNS answers carry
    /// them; no probe is ever sent to them. For answers larger than UDP carries.
    #[serde(default)]
    pub synthetic_endpoints: Option<u8>,
    /// Without a selector: netconform writes these EndpointSlices, each
    /// holding one fixture pod's address. These pods are the backends, so the
    /// Service works only if the data plane merges its slices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoint_slices: Vec<EndpointSliceFixture>,
    /// `ipFamilyPolicy: RequireDualStack` instead of `PreferDualStack`: a
    /// clusterIP in each family, or no Service at all. Only on a dual-stack
    /// cluster: its scenario needs feature `ipv6`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_dual_stack: bool,
}

/// One EndpointSlice netconform writes for a selector-less Service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointSliceFixture {
    /// The fixture pod whose address it holds.
    pub pod: String,
    /// The Service ports (by name) it serves, each as its numeric
    /// `target_port` (or `port`); empty: every port of the Service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
}

/// Which address of its node a pod's hostPorts are bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostIp {
    /// 127.0.0.1: reachable from the node itself only.
    Loopback,
    /// The node's InternalIP.
    NodeAddress,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientIpAffinity {
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    #[default]
    ClusterIp,
    NodePort,
    Headless,
    ExternalName,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePortFixture {
    #[serde(default)]
    pub name: Option<String>,
    pub port: u16,
    /// Container port number or name (default: `port`).
    #[serde(default)]
    pub target_port: Option<PortRef>,
    #[serde(default = "default_service_protocol")]
    pub protocol: Protocol,
}

fn default_service_protocol() -> Protocol {
    Protocol::Tcp
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The Kubernetes networking promise this check proves, in words.
    #[serde(default)]
    pub rule: Option<String>,
    /// Features this check belongs to, besides the scenario's.
    #[serde(default)]
    pub features: Vec<String>,
    /// The pod the probes run in; a per_node pod means every one of them, and
    /// `"*"` every fixture pod off the host network.
    pub from: String,
    /// The container they run in (default `agent`; `sidecar` for a pod with one).
    #[serde(default)]
    pub container: Option<String>,
    /// What is probed. `identity` checks have no target.
    #[serde(default)]
    pub to: Target,
    /// Required, unless `vary` gives it.
    pub protocol: Protocol,
    /// Port on the target (default: the agent's port for the protocol, or the
    /// Service's first port).
    #[serde(default)]
    pub port: Option<u16>,
    /// HTTP path (default /clientip).
    #[serde(default)]
    pub path: Option<String>,
    /// DNS record type (default A).
    #[serde(default)]
    pub record: Option<DnsRecordKind>,
    #[serde(default = "default_expect")]
    pub expect: Expectation,
    #[serde(default)]
    pub assert: Assertions,
    #[serde(default = "default_samples")]
    pub samples: u32,
    /// Samples taken before `samples` and left out of the latency figures
    /// (first packets pay for ARP, conntrack and cold caches); still judged.
    #[serde(default)]
    pub warmup: u32,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub latency: LatencyThresholds,
    /// Pairs whose expectation differs from `expect` (later entries win).
    /// Patterns are `<namespace>/<pod>` or `<pod>`, with `*` for any part.
    #[serde(default)]
    pub except: Vec<PairExpectation>,
    /// Re-run the check until it passes or this many milliseconds have passed
    /// since the fixtures were applied (NetworkPolicy takes effect
    /// asynchronously); the time it took is reported.
    #[serde(default)]
    pub converge_ms: Option<u64>,
    /// Changes made to the fixtures before this check's probes. Checks with
    /// actions run after the scenario's other checks, one at a time, in file
    /// order; what they change stays changed. `converge_ms` then counts from
    /// the end of the actions.
    #[serde(default)]
    pub before: Vec<Action>,
    /// tcp: bytes sent through the echo server and checked on return (at most
    /// 16 MiB); udp: the datagram payload, checked in the reply (at most 65000).
    #[serde(default)]
    pub payload_bytes: Option<u64>,
    /// tcp: after connecting, stream through the echo server for this many
    /// milliseconds (at most 10000) and measure the throughput, reported per
    /// node pair in quiet scenarios.
    #[serde(default)]
    pub stream_ms: Option<u64>,
    /// Throughput limits of a `stream_ms` check (quiet scenarios only).
    #[serde(default)]
    pub throughput: ThroughputThresholds,
    /// One check per combination of these values, e.g. `{protocol: [tcp, udp],
    /// port: [80, 81]}`, with `name` mentioning each key (`"{protocol}-{port}"`).
    /// Expanded when the file is read (a varied field, `protocol` included, is
    /// then not given directly); never set on a loaded check.
    #[serde(default, skip_serializing)]
    pub vary: Option<BTreeMap<String, Vec<serde_json::Value>>>,
    /// The IP families this check runs in, instead of the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub families: Option<Vec<IpFamily>>,
    /// The family of this one check's addresses: pod, node and ClusterIP
    /// targets, DNS records asked for (A or AAAA) and the source addresses
    /// expected. Set by the loader from `families`, never written.
    #[serde(default, skip_deserializing)]
    #[schemars(skip)]
    pub family: IpFamily,
}

/// An IP family a check's addresses are taken from.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    #[default]
    Ipv4,
    Ipv6,
}

impl IpFamily {
    /// `ipv4`/`ipv6`, as scenarios and trial names write it.
    pub fn as_str(self) -> &'static str {
        match self {
            IpFamily::Ipv4 => "ipv4",
            IpFamily::Ipv6 => "ipv6",
        }
    }

    /// `IPv4`/`IPv6`, as messages name it.
    pub fn label(self) -> &'static str {
        match self {
            IpFamily::Ipv4 => "IPv4",
            IpFamily::Ipv6 => "IPv6",
        }
    }

    /// The family of an address as the API server writes it.
    pub fn of(address: &str) -> IpFamily {
        if address.contains(':') {
            IpFamily::Ipv6
        } else {
            IpFamily::Ipv4
        }
    }
}

impl Scenario {
    /// Replaces every check by one check per family it runs in: IPv4 keeps
    /// the check's name (so result history holds), IPv6 is `<name>::ipv6`
    /// and belongs to feature `ipv6` (skipped on a cluster without it).
    pub fn expand_families(&mut self) {
        let scenario_families = if self.families.is_empty() {
            vec![IpFamily::Ipv4]
        } else {
            self.families.clone()
        };
        self.checks = std::mem::take(&mut self.checks)
            .into_iter()
            .flat_map(|check| {
                let families = check
                    .families
                    .clone()
                    .unwrap_or_else(|| scenario_families.clone());
                families.into_iter().map(move |family| {
                    let mut one = check.clone();
                    one.family = family;
                    if family == IpFamily::Ipv6 {
                        one.name = format!("{}::ipv6", check.name);
                        if !one.features.iter().any(|f| f == "ipv6") {
                            one.features.push("ipv6".into());
                        }
                    }
                    one
                })
            })
            .collect();
    }
}

/// One change to a scenario's fixtures. Exactly one field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// Delete this fixture's pods and create them again (new pods, new IPs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_pods: Option<String>,
    /// Make this fixture's pods fail their readiness probe (they keep running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub make_unready: Option<String>,
    /// Delete this fixture NetworkPolicy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_policy: Option<String>,
    /// Give this fixture NetworkPolicy a new spec in place (same object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_policy: Option<PolicyUpdate>,
    /// Change the labels of a fixture pod or namespace (the objects stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<LabelChange>,
    /// Give the fixture Service of this name this whole definition in place
    /// (same object: a type change, session affinity switched on or off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_service: Option<ServiceFixture>,
}

/// A fixture NetworkPolicy's new spec (`{ns:<namespace>}` placeholders as in
/// `fixtures.policies`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyUpdate {
    pub name: String,
    pub spec: serde_json::Value,
}

/// Labels set on (a string) or removed from (`null`) one fixture pod or one
/// fixture namespace: exactly one of `pod`, `namespace`. A scenario sharing
/// its world gets the old labels back when it ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, Option<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PairExpectation {
    pub from: String,
    pub to: String,
    pub expect: Expectation,
}

fn default_expect() -> Expectation {
    Expectation::Connected
}
fn default_samples() -> u32 {
    DEFAULT_SAMPLES
}
fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// What a check probes. Exactly one of pod, service, node_port, name, localhost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// A fixture pod by its pod IP (every one, for a per_node pod; `"*"` for
    /// every fixture pod off the host network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// pod: only the target pods on the client's own node, or only those on
    /// other nodes (a world with a server on every node serves both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<NodePair>,
    /// A fixture Service, by the address in `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<ServiceAddress>,
    /// A node_port Service, on every node's InternalIP (or those `nodes` selects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodeSelection>,
    /// node_port: leave out the client's own node (traffic a node sends to
    /// itself is not external traffic: kube-proxy may treat it differently).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclude_client_node: bool,
    /// A DNS name; `{domain}` is the cluster domain (discovered from the pod's
    /// resolv.conf), `{ns}` the default namespace, `{ns:<logical>}` another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The pod's own loopback.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub localhost: bool,
    /// A fixture pod's hostPort: its node's InternalIP, `port` (host_ports pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<String>,
    /// The API server through the `kubernetes` Service, by its name
    /// `kubernetes.default.svc.<domain>`, port 443 (protocol https).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub api_server: bool,
    /// The host outside the cluster that the user names
    /// (`NETCONFORM_OUTSIDE_HOST`, an IP or one per family; the testbed's
    /// outside namespace), on `port`, by its address in the check's family.
    /// Nothing else outside the cluster is ever a target.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outside_host: bool,
}

impl Target {
    pub fn pod(name: &str) -> Target {
        Target {
            pod: Some(name.into()),
            ..Default::default()
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceAddress {
    /// spec.clusterIP, no DNS involved.
    #[default]
    ClusterIp,
    /// `<name>`, through the pod's search path (same namespace only).
    Name,
    /// `<name>.<namespace>`.
    NameNamespace,
    /// `<name>.<namespace>.svc.<domain>`.
    Fqdn,
}

/// Where a target pod runs relative to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodePair {
    SameNode,
    OtherNode,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeSelection {
    #[default]
    All,
    /// Nodes running a Ready backend of the Service.
    WithBackend,
    /// Nodes running none.
    WithoutBackend,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
    Http,
    /// A lookup through the pod's resolver, over UDP (TCP after a truncated answer).
    Dns,
    /// The same lookup with every query over TCP (resolv.conf's `use-vc`).
    #[serde(rename = "dns-tcp")]
    DnsTcp,
    /// HTTPS GET `path` with the certificate verified (`to.api_server`).
    Https,
    /// ICMP echo (ping) to a pod's address, without root or capabilities.
    Icmp,
    /// The pod's own addresses and hostname, compared with what the API says.
    Identity,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Http => "http",
            Protocol::Dns => "dns",
            Protocol::DnsTcp => "dns-tcp",
            Protocol::Https => "https",
            Protocol::Icmp => "icmp",
            Protocol::Identity => "identity",
        }
    }

    /// A name lookup rather than traffic to an address.
    pub fn is_dns(self) -> bool {
        matches!(self, Protocol::Dns | Protocol::DnsTcp)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsRecordKind {
    A,
    Aaaa,
    Srv,
    /// Reverse lookup of an address (`to.service` with `address: cluster_ip`,
    /// or `to.pod` naming one pod): the name under `in-addr.arpa` or
    /// `ip6.arpa` in the check's family.
    Ptr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Expectation {
    /// Every sample connects (and gets a well-formed answer); for DNS, resolves.
    Connected,
    /// Every sample is refused.
    Refused,
    /// Every sample times out.
    TimedOut,
    /// Every sample is refused or times out (how a policy may deny).
    Blocked,
    /// DNS: every lookup fails (NXDOMAIN or no answer).
    NotFound,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assertions {
    /// The source address the server saw.
    #[serde(default)]
    pub source_ip: Option<SourceIp>,
    /// The server that answered is the client pod itself (localhost checks).
    #[serde(default)]
    pub same_pod: bool,
    /// Across the samples, at least this many different backends answered.
    #[serde(default)]
    pub distinct_servers_at_least: Option<u32>,
    /// Every sample of a client was answered by one backend (session affinity).
    #[serde(default)]
    pub one_server_per_client: bool,
    /// What a DNS lookup must return, exactly (as a set).
    #[serde(default)]
    pub answers: Option<DnsAnswers>,
    /// dns over UDP: every sample's answer came truncated over UDP and was
    /// asked again over TCP (an answer too large for 512 bytes).
    #[serde(default)]
    pub dns_tcp_fallback: bool,
    /// None of these fixture pods may answer (e.g. pods that are not Ready).
    #[serde(default)]
    pub not_served_by: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceIp {
    /// The client pod's own IP: no NAT on the way.
    ClientPodIp,
    /// The client pod's IP, or its node's InternalIP (SNAT to the node, which
    /// traffic leaving the cluster may get).
    ClientPodOrNodeIp,
}

/// Expected DNS answers. Exactly one field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsAnswers {
    /// The clusterIP of this fixture Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_ip_of: Option<String>,
    /// The pod IPs of the Ready pods this fixture Service selects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_pod_ips_of: Option<String>,
    /// The pod IP of this fixture pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ip_of: Option<String>,
    /// SRV: the named port of this fixture Service (`<service>/<port name>`),
    /// one record per Ready backend of a headless Service, else one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srv_port_of: Option<String>,
    /// The synthetic endpoint addresses of this fixture Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic_endpoints_of: Option<String>,
    /// The clusterIP of the `kubernetes` Service in `default` (the API server).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub api_server_cluster_ip: bool,
    /// PTR: exactly these names; `{ns}`, `{ns:<logical>}` and `{domain}` as
    /// in `to.name`, the trailing dot optional.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyThresholds {
    #[serde(default)]
    pub p50_ms: Option<f64>,
    #[serde(default)]
    pub p90_ms: Option<f64>,
    #[serde(default)]
    pub p99_ms: Option<f64>,
    /// Fail the node pairs whose median is far off the cluster's own baseline
    /// (the lower median over all node pairs of their medians).
    #[serde(default)]
    pub pair_outliers: Option<PairOutliers>,
}

impl LatencyThresholds {
    pub fn any(&self) -> bool {
        self.p50_ms.is_some()
            || self.p90_ms.is_some()
            || self.p99_ms.is_some()
            || self.pair_outliers.is_some()
    }
}

/// A node pair is an outlier when its p50 is more than `ratio` times the
/// baseline *and* more than `floor_ms` above it (so a fast cluster's
/// microsecond jitter is never a failure).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PairOutliers {
    pub ratio: f64,
    pub floor_ms: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThroughputThresholds {
    /// Fail the node pairs whose median throughput is far below the cluster's
    /// own baseline: the upper median of the medians of the pairs of the same
    /// kind (same-node pairs and cross-node pairs are compared apart, since a
    /// same-node pair never leaves its node).
    #[serde(default)]
    pub pair_outliers: Option<ThroughputOutliers>,
}

/// A node pair is an outlier when the baseline is more than `ratio` times
/// its median *and* more than `floor_mbps` above it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThroughputOutliers {
    pub ratio: f64,
    pub floor_mbps: f64,
}

/// The JSON Schema of a scenario file (scenarios/schema.json), for editors.
pub fn json_schema() -> serde_json::Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(Scenario)).expect("a schema serialises");
    // A check may take its protocol from `vary` instead.
    if let Some(required) = schema
        .pointer_mut("/$defs/Check/required")
        .and_then(serde_json::Value::as_array_mut)
    {
        required.retain(|field| field != "protocol");
    }
    schema
}

pub fn world_json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(WorldFile)).expect("a schema serialises")
}

impl Fixtures {
    /// `shared` first, then these.
    pub fn after(self, shared: &Fixtures) -> Fixtures {
        fn join<T: Clone>(a: &[T], b: Vec<T>) -> Vec<T> {
            a.iter().cloned().chain(b).collect()
        }
        Fixtures {
            namespaces: join(&shared.namespaces, self.namespaces),
            pods: join(&shared.pods, self.pods),
            services: join(&shared.services, self.services),
            policies: join(&shared.policies, self.policies),
            statefulsets: join(&shared.statefulsets, self.statefulsets),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scenarios/schema.json and scenarios/worlds/schema.json are generated
    /// from these types; regenerate with
    /// `NETCONFORM_WRITE_SCHEMA=1 cargo test -p netconform-harness schema`.
    #[rstest::rstest]
    #[case("../scenarios/schema.json", json_schema())]
    #[case("../scenarios/worlds/schema.json", world_json_schema())]
    fn schema_file_is_current(#[case] file: &str, #[case] schema: serde_json::Value) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let want = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if std::env::var("NETCONFORM_WRITE_SCHEMA").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(have == want, "{} is out of date: run NETCONFORM_WRITE_SCHEMA=1 cargo test -p netconform-harness schema", path.display());
    }
}
