//! The identity of one netconform run, and the labels that mark everything it creates.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};

pub const LABEL_RUN: &str = "netconform.io/run";
pub const LABEL_SCENARIO: &str = "netconform.io/scenario";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "netconform";

/// A short random id, unique enough to tell concurrent runs apart on one cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RunId(String);

impl RunId {
    pub fn generate() -> RunId {
        // RandomState is seeded from the OS; no extra dependency for 32 random bits.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        RunId(format!("{:08x}", h.finish() as u32))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Selector for everything of this run.
    pub fn selector(&self) -> String {
        format!("{LABEL_RUN}={}", self.0)
    }

    /// Labels for objects of `scenario` in this run.
    pub fn labels(&self, scenario: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_RUN.to_string(), self.0.clone()),
            (LABEL_SCENARIO.to_string(), scenario.to_string()),
            (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
        ])
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_label_safe_and_differ() {
        let a = RunId::generate();
        let b = RunId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 8);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.labels("s")[LABEL_RUN], a.as_str());
    }
}
