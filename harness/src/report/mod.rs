//! What a run found, and the files it is written to: `junit.xml` (CI),
//! `results.json` (every probe, every sample), `conformance.json` (the
//! report a vendor publishes) and `report.html` (the same, for a browser).

pub mod conformance;
pub mod html;
pub mod junit;
pub mod matrix;
pub mod text;

use crate::features::FeaturePlan;
use crate::setup::world::Endpoint;
use crate::verdict::stats::{DnsSummary, LatencySummary, PairLatency, PairThroughput};
use crate::verdict::Status;
use netconform_protocol::{ProbeResult, ProbeSpec};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize)]
pub struct ProbeRecord {
    pub from: Endpoint,
    /// `ns/pod`, `node X ip:port`, a DNS name, `localhost`.
    pub to: String,
    pub spec: ProbeSpec,
    pub result: ProbeResult,
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckRecord {
    pub scenario: String,
    pub check: String,
    /// The libtest trial name: `<scenario>::<check>`.
    pub trial: String,
    pub features: Vec<String>,
    pub rule: Option<String>,
    #[serde(flatten)]
    pub status: Status,
    pub duration_ms: u64,
    pub latency: Option<LatencySummary>,
    /// The DNS queries behind the samples (loss the client's retries covered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsSummary>,
    /// Quiet scenarios: latency per (client node, server node).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node_pairs: Vec<PairLatency>,
    /// Quiet scenarios, `stream_ms` checks: throughput per (client node, server node).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node_pair_throughput: Vec<PairThroughput>,
    /// For checks that wait for convergence (NetworkPolicy): how long after
    /// the fixtures were applied the check first passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converged_after_ms: Option<u64>,
    pub probes: Vec<ProbeRecord>,
}

impl CheckRecord {
    /// A check that ran no probe (skipped, or judged without them): its
    /// verdict and nothing measured. `trial` is `<scenario>::<check>`.
    pub fn unprobed(
        scenario: &str,
        check: &str,
        features: Vec<String>,
        rule: Option<String>,
        status: Status,
    ) -> CheckRecord {
        CheckRecord {
            scenario: scenario.to_string(),
            check: check.to_string(),
            trial: format!("{scenario}::{check}"),
            features,
            rule,
            status,
            duration_ms: 0,
            latency: None,
            dns: None,
            node_pairs: vec![],
            node_pair_throughput: vec![],
            converged_after_ms: None,
            probes: vec![],
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub cluster: String,
    pub server_version: String,
    pub started_unix: u64,
    pub duration_ms: u64,
    pub checks: Vec<CheckRecord>,
    /// Execs whose output the transport lost and whose kept results were read
    /// instead: not a verdict, a measure of the exec path (see docs/verdicts.md).
    pub exec_transport_losses: Vec<crate::cluster::exec::TransportLoss>,
}

/// In results.json a verdict is `status`, its text as `message`, and the
/// typed reason as `failure` or `skip`.
impl Serialize for Status {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self {
            Status::Passed => map.serialize_entry("status", "passed")?,
            Status::Failed(f) => {
                map.serialize_entry("status", "failed")?;
                map.serialize_entry("message", &f.to_string())?;
                map.serialize_entry("failure", f)?;
            }
            Status::Skipped(s) => {
                map.serialize_entry("status", "skipped")?;
                map.serialize_entry("message", &s.to_string())?;
                map.serialize_entry("skip", s)?;
            }
        }
        map.end()
    }
}

/// Where reports go: NETCONFORM_REPORT_DIR, else `reports/` at the workspace root.
pub fn report_dir(workspace_root: &Path) -> PathBuf {
    std::env::var_os("NETCONFORM_REPORT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root.join("reports"))
}

/// Writes junit.xml, results.json, conformance.json and report.html into
/// `dir`; returns their paths.
pub fn write(run: &RunRecord, plan: &FeaturePlan, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let junit_path = dir.join("junit.xml");
    let xml = junit::report(run)
        .to_string()
        .map_err(std::io::Error::other)?;
    std::fs::write(&junit_path, xml)?;
    let json_path = dir.join("results.json");
    std::fs::write(
        &json_path,
        serde_json::to_vec_pretty(run).map_err(std::io::Error::other)?,
    )?;
    let conformance_path = dir.join("conformance.json");
    let report = conformance::report(run, plan);
    std::fs::write(
        &conformance_path,
        serde_json::to_vec_pretty(&report).map_err(std::io::Error::other)?,
    )?;
    // Rendered from the documents just written, as `report` would from files.
    let html_path = dir.join("report.html");
    let page = html::render(
        &serde_json::to_value(run).map_err(std::io::Error::other)?,
        &serde_json::to_value(&report).map_err(std::io::Error::other)?,
    )
    .map_err(std::io::Error::other)?;
    std::fs::write(&html_path, page)?;
    Ok(vec![junit_path, json_path, conformance_path, html_path])
}
