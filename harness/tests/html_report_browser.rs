//! The HTML report as a browser sees it: a run with a failed policy matrix
//! and node-pair measurements is written the way a real run writes it
//! (`report::write`), opened in headless Chromium, and the DOM Chromium built
//! is checked; a screenshot goes to the artifacts directory.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it), so it is ignored by a
//! plain `cargo test`; run it with
//! `cargo test -p netconform-harness --test html_report_browser -- --ignored`.
//! `NETCONFORM_CHROMIUM` names another binary; `NETCONFORM_ARTIFACTS_DIR`
//! (default `target/artifacts`) receives `report.png` and `report.html`.

use netconform_harness::features::{plan, Declaration, Detected, Implementation};
use netconform_harness::report::{self, CheckRecord, RunRecord};
use netconform_harness::verdict::stats::{LatencySummary, PairLatency, PairThroughput};
use netconform_harness::verdict::{Failure, Judgement, Matrix, MatrixCell, Reach, Status};
use std::path::{Path, PathBuf};
use std::process::Command;

fn check(scenario: &str, name: &str, features: &[&str], status: Status) -> CheckRecord {
    let features = features.iter().map(|f| f.to_string()).collect();
    let rule = Some("the rule <as written>".to_string());
    CheckRecord {
        duration_ms: 1200,
        ..CheckRecord::unprobed(scenario, name, features, rule, status)
    }
}

fn policy_failure() -> Failure {
    let pods = ["x/a", "x/b", "y/a"];
    let mut cells = Vec::new();
    for from in pods {
        for to in pods {
            let expected = if to == "x/a" && from != "x/a" {
                Reach::Blocked
            } else {
                Reach::Connects
            };
            // The fault: y/a still reaches x/a.
            let observed = if from == "y/a" && to == "x/a" {
                Reach::Connects
            } else {
                expected
            };
            cells.push(MatrixCell {
                from: from.into(),
                to: to.into(),
                expected,
                observed,
            });
        }
    }
    Failure::DidNotConverge {
        limit_ms: 30_000,
        rounds: 12,
        last: Box::new(Failure::Judged(Judgement {
            probes: 9,
            failed_probes: vec![],
            check_problems: vec![],
            matrix: Some(Matrix {
                rows: pods.iter().map(|p| p.to_string()).collect(),
                columns: pods.iter().map(|p| p.to_string()).collect(),
                cells,
            }),
        })),
    }
}

fn sample_run() -> RunRecord {
    let nodes = ["control-plane", "worker", "worker2"];
    let mut pairs = check("latency", "tcp-connect-pairs", &["latency"], Status::Passed);
    let mut throughput = check(
        "latency",
        "tcp-throughput-pairs",
        &["throughput"],
        Status::Passed,
    );
    for (i, from) in nodes.iter().enumerate() {
        for (j, to) in nodes.iter().enumerate() {
            let us = 100 + 40_000 * u64::from(i == 1 && j == 2);
            pairs.node_pairs.push(PairLatency {
                from: from.to_string(),
                to: to.to_string(),
                latency: LatencySummary {
                    samples: 50,
                    p50_us: us,
                    p90_us: us,
                    p99_us: us,
                    max_us: us,
                },
            });
            throughput.node_pair_throughput.push(PairThroughput {
                from: from.to_string(),
                to: to.to_string(),
                streams: 3,
                median_mbps: if i == j { 8000.0 } else { 5000.0 },
                min_mbps: 4000.0,
            });
        }
    }
    RunRecord {
        run_id: "browser-test".into(),
        cluster: "kubeconfig /k, context c".into(),
        server_version: "v1.34.4".into(),
        started_unix: 1_795_420_800,
        duration_ms: 41_000,
        checks: vec![
            check("pod-to-pod", "tcp-other-node", &["core"], Status::Passed),
            check(
                "np-deny",
                "tcp-80",
                &["network-policy"],
                Status::Failed(policy_failure()),
            ),
            pairs,
            throughput,
        ],
        exec_transport_losses: vec![],
    }
}

fn artifacts_dir() -> PathBuf {
    std::env::var_os("NETCONFORM_ARTIFACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts"))
}

/// Chromium with everything that would reach out switched off: the page is
/// local, and this machine's network is closed.
fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    let binary = std::env::var("NETCONFORM_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile_arg = format!("--user-data-dir={}", profile.display());
    Command::new(&binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            profile_arg.as_str(),
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start `{binary}` (Debian package chromium): {e}"))
}

#[test]
#[ignore = "needs Chromium: cargo test -p netconform-harness --test html_report_browser -- --ignored"]
fn chromium_renders_the_report_with_its_matrix_and_heat_maps() {
    let dir = tempfile::tempdir().unwrap();
    let declaration = Declaration {
        profile: Some("full".into()),
        unsupported: vec![],
        implementation: Some(Implementation {
            organization: "Example Networks".into(),
            project: "example-cni".into(),
            url: "https://example.invalid/example-cni".into(),
            version: "v1.2.3".into(),
            contact: vec!["netconform@example.invalid".into()],
        }),
    };
    let feature_plan = plan(&declaration, None, &Detected::default());
    let written = report::write(&sample_run(), &feature_plan, dir.path()).unwrap();
    let html_path = written
        .iter()
        .find(|p| p.ends_with("report.html"))
        .expect("report::write writes report.html")
        .clone();

    // Self-contained: nothing on the page is fetched from anywhere.
    let source = std::fs::read_to_string(&html_path).unwrap();
    for fetch in ["src=", "href=", "@import", "url("] {
        assert!(
            !source.contains(fetch),
            "the page fetches something: `{fetch}`"
        );
    }

    let url = format!("file://{}", html_path.display());
    let profile = dir.path().join("chromium-profile");
    let out = chromium(&profile, &["--dump-dom", &url]);
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8(out.stdout).unwrap();

    // The verdict and the run's counts.
    assert!(
        dom.contains(r#"id="verdict" class="verdict not-conformant" data-conformant="false""#),
        "{dom}"
    );
    assert!(dom.contains(r#"data-checks="4" data-passed="3" data-failed="1" data-skipped="0""#));
    assert!(dom.contains("Example Networks example-cni v1.2.3"));
    // Features: network-policy failed, core passed, a feature with no check not run.
    assert!(dom.contains(r#"data-feature="network-policy" data-status="failed""#));
    assert!(dom.contains(r#"data-feature="core" data-status="passed""#));
    assert!(dom.contains(r#"data-feature="dns" data-status="not_run""#));
    // The failure's matrix: 3x3 cells, the one wrong cell marked, in the right row.
    let failure = dom
        .split(r#"<div class="failure" data-trial="np-deny::tcp-80">"#)
        .nth(1)
        .expect("the failure is shown");
    let matrix = failure.split("</table>").next().unwrap();
    assert!(matrix.contains(r#"data-mismatches="1""#));
    assert_eq!(matrix.matches("data-expected=").count(), 9, "{matrix}");
    let mismatch_row = matrix
        .split("<tr>")
        .find(|row| row.contains("class=\"mismatch\""))
        .expect("a row with the mismatch");
    assert!(mismatch_row.contains("<th>y/a</th>"), "{mismatch_row}");
    assert!(mismatch_row.contains(r#"data-expected="blocked" data-observed="connects""#));
    // Heat maps: latency (the slow pair hottest) and throughput.
    let latency_map = dom
        .split(r#"data-trial="latency::tcp-connect-pairs" data-metric="latency p50 (ms)""#)
        .nth(1)
        .expect("the latency heat map")
        .split("</table>")
        .next()
        .unwrap();
    assert_eq!(latency_map.matches("data-heat=").count(), 9);
    assert!(
        latency_map.contains(r#"data-heat="100">40.10</td>"#),
        "{latency_map}"
    );
    assert!(dom.contains(r#"data-metric="throughput median (Mbit/s)""#));
    // Every check is listed under its scenario.
    for trial in [
        "pod-to-pod::tcp-other-node",
        "np-deny::tcp-80",
        "latency::tcp-throughput-pairs",
    ] {
        assert!(
            dom.contains(&format!(r#"<tr data-trial="{trial}""#)),
            "{trial}"
        );
    }

    // A screenshot for the CI artifacts, and the page beside it.
    let artifacts = artifacts_dir();
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join("report.png");
    let _ = std::fs::remove_file(&png);
    let screenshot = format!("--screenshot={}", png.display());
    let out = chromium(&profile, &[&screenshot, "--window-size=1280,2400", &url]);
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert!(
        image.starts_with(b"\x89PNG") && image.len() > 10_000,
        "not a real screenshot"
    );
    std::fs::copy(&html_path, artifacts.join("report.html")).unwrap();
    println!("screenshot: {}", png.display());
}
