//! JUnit XML (quick-junit): one testsuite per scenario, one testcase per check,
//! latency percentiles as testcase properties with their unit in the name.

use super::{CheckRecord, RunRecord};
use crate::verdict::Status;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::collections::BTreeMap;
use std::time::Duration;

pub fn report(run: &RunRecord) -> Report {
    let mut report = Report::new(format!("netconform run {}", run.run_id));
    report.set_time(Duration::from_millis(run.duration_ms));
    let mut suites: BTreeMap<&str, Vec<&CheckRecord>> = BTreeMap::new();
    for c in &run.checks {
        suites.entry(c.scenario.as_str()).or_default().push(c);
    }
    for (scenario, checks) in suites {
        let mut suite = TestSuite::new(scenario);
        suite.add_property(Property::new("run_id", run.run_id.as_str()));
        suite.add_property(Property::new("cluster", run.cluster.as_str()));
        suite.add_property(Property::new("server_version", run.server_version.as_str()));
        for c in checks {
            suite.add_test_case(test_case(c));
        }
        report.add_test_suite(suite);
    }
    report
}

fn test_case(c: &CheckRecord) -> TestCase {
    let status = match &c.status {
        Status::Passed => TestCaseStatus::success(),
        Status::Failed(failure) => {
            let message = failure.to_string();
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(message.lines().next().unwrap_or_default().to_string());
            s.set_description(message.as_str());
            s
        }
        Status::Skipped(reason) => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(reason.to_string());
            s
        }
    };
    let mut tc = TestCase::new(c.check.as_str(), status);
    tc.set_classname(c.scenario.as_str());
    tc.set_time(Duration::from_millis(c.duration_ms));
    if !c.features.is_empty() {
        tc.add_property(Property::new("features", c.features.join(",")));
    }
    if let Some(rule) = &c.rule {
        tc.add_property(Property::new("rule", rule.as_str()));
    }
    if let Some(ms) = c.converged_after_ms {
        tc.add_property(Property::new("converged_after_ms", ms.to_string()));
    }
    if let Some(l) = &c.latency {
        for (name, value) in [
            ("latency_samples", l.samples),
            ("latency_p50_us", l.p50_us),
            ("latency_p90_us", l.p90_us),
            ("latency_p99_us", l.p99_us),
            ("latency_max_us", l.max_us),
        ] {
            tc.add_property(Property::new(name, value.to_string()));
        }
    }
    for p in &c.node_pairs {
        for (stat, value) in [("p50_us", p.latency.p50_us), ("p99_us", p.latency.p99_us)] {
            tc.add_property(Property::new(
                format!("pair:{}->{}:{stat}", p.from, p.to),
                value.to_string(),
            ));
        }
    }
    for p in &c.node_pair_throughput {
        for (stat, value) in [("median_mbps", p.median_mbps), ("min_mbps", p.min_mbps)] {
            tc.add_property(Property::new(
                format!("pair:{}->{}:{stat}", p.from, p.to),
                format!("{value:.0}"),
            ));
        }
    }
    if let Some(d) = &c.dns {
        for (name, value) in [
            ("dns_queries", d.queries),
            ("dns_queries_lost", d.lost),
            ("dns_samples_resolved_after_loss", d.resolved_after_loss),
        ] {
            tc.add_property(Property::new(name, value.to_string()));
        }
    }
    tc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::PlanError;
    use crate::verdict::stats::LatencySummary;
    use crate::verdict::{Failure, Skip};

    fn record(check: &str, status: Status) -> CheckRecord {
        CheckRecord {
            scenario: "pod-to-pod".into(),
            check: check.into(),
            trial: format!("pod-to-pod::{check}"),
            features: vec!["core".into()],
            rule: None,
            status,
            duration_ms: 1500,
            latency: Some(LatencySummary {
                samples: 20,
                p50_us: 110,
                p90_us: 180,
                p99_us: 250,
                max_us: 260,
            }),
            dns: None,
            node_pairs: vec![],
            node_pair_throughput: vec![],
            converged_after_ms: None,
            probes: vec![],
        }
    }

    #[test]
    fn written_xml_parses_back_with_cases_failures_and_latency_properties() {
        let run = RunRecord {
            run_id: "abcd1234".into(),
            cluster: "kubeconfig k, context c".into(),
            server_version: "v1.34.4".into(),
            started_unix: 0,
            duration_ms: 3000,
            exec_transport_losses: vec![],
            checks: vec![
                record("tcp", Status::Passed),
                record(
                    "udp",
                    Status::Failed(Failure::CannotPlan {
                        error: PlanError::Incomplete("no pod named server\n  detail"),
                    }),
                ),
                record(
                    "sctp",
                    Status::Skipped(Skip::NotInProfile {
                        feature: "sctp".into(),
                        profile: "core".into(),
                    }),
                ),
            ],
        };
        let xml = report(&run).to_string().unwrap();
        let back = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(back.test_suites.len(), 1);
        let suite = &back.test_suites[0];
        assert_eq!(suite.name.as_str(), "pod-to-pod");
        assert_eq!((suite.tests, suite.failures), (3, 1));
        assert!(matches!(
            suite.test_cases[2].status,
            TestCaseStatus::Skipped { .. }
        ));
        let tcp = &suite.test_cases[0];
        assert_eq!(tcp.name.as_str(), "tcp");
        let props: BTreeMap<&str, &str> = tcp
            .properties
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(props["latency_p50_us"], "110");
        assert_eq!(props["latency_p99_us"], "250");
        assert_eq!(props["latency_max_us"], "260");
        let TestCaseStatus::NonSuccess {
            message,
            description,
            ..
        } = &suite.test_cases[1].status
        else {
            panic!("udp should have failed")
        };
        assert_eq!(
            message.as_ref().unwrap().as_str(),
            "cannot plan the check: no pod named server"
        );
        assert!(description.as_ref().unwrap().as_str().contains("detail"));
    }
}
