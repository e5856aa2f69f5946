//! The testbed's "enforcer misses updates" fault (`--ignore-updates`): labels
//! of pods and namespaces and the specs of NetworkPolicies are taken as they
//! were when the enforcer first saw each object (by uid), and later changes to
//! them are ignored. New and deleted objects, and pod addresses, are still
//! followed. It reproduces a real class of CNI bug: an enforcer that handles
//! add and delete events but not updates.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};
use std::collections::BTreeMap;
use std::sync::Arc;

type Labels = Option<BTreeMap<String, String>>;

#[derive(Default)]
pub struct FirstSeen {
    labels: BTreeMap<String, Labels>,
    specs: BTreeMap<String, Option<NetworkPolicySpec>>,
}

impl FirstSeen {
    /// Pods with the labels they had when first seen.
    pub fn pods(&mut self, pods: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
        pods.iter()
            .map(|p| {
                let mut p = (**p).clone();
                p.metadata.labels = self.labels_of(&p.metadata);
                Arc::new(p)
            })
            .collect()
    }

    /// Namespaces with the labels they had when first seen.
    pub fn namespaces(&mut self, namespaces: &[Arc<Namespace>]) -> Vec<Arc<Namespace>> {
        namespaces
            .iter()
            .map(|n| {
                let mut n = (**n).clone();
                n.metadata.labels = self.labels_of(&n.metadata);
                Arc::new(n)
            })
            .collect()
    }

    /// Policies with the spec they had when first seen.
    pub fn policies(&mut self, policies: &[Arc<NetworkPolicy>]) -> Vec<Arc<NetworkPolicy>> {
        policies
            .iter()
            .map(|p| {
                let mut p = (**p).clone();
                let uid = p.metadata.uid.clone().unwrap_or_default();
                p.spec = self.specs.entry(uid).or_insert(p.spec.clone()).clone();
                Arc::new(p)
            })
            .collect()
    }

    fn labels_of(
        &mut self,
        meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) -> Labels {
        let uid = meta.uid.clone().unwrap_or_default();
        self.labels
            .entry(uid)
            .or_insert_with(|| meta.labels.clone())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, label: &str) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.uid = Some(uid.into());
        p.metadata.labels = Some(BTreeMap::from([("pod".to_string(), label.to_string())]));
        Arc::new(p)
    }

    #[test]
    fn labels_are_those_first_seen_per_object() {
        let mut seen = FirstSeen::default();
        seen.pods(&[pod("1", "a")]);
        let now = seen.pods(&[pod("1", "b"), pod("2", "b")]);
        let labels: Vec<&str> = now
            .iter()
            .map(|p| p.metadata.labels.as_ref().unwrap()["pod"].as_str())
            .collect();
        assert_eq!(labels, ["a", "b"]);
    }
}
