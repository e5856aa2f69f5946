//! Which trials libtest will run, decided the way libtest-mimic decides it, so
//! the suite starts exactly those scenarios and checks (and leaks nothing for
//! trials a filter left out).

use libtest_mimic::Arguments;

pub fn will_run(args: &Arguments, name: &str, ignored: bool) -> bool {
    if let Some(filter) = &args.filter {
        let hit = if args.exact {
            name == filter
        } else {
            name.contains(filter.as_str())
        };
        if !hit {
            return false;
        }
    }
    let skipped = args.skip.iter().any(|s| {
        if args.exact {
            name == s
        } else {
            name.contains(s.as_str())
        }
    });
    if skipped {
        return false;
    }
    !matches!(
        (ignored, args.ignored, args.include_ignored),
        (true, false, false) | (false, true, _)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn args(a: &[&str]) -> Arguments {
        Arguments::from_iter(std::iter::once("conformance").chain(a.iter().copied()))
    }

    #[rstest]
    #[case(&[], "pod-to-pod::tcp-same-node", false, true)]
    #[case(&["pod-to-pod"], "pod-to-pod::tcp-same-node", false, true)]
    #[case(&["dns"], "pod-to-pod::tcp-same-node", false, false)]
    #[case(&["--exact", "pod-to-pod::tcp"], "pod-to-pod::tcp-same-node", false, false)]
    #[case(&["--exact", "pod-to-pod::tcp-same-node"], "pod-to-pod::tcp-same-node", false, true)]
    #[case(&["--skip", "udp"], "pod-to-pod::udp-other-node", false, false)]
    #[case(&["--skip", "udp"], "pod-to-pod::tcp-other-node", false, true)]
    #[case(&[], "s::skipped-check", true, false)]
    #[case(&["--include-ignored"], "s::skipped-check", true, true)]
    #[case(&["--ignored"], "s::normal", false, false)]
    fn mirrors_libtest_filtering(
        #[case] a: &[&str],
        #[case] name: &str,
        #[case] ignored: bool,
        #[case] want: bool,
    ) {
        assert_eq!(will_run(&args(a), name, ignored), want);
    }

    #[test]
    fn trial_names_join_scenario_and_check() {
        assert_eq!(
            crate::trial_name("pod-to-pod", "tcp-same-node"),
            "pod-to-pod::tcp-same-node"
        );
    }
}
