//! From probe results to a verdict that says expected vs observed: each
//! probe judged, matrices built, latency summarised. Pure: nothing here talks
//! to the cluster.

use crate::probes::plan::*;
use crate::scenario::*;
use crate::setup::world::{Endpoint, World};
use crate::verdict::stats::{
    baseline_p50_us, pair_latency, pair_outliers, pair_throughput, summarise, throughput_baseline,
    throughput_outliers, LatencySummary, PairLatency, PairThroughput, MIN_PAIRS_FOR_BASELINE,
};
use crate::verdict::*;
use netconform_protocol::{Attempt, DnsQueryResult, DnsTransport, Outcome, ProbeResult};
use std::collections::{BTreeMap, BTreeSet};

fn is_matrix(check: &Check) -> bool {
    check.from == "*" || check.to.pod.as_deref() == Some("*")
}

/// Expected and observed connectivity per (source, target pod) pair.
pub fn matrix(world: &World, probes: &[(PlannedProbe, ProbeResult)]) -> Matrix {
    let mut rows: Vec<String> = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    let mut cells = Vec::new();
    for (p, r) in probes {
        let Some(to) = &p.target_pod else { continue };
        let (from, to) = (short_name(world, &p.from), short_name(world, to));
        if !rows.contains(&from) {
            rows.push(from.clone());
        }
        if !columns.contains(&to) {
            columns.push(to.clone());
        }
        let expected = if p.expect == Expectation::Connected {
            Reach::Connects
        } else {
            Reach::Blocked
        };
        let ok = r
            .attempts
            .iter()
            .filter(|a| a.outcome == Outcome::Connected)
            .count();
        let observed = if ok == r.attempts.len() && ok > 0 {
            Reach::Connects
        } else if ok == 0 {
            Reach::Blocked
        } else {
            Reach::Mixed
        };
        cells.push(MatrixCell {
            from,
            to,
            expected,
            observed,
        });
    }
    rows.sort();
    columns.sort();
    Matrix {
        rows,
        columns,
        cells,
    }
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

/// The problems with one probe's result (empty: it met every expectation).
pub fn judge_probe(
    check: &Check,
    world: &World,
    probe: &PlannedProbe,
    result: &ProbeResult,
) -> Vec<ProbeProblem> {
    let attempts = &result.attempts;
    let total = attempts.len();
    let mut problems = Vec::new();
    if total == 0 {
        problems.push(ProbeProblem::NoSamples);
    }
    let unexpected: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| !matches(probe.expect, a.outcome))
        .collect();
    if let Some(first) = unexpected.first() {
        let mut observed: BTreeMap<Outcome, usize> = BTreeMap::new();
        for a in attempts {
            *observed.entry(a.outcome).or_default() += 1;
        }
        problems.push(ProbeProblem::UnexpectedOutcome {
            expected: probe.expect,
            samples: total,
            planned: probe.spec.samples as usize,
            observed,
            first: first.outcome,
            first_detail: first.detail.clone(),
            first_queries: if first.outcome != Outcome::Connected {
                first.dns_queries.clone()
            } else {
                vec![]
            },
            no_route_to_host: unexpected.iter().any(|a| {
                a.detail
                    .as_deref()
                    .is_some_and(|d| d.contains("No route to host"))
            }),
        });
    }
    let connected = || attempts.iter().filter(|a| a.outcome == Outcome::Connected);

    if check.assert.source_ip == Some(SourceIp::ClientPodOrNodeIp) {
        let node_ip = world
            .nodes
            .iter()
            .find(|n| n.name == probe.from.node)
            .map(|n| n.internal_ip.clone())
            .unwrap_or_default();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for a in connected() {
            let ip = a.seen_client_ip.as_deref().unwrap_or("<not reported>");
            if ip != probe.from.ip && ip != node_ip {
                *seen.entry(ip.to_string()).or_default() += 1;
            }
        }
        if !seen.is_empty() {
            problems.push(ProbeProblem::SourceNeitherPodNorNode {
                pod_ip: probe.from.ip.clone(),
                node_ip,
                seen,
            });
        }
    }
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
        seen.retain(|ip, _| *ip != probe.from.ip);
        if !seen.is_empty() {
            problems.push(ProbeProblem::SourceAddressRewritten {
                expected: probe.from.ip.clone(),
                seen,
            });
        }
    }
    if check.assert.one_server_per_client {
        let mut servers: BTreeMap<String, usize> = BTreeMap::new();
        for s in connected().filter_map(|a| a.server.clone()) {
            *servers.entry(s).or_default() += 1;
        }
        if servers.len() > 1 {
            problems.push(ProbeProblem::SpreadDespiteAffinity { servers });
        }
    }
    if check.assert.same_pod {
        let others: BTreeSet<String> = connected()
            .filter_map(|a| a.server.clone())
            .filter(|s| *s != probe.from.hostname)
            .collect();
        if !others.is_empty() {
            problems.push(ProbeProblem::AnsweredByOtherPod {
                expected: probe.from.hostname.clone(),
                got: others,
            });
        }
    }
    if check.assert.dns_tcp_fallback {
        let fell_back = |a: &&Attempt| {
            let truncated = a.dns_queries.iter().position(|q| {
                q.transport == DnsTransport::Udp && q.result == DnsQueryResult::Truncated
            });
            truncated.is_some_and(|i| {
                a.dns_queries[i + 1..]
                    .iter()
                    .any(|q| q.transport == DnsTransport::Tcp && q.result == DnsQueryResult::Answer)
            })
        };
        let without = connected().filter(|a| !fell_back(a)).count();
        if without > 0 {
            problems.push(ProbeProblem::NoDnsTcpFallback { samples: without });
        }
    }
    match &probe.expected_answers {
        Some(ExpectedAnswers::Exactly(want)) => {
            let got: BTreeSet<BTreeSet<String>> = connected()
                .map(|a| a.answers.iter().cloned().collect())
                .collect();
            for g in got.into_iter().filter(|g| g != want) {
                problems.push(ProbeProblem::DnsAnswers {
                    expected: want.clone(),
                    got: g,
                });
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
                    problems.push(ProbeProblem::SrvRecords {
                        count: *count,
                        port: *port,
                        got: a.answers.clone(),
                    });
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
                    problems.push(ProbeProblem::PodIpNotOwned { missing, own });
                }
                if let (Some(want), Some(got)) = (hostname, &a.server) {
                    if want != got {
                        problems.push(ProbeProblem::Hostname {
                            expected: want.clone(),
                            got: got.clone(),
                        });
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

/// Throughput per (client node, server node), over the measured streams of
/// the probes that target a pod.
pub fn node_pair_throughput(
    check: &Check,
    probes: &[(PlannedProbe, ProbeResult)],
) -> Vec<PairThroughput> {
    pair_throughput(
        probes
            .iter()
            .filter_map(|(p, r)| Some((p, r, p.target_pod.as_ref()?)))
            .flat_map(|(p, r, to)| {
                measured(check, p, r).filter_map(move |a| {
                    Some((
                        p.from.node.as_str(),
                        to.node.as_str(),
                        a.stream?.mbit_per_s(),
                    ))
                })
            }),
    )
}

fn origin(from: &Endpoint) -> Origin {
    if from.pod == HARNESS {
        Origin::HarnessHost
    } else if from.host_network {
        Origin::HostNetwork {
            namespace: from.namespace.clone(),
            pod: from.pod.clone(),
            node: from.node.clone(),
            ip: from.ip.clone(),
        }
    } else {
        Origin::Pod {
            namespace: from.namespace.clone(),
            pod: from.pod.clone(),
            node: from.node.clone(),
            ip: from.ip.clone(),
        }
    }
}

/// Judges a whole check: every probe, then what only the set of probes can
/// show (distinct backends); latency over the samples that met expectations.
pub fn evaluate(
    check: &Check,
    world: &World,
    probes: &[(PlannedProbe, ProbeResult)],
) -> (Status, Option<LatencySummary>) {
    // Source addresses and nodes as the check's family has them.
    let world = &*world.in_family(check.family);
    let latency = summarise(
        probes
            .iter()
            .flat_map(|(p, r)| measured(check, p, r))
            .map(|a| a.latency_us),
    );
    let failed_probes: Vec<ProbeFailure> = probes
        .iter()
        .filter_map(|(p, r)| {
            let problems = judge_probe(check, world, p, r);
            (!problems.is_empty()).then(|| ProbeFailure {
                protocol: check.protocol,
                origin: origin(&p.from),
                target: p.target.clone(),
                problems,
            })
        })
        .collect();
    let mut check_problems = Vec::new();
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
        let mut hits: BTreeMap<String, usize> = BTreeMap::new();
        for s in probes
            .iter()
            .flat_map(|(_, r)| &r.attempts)
            .filter_map(|a| a.server.as_ref())
            .filter(|s| forbidden.contains(*s))
        {
            *hits.entry(s.clone()).or_default() += 1;
        }
        if !hits.is_empty() {
            check_problems.push(CheckProblem::ServedByForbidden { forbidden, hits });
        }
    }
    if let Some(want) = check.assert.distinct_servers_at_least {
        let servers: BTreeSet<String> = probes
            .iter()
            .flat_map(|(_, r)| &r.attempts)
            .filter_map(|a| a.server.clone())
            .collect();
        if (servers.len() as u32) < want {
            check_problems.push(CheckProblem::TooFewBackends { want, got: servers });
        }
    }
    if let Some(l) = latency {
        for (percentile, limit, observed_us) in [
            (Percentile::P50, check.latency.p50_ms, l.p50_us),
            (Percentile::P90, check.latency.p90_ms, l.p90_us),
            (Percentile::P99, check.latency.p99_ms, l.p99_us),
        ] {
            if let Some(limit_ms) = limit {
                if observed_us as f64 > limit_ms * 1000.0 {
                    check_problems.push(CheckProblem::LatencyOverThreshold {
                        percentile,
                        limit_ms,
                        observed_us,
                    });
                }
            }
        }
    }
    if let Some(o) = &check.latency.pair_outliers {
        let pairs = node_pairs(check, probes);
        let base = baseline_p50_us(&pairs).unwrap_or(0);
        for p in pair_outliers(&pairs, o.ratio, o.floor_ms * 1000.0) {
            check_problems.push(CheckProblem::NodePairOutlier {
                from: p.from.clone(),
                to: p.to.clone(),
                p50_us: p.latency.p50_us,
                baseline_p50_us: base,
                ratio: o.ratio,
                floor_ms: o.floor_ms,
            });
        }
    }
    let mut not_comparable = None;
    if let Some(o) = &check.throughput.pair_outliers {
        let pairs = node_pair_throughput(check, probes);
        if [true, false]
            .iter()
            .all(|same| throughput_baseline(&pairs, *same).is_none())
        {
            not_comparable = Some(format!(
                "throughput pairs are compared with at least {MIN_PAIRS_FOR_BASELINE} pairs of their kind (same-node, cross-node); this cluster gave {} node pairs",
                pairs.len()
            ));
        }
        for (p, base) in throughput_outliers(&pairs, o.ratio, o.floor_mbps) {
            check_problems.push(CheckProblem::ThroughputPairOutlier {
                from: p.from.clone(),
                to: p.to.clone(),
                median_mbps: p.median_mbps,
                baseline_mbps: base,
                ratio: o.ratio,
                floor_mbps: o.floor_mbps,
            });
        }
    }
    if probes.is_empty() {
        check_problems.push(CheckProblem::NoProbes);
    }
    if failed_probes.is_empty() && check_problems.is_empty() {
        if let Some(reason) = not_comparable {
            return (Status::Skipped(Skip::Placement { reason }), latency);
        }
        return (Status::Passed, latency);
    }
    let judgement = Judgement {
        probes: probes.len(),
        failed_probes,
        check_problems,
        matrix: is_matrix(check).then(|| matrix(world, probes)),
    };
    (Status::Failed(Failure::Judged(judgement)), latency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::world::expand_name;
    use crate::setup::SetupError;
    use netconform_protocol::{DnsRecord, ProbeKind};
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
            stream_ms: None,
            throughput: Default::default(),
            vary: None,
            families: None,
            family: IpFamily::Ipv4,
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
            stream: None,
        }
    }

    fn probe_problems(status: &Status) -> Vec<ProbeProblem> {
        let j = status
            .failure()
            .and_then(Failure::judgement)
            .expect("a judged failure");
        j.failed_probes
            .iter()
            .flat_map(|p| p.problems.clone())
            .collect()
    }

    fn check_problems(status: &Status) -> Vec<CheckProblem> {
        let j = status
            .failure()
            .and_then(Failure::judgement)
            .expect("a judged failure");
        j.check_problems.clone()
    }

    fn run(c: &Check, attempts: Vec<Attempt>) -> (Status, Option<LatencySummary>) {
        let probe = plan(c, &world()).unwrap().remove(0);
        let result = ProbeResult {
            id: probe.spec.id.clone(),
            attempts,
        };
        evaluate(c, &world(), &[(probe, result)])
    }

    #[rstest]
    #[case(NodePair::SameNode, &[("client-1", "server-1"), ("client-2", "server-2")])]
    #[case(NodePair::OtherNode, &[("client-1", "server-2"), ("client-2", "server-1")])]
    fn a_pair_filter_keeps_only_the_pairs_on_the_same_or_other_nodes(
        #[case] pair: NodePair,
        #[case] want: &[(&str, &str)],
    ) {
        let mut c = check(Expectation::Connected, true);
        c.to.pair = Some(pair);
        let pairs: Vec<(String, String)> = plan(&c, &world())
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p.from.pod.clone(),
                    p.target_pod.as_ref().unwrap().pod.clone(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(pairs, want);
    }

    /// The test world with IPv6 twins for every pod, as a dual-stack cluster has.
    fn dual_world() -> World {
        let mut w = world();
        for e in w.groups.values_mut().flatten() {
            e.ipv6 = Some(format!("fd00::{}", e.ip.replace('.', ":")));
        }
        w
    }

    #[test]
    fn an_ipv6_check_probes_ipv6_addresses_and_wants_the_clients_ipv6_seen() {
        let mut c = check(Expectation::Connected, true);
        c.family = IpFamily::Ipv6;
        let w = dual_world();
        let probe = plan(&c, &w).unwrap().remove(0);
        assert_eq!(
            probe.spec.kind,
            ProbeKind::Tcp {
                host: "fd00::10:0:1:3".into(),
                port: DEFAULT_TCP_PORT
            }
        );
        let judged = |seen: &str| {
            let result = ProbeResult {
                id: probe.spec.id.clone(),
                attempts: vec![attempt(Outcome::Connected, Some(seen), 100)],
            };
            evaluate(&c, &w, &[(probe.clone(), result)]).0
        };
        assert_eq!(judged("fd00::10:0:1:2"), Status::Passed);
        // The client's IPv4 address is the wrong one in an IPv6 check.
        assert!(matches!(judged("10.0.1.2"), Status::Failed(_)));
    }

    #[test]
    fn an_ipv6_check_on_a_pod_without_ipv6_cannot_be_planned() {
        let mut c = check(Expectation::Connected, true);
        c.family = IpFamily::Ipv6;
        assert_eq!(
            plan(&c, &world()).unwrap_err(),
            PlanError::NoAddress {
                object: "pod nc-x-main-1/server-1".into(),
                family: "IPv6"
            }
        );
    }

    #[test]
    fn an_ipv6_check_asks_for_aaaa_and_uses_the_ipv6_loopback() {
        let mut c = check(Expectation::Connected, false);
        c.family = IpFamily::Ipv6;
        c.protocol = Protocol::Dns;
        c.to = Target {
            name: Some("server.{ns:main}.svc.{domain}".into()),
            ..Default::default()
        };
        let kind = plan(&c, &dual_world()).unwrap().remove(0).spec.kind;
        assert!(
            matches!(
                kind,
                ProbeKind::Dns {
                    record: DnsRecord::Aaaa,
                    ..
                }
            ),
            "{kind:?}"
        );
        c.protocol = Protocol::Tcp;
        c.to = Target {
            localhost: true,
            ..Default::default()
        };
        let kind = plan(&c, &dual_world()).unwrap().remove(0).spec.kind;
        assert_eq!(
            kind,
            ProbeKind::Tcp {
                host: "::1".into(),
                port: DEFAULT_TCP_PORT
            }
        );
    }

    #[test]
    fn a_ptr_check_asks_for_the_reverse_name_in_its_family_and_wants_exactly_its_names() {
        let mut c = check(Expectation::Connected, false);
        c.protocol = Protocol::Dns;
        c.record = Some(DnsRecordKind::Ptr);
        c.to = Target {
            pod: Some("server-1".into()),
            ..Default::default()
        };
        c.assert.answers = Some(DnsAnswers {
            names: vec!["server-1.srv.{ns}.svc.{domain}".into()],
            ..Default::default()
        });
        let w = dual_world();
        let probe = plan(&c, &w).unwrap().remove(0);
        assert_eq!(
            probe.spec.kind,
            ProbeKind::Dns {
                name: "3.1.0.10.in-addr.arpa.".into(),
                record: DnsRecord::Ptr,
                tcp: false
            }
        );
        let judged = |answers: &[&str]| {
            let mut a = attempt(Outcome::Connected, None, 100);
            a.answers = answers.iter().map(|s| s.to_string()).collect();
            let result = ProbeResult {
                id: probe.spec.id.clone(),
                attempts: vec![a],
            };
            evaluate(&c, &w, &[(probe.clone(), result)]).0
        };
        assert_eq!(
            judged(&["server-1.srv.nc-x-main-1.svc.cluster.local."]),
            Status::Passed
        );
        assert!(matches!(
            judged(&["10-0-1-3.srv.nc-x-main-1.svc.cluster.local."]),
            Status::Failed(_)
        ));
        assert!(matches!(
            judged(&[
                "server-1.srv.nc-x-main-1.svc.cluster.local.",
                "server-1.other.nc-x-main-1.svc.cluster.local."
            ]),
            Status::Failed(_)
        ));

        // In IPv6 the same check looks up the pod's IPv6 address under ip6.arpa.
        c.family = IpFamily::Ipv6;
        let kind = plan(&c, &w).unwrap().remove(0).spec.kind;
        let ProbeKind::Dns { name, .. } = kind else {
            panic!("{kind:?}")
        };
        assert_eq!(
            name,
            format!(
                "3.0.0.0.1.0.0.0.0.0.0.0.0.1.0.0.{}.0.0.d.f.ip6.arpa.",
                ["0"; 12].join(".")
            )
        );
    }

    #[rstest]
    #[case("10.96.0.10", "10.0.96.10.in-addr.arpa.")]
    #[case(
        "2001:db8::567:89ab",
        "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
    )]
    fn reverse_names_follow_rfc_1035_and_3596(#[case] address: &str, #[case] want: &str) {
        assert_eq!(reverse_name(address), want);
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
        let problems = probe_problems(&status);
        assert_eq!(
            problems,
            vec![ProbeProblem::SourceAddressRewritten {
                expected: "10.0.1.2".into(),
                seen: BTreeMap::from([("10.250.0.12".to_string(), 1)]),
            }]
        );
        let msg = status.failure().unwrap().to_string();
        assert!(msg.contains("expected the client's pod IP 10.0.1.2 (no NAT), the server saw 10.250.0.12 on 1 samples"), "{msg}");
    }

    #[rstest]
    #[case(Expectation::Connected, FAILURES_DECIDE_A_CONNECTED_PROBE)]
    #[case(Expectation::Blocked, 0)]
    #[case(Expectation::TimedOut, 0)]
    fn only_a_probe_that_must_connect_stops_after_its_failures(
        #[case] expect: Expectation,
        #[case] stop_after: u32,
    ) {
        let probe = plan(&check(expect, false), &world()).unwrap().remove(0);
        assert_eq!(probe.spec.stop_after_failures, stop_after);
    }

    /// A converging check probes while its change is being programmed; a
    /// check of a settled cluster connects the way any client would.
    #[rstest]
    #[case::converging(Some(5_000), true)]
    #[case::settled(None, false)]
    fn only_a_converging_check_takes_reserved_source_ports(
        #[case] converge_ms: Option<u64>,
        #[case] reserved: bool,
    ) {
        let c = Check {
            converge_ms,
            ..check(Expectation::Connected, false)
        };
        let probe = plan(&c, &world()).unwrap().remove(0);
        assert_eq!(probe.spec.reserved_source_ports, reserved);
    }

    #[test]
    fn a_world_stopped_at_its_baseline_fails_its_cases_with_those_probes() {
        let timed_out = || attempt(Outcome::TimedOut, None, 250_000);
        let (status, _) = run(&check(Expectation::Connected, false), vec![timed_out()]);
        let baseline = status.failure().unwrap().clone();
        let failure = Failure::NoWorldLeft {
            copies: vec![WorldStopped::NotAllowedAtStart {
                world: "policy-3x3-1".into(),
                check: "tcp-80".into(),
                failure: Box::new(baseline.clone()),
            }],
        };
        assert_eq!(failure.judgement(), baseline.judgement());
        let msg = failure.to_string();
        assert!(
            msg.contains("the shared world policy-3x3-1 is not all-allowed before any policy: tcp-80: 1 of 1 probes failed"),
            "{msg}"
        );
    }

    #[test]
    fn a_probe_that_stopped_early_says_so() {
        let mut c = check(Expectation::Connected, false);
        c.samples = 55;
        let timed_out = || attempt(Outcome::TimedOut, None, 2_000_000);
        let (status, _) = run(&c, vec![timed_out(), timed_out(), timed_out()]);
        let msg = status.failure().unwrap().to_string();
        assert!(
            msg.contains("expected connected on all 3 samples, observed 3 timed_out"),
            "{msg}"
        );
        assert!(
            msg.contains("the probe stopped after 3 of its 55 samples"),
            "{msg}"
        );
    }

    #[test]
    fn a_partial_failure_reports_the_tally_and_the_route() {
        let mut t = attempt(Outcome::TimedOut, None, 1_000_000);
        t.detail = Some("no answer within 1000 ms".into());
        let (status, _) = run(
            &check(Expectation::Connected, false),
            vec![attempt(Outcome::Connected, None, 100), t],
        );
        let j = status.failure().and_then(Failure::judgement).unwrap();
        assert_eq!(j.failed_probes[0].origin.node(), Some("n1"));
        let ProbeProblem::UnexpectedOutcome {
            observed, first, ..
        } = &j.failed_probes[0].problems[0]
        else {
            panic!("{j:?}")
        };
        assert_eq!(*first, Outcome::TimedOut);
        assert_eq!(
            observed,
            &BTreeMap::from([(Outcome::Connected, 1), (Outcome::TimedOut, 1)])
        );
        let msg = status.failure().unwrap().to_string();
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
        // HdrHistogram keeps 3 significant digits: 5000 µs reads back as 5003.
        assert!(
            matches!(
                check_problems(&status)[..],
                [CheckProblem::LatencyOverThreshold {
                    percentile: Percentile::P99,
                    observed_us: 4_990..=5_010,
                    ..
                }]
            ),
            "{status:?}"
        );
        let msg = status.failure().unwrap().to_string();
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
    fn the_outside_host_may_see_the_pod_or_its_node_but_nothing_else() {
        let mut c = check(Expectation::Connected, false);
        c.assert.source_ip = Some(SourceIp::ClientPodOrNodeIp);
        let mut w = world();
        w.nodes = vec![crate::setup::world::NodeInfo {
            name: "n1".into(),
            internal_ip: "10.250.0.12".into(),
            internal_ipv6: None,
        }];
        let probe = plan(&c, &w).unwrap().remove(0);
        assert_eq!(probe.from.node, "n1");
        let judge = |seen: &str| {
            let result = ProbeResult {
                id: String::new(),
                attempts: vec![attempt(Outcome::Connected, Some(seen), 10)],
            };
            judge_probe(&c, &w, &probe, &result)
        };
        assert!(judge("10.0.1.2").is_empty(), "the pod's own IP");
        assert!(judge("10.250.0.12").is_empty(), "SNAT to its node");
        assert_eq!(
            judge("10.250.0.201"),
            vec![ProbeProblem::SourceNeitherPodNorNode {
                pod_ip: "10.0.1.2".into(),
                node_ip: "10.250.0.12".into(),
                seen: BTreeMap::from([("10.250.0.201".to_string(), 1)]),
            }]
        );
    }

    #[test]
    fn a_large_answer_must_have_come_truncated_then_over_tcp() {
        use netconform_protocol::{DnsQuery, DnsRecord};
        let mut c = check(Expectation::Connected, false);
        c.protocol = Protocol::Dns;
        c.to = Target {
            name: Some("many".into()),
            ..Default::default()
        };
        c.assert.dns_tcp_fallback = true;
        let w = world();
        let probe = plan(&c, &w).unwrap().remove(0);
        let query = |transport, result| DnsQuery {
            name: "many.".into(),
            record: DnsRecord::A,
            server: "10.96.0.10:53".into(),
            transport,
            attempt: 1,
            result,
            latency_us: 100,
        };
        let judge = |queries: Vec<DnsQuery>| {
            let mut a = attempt(Outcome::Connected, None, 10);
            a.dns_queries = queries;
            let result = ProbeResult {
                id: String::new(),
                attempts: vec![a],
            };
            judge_probe(&c, &w, &probe, &result)
        };
        assert!(judge(vec![
            query(DnsTransport::Udp, DnsQueryResult::NxDomain),
            query(DnsTransport::Udp, DnsQueryResult::Truncated),
            query(DnsTransport::Tcp, DnsQueryResult::Answer),
        ])
        .is_empty());
        assert_eq!(
            judge(vec![query(DnsTransport::Udp, DnsQueryResult::Answer)]),
            vec![ProbeProblem::NoDnsTcpFallback { samples: 1 }]
        );
    }

    #[test]
    fn throughput_pairs_without_a_baseline_are_skipped_not_passed() {
        let mut c = check(Expectation::Connected, false);
        c.stream_ms = Some(250);
        c.throughput.pair_outliers = Some(ThroughputOutliers {
            ratio: 5.0,
            floor_mbps: 100.0,
        });
        let w = world();
        let probes: Vec<_> = plan(&c, &w)
            .unwrap()
            .into_iter()
            .map(|p| {
                let mut a = attempt(Outcome::Connected, None, 10);
                a.stream = Some(netconform_protocol::StreamFigures {
                    bytes: 1_000_000,
                    duration_us: 1_000,
                });
                let result = ProbeResult {
                    id: p.spec.id.clone(),
                    attempts: vec![a],
                };
                (p, result)
            })
            .collect();
        // Two nodes: 2 same-node and 2 cross-node pairs, no kind of three.
        assert_eq!(node_pair_throughput(&c, &probes).len(), 4);
        let (status, _) = evaluate(&c, &w, &probes);
        assert!(
            matches!(status, Status::Skipped(Skip::Placement { ref reason }) if reason.contains("this cluster gave 4 node pairs")),
            "{status:?}"
        );
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
        assert_eq!(
            probe_problems(&status),
            vec![ProbeProblem::DnsAnswers {
                expected: BTreeSet::from(["10.0.1.3".to_string(), "10.0.2.3".to_string()]),
                got: BTreeSet::from(["10.0.1.3".to_string()]),
            }]
        );
        let msg = status.failure().unwrap().to_string();
        assert!(
            msg.contains("expected exactly {10.0.1.3, 10.0.2.3}, got {10.0.1.3}"),
            "{msg}"
        );
    }

    #[test]
    fn a_client_spread_over_backends_fails_session_affinity() {
        let mut c = check(Expectation::Connected, false);
        c.assert.one_server_per_client = true;
        let served_by = |server: &str| Attempt {
            server: Some(server.into()),
            ..attempt(Outcome::Connected, None, 10)
        };
        let (status, _) = run(&c, vec![served_by("web-a"), served_by("web-a")]);
        assert!(status.is_passed(), "{status:?}");
        let (status, _) = run(
            &c,
            vec![served_by("web-a"), served_by("web-b"), served_by("web-a")],
        );
        assert_eq!(
            probe_problems(&status),
            vec![ProbeProblem::SpreadDespiteAffinity {
                servers: BTreeMap::from([("web-a".to_string(), 2), ("web-b".to_string(), 1)]),
            }]
        );
        let msg = status.failure().unwrap().to_string();
        assert!(
            msg.contains("session affinity), got 2 from web-a, 1 from web-b"),
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
        assert_eq!(
            check_problems(&status),
            vec![CheckProblem::TooFewBackends {
                want: 2,
                got: BTreeSet::from(["server".to_string()])
            }]
        );
        let msg = status.failure().unwrap().to_string();
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
        let j = status.failure().and_then(Failure::judgement).unwrap();
        assert_eq!(j.failed_probes.len(), 2);
        assert_eq!(j.matrix.as_ref().map(Matrix::mismatches), Some(2));
        let msg = status.failure().unwrap().to_string();
        assert!(msg.starts_with("2 of 12 probes failed"), "{msg}");
        assert!(msg.contains("expected (rows: from, columns: to"), "{msg}");
        assert!(msg.contains(".!"), "observed table marks mismatches: {msg}");
    }

    #[test]
    fn unknown_placeholders_are_errors() {
        assert_eq!(
            expand_name("x.{nope}", &world()).unwrap_err(),
            SetupError::UnknownPlaceholder {
                name: "x.{nope}".into()
            }
        );
        assert_eq!(
            expand_name("a.{ns:main}.svc.{domain}", &world()).unwrap(),
            "a.nc-x-main-1.svc.cluster.local"
        );
    }
}
