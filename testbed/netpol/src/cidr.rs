//! IPv4 prefix arithmetic for `ipBlock.except`: iptables has no "in A but not in B"
//! match, so `cidr` minus its exceptions is expanded into disjoint prefixes.

use std::net::Ipv4Addr;

/// An IPv4 prefix, kept normalised (host bits zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Prefix {
    pub addr: u32,
    pub len: u8,
}

impl Prefix {
    pub fn parse(s: &str) -> Option<Prefix> {
        let (ip, len) = s.split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        let len: u8 = len.parse().ok()?;
        (len <= 32).then(|| Prefix {
            addr: u32::from(ip) & mask(len),
            len,
        })
    }

    fn contains(&self, other: &Prefix) -> bool {
        other.len >= self.len && (other.addr & mask(self.len)) == self.addr
    }

    fn halves(&self) -> (Prefix, Prefix) {
        let len = self.len + 1;
        (
            Prefix {
                addr: self.addr,
                len,
            },
            Prefix {
                addr: self.addr | (1 << (32 - len)),
                len,
            },
        )
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.len)
    }
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

/// `base` minus every prefix in `except`, as disjoint prefixes in address order.
pub fn subtract(base: Prefix, except: &[Prefix]) -> Vec<Prefix> {
    if except.iter().any(|e| e.contains(&base)) {
        return vec![];
    }
    if !except.iter().any(|e| base.contains(e)) {
        return vec![base];
    }
    let (lo, hi) = base.halves();
    let mut out = subtract(lo, except);
    out.extend(subtract(hi, except));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn p(s: &str) -> Prefix {
        Prefix::parse(s).unwrap()
    }

    #[rstest]
    #[case("10.0.0.0/24", &[], &["10.0.0.0/24"])]
    #[case("10.0.0.0/24", &["10.0.0.0/25"], &["10.0.0.128/25"])]
    #[case("10.0.0.0/24", &["10.0.0.0/16"], &[])]
    #[case("10.0.0.0/24", &["192.168.0.0/16"], &["10.0.0.0/24"])]
    #[case("10.0.0.0/30", &["10.0.0.1/32"], &["10.0.0.0/32", "10.0.0.2/31"])]
    #[case("0.0.0.0/0", &["128.0.0.0/1"], &["0.0.0.0/1"])]
    fn subtracts(#[case] base: &str, #[case] except: &[&str], #[case] want: &[&str]) {
        let except: Vec<Prefix> = except.iter().map(|s| p(s)).collect();
        let got: Vec<String> = subtract(p(base), &except)
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn normalises_host_bits_and_rejects_garbage() {
        assert_eq!(p("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(Prefix::parse("10.0.0.0/33"), None);
        assert_eq!(Prefix::parse("fd00::/8"), None);
    }
}
