//! A results matrix across clusters (e.g. one column per CNI): each feature's
//! verdict from several conformance reports, as a Markdown table. Built only
//! from published `conformance.json` files, so anyone can redo it from theirs.

use super::conformance::{ConformanceReport, FeatureStatus, API_VERSION, KIND};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One column: a name (e.g. `flannel`) and the report it comes from.
pub struct Column {
    pub name: String,
    pub source: PathBuf,
    pub report: ConformanceReport,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a conformance report: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: {found}, but this netconform reads kind {KIND}, apiVersion {API_VERSION}", path.display())]
    Version { path: PathBuf, found: String },
}

/// Reads a column's report: `path` is a conformance.json or a report
/// directory holding one.
pub fn read_column(name: &str, path: &Path) -> Result<Column, Error> {
    let file = if path.is_dir() {
        path.join("conformance.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|source| Error::Read {
        path: file.clone(),
        source,
    })?;
    // The version first, so an older or newer report says so instead of
    // failing on a field it does or does not have.
    let head: serde_json::Value = serde_json::from_str(&text).map_err(|source| Error::Parse {
        path: file.clone(),
        source,
    })?;
    let field = |name: &str| head.get(name).and_then(|v| v.as_str());
    let (kind, api_version) = (field("kind"), field("apiVersion"));
    if api_version != Some(API_VERSION) || kind != Some(KIND) {
        let shown = |name: &str, value: Option<&str>| match value {
            Some(v) => format!("{name} {v:?}"),
            None => format!("no {name}"),
        };
        return Err(Error::Version {
            path: file,
            found: format!(
                "{}, {}",
                shown("kind", kind),
                shown("apiVersion", api_version)
            ),
        });
    }
    let report = serde_json::from_value(head).map_err(|source| Error::Parse {
        path: file.clone(),
        source,
    })?;
    Ok(Column {
        name: name.to_string(),
        source: file,
        report,
    })
}

fn cell(status: Option<&super::conformance::FeatureResult>) -> String {
    let Some(f) = status else {
        return "-".to_string();
    };
    match f.status {
        FeatureStatus::Passed => format!("pass ({})", f.statistics.passed),
        FeatureStatus::Failed => format!(
            "**FAIL** ({} of {})",
            f.statistics.failed,
            f.statistics.passed + f.statistics.failed + f.statistics.skipped
        ),
        FeatureStatus::Skipped => "skipped".to_string(),
        FeatureStatus::NotRun => "not run".to_string(),
    }
}

/// The matrix: a header per column (run, date, versions, profile, verdict),
/// then one row per feature (profile order, then the rest by name).
pub fn render(columns: &[Column]) -> String {
    let mut out = String::new();
    let header: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let _ = writeln!(out, "| | {} |", header.join(" | "));
    let _ = writeln!(out, "| --- |{}", " --- |".repeat(columns.len()));
    let row = |out: &mut String, label: &str, f: &dyn Fn(&Column) -> String| {
        let cells: Vec<String> = columns.iter().map(f).collect();
        let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
    };
    row(&mut out, "date", &|c| c.report.date.clone());
    row(&mut out, "Kubernetes", &|c| {
        c.report.cluster.server_version.clone()
    });
    row(&mut out, "netconform", &|c| {
        c.report.netconform_version.clone()
    });
    row(&mut out, "profile", &|c| c.report.profile.name.clone());
    row(&mut out, "checks passed / failed / skipped", &|c| {
        let s = &c.report.profile.statistics;
        format!("{} / {} / {}", s.passed, s.failed, s.skipped)
    });
    row(&mut out, "**conformant**", &|c| {
        if c.report.conformant {
            "**yes**".to_string()
        } else {
            "**no**".to_string()
        }
    });
    let mut features: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for c in columns {
        for f in &c.report.profile.features {
            if seen.insert(f.clone()) {
                features.push(f.clone());
            }
        }
    }
    let rest: BTreeSet<&String> = columns
        .iter()
        .flat_map(|c| c.report.features.keys())
        .filter(|f| !seen.contains(*f))
        .collect();
    features.extend(rest.into_iter().cloned());
    for feature in &features {
        row(&mut out, &format!("`{feature}`"), &|c| {
            if c.report.unsupported_features.contains(feature) {
                "declared unsupported".to_string()
            } else {
                cell(c.report.features.get(feature))
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::conformance::{ClusterInfo, FeatureResult, ProfileResult, Statistics};
    use std::collections::BTreeMap;

    fn report(
        conformant: bool,
        features: &[(&str, FeatureStatus, usize, usize)],
    ) -> ConformanceReport {
        ConformanceReport {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            date: "2026-11-23T12:00:00Z".into(),
            netconform_version: "0.1.0".into(),
            implementation: None,
            cluster: ClusterInfo {
                source: "kubeconfig".into(),
                server_version: "v1.34.4".into(),
            },
            run_id: "abc".into(),
            profile: ProfileResult {
                name: "full".into(),
                features: features.iter().map(|f| f.0.to_string()).collect(),
                statistics: Statistics::default(),
            },
            conformant,
            unsupported_features: vec![],
            features: features
                .iter()
                .map(|(name, status, passed, failed)| {
                    (
                        name.to_string(),
                        FeatureResult {
                            status: *status,
                            statistics: Statistics {
                                passed: *passed,
                                failed: *failed,
                                skipped: 0,
                            },
                            ..FeatureResult::default()
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn a_failed_feature_is_marked_in_its_column_only() {
        let columns = vec![
            Column {
                name: "bridge".into(),
                source: "a".into(),
                report: report(
                    true,
                    &[
                        ("pod-to-pod", FeatureStatus::Passed, 8, 0),
                        ("network-policy", FeatureStatus::Passed, 70, 0),
                    ],
                ),
            },
            Column {
                name: "no policy".into(),
                source: "b".into(),
                report: report(
                    false,
                    &[
                        ("pod-to-pod", FeatureStatus::Passed, 8, 0),
                        ("network-policy", FeatureStatus::Failed, 10, 60),
                    ],
                ),
            },
        ];
        let md = render(&columns);
        assert!(
            md.contains("| `network-policy` | pass (70) | **FAIL** (60 of 70) |"),
            "{md}"
        );
        assert!(
            md.contains("| `pod-to-pod` | pass (8) | pass (8) |"),
            "{md}"
        );
        assert!(md.contains("| **conformant** | **yes** | **no** |"), "{md}");
    }

    #[test]
    fn a_report_of_another_version_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("nc-matrix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("conformance.json");
        std::fs::write(
            &file,
            r#"{"apiVersion": "netconform.io/v0", "kind": "ConformanceReport"}"#,
        )
        .unwrap();
        let err = read_column("x", &dir).err().expect("refused");
        assert!(
            err.to_string().contains(
                "kind \"ConformanceReport\", apiVersion \"netconform.io/v0\", but this netconform reads kind ConformanceReport"
            ),
            "{err}"
        );
        std::fs::write(&file, r#"{"apiVersion": "netconform.io/v0"}"#).unwrap();
        let err = read_column("x", &dir).err().expect("refused");
        assert!(
            err.to_string()
                .contains("no kind, apiVersion \"netconform.io/v0\""),
            "{err}"
        );
        std::fs::write(&file, serde_json::to_string(&report(true, &[])).unwrap()).unwrap();
        assert!(read_column("x", &dir).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
