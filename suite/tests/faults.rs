//! Proof that the checks catch the faults they target. For each testbed fault:
//! inject it (`testbed/testbed fault NAME`), run the scenarios it concerns,
//! heal it, and require that exactly the expected checks failed, each with a
//! judged failure showing the fault's symptom (typed, not parsed from text),
//! and every other check of those scenarios passed.
//!
//! It breaks the testbed on purpose, so it runs only with
//! NETCONFORM_FAULT_TESTS=1 (CI sets it, as root, with the testbed up);
//! otherwise its trials are ignored with one line saying so.
//!
//! With NETCONFORM_FAULT_RESULTS=FILE each case also appends one tab-separated
//! line there (fault, verdict, what was seen, seconds): bench/cni-matrix
//! builds its per-CNI fault table from those lines.

use libtest_mimic::{Arguments, Failed, Trial};
use netconform_harness::scenario::Expectation;
use netconform_harness::verdict::{CheckProblem, Failure, Judgement, ProbeProblem, Status};
use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

struct FaultCase {
    fault: &'static str,
    /// Scenarios to run while the fault is active.
    scenarios: &'static [&'static str],
    /// Checks that must fail; every other check of those scenarios must pass,
    /// but for `may_fail`. Lists name checks as in IPv4; which family's
    /// trials they mean follows from what the fault breaks (`Breaks`).
    must_fail: Vec<&'static str>,
    /// Checks the fault really breaks but not on every run (with the reason
    /// at the case): failing or passing, both are right.
    may_fail: &'static [&'static str],
    /// Checks of which at least one must fail, the others may: which one
    /// depends on something the fault does not choose (a random object name).
    one_must_fail: &'static [&'static str],
    /// What each failed check's judgement must show.
    symptom: Symptom,
}

/// The evidence a failed check must carry: a failure the probes judged (not
/// a setup or exec error), showing this.
#[derive(Clone, Copy, Debug)]
enum Symptom {
    /// A server saw another source address than the client's pod IP.
    SourceRewritten,
    /// Samples ended otherwise than expected (timed out, refused, no DNS).
    UnexpectedOutcome,
    /// A connectivity matrix differs from the expected one.
    MatrixMismatch,
    /// The outside host saw a source that is neither the pod's nor its node's.
    SourceNeitherPodNorNode,
    /// One client's connections reached several backends of an affinity Service.
    SpreadDespiteAffinity,
    /// Something answered that should not have: a probe expected blocked
    /// connected, or a pod that must not serve answered.
    AnsweredWhereItMustNot,
    /// Some of a Service's endpoints were never reached: fewer backends
    /// answered than it has, or connections to it failed.
    EndpointsMissed,
    /// Exactly these (from node, to node) pairs are latency or throughput
    /// outliers, and no probe failed on its own.
    PairOutliers(&'static [(&'static str, &'static str)]),
}

impl Symptom {
    fn shown_by(self, j: &Judgement) -> bool {
        let problems = || j.failed_probes.iter().flat_map(|p| &p.problems);
        match self {
            Symptom::SourceRewritten => {
                problems().any(|p| matches!(p, ProbeProblem::SourceAddressRewritten { .. }))
            }
            Symptom::UnexpectedOutcome => {
                problems().any(|p| matches!(p, ProbeProblem::UnexpectedOutcome { .. }))
            }
            Symptom::MatrixMismatch => j.matrix.as_ref().is_some_and(|m| m.mismatches() > 0),
            Symptom::SourceNeitherPodNorNode => {
                problems().any(|p| matches!(p, ProbeProblem::SourceNeitherPodNorNode { .. }))
            }
            Symptom::SpreadDespiteAffinity => {
                problems().any(|p| matches!(p, ProbeProblem::SpreadDespiteAffinity { .. }))
            }
            Symptom::AnsweredWhereItMustNot => {
                j.check_problems
                    .iter()
                    .any(|c| matches!(c, CheckProblem::ServedByForbidden { .. }))
                    || problems().any(|p| {
                        matches!(
                            p,
                            ProbeProblem::UnexpectedOutcome {
                                expected: Expectation::Blocked,
                                ..
                            }
                        )
                    })
            }
            Symptom::EndpointsMissed => {
                j.check_problems
                    .iter()
                    .any(|c| matches!(c, CheckProblem::TooFewBackends { .. }))
                    || problems().any(|p| matches!(p, ProbeProblem::UnexpectedOutcome { .. }))
            }
            Symptom::PairOutliers(pairs) => {
                let got: BTreeSet<(&str, &str)> = j
                    .check_problems
                    .iter()
                    .filter_map(|c| match c {
                        CheckProblem::NodePairOutlier { from, to, .. }
                        | CheckProblem::ThroughputPairOutlier { from, to, .. } => {
                            Some((from.as_str(), to.as_str()))
                        }
                        _ => None,
                    })
                    .collect();
                j.failed_probes.is_empty() && got == pairs.iter().copied().collect()
            }
        }
    }
}

const PER_PAIR: [&str; 4] = ["tcp-80", "tcp-81", "udp-80", "udp-81"];

/// What fails when the two workers' pod networks cannot reach each other
/// (no-route, vxlan-blocked; ipv6-no-route's IPv6 twins).
const WORKERS_CUT_APART: &[&str] = &[
    "pod-to-pod::tcp-other-node",
    "pod-to-pod::udp-other-node",
    "pod-to-pod::http-other-node",
    "pod-to-pod::icmp-other-node",
    // A worker's host network loses the other worker's pods too.
    "node-to-pod::tcp",
    "node-to-pod::udp",
    "node-to-pod::http",
    "node-to-pod::icmp",
    "all-nodes::tcp",
    "all-nodes::udp",
    "all-nodes::http",
    // The quiet phase's pairs between them: every sample would time out, so
    // each probe stops after a few (without that the phase took minutes).
    "latency::tcp-connect-pairs",
    "latency::udp-round-trip-pairs",
    "latency::tcp-throughput-pairs",
];

/// Which families a fault breaks, and so which trials its case runs and judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Breaks {
    /// IPv4 alone (an iptables rule, an IPv4 route): the case judges the
    /// checks as named and leaves the `::ipv6` twins out, so it means the
    /// same on an IPv4 and a dual-stack testbed.
    Ipv4,
    /// IPv6 alone (the `ipv6-*` faults, dual-stack testbed): the case's lists
    /// mean the checks' IPv6 twins, and every IPv4 check must pass.
    Ipv6,
    /// Something both families share (the cluster DNS, the API objects
    /// kube-proxy and the enforcers read, a link's MTU), or a fault the
    /// testbed injects in each family it runs (a rule in iptables and
    /// ip6tables): the checks as named and, where the testbed runs them,
    /// their `::ipv6` twins.
    Both,
}

/// The faults that break both families: what they share, or each one in turn.
const BREAK_BOTH_FAMILIES: &[&str] = &[
    "dns-down",
    "dns-tcp-blocked",
    "dns-no-reverse",
    "service-stale-updates",
    "endpoint-slices-first-only",
    "netpol-off",
    "netpol-stale-updates",
    "mtu",
    "snat",
    "icmp-blocked",
    "affinity-ignored",
    "hostport-off",
    "service-rules-off",
    "hairpin-off",
];

fn breaks(case: &FaultCase) -> Breaks {
    if case.fault.starts_with("ipv6-") {
        Breaks::Ipv6
    } else if BREAK_BOTH_FAMILIES.contains(&case.fault) {
        Breaks::Both
    } else {
        Breaks::Ipv4
    }
}

/// The trials a case's check list means, one set per family the case
/// judges: the checks as named, their IPv6 twins (`<check>::ipv6`), or both
/// (a twin only where it ran: not every check has one).
fn judged_per_family(
    case: &FaultCase,
    checks: &[&str],
    ran: &BTreeSet<String>,
) -> Vec<BTreeSet<String>> {
    let named = || checks.iter().map(|c| c.to_string()).collect();
    let twins = || checks.iter().map(|c| format!("{c}::ipv6"));
    match breaks(case) {
        Breaks::Ipv4 => vec![named()],
        Breaks::Ipv6 => vec![twins().collect()],
        Breaks::Both => vec![named(), twins().filter(|t| ran.contains(t)).collect()],
    }
}

fn judged(case: &FaultCase, checks: &[&str], ran: &BTreeSet<String>) -> BTreeSet<String> {
    judged_per_family(case, checks, ran)
        .into_iter()
        .flatten()
        .collect()
}

/// A fault on the way to the outside host: exactly its three checks fail
/// (pod-to-pod runs beside them and must pass), showing `symptom`.
fn outside_host_case(fault: &'static str, symptom: Symptom) -> FaultCase {
    FaultCase {
        fault,
        scenarios: &["outside-host", "pod-to-pod"],
        must_fail: vec![
            "outside-host::tcp-from-every-node",
            "outside-host::udp-from-every-node",
            "outside-host::http-from-every-node",
        ],
        may_fail: &[],
        one_must_fail: &[],
        symptom,
    }
}

/// One worker pair 40 ms slower (`slow-pair`, or in IPv6 alone
/// `ipv6-slow-pair`): every node-pair check fails and names that pair.
fn slow_pair(fault: &'static str) -> FaultCase {
    FaultCase {
        fault,
        scenarios: &["latency", "pod-to-pod"],
        must_fail: vec![
            "latency::tcp-connect-pairs",
            "latency::udp-round-trip-pairs",
            "latency::tcp-throughput-pairs",
        ],
        may_fail: &[],
        one_must_fail: &[],
        symptom: Symptom::PairOutliers(&[
            ("netconform-worker", "netconform-worker2"),
            ("netconform-worker2", "netconform-worker"),
        ]),
    }
}

/// One node pair's bandwidth capped (`throttled-pair`, or in IPv6 alone
/// `ipv6-throttled-pair`): only the throughput check fails, naming that pair.
fn throttled_pair(fault: &'static str) -> FaultCase {
    FaultCase {
        fault,
        scenarios: &["latency", "pod-to-pod"],
        must_fail: vec!["latency::tcp-throughput-pairs"],
        may_fail: &[],
        one_must_fail: &[],
        symptom: Symptom::PairOutliers(&[
            ("netconform-worker", "netconform-worker2"),
            ("netconform-worker2", "netconform-worker"),
        ]),
    }
}

fn cases() -> Vec<FaultCase> {
    vec![
        FaultCase {
            fault: "ipv6-no-route",
            scenarios: &[
                "latency",
                "pod-to-pod",
                "all-nodes",
                "node-to-pod",
                "localhost",
                "dual-stack-service",
                "host-port",
            ],
            // The fixtures of the last two sit on both workers.
            must_fail: [
                WORKERS_CUT_APART,
                &[
                    "dual-stack-service::by-cluster-ip",
                    "host-port::tcp-from-other-node",
                    "host-port::udp-from-other-node",
                ],
            ]
            .concat(),
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::UnexpectedOutcome,
        },
        // netconform-worker's ip6tables drops what it forwards (the bridge
        // too: bridged frames pass FORWARD under br_netfilter): every IPv6
        // path to or from its pods fails, loopback and IPv4 do not.
        FaultCase {
            fault: "ipv6-forward-dropped",
            scenarios: &[
                "pod-to-pod",
                "node-to-pod",
                "localhost",
                "dual-stack-service",
                "host-port",
            ],
            must_fail: vec![
                // Backend and client on the two workers.
                "dual-stack-service::by-cluster-ip",
                // hp-tcp and hp-udp get the first schedulable node, the
                // fault's; a hostPort is forwarded to its pod on that node.
                "host-port::tcp-from-other-node",
                "host-port::udp-from-other-node",
                "host-port::tcp-from-harness",
                "host-port::udp-from-harness",
                "pod-to-pod::tcp-same-node",
                "pod-to-pod::udp-same-node",
                "pod-to-pod::http-same-node",
                "pod-to-pod::icmp-same-node",
                "pod-to-pod::tcp-other-node",
                "pod-to-pod::udp-other-node",
                "pod-to-pod::http-other-node",
                "pod-to-pod::icmp-other-node",
                "node-to-pod::tcp",
                "node-to-pod::udp",
                "node-to-pod::http",
                "node-to-pod::icmp",
            ],
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::UnexpectedOutcome,
        },
        FaultCase {
            fault: "snat",
            scenarios: &["pod-to-pod", "all-nodes", "pod-ip", "localhost"],
            must_fail: vec![
                "pod-to-pod::tcp-other-node",
                "pod-to-pod::udp-other-node",
                "pod-to-pod::http-other-node",
                "all-nodes::tcp",
                "all-nodes::udp",
                "all-nodes::http",
                "pod-ip::peers-see-the-same-address",
            ],
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::SourceRewritten,
        },
        FaultCase {
            fault: "no-route",
            scenarios: &[
                "latency",
                "pod-to-pod",
                "all-nodes",
                "node-to-pod",
                "localhost",
                "np-deny-ingress",
            ],
            // The policy world's pods on the two workers cannot reach each
            // other without any policy: its copies stop at their baseline,
            // and every policy case fails at once with those probes.
            must_fail: [
                WORKERS_CUT_APART,
                &[
                    "np-deny-ingress::tcp-80",
                    "np-deny-ingress::tcp-81",
                    "np-deny-ingress::udp-80",
                    "np-deny-ingress::udp-81",
                    "np-deny-ingress::deleting-the-policy-restores-traffic",
                ],
            ]
            .concat(),
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::UnexpectedOutcome,
        },
        // The overlay's own fault (--cni flannel only): the same pair of
        // workers as no-route loses its pod traffic, this time because the
        // VXLAN datagrams between them are dropped.
        FaultCase {
            fault: "vxlan-blocked",
            scenarios: &[
                "latency",
                "pod-to-pod",
                "all-nodes",
                "node-to-pod",
                "localhost",
            ],
            must_fail: WORKERS_CUT_APART.to_vec(),
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::UnexpectedOutcome,
        },
        FaultCase {
            fault: "dns-down",
            scenarios: &["dns-records", "cluster-ip"],
            must_fail: vec![
                "dns-records::service-a-record-is-cluster-ip",
                "dns-records::short-name-through-search-path",
                "dns-records::headless-returns-ready-pod-ips",
                "dns-records::per-pod-record",
                "dns-records::srv-for-named-port",
                "dns-records::srv-headless",
                "dns-records::unknown-name-is-nxdomain",
                "dns-records::headless-drops-an-unready-pod",
                "dns-records::statefulset-pod-record",
                "dns-records::service-ptr-record",
                "dns-records::statefulset-pod-ptr-record",
                "dns-records::kubernetes-service-name",
                "dns-records::large-answer-falls-back-to-tcp",
                "dns-records::service-a-record-over-tcp",
                "dns-records::headless-over-tcp",
                "dns-records::srv-over-tcp",
                "cluster-ip::by-short-name",
                "cluster-ip::by-name-and-namespace",
                "cluster-ip::by-fqdn",
                "cluster-ip::external-name-resolves-to-its-target",
                "cluster-ip::type-changed-from-node-port-to-external-name",
            ],
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::UnexpectedOutcome,
        },
        // kube-proxy's ClientIP affinity rules gone on one worker (the
        // ClusterIP client's node, and a NodePort's node): only the affinity
        // checks fail (spread and every other Service work).
        FaultCase {
            fault: "affinity-ignored",
            scenarios: &["cluster-ip", "nodeport"],
            must_fail: vec![
                "cluster-ip::client-ip-affinity",
                "cluster-ip::client-ip-affinity-with-timeout",
                "cluster-ip::affinity-switched-on-in-place",
                "cluster-ip::node-port-affinity-switched-on-in-place",
                "nodeport::client-ip-affinity",
            ],
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::SpreadDespiteAffinity,
        },
        // kube-proxy on the cluster-ip client's node never hears of a Service
        // update: the Service created as ExternalName gets no rules there when
        // it becomes a ClusterIP and then a NodePort Service (every later step
        // fails); CoreDNS follows, so the step back to ExternalName passes,
        // and so does every Service created as it stays.
        FaultCase {
            fault: "service-stale-updates",
            scenarios: &["cluster-ip"],
            must_fail: vec![
                "cluster-ip::type-changed-from-external-name-to-cluster-ip",
                "cluster-ip::affinity-switched-on-in-place",
                "cluster-ip::affinity-switched-off-in-place",
                "cluster-ip::type-changed-from-cluster-ip-to-node-port",
                "cluster-ip::node-port-affinity-switched-on-in-place",
            ],
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::UnexpectedOutcome,
        },
        // kube-proxy on the cluster-ip client's node reads one EndpointSlice
        // per Service: the Service split over two slices reaches one backend
        // from there, and of the Service split by port, the port whose slice
        // comes second has no endpoint there. Every one-slice Service works.
        FaultCase {
            fault: "endpoint-slices-first-only",
            scenarios: &["cluster-ip"],
            must_fail: vec![
                "cluster-ip::endpoints-in-several-slices",
                "cluster-ip::port-9001-in-its-own-slice",
            ],
            may_fail: &[],
            // The EndpointSlice controller's two slices of `named-ports`
            // have random names: the port whose slice sorts second loses
            // its endpoint.
            one_must_fail: &[
                "cluster-ip::named-port-9000-served-by-its-pod",
                "cluster-ip::named-port-9001-served-by-its-pod",
            ],
            symptom: Symptom::EndpointsMissed,
        },
        // hostPorts lead nowhere; everything else works.
        FaultCase {
            fault: "hostport-off",
            scenarios: &["host-port", "nodeport"],
            must_fail: vec![
                "host-port::tcp-from-other-node",
                "host-port::udp-from-other-node",
                "host-port::tcp-from-harness",
                "host-port::udp-from-harness",
                "host-port::same-port-on-another-host-ip",
            ],
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::UnexpectedOutcome,
        },
        // portmap binds every hostPort to all of its node's addresses: the
        // port bound to 127.0.0.1 alone answers on the node's address. Of the
        // two pods sharing a port on different hostIPs, the one whose rule
        // portmap put first answers there, whichever it is.
        FaultCase {
            fault: "hostport-ignores-host-ip",
            scenarios: &["host-port"],
            must_fail: vec!["host-port::loopback-host-ip-not-on-node-address"],
            may_fail: &["host-port::same-port-on-another-host-ip"],
            one_must_fail: &[],
            symptom: Symptom::AnsweredWhereItMustNot,
        },
        // No hairpin on the bridge: a pod reaching itself through its own
        // Service times out; every other Service path answers.
        FaultCase {
            fault: "hairpin-off",
            scenarios: &["cluster-ip"],
            must_fail: vec!["cluster-ip::hairpin"],
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::UnexpectedOutcome,
        },
        // Pods cut off from the API server, pod-to-pod untouched.
        FaultCase {
            fault: "apiserver-from-pods-blocked",
            scenarios: &["all-nodes"],
            must_fail: vec!["all-nodes::api-server-through-kubernetes-service"],
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::UnexpectedOutcome,
        },
        // ping dropped, TCP/UDP/HTTP untouched: exactly the ICMP checks fail.
        FaultCase {
            fault: "icmp-blocked",
            scenarios: &["pod-to-pod", "node-to-pod"],
            must_fail: vec![
                "pod-to-pod::icmp-same-node",
                "pod-to-pod::icmp-other-node",
                "node-to-pod::icmp",
            ],
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::UnexpectedOutcome,
        },
        // DNS answers UDP but not TCP: exactly the over-TCP lookups fail.
        FaultCase {
            fault: "dns-tcp-blocked",
            scenarios: &["dns-records"],
            must_fail: vec![
                "dns-records::service-a-record-over-tcp",
                "dns-records::headless-over-tcp",
                "dns-records::srv-over-tcp",
                // Its answer comes truncated over UDP; the TCP retry is dropped.
                "dns-records::large-answer-falls-back-to-tcp",
            ],
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::UnexpectedOutcome,
        },
        // The cluster DNS lost its reverse zones: exactly the PTR lookups fail
        // (NXDOMAIN from the catch-all block), every forward lookup answers.
        FaultCase {
            fault: "dns-no-reverse",
            scenarios: &["dns-records"],
            must_fail: vec![
                "dns-records::service-ptr-record",
                "dns-records::statefulset-pod-ptr-record",
            ],
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::UnexpectedOutcome,
        },
        // The testbed breaks kube-proxy on netconform-worker, where the
        // cluster-ip scenario's client runs (placement is deterministic);
        // `solo` (hairpin) runs on the other worker.
        FaultCase {
            fault: "service-rules-off",
            scenarios: &["cluster-ip", "pod-to-pod"],
            must_fail: vec![
                "cluster-ip::by-cluster-ip",
                "cluster-ip::by-short-name",
                "cluster-ip::by-name-and-namespace",
                "cluster-ip::by-fqdn",
                "cluster-ip::named-target-port",
                "cluster-ip::udp-port",
                "cluster-ip::spreads-over-backends",
                "cluster-ip::endpoints-in-several-slices",
                "cluster-ip::port-9000-in-its-own-slice",
                "cluster-ip::port-9001-in-its-own-slice",
                "cluster-ip::named-port-9000-served-by-its-pod",
                "cluster-ip::named-port-9001-served-by-its-pod",
                "cluster-ip::client-ip-affinity",
                "cluster-ip::client-ip-affinity-with-timeout",
                "cluster-ip::external-name-resolves-to-its-target",
                "cluster-ip::type-changed-from-external-name-to-cluster-ip",
                "cluster-ip::affinity-switched-on-in-place",
                "cluster-ip::affinity-switched-off-in-place",
                "cluster-ip::type-changed-from-cluster-ip-to-node-port",
                "cluster-ip::node-port-affinity-switched-on-in-place",
                "cluster-ip::type-changed-from-node-port-to-external-name",
            ],
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::UnexpectedOutcome,
        },
        // TCP adapts to the smaller path MTU; near-MTU datagrams are lost.
        FaultCase {
            fault: "mtu",
            scenarios: &["large-packets", "pod-to-pod"],
            must_fail: vec!["large-packets::udp-near-mtu"],
            // Both directions cross the faulted node (node-pairs). Full-size
            // TCP segments towards it pass while they travel as GSO batches
            // (the veth MTU check lets those through) and vanish when sent
            // one by one (a retransmission): some transfers stall, some do
            // not. A real MTU black hole, but not one every run shows.
            may_fail: &["large-packets::tcp-1mib-transfer"],
            one_must_fail: &[],
            symptom: Symptom::UnexpectedOutcome,
        },
        // One node pair 40 ms slower: only the quiet node-pair checks may
        // notice (the functional checks' timeouts are far larger), and they
        // must name the pair. A 40 ms round trip also cuts what a tenth-of-a-second
        // TCP stream carries, so the throughput pairs see it too.
        slow_pair("slow-pair"),
        // The same 40 ms in IPv6 alone: the latency twins name the pair, and
        // the IPv4 pairs stay within the baseline.
        slow_pair("ipv6-slow-pair"),
        outside_host_case("outside-unreachable", Symptom::UnexpectedOutcome),
        // The same in IPv6 alone: the outside host's IPv6 twins fail, its
        // IPv4 checks and every pod-to-pod one pass.
        outside_host_case("ipv6-outside-unreachable", Symptom::UnexpectedOutcome),
        outside_host_case("outside-foreign-snat", Symptom::SourceNeitherPodNorNode),
        // One node pair shaped to 20 Mbit/s: latency stays (small packets pass
        // unhindered), only the throughput pairs may fail, naming the pair.
        throttled_pair("throttled-pair"),
        // The same cap in IPv6 alone: the IPv6 throughput twin names the
        // pair, and the IPv4 pairs keep their bandwidth.
        throttled_pair("ipv6-throttled-pair"),
        FaultCase {
            fault: "netpol-off",
            scenarios: &[
                "np-no-policy",
                "np-deny-ingress",
                "np-from-pod",
                "np-from-namespace",
                "np-and-or",
                "np-ports",
                "np-deny-egress",
                "np-egress-to-pod",
                "np-ip-block",
                "np-union",
                "np-any-namespace",
                "np-deny-all",
                "np-match-expressions",
                "np-allow-all-wins",
                "np-protocol-only",
                "np-egress-ip-block",
                "np-egress-peers",
                "np-updates",
            ],
            must_fail: vec![], // filled in below: every matrix check but np-no-policy's
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::MatrixMismatch,
        },
        // The enforcers follow new and deleted objects but not updates: every
        // check after a change under the policies fails (the last one too:
        // the policy update before it is still missed); cases that only
        // create policies pass.
        FaultCase {
            fault: "netpol-stale-updates",
            scenarios: &["np-updates", "np-deny-all", "np-from-namespace"],
            must_fail: NP_UPDATES_CHANGES.to_vec(),
            may_fail: &[],
            one_must_fail: &[],
            symptom: Symptom::MatrixMismatch,
        },
    ]
}

/// The checks of np-updates that follow a change under its policies.
const NP_UPDATES_CHANGES: &[&str] = &[
    "np-updates::namespace-labelled-into-a-peer",
    "np-updates::pod-labelled-into-a-peer",
    "np-updates::pod-labelled-into-isolation",
    "np-updates::policy-spec-updated",
    "np-updates::label-removed-from-an-isolated-pod",
];

/// The testbed's pod network and enforcer, as `testbed up --cni/--netpol`
/// recorded them (bridge and testbed when it recorded nothing).
/// Why a fault cannot be injected on this testbed (it breaks something the
/// testbed does not run, e.g. an overlay on --cni bridge), if it cannot. The
/// testbed owns that rule: `fault --applies` exits 3 with the reason.
fn not_applicable(fault: &str) -> Result<Option<String>, String> {
    let args = ["fault", "--applies", fault];
    let out = testbed_command(&args)
        .output()
        .map_err(|e| format!("running testbed/testbed: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(None),
        Some(3) => Ok(Some(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )),
        _ => Err(format!(
            "testbed/testbed {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

fn expected_failures(case: &FaultCase, ran: &BTreeSet<String>) -> BTreeSet<String> {
    if case.fault == "netpol-off" {
        let every_matrix: Vec<String> = case
            .scenarios
            .iter()
            .filter(|s| **s != "np-no-policy")
            .flat_map(|s| PER_PAIR.iter().map(move |c| format!("{s}::{c}")))
            .chain(NP_UPDATES_CHANGES.iter().map(|c| c.to_string()))
            .collect();
        let names: Vec<&str> = every_matrix.iter().map(String::as_str).collect();
        return judged(case, &names, ran);
    }
    judged(case, &case.must_fail, ran)
}

/// `bash testbed/testbed ARGS...`, for callers that want its status or its output.
fn testbed_command(args: &[&str]) -> Command {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testbed/testbed");
    let mut command = Command::new("bash");
    command.arg(script).args(args);
    command
}

fn testbed(args: &[&str]) -> Result<(), String> {
    let status = testbed_command(args)
        .status()
        .map_err(|e| format!("running testbed/testbed: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "testbed/testbed {} failed ({status})",
            args.join(" ")
        ))
    }
}

/// Runs a case and, when NETCONFORM_FAULT_RESULTS names a file, appends its
/// outcome there.
fn run_and_record(case: &FaultCase) -> Result<(), Failed> {
    let started = Instant::now();
    let outcome = run_case(case);
    let (verdict, seen) = match &outcome {
        Ok(tally) => ("ok", tally.clone()),
        Err(e) => (
            "FAILED",
            e.message()
                .unwrap_or("no message")
                .chars()
                .take(300)
                .collect(),
        ),
    };
    record(case.fault, verdict, &seen, started.elapsed().as_secs())?;
    outcome.map(|_| ())
}

fn record(fault: &str, verdict: &str, seen: &str, seconds: u64) -> Result<(), String> {
    let Ok(file) = std::env::var("NETCONFORM_FAULT_RESULTS") else {
        return Ok(());
    };
    let one_line = seen.replace(['\t', '\n'], " ");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| writeln!(f, "{fault}\t{verdict}\t{one_line}\t{seconds}"))
        .map_err(|e| format!("NETCONFORM_FAULT_RESULTS={file}: {e}"))
}

/// Injects the fault, runs its scenarios, heals, and judges: Ok with the
/// tally ("N checks run, M failed as expected, K passed") when exactly the
/// expected checks failed with the fault's symptom.
fn run_case(case: &FaultCase) -> Result<String, Failed> {
    testbed(&["heal"])?;
    testbed(&["fault", case.fault])?;
    let scenarios: BTreeSet<&str> = case.scenarios.iter().copied().collect();
    let with_twins = breaks(case) != Breaks::Ipv4;
    let records = netconform_suite::run_checks(&|trial| {
        (with_twins || !trial.ends_with("::ipv6"))
            && trial
                .split("::")
                .next()
                .is_some_and(|s| scenarios.contains(s))
    });
    // Heal whatever the run did, before judging it.
    let healed = testbed(&["heal"]);
    let records = records?;
    healed?;

    let failed: BTreeSet<String> = records
        .iter()
        .filter(|r| r.status.failure().is_some())
        .map(|r| r.trial.clone())
        .collect();
    let passed = records.iter().filter(|r| r.status.is_passed()).count();
    let ran: BTreeSet<String> = records
        .iter()
        .filter(|r| !matches!(r.status, Status::Skipped(_)))
        .map(|r| r.trial.clone())
        .collect();
    let want = expected_failures(case, &ran);
    let as_expected = failed.intersection(&want).count();
    // Failures beyond the required ones (a may-fail check that did fail, or a
    // wrong one: judged below) are counted too, so the numbers add up.
    let others = match failed.len() - as_expected {
        0 => String::new(),
        n => format!(", {n} other{} failed", if n == 1 { "" } else { "s" }),
    };
    let skipped = match records.len() - ran.len() {
        0 => String::new(),
        n => format!(" ({n} skipped here)"),
    };
    let tally = format!(
        "{} checks run{skipped}, {as_expected} failed as expected{others}, {passed} passed",
        ran.len(),
    );
    println!("fault {}: {tally}", case.fault);
    let mut without_symptom = Vec::new();
    for r in &records {
        let Some(failure) = r.status.failure() else {
            continue;
        };
        println!("  failed: {}: {}", r.trial, summary(failure));
        if !failure
            .judgement()
            .is_some_and(|j| case.symptom.shown_by(j))
        {
            without_symptom.push(r.trial.clone());
        }
    }
    if !without_symptom.is_empty() {
        return Err(format!(
            "fault {}: failed without the fault's symptom ({:?}): {without_symptom:?}",
            case.fault, case.symptom
        )
        .into());
    }
    let mut missed: Vec<&String> = want.difference(&failed).collect();
    // One of them in each family judged.
    let one_of = judged_per_family(case, case.one_must_fail, &ran);
    let one_missed: Vec<String> = one_of
        .iter()
        .filter(|group| !group.is_empty() && group.is_disjoint(&failed))
        .map(|group| format!("one of {group:?}"))
        .collect();
    missed.extend(&one_missed);
    let allowed: BTreeSet<String> = judged(case, case.may_fail, &ran)
        .into_iter()
        .chain(one_of.into_iter().flatten())
        .collect();
    let extra: Vec<&String> = failed
        .difference(&want)
        .filter(|t| !allowed.contains(*t))
        .collect();
    if missed.is_empty() && extra.is_empty() {
        Ok(tally)
    } else {
        Err(format!(
            "fault {}: checks that should have failed but passed: {missed:?}; checks that failed but should have passed: {extra:?}",
            case.fault
        )
        .into())
    }
}

/// One line for the log: the kind of failure and the first thing it says.
fn summary(failure: &Failure) -> String {
    let text = failure.to_string();
    let first = match failure.judgement() {
        Some(j) if !j.check_problems.is_empty() && j.failed_probes.is_empty() => {
            j.check_problems[0].to_string()
        }
        Some(j) => j
            .failed_probes
            .first()
            .and_then(|p| p.problems.first())
            .map(ToString::to_string)
            .unwrap_or_default(),
        None => text.lines().next().unwrap_or_default().to_string(),
    };
    let mismatches = failure
        .judgement()
        .and_then(|j| j.matrix.as_ref())
        .map(|m| {
            format!(
                " ({} cells differ from the expected matrix)",
                m.mismatches()
            )
        })
        .unwrap_or_default();
    format!(
        "[{}] {}{mismatches}",
        failure.kind(),
        first.chars().take(200).collect::<String>()
    )
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // The cases share one cluster and break it in turn: one at a time.
    args.test_threads = Some(1);
    let enabled = std::env::var("NETCONFORM_FAULT_TESTS").is_ok_and(|v| v == "1");
    if !enabled && !args.list {
        eprintln!("netconform faults: NETCONFORM_FAULT_TESTS is not 1; the fault trials are ignored (they break the testbed on purpose, as root).");
    }
    let trials = cases()
        .into_iter()
        .map(|case| {
            let name = format!("fault::{}", case.fault);
            // Asked only when the trials run: listing needs no testbed.
            let reason = match (enabled && !args.list).then(|| not_applicable(case.fault)) {
                Some(Ok(reason)) => reason,
                Some(Err(e)) => {
                    // Not knowing is not "ignored": the trial runs and fails on it.
                    return Trial::test(name, move || Err(e.into()));
                }
                None => None,
            };
            if let Some(reason) = &reason {
                eprintln!("netconform faults: {name} is ignored: {reason}");
                if let Err(e) = record(case.fault, "not applicable", reason, 0) {
                    return Trial::test(name, move || Err(e.into()));
                }
            }
            Trial::test(name, move || run_and_record(&case))
                .with_ignored_flag(!enabled || reason.is_some())
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
