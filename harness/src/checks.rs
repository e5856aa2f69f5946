//! From a scenario check to probe specs, and from probe results to a verdict
//! that says expected vs observed. Pure: no cluster here.

use crate::scenario::{Check, Expectation, Protocol, SourceIp, DEFAULT_HTTP_PORT, DEFAULT_TCP_PORT, DEFAULT_UDP_PORT};
use crate::stats::{summarise, LatencySummary};
use netconform_agent::protocol::{Attempt, Outcome, ProbeKind, ProbeResult, ProbeSpec};
use serde::Serialize;
use std::collections::BTreeMap;

/// A fixture pod as the run found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub pod: String,
    pub namespace: String,
    pub ip: String,
    pub node: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", content = "message", rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed(String),
    Skipped(String),
}

pub fn port_of(check: &Check) -> u16 {
    check.port.unwrap_or(match check.protocol {
        Protocol::Tcp => DEFAULT_TCP_PORT,
        Protocol::Udp => DEFAULT_UDP_PORT,
        Protocol::Http => DEFAULT_HTTP_PORT,
    })
}

/// The probe the agent in `check.from` runs against `to`.
pub fn probe_spec(id: &str, check: &Check, to: &Endpoint) -> ProbeSpec {
    let (host, port) = (to.ip.clone(), port_of(check));
    let kind = match check.protocol {
        Protocol::Tcp => ProbeKind::Tcp { host, port },
        Protocol::Udp => ProbeKind::Udp { host, port },
        Protocol::Http => ProbeKind::Http { host, port, path: check.path.clone().unwrap_or_else(|| "/clientip".into()) },
    };
    ProbeSpec { id: id.to_string(), kind, timeout_ms: check.timeout_ms, samples: check.samples }
}

fn matches(expect: Expectation, outcome: Outcome) -> bool {
    match expect {
        Expectation::Connected => outcome == Outcome::Connected,
        Expectation::Refused => outcome == Outcome::Refused,
        Expectation::TimedOut => outcome == Outcome::TimedOut,
        Expectation::Blocked => matches!(outcome, Outcome::Refused | Outcome::TimedOut),
    }
}

fn expectation_text(expect: Expectation) -> &'static str {
    match expect {
        Expectation::Connected => "connected",
        Expectation::Refused => "refused",
        Expectation::TimedOut => "timed_out",
        Expectation::Blocked => "blocked (refused or timed_out)",
    }
}

/// "18 connected, 2 timed_out"
fn tally(attempts: &[Attempt]) -> String {
    let mut counts: BTreeMap<Outcome, usize> = BTreeMap::new();
    for a in attempts {
        *counts.entry(a.outcome).or_default() += 1;
    }
    counts.iter().map(|(o, n)| format!("{n} {o}")).collect::<Vec<_>>().join(", ")
}

/// Judges one check's probe result. Latency is summarised over the samples that
/// met the expectation (for a "connected" check, the successful ones).
pub fn evaluate(check: &Check, from: &Endpoint, to: &Endpoint, result: &ProbeResult) -> (Status, Option<LatencySummary>) {
    let attempts = &result.attempts;
    let total = attempts.len();
    let latency = summarise(attempts.iter().filter(|a| matches(check.expect, a.outcome)).map(|a| a.latency_us));
    let route = format!(
        "{} {}/{} ({}, node {}) -> {}/{} {}:{} (node {})",
        check.protocol.as_str(), from.namespace, from.pod, from.ip, from.node,
        to.namespace, to.pod, to.ip, port_of(check), to.node
    );
    let mut problems = Vec::new();

    if total == 0 {
        problems.push("the agent returned no samples".to_string());
    }
    let unexpected: Vec<&Attempt> = attempts.iter().filter(|a| !matches(check.expect, a.outcome)).collect();
    if !unexpected.is_empty() {
        let first = unexpected[0].detail.as_deref().unwrap_or("no detail");
        problems.push(format!(
            "expected {} on all {total} samples, observed {} (first unexpected: {}: {first})",
            expectation_text(check.expect),
            tally(attempts),
            unexpected[0].outcome
        ));
    }

    if check.assert.source_ip == Some(SourceIp::ClientPodIp) {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for a in attempts.iter().filter(|a| a.outcome == Outcome::Connected) {
            *seen.entry(a.seen_client_ip.clone().unwrap_or_else(|| "<not reported>".into())).or_default() += 1;
        }
        let wrong: Vec<String> =
            seen.iter().filter(|(ip, _)| **ip != from.ip).map(|(ip, n)| format!("{ip} on {n} samples")).collect();
        if !wrong.is_empty() {
            problems.push(format!(
                "source address: expected the client's pod IP {} (no NAT), the server saw {}",
                from.ip,
                wrong.join(", ")
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
                    problems.push(format!("latency {name} {:.3} ms is over the {limit} ms threshold", got as f64 / 1000.0));
                }
            }
        }
    }

    if problems.is_empty() {
        (Status::Passed, latency)
    } else {
        (Status::Failed(format!("{route}\n  {}", problems.join("\n  "))), latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Assertions, LatencyThresholds, Target};
    use rstest::rstest;

    fn check(expect: Expectation, source_ip: bool) -> Check {
        Check {
            name: "c".into(),
            description: String::new(),
            rule: None,
            features: vec![],
            from: "client".into(),
            to: Target::pod("server"),
            protocol: Protocol::Tcp,
            port: None,
            path: None,
            expect,
            assert: Assertions { source_ip: source_ip.then_some(SourceIp::ClientPodIp) },
            samples: 3,
            timeout_ms: 1000,
            latency: LatencyThresholds::default(),
        }
    }

    fn ep(pod: &str, ip: &str) -> Endpoint {
        Endpoint { pod: pod.into(), namespace: "ns".into(), ip: ip.into(), node: "n1".into() }
    }

    fn attempt(outcome: Outcome, seen: Option<&str>, latency_us: u64) -> Attempt {
        Attempt { outcome, latency_us, server: Some("server".into()), seen_client_ip: seen.map(Into::into), detail: None, answers: vec![] }
    }

    fn run(c: &Check, attempts: Vec<Attempt>) -> (Status, Option<LatencySummary>) {
        evaluate(c, &ep("client", "10.0.0.2"), &ep("server", "10.0.0.3"), &ProbeResult { id: "x".into(), attempts })
    }

    #[test]
    fn all_connected_from_the_client_ip_passes_with_latency() {
        let (status, latency) = run(&check(Expectation::Connected, true), vec![
            attempt(Outcome::Connected, Some("10.0.0.2"), 100),
            attempt(Outcome::Connected, Some("10.0.0.2"), 300),
        ]);
        assert_eq!(status, Status::Passed);
        assert_eq!(latency.unwrap().samples, 2);
    }

    #[test]
    fn snat_is_caught_and_named() {
        let (status, _) = run(&check(Expectation::Connected, true), vec![attempt(Outcome::Connected, Some("10.250.0.12"), 100)]);
        let Status::Failed(msg) = status else { panic!("{status:?}") };
        assert!(msg.contains("expected the client's pod IP 10.0.0.2 (no NAT), the server saw 10.250.0.12 on 1 samples"), "{msg}");
    }

    #[test]
    fn a_partial_failure_reports_the_tally() {
        let mut t = attempt(Outcome::TimedOut, None, 1_000_000);
        t.detail = Some("no answer within 1000 ms".into());
        let (status, _) = run(&check(Expectation::Connected, false), vec![attempt(Outcome::Connected, None, 100), t]);
        let Status::Failed(msg) = status else { panic!("{status:?}") };
        assert!(msg.contains("expected connected on all 2 samples, observed 1 connected, 1 timed_out"), "{msg}");
        assert!(msg.contains("no answer within 1000 ms"), "{msg}");
        assert!(msg.starts_with("tcp ns/client (10.0.0.2, node n1) -> ns/server 10.0.0.3:8080"), "{msg}");
    }

    #[rstest]
    #[case(Expectation::Blocked, Outcome::Refused, true)]
    #[case(Expectation::Blocked, Outcome::TimedOut, true)]
    #[case(Expectation::Blocked, Outcome::Connected, false)]
    #[case(Expectation::Refused, Outcome::TimedOut, false)]
    #[case(Expectation::TimedOut, Outcome::TimedOut, true)]
    fn expectations(#[case] expect: Expectation, #[case] outcome: Outcome, #[case] pass: bool) {
        let (status, _) = run(&check(expect, false), vec![attempt(outcome, None, 10)]);
        assert_eq!(status == Status::Passed, pass, "{status:?}");
    }

    #[test]
    fn latency_threshold_fails_the_check() {
        let mut c = check(Expectation::Connected, false);
        c.latency.p99_ms = Some(1.0);
        let (status, _) = run(&c, vec![attempt(Outcome::Connected, None, 5_000)]);
        let Status::Failed(msg) = status else { panic!("{status:?}") };
        assert!(msg.contains("latency p99 5.0") && msg.contains("ms is over the 1 ms threshold"), "{msg}");
    }

    #[test]
    fn no_samples_is_a_failure_not_a_pass() {
        let (status, _) = run(&check(Expectation::Blocked, false), vec![]);
        assert!(matches!(status, Status::Failed(_)));
    }
}
