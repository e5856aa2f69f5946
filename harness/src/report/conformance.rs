//! The conformance report a vendor can publish (reports/conformance.json): a
//! versioned document (`apiVersion`/`kind`) naming the implementation tested,
//! the profile claimed, each feature's verdict with its check counts, and
//! whether the cluster conforms to the profile. Its JSON Schema is
//! docs/conformance-report.schema.json (generated from these types).

use super::RunRecord;
use crate::features::{FeaturePlan, Implementation};
use crate::verdict::{Absence, Skip, Status};
use k8s_openapi::jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The report's version. A change that removes or renames a field, or
/// changes a field's meaning, gets a new version.
pub const API_VERSION: &str = "netconform.io/v1alpha1";
pub const KIND: &str = "ConformanceReport";

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConformanceReport {
    /// `netconform.io/v1alpha1`
    pub api_version: String,
    /// `ConformanceReport`
    pub kind: String,
    /// When the run started (RFC 3339, UTC).
    pub date: String,
    pub netconform_version: String,
    /// The implementation under test, as its vendor declared it in the
    /// configuration file (`implementation:`); absent if not declared.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub implementation: Option<Implementation>,
    pub cluster: ClusterInfo,
    pub run_id: String,
    pub profile: ProfileResult,
    /// Every feature of the profile that is not declared unsupported passed
    /// all its checks (at least one), and no check of the profile failed.
    pub conformant: bool,
    /// Features the user declared unsupported (their checks were skipped).
    pub unsupported_features: Vec<String>,
    /// Each feature of the profile (and any other feature a check ran for).
    pub features: BTreeMap<String, FeatureResult>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterInfo {
    /// The kubeconfig and context (or in-cluster account) the run used.
    pub source: String,
    /// The API server's version (`gitVersion`).
    pub server_version: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileResult {
    pub name: String,
    /// The profile's features, in its order.
    pub features: Vec<String>,
    /// Checks of the profile's features, over all of them.
    pub statistics: Statistics,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Statistics {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FeatureStatus {
    /// At least one check passed and none failed.
    Passed,
    /// At least one check failed.
    Failed,
    /// Every check was skipped (the reason says why).
    Skipped,
    /// No check of this feature ran (filtered out).
    #[default]
    NotRun,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeatureResult {
    pub status: FeatureStatus,
    #[serde(flatten)]
    pub statistics: Statistics,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub skip_reason: Option<String>,
    /// Trial names (`scenario::check`) of the failed checks.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub failed_checks: Vec<String>,
    /// The feature's checks by IP family (`ipv4`, `ipv6`: the `::ipv6`
    /// twins, which belong to feature `ipv6` too), each family's status.
    #[serde(default)]
    pub families: BTreeMap<String, FamilyResult>,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FamilyResult {
    pub status: FeatureStatus,
    #[serde(flatten)]
    pub statistics: Statistics,
}

impl Statistics {
    fn count(&mut self, status: &Status) {
        match status {
            Status::Passed => self.passed += 1,
            Status::Failed(_) => self.failed += 1,
            Status::Skipped(_) => self.skipped += 1,
        }
    }

    /// Failed if any failed, passed if any passed, skipped if any ran at all.
    fn status(&self) -> FeatureStatus {
        if self.failed > 0 {
            FeatureStatus::Failed
        } else if self.passed > 0 {
            FeatureStatus::Passed
        } else if self.skipped > 0 {
            FeatureStatus::Skipped
        } else {
            FeatureStatus::NotRun
        }
    }
}

pub fn report(run: &RunRecord, plan: &FeaturePlan) -> ConformanceReport {
    let mut features: BTreeMap<String, FeatureResult> = plan
        .profile
        .features
        .iter()
        .map(|f| (f.to_string(), FeatureResult::default()))
        .collect();
    let mut profile_statistics = Statistics::default();
    // Skips that say nothing about the feature itself: the check also
    // belongs to a feature that is absent here or outside the profile. Any
    // other skip (placement, a cluster never quiet) leaves the feature
    // untested, so the profile is not met.
    let explained = |why: &Skip| match why {
        // An outside host named without an address in the check's family is
        // the feature absent in that family, as when none is named at all.
        Skip::FeatureAbsent {
            why: Absence::NoOutsideHostInFamily { .. },
            ..
        } => true,
        Skip::FeatureAbsent { feature, .. } => plan.skipped.contains_key(feature),
        Skip::NotInProfile { .. } => true,
        Skip::Placement { .. } | Skip::ClusterNotQuiet { .. } => false,
    };
    let mut unexplained_skips: BTreeMap<String, usize> = BTreeMap::new();
    for c in &run.checks {
        let in_profile = c
            .features
            .iter()
            .any(|f| plan.profile.features.contains(&f.as_str()));
        if in_profile {
            match &c.status {
                Status::Passed => profile_statistics.passed += 1,
                Status::Failed(_) => profile_statistics.failed += 1,
                Status::Skipped(_) => profile_statistics.skipped += 1,
            }
        }
        let family = if c.features.iter().any(|f| f == "ipv6") {
            "ipv6"
        } else {
            "ipv4"
        };
        for f in &c.features {
            let Some(r) = features.get_mut(f) else {
                continue;
            };
            r.families
                .entry(family.to_string())
                .or_default()
                .statistics
                .count(&c.status);
            match &c.status {
                Status::Passed => r.statistics.passed += 1,
                Status::Failed(_) => {
                    r.statistics.failed += 1;
                    r.failed_checks.push(c.trial.clone());
                }
                Status::Skipped(why) => {
                    r.statistics.skipped += 1;
                    r.skip_reason.get_or_insert_with(|| why.to_string());
                    if !explained(why) {
                        *unexplained_skips.entry(f.clone()).or_default() += 1;
                    }
                }
            }
        }
    }
    let mut conformant = true;
    for (name, r) in features.iter_mut() {
        let counts = &r.statistics;
        r.status = counts.status();
        for family in r.families.values_mut() {
            family.status = family.statistics.status();
        }
        // Declared unsupported, or visibly absent (no IPv6 pod CIDR): reported, not required.
        let declared_unsupported = plan.skipped.contains_key(name);
        let unexplained = unexplained_skips.get(name).copied().unwrap_or(0);
        if counts.failed > 0
            || (!declared_unsupported && counts.passed == 0)
            || (!declared_unsupported && unexplained > 0)
        {
            conformant = false;
        }
    }
    let date = i64::try_from(run.started_unix)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH);
    ConformanceReport {
        api_version: API_VERSION.to_string(),
        kind: KIND.to_string(),
        date: date.to_string(),
        netconform_version: env!("CARGO_PKG_VERSION").to_string(),
        implementation: plan.implementation.clone(),
        cluster: ClusterInfo {
            source: run.cluster.clone(),
            server_version: run.server_version.clone(),
        },
        run_id: run.run_id.clone(),
        profile: ProfileResult {
            name: plan.profile.name.to_string(),
            features: plan
                .profile
                .features
                .iter()
                .map(|f| f.to_string())
                .collect(),
            statistics: profile_statistics,
        },
        conformant,
        unsupported_features: plan
            .skipped
            .iter()
            .filter(|(_, why)| matches!(why, Absence::DeclaredUnsupported { .. }))
            .map(|(f, _)| f.clone())
            .collect(),
        features,
    }
}

/// The JSON Schema of the report (docs/conformance-report.schema.json).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ConformanceReport)).expect("a schema serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{plan, Declaration, Detected, Implementation};
    use crate::probes::PlanError;
    use crate::report::CheckRecord;
    use crate::verdict::{Failure, Skip};

    fn check(trial: &str, feature: &str, status: Status) -> CheckRecord {
        CheckRecord::unprobed("s", trial, vec![feature.into()], None, status)
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
                implementation: None,
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
        assert_eq!(r.features["dns"].status, FeatureStatus::Passed);
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
        assert_eq!(untested.features["nodeport"].status, FeatureStatus::NotRun);
    }

    #[test]
    fn each_feature_says_which_families_passed() {
        let mut twin = check(
            "a::ipv6",
            "core",
            Status::Failed(Failure::ProbesCouldNotRun { errors: vec![] }),
        );
        twin.features.push("ipv6".into());
        let r = report(
            &run(vec![check("a", "core", Status::Passed), twin]),
            &core_plan(),
        );
        let families = &r.features["core"].families;
        assert_eq!(families["ipv4"].status, FeatureStatus::Passed);
        assert_eq!(families["ipv6"].status, FeatureStatus::Failed);
        assert_eq!(r.features["core"].status, FeatureStatus::Failed);
    }

    #[test]
    fn declared_unsupported_features_do_not_block_the_profile() {
        let p = plan(
            &Declaration {
                profile: Some("full".into()),
                unsupported: vec!["network-policy".into()],
                implementation: None,
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
            "ipv6",
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
        assert_eq!(r.unsupported_features, vec!["network-policy".to_string()]);
    }

    #[test]
    fn the_report_is_versioned_names_the_implementation_and_reads_back() {
        let mut p = core_plan();
        p.implementation = Some(Implementation {
            organization: "Example Networks".into(),
            project: "example-cni".into(),
            url: "https://example.invalid/example-cni".into(),
            version: "v1.2.3".into(),
            contact: vec!["netconform@example.invalid".into()],
        });
        let mut r = run(vec![
            check("a", "core", Status::Passed),
            check("b", "dns", Status::Passed),
            check("c", "nodeport", Status::Passed),
            check("d", "latency", Status::Passed),
        ]);
        r.started_unix = 1_795_420_800;
        let report = report(&r, &p);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["apiVersion"], "netconform.io/v1alpha1");
        assert_eq!(json["kind"], "ConformanceReport");
        assert_eq!(json["date"], "2026-11-23T08:00:00Z");
        assert_eq!(json["implementation"]["project"], "example-cni");
        assert_eq!(json["features"]["dns"]["status"], "passed");
        assert_eq!(json["features"]["dns"]["passed"], 1);
        // A check outside the profile is not counted for it.
        assert_eq!(json["profile"]["statistics"]["passed"], 3);
        let back: ConformanceReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn a_skip_for_another_absent_feature_does_not_block_the_profile() {
        // In-cluster: no harness host, so a hostNetwork check that probes a
        // NodePort from it is skipped; host-network itself is still met.
        let mut p = core_plan();
        p.skipped
            .insert("nodeport-from-harness".into(), Absence::HarnessInCluster);
        let absent = Skip::FeatureAbsent {
            feature: "nodeport-from-harness".into(),
            why: Absence::HarnessInCluster,
        };
        let mut both = check("np-harness", "nodeport", Status::Skipped(absent));
        both.features.push("nodeport-from-harness".into());
        let checks = vec![
            check("a", "core", Status::Passed),
            check("b", "dns", Status::Passed),
            check("c", "nodeport", Status::Passed),
            both,
        ];
        assert!(report(&run(checks.clone()), &p).conformant);
        // A skip for the feature's own sake (placement) still blocks it.
        let mut placed = checks;
        placed[2].status = Status::Skipped(Skip::Placement {
            reason: "one node".into(),
        });
        placed.push(check("d", "nodeport", Status::Passed));
        assert!(!report(&run(placed), &p).conformant);
    }

    #[test]
    fn an_outside_host_without_an_address_in_the_family_is_the_feature_absent_there() {
        // The user named an IPv4 outside host only: its IPv6 twins are
        // skipped, and the profile is judged as when no host is named.
        let p = core_plan();
        let absent = Skip::FeatureAbsent {
            feature: "outside-host".into(),
            why: Absence::NoOutsideHostInFamily {
                family: crate::scenario::IpFamily::Ipv6,
            },
        };
        let mut twin = check("o::ipv6", "core", Status::Skipped(absent));
        twin.features.push("outside-host".into());
        let checks = vec![
            check("a", "core", Status::Passed),
            check("b", "dns", Status::Passed),
            check("c", "nodeport", Status::Passed),
            twin,
        ];
        assert!(report(&run(checks), &p).conformant);
    }

    /// docs/conformance-report.schema.json is generated from these types;
    /// regenerate with `NETCONFORM_WRITE_SCHEMA=1 cargo test -p netconform-harness schema`.
    #[test]
    fn report_schema_file_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs/conformance-report.schema.json");
        let want = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
        if std::env::var("NETCONFORM_WRITE_SCHEMA").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is out of date: run NETCONFORM_WRITE_SCHEMA=1 cargo test -p netconform-harness schema",
            path.display()
        );
    }
}
