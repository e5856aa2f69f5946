//! Prefix arithmetic for `ipBlock.except`: iptables has no "in A but not in B"
//! match, so `cidr` minus its exceptions is expanded into disjoint prefixes.
//! Works on both families; prefixes of different families never overlap.

use ipnet::IpNet;

/// A CIDR as written in an `ipBlock`, normalised (host bits zero).
pub fn parse(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().map(|n| n.trunc())
}

/// `base` minus every prefix in `except`, as disjoint prefixes in address order.
pub fn subtract(base: IpNet, except: &[IpNet]) -> Vec<IpNet> {
    if except.iter().any(|e| e.contains(&base)) {
        return vec![];
    }
    if !except.iter().any(|e| base.contains(e)) {
        return vec![base];
    }
    // `base` strictly contains an exception, so it is not a single address
    // and splits into two halves.
    base.subnets(base.prefix_len() + 1)
        .expect("a prefix holding a longer one can be split")
        .flat_map(|half| subtract(half, except))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn p(s: &str) -> IpNet {
        parse(s).unwrap()
    }

    #[rstest]
    #[case("10.0.0.0/24", &[], &["10.0.0.0/24"])]
    #[case("10.0.0.0/24", &["10.0.0.0/25"], &["10.0.0.128/25"])]
    #[case("10.0.0.0/24", &["10.0.0.0/16"], &[])]
    #[case("10.0.0.0/24", &["192.168.0.0/16"], &["10.0.0.0/24"])]
    #[case("10.0.0.0/30", &["10.0.0.1/32"], &["10.0.0.0/32", "10.0.0.2/31"])]
    #[case("0.0.0.0/0", &["128.0.0.0/1"], &["0.0.0.0/1"])]
    #[case("fd00::/64", &["fd00::/65"], &["fd00::8000:0:0:0/65"])]
    #[case("fd00::/126", &["fd00::1/128"], &["fd00::/128", "fd00::2/127"])]
    #[case("::/0", &["8000::/1"], &["::/1"])]
    // An exception of the other family takes nothing away.
    #[case("fd00::/64", &["10.0.0.0/8"], &["fd00::/64"])]
    #[case("10.0.0.0/8", &["::/0"], &["10.0.0.0/8"])]
    fn subtracts(#[case] base: &str, #[case] except: &[&str], #[case] want: &[&str]) {
        let except: Vec<IpNet> = except.iter().map(|s| p(s)).collect();
        let got: Vec<String> = subtract(p(base), &except)
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn normalises_host_bits_and_rejects_garbage() {
        assert_eq!(p("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(p("fd00:1::5/32").to_string(), "fd00:1::/32");
        assert_eq!(parse("10.0.0.0/33"), None);
        assert_eq!(parse("fd00::/129"), None);
        assert_eq!(parse("10.0.0.0"), None);
    }
}
