//! Features and profiles: which checks apply to a cluster.
//!
//! Every check belongs to one or more features. A profile is a list of features
//! a cluster must pass to claim it. A feature is skipped (never passed) when the
//! user declares it unsupported, or when the cluster visibly lacks it (an IPv6
//! check on a cluster with no IPv6 pod CIDR). NetworkPolicy enforcement is not
//! "detected" away: a cluster that ignores policies fails those checks.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, PartialEq, Eq)]
pub struct Feature {
    pub name: &'static str,
    pub description: &'static str,
}

pub const FEATURES: &[Feature] = &[
    Feature { name: "core", description: "the Kubernetes network model: pod-to-pod without NAT, node-to-pod, pod IPs, Services, localhost in a pod" },
    Feature { name: "dns", description: "cluster DNS: Service and pod records, headless Services, SRV, search paths" },
    Feature { name: "nodeport", description: "NodePort Services on every node" },
    Feature { name: "nodeport-from-harness", description: "NodePort Services reached from the machine running netconform (needs routable node IPs: kind on Linux, the testbed)" },
    Feature { name: "host-network", description: "hostNetwork pods (needs a namespace that allows privileged pods)" },
    Feature { name: "network-policy", description: "NetworkPolicy ingress isolation" },
    Feature { name: "network-policy-egress", description: "NetworkPolicy egress isolation" },
    Feature { name: "latency", description: "node-pair latency on an idle cluster: no node pair far slower than the cluster's own baseline" },
    Feature { name: "ipv6", description: "IPv6 pod and Service addresses" },
    Feature { name: "sctp", description: "SCTP pods and Services" },
];

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
    // ipv6 and sctp are known (they can be declared unsupported) but have no
    // scenario yet, so no profile requires them.
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
        ],
    },
];

pub fn is_known(feature: &str) -> bool {
    FEATURES.iter().any(|f| f.name == feature)
}

pub fn profile(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

/// The user's declaration (NETCONFORM_CONFIG, a YAML file):
/// ```yaml
/// profile: full            # which profile this run claims (default: full)
/// unsupported: [sctp]      # features the cluster does not offer: their checks are skipped
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub unsupported: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeaturePlan {
    pub profile: &'static Profile,
    /// feature -> why its checks are skipped.
    pub skipped: BTreeMap<String, String>,
    pub source: Option<PathBuf>,
}

impl FeaturePlan {
    /// Why a check with these features does not run here, if it does not.
    pub fn skip_reason(&self, features: &[String]) -> Option<String> {
        // What the cluster lacks says more than what the profile leaves out.
        if let Some((f, reason)) = features
            .iter()
            .find_map(|f| self.skipped.get(f).map(|r| (f, r)))
        {
            return Some(format!("feature {f}: {reason}"));
        }
        features
            .iter()
            .find(|f| !self.profile.features.contains(&f.as_str()))
            .map(|f| format!("feature {f} is not in profile {}", self.profile.name))
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

pub fn known() -> String {
    FEATURES
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the cluster shows about itself, for features that can be detected.
#[derive(Clone, Debug, Default)]
pub struct Detected {
    /// "IPv4"/"IPv6" from the nodes' pod CIDRs.
    pub ip_families: BTreeSet<String>,
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
        skipped.insert(f.clone(), format!("declared unsupported in {from}"));
    }
    if !detected.ip_families.is_empty() && !detected.ip_families.contains("IPv6") {
        skipped
            .entry("ipv6".into())
            .or_insert_with(|| "no node has an IPv6 pod CIDR".into());
    }
    FeaturePlan {
        profile,
        skipped,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detected(families: &[&str]) -> Detected {
        Detected {
            ip_families: families.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn declared_unsupported_features_are_skipped_with_the_file_named() {
        let d = Declaration {
            profile: None,
            unsupported: vec!["sctp".into()],
        };
        let p = plan(&d, Some("cluster.yaml".into()), &detected(&["IPv4"]));
        assert_eq!(
            p.skip_reason(&["core".into(), "sctp".into()]).unwrap(),
            "feature sctp: declared unsupported in cluster.yaml"
        );
        assert_eq!(p.skip_reason(&["core".into()]), None);
    }

    #[test]
    fn ipv6_is_skipped_on_an_ipv4_only_cluster_but_policy_is_not() {
        let p = plan(&Declaration::default(), None, &detected(&["IPv4"]));
        assert!(p
            .skip_reason(&["ipv6".into()])
            .unwrap()
            .contains("no node has an IPv6 pod CIDR"));
        assert_eq!(p.skip_reason(&["network-policy".into()]), None);
    }

    #[test]
    fn the_core_profile_leaves_out_other_features() {
        let d = Declaration {
            profile: Some("core".into()),
            unsupported: vec![],
        };
        let p = plan(&d, None, &detected(&["IPv4"]));
        assert_eq!(
            p.skip_reason(&["network-policy".into()]).unwrap(),
            "feature network-policy is not in profile core"
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
