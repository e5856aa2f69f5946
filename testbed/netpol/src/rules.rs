//! NetworkPolicy semantics turned into iptables rules for the pods of one node,
//! one ruleset per IP family (iptables for IPv4, ip6tables for IPv6).
//!
//! Layout, in the filter table:
//!   FORWARD/INPUT -> NETCONFORM-NETPOL
//!     established/related: RETURN (only new flows are judged)
//!     -d <isolated pod> -j NCNP-I-<pod>   ingress allow-list, ends in DROP
//!     -s <isolated pod> -j NCNP-E-<pod>   egress allow-list, ends in DROP
//! An allow rule RETURNs, so a flow between two isolated pods on one node is
//! judged by the destination's ingress and then the source's egress. The chains
//! only DROP or RETURN: they never accept on behalf of other chains.

use crate::cidr;
use crate::family::Family;
use crate::selector;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::{BTreeMap, BTreeSet};

pub const MAIN_CHAIN: &str = "NETCONFORM-NETPOL";
pub const CHAIN_PREFIX: &str = "NCNP-";

/// The chains this node needs, each with its rules (iptables-restore syntax
/// without the leading `-A <chain>`).
#[derive(Debug, Default, PartialEq, Eq, Clone)]
pub struct Ruleset {
    pub chains: BTreeMap<String, Vec<String>>,
}

/// A pod that takes part in policy: it has an address of the ruleset's family
/// and its own network.
struct PodRef<'a> {
    pod: &'a Pod,
    ip: String,
    namespace: &'a str,
}

/// The pods that hold an address now. An address belongs to one pod: when
/// a terminating pod still shows an IP that the CNI has already released and
/// given to a new pod (host-local hands addresses out again once its range
/// wraps), the live pod owns it, so the old pod's isolation (or its place in
/// a peer list) never lands on the new pod.
fn pod_refs(family: Family, pods: &[impl AsRef<Pod>]) -> Vec<PodRef<'_>> {
    let mut by_ip: BTreeMap<String, PodRef<'_>> = BTreeMap::new();
    for candidate in candidate_refs(family, pods) {
        let replace = match by_ip.get(&candidate.ip) {
            None => true,
            Some(held) => owns_address_over(candidate.pod, held.pod),
        };
        if replace {
            by_ip.insert(candidate.ip.clone(), candidate);
        }
    }
    by_ip.into_values().collect()
}

/// Of two pods showing the same IP, does `a` own it rather than `b`? A pod
/// that is not being deleted over one that is; else the one created later.
fn owns_address_over(a: &Pod, b: &Pod) -> bool {
    let terminating = |p: &Pod| p.metadata.deletion_timestamp.is_some();
    match (terminating(a), terminating(b)) {
        (false, true) => true,
        (true, false) => false,
        _ => {
            a.metadata.creation_timestamp.as_ref().map(|t| t.0)
                > b.metadata.creation_timestamp.as_ref().map(|t| t.0)
        }
    }
}

/// Addresses shown by more than one pod, as `ip: owner (over the others)`,
/// for the log: each one is an address the CNI reused before the API let go.
pub fn shared_addresses(family: Family, pods: &[impl AsRef<Pod>]) -> Vec<String> {
    let mut by_ip: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in candidate_refs(family, pods) {
        let name = format!(
            "{}/{}",
            r.namespace,
            r.pod.metadata.name.as_deref().unwrap_or("?")
        );
        by_ip.entry(r.ip).or_default().push(name);
    }
    let owners: BTreeMap<String, String> = pod_refs(family, pods)
        .iter()
        .map(|r| {
            (
                r.ip.clone(),
                format!(
                    "{}/{}",
                    r.namespace,
                    r.pod.metadata.name.as_deref().unwrap_or("?")
                ),
            )
        })
        .collect();
    by_ip
        .into_iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(ip, names)| {
            format!(
                "{ip}: {} (over {})",
                owners.get(&ip).cloned().unwrap_or_default(),
                names.join(", ")
            )
        })
        .collect()
}

fn candidate_refs(family: Family, pods: &[impl AsRef<Pod>]) -> Vec<PodRef<'_>> {
    pods.iter()
        .map(AsRef::as_ref)
        .filter_map(|pod| {
            let spec = pod.spec.as_ref()?;
            if spec.host_network == Some(true) {
                return None;
            }
            let status = pod.status.as_ref()?;
            if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
                return None;
            }
            // podIPs holds one address per family (podIP is its first); an
            // API server that predates podIPs only fills podIP.
            let ip = status
                .pod_ips
                .iter()
                .flatten()
                .map(|p| p.ip.as_str())
                .chain(status.pod_ip.as_deref())
                .find(|ip| Family::of(ip) == Some(family))?;
            Some(PodRef {
                pod,
                ip: ip.to_string(),
                namespace: pod.metadata.namespace.as_deref()?,
            })
        })
        .collect()
}

/// `NCNP-I-10-0-1-2`: readable while it fits iptables' 28-character chain
/// names (every IPv4 address does); longer ones (most IPv6 addresses) are
/// named by a hash of the address, stable across restarts.
fn chain_name(kind: char, ip: &str) -> String {
    const MAX_CHAIN_NAME: usize = 28;
    let readable = format!("{CHAIN_PREFIX}{kind}-{}", ip.replace(['.', ':'], "-"));
    if readable.len() <= MAX_CHAIN_NAME {
        return readable;
    }
    // FNV-1a: fixed, so a restarted enforcer finds its own chains by name.
    let hash = ip.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{CHAIN_PREFIX}{kind}-{hash:016x}")
}

fn policy_types(policy: &NetworkPolicy) -> (bool, bool) {
    let spec = policy.spec.as_ref();
    match spec.and_then(|s| s.policy_types.as_ref()) {
        Some(types) => (
            types.iter().any(|t| t == "Ingress"),
            types.iter().any(|t| t == "Egress"),
        ),
        None => (
            true,
            spec.and_then(|s| s.egress.as_ref())
                .is_some_and(|e| !e.is_empty()),
        ),
    }
}

/// Where a rule's other end may be: anywhere, or a list of addresses/prefixes
/// (with the pods behind them, for resolving named ports in egress).
enum Peers<'a> {
    Any,
    Some(Vec<(String, Option<&'a PodRef<'a>>)>),
}

struct Cluster<'a> {
    family: Family,
    pods: Vec<PodRef<'a>>,
    namespace_labels: BTreeMap<&'a str, Option<&'a BTreeMap<String, String>>>,
}

impl<'a> Cluster<'a> {
    /// `IP/32` or `IP/128`: one address as a prefix.
    fn host(&self, ip: &str) -> String {
        format!("{ip}/{}", self.family.host_len())
    }

    fn peers(&'a self, policy_ns: &str, peers: Option<&'a Vec<NetworkPolicyPeer>>) -> Peers<'a> {
        let Some(peers) = peers.filter(|p| !p.is_empty()) else {
            return Peers::Any;
        };
        let mut out = Vec::new();
        for peer in peers {
            if let Some(block) = &peer.ip_block {
                // A block of the other family belongs to the other ruleset.
                let Some(base) = cidr::parse(&block.cidr)
                    .filter(|b| Family::of(&b.addr().to_string()) == Some(self.family))
                else {
                    continue;
                };
                let except: Vec<_> = block
                    .except
                    .iter()
                    .flatten()
                    .filter_map(|e| cidr::parse(e))
                    .collect();
                out.extend(
                    cidr::subtract(base, &except)
                        .into_iter()
                        .map(|p| (p.to_string(), None)),
                );
                continue;
            }
            for pod in &self.pods {
                let ns_ok = match &peer.namespace_selector {
                    Some(sel) => selector::matches(
                        sel,
                        self.namespace_labels.get(pod.namespace).copied().flatten(),
                    ),
                    None => pod.namespace == policy_ns,
                };
                let pod_ok = match &peer.pod_selector {
                    Some(sel) => selector::matches(sel, pod.pod.metadata.labels.as_ref()),
                    None => true,
                };
                if ns_ok && pod_ok {
                    out.push((self.host(&pod.ip), Some(pod)));
                }
            }
        }
        Peers::Some(out)
    }
}

/// `-p proto --dport ...` fragments for a rule's ports, resolving named ports
/// against `target` (the pod that owns the port). None: any port, any protocol.
fn port_matches(
    ports: Option<&Vec<NetworkPolicyPort>>,
    target: Option<&Pod>,
) -> Option<Vec<String>> {
    let ports = ports.filter(|p| !p.is_empty())?;
    let mut out = Vec::new();
    for port in ports {
        let proto = port.protocol.as_deref().unwrap_or("TCP").to_lowercase();
        match &port.port {
            None => out.push(format!("-p {proto}")),
            Some(IntOrString::Int(n)) => match port.end_port {
                Some(end) => out.push(format!("-p {proto} -m {proto} --dport {n}:{end}")),
                None => out.push(format!("-p {proto} -m {proto} --dport {n}")),
            },
            Some(IntOrString::String(name)) => {
                for n in named_port(target, name, &proto) {
                    out.push(format!("-p {proto} -m {proto} --dport {n}"));
                }
            }
        }
    }
    Some(out)
}

fn named_port(pod: Option<&Pod>, name: &str, proto: &str) -> Vec<i32> {
    let Some(spec) = pod.and_then(|p| p.spec.as_ref()) else {
        return vec![];
    };
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.name.as_deref() == Some(name))
        .filter(|p| {
            p.protocol
                .as_deref()
                .unwrap_or("TCP")
                .eq_ignore_ascii_case(proto)
        })
        .map(|p| p.container_port)
        .collect()
}

/// Computes the `family` ruleset for the pods on `node`.
pub fn compute(
    family: Family,
    node: &str,
    pods: &[impl AsRef<Pod>],
    namespaces: &[impl AsRef<Namespace>],
    policies: &[impl AsRef<NetworkPolicy>],
) -> Ruleset {
    let cluster = Cluster {
        family,
        pods: pod_refs(family, pods),
        namespace_labels: namespaces
            .iter()
            .map(AsRef::as_ref)
            .filter_map(|ns| Some((ns.metadata.name.as_deref()?, ns.metadata.labels.as_ref())))
            .collect(),
    };
    let mut main = vec!["-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN".to_string()];
    if family == Family::Ipv6 {
        // Neighbour discovery is IPv6's ARP: a pod isolated from everything
        // must still resolve its gateway's and its peers' link addresses.
        for kind in [
            "router-solicitation",
            "router-advertisement",
            "neighbour-solicitation",
            "neighbour-advertisement",
        ] {
            main.push(format!(
                "-p ipv6-icmp -m icmp6 --icmpv6-type {kind} -j RETURN"
            ));
        }
    }
    let mut chains = BTreeMap::new();

    for local in cluster
        .pods
        .iter()
        .filter(|p| p.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
    {
        let selecting: Vec<&NetworkPolicy> = policies
            .iter()
            .map(AsRef::as_ref)
            .filter(|pol| pol.metadata.namespace.as_deref() == Some(local.namespace))
            .filter(|pol| {
                pol.spec.as_ref().is_some_and(|s| {
                    // An absent podSelector selects every pod of the namespace, like `{}`.
                    s.pod_selector.as_ref().is_none_or(|sel| {
                        selector::matches(sel, local.pod.metadata.labels.as_ref())
                    })
                })
            })
            .collect();

        let ingress: Vec<&NetworkPolicy> = selecting
            .iter()
            .copied()
            .filter(|p| policy_types(p).0)
            .collect();
        if !ingress.is_empty() {
            let chain = chain_name('I', &local.ip);
            let mut rules = Vec::new();
            for pol in &ingress {
                for rule in pol
                    .spec
                    .as_ref()
                    .and_then(|s| s.ingress.as_ref())
                    .into_iter()
                    .flatten()
                {
                    let ports = port_matches(rule.ports.as_ref(), Some(local.pod));
                    match cluster.peers(local.namespace, rule.from.as_ref()) {
                        Peers::Any => push_allows(&mut rules, None, "-s", ports.as_deref()),
                        Peers::Some(peers) => {
                            for (addr, _) in peers {
                                push_allows(&mut rules, Some(&addr), "-s", ports.as_deref());
                            }
                        }
                    }
                }
            }
            rules.push("-j DROP".to_string());
            dedup(&mut rules);
            main.push(format!("-d {} -j {chain}", cluster.host(&local.ip)));
            chains.insert(chain, rules);
        }

        let egress: Vec<&NetworkPolicy> = selecting
            .iter()
            .copied()
            .filter(|p| policy_types(p).1)
            .collect();
        if !egress.is_empty() {
            let chain = chain_name('E', &local.ip);
            let mut rules = Vec::new();
            for pol in &egress {
                for rule in pol
                    .spec
                    .as_ref()
                    .and_then(|s| s.egress.as_ref())
                    .into_iter()
                    .flatten()
                {
                    let has_named = rule
                        .ports
                        .iter()
                        .flatten()
                        .any(|p| matches!(p.port, Some(IntOrString::String(_))));
                    let peers = match cluster.peers(local.namespace, rule.to.as_ref()) {
                        // A named port can only be resolved on a pod: "anywhere" then
                        // means every pod that has that port.
                        Peers::Any if has_named => Peers::Some(
                            cluster
                                .pods
                                .iter()
                                .map(|p| (cluster.host(&p.ip), Some(p)))
                                .collect(),
                        ),
                        other => other,
                    };
                    match peers {
                        Peers::Any => push_allows(
                            &mut rules,
                            None,
                            "-d",
                            port_matches(rule.ports.as_ref(), None).as_deref(),
                        ),
                        Peers::Some(peers) => {
                            for (addr, pod) in peers {
                                let ports = port_matches(rule.ports.as_ref(), pod.map(|p| p.pod));
                                push_allows(&mut rules, Some(&addr), "-d", ports.as_deref());
                            }
                        }
                    }
                }
            }
            rules.push("-j DROP".to_string());
            dedup(&mut rules);
            main.push(format!("-s {} -j {chain}", cluster.host(&local.ip)));
            chains.insert(chain, rules);
        }
    }
    chains.insert(MAIN_CHAIN.to_string(), main);
    Ruleset { chains }
}

fn push_allows(rules: &mut Vec<String>, addr: Option<&str>, flag: &str, ports: Option<&[String]>) {
    let addr = addr.map(|a| format!("{flag} {a} ")).unwrap_or_default();
    match ports {
        None => rules.push(format!("{addr}-j RETURN")),
        Some(ports) => {
            for p in ports {
                rules.push(format!("{addr}{p} -j RETURN"));
            }
        }
    }
}

/// Drops repeated rules, keeping the first of each (order matters only for the final DROP).
fn dedup(rules: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    rules.retain(|r| seen.insert(r.clone()));
}

/// iptables-restore input that replaces this enforcer's chains with `new` and
/// deletes the chains of `old` that `new` no longer has. Other chains are untouched
/// (applied with --noflush).
pub fn restore_script(new: &Ruleset, old: &BTreeSet<String>) -> String {
    let mut s = String::from("*filter\n");
    let stale: Vec<&String> = old
        .iter()
        .filter(|c| !new.chains.contains_key(*c))
        .collect();
    for chain in new.chains.keys().chain(stale.iter().copied()) {
        s.push_str(&format!(":{chain} - [0:0]\n"));
    }
    for (chain, rules) in &new.chains {
        for rule in rules {
            s.push_str(&format!("-A {chain} {rule}\n"));
        }
    }
    for chain in stale {
        s.push_str(&format!("-X {chain}\n"));
    }
    s.push_str("COMMIT\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn arcs<T>(v: Vec<T>) -> Vec<Arc<T>> {
        v.into_iter().map(Arc::new).collect()
    }

    fn pod(ns: &str, name: &str, node: &str, ip: &str, labels: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": ip}
        }))
        .unwrap()
    }

    fn ns(name: &str, labels: serde_json::Value) -> Namespace {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
    }

    fn policy(ns: &str, spec: serde_json::Value) -> NetworkPolicy {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": ns}, "spec": spec}))
            .unwrap()
    }

    fn fixture() -> (Vec<Pod>, Vec<Namespace>) {
        (
            vec![
                pod("a", "server", "n1", "10.0.1.2", json!({"app": "server"})),
                pod("a", "client", "n2", "10.0.2.2", json!({"app": "client"})),
                pod("b", "other", "n2", "10.0.2.3", json!({"app": "client"})),
            ],
            vec![ns("a", json!({"team": "x"})), ns("b", json!({"team": "y"}))],
        )
    }

    #[test]
    fn no_policy_means_no_isolation() {
        let (pods, nss) = fixture();
        let rs = compute(
            Family::Ipv4,
            "n1",
            &arcs(pods),
            &arcs(nss),
            &arcs(Vec::<NetworkPolicy>::new()),
        );
        assert_eq!(rs.chains.len(), 1);
        assert_eq!(rs.chains[MAIN_CHAIN].len(), 1, "only the established rule");
    }

    #[test]
    fn a_reused_ip_belongs_to_the_live_pod_not_the_terminating_one() {
        // `old` was isolated by a deny-all policy in namespace a and is being
        // deleted; the CNI already gave its IP to `new` in namespace b.
        let mut old = pod("a", "old", "n1", "10.0.1.9", json!({}));
        old.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()),
        );
        let new = pod("b", "new", "n1", "10.0.1.9", json!({}));
        let (_, nss) = fixture();
        let pols = vec![policy(
            "a",
            json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        )];
        for pods in [vec![old.clone(), new.clone()], vec![new, old]] {
            let rs = compute(
                Family::Ipv4,
                "n1",
                &arcs(pods),
                &arcs(nss.clone()),
                &arcs(pols.clone()),
            );
            assert_eq!(rs.chains.len(), 1, "the new pod is not isolated: {rs:?}");
        }
    }

    #[test]
    fn default_deny_ingress_drops_everything_new() {
        let (pods, nss) = fixture();
        let pols = vec![policy(
            "a",
            json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        )];
        let rs = compute(Family::Ipv4, "n1", &arcs(pods), &arcs(nss), &arcs(pols));
        assert_eq!(rs.chains["NCNP-I-10-0-1-2"], vec!["-j DROP"]);
        assert!(rs.chains[MAIN_CHAIN].contains(&"-d 10.0.1.2/32 -j NCNP-I-10-0-1-2".to_string()));
    }

    #[test]
    fn pod_selector_peer_allows_only_same_namespace_pods_on_named_port() {
        let (pods, nss) = fixture();
        let pols = vec![policy(
            "a",
            json!({
                "podSelector": {"matchLabels": {"app": "server"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                             "ports": [{"port": "http"}]}]
            }),
        )];
        let rs = compute(Family::Ipv4, "n1", &arcs(pods), &arcs(nss), &arcs(pols));
        assert_eq!(
            rs.chains["NCNP-I-10-0-1-2"],
            vec![
                "-s 10.0.2.2/32 -p tcp -m tcp --dport 8080 -j RETURN",
                "-j DROP"
            ]
        );
    }

    #[test]
    fn namespace_and_pod_selector_in_one_peer_intersect() {
        let (pods, nss) = fixture();
        let pols = vec![policy(
            "a",
            json!({
                "podSelector": {"matchLabels": {"app": "server"}},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "y"}},
                                       "podSelector": {"matchLabels": {"app": "client"}}}]}]
            }),
        )];
        let rs = compute(Family::Ipv4, "n1", &arcs(pods), &arcs(nss), &arcs(pols));
        assert_eq!(
            rs.chains["NCNP-I-10-0-1-2"],
            vec!["-s 10.0.2.3/32 -j RETURN", "-j DROP"]
        );
    }

    #[test]
    fn egress_ip_block_expands_except() {
        let (pods, nss) = fixture();
        let pols = vec![policy(
            "a",
            json!({
                "podSelector": {"matchLabels": {"app": "client"}},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/17"]}}],
                            "ports": [{"port": 53, "protocol": "UDP"}]}]
            }),
        )];
        let rs = compute(Family::Ipv4, "n2", &arcs(pods), &arcs(nss), &arcs(pols));
        assert_eq!(
            rs.chains["NCNP-E-10-0-2-2"],
            vec![
                "-d 10.0.128.0/17 -p udp -m udp --dport 53 -j RETURN",
                "-j DROP"
            ]
        );
        assert!(
            !rs.chains.contains_key("NCNP-E-10-0-2-3"),
            "namespace b is not selected"
        );
    }

    /// A dual-stack pod: podIP is its IPv4 address, podIPs holds both.
    fn dual_pod(
        ns: &str,
        name: &str,
        node: &str,
        ips: [&str; 2],
        labels: serde_json::Value,
    ) -> Pod {
        let mut p = pod(ns, name, node, ips[0], labels);
        p.status.as_mut().unwrap().pod_ips = Some(
            ips.iter()
                .map(|ip| k8s_openapi::api::core::v1::PodIP { ip: ip.to_string() })
                .collect(),
        );
        p
    }

    fn dual_fixture() -> (Vec<Pod>, Vec<Namespace>) {
        (
            vec![
                dual_pod(
                    "a",
                    "server",
                    "n1",
                    ["10.0.1.2", "fd00:10:244:1::2"],
                    json!({"app": "server"}),
                ),
                dual_pod(
                    "a",
                    "client",
                    "n2",
                    ["10.0.2.2", "fd00:10:244:2::2"],
                    json!({"app": "client"}),
                ),
                // An IPv4-only pod (a single-stack Service's backend, or an old API server).
                pod("a", "v4only", "n2", "10.0.2.3", json!({"app": "client"})),
            ],
            vec![ns("a", json!({}))],
        )
    }

    #[test]
    fn each_family_isolates_the_pod_by_its_own_address() {
        let (pods, nss) = dual_fixture();
        let pols = vec![policy(
            "a",
            json!({
                "podSelector": {"matchLabels": {"app": "server"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]
            }),
        )];
        let v4 = compute(
            Family::Ipv4,
            "n1",
            &arcs(pods.clone()),
            &arcs(nss.clone()),
            &arcs(pols.clone()),
        );
        assert_eq!(
            v4.chains["NCNP-I-10-0-1-2"],
            vec![
                "-s 10.0.2.2/32 -j RETURN",
                "-s 10.0.2.3/32 -j RETURN",
                "-j DROP"
            ]
        );
        let v6 = compute(Family::Ipv6, "n1", &arcs(pods), &arcs(nss), &arcs(pols));
        let chain = chain_name('I', "fd00:10:244:1::2");
        assert_eq!(
            v6.chains[&chain],
            vec!["-s fd00:10:244:2::2/128 -j RETURN", "-j DROP"],
            "the IPv4-only client has no IPv6 address to allow"
        );
        assert!(v6.chains[MAIN_CHAIN].contains(&format!("-d fd00:10:244:1::2/128 -j {chain}")));
        assert!(
            !v6.chains.values().flatten().any(|r| r.contains("10.0.")),
            "no IPv4 address in the IPv6 ruleset: {v6:?}"
        );
    }

    #[test]
    fn ip_blocks_go_to_the_ruleset_of_their_family() {
        let (pods, nss) = dual_fixture();
        let pols = vec![policy(
            "a",
            json!({
                "podSelector": {"matchLabels": {"app": "client"}},
                "policyTypes": ["Egress"],
                "egress": [{"to": [
                    {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/17"]}},
                    {"ipBlock": {"cidr": "fd00:10:244::/48", "except": ["fd00:10:244::/49", "10.0.0.0/8"]}}
                ]}]
            }),
        )];
        let v4 = compute(
            Family::Ipv4,
            "n2",
            &arcs(pods.clone()),
            &arcs(nss.clone()),
            &arcs(pols.clone()),
        );
        assert_eq!(
            v4.chains["NCNP-E-10-0-2-2"],
            vec!["-d 10.0.128.0/17 -j RETURN", "-j DROP"]
        );
        let v6 = compute(Family::Ipv6, "n2", &arcs(pods), &arcs(nss), &arcs(pols));
        assert_eq!(
            v6.chains[&chain_name('E', "fd00:10:244:2::2")],
            vec!["-d fd00:10:244:8000::/49 -j RETURN", "-j DROP"]
        );
        assert_eq!(
            v6.chains.len(),
            2,
            "main and the dual-stack client's egress chain only: {v6:?}"
        );
    }

    #[test]
    fn ipv6_keeps_neighbour_discovery_open_and_ipv4_has_no_such_rule() {
        let (pods, nss) = dual_fixture();
        let pols = vec![policy(
            "a",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        )];
        let v6 = compute(
            Family::Ipv6,
            "n1",
            &arcs(pods.clone()),
            &arcs(nss.clone()),
            &arcs(pols.clone()),
        );
        let main = &v6.chains[MAIN_CHAIN];
        let first_jump = main.iter().position(|r| r.contains("-j NCNP-")).unwrap();
        let nd = main
            .iter()
            .position(|r| r.contains("neighbour-solicitation"))
            .expect("neighbour solicitations return before any pod chain");
        assert!(nd < first_jump, "{main:?}");
        let v4 = compute(Family::Ipv4, "n1", &arcs(pods), &arcs(nss), &arcs(pols));
        assert!(!v4.chains[MAIN_CHAIN].iter().any(|r| r.contains("icmp6")));
    }

    #[test]
    fn chain_names_fit_iptables_and_stay_apart() {
        let names: BTreeSet<String> = [
            "10.244.255.255",
            "fd00:10:244:1::2",
            "fd00:10:244:1::3",
            "fd00:10:244:2::2",
        ]
        .iter()
        .flat_map(|ip| [chain_name('I', ip), chain_name('E', ip)])
        .collect();
        assert_eq!(names.len(), 8, "{names:?}");
        for name in &names {
            assert!(name.len() <= 28, "{name} is longer than iptables allows");
            assert!(name.starts_with(CHAIN_PREFIX));
        }
        assert_eq!(chain_name('I', "10.244.255.255"), "NCNP-I-10-244-255-255");
        assert_eq!(
            chain_name('I', "fd00::2"),
            "NCNP-I-fd00--2",
            "short IPv6 addresses stay readable"
        );
    }

    #[test]
    fn restore_script_replaces_and_deletes_stale_chains() {
        let mut rs = Ruleset::default();
        rs.chains
            .insert(MAIN_CHAIN.into(), vec!["-j RETURN".into()]);
        let old: BTreeSet<String> = [MAIN_CHAIN.to_string(), "NCNP-I-1-2-3-4".to_string()].into();
        assert_eq!(
            restore_script(&rs, &old),
            "*filter\n:NETCONFORM-NETPOL - [0:0]\n:NCNP-I-1-2-3-4 - [0:0]\n-A NETCONFORM-NETPOL -j RETURN\n-X NCNP-I-1-2-3-4\nCOMMIT\n"
        );
    }
}
