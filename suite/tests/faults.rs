//! Proof that the checks catch the faults they target. For each testbed fault:
//! inject it (`testbed/testbed fault NAME`), run the scenarios it concerns,
//! heal it, and require that exactly the expected checks failed and every
//! other check of those scenarios passed.
//!
//! It breaks the testbed on purpose, so it runs only with
//! NETCONFORM_FAULT_TESTS=1 (CI sets it, as root, with the testbed up);
//! otherwise its trials are ignored with one line saying so.

use libtest_mimic::{Arguments, Failed, Trial};
use netconform_harness::checks::Status;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

struct FaultCase {
    fault: &'static str,
    /// Scenarios to run while the fault is active.
    scenarios: &'static [&'static str],
    /// Checks that must fail; every other check of those scenarios must pass.
    must_fail: &'static [&'static str],
    /// Words each failed check's message must contain (e.g. the nodes it blames).
    must_name: &'static [&'static str],
}

const PER_PAIR: [&str; 4] = ["tcp-80", "tcp-81", "udp-80", "udp-81"];

fn cases() -> Vec<FaultCase> {
    vec![
        FaultCase {
            fault: "snat",
            scenarios: &["pod-to-pod", "all-nodes", "pod-ip", "localhost"],
            must_fail: &[
                "pod-to-pod::tcp-other-node",
                "pod-to-pod::udp-other-node",
                "pod-to-pod::http-other-node",
                "all-nodes::tcp",
                "all-nodes::udp",
                "all-nodes::http",
                "pod-ip::peers-see-the-same-address",
            ],
            must_name: &[],
        },
        FaultCase {
            fault: "no-route",
            scenarios: &["pod-to-pod", "all-nodes", "localhost"],
            must_fail: &[
                "pod-to-pod::tcp-other-node",
                "pod-to-pod::udp-other-node",
                "pod-to-pod::http-other-node",
                "all-nodes::tcp",
                "all-nodes::udp",
                "all-nodes::http",
            ],
            must_name: &[],
        },
        FaultCase {
            fault: "dns-down",
            scenarios: &["dns-records", "cluster-ip"],
            must_fail: &[
                "dns-records::service-a-record-is-cluster-ip",
                "dns-records::short-name-through-search-path",
                "dns-records::headless-returns-ready-pod-ips",
                "dns-records::per-pod-record",
                "dns-records::srv-for-named-port",
                "dns-records::srv-headless",
                "dns-records::unknown-name-is-nxdomain",
                "dns-records::headless-drops-an-unready-pod",
                "dns-records::statefulset-pod-record",
                "cluster-ip::by-short-name",
                "cluster-ip::by-name-and-namespace",
                "cluster-ip::by-fqdn",
                "cluster-ip::external-name-resolves-to-its-target",
            ],
            must_name: &[],
        },
        // The testbed breaks kube-proxy on netconform-worker, where the
        // cluster-ip scenario's client runs (placement is deterministic);
        // `solo` (hairpin) runs on the other worker.
        FaultCase {
            fault: "service-rules-off",
            scenarios: &["cluster-ip", "pod-to-pod"],
            must_fail: &[
                "cluster-ip::by-cluster-ip",
                "cluster-ip::by-short-name",
                "cluster-ip::by-name-and-namespace",
                "cluster-ip::by-fqdn",
                "cluster-ip::named-target-port",
                "cluster-ip::udp-port",
                "cluster-ip::spreads-over-backends",
                "cluster-ip::external-name-resolves-to-its-target",
            ],
            must_name: &[],
        },
        // TCP adapts to the smaller path MTU; near-MTU datagrams are lost.
        FaultCase {
            fault: "mtu",
            scenarios: &["large-packets", "pod-to-pod"],
            must_fail: &["large-packets::udp-near-mtu"],
            must_name: &[],
        },
        // One node pair 40 ms slower: only the quiet latency matrix may notice
        // (the functional checks' timeouts are far larger), and it must name the pair.
        FaultCase {
            fault: "slow-pair",
            scenarios: &["latency", "pod-to-pod"],
            must_fail: &[
                "latency::tcp-connect-pairs",
                "latency::udp-round-trip-pairs",
            ],
            must_name: &[
                "netconform-worker -> netconform-worker2",
                "netconform-worker2 -> netconform-worker",
            ],
        },
        FaultCase {
            fault: "netpol-off",
            scenarios: &[
                "np-no-policy",
                "np-deny-ingress",
                "np-from-pod",
                "np-from-namespace",
                "np-and-or",
                "np-ports",
                "np-deny-egress",
                "np-egress-to-pod",
                "np-ip-block",
                "np-union",
            ],
            must_fail: &[], // filled in below: every matrix check but np-no-policy's
            must_name: &[],
        },
    ]
}

fn expected_failures(case: &FaultCase) -> BTreeSet<String> {
    if case.fault == "netpol-off" {
        return case
            .scenarios
            .iter()
            .filter(|s| **s != "np-no-policy")
            .flat_map(|s| PER_PAIR.iter().map(move |c| format!("{s}::{c}")))
            .collect();
    }
    case.must_fail.iter().map(|s| s.to_string()).collect()
}

fn testbed(args: &[&str]) -> Result<(), String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testbed/testbed");
    let status = Command::new("bash")
        .arg(&script)
        .args(args)
        .status()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "testbed/testbed {} failed ({status})",
            args.join(" ")
        ))
    }
}

fn run_case(case: &FaultCase) -> Result<(), Failed> {
    testbed(&["heal"])?;
    testbed(&["fault", case.fault])?;
    let scenarios: BTreeSet<&str> = case.scenarios.iter().copied().collect();
    let records = netconform_suite::run_checks(&|trial| {
        trial
            .split("::")
            .next()
            .is_some_and(|s| scenarios.contains(s))
    });
    // Heal whatever the run did, before judging it.
    let healed = testbed(&["heal"]);
    let records = records?;
    healed?;

    let failed: BTreeSet<String> = records
        .iter()
        .filter(|r| matches!(r.status, Status::Failed(_)))
        .map(|r| r.trial.clone())
        .collect();
    let passed = records
        .iter()
        .filter(|r| r.status == Status::Passed)
        .count();
    let want = expected_failures(case);
    println!(
        "fault {}: {} checks run, {} failed as expected, {} passed",
        case.fault,
        records.len(),
        failed.intersection(&want).count(),
        passed
    );
    for f in &failed {
        let reason = records
            .iter()
            .find(|r| &r.trial == f)
            .and_then(|r| match &r.status {
                Status::Failed(m) => Some(failure_summary(m)),
                _ => None,
            });
        println!("  failed: {f}: {}", reason.unwrap_or_default());
    }
    let unnamed: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.status {
            Status::Failed(m) => Some((r, m)),
            _ => None,
        })
        .flat_map(|(r, m)| {
            case.must_name
                .iter()
                .filter(|w| !m.contains(**w))
                .map(move |w| format!("{} does not name `{w}`", r.trial))
        })
        .collect();
    if !unnamed.is_empty() {
        return Err(format!("fault {}: {}", case.fault, unnamed.join("; ")).into());
    }
    let missed: Vec<&String> = want.difference(&failed).collect();
    let extra: Vec<&String> = failed.difference(&want).collect();
    if missed.is_empty() && extra.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fault {}: checks that should have failed but passed: {missed:?}; checks that failed but should have passed: {extra:?}",
            case.fault
        )
        .into())
    }
}

/// The line of a failure message that says what was observed.
fn failure_summary(message: &str) -> String {
    const SAYS: [&str; 10] = [
        "expected ",
        "source address",
        "answers:",
        "SRV:",
        "hostname:",
        "status.podIP",
        "scenario setup failed",
        "cannot plan",
        "probes could not run",
        "node pair",
    ];
    let lines: Vec<&str> = message.lines().map(str::trim).collect();
    let pick = lines
        .iter()
        .find(|l| SAYS.iter().any(|s| l.starts_with(s)) && !l.starts_with("expected (rows"))
        .or(lines.first())
        .copied()
        .unwrap_or_default();
    let mut text = pick.to_string();
    if message.contains("expected (rows") {
        let mismatches = message.matches('!').count();
        text = format!(
            "{} ({mismatches} cells differ from the expected matrix)",
            lines
                .iter()
                .find(|l| l.contains("probes failed"))
                .copied()
                .unwrap_or(pick)
        );
    }
    text.chars().take(220).collect()
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // The cases share one cluster and break it in turn: one at a time.
    args.test_threads = Some(1);
    let enabled = std::env::var("NETCONFORM_FAULT_TESTS").is_ok_and(|v| v == "1");
    if !enabled && !args.list {
        eprintln!("netconform faults: NETCONFORM_FAULT_TESTS is not 1; the fault trials are ignored (they break the testbed on purpose, as root).");
    }
    let trials = cases()
        .into_iter()
        .map(|case| {
            let name = format!("fault::{}", case.fault);
            Trial::test(name, move || run_case(&case)).with_ignored_flag(!enabled)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
