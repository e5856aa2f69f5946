//! `info`: what the pod knows about itself — its hostname and the addresses on
//! its own interfaces (rule 3 compares these with status.podIP and with what
//! peers observe).

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Identity {
    pub hostname: String,
    /// Global addresses of the pod's interfaces (loopback and link-local left out).
    pub addresses: Vec<String>,
    /// The `search` domains of /etc/resolv.conf (how the cluster domain is discovered).
    pub search: Vec<String>,
}

/// The search domains in resolv.conf text (the last `search` line wins, as in libc).
pub fn search_domains(resolv_conf: &str) -> Vec<String> {
    resolv_conf
        .lines()
        .rev()
        .filter_map(|l| l.trim().strip_prefix("search"))
        .find(|rest| rest.starts_with(char::is_whitespace))
        .map(|rest| rest.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".to_string())
}

pub fn identity() -> std::io::Result<Identity> {
    let mut addresses = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)? {
        let Some(addr) = ifa.address else { continue };
        let ip: std::net::IpAddr = if let Some(v4) = addr.as_sockaddr_in() {
            v4.ip().into()
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            v6.ip().into()
        } else {
            continue;
        };
        let local = match ip {
            std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local(),
            std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.is_unicast_link_local(),
        };
        if !local {
            addresses.push(ip.to_string());
        }
    }
    addresses.sort();
    addresses.dedup();
    let search = std::fs::read_to_string("/etc/resolv.conf")
        .map(|t| search_domains(&t))
        .unwrap_or_default();
    Ok(Identity {
        hostname: hostname(),
        addresses,
        search,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_domains_come_from_the_last_search_line() {
        let conf = "nameserver 10.0.0.10\nsearch a.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n";
        assert_eq!(
            search_domains(conf),
            ["a.svc.cluster.local", "svc.cluster.local", "cluster.local"]
        );
        assert!(search_domains("nameserver 1.2.3.4\nsearchx y\n").is_empty());
    }
}
