//! The `netconform` binary's listing commands, which need no cluster.

use std::process::Command;

fn netconform(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_netconform"))
        .args(args)
        .env(
            "NETCONFORM_SCENARIOS",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios"),
        )
        .output()
        .expect("netconform runs");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn list_scenarios_lines_up_names_counts_and_files() {
    let listing = netconform(&["list", "scenarios"]);
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines.len() > 10, "{listing}");
    // The features (the one column of varying width) start at the same place
    // on every line, after the padded file, and end the line.
    let column = |line: &str| line.find("  [");
    let first = column(lines[0]);
    assert!(first.is_some(), "{listing}");
    for line in &lines {
        assert_eq!(column(line), first, "not aligned: {line:?}\n{listing}");
        assert!(line.ends_with(']'), "{line:?}");
    }
}

#[test]
fn list_checks_names_every_check_once() {
    let listing = netconform(&["list", "checks"]);
    let names: Vec<&str> = listing.lines().collect();
    let unique: std::collections::BTreeSet<&&str> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "a check listed twice");
    assert!(names.contains(&"pod-to-pod::tcp-other-node"), "{listing}");
}
