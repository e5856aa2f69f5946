//! Latency statistics over probe samples (HdrHistogram, microsecond resolution).

use hdrhistogram::Histogram;
use netconform_protocol::Attempt;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    pub samples: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// Summarises latencies in microseconds; None when there are none.
pub fn summarise(latencies_us: impl IntoIterator<Item = u64>) -> Option<LatencySummary> {
    // 1 µs to 10 minutes at 3 significant digits: anything a bounded probe can take.
    let mut h =
        Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
    for v in latencies_us {
        h.saturating_record(v.max(1));
    }
    (!h.is_empty()).then(|| LatencySummary {
        samples: h.len(),
        p50_us: h.value_at_quantile(0.50),
        p90_us: h.value_at_quantile(0.90),
        p99_us: h.value_at_quantile(0.99),
        max_us: h.max(),
    })
}

/// Latency between two nodes: the samples whose client ran on `from` and
/// whose server ran on `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PairLatency {
    pub from: String,
    pub to: String,
    #[serde(flatten)]
    pub latency: LatencySummary,
}

/// Groups `(from node, to node, latency µs)` samples into a node-pair matrix,
/// sorted by pair.
pub fn pair_latency<'a>(
    samples: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
) -> Vec<PairLatency> {
    let mut by_pair: std::collections::BTreeMap<(&str, &str), Vec<u64>> = Default::default();
    for (from, to, us) in samples {
        by_pair.entry((from, to)).or_default().push(us);
    }
    by_pair
        .into_iter()
        .filter_map(|((from, to), v)| {
            Some(PairLatency {
                from: from.into(),
                to: to.into(),
                latency: summarise(v)?,
            })
        })
        .collect()
}

/// The cluster's own baseline: the lower median over node pairs of their
/// p50. Lower, so that one slow link between two nodes (2 of the 4 pairs of a
/// two-node cluster, both directions) cannot drag the baseline up to itself.
pub fn baseline_p50_us(pairs: &[PairLatency]) -> Option<u64> {
    let mut p50s: Vec<u64> = pairs.iter().map(|p| p.latency.p50_us).collect();
    p50s.sort_unstable();
    p50s.get(p50s.len().checked_sub(1)? / 2).copied()
}

/// The pairs whose p50 is over `ratio` x baseline and over baseline + floor.
pub fn pair_outliers(pairs: &[PairLatency], ratio: f64, floor_us: f64) -> Vec<&PairLatency> {
    let Some(base) = baseline_p50_us(pairs) else {
        return vec![];
    };
    pairs
        .iter()
        .filter(|p| {
            let p50 = p.latency.p50_us as f64;
            p50 > ratio * base as f64 && p50 - base as f64 > floor_us
        })
        .collect()
}

/// Throughput between two nodes: the streams whose client ran on `from` and
/// whose server ran on `to`, in Mbit/s.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairThroughput {
    pub from: String,
    pub to: String,
    pub streams: u64,
    pub median_mbps: f64,
    pub min_mbps: f64,
}

impl PairThroughput {
    pub fn same_node(&self) -> bool {
        self.from == self.to
    }
}

/// Groups `(from node, to node, Mbit/s)` streams into a node-pair list, sorted by pair.
pub fn pair_throughput<'a>(
    streams: impl IntoIterator<Item = (&'a str, &'a str, f64)>,
) -> Vec<PairThroughput> {
    let mut by_pair: std::collections::BTreeMap<(&str, &str), Vec<f64>> = Default::default();
    for (from, to, mbps) in streams {
        by_pair.entry((from, to)).or_default().push(mbps);
    }
    by_pair
        .into_iter()
        .map(|((from, to), mut v)| {
            v.sort_by(f64::total_cmp);
            PairThroughput {
                from: from.into(),
                to: to.into(),
                streams: v.len() as u64,
                median_mbps: v[v.len() / 2],
                min_mbps: v[0],
            }
        })
        .collect()
}

/// The baseline a pair is compared with: the upper median of the medians of
/// the pairs of its own kind (same-node or cross-node; a same-node stream
/// never touches the wire). Upper, so that one throttled link between two
/// nodes (both directions) cannot drag the baseline down to itself. None
/// with fewer than three pairs of the kind: the two directions of a
/// cluster's only node link have nothing to be compared with.
pub fn throughput_baseline(pairs: &[PairThroughput], same_node: bool) -> Option<f64> {
    let mut medians: Vec<f64> = pairs
        .iter()
        .filter(|p| p.same_node() == same_node)
        .map(|p| p.median_mbps)
        .collect();
    medians.sort_by(f64::total_cmp);
    (medians.len() >= MIN_PAIRS_FOR_BASELINE).then(|| medians[medians.len() / 2])
}

pub const MIN_PAIRS_FOR_BASELINE: usize = 3;

/// The pairs whose median is under baseline / `ratio` and over `floor_mbps`
/// below the baseline, each with its baseline.
pub fn throughput_outliers(
    pairs: &[PairThroughput],
    ratio: f64,
    floor_mbps: f64,
) -> Vec<(&PairThroughput, f64)> {
    pairs
        .iter()
        .filter_map(|p| {
            let base = throughput_baseline(pairs, p.same_node())?;
            (p.median_mbps * ratio < base && base - p.median_mbps > floor_mbps).then_some((p, base))
        })
        .collect()
}

/// The DNS queries behind a check's samples: how many went unanswered, and
/// how many samples still resolved because the client's own retry got the
/// answer. Loss is reported beside the verdict, not folded into it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DnsSummary {
    pub queries: u64,
    /// Queries that got no answer within resolv.conf's timeout.
    pub lost: u64,
    /// Samples that resolved although one of their queries was lost.
    pub resolved_after_loss: u64,
    /// The slowest single answered query.
    pub max_query_us: u64,
}

pub fn dns_summary<'a>(attempts: impl IntoIterator<Item = &'a Attempt>) -> Option<DnsSummary> {
    let mut s = DnsSummary::default();
    for a in attempts {
        let lost = a.dns_queries.iter().filter(|q| q.result.is_lost()).count() as u64;
        s.queries += a.dns_queries.len() as u64;
        s.lost += lost;
        if lost > 0 && a.outcome != netconform_protocol::Outcome::DnsError {
            s.resolved_after_loss += 1;
        }
        s.max_query_us = a
            .dns_queries
            .iter()
            .filter(|q| !q.result.is_lost())
            .map(|q| q.latency_us)
            .fold(s.max_query_us, u64::max);
    }
    (s.queries > 0).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn streams(medians: &[(&'static str, &'static str, f64)]) -> Vec<PairThroughput> {
        pair_throughput(
            medians
                .iter()
                .flat_map(|(f, t, m)| [(*f, *t, m * 0.9), (*f, *t, *m), (*f, *t, m * 1.2)]),
        )
    }

    #[test]
    fn a_throttled_link_is_an_outlier_in_both_directions_and_same_node_pairs_stand_apart() {
        let (a, b, c) = ("a", "b", "c");
        let m = streams(&[
            (a, a, 40_000.0),
            (b, b, 38_000.0),
            (c, c, 41_000.0),
            (a, b, 20.0),
            (b, a, 19.0),
            (a, c, 9_000.0),
            (c, a, 9_500.0),
            (b, c, 8_800.0),
            (c, b, 9_100.0),
        ]);
        assert_eq!(m[0].median_mbps, 40_000.0);
        assert_eq!(m[0].min_mbps, 36_000.0);
        assert_eq!(throughput_baseline(&m, false), Some(9_000.0));
        assert_eq!(throughput_baseline(&m, true), Some(40_000.0));
        // Cross-node pairs at a quarter of same-node speed are not outliers:
        // each kind has its own baseline.
        let out: Vec<(&str, &str)> = throughput_outliers(&m, 5.0, 100.0)
            .iter()
            .map(|(p, _)| (p.from.as_str(), p.to.as_str()))
            .collect();
        assert_eq!(out, [(a, b), (b, a)]);
    }

    #[test]
    fn a_slow_cluster_below_the_floor_has_no_outlier() {
        // 1/10 of the baseline but only 45 Mbit/s below it: within the floor.
        let m = streams(&[
            ("a", "b", 5.0),
            ("b", "a", 50.0),
            ("a", "c", 50.0),
            ("c", "a", 50.0),
        ]);
        assert_eq!(throughput_baseline(&m, true), None);
        assert!(throughput_outliers(&m, 5.0, 100.0).is_empty());
        assert_eq!(throughput_outliers(&m, 5.0, 10.0).len(), 1);
    }

    #[test]
    fn the_two_directions_of_a_single_link_have_no_baseline() {
        let m = streams(&[
            ("a", "a", 900.0),
            ("b", "b", 900.0),
            ("a", "b", 10.0),
            ("b", "a", 10.0),
        ]);
        assert_eq!(throughput_baseline(&m, false), None);
        assert!(throughput_outliers(&m, 5.0, 100.0).is_empty());
    }

    fn pairs(p50s: &[(&'static str, &'static str, u64)]) -> Vec<PairLatency> {
        pair_latency(
            p50s.iter()
                .flat_map(|(f, t, us)| std::iter::repeat_n((*f, *t, *us), 5)),
        )
    }

    #[test]
    fn a_slow_pair_is_an_outlier_and_jitter_is_not() {
        let healthy = [
            ("a", "b", 300),
            ("b", "a", 310),
            ("a", "c", 290),
            ("c", "a", 305),
            ("b", "c", 900),
            ("c", "b", 280),
        ];
        let m = pairs(&healthy);
        assert_eq!(baseline_p50_us(&m), Some(300));
        // 900 µs is 3x the baseline but within the 2 ms floor: not an outlier.
        assert!(pair_outliers(&m, 3.0, 2000.0).is_empty());
        let mut slow = healthy.to_vec();
        slow[4].2 = 40_000;
        slow[5].2 = 41_000;
        let m = pairs(&slow);
        let out: Vec<(&str, &str)> = pair_outliers(&m, 3.0, 2000.0)
            .iter()
            .map(|p| (p.from.as_str(), p.to.as_str()))
            .collect();
        assert_eq!(out, [("b", "c"), ("c", "b")]);
        // Two nodes, one slow link: half the pairs are slow, the baseline is not.
        let m = pairs(&[
            ("a", "a", 35),
            ("a", "b", 40_000),
            ("b", "a", 40_050),
            ("b", "b", 37),
        ]);
        assert_eq!(baseline_p50_us(&m), Some(37));
        assert_eq!(pair_outliers(&m, 5.0, 5000.0).len(), 2);
    }

    #[test]
    fn no_samples_no_summary() {
        assert_eq!(summarise([]), None);
    }

    #[rstest]
    #[case(&[500], (500, 500, 500, 500))]
    #[case(&[100, 200, 300, 400, 500, 600, 700, 800, 900, 1000], (500, 900, 1000, 1000))]
    fn quantiles_are_within_histogram_precision(
        #[case] samples: &[u64],
        #[case] want: (u64, u64, u64, u64),
    ) {
        let s = summarise(samples.iter().copied()).unwrap();
        let close = |got: u64, want: u64| got.abs_diff(want) <= want / 500 + 1;
        assert!(
            close(s.p50_us, want.0)
                && close(s.p90_us, want.1)
                && close(s.p99_us, want.2)
                && close(s.max_us, want.3),
            "{s:?}"
        );
        assert_eq!(s.samples, samples.len() as u64);
    }

    #[test]
    fn one_slow_sample_in_a_hundred_moves_max_not_p90() {
        let mut samples = vec![1_000u64; 99];
        samples.push(250_000);
        let s = summarise(samples).unwrap();
        assert!(s.p90_us < 1_100, "{s:?}");
        assert!(s.max_us >= 249_000, "{s:?}");
    }
}
