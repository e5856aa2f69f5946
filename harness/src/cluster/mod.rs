//! Cluster access: kubeconfig (KUBECONFIG or ~/.kube/config, optional context
//! from NETCONFORM_CONTEXT) or in-cluster config, like kubectl. A failure names
//! what was tried.

pub mod exec;
pub mod liveness;
pub mod namespaces;
pub mod run;
pub mod session;

use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use std::path::PathBuf;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = crate::timeouts::TIMEOUTS.connect;

#[derive(Debug, thiserror::Error)]
#[error("no cluster reachable (tried {tried}): {reason}")]
pub struct ConnectError {
    /// e.g. "kubeconfig /root/.kube/config, context kind-kind"
    pub tried: String,
    pub reason: String,
}

#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    /// What was used, for messages: "kubeconfig X, context Y" or "in-cluster config".
    pub source: String,
    /// Connected with the in-cluster config: netconform runs in a pod.
    pub in_cluster: bool,
    pub server_version: String,
}

const IN_CLUSTER: &str = "in-cluster config";

fn kubeconfig_paths() -> Vec<PathBuf> {
    match std::env::var_os("KUBECONFIG") {
        Some(v) if !v.is_empty() => std::env::split_paths(&v).collect(),
        _ => std::env::var_os("HOME")
            .map(|h| vec![PathBuf::from(h).join(".kube/config")])
            .unwrap_or_default(),
    }
}

/// A kube error as one line for a person: for a refused request the API
/// server's own message (a 403 names the user, verb, resource and namespace),
/// what a 401 means, else the error as kube says it.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 401 => "the API server rejected the credentials (401 Unauthorized: a token or certificate that is invalid, expired or revoked)".to_string(),
        kube::Error::Api(s) if s.code == 403 => format!("forbidden (403): {}", s.message),
        kube::Error::Api(s) => format!("{} {}: {}", s.code, s.reason, s.message),
        // A transport error says little by itself ("client error (Connect)"):
        // its causes say what happened (connection refused, a certificate).
        other => {
            let mut text = other.to_string();
            let mut cause = std::error::Error::source(other);
            while let Some(c) = cause {
                let said = c.to_string();
                if !text.contains(&said) {
                    text = format!("{text}: {said}");
                }
                cause = c.source();
            }
            text
        }
    }
}

/// Connects and asks the API server for its version, within [`CONNECT_TIMEOUT`].
pub async fn connect() -> Result<Cluster, ConnectError> {
    let context = std::env::var("NETCONFORM_CONTEXT")
        .ok()
        .filter(|c| !c.is_empty());
    let paths: Vec<PathBuf> = kubeconfig_paths()
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    let (config, source) = if paths.is_empty() {
        let tried = format!(
            "kubeconfig {} (not found), then in-cluster config",
            kubeconfig_paths()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        );
        let config = Config::incluster().map_err(|e| ConnectError {
            tried: tried.clone(),
            reason: e.to_string(),
        })?;
        (config, IN_CLUSTER.to_string())
    } else {
        let shown = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let mut merged: Option<Kubeconfig> = None;
        for p in &paths {
            let kc = Kubeconfig::read_from(p).map_err(|e| ConnectError {
                tried: format!("kubeconfig {}", p.display()),
                reason: e.to_string(),
            })?;
            merged = Some(match merged {
                None => kc,
                Some(m) => m.merge(kc).map_err(|e| ConnectError {
                    tried: format!("kubeconfig {shown}"),
                    reason: e.to_string(),
                })?,
            });
        }
        let kubeconfig = merged.expect("at least one path");
        let context_name = context
            .clone()
            .or_else(|| kubeconfig.current_context.clone())
            .unwrap_or_else(|| "<none>".into());
        let tried = format!("kubeconfig {shown}, context {context_name}");
        let options = KubeConfigOptions {
            context: context.clone(),
            ..Default::default()
        };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| ConnectError {
                tried: tried.clone(),
                reason: e.to_string(),
            })?;
        (config, tried)
    };
    let mut config = config;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    let source = if source == IN_CLUSTER {
        source
    } else {
        format!("{source}, server {}", config.cluster_url)
    };
    let client = Client::try_from(config).map_err(|e| ConnectError {
        tried: source.clone(),
        reason: e.to_string(),
    })?;
    let version = tokio::time::timeout(CONNECT_TIMEOUT, client.apiserver_version())
        .await
        .map_err(|_| ConnectError {
            tried: source.clone(),
            reason: format!("the API server did not answer within {CONNECT_TIMEOUT:?}"),
        })?
        .map_err(|e| ConnectError {
            tried: source.clone(),
            reason: describe(&e),
        })?;
    Ok(Cluster {
        client,
        in_cluster: source == IN_CLUSTER,
        source,
        server_version: version.git_version,
    })
}

/// Nodes a fixture pod may be placed on: Ready, schedulable, and without a
/// NoSchedule/NoExecute taint (fixture pods tolerate none). Sorted by name.
pub async fn schedulable_nodes(client: &Client) -> kube::Result<Vec<Node>> {
    let mut nodes: Vec<Node> = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(is_schedulable)
        .collect();
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(nodes)
}

/// The environment variable naming the one host outside the cluster that
/// checks may target: its address, or one address per family separated by a
/// comma (`10.250.0.100,fd00:10:250::100`; the testbed's `testbed env` sets it).
pub const OUTSIDE_HOST_VAR: &str = "NETCONFORM_OUTSIDE_HOST";

/// The outside host's addresses the user named (none, or one per family);
/// an error names the variable and what is wrong with it.
pub fn outside_hosts() -> Result<Vec<std::net::IpAddr>, String> {
    parse_outside_hosts(&std::env::var(OUTSIDE_HOST_VAR).unwrap_or_default())
}

fn parse_outside_hosts(value: &str) -> Result<Vec<std::net::IpAddr>, String> {
    let mut hosts: Vec<std::net::IpAddr> = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let ip: std::net::IpAddr = part.parse().map_err(|e| {
            format!("{OUTSIDE_HOST_VAR}={value:?}: {part:?} is not an IP address ({e}); name the outside host by its address")
        })?;
        if let Some(other) = hosts.iter().find(|h| h.is_ipv4() == ip.is_ipv4()) {
            return Err(format!(
                "{OUTSIDE_HOST_VAR}={value:?} names two {} addresses ({other} and {ip}); name one host, at most one address per family",
                if ip.is_ipv4() { "IPv4" } else { "IPv6" }
            ));
        }
        hosts.push(ip);
    }
    Ok(hosts)
}

pub fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn is_schedulable(node: &Node) -> bool {
    let spec = node.spec.as_ref();
    let cordoned = spec.and_then(|s| s.unschedulable).unwrap_or(false);
    let tainted = spec.and_then(|s| s.taints.as_ref()).is_some_and(|t| {
        t.iter()
            .any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
    });
    !cordoned && !tainted && is_ready(node)
}

/// "IPv4" and/or "IPv6", from the nodes' pod CIDRs.
pub fn ip_families(nodes: &[Node]) -> std::collections::BTreeSet<String> {
    nodes
        .iter()
        .filter_map(|n| n.spec.as_ref())
        .flat_map(|s| {
            s.pod_cidrs
                .clone()
                .unwrap_or_default()
                .into_iter()
                .chain(s.pod_cidr.clone())
        })
        .map(|c| {
            if c.contains(':') {
                "IPv6".to_string()
            } else {
                "IPv4".to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_outside_hosts;

    #[test]
    fn the_outside_host_is_named_by_one_address_per_family() {
        assert!(parse_outside_hosts("").unwrap().is_empty());
        assert_eq!(
            parse_outside_hosts(" 10.250.0.100 ").unwrap(),
            vec!["10.250.0.100".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(
            parse_outside_hosts("10.250.0.100,fd00:10:250::100")
                .unwrap()
                .len(),
            2
        );
        let two_v4 = parse_outside_hosts("10.0.0.1,10.0.0.2").unwrap_err();
        assert!(two_v4.contains("two IPv4 addresses"), "{two_v4}");
        let bad = parse_outside_hosts("10.0.0.1,outside.example").unwrap_err();
        assert!(
            bad.contains("NETCONFORM_OUTSIDE_HOST") && bad.contains("\"outside.example\""),
            "{bad}"
        );
    }
}
