//! `info`: what the pod knows about itself — its hostname and the addresses on
//! its own interfaces (rule 3 compares these with status.podIP and with what
//! peers observe).

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Identity {
    pub hostname: String,
    /// Global addresses of the pod's interfaces (loopback and link-local left out).
    pub addresses: Vec<String>,
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
    Ok(Identity { hostname: hostname(), addresses })
}
