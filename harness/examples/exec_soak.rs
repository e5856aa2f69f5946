//! Many agent execs at once against pods that are already running, counting
//! how each ended. It separates the exec transport (API server, kubelet,
//! container runtime) from the network: every exec runs `probe` with an empty
//! batch, so a healthy run prints `[]` every time.
//!
//! `cargo run --example exec_soak -- <namespace> <pod>[,<pod>...] <count> <parallel>`

use futures::StreamExt;
use netconform_agent::protocol::ProbeBatch;
use netconform_harness::cluster::exec::{exec_output, AGENT_BINARY, AGENT_CONTAINER};
use std::collections::BTreeMap;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ns, pods, count, parallel] = args.as_slice() else {
        eprintln!("usage: exec_soak <namespace> <pod>[,<pod>...] <count> <parallel>");
        std::process::exit(2);
    };
    let pods: Vec<&str> = pods.split(',').collect();
    let count: usize = count.parse().expect("count is a number");
    let parallel: usize = parallel.parse().expect("parallel is a number");
    let client = kube::Client::try_default().await.expect("a kubeconfig");
    let input = serde_json::to_vec(&ProbeBatch {
        probes: vec![],
        sequential: false,
    })
    .unwrap();
    let started = std::time::Instant::now();
    let outcomes: Vec<(String, u128)> = futures::stream::iter(0..count)
        .map(|i| {
            let (client, input, ns, pod) = (
                client.clone(),
                input.clone(),
                ns.clone(),
                pods[i % pods.len()],
            );
            async move {
                let t = std::time::Instant::now();
                let r = exec_output(
                    &client,
                    &ns,
                    pod,
                    AGENT_CONTAINER,
                    &[AGENT_BINARY, "probe"],
                    &input,
                )
                .await;
                let kind = match r {
                    Ok((out, _)) if out == b"[]\n" => "ok".to_string(),
                    Ok((out, err)) => {
                        let kind = format!(
                            "success with {} bytes on stdout, stderr {:?}",
                            out.len(),
                            String::from_utf8_lossy(&err).trim()
                        );
                        eprintln!("exec {i} in {pod}: {kind}");
                        kind
                    }
                    Err(e) => {
                        eprintln!("exec {i} in {pod}: {e}");
                        e.split(" after ")
                            .next()
                            .unwrap_or(&e)
                            .replace(pod, "<pod>")
                    }
                };
                (kind, t.elapsed().as_millis())
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut ms: Vec<u128> = outcomes.iter().map(|(_, ms)| *ms).collect();
    ms.sort();
    for (k, _) in &outcomes {
        *by_kind.entry(k.clone()).or_default() += 1;
    }
    println!(
        "exec soak: {count} execs, {parallel} at a time, {:.1} s; per exec ms p50 {} p99 {} max {}",
        started.elapsed().as_secs_f64(),
        ms[ms.len() / 2],
        ms[ms.len() * 99 / 100],
        ms[ms.len() - 1]
    );
    for (k, n) in by_kind {
        println!("  {n:6}  {k}");
    }
}
