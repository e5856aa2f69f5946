//! From a scenario check to probes: every source pod x every target, each
//! with its expectation. Pure: the world is given, nothing here talks to the
//! cluster.

use crate::probes::PlanError;
use crate::scenario::*;
use crate::setup::world::{expand_name, Endpoint, ServiceInfo, World};
use netconform_protocol::{DnsRecord, ProbeKind, ProbeSpec, KUBE_ROOT_CA};
use serde::Serialize;
use std::collections::BTreeSet;

/// One probe of a check: from one pod to one target.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedProbe {
    pub from: Endpoint,
    /// Human name of the target: `ns/pod`, `node X`, a DNS name, `localhost`.
    pub target: String,
    /// The target pod, when the target is one.
    pub target_pod: Option<Endpoint>,
    pub spec: ProbeSpec,
    /// What the answer must contain (DNS answers, interface addresses).
    pub expected_answers: Option<ExpectedAnswers>,
    /// Per-probe expectation (NodePort `local` policy differs by node).
    pub expect: Expectation,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ExpectedAnswers {
    /// Exactly these addresses.
    Exactly(BTreeSet<String>),
    /// SRV records: this many, all on this port.
    Srv { count: usize, port: u16 },
    /// Identity: these addresses among the pod's own, and this hostname.
    Identity {
        addresses: BTreeSet<String>,
        hostname: Option<String>,
    },
}

/// Failed samples in a row (timed out or failed at once) after which a probe
/// that must connect stops: its verdict is decided, and under a black hole
/// every further sample would wait out its timeout (a 55-sample latency pair:
/// minutes). Intermittent loss still shows in full, as a few failures among
/// connected samples.
pub const FAILURES_DECIDE_A_CONNECTED_PROBE: u32 = 3;

fn default_port(protocol: Protocol) -> u16 {
    match protocol {
        Protocol::Udp => DEFAULT_UDP_PORT,
        Protocol::Http => DEFAULT_HTTP_PORT,
        _ => DEFAULT_TCP_PORT,
    }
}

/// The probes a check makes, or why it cannot be planned on this world.
pub fn plan(check: &Check, world: &World) -> Result<Vec<PlannedProbe>, PlanError> {
    // Every address below is of the check's family.
    let world = &*world.in_family(check.family);
    let no_address = |object: String| PlanError::NoAddress {
        object,
        family: check.family.label(),
    };
    let sources = pods_named(world, &check.from)?;
    let mut probes = Vec::new();
    for from in &sources {
        let mut add = |target: String,
                       target_pod: Option<Endpoint>,
                       kind: ProbeKind,
                       expected_answers: Option<ExpectedAnswers>,
                       expect: Expectation| {
            probes.push(PlannedProbe {
                from: from.clone(),
                target,
                target_pod,
                spec: ProbeSpec {
                    id: String::new(),
                    kind,
                    timeout_ms: check.timeout_ms,
                    samples: check.samples + check.warmup,
                    until_connected: false,
                    stop_after_failures: if expect == Expectation::Connected {
                        FAILURES_DECIDE_A_CONNECTED_PROBE
                    } else {
                        // A blocked pair must stay blocked on every sample.
                        0
                    },
                    interval_ms: 0,
                    payload_bytes: check.payload_bytes.unwrap_or(0),
                    stream_ms: check.stream_ms.unwrap_or(0),
                    ipv6: check.family == IpFamily::Ipv6,
                    // A converging check probes while a change is being
                    // programmed: its connections sent before must not
                    // share a flow with any later check's (see the field).
                    reserved_source_ports: check.converge_ms.is_some(),
                },
                expected_answers,
                expect,
            })
        };
        let transport = |host: String, port: u16| match check.protocol {
            Protocol::Tcp => ProbeKind::Tcp { host, port },
            Protocol::Udp => ProbeKind::Udp { host, port },
            Protocol::Icmp => ProbeKind::Icmp { host },
            _ => ProbeKind::Http {
                host,
                port,
                path: check.path.clone().unwrap_or_else(|| "/clientip".into()),
            },
        };

        if check.protocol == Protocol::Identity {
            if from.ip.is_empty() {
                return Err(no_address(format!("pod {}", from.object())));
            }
            let hostname = (!from.host_network).then(|| from.hostname.clone());
            let expected = ExpectedAnswers::Identity {
                addresses: BTreeSet::from([from.ip.clone()]),
                hostname,
            };
            add(
                format!("{}/{}", from.namespace, from.pod),
                Some(from.clone()),
                ProbeKind::Identity,
                Some(expected),
                check.expect,
            );
            continue;
        }
        if check.protocol.is_dns() {
            let record = match check.record.unwrap_or(DnsRecordKind::A) {
                // A name's addresses, in the check's family.
                DnsRecordKind::A if check.family == IpFamily::Ipv6 => DnsRecord::Aaaa,
                DnsRecordKind::A => DnsRecord::A,
                DnsRecordKind::Aaaa => DnsRecord::Aaaa,
                DnsRecordKind::Srv => DnsRecord::Srv,
                DnsRecordKind::Ptr => DnsRecord::Ptr,
            };
            let name = if record == DnsRecord::Ptr {
                reverse_name(&ptr_address(check, world)?)
            } else {
                dns_name(check, world)?
            };
            let expected = expected_dns(check, world)?;
            add(
                name.clone(),
                None,
                ProbeKind::Dns {
                    name,
                    record,
                    tcp: check.protocol == Protocol::DnsTcp,
                },
                expected,
                check.expect,
            );
            continue;
        }

        let to = &check.to;
        if let Some(pod) = &to.pod {
            for target in pods_named(world, pod)? {
                // A pod's traffic to itself never leaves it: matrices leave those pairs out.
                if check.from == "*" && pod == "*" && target == *from {
                    continue;
                }
                let same_node = target.node == from.node;
                match to.pair {
                    Some(NodePair::SameNode) if !same_node => continue,
                    Some(NodePair::OtherNode) if same_node => continue,
                    _ => {}
                }
                if target.ip.is_empty() {
                    return Err(no_address(format!("pod {}", target.object())));
                }
                let port = check.port.unwrap_or(default_port(check.protocol));
                let expect = pair_expectation(check, world, from, &target);
                add(
                    format!("{}/{}", target.namespace, target.pod),
                    Some(target.clone()),
                    transport(target.ip.clone(), port),
                    None,
                    expect,
                );
            }
        } else if let Some(name) = &to.service {
            let svc = service(world, name)?;
            let port = check
                .port
                .or(svc.ports.first().map(|p| p.port))
                .ok_or_else(|| lacks(name, "port"))?;
            let host = match to.address.unwrap_or_default() {
                ServiceAddress::ClusterIp => match (&svc.cluster_ip, check.family) {
                    (Some(ip), _) => ip.clone(),
                    (None, IpFamily::Ipv4) => return Err(lacks(name, "cluster IP")),
                    (None, IpFamily::Ipv6) => {
                        return Err(no_address(format!(
                            "service {}/{}",
                            svc.namespace, svc.name
                        )))
                    }
                },
                ServiceAddress::Name => svc.name.clone(),
                ServiceAddress::NameNamespace => format!("{}.{}", svc.name, svc.namespace),
                ServiceAddress::Fqdn => expand_name(
                    &format!("{}.{}.svc.{{domain}}", svc.name, svc.namespace),
                    world,
                )?,
            };
            add(
                format!("{host}:{port}"),
                None,
                transport(host.clone(), port),
                None,
                check.expect,
            );
        } else if let Some(name) = &to.node_port {
            let svc = service(world, name)?;
            let sp = match check.port {
                Some(p) => svc.ports.iter().find(|sp| sp.port == p),
                None => svc.ports.first(),
            }
            .ok_or_else(|| match check.port {
                Some(p) => lacks(name, &format!("port {p}")),
                None => lacks(name, "port"),
            })?;
            let node_port = sp.node_port.ok_or_else(|| lacks(name, "node port"))?;
            let backend_nodes: BTreeSet<&str> =
                svc.backends.iter().map(|b| b.node.as_str()).collect();
            for node in &world.nodes {
                let has_backend = backend_nodes.contains(node.name.as_str());
                let selected = match to.nodes.unwrap_or_default() {
                    NodeSelection::All => true,
                    NodeSelection::WithBackend => has_backend,
                    NodeSelection::WithoutBackend => !has_backend,
                };
                if selected && !(to.exclude_client_node && node.name == from.node) {
                    if node.internal_ip.is_empty() {
                        return Err(no_address(format!("node {}", node.name)));
                    }
                    add(
                        format!("node {} {}:{node_port}", node.name, node.internal_ip),
                        None,
                        transport(node.internal_ip.clone(), node_port),
                        None,
                        check.expect,
                    );
                }
            }
        } else if let Some(pod) = &to.host_port {
            let port = check.port.unwrap_or(default_port(check.protocol));
            for target in pods_named(world, pod)? {
                let node = world
                    .nodes
                    .iter()
                    .find(|n| n.name == target.node)
                    .ok_or_else(|| PlanError::NodeNotReady {
                        pod: target.pod.clone(),
                        node: target.node.clone(),
                    })?;
                if node.internal_ip.is_empty() {
                    return Err(no_address(format!("node {}", node.name)));
                }
                add(
                    format!(
                        "{}/{} hostPort {}:{port}",
                        target.namespace, target.pod, node.internal_ip
                    ),
                    Some(target.clone()),
                    transport(node.internal_ip.clone(), port),
                    None,
                    check.expect,
                );
            }
        } else if to.outside_host {
            let host = world.outside_host.clone().ok_or(PlanError::NoOutsideHost {
                variable: crate::cluster::OUTSIDE_HOST_VAR,
            })?;
            let port = check.port.unwrap_or(default_port(check.protocol));
            add(
                format!("outside host {host}:{port}"),
                None,
                transport(host, port),
                None,
                check.expect,
            );
        } else if to.api_server {
            // By the Service's address: name resolution has checks of its own.
            let host = api_server_ip(world)?;
            add(
                format!("kubernetes Service {host}"),
                None,
                ProbeKind::Https {
                    host,
                    port: check.port.unwrap_or(443),
                    path: check.path.clone().unwrap_or_else(|| "/livez".into()),
                    // The name the API server's serving certificate carries
                    // for in-cluster clients, whatever the cluster domain.
                    server_name: "kubernetes.default.svc".into(),
                    ca_file: KUBE_ROOT_CA.into(),
                },
                None,
                check.expect,
            );
        } else if to.localhost {
            let port = check.port.unwrap_or(default_port(check.protocol));
            let loopback = match check.family {
                IpFamily::Ipv4 => "127.0.0.1",
                IpFamily::Ipv6 => "::1",
            };
            add(
                "localhost".into(),
                Some(from.clone()),
                transport(loopback.into(), port),
                None,
                check.expect,
            );
        } else {
            return Err(PlanError::Incomplete("the check has no target"));
        }
    }
    for (i, p) in probes.iter_mut().enumerate() {
        p.spec.id = format!("{}#{i}", check.name);
    }
    Ok(probes)
}

/// The pods a check names: a fixture's pods, `*` for every pod off the host
/// network (sorted by namespace and name), or the harness itself.
fn pods_named(world: &World, name: &str) -> Result<Vec<Endpoint>, PlanError> {
    if name == HARNESS {
        return Ok(vec![Endpoint {
            pod: HARNESS.into(),
            hostname: HARNESS.into(),
            host_network: true,
            ..Default::default()
        }]);
    }
    if name == "*" {
        let mut all: Vec<Endpoint> = world
            .groups
            .values()
            .flatten()
            .filter(|e| !e.host_network)
            .cloned()
            .collect();
        all.sort_by(|a, b| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)));
        return Ok(all);
    }
    world
        .groups
        .get(name)
        .cloned()
        .ok_or_else(|| unknown("pods for", name))
}

/// `x/a`: the logical namespace and the pod, as scenarios name them.
pub fn short_name(world: &World, e: &Endpoint) -> String {
    let logical = world
        .namespaces
        .iter()
        .find(|(_, real)| **real == e.namespace)
        .map(|(l, _)| l.as_str())
        .unwrap_or(&e.namespace);
    format!("{logical}/{}", e.pod)
}

fn pattern_matches(pattern: &str, name: &str) -> bool {
    let (pns, ppod) = pattern.split_once('/').unwrap_or(("*", pattern));
    let (ns, pod) = name.split_once('/').unwrap_or(("", name));
    (pns == "*" || pns == ns) && (ppod == "*" || ppod == pod)
}

/// What a check expects from one pair: `expect`, unless an `except` entry
/// (the last that matches) says otherwise.
pub fn pair_expectation(
    check: &Check,
    world: &World,
    from: &Endpoint,
    to: &Endpoint,
) -> Expectation {
    let (f, t) = (short_name(world, from), short_name(world, to));
    check
        .except
        .iter()
        .rev()
        .find(|e| pattern_matches(&e.from, &f) && pattern_matches(&e.to, &t))
        .map(|e| e.expect)
        .unwrap_or(check.expect)
}

fn dns_name(check: &Check, world: &World) -> Result<String, PlanError> {
    if let Some(name) = &check.to.name {
        return Ok(expand_name(name, world)?);
    }
    if let Some(name) = &check.to.service {
        let svc = service(world, name)?;
        return match check.to.address.unwrap_or(ServiceAddress::Fqdn) {
            ServiceAddress::Name => Ok(svc.name.clone()),
            ServiceAddress::NameNamespace => Ok(format!("{}.{}", svc.name, svc.namespace)),
            _ => Ok(expand_name(
                &format!("{}.{}.svc.{{domain}}", svc.name, svc.namespace),
                world,
            )?),
        };
    }
    Err(PlanError::Incomplete(
        "a dns check needs `to.name` or `to.service`",
    ))
}

/// The one address a PTR check looks up, in the world's family.
fn ptr_address(check: &Check, world: &World) -> Result<String, PlanError> {
    if let Some(name) = &check.to.service {
        let svc = service(world, name)?;
        return svc
            .cluster_ip
            .clone()
            .ok_or_else(|| lacks(name, "cluster IP"));
    }
    if let Some(pod) = &check.to.pod {
        let ips = pod_ips(world, pod);
        return match ips.len() {
            1 => Ok(ips.into_iter().next().unwrap_or_default()),
            0 => Err(unknown("pods for", pod)),
            _ => Err(PlanError::Incomplete(
                "a PTR check looks up one address: `to.pod` must name one pod",
            )),
        };
    }
    Err(PlanError::Incomplete(
        "a PTR check needs `to.service` (its cluster IP) or `to.pod`",
    ))
}

/// `10.0.0.1` as `1.0.0.10.in-addr.arpa.`, an IPv6 address as its 32
/// nibbles under `ip6.arpa.` (RFC 1035 3.5, RFC 3596 2.5). Not an address:
/// unchanged, so the lookup fails visibly rather than asking something else.
pub fn reverse_name(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let mut labels: Vec<String> = v6
                .octets()
                .iter()
                .flat_map(|b| [b >> 4, b & 0xf])
                .map(|n| format!("{n:x}"))
                .collect();
            labels.reverse();
            format!("{}.ip6.arpa.", labels.join("."))
        }
        Err(_) => address.to_string(),
    }
}

/// A fixture's pods' IPs, or one pod's by name (e.g. a StatefulSet's `web-0`).
fn pod_ips(world: &World, name: &str) -> BTreeSet<String> {
    match world.groups.get(name) {
        Some(group) => group.iter().map(|e| e.ip.clone()).collect(),
        None => world
            .groups
            .values()
            .flatten()
            .filter(|e| e.pod == name)
            .map(|e| e.ip.clone())
            .collect(),
    }
}

/// A fixture Service of this world by its scenario name.
fn service<'w>(world: &'w World, name: &str) -> Result<&'w ServiceInfo, PlanError> {
    world
        .services
        .get(name)
        .ok_or_else(|| unknown("service", name))
}

fn api_server_ip(world: &World) -> Result<String, PlanError> {
    world
        .api_server_ip
        .clone()
        .ok_or(PlanError::NoApiServerAddress)
}

fn unknown(what: &'static str, name: &str) -> PlanError {
    PlanError::Unknown {
        what,
        name: name.to_string(),
    }
}

fn lacks(service: &str, what: &str) -> PlanError {
    PlanError::ServiceLacks {
        service: service.to_string(),
        lacks: what.to_string(),
    }
}

fn expected_dns(check: &Check, world: &World) -> Result<Option<ExpectedAnswers>, PlanError> {
    let Some(a) = &check.assert.answers else {
        return Ok(None);
    };
    if let Some(s) = &a.cluster_ip_of {
        let ip = service(world, s)?
            .cluster_ip
            .clone()
            .ok_or_else(|| lacks(s, "cluster IP"))?;
        return Ok(Some(ExpectedAnswers::Exactly(BTreeSet::from([ip]))));
    }
    if let Some(s) = &a.ready_pod_ips_of {
        return Ok(Some(ExpectedAnswers::Exactly(
            service(world, s)?
                .backends
                .iter()
                .map(|b| b.ip.clone())
                .collect(),
        )));
    }
    if let Some(p) = &a.pod_ip_of {
        let ips = pod_ips(world, p);
        if ips.is_empty() {
            return Err(unknown("pods for", p));
        }
        return Ok(Some(ExpectedAnswers::Exactly(ips)));
    }
    if let Some(s) = &a.synthetic_endpoints_of {
        let ips: BTreeSet<String> = service(world, s)?.synthetic.iter().cloned().collect();
        if ips.is_empty() {
            return Err(lacks(s, "synthetic endpoints"));
        }
        return Ok(Some(ExpectedAnswers::Exactly(ips)));
    }
    if !a.names.is_empty() {
        // Names compare as DNS gives them: lower case, fully qualified.
        let names = a
            .names
            .iter()
            .map(|n| {
                let n = expand_name(n, world)?.to_ascii_lowercase();
                Ok(if n.ends_with('.') { n } else { format!("{n}.") })
            })
            .collect::<Result<BTreeSet<String>, PlanError>>()?;
        return Ok(Some(ExpectedAnswers::Exactly(names)));
    }
    if a.api_server_cluster_ip {
        return Ok(Some(ExpectedAnswers::Exactly(BTreeSet::from([
            api_server_ip(world)?,
        ]))));
    }
    if let Some(sp) = &a.srv_port_of {
        let (s, port_name) = sp.split_once('/').ok_or(PlanError::Incomplete(
            "srv_port_of is `<service>/<port name>`",
        ))?;
        let svc = service(world, s)?;
        let port = svc
            .ports
            .iter()
            .find(|p| p.name.as_deref() == Some(port_name))
            .ok_or_else(|| lacks(s, &format!("port named `{port_name}`")))?;
        let count = if svc.kind == ServiceKind::Headless {
            svc.backends.len()
        } else {
            1
        };
        return Ok(Some(ExpectedAnswers::Srv {
            count,
            port: port.port,
        }));
    }
    Ok(None)
}
