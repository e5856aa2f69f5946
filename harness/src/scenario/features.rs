//! The feature names a scenario or check may carry (profiles, which group
//! them, live in the harness's `features` module).

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
    Feature { name: "host-port", description: "hostPort on a pod (the CNI portmap plugin): the pod answers on its node's address" },
    Feature { name: "icmp", description: "ICMP echo (ping) between pods, from pods without root or capabilities (ping sockets); some clusters block ICMP on purpose" },
    Feature { name: "latency", description: "node-pair latency on an idle cluster: no node pair far slower than the cluster's own baseline" },
    Feature { name: "throughput", description: "node-pair TCP throughput on an idle cluster: no node pair far below the cluster's own baseline" },
    Feature { name: "outside-host", description: "pods reach a host outside the cluster that the user names (NETCONFORM_OUTSIDE_HOST; the testbed's outside namespace); SNAT to the node allowed and recorded" },
    Feature { name: "ipv6", description: "IPv6 pod and Service addresses" },
    Feature { name: "sctp", description: "SCTP pods and Services" },
];

pub fn is_known(feature: &str) -> bool {
    FEATURES.iter().any(|f| f.name == feature)
}

pub fn known() -> String {
    FEATURES
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}
