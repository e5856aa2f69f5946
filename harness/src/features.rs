//! Features and profiles: which checks apply to a cluster.
//!
//! Every check belongs to one or more features. A profile is a list of features
//! a cluster must pass to claim it. A feature is skipped (never passed) when the
//! user declares it unsupported, or when the cluster visibly lacks it (an IPv6
//! check on a cluster with no IPv6 pod CIDR). NetworkPolicy enforcement is not
//! "detected" away: a cluster that ignores policies fails those checks.

use crate::scenario::IpFamily;
use crate::verdict::{Absence, Skip};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use crate::scenario::features::{is_known, known, Feature, FEATURES};

#[derive(Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    pub features: &'static [&'static str],
}

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "core",
        features: &["core", "dns", "nodeport"],
    },
    // sctp is known (it can be declared unsupported) but has no scenario
    // yet, so no profile requires it.
    Profile {
        name: "full",
        features: &[
            "core",
            "dns",
            "nodeport",
            "nodeport-from-harness",
            "host-network",
            "network-policy",
            "network-policy-egress",
            "latency",
            "throughput",
            "icmp",
            "host-port",
            // Run when the user names an outside host; without one it is
            // reported absent, like ipv6 on an IPv4 cluster.
            "outside-host",
            // The IPv6 twins of checks (`<check>::ipv6`), on a cluster whose
            // nodes have IPv6 pod CIDRs.
            "ipv6",
        ],
    },
];

pub fn profile(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

/// The user's declaration (NETCONFORM_CONFIG, a YAML file):
/// ```yaml
/// profile: full            # which profile this run claims (default: full)
/// unsupported: [sctp]      # features the cluster does not offer: their checks are skipped
/// implementation:          # who is tested, for the published report (optional)
///   organization: Example Networks
///   project: example-cni
///   url: https://example.invalid/example-cni
///   version: v1.2.3
///   contact: [netconform@example.invalid]
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub unsupported: Vec<String>,
    #[serde(default)]
    pub implementation: Option<Implementation>,
}

/// The implementation under test as its vendor names it in the conformance
/// report it publishes. Every field is required: a published report says
/// who made what, which version, and how to reach them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Implementation {
    /// Who makes it (a company or the project's organisation).
    pub organization: String,
    /// Its name, e.g. the CNI plugin's.
    pub project: String,
    /// Where it lives.
    pub url: String,
    /// The version that was tested.
    pub version: String,
    /// How to reach its maintainers: addresses, handles or an issue tracker.
    pub contact: Vec<String>,
}

impl Implementation {
    /// The first field left empty, if any.
    fn empty_field(&self) -> Option<&'static str> {
        [
            ("organization", self.organization.trim().is_empty()),
            ("project", self.project.trim().is_empty()),
            ("url", self.url.trim().is_empty()),
            ("version", self.version.trim().is_empty()),
            ("contact", self.contact.iter().all(|c| c.trim().is_empty())),
        ]
        .into_iter()
        .find_map(|(name, empty)| empty.then_some(name))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeaturePlan {
    pub profile: &'static Profile,
    /// feature -> why the cluster does not offer it (its checks are skipped).
    pub skipped: BTreeMap<String, Absence>,
    pub source: Option<PathBuf>,
    /// Who is tested, for the conformance report.
    pub implementation: Option<Implementation>,
    /// The families the named outside host has an address in.
    pub outside_host_families: BTreeSet<IpFamily>,
}

impl FeaturePlan {
    /// Why a check of `family` that targets the outside host does not run
    /// here although the feature does: the host named has no address in it.
    pub fn outside_host_absent(&self, family: IpFamily) -> Option<Skip> {
        (!self.skipped.contains_key("outside-host")
            && !self.outside_host_families.contains(&family))
        .then(|| Skip::FeatureAbsent {
            feature: "outside-host".into(),
            why: Absence::NoOutsideHostInFamily { family },
        })
    }

    /// Why a check with these features does not run here, if it does not.
    pub fn skip_reason(&self, features: &[String]) -> Option<Skip> {
        // What the cluster lacks says more than what the profile leaves out.
        if let Some((f, why)) = features
            .iter()
            .find_map(|f| self.skipped.get(f).map(|r| (f, r)))
        {
            return Some(Skip::FeatureAbsent {
                feature: f.clone(),
                why: why.clone(),
            });
        }
        features
            .iter()
            .find(|f| !self.profile.features.contains(&f.as_str()))
            .map(|f| Skip::NotInProfile {
                feature: f.clone(),
                profile: self.profile.name.to_string(),
            })
    }
}

pub fn read_declaration(path: &Path) -> Result<Declaration, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let d: Declaration =
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for f in &d.unsupported {
        if !is_known(f) {
            return Err(format!(
                "{}: unknown feature `{f}` in `unsupported` (known: {})",
                path.display(),
                known()
            ));
        }
    }
    if let Some(field) = d
        .implementation
        .as_ref()
        .and_then(Implementation::empty_field)
    {
        return Err(format!(
            "{}: `implementation.{field}` is empty (a published report names the organisation, project, url, version and a contact)",
            path.display()
        ));
    }
    if let Some(p) = &d.profile {
        if profile(p).is_none() {
            return Err(format!(
                "{}: unknown profile `{p}` (known: {})",
                path.display(),
                PROFILES
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(d)
}

/// What the cluster shows about itself, for features that can be detected.
#[derive(Clone, Debug, Default)]
pub struct Detected {
    /// "IPv4"/"IPv6" from the nodes' pod CIDRs.
    pub ip_families: BTreeSet<String>,
    /// The outside host's addresses the user named (none, or one per family).
    pub outside_hosts: Vec<std::net::IpAddr>,
    /// netconform itself runs in a pod (in-cluster config).
    pub harness_in_cluster: bool,
}

pub fn plan(
    declaration: &Declaration,
    source: Option<PathBuf>,
    detected: &Detected,
) -> FeaturePlan {
    let profile =
        profile(declaration.profile.as_deref().unwrap_or("full")).expect("validated profile");
    let mut skipped = BTreeMap::new();
    for f in &declaration.unsupported {
        let from = source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the declaration".into());
        skipped.insert(f.clone(), Absence::DeclaredUnsupported { source: from });
    }
    if !detected.ip_families.is_empty() && !detected.ip_families.contains("IPv6") {
        skipped
            .entry("ipv6".into())
            .or_insert(Absence::NoIpv6PodCidr);
    }
    if detected.outside_hosts.is_empty() {
        skipped
            .entry("outside-host".into())
            .or_insert(Absence::NoOutsideHostNamed);
    }
    if detected.harness_in_cluster {
        skipped
            .entry("nodeport-from-harness".into())
            .or_insert(Absence::HarnessInCluster);
    }
    FeaturePlan {
        profile,
        skipped,
        source,
        implementation: declaration.implementation.clone(),
        outside_host_families: detected
            .outside_hosts
            .iter()
            .map(|ip| {
                if ip.is_ipv4() {
                    IpFamily::Ipv4
                } else {
                    IpFamily::Ipv6
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detected(families: &[&str]) -> Detected {
        Detected {
            ip_families: families.iter().map(|s| s.to_string()).collect(),
            outside_hosts: vec![],
            harness_in_cluster: false,
        }
    }

    #[test]
    fn declared_unsupported_features_are_skipped_with_the_file_named() {
        let d = Declaration {
            profile: None,
            unsupported: vec!["sctp".into()],
            implementation: None,
        };
        let p = plan(&d, Some("cluster.yaml".into()), &detected(&["IPv4"]));
        assert_eq!(
            p.skip_reason(&["core".into(), "sctp".into()]).unwrap(),
            Skip::FeatureAbsent {
                feature: "sctp".into(),
                why: Absence::DeclaredUnsupported {
                    source: "cluster.yaml".into()
                }
            }
        );
        assert_eq!(p.skip_reason(&["core".into()]), None);
    }

    #[test]
    fn ipv6_is_skipped_on_an_ipv4_only_cluster_but_policy_is_not() {
        let p = plan(&Declaration::default(), None, &detected(&["IPv4"]));
        assert_eq!(
            p.skip_reason(&["ipv6".into()]),
            Some(Skip::FeatureAbsent {
                feature: "ipv6".into(),
                why: Absence::NoIpv6PodCidr
            })
        );
        assert_eq!(p.skip_reason(&["network-policy".into()]), None);
    }

    #[test]
    fn the_core_profile_leaves_out_other_features() {
        let d = Declaration {
            profile: Some("core".into()),
            unsupported: vec![],
            implementation: None,
        };
        let p = plan(&d, None, &detected(&["IPv4"]));
        assert_eq!(
            p.skip_reason(&["network-policy".into()]).unwrap(),
            Skip::NotInProfile {
                feature: "network-policy".into(),
                profile: "core".into()
            }
        );
        assert_eq!(p.skip_reason(&["dns".into()]), None);
    }

    #[test]
    fn declarations_with_unknown_names_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "unsupported: [sctpp]\n").unwrap();
        assert!(read_declaration(&path)
            .unwrap_err()
            .contains("unknown feature `sctpp`"));
        std::fs::write(
            &path,
            "implementation: {organization: o, project: p, url: u, version: '', contact: [c]}\n",
        )
        .unwrap();
        let e = read_declaration(&path).unwrap_err();
        assert!(e.contains("`implementation.version` is empty"), "{e}");
        std::fs::write(&path, "implementation: {organization: o, project: p}\n").unwrap();
        let e = read_declaration(&path).unwrap_err();
        assert!(e.contains("missing field `url`"), "{e}");
        std::fs::write(&path, "profile: gold\n").unwrap();
        assert!(read_declaration(&path)
            .unwrap_err()
            .contains("unknown profile `gold`"));
        std::fs::write(&path, "profile: core\nunsupported: [ipv6]\n").unwrap();
        assert_eq!(
            read_declaration(&path).unwrap().unsupported,
            vec!["ipv6".to_string()]
        );
    }
}
