//! Verdicts as text: the failure messages of libtest, JUnit and results.json.
//! Nothing else in the harness formats a verdict.

use crate::scenario::Expectation;
use crate::verdict::*;
use netconform_protocol::{DnsQuery, DnsTransport};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Display, Formatter};

impl Display for WorldStopped {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            WorldStopped::SetupFailed { world, error } => {
                write!(f, "setting up the shared world {world} failed: {error}")
            }
            WorldStopped::ChangesNotUndone {
                world,
                after,
                error,
            } => write!(
                f,
                "the shared world {world} is not back to all-allowed after {after}: {error}"
            ),
            WorldStopped::NotAllowedAtStart {
                world,
                check,
                failure,
            } => write!(
                f,
                "the shared world {world} is not all-allowed before any policy: {check}: {failure}"
            ),
            WorldStopped::NotRestored {
                world,
                after,
                check,
                failure,
            } => write!(
                f,
                "the shared world {world} is not back to all-allowed after {after}: {check}: {failure}"
            ),
        }
    }
}

impl Display for Failure {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Failure::SetupFailed { error } => write!(f, "scenario setup failed: {error}"),
            Failure::ActionFailed { action, error } => {
                write!(f, "action {action} failed: {error}")
            }
            Failure::NoWorldLeft { copies } => {
                write!(f, "no copy of the shared world could run this scenario:")?;
                for c in copies {
                    write!(f, "\n  {c}")?;
                }
                Ok(())
            }
            Failure::CannotPlan { error } => write!(f, "cannot plan the check: {error}"),
            Failure::ProbesCouldNotRun { errors } => {
                write!(f, "probes could not run:")?;
                for e in errors {
                    write!(f, "\n  {} -> {}: {}", e.from_pod, e.target, e.error)?;
                }
                Ok(())
            }
            Failure::Judged(j) => j.fmt(f),
            Failure::DidNotConverge {
                limit_ms,
                rounds,
                last,
            } => {
                write!(
                    f,
                    "did not converge within {limit_ms} ms ({rounds} rounds); last round:\n{last}"
                )
            }
            Failure::ClusterIpChanged { changes, also } => {
                let lines: Vec<String> = changes
                    .iter()
                    .map(|c| {
                        format!(
                            "service {}: clusterIP changed from {} to {}",
                            c.service, c.before, c.after
                        )
                    })
                    .collect();
                write!(f, "{}", lines.join("\n"))?;
                if let Some(also) = also {
                    write!(f, "\n{also}")?;
                }
                Ok(())
            }
        }
    }
}

impl Display for Judgement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.failed_probes.is_empty() {
            writeln!(
                f,
                "every one of the {} probes met its expectation, but the check as a whole did not:",
                self.probes
            )?;
        } else {
            writeln!(
                f,
                "{} of {} probes failed",
                self.failed_probes.len(),
                self.probes
            )?;
        }
        if let Some(m) = &self.matrix {
            write!(f, "{m}")?;
        }
        let mut lines: Vec<String> = self.failed_probes.iter().map(ToString::to_string).collect();
        lines.extend(self.check_problems.iter().map(ToString::to_string));
        write!(f, "  {}", lines.join("\n  "))
    }
}

impl Display for Origin {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Origin::HarnessHost => write!(f, "the harness host"),
            Origin::HostNetwork {
                namespace,
                pod,
                node,
                ip,
            } => write!(f, "{namespace}/{pod} (host network of {node}, {ip})"),
            Origin::Pod {
                namespace,
                pod,
                node,
                ip,
            } => write!(f, "{namespace}/{pod} ({ip}, node {node})"),
        }
    }
}

impl Display for ProbeFailure {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {}",
            self.protocol.as_str(),
            self.origin,
            self.target
        )?;
        for p in &self.problems {
            write!(f, "\n    {p}")?;
        }
        Ok(())
    }
}

impl Display for ProbeProblem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ProbeProblem::NoSamples => write!(f, "the agent returned no samples"),
            ProbeProblem::UnexpectedOutcome { expected, samples, planned, observed, first, first_detail, first_queries, no_route_to_host } => {
                write!(
                    f,
                    "expected {} on all {samples} samples, observed {} (first unexpected: {first}: {})",
                    expectation(*expected),
                    observed.iter().map(|(o, n)| format!("{n} {o}")).collect::<Vec<_>>().join(", "),
                    first_detail.as_deref().unwrap_or("no detail")
                )?;
                if samples < planned {
                    write!(f, "; the probe stopped after {samples} of its {planned} samples")?;
                }
                if !first_queries.is_empty() {
                    write!(f, "\n    DNS queries of that sample: {}", query_trace(first_queries))?;
                }
                if *no_route_to_host {
                    write!(
                        f,
                        "\n    \"No route to host\" is a neighbour (ARP/NDP) resolution that failed on the way: on a bridge CNI, typically a node \
                         that still remembers the MAC of an earlier pod with the same IP; toward a Service address, a flow the node did not \
                         translate (no rule yet, or a conntrack entry from before there was one) and routed as an ordinary address \
                         (docs/verdicts.md)"
                    )?;
                }
                Ok(())
            }
            ProbeProblem::SourceAddressRewritten { expected, seen } => write!(
                f,
                "source address: expected the client's pod IP {expected} (no NAT), the server saw {}",
                seen.iter().map(|(ip, n)| format!("{ip} on {n} samples")).collect::<Vec<_>>().join(", ")
            ),
            ProbeProblem::NoDnsTcpFallback { samples } => write!(
                f,
                "{samples} answered sample(s) did not come truncated over UDP and then whole over TCP (the answer is larger than 512 bytes)"
            ),
            ProbeProblem::SourceNeitherPodNorNode { pod_ip, node_ip, seen } => write!(
                f,
                "source address: expected the client's pod IP {pod_ip} or its node's IP {node_ip} (SNAT to the node), the server saw {}",
                seen.iter().map(|(ip, n)| format!("{ip} on {n} samples")).collect::<Vec<_>>().join(", ")
            ),
            ProbeProblem::SpreadDespiteAffinity { servers } => write!(
                f,
                "expected one backend for all of this client's connections (session affinity), got {}",
                servers.iter().map(|(s, n)| format!("{n} from {s}")).collect::<Vec<_>>().join(", ")
            ),
            ProbeProblem::AnsweredByOtherPod { expected, got } => {
                write!(f, "expected the answer from this pod ({expected}), got it from {}", set(got))
            }
            ProbeProblem::DnsAnswers { expected, got } => write!(f, "answers: expected exactly {}, got {}", set(expected), set(got)),
            ProbeProblem::SrvRecords { count, port, got } => {
                write!(f, "SRV: expected {count} record(s) on port {port}, got [{}]", got.join("; "))
            }
            ProbeProblem::PodIpNotOwned { missing, own } => {
                write!(f, "status.podIP {} is not among the pod's own addresses {}", set(missing), set(own))
            }
            ProbeProblem::Hostname { expected, got } => write!(f, "hostname: expected {expected}, the pod says {got}"),
        }
    }
}

impl Display for CheckProblem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            CheckProblem::ServedByForbidden { forbidden, hits } => write!(
                f,
                "expected no answer from {}, got {}",
                set(forbidden),
                hits.iter().map(|(s, n)| format!("{n} from {s}")).collect::<Vec<_>>().join(", ")
            ),
            CheckProblem::TooFewBackends { want, got } => write!(
                f,
                "expected answers from at least {want} different backends, got {} ({})",
                got.len(),
                got.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            CheckProblem::LatencyOverThreshold { percentile, limit_ms, observed_us } => write!(
                f,
                "latency {} {:.3} ms is over the {limit_ms} ms threshold",
                percentile.as_str(),
                *observed_us as f64 / 1000.0
            ),
            CheckProblem::NodePairOutlier { from, to, p50_us, baseline_p50_us, ratio, floor_ms } => write!(
                f,
                "node pair {from} -> {to}: p50 {:.3} ms is {:.1}x the cluster's baseline p50 {:.3} ms (an outlier is over {ratio}x and over {floor_ms} ms above it)",
                *p50_us as f64 / 1000.0,
                *p50_us as f64 / (*baseline_p50_us).max(1) as f64,
                *baseline_p50_us as f64 / 1000.0,
            ),
            CheckProblem::ThroughputPairOutlier { from, to, median_mbps, baseline_mbps, ratio, floor_mbps } => write!(
                f,
                "node pair {from} -> {to}: median throughput {median_mbps:.0} Mbit/s is 1/{:.1} of the cluster's baseline {baseline_mbps:.0} Mbit/s for {} pairs (an outlier is under 1/{ratio} and over {floor_mbps} Mbit/s below it)",
                baseline_mbps / median_mbps.max(f64::MIN_POSITIVE),
                if from == to { "same-node" } else { "cross-node" },
            ),
            CheckProblem::NoProbes => write!(f, "the check planned no probe"),
        }
    }
}

impl Percentile {
    pub fn as_str(self) -> &'static str {
        match self {
            Percentile::P50 => "p50",
            Percentile::P90 => "p90",
            Percentile::P99 => "p99",
        }
    }
}

/// Expected and observed connectivity as two tables (`.` connects, `X` does
/// not, `?` mixed), with mismatches marked `!` in the observed one.
impl Display for Matrix {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let cells: BTreeMap<(&str, &str), &MatrixCell> = self
            .cells
            .iter()
            .map(|c| ((c.from.as_str(), c.to.as_str()), c))
            .collect();
        let width = self
            .rows
            .iter()
            .chain(&self.columns)
            .map(String::len)
            .max()
            .unwrap_or(1);
        for (title, observed) in [
            (
                "expected (rows: from, columns: to; . connects, X blocked):",
                false,
            ),
            ("observed (! differs from expected):", true),
        ] {
            write!(f, "{title}\n{:width$}", "")?;
            for c in &self.columns {
                write!(f, " {c:>width$}")?;
            }
            writeln!(f)?;
            for r in &self.rows {
                write!(f, "{r:width$}")?;
                for c in &self.columns {
                    let cell = match cells.get(&(r.as_str(), c.as_str())) {
                        Some(cell) if observed && cell.expected != cell.observed => {
                            format!("{}!", reach(cell.observed))
                        }
                        Some(cell) if observed => reach(cell.observed).to_string(),
                        Some(cell) => reach(cell.expected).to_string(),
                        None => "-".to_string(),
                    };
                    write!(f, " {cell:>width$}")?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

fn reach(r: Reach) -> char {
    match r {
        Reach::Connects => '.',
        Reach::Blocked => 'X',
        Reach::Mixed => '?',
    }
}

impl Display for Skip {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Skip::FeatureAbsent { feature, why } => write!(f, "feature {feature}: {why}"),
            Skip::NotInProfile { feature, profile } => {
                write!(f, "feature {feature} is not in profile {profile}")
            }
            Skip::Placement { reason } => write!(f, "{reason}"),
            Skip::ClusterNotQuiet { waited_s, runs } => write!(
                f,
                "a quiet measurement needs the cluster to itself, and other netconform runs were still active after {waited_s}s: {}",
                runs.join(", ")
            ),
        }
    }
}

impl Display for Absence {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Absence::DeclaredUnsupported { source } => {
                write!(f, "declared unsupported in {source}")
            }
            Absence::NoIpv6PodCidr => write!(f, "no node has an IPv6 pod CIDR"),
            Absence::NoOutsideHostNamed => write!(
                f,
                "no host outside the cluster is named ({}=<ip> names one; the testbed's `testbed env` does)",
                crate::cluster::OUTSIDE_HOST_VAR
            ),
            Absence::NoOutsideHostInFamily { family } => write!(
                f,
                "the outside host is named without an {} address ({}=<ipv4>,<ipv6> names one per family)",
                family.label(),
                crate::cluster::OUTSIDE_HOST_VAR
            ),
            Absence::HarnessInCluster => write!(
                f,
                "netconform runs inside the cluster (in-cluster config), so there is no machine outside it to probe from"
            ),
        }
    }
}

/// The text of a verdict: the failure or skip message, none for a pass.
pub fn message(status: &Status) -> Option<String> {
    match status {
        Status::Passed => None,
        Status::Failed(f) => Some(f.to_string()),
        Status::Skipped(s) => Some(s.to_string()),
    }
}

fn expectation(e: Expectation) -> &'static str {
    match e {
        Expectation::Connected => "connected",
        Expectation::Refused => "refused",
        Expectation::TimedOut => "timed_out",
        Expectation::Blocked => "blocked (refused or timed_out)",
        Expectation::NotFound => "not_found",
    }
}

/// `name. A udp try 1 to server: nxdomain 0.4 ms; ...`: what the resolver asked and got.
fn query_trace(queries: &[DnsQuery]) -> String {
    queries
        .iter()
        .map(|q| {
            let transport = match q.transport {
                DnsTransport::Udp => "udp",
                DnsTransport::Tcp => "tcp",
            };
            format!(
                "{} {:?} {transport} try {} to {}: {} {:.1} ms",
                q.name,
                q.record,
                q.attempt,
                q.server,
                q.result.as_str(),
                q.latency_us as f64 / 1000.0
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn set(s: &BTreeSet<String>) -> String {
    if s.is_empty() {
        "{}".into()
    } else {
        format!("{{{}}}", s.iter().cloned().collect::<Vec<_>>().join(", "))
    }
}
