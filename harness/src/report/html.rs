//! The HTML report (reports/report.html): one self-contained page, readable
//! in a browser without any network fetch: run metadata, each feature's
//! verdict, every failure with expected against observed (policy matrices as
//! coloured tables), the node-pair latency and throughput matrices as heat
//! maps, and every check by scenario.
//!
//! It is rendered from the JSON documents the run writes (results.json and
//! conformance.json), so a report can be rendered again from saved files.
//! The page itself is a minijinja template (`report.html.j2`, auto-escaped);
//! this module only shapes the data for it.

use minijinja::Environment;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

const TEMPLATE: &str = include_str!("report.html.j2");

#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error("{document} has no `{field}`")]
    Missing {
        document: &'static str,
        field: &'static str,
    },
    #[error("rendering the HTML report: {0}")]
    Template(#[from] minijinja::Error),
}

#[derive(Debug, Serialize)]
struct Page {
    meta: Meta,
    features: Vec<FeatureRow>,
    totals: Totals,
    failures: Vec<FailureView>,
    heatmaps: Vec<Heatmap>,
    scenarios: Vec<ScenarioView>,
}

#[derive(Debug, Serialize)]
struct Meta {
    run_id: String,
    cluster: String,
    server_version: String,
    date: String,
    duration_s: String,
    netconform_version: String,
    api_version: String,
    profile: String,
    conformant: bool,
    implementation: Option<ImplementationView>,
    exec_transport_losses: usize,
}

#[derive(Debug, Serialize)]
struct ImplementationView {
    organization: String,
    project: String,
    version: String,
    url: String,
    contact: String,
}

#[derive(Debug, Serialize)]
struct FeatureRow {
    name: String,
    status: String,
    passed: u64,
    failed: u64,
    skipped: u64,
    skip_reason: String,
}

#[derive(Debug, Default, Serialize)]
struct Totals {
    checks: usize,
    passed: usize,
    failed: usize,
    skipped: usize,
}

#[derive(Debug, Serialize)]
struct FailureView {
    trial: String,
    rule: String,
    message: String,
    matrix: Option<MatrixView>,
}

#[derive(Debug, Serialize)]
struct MatrixView {
    columns: Vec<String>,
    rows: Vec<MatrixRow>,
    mismatches: usize,
}

#[derive(Debug, Serialize)]
struct MatrixRow {
    name: String,
    cells: Vec<Option<MatrixCellView>>,
}

#[derive(Debug, Serialize)]
struct MatrixCellView {
    expected: String,
    observed: String,
    matches: bool,
}

#[derive(Debug, Serialize)]
struct Heatmap {
    trial: String,
    metric: String,
    nodes: Vec<String>,
    rows: Vec<HeatRow>,
}

#[derive(Debug, Serialize)]
struct HeatRow {
    node: String,
    cells: Vec<Option<HeatCell>>,
}

#[derive(Debug, Serialize)]
struct HeatCell {
    text: String,
    /// 0 (best) to 100 (worst) within this map; the template colours by it.
    heat: u32,
}

#[derive(Debug, Serialize)]
struct ScenarioView {
    name: String,
    passed: usize,
    failed: usize,
    skipped: usize,
    checks: Vec<CheckRow>,
}

#[derive(Debug, Serialize)]
struct CheckRow {
    check: String,
    trial: String,
    status: String,
    message: String,
    duration_ms: u64,
    p50: String,
    p99: String,
}

/// Renders the page from a run's results.json and conformance.json.
pub fn render(results: &Value, conformance: &Value) -> Result<String, HtmlError> {
    let checks = results["checks"].as_array().ok_or(HtmlError::Missing {
        document: "results.json",
        field: "checks",
    })?;
    let features = conformance["features"]
        .as_object()
        .ok_or(HtmlError::Missing {
            document: "conformance.json",
            field: "features",
        })?;
    let page = Page {
        meta: meta(results, conformance),
        features: features
            .iter()
            .map(|(name, f)| FeatureRow {
                name: name.clone(),
                status: text(&f["status"]),
                passed: f["passed"].as_u64().unwrap_or(0),
                failed: f["failed"].as_u64().unwrap_or(0),
                skipped: f["skipped"].as_u64().unwrap_or(0),
                skip_reason: text(&f["skipReason"]),
            })
            .collect(),
        totals: totals(checks),
        failures: checks
            .iter()
            .filter(|c| c["status"] == "failed")
            .map(|c| FailureView {
                trial: text(&c["trial"]),
                rule: text(&c["rule"]),
                message: text(&c["message"]),
                matrix: find_matrix(&c["failure"]).map(matrix_view),
            })
            .collect(),
        heatmaps: checks.iter().flat_map(heatmaps).collect(),
        scenarios: scenarios(checks),
    };
    let mut env = Environment::new();
    // The name ends in .html: minijinja escapes every value for HTML.
    env.add_template("report.html", TEMPLATE)?;
    let page = minijinja::Value::from(minijinja::value::Serde(&page));
    Ok(env.get_template("report.html")?.render(page)?)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn meta(results: &Value, conformance: &Value) -> Meta {
    let implementation = conformance
        .get("implementation")
        .filter(|i| i.is_object())
        .map(|i| ImplementationView {
            organization: text(&i["organization"]),
            project: text(&i["project"]),
            version: text(&i["version"]),
            url: text(&i["url"]),
            contact: i["contact"]
                .as_array()
                .map(|c| c.iter().map(text).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
        });
    Meta {
        run_id: text(&results["run_id"]),
        cluster: text(&results["cluster"]),
        server_version: text(&results["server_version"]),
        date: text(&conformance["date"]),
        duration_s: format!(
            "{:.1}",
            results["duration_ms"].as_u64().unwrap_or(0) as f64 / 1000.0
        ),
        netconform_version: text(&conformance["netconformVersion"]),
        api_version: text(&conformance["apiVersion"]),
        profile: text(&conformance["profile"]["name"]),
        conformant: conformance["conformant"].as_bool().unwrap_or(false),
        implementation,
        exec_transport_losses: results["exec_transport_losses"]
            .as_array()
            .map_or(0, Vec::len),
    }
}

fn totals(checks: &[Value]) -> Totals {
    let mut t = Totals {
        checks: checks.len(),
        ..Totals::default()
    };
    for c in checks {
        match c["status"].as_str() {
            Some("passed") => t.passed += 1,
            Some("failed") => t.failed += 1,
            _ => t.skipped += 1,
        }
    }
    t
}

/// The expected-vs-observed matrix of a failure, through the wrappers that
/// carry one (`did_not_converge.last`, `cluster_ip_changed.also`).
fn find_matrix(failure: &Value) -> Option<&Value> {
    let judged = match failure["kind"].as_str()? {
        "judged" => failure,
        "did_not_converge" => return find_matrix(&failure["last"]),
        "cluster_ip_changed" => return find_matrix(&failure["also"]),
        _ => return None,
    };
    judged.get("matrix").filter(|m| m.is_object())
}

fn matrix_view(m: &Value) -> MatrixView {
    let names = |key: &str| -> Vec<String> {
        m[key]
            .as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default()
    };
    let (rows, columns) = (names("rows"), names("columns"));
    let mut cells: BTreeMap<(String, String), MatrixCellView> = BTreeMap::new();
    for c in m["cells"].as_array().into_iter().flatten() {
        let (expected, observed) = (text(&c["expected"]), text(&c["observed"]));
        cells.insert(
            (text(&c["from"]), text(&c["to"])),
            MatrixCellView {
                matches: expected == observed,
                expected,
                observed,
            },
        );
    }
    let mismatches = cells.values().filter(|c| !c.matches).count();
    MatrixView {
        rows: rows
            .iter()
            .map(|r| MatrixRow {
                name: r.clone(),
                cells: columns
                    .iter()
                    .map(|c| cells.remove(&(r.clone(), c.clone())))
                    .collect(),
            })
            .collect(),
        columns,
        mismatches,
    }
}

/// One node-pair matrix of results.json, as a heat map.
struct PairMetric {
    /// The list in a check's record, and the value of each entry.
    list: &'static str,
    field: &'static str,
    title: &'static str,
    show: fn(f64) -> String,
    higher_is_better: bool,
}

const PAIR_METRICS: [PairMetric; 2] = [
    PairMetric {
        list: "node_pairs",
        field: "p50_us",
        title: "latency p50 (ms)",
        show: |us| format!("{:.2}", us / 1000.0),
        higher_is_better: false,
    },
    PairMetric {
        list: "node_pair_throughput",
        field: "median_mbps",
        title: "throughput median (Mbit/s)",
        show: |mbps| format!("{mbps:.0}"),
        higher_is_better: true,
    },
];

/// The node-pair matrices of a quiet check: p50 latency and, for streams,
/// median throughput.
fn heatmaps(check: &Value) -> Vec<Heatmap> {
    let trial = text(&check["trial"]);
    PAIR_METRICS
        .iter()
        .filter_map(|m| {
            let pairs = check[m.list].as_array().filter(|p| !p.is_empty())?;
            let values = pairs
                .iter()
                .filter_map(|p| Some((text(&p["from"]), text(&p["to"]), p[m.field].as_f64()?)));
            Some(heatmap(&trial, m.title, values, m.show, m.higher_is_better))
        })
        .collect()
}

fn heatmap(
    trial: &str,
    metric: &str,
    values: impl Iterator<Item = (String, String, f64)>,
    show: impl Fn(f64) -> String,
    higher_is_better: bool,
) -> Heatmap {
    let by_pair: BTreeMap<(String, String), f64> =
        values.map(|(from, to, v)| ((from, to), v)).collect();
    let mut nodes: Vec<String> = by_pair
        .keys()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    nodes.sort();
    nodes.dedup();
    let (lo, hi) = by_pair
        .values()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let heat = |v: f64| {
        let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
        let t = if higher_is_better { 1.0 - t } else { t };
        (t * 100.0).round() as u32
    };
    Heatmap {
        trial: trial.to_string(),
        metric: metric.to_string(),
        rows: nodes
            .iter()
            .map(|from| HeatRow {
                node: from.clone(),
                cells: nodes
                    .iter()
                    .map(|to| {
                        by_pair.get(&(from.clone(), to.clone())).map(|v| HeatCell {
                            text: show(*v),
                            heat: heat(*v),
                        })
                    })
                    .collect(),
            })
            .collect(),
        nodes,
    }
}

fn scenarios(checks: &[Value]) -> Vec<ScenarioView> {
    let mut by_name: BTreeMap<String, ScenarioView> = BTreeMap::new();
    for c in checks {
        let name = text(&c["scenario"]);
        let s = by_name.entry(name.clone()).or_insert_with(|| ScenarioView {
            name,
            passed: 0,
            failed: 0,
            skipped: 0,
            checks: vec![],
        });
        let status = text(&c["status"]);
        match status.as_str() {
            "passed" => s.passed += 1,
            "failed" => s.failed += 1,
            _ => s.skipped += 1,
        }
        let ms = |key: &str| {
            c["latency"][key]
                .as_f64()
                .map(|us| format!("{:.2}", us / 1000.0))
                .unwrap_or_default()
        };
        s.checks.push(CheckRow {
            check: text(&c["check"]),
            trial: text(&c["trial"]),
            status,
            message: text(&c["message"]),
            duration_ms: c["duration_ms"].as_u64().unwrap_or(0),
            p50: ms("p50_us"),
            p99: ms("p99_us"),
        });
    }
    by_name.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn results() -> Value {
        json!({
            "run_id": "r1", "cluster": "kubeconfig k, context c", "server_version": "v1.34.4",
            "started_unix": 0, "duration_ms": 41_000, "exec_transport_losses": [],
            "checks": [
                {"scenario": "np-deny", "check": "tcp-80", "trial": "np-deny::tcp-80",
                 "status": "failed", "duration_ms": 30_000, "rule": "a <policy> blocks",
                 "message": "expected blocked, observed <script>alert(1)</script>",
                 "failure": {"kind": "did_not_converge", "limit_ms": 30000, "rounds": 9,
                   "last": {"kind": "judged", "probes": 4, "failed_probes": [], "check_problems": [],
                     "matrix": {"rows": ["x/a", "x/b"], "columns": ["x/a", "x/b"], "cells": [
                       {"from": "x/a", "to": "x/b", "expected": "blocked", "observed": "connects"},
                       {"from": "x/b", "to": "x/a", "expected": "connects", "observed": "connects"}]}}},
                 "probes": []},
                {"scenario": "latency", "check": "pairs", "trial": "latency::pairs", "status": "passed",
                 "duration_ms": 900, "latency": {"samples": 4, "p50_us": 150, "p90_us": 200, "p99_us": 300, "max_us": 300},
                 "node_pairs": [
                   {"from": "n1", "to": "n1", "samples": 2, "p50_us": 100, "p90_us": 1, "p99_us": 1, "max_us": 1},
                   {"from": "n1", "to": "n2", "samples": 2, "p50_us": 300, "p90_us": 1, "p99_us": 1, "max_us": 1}],
                 "probes": []},
                {"scenario": "latency", "check": "v6", "trial": "latency::v6", "status": "skipped",
                 "message": "no IPv6 pod CIDR", "duration_ms": 0, "probes": []}
            ]
        })
    }

    fn conformance() -> Value {
        json!({"apiVersion": "netconform.io/v1alpha1", "kind": "ConformanceReport",
               "date": "2026-11-23T08:00:00Z", "netconformVersion": "0.1.0", "conformant": false,
               "profile": {"name": "full"},
               "implementation": {"organization": "Example", "project": "example-cni", "url": "u",
                                  "version": "v1", "contact": ["a", "b"]},
               "features": {"network-policy": {"status": "failed", "passed": 0, "failed": 1, "skipped": 0}}})
    }

    #[test]
    fn failures_show_their_matrix_pairs_a_heat_map_and_text_is_escaped() {
        let page = render(&results(), &conformance()).unwrap();
        assert!(page.contains(r#"data-conformant="false""#));
        assert!(
            page.contains(r#"data-checks="3" data-passed="1" data-failed="1" data-skipped="1""#)
        );
        assert!(page.contains(r#"<div class="failure" data-trial="np-deny::tcp-80">"#));
        // The matrix came through did_not_converge.last; one cell differs.
        assert!(page.contains(r#"data-mismatches="1""#), "{page}");
        assert!(
            page.contains(r#"class="mismatch" data-expected="blocked" data-observed="connects""#)
        );
        // Latency: the lower pair is the cool end of the map, the higher the hot one.
        assert!(page.contains(r#"data-heat="0">0.10</td>"#));
        assert!(page.contains(r#"data-heat="100">0.30</td>"#));
        assert!(page.contains("Example example-cni v1"));
        assert!(!page.contains("<script>"), "text is escaped");
        assert!(page.contains("&lt;script&gt;"));
    }

    #[test]
    fn documents_without_their_lists_are_named() {
        let e = render(&json!({}), &conformance()).unwrap_err();
        assert_eq!(e.to_string(), "results.json has no `checks`");
    }
}
