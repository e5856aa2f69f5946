//! From a scenario check to probes (every source pod x every target), and from
//! probe results to a verdict that says expected vs observed. Pure: the world
//! is given, nothing here talks to the cluster.

use crate::scenario::*;
use crate::stats::{
    baseline_p50_us, pair_latency, pair_outliers, summarise, LatencySummary, PairLatency,
};
use crate::world::World;
use netconform_agent::protocol::{
    Attempt, DnsQuery, DnsRecord, DnsTransport, Outcome, ProbeKind, ProbeResult, ProbeSpec,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A fixture pod as the run found it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub pod: String,
    pub namespace: String,
    pub ip: String,
    pub node: String,
    /// What the pod's hostname is (the pod name, or its fixture's `hostname`).
    pub hostname: String,
    #[serde(skip)]
    pub labels: BTreeMap<String, String>,
    pub host_network: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", content = "message", rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed(String),
    Skipped(String),
}

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

fn default_port(protocol: Protocol) -> u16 {
    match protocol {
        Protocol::Udp => DEFAULT_UDP_PORT,
        Protocol::Http => DEFAULT_HTTP_PORT,
        _ => DEFAULT_TCP_PORT,
    }
}

/// `{domain}`, `{ns}` and `{ns:<logical>}` in a DNS name.
pub fn expand_name(name: &str, world: &World) -> Result<String, String> {
    let mut out = name.to_string();
    if out.contains("{domain}") {
        let domain = world
            .domain
            .as_ref()
            .ok_or("the cluster domain could not be discovered from a pod's resolv.conf")?;
        out = out.replace("{domain}", domain);
    }
    for (logical, real) in &world.namespaces {
        out = out.replace(&format!("{{ns:{logical}}}"), real);
    }
    if let Some(real) = world.namespaces.get(&world.default_namespace) {
        out = out.replace("{ns}", real);
    }
    if out.contains('{') {
        return Err(format!("`{name}` has a placeholder this run cannot fill (known: {{domain}}, {{ns}}, {{ns:<namespace>}})"));
    }
    Ok(out)
}

/// The probes a check makes, or why it cannot be planned on this world.
pub fn plan(check: &Check, world: &World) -> Result<Vec<PlannedProbe>, String> {
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
                    interval_ms: 0,
                    payload_bytes: check.payload_bytes.unwrap_or(0),
                },
                expected_answers,
                expect,
            })
        };
        let transport = |host: String, port: u16| match check.protocol {
            Protocol::Tcp => ProbeKind::Tcp { host, port },
            Protocol::Udp => ProbeKind::Udp { host, port },
            _ => ProbeKind::Http {
                host,
                port,
                path: check.path.clone().unwrap_or_else(|| "/clientip".into()),
            },
        };

        if check.protocol == Protocol::Identity {
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
        if check.protocol == Protocol::Dns {
            let name = dns_name(check, world)?;
            let record = match check.record.unwrap_or(DnsRecordKind::A) {
                DnsRecordKind::A => DnsRecord::A,
                DnsRecordKind::Aaaa => DnsRecord::Aaaa,
                DnsRecordKind::Srv => DnsRecord::Srv,
            };
            let expected = expected_dns(check, world)?;
            add(
                name.clone(),
                None,
                ProbeKind::Dns { name, record },
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
            let svc = world
                .services
                .get(name)
                .ok_or_else(|| format!("no service `{name}`"))?;
            let port = check
                .port
                .or(svc.ports.first().map(|p| p.port))
                .ok_or("the service has no port")?;
            let host = match to.address.unwrap_or_default() {
                ServiceAddress::ClusterIp => svc
                    .cluster_ip
                    .clone()
                    .ok_or_else(|| format!("service `{name}` has no cluster IP"))?,
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
            let svc = world
                .services
                .get(name)
                .ok_or_else(|| format!("no service `{name}`"))?;
            let sp = match check.port {
                Some(p) => svc.ports.iter().find(|sp| sp.port == p),
                None => svc.ports.first(),
            }
            .ok_or_else(|| format!("service `{name}` has no such port"))?;
            let node_port = sp
                .node_port
                .ok_or_else(|| format!("service `{name}` has no node port"))?;
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
                    add(
                        format!("node {} {}:{node_port}", node.name, node.internal_ip),
                        None,
                        transport(node.internal_ip.clone(), node_port),
                        None,
                        check.expect,
                    );
                }
            }
        } else if to.localhost {
            let port = check.port.unwrap_or(default_port(check.protocol));
            add(
                "localhost".into(),
                Some(from.clone()),
                transport("127.0.0.1".into(), port),
                None,
                check.expect,
            );
        } else {
            return Err("the check has no target".into());
        }
    }
    for (i, p) in probes.iter_mut().enumerate() {
        p.spec.id = format!("{}#{i}", check.name);
    }
    Ok(probes)
}

/// `from: harness`: probes that start on the machine running netconform.
pub const HARNESS: &str = "harness";

/// The pods a check names: a fixture's pods, `*` for every pod off the host
/// network (sorted by namespace and name), or the harness itself.
fn pods_named(world: &World, name: &str) -> Result<Vec<Endpoint>, String> {
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
        .ok_or_else(|| format!("no pods for `{name}`"))
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

fn is_matrix(check: &Check) -> bool {
    check.from == "*" || check.to.pod.as_deref() == Some("*")
}

/// Expected and observed connectivity as two tables (`.` connects, `X` does
/// not, `?` mixed), with mismatches marked `!` in the observed one.
pub fn matrix_tables(world: &World, probes: &[(PlannedProbe, ProbeResult)]) -> String {
    let mut rows: Vec<String> = Vec::new();
    let mut cols: Vec<String> = Vec::new();
    let mut cells: BTreeMap<(String, String), (char, char)> = BTreeMap::new();
    for (p, r) in probes {
        let Some(to) = &p.target_pod else { continue };
        let (f, t) = (short_name(world, &p.from), short_name(world, to));
        if !rows.contains(&f) {
            rows.push(f.clone());
        }
        if !cols.contains(&t) {
            cols.push(t.clone());
        }
        let expected = if p.expect == Expectation::Connected {
            '.'
        } else {
            'X'
        };
        let ok = r
            .attempts
            .iter()
            .filter(|a| a.outcome == Outcome::Connected)
            .count();
        let observed = if ok == r.attempts.len() && ok > 0 {
            '.'
        } else if ok == 0 {
            'X'
        } else {
            '?'
        };
        cells.insert((f, t), (expected, observed));
    }
    rows.sort();
    cols.sort();
    let width = rows.iter().chain(&cols).map(|s| s.len()).max().unwrap_or(1);
    let render = |title: &str, observed: bool| {
        let mut out = format!("{title}\n{:width$}", "");
        for c in &cols {
            out.push_str(&format!(" {c:>width$}"));
        }
        out.push('\n');
        for r in &rows {
            out.push_str(&format!("{r:width$}"));
            for c in &cols {
                let cell = match cells.get(&(r.clone(), c.clone())) {
                    Some((e, o)) if observed => {
                        if e == o {
                            o.to_string()
                        } else {
                            format!("{o}!")
                        }
                    }
                    Some((e, _)) => e.to_string(),
                    None => "-".to_string(),
                };
                out.push_str(&format!(" {cell:>width$}"));
            }
            out.push('\n');
        }
        out
    };
    format!(
        "{}{}",
        render(
            "expected (rows: from, columns: to; . connects, X blocked):",
            false
        ),
        render("observed (! differs from expected):", true)
    )
}

fn dns_name(check: &Check, world: &World) -> Result<String, String> {
    if let Some(name) = &check.to.name {
        return expand_name(name, world);
    }
    if let Some(name) = &check.to.service {
        let svc = world
            .services
            .get(name)
            .ok_or_else(|| format!("no service `{name}`"))?;
        return match check.to.address.unwrap_or(ServiceAddress::Fqdn) {
            ServiceAddress::Name => Ok(svc.name.clone()),
            ServiceAddress::NameNamespace => Ok(format!("{}.{}", svc.name, svc.namespace)),
            _ => expand_name(
                &format!("{}.{}.svc.{{domain}}", svc.name, svc.namespace),
                world,
            ),
        };
    }
    Err("a dns check needs `to.name` or `to.service`".into())
}

fn expected_dns(check: &Check, world: &World) -> Result<Option<ExpectedAnswers>, String> {
    let Some(a) = &check.assert.answers else {
        return Ok(None);
    };
    let service = |name: &str| {
        world
            .services
            .get(name)
            .ok_or_else(|| format!("no service `{name}`"))
    };
    if let Some(s) = &a.cluster_ip_of {
        let ip = service(s)?
            .cluster_ip
            .clone()
            .ok_or_else(|| format!("service `{s}` has no cluster IP"))?;
        return Ok(Some(ExpectedAnswers::Exactly(BTreeSet::from([ip]))));
    }
    if let Some(s) = &a.ready_pod_ips_of {
        return Ok(Some(ExpectedAnswers::Exactly(
            service(s)?.backends.iter().map(|b| b.ip.clone()).collect(),
        )));
    }
    if let Some(p) = &a.pod_ip_of {
        // A fixture's pods, or one pod by name (e.g. a StatefulSet's `web-0`).
        let ips: BTreeSet<String> = match world.groups.get(p) {
            Some(group) => group.iter().map(|e| e.ip.clone()).collect(),
            None => world
                .groups
                .values()
                .flatten()
                .filter(|e| &e.pod == p)
                .map(|e| e.ip.clone())
                .collect(),
        };
        if ips.is_empty() {
            return Err(format!("no pods for `{p}`"));
        }
        return Ok(Some(ExpectedAnswers::Exactly(ips)));
    }
    if let Some(sp) = &a.srv_port_of {
        let (s, port_name) = sp
            .split_once('/')
            .ok_or("srv_port_of is `<service>/<port name>`")?;
        let svc = service(s)?;
        let port = svc
            .ports
            .iter()
            .find(|p| p.name.as_deref() == Some(port_name))
            .ok_or_else(|| format!("service `{s}` has no port named `{port_name}`"))?;
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

pub fn matches(expect: Expectation, outcome: Outcome) -> bool {
    match expect {
        Expectation::Connected => outcome == Outcome::Connected,
        Expectation::Refused => outcome == Outcome::Refused,
        Expectation::TimedOut => outcome == Outcome::TimedOut,
        Expectation::Blocked => matches!(outcome, Outcome::Refused | Outcome::TimedOut),
        Expectation::NotFound => outcome == Outcome::NotFound,
    }
}

fn expectation_text(expect: Expectation) -> &'static str {
    match expect {
        Expectation::Connected => "connected",
        Expectation::Refused => "refused",
        Expectation::TimedOut => "timed_out",
        Expectation::Blocked => "blocked (refused or timed_out)",
        Expectation::NotFound => "not_found",
    }
}

/// "18 connected, 2 timed_out"
fn tally(attempts: &[Attempt]) -> String {
    let mut counts: BTreeMap<Outcome, usize> = BTreeMap::new();
    for a in attempts {
        *counts.entry(a.outcome).or_default() += 1;
    }
    counts
        .iter()
        .map(|(o, n)| format!("{n} {o}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `name. A udp try 1: nxdomain 0.4 ms; ...`: what the resolver asked and got.
fn query_trace(queries: &[DnsQuery]) -> String {
    queries
        .iter()
        .map(|q| {
            let transport = match q.transport {
                DnsTransport::Udp => "udp",
                DnsTransport::Tcp => "tcp",
            };
            let result = serde_json::to_value(q.result)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!(
                "{} {:?} {transport} try {} to {}: {result} {:.1} ms",
                q.name,
                q.record,
                q.attempt,
                q.server,
                q.latency_us as f64 / 1000.0
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn set_text(s: &BTreeSet<String>) -> String {
    if s.is_empty() {
        "{}".into()
    } else {
        format!("{{{}}}", s.iter().cloned().collect::<Vec<_>>().join(", "))
    }
}

/// The problems with one probe's result (empty: it met every expectation).
pub fn judge_probe(check: &Check, probe: &PlannedProbe, result: &ProbeResult) -> Vec<String> {
    let attempts = &result.attempts;
    let total = attempts.len();
    let mut problems = Vec::new();
    if total == 0 {
        problems.push("the agent returned no samples".to_string());
    }
    let unexpected: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| !matches(probe.expect, a.outcome))
        .collect();
    if let Some(first) = unexpected.first() {
        problems.push(format!(
            "expected {} on all {total} samples, observed {} (first unexpected: {}: {})",
            expectation_text(probe.expect),
            tally(attempts),
            first.outcome,
            first.detail.as_deref().unwrap_or("no detail")
        ));
        if !first.dns_queries.is_empty() && first.outcome != Outcome::Connected {
            problems.push(format!(
                "DNS queries of that sample: {}",
                query_trace(&first.dns_queries)
            ));
        }
        if unexpected.iter().any(|a| {
            a.detail
                .as_deref()
                .is_some_and(|d| d.contains("No route to host"))
        }) {
            problems.push(
                "\"No route to host\" is a neighbour (ARP/NDP) resolution that failed on the way: on a bridge CNI, typically a node \
                 that still remembers the MAC of an earlier pod with the same IP (docs/verdicts.md)"
                    .into(),
            );
        }
    }
    let connected = || attempts.iter().filter(|a| a.outcome == Outcome::Connected);

    if check.assert.source_ip == Some(SourceIp::ClientPodIp) {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for a in connected() {
            *seen
                .entry(
                    a.seen_client_ip
                        .clone()
                        .unwrap_or_else(|| "<not reported>".into()),
                )
                .or_default() += 1;
        }
        let wrong: Vec<String> = seen
            .iter()
            .filter(|(ip, _)| **ip != probe.from.ip)
            .map(|(ip, n)| format!("{ip} on {n} samples"))
            .collect();
        if !wrong.is_empty() {
            problems.push(format!(
                "source address: expected the client's pod IP {} (no NAT), the server saw {}",
                probe.from.ip,
                wrong.join(", ")
            ));
        }
    }
    if check.assert.same_pod {
        let others: BTreeSet<String> = connected()
            .filter_map(|a| a.server.clone())
            .filter(|s| *s != probe.from.hostname)
            .collect();
        if !others.is_empty() {
            problems.push(format!(
                "expected the answer from this pod ({}), got it from {}",
                probe.from.hostname,
                set_text(&others)
            ));
        }
    }
    match &probe.expected_answers {
        Some(ExpectedAnswers::Exactly(want)) => {
            let got: BTreeSet<BTreeSet<String>> = connected()
                .map(|a| a.answers.iter().cloned().collect())
                .collect();
            for g in got.iter().filter(|g| *g != want) {
                problems.push(format!(
                    "answers: expected exactly {}, got {}",
                    set_text(want),
                    set_text(g)
                ));
            }
        }
        Some(ExpectedAnswers::Srv { count, port }) => {
            for a in connected() {
                let ports: BTreeSet<String> = a
                    .answers
                    .iter()
                    .filter_map(|r| r.split_whitespace().nth(2).map(str::to_string))
                    .collect();
                if a.answers.len() != *count || ports != BTreeSet::from([port.to_string()]) {
                    problems.push(format!(
                        "SRV: expected {count} record(s) on port {port}, got [{}]",
                        a.answers.join("; ")
                    ));
                    break;
                }
            }
        }
        Some(ExpectedAnswers::Identity {
            addresses,
            hostname,
        }) => {
            for a in connected().take(1) {
                let own: BTreeSet<String> = a.answers.iter().cloned().collect();
                let missing: BTreeSet<String> = addresses.difference(&own).cloned().collect();
                if !missing.is_empty() {
                    problems.push(format!(
                        "status.podIP {} is not among the pod's own addresses {}",
                        set_text(&missing),
                        set_text(&own)
                    ));
                }
                if let (Some(want), Some(got)) = (hostname, &a.server) {
                    if want != got {
                        problems.push(format!("hostname: expected {want}, the pod says {got}"));
                    }
                }
            }
        }
        None => {}
    }
    problems
}

/// The samples that count for latency: past the warm-up, and as expected.
fn measured<'a>(
    check: &Check,
    p: &'a PlannedProbe,
    r: &'a ProbeResult,
) -> impl Iterator<Item = &'a Attempt> {
    r.attempts
        .iter()
        .skip(check.warmup as usize)
        .filter(move |a| matches(p.expect, a.outcome))
}

/// Latency per (client node, server node), over the measured samples of the
/// probes that target a pod.
pub fn node_pairs(check: &Check, probes: &[(PlannedProbe, ProbeResult)]) -> Vec<PairLatency> {
    pair_latency(
        probes
            .iter()
            .filter_map(|(p, r)| Some((p, r, p.target_pod.as_ref()?)))
            .flat_map(|(p, r, to)| {
                measured(check, p, r)
                    .map(move |a| (p.from.node.as_str(), to.node.as_str(), a.latency_us))
            }),
    )
}

/// Judges a whole check: every probe, then what only the set of probes can
/// show (distinct backends); latency over the samples that met expectations.
pub fn evaluate(
    check: &Check,
    world: &World,
    probes: &[(PlannedProbe, ProbeResult)],
) -> (Status, Option<LatencySummary>) {
    let latency = summarise(
        probes
            .iter()
            .flat_map(|(p, r)| measured(check, p, r))
            .map(|a| a.latency_us),
    );
    let mut failures = Vec::new();
    let mut failed_probes = 0;
    for (p, r) in probes {
        let problems = judge_probe(check, p, r);
        if !problems.is_empty() {
            failed_probes += 1;
            let origin = if p.from.pod == HARNESS {
                "the harness host".to_string()
            } else if p.from.host_network {
                format!(
                    "{}/{} (host network of {}, {})",
                    p.from.namespace, p.from.pod, p.from.node, p.from.ip
                )
            } else {
                format!(
                    "{}/{} ({}, node {})",
                    p.from.namespace, p.from.pod, p.from.ip, p.from.node
                )
            };
            failures.push(format!(
                "{} {origin} -> {}\n    {}",
                check.protocol.as_str(),
                p.target,
                problems.join("\n    ")
            ));
        }
    }
    if !check.assert.not_served_by.is_empty() {
        let forbidden: BTreeSet<String> = check
            .assert
            .not_served_by
            .iter()
            .flat_map(|p| {
                world
                    .groups
                    .get(p)
                    .into_iter()
                    .flatten()
                    .map(|e| e.hostname.clone())
            })
            .collect();
        let hits: BTreeMap<&str, usize> = probes
            .iter()
            .flat_map(|(_, r)| &r.attempts)
            .filter_map(|a| a.server.as_deref())
            .filter(|s| forbidden.contains(*s))
            .fold(BTreeMap::new(), |mut m, s| {
                *m.entry(s).or_default() += 1;
                m
            });
        if !hits.is_empty() {
            failures.push(format!(
                "expected no answer from {}, got {}",
                set_text(&forbidden),
                hits.iter()
                    .map(|(s, n)| format!("{n} from {s}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if let Some(want) = check.assert.distinct_servers_at_least {
        let servers: BTreeSet<&str> = probes
            .iter()
            .flat_map(|(_, r)| &r.attempts)
            .filter_map(|a| a.server.as_deref())
            .collect();
        if (servers.len() as u32) < want {
            failures.push(format!(
                "expected answers from at least {want} different backends, got {} ({})",
                servers.len(),
                servers.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if let Some(l) = latency {
        for (name, limit, got) in [
            ("p50", check.latency.p50_ms, l.p50_us),
            ("p90", check.latency.p90_ms, l.p90_us),
            ("p99", check.latency.p99_ms, l.p99_us),
        ] {
            if let Some(limit) = limit {
                if got as f64 > limit * 1000.0 {
                    failures.push(format!(
                        "latency {name} {:.3} ms is over the {limit} ms threshold",
                        got as f64 / 1000.0
                    ));
                }
            }
        }
    }
    if let Some(o) = &check.latency.pair_outliers {
        let pairs = node_pairs(check, probes);
        let base = baseline_p50_us(&pairs).unwrap_or(0);
        for p in pair_outliers(&pairs, o.ratio, o.floor_ms * 1000.0) {
            failures.push(format!(
                "node pair {} -> {}: p50 {:.3} ms is {:.1}x the cluster's baseline p50 {:.3} ms (an outlier is over {}x and over {} ms above it)",
                p.from,
                p.to,
                p.latency.p50_us as f64 / 1000.0,
                p.latency.p50_us as f64 / base.max(1) as f64,
                base as f64 / 1000.0,
                o.ratio,
                o.floor_ms
            ));
        }
    }
    if probes.is_empty() {
        failures.push("the check planned no probe".into());
    }
    if failures.is_empty() {
        (Status::Passed, latency)
    } else {
        let mut text = if failed_probes > 0 {
            format!("{failed_probes} of {} probes failed\n", probes.len())
        } else {
            format!("every one of the {} probes met its expectation, but the check as a whole did not:\n", probes.len())
        };
        if is_matrix(check) {
            text.push_str(&matrix_tables(world, probes));
        }
        text.push_str(&format!("  {}", failures.join("\n  ")));
        (Status::Failed(text), latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn check(expect: Expectation, source_ip: bool) -> Check {
        Check {
            name: "c".into(),
            description: String::new(),
            rule: None,
            features: vec![],
            from: "client".into(),
            container: None,
            to: Target::pod("server"),
            protocol: Protocol::Tcp,
            port: None,
            path: None,
            record: None,
            expect,
            assert: Assertions {
                source_ip: source_ip.then_some(SourceIp::ClientPodIp),
                ..Default::default()
            },
            samples: 3,
            warmup: 0,
            timeout_ms: 1000,
            latency: LatencyThresholds::default(),
            except: vec![],
            converge_ms: None,
            before: vec![],
            payload_bytes: None,
        }
    }

    fn ep(pod: &str, ip: &str, node: &str) -> Endpoint {
        Endpoint {
            pod: pod.into(),
            namespace: "nc-x-main-1".into(),
            ip: ip.into(),
            node: node.into(),
            hostname: pod.into(),
            ..Default::default()
        }
    }

    fn world() -> World {
        let mut w = World {
            default_namespace: "main".into(),
            ..Default::default()
        };
        w.namespaces.insert("main".into(), "nc-x-main-1".into());
        w.groups.insert(
            "client".into(),
            vec![
                ep("client-1", "10.0.1.2", "n1"),
                ep("client-2", "10.0.2.2", "n2"),
            ],
        );
        w.groups.insert(
            "server".into(),
            vec![
                ep("server-1", "10.0.1.3", "n1"),
                ep("server-2", "10.0.2.3", "n2"),
            ],
        );
        w.domain = Some("cluster.local".into());
        w
    }

    fn attempt(outcome: Outcome, seen: Option<&str>, latency_us: u64) -> Attempt {
        Attempt {
            outcome,
            latency_us,
            server: Some("server".into()),
            seen_client_ip: seen.map(Into::into),
            detail: None,
            answers: vec![],
            search: vec![],
            dns_queries: vec![],
        }
    }

    fn run(c: &Check, attempts: Vec<Attempt>) -> (Status, Option<LatencySummary>) {
        let probe = plan(c, &world()).unwrap().remove(0);
        let result = ProbeResult {
            id: probe.spec.id.clone(),
            attempts,
        };
        evaluate(c, &world(), &[(probe, result)])
    }

    #[test]
    fn per_node_groups_plan_every_pair() {
        let probes = plan(&check(Expectation::Connected, true), &world()).unwrap();
        let pairs: Vec<(String, String)> = probes
            .iter()
            .map(|p| (p.from.pod.clone(), p.target.clone()))
            .collect();
        assert_eq!(pairs.len(), 4);
        assert!(pairs.contains(&("client-2".into(), "nc-x-main-1/server-1".into())));
        let ids: BTreeSet<&str> = probes.iter().map(|p| p.spec.id.as_str()).collect();
        assert_eq!(ids.len(), 4, "probe ids are unique within a batch");
    }

    #[test]
    fn all_connected_from_the_client_ip_passes_with_latency() {
        let (status, latency) = run(
            &check(Expectation::Connected, true),
            vec![
                attempt(Outcome::Connected, Some("10.0.1.2"), 100),
                attempt(Outcome::Connected, Some("10.0.1.2"), 300),
            ],
        );
        assert_eq!(status, Status::Passed);
        assert_eq!(latency.unwrap().samples, 2);
    }

    #[test]
    fn snat_is_caught_and_named() {
        let (status, _) = run(
            &check(Expectation::Connected, true),
            vec![attempt(Outcome::Connected, Some("10.250.0.12"), 100)],
        );
        let Status::Failed(msg) = status else {
            panic!("{status:?}")
        };
        assert!(msg.contains("expected the client's pod IP 10.0.1.2 (no NAT), the server saw 10.250.0.12 on 1 samples"), "{msg}");
    }

    #[test]
    fn a_partial_failure_reports_the_tally_and_the_route() {
        let mut t = attempt(Outcome::TimedOut, None, 1_000_000);
        t.detail = Some("no answer within 1000 ms".into());
        let (status, _) = run(
            &check(Expectation::Connected, false),
            vec![attempt(Outcome::Connected, None, 100), t],
        );
        let Status::Failed(msg) = status else {
            panic!("{status:?}")
        };
        assert!(
            msg.contains("expected connected on all 2 samples, observed 1 connected, 1 timed_out"),
            "{msg}"
        );
        assert!(msg.contains("no answer within 1000 ms"), "{msg}");
        assert!(
            msg.contains("tcp nc-x-main-1/client-1 (10.0.1.2, node n1) -> nc-x-main-1/server-1"),
            "{msg}"
        );
    }

    #[rstest]
    #[case(Expectation::Blocked, Outcome::Refused, true)]
    #[case(Expectation::Blocked, Outcome::TimedOut, true)]
    #[case(Expectation::Blocked, Outcome::Connected, false)]
    #[case(Expectation::Refused, Outcome::TimedOut, false)]
    #[case(Expectation::TimedOut, Outcome::TimedOut, true)]
    #[case(Expectation::NotFound, Outcome::NotFound, true)]
    #[case(Expectation::NotFound, Outcome::DnsError, false)]
    fn expectations(#[case] expect: Expectation, #[case] outcome: Outcome, #[case] pass: bool) {
        let (status, _) = run(&check(expect, false), vec![attempt(outcome, None, 10)]);
        assert_eq!(status == Status::Passed, pass, "{status:?}");
    }

    #[test]
    fn latency_threshold_fails_the_check() {
        let mut c = check(Expectation::Connected, false);
        c.latency.p99_ms = Some(1.0);
        let (status, _) = run(&c, vec![attempt(Outcome::Connected, None, 5_000)]);
        let Status::Failed(msg) = status else {
            panic!("{status:?}")
        };
        assert!(
            msg.contains("latency p99 5.0") && msg.contains("ms is over the 1 ms threshold"),
            "{msg}"
        );
    }

    #[test]
    fn no_samples_is_a_failure_not_a_pass() {
        let (status, _) = run(&check(Expectation::Blocked, false), vec![]);
        assert!(matches!(status, Status::Failed(_)));
    }

    #[test]
    fn dns_answers_must_match_exactly() {
        let mut c = check(Expectation::Connected, false);
        c.protocol = Protocol::Dns;
        c.to = Target {
            name: Some("server-1.{ns}.pod.{domain}".into()),
            ..Default::default()
        };
        c.assert.answers = Some(DnsAnswers {
            pod_ip_of: Some("server".into()),
            ..Default::default()
        });
        let probe = plan(&c, &world()).unwrap().remove(0);
        assert_eq!(probe.target, "server-1.nc-x-main-1.pod.cluster.local");
        let mut a = attempt(Outcome::Connected, None, 10);
        a.answers = vec!["10.0.1.3".into()];
        let (status, _) = evaluate(
            &c,
            &world(),
            &[(
                probe,
                ProbeResult {
                    id: String::new(),
                    attempts: vec![a],
                },
            )],
        );
        let Status::Failed(msg) = status else {
            panic!("{status:?}")
        };
        assert!(
            msg.contains("expected exactly {10.0.1.3, 10.0.2.3}, got {10.0.1.3}"),
            "{msg}"
        );
    }

    #[test]
    fn too_few_backends_fail_the_spread_assertion() {
        let mut c = check(Expectation::Connected, false);
        c.assert.distinct_servers_at_least = Some(2);
        let (status, _) = run(
            &c,
            vec![
                attempt(Outcome::Connected, None, 10),
                attempt(Outcome::Connected, None, 10),
            ],
        );
        let Status::Failed(msg) = status else {
            panic!("{status:?}")
        };
        assert!(
            msg.contains("at least 2 different backends, got 1 (server)"),
            "{msg}"
        );
    }

    #[test]
    fn matrix_pairs_take_the_last_matching_exception_and_failures_print_tables() {
        let mut c = check(Expectation::Connected, false);
        c.from = "*".into();
        c.to = Target::pod("*");
        c.except = vec![
            PairExpectation {
                from: "*".into(),
                to: "main/server-1".into(),
                expect: Expectation::Blocked,
            },
            PairExpectation {
                from: "main/client-1".into(),
                to: "server-1".into(),
                expect: Expectation::Connected,
            },
        ];
        let w = world();
        let probes = plan(&c, &w).unwrap();
        assert_eq!(probes.len(), 12, "4 pods x 3 others");
        let expect_of = |f: &str, t: &str| {
            probes
                .iter()
                .find(|p| p.from.pod == f && p.target_pod.as_ref().unwrap().pod == t)
                .unwrap()
                .expect
        };
        assert_eq!(expect_of("client-2", "server-1"), Expectation::Blocked);
        assert_eq!(expect_of("client-1", "server-1"), Expectation::Connected);
        assert_eq!(expect_of("client-2", "server-2"), Expectation::Connected);
        // Everything connects: the blocked pairs are the mismatches.
        let judged: Vec<_> = probes
            .into_iter()
            .map(|p| {
                let r = ProbeResult {
                    id: p.spec.id.clone(),
                    attempts: vec![attempt(Outcome::Connected, None, 10)],
                };
                (p, r)
            })
            .collect();
        let (status, _) = evaluate(&c, &w, &judged);
        let Status::Failed(msg) = status else {
            panic!("{status:?}")
        };
        assert!(msg.starts_with("2 of 12 probes failed"), "{msg}");
        assert!(msg.contains("expected (rows: from, columns: to"), "{msg}");
        assert!(msg.contains(".!"), "observed table marks mismatches: {msg}");
    }

    #[test]
    fn unknown_placeholders_are_errors() {
        assert!(expand_name("x.{nope}", &world())
            .unwrap_err()
            .contains("placeholder"));
        assert_eq!(
            expand_name("a.{ns:main}.svc.{domain}", &world()).unwrap(),
            "a.nc-x-main-1.svc.cluster.local"
        );
    }
}
