//! The IP families the enforcer programs: IPv4 through iptables, IPv6 through
//! ip6tables. Each family gets its own ruleset, computed from the pods'
//! addresses of that family and the `ipBlock`s of that family.

use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    /// The family of an address, or None when `ip` is not one.
    pub fn of(ip: &str) -> Option<Family> {
        ip.parse::<IpAddr>().ok().map(|a| match a {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        })
    }

    /// Prefix length of a single address: `-s IP/32` or `-s IP/128`.
    pub fn host_len(self) -> u8 {
        match self {
            Family::Ipv4 => 32,
            Family::Ipv6 => 128,
        }
    }

    pub fn iptables(self) -> &'static str {
        match self {
            Family::Ipv4 => "iptables",
            Family::Ipv6 => "ip6tables",
        }
    }

    pub fn iptables_restore(self) -> &'static str {
        match self {
            Family::Ipv4 => "iptables-restore",
            Family::Ipv6 => "ip6tables-restore",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        })
    }
}
