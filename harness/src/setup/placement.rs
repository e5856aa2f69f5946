//! Choosing a node for every fixture pod, from the placement rules and the
//! cluster's schedulable nodes. Pure: the runner pins pods with node affinity.

use crate::scenario::PodFixture;
use std::collections::BTreeMap;

/// pod name -> node name, or why the scenario cannot be placed on this cluster.
pub fn assign(pods: &[PodFixture], nodes: &[String]) -> Result<BTreeMap<String, String>, String> {
    if nodes.is_empty() {
        return Err("the cluster has no schedulable node".into());
    }
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut next = 0usize;
    for pod in pods {
        let p = &pod.placement;
        let node = match (&p.same_node_as, &p.other_node_than) {
            (None, None) => {
                let n = nodes[next % nodes.len()].clone();
                next += 1;
                n
            }
            (Some(other), _) => out.get(other).cloned().ok_or_else(|| {
                format!(
                    "pod `{}` is placed after `{other}`, which is unknown",
                    pod.name
                )
            })?,
            (None, Some(other)) => {
                let taken = out.get(other).ok_or_else(|| {
                    format!(
                        "pod `{}` is placed after `{other}`, which is unknown",
                        pod.name
                    )
                })?;
                // The first other node after `taken`, so several such pods spread out.
                let at = nodes.iter().position(|n| n == taken).unwrap_or(0);
                (1..nodes.len())
                    .map(|k| &nodes[(at + k) % nodes.len()])
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("pod `{}` needs a node other than `{other}`'s, but the cluster has only one schedulable node ({taken})", pod.name))?
            }
        };
        out.insert(pod.name.clone(), node);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Placement;
    use rstest::rstest;

    fn pod(name: &str, placement: Placement) -> PodFixture {
        PodFixture {
            name: name.into(),
            placement,
            ..Default::default()
        }
    }

    fn nodes(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[rstest]
    #[case(&["a", "b"])]
    #[case(&["a", "b", "c"])]
    fn same_and_other_node_hold(#[case] cluster: &[&str]) {
        let pods = [
            pod("server", Placement::any()),
            pod("same", Placement::same_node_as("server")),
            pod("other", Placement::other_node_than("server")),
        ];
        let got = assign(&pods, &nodes(cluster)).unwrap();
        assert_eq!(got["same"], got["server"]);
        assert_ne!(got["other"], got["server"]);
    }

    #[test]
    fn any_spreads_round_robin() {
        let pods = [
            pod("p1", Placement::any()),
            pod("p2", Placement::any()),
            pod("p3", Placement::any()),
        ];
        let got = assign(&pods, &nodes(&["a", "b"])).unwrap();
        assert_eq!(
            (got["p1"].as_str(), got["p2"].as_str(), got["p3"].as_str()),
            ("a", "b", "a")
        );
    }

    #[test]
    fn other_node_on_a_single_node_cluster_says_why() {
        let pods = [
            pod("server", Placement::any()),
            pod("other", Placement::other_node_than("server")),
        ];
        let err = assign(&pods, &nodes(&["only"])).unwrap_err();
        assert!(err.contains("only one schedulable node (only)"), "{err}");
    }

    #[test]
    fn no_nodes_is_an_error() {
        assert!(assign(&[pod("p", Placement::any())], &[]).is_err());
    }
}
