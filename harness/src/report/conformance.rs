//! The conformance report a vendor can publish (reports/conformance.json):
//! the profile claimed, each feature's verdict with its check counts, and
//! whether the cluster conforms to the profile.

use super::RunRecord;
use crate::features::FeaturePlan;
use crate::verdict::{Absence, Status};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ConformanceReport {
    pub netconform_version: String,
    pub run_id: String,
    pub cluster: String,
    pub server_version: String,
    pub profile: String,
    /// Every feature of the profile that is not declared unsupported passed all
    /// its checks (at least one), and no check of the profile failed.
    pub conformant: bool,
    /// Features the user declared unsupported (their checks were skipped).
    pub unsupported: Vec<String>,
    pub features: BTreeMap<String, FeatureResult>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct FeatureResult {
    /// passed, failed, skipped, or not_run (no check of it ran: filtered out)
    pub status: String,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_checks: Vec<String>,
}

pub fn report(run: &RunRecord, plan: &FeaturePlan) -> ConformanceReport {
    let mut features: BTreeMap<String, FeatureResult> = plan
        .profile
        .features
        .iter()
        .map(|f| (f.to_string(), FeatureResult::default()))
        .collect();
    for c in &run.checks {
        for f in &c.features {
            let Some(r) = features.get_mut(f) else {
                continue;
            };
            match &c.status {
                Status::Passed => r.passed += 1,
                Status::Failed(_) => {
                    r.failed += 1;
                    r.failed_checks.push(c.trial.clone());
                }
                Status::Skipped(why) => {
                    r.skipped += 1;
                    r.skip_reason.get_or_insert_with(|| why.to_string());
                }
            }
        }
    }
    let mut conformant = true;
    for (name, r) in features.iter_mut() {
        r.status = if r.failed > 0 {
            "failed"
        } else if r.passed > 0 {
            "passed"
        } else if r.skipped > 0 {
            "skipped"
        } else {
            "not_run"
        }
        .to_string();
        // Declared unsupported, or visibly absent (no IPv6 pod CIDR): reported, not required.
        let declared_unsupported = plan.skipped.contains_key(name);
        if r.failed > 0
            || (!declared_unsupported && r.passed == 0)
            || (!declared_unsupported && r.skipped > 0)
        {
            conformant = false;
        }
    }
    ConformanceReport {
        netconform_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id: run.run_id.clone(),
        cluster: run.cluster.clone(),
        server_version: run.server_version.clone(),
        profile: plan.profile.name.to_string(),
        conformant,
        unsupported: plan
            .skipped
            .iter()
            .filter(|(_, why)| matches!(why, Absence::DeclaredUnsupported { .. }))
            .map(|(f, _)| f.clone())
            .collect(),
        features,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{plan, Declaration, Detected};
    use crate::probes::PlanError;
    use crate::report::CheckRecord;
    use crate::verdict::{Failure, Skip};

    fn check(trial: &str, feature: &str, status: Status) -> CheckRecord {
        CheckRecord {
            scenario: "s".into(),
            check: trial.into(),
            trial: format!("s::{trial}"),
            features: vec![feature.into()],
            rule: None,
            status,
            duration_ms: 0,
            latency: None,
            dns: None,
            node_pairs: vec![],
            node_pair_throughput: vec![],
            converged_after_ms: None,
            probes: vec![],
        }
    }

    fn run(checks: Vec<CheckRecord>) -> RunRecord {
        RunRecord {
            run_id: "r".into(),
            cluster: "c".into(),
            server_version: "v".into(),
            started_unix: 0,
            duration_ms: 0,
            checks,
            exec_transport_losses: vec![],
        }
    }

    fn core_plan() -> FeaturePlan {
        plan(
            &Declaration {
                profile: Some("core".into()),
                unsupported: vec![],
            },
            None,
            &Detected::default(),
        )
    }

    #[test]
    fn all_profile_features_passing_is_conformant() {
        let r = report(
            &run(vec![
                check("a", "core", Status::Passed),
                check("b", "dns", Status::Passed),
                check("c", "nodeport", Status::Passed),
            ]),
            &core_plan(),
        );
        assert!(r.conformant);
        assert_eq!(r.features["dns"].status, "passed");
    }

    #[test]
    fn one_failure_or_an_untested_feature_is_not() {
        let failed = report(
            &run(vec![
                check("a", "core", Status::Passed),
                check(
                    "b",
                    "dns",
                    Status::Failed(Failure::CannotPlan {
                        error: PlanError::Incomplete("x"),
                    }),
                ),
                check("c", "nodeport", Status::Passed),
            ]),
            &core_plan(),
        );
        assert!(!failed.conformant);
        assert_eq!(
            failed.features["dns"].failed_checks,
            vec!["s::b".to_string()]
        );
        let untested = report(&run(vec![check("a", "core", Status::Passed)]), &core_plan());
        assert!(!untested.conformant);
        assert_eq!(untested.features["nodeport"].status, "not_run");
    }

    #[test]
    fn declared_unsupported_features_do_not_block_the_profile() {
        let p = plan(
            &Declaration {
                profile: Some("full".into()),
                unsupported: vec!["network-policy".into()],
            },
            None,
            &Detected::default(),
        );
        let checks: Vec<CheckRecord> = [
            "core",
            "dns",
            "nodeport",
            "nodeport-from-harness",
            "host-network",
            "network-policy-egress",
            "latency",
            "throughput",
            "icmp",
            "host-port",
            "outside-host",
        ]
        .iter()
        .map(|f| check(f, f, Status::Passed))
        .chain([check(
            "np",
            "network-policy",
            Status::Skipped(Skip::FeatureAbsent {
                feature: "network-policy".into(),
                why: Absence::DeclaredUnsupported {
                    source: "the declaration".into(),
                },
            }),
        )])
        .collect();
        let r = report(&run(checks), &p);
        assert!(r.conformant, "{r:#?}");
        assert_eq!(r.unsupported, vec!["network-policy".to_string()]);
    }
}
