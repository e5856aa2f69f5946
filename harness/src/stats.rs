//! Latency statistics over probe samples (HdrHistogram, microsecond resolution).

use hdrhistogram::Histogram;
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
    let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
    for v in latencies_us {
        h.saturating_record(v.max(1));
    }
    (h.len() > 0).then(|| LatencySummary {
        samples: h.len(),
        p50_us: h.value_at_quantile(0.50),
        p90_us: h.value_at_quantile(0.90),
        p99_us: h.value_at_quantile(0.99),
        max_us: h.max(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn no_samples_no_summary() {
        assert_eq!(summarise([]), None);
    }

    #[rstest]
    #[case(&[500], (500, 500, 500, 500))]
    #[case(&[100, 200, 300, 400, 500, 600, 700, 800, 900, 1000], (500, 900, 1000, 1000))]
    fn quantiles_are_within_histogram_precision(#[case] samples: &[u64], #[case] want: (u64, u64, u64, u64)) {
        let s = summarise(samples.iter().copied()).unwrap();
        let close = |got: u64, want: u64| got.abs_diff(want) <= want / 500 + 1;
        assert!(close(s.p50_us, want.0) && close(s.p90_us, want.1) && close(s.p99_us, want.2) && close(s.max_us, want.3), "{s:?}");
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
