//! The wait for a new Service's data path: before any check runs, each
//! Service port answers on its cluster IP from every node the scenario's pods
//! run on, and on each node port that should answer it.
//!
//! kube-proxy (or whatever implements Services) programs each node on its own
//! schedule, and a ClusterIP is translated on the *client's* node. A wait from
//! one pod proves one node only: a check whose client runs elsewhere could
//! send its first connection before its own node knew the Service, and report
//! a failure the cluster does not have.

use crate::cluster::exec;
use crate::progress::progress;
use crate::scenario::IpFamily;
use crate::setup::world::{Endpoint, World};
use crate::setup::SetupError;
use crate::timeouts::TIMEOUTS;
use futures::future::join_all;
use kube::Client;
use netconform_protocol::{Outcome, ProbeBatch, ProbeKind, ProbeResult, ProbeSpec};
use std::collections::{BTreeMap, BTreeSet};

/// Waits, bounded, until every selecting Service answers from every node with
/// a fixture pod. Not fatal: a Service that never answers is what the checks
/// are there to report, each in its own words; the wait only says so.
pub async fn wait(client: &Client, world: &World, scenario: &str) -> Result<(), SetupError> {
    let waiters = waiting_pods(world);
    let batches: Vec<(&Endpoint, ProbeBatch)> = waiters
        .iter()
        .enumerate()
        // Node ports are translated on the node that receives them, so one
        // waiter (the first) reaches every node's port for all of them.
        .map(|(i, pod)| {
            let batch = ProbeBatch {
                probes: probes(world, pod, i == 0),
                sequential: false,
            };
            (*pod, batch)
        })
        .filter(|(_, batch)| !batch.probes.is_empty())
        .collect();
    let runs = batches.iter().map(|(pod, batch)| {
        exec::probe(client, &pod.namespace, &pod.pod, batch, TIMEOUTS.data_path)
    });
    for ((pod, _), results) in batches.iter().zip(join_all(runs).await) {
        report(scenario, pod, &results.map_err(SetupError::Cluster)?);
    }
    Ok(())
}

/// One pod on each node that runs a fixture pod: a regular pod where the
/// node has one, else a hostNetwork pod (its node programs Services for it
/// the same way). Ordered by node name.
fn waiting_pods(world: &World) -> Vec<&Endpoint> {
    let mut by_node: BTreeMap<&str, &Endpoint> = BTreeMap::new();
    for e in world.groups.values().flatten() {
        let slot = by_node.entry(e.node.as_str()).or_insert(e);
        if slot.host_network && !e.host_network {
            *slot = e;
        }
    }
    by_node.into_values().collect()
}

/// The converging probes `pod` runs: each selecting Service port by cluster
/// IP, in every family the pod has an address in (each family is programmed
/// on its own: iptables and ip6tables), and with `node_ports` each node port
/// on every node that should answer it.
fn probes(world: &World, pod: &Endpoint, node_ports: bool) -> Vec<ProbeSpec> {
    let families = [IpFamily::Ipv4, IpFamily::Ipv6]
        .into_iter()
        .filter(|f| *f == IpFamily::Ipv4 || pod.ipv6.is_some());
    let mut out = Vec::new();
    for family in families {
        let seen = world.in_family(family);
        let tag = if family == IpFamily::Ipv6 {
            " (IPv6)"
        } else {
            ""
        };
        for svc in seen.services.values().filter(|s| !s.backends.is_empty()) {
            let Some(ip) = &svc.cluster_ip else { continue };
            let backend_nodes: BTreeSet<&str> =
                svc.backends.iter().map(|b| b.node.as_str()).collect();
            for p in &svc.ports {
                let mut targets =
                    vec![(format!("{}:{}{tag}", svc.name, p.port), ip.clone(), p.port)];
                if let Some(np) = p.node_port.filter(|_| node_ports) {
                    for n in seen
                        .nodes
                        .iter()
                        .filter(|n| !n.internal_ip.is_empty())
                        .filter(|n| !svc.local || backend_nodes.contains(n.name.as_str()))
                    {
                        targets.push((
                            format!("{}:{} on node {}{tag}", svc.name, np, n.name),
                            n.internal_ip.clone(),
                            np,
                        ));
                    }
                }
                for (id, host, port) in targets {
                    let kind = match p.protocol.as_str() {
                        "UDP" => ProbeKind::Udp { host, port },
                        _ => ProbeKind::Tcp { host, port },
                    };
                    out.push(ProbeSpec {
                        id,
                        kind,
                        timeout_ms: 500,
                        samples: 60,
                        until_connected: true,
                        // Waiting for a data path: timeouts are what it waits out.
                        stop_after_failures: 0,
                        interval_ms: 200,
                        payload_bytes: 0,
                        stream_ms: 0,
                        ipv6: false,
                        // Its connections sent before the Service is
                        // programmed stay untranslated in conntrack: a
                        // check's connection must never share their flow.
                        reserved_source_ports: true,
                    });
                }
            }
        }
    }
    out
}

/// One progress line per waiting pod, and one per Service that never answered.
fn report(scenario: &str, pod: &Endpoint, results: &[ProbeResult]) {
    let answered =
        |r: &&ProbeResult| r.attempts.last().map(|a| a.outcome) == Some(Outcome::Connected);
    let slowest = results
        .iter()
        .filter(answered)
        .max_by_key(|r| r.attempts.len());
    if let Some(slowest) = slowest {
        progress(
            scenario,
            format!(
                "{} of {} service addresses answer from {} (slowest: {}, attempt {})",
                results.iter().filter(answered).count(),
                results.len(),
                pod.node,
                slowest.id,
                slowest.attempts.len()
            ),
        );
    }
    for r in results.iter().filter(|r| !answered(r)) {
        progress(
            scenario,
            format!(
                "warning: service {} did not answer from {} after {} tries",
                r.id,
                pod.node,
                r.attempts.len()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ServiceKind;
    use crate::setup::world::{NodeInfo, ServiceInfo, ServicePortInfo};

    fn pod(name: &str, node: &str, host_network: bool) -> Endpoint {
        Endpoint {
            pod: name.into(),
            namespace: "ns".into(),
            ip: format!("10.0.0.{}", name.len()),
            ipv6: Some(format!("fd00::{}", name.len())),
            node: node.into(),
            hostname: name.into(),
            host_network,
            ..Default::default()
        }
    }

    fn world(pods: Vec<Endpoint>) -> World {
        let backend = pods[0].clone();
        let mut world = World {
            nodes: ["n1", "n2"]
                .iter()
                .map(|n| NodeInfo {
                    name: n.to_string(),
                    internal_ip: format!("192.0.2.{}", n.len()),
                    internal_ipv6: None,
                })
                .collect(),
            ..Default::default()
        };
        for p in pods {
            world.groups.entry(p.pod.clone()).or_default().push(p);
        }
        world.services.insert(
            "svc".into(),
            ServiceInfo {
                name: "svc".into(),
                namespace: "ns".into(),
                kind: ServiceKind::ClusterIp,
                cluster_ip: Some("10.96.0.9".into()),
                cluster_ipv6: Some("fd00:96::9".into()),
                ports: vec![ServicePortInfo {
                    name: None,
                    port: 80,
                    node_port: Some(30080),
                    protocol: "TCP".into(),
                }],
                backends: vec![backend],
                local: false,
                synthetic: vec![],
            },
        );
        world
    }

    #[test]
    fn waits_from_a_pod_on_every_node_not_only_the_first_pod() {
        // The case that cried wolf: the first pod by name is the backend, the
        // client runs on the other node.
        let w = world(vec![
            pod("backend", "n1", false),
            pod("client", "n2", false),
        ]);
        let nodes: Vec<&str> = waiting_pods(&w).iter().map(|e| e.node.as_str()).collect();
        assert_eq!(nodes, ["n1", "n2"]);
    }

    #[test]
    fn prefers_a_regular_pod_and_falls_back_to_host_network() {
        let w = world(vec![
            pod("a-host", "n1", true),
            pod("b-pod", "n1", false),
            pod("c-host", "n2", true),
        ]);
        let chosen: Vec<&str> = waiting_pods(&w).iter().map(|e| e.pod.as_str()).collect();
        assert_eq!(chosen, ["b-pod", "c-host"]);
    }

    #[rstest::rstest]
    #[case::first_waiter(true, 4)]
    #[case::other_waiters(false, 2)]
    fn node_ports_are_probed_by_one_waiter(#[case] node_ports: bool, #[case] want: usize) {
        let w = world(vec![pod("backend", "n1", false)]);
        let p = probes(&w, &w.groups["backend"][0], node_ports);
        // The cluster IP in each family, and for the first waiter the node
        // port on each of 2 nodes in IPv4 (the nodes have no IPv6 address here).
        let ids: Vec<&str> = p.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(p.len(), want, "{ids:?}");
        assert!(ids.contains(&"svc:80 (IPv6)"), "{ids:?}");
    }

    /// Its connections that go nowhere before the Service is programmed
    /// must not share a flow with a check's (kubernetes issue 48719).
    #[test]
    fn the_wait_connects_from_ports_no_check_uses() {
        let w = world(vec![pod("backend", "n1", false)]);
        let p = probes(&w, &w.groups["backend"][0], true);
        assert!(!p.is_empty());
        assert!(p.iter().all(|p| p.reserved_source_ports), "{p:?}");
    }
}
