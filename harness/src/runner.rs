//! Running one scenario on a cluster: namespaces, fixture pods, one probe batch
//! per source pod, verdicts, and cleanup by label whatever happened.

use crate::checks::{self, Endpoint, Status};
use crate::fixtures::{self, AgentImage};
use crate::namespaces;
use crate::placement;
use crate::report::{CheckRecord, ProbeRecord};
use crate::run::RunId;
use crate::scenario::{Check, Scenario, Target};

/// The fixture pod a validated check targets.
fn target_pod(to: &Target) -> &str {
    to.pod.as_deref().expect("validated: every check has a pod target")
}
use crate::exec;
use futures::future::join_all;
use kube::Client;
use netconform_agent::protocol::ProbeBatch;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long fixture pods may take to become Ready.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

pub struct RunContext {
    pub client: Client,
    pub run: RunId,
    pub image: AgentImage,
    /// Schedulable node names, sorted.
    pub nodes: Vec<String>,
}

fn progress(scenario: &str, message: impl std::fmt::Display) {
    eprintln!("netconform [{scenario}] {message}");
}

/// Runs the checks of `scenario` named in `selected`, handing each finished
/// check to `report`. Every selected check is reported exactly once.
pub async fn run_scenario(ctx: &RunContext, scenario: &Scenario, selected: &BTreeSet<String>, report: &(dyn Fn(CheckRecord) + Sync)) {
    if selected.is_empty() {
        return;
    }
    let checks: Vec<&Check> = scenario.checks.iter().filter(|c| selected.contains(&c.name)).collect();
    let started = Instant::now();
    let outcome = setup_and_probe(ctx, scenario, &checks).await;
    let elapsed = started.elapsed();
    match outcome {
        Ok(records) => records.into_iter().for_each(report),
        Err(reason) => {
            progress(&scenario.name, format!("setup failed: {reason}"));
            for c in checks {
                report(record(scenario, c, Status::Failed(format!("scenario setup failed: {reason}")), elapsed, None, vec![]));
            }
        }
    }
    match namespaces::delete_by_label(&ctx.client, &scenario_selector(ctx, scenario)).await {
        Ok(names) => progress(&scenario.name, format!("deleting {}", names.join(", "))),
        Err(e) => progress(&scenario.name, format!("could not delete its namespaces (the run's final cleanup retries): {e}")),
    }
}

fn scenario_selector(ctx: &RunContext, scenario: &Scenario) -> String {
    format!("{},{}={}", ctx.run.selector(), crate::run::LABEL_SCENARIO, scenario.name)
}

fn record(
    scenario: &Scenario,
    check: &Check,
    status: Status,
    took: Duration,
    latency: Option<crate::stats::LatencySummary>,
    probes: Vec<ProbeRecord>,
) -> CheckRecord {
    let mut features = scenario.features.clone();
    features.extend(check.features.iter().cloned());
    features.dedup();
    CheckRecord {
        scenario: scenario.name.clone(),
        check: check.name.clone(),
        trial: format!("{}::{}", scenario.name, check.name),
        features,
        rule: check.rule.clone(),
        status,
        duration_ms: took.as_millis() as u64,
        latency,
        probes,
    }
}

async fn setup_and_probe(ctx: &RunContext, scenario: &Scenario, checks: &[&Check]) -> Result<Vec<CheckRecord>, String> {
    let nodes = placement::assign(&scenario.fixtures.pods, &ctx.nodes)?;

    // Namespaces, by logical name.
    let logical: Vec<(String, BTreeMap<String, String>)> = if scenario.fixtures.namespaces.is_empty() {
        vec![("main".to_string(), BTreeMap::new())]
    } else {
        scenario.fixtures.namespaces.iter().map(|n| (n.name.clone(), n.labels.clone())).collect()
    };
    let mut real_ns: BTreeMap<String, String> = BTreeMap::new();
    for (name, labels) in &logical {
        let real = namespaces::namespace_name(&scenario.name, name, &ctx.run);
        let mut all = labels.clone();
        all.extend(ctx.run.labels(&scenario.name));
        namespaces::create(&ctx.client, &real, all).await.map_err(|e| format!("creating namespace {real}: {e}"))?;
        real_ns.insert(name.clone(), real);
    }
    progress(&scenario.name, format!("namespaces {}", real_ns.values().cloned().collect::<Vec<_>>().join(", ")));

    // Fixture pods: applied together, waited for together.
    let default_ns = logical[0].0.clone();
    let started = Instant::now();
    let applies = scenario.fixtures.pods.iter().map(|p| {
        let ns = real_ns[p.namespace.as_ref().unwrap_or(&default_ns)].clone();
        let pod = fixtures::agent_pod(p, &ns, &nodes[&p.name], &ctx.run.labels(&scenario.name), &ctx.image);
        async move {
            fixtures::apply_pod(&ctx.client, &pod).await.map_err(|e| format!("applying pod {ns}/{}: {e}", p.name))?;
            fixtures::wait_ready(&ctx.client, &ns, &p.name, READY_TIMEOUT).await
        }
    });
    let mut endpoints: BTreeMap<String, Endpoint> = BTreeMap::new();
    for (fixture, ready) in scenario.fixtures.pods.iter().zip(join_all(applies).await) {
        let pod = ready?;
        let status = pod.status.unwrap_or_default();
        endpoints.insert(fixture.name.clone(), Endpoint {
            pod: fixture.name.clone(),
            namespace: pod.metadata.namespace.unwrap_or_default(),
            ip: status.pod_ip.ok_or_else(|| format!("pod {} is Ready but has no IP", fixture.name))?,
            node: pod.spec.and_then(|s| s.node_name).unwrap_or_default(),
        });
    }
    progress(&scenario.name, format!(
        "{} pods Ready in {:.1}s: {}",
        endpoints.len(),
        started.elapsed().as_secs_f64(),
        endpoints.values().map(|e| format!("{} {} on {}", e.pod, e.ip, e.node)).collect::<Vec<_>>().join(", ")
    ));

    // One batch per source pod, all batches at once.
    let mut by_source: BTreeMap<&str, Vec<&Check>> = BTreeMap::new();
    for c in checks {
        by_source.entry(c.from.as_str()).or_default().push(c);
    }
    let batches = by_source.into_iter().map(|(source, checks)| {
        let from = endpoints[source].clone();
        let endpoints = &endpoints;
        async move {
            let targets: Vec<Endpoint> = checks.iter().map(|c| endpoints[target_pod(&c.to)].clone()).collect();
            let batch = ProbeBatch {
                probes: checks.iter().zip(&targets).map(|(c, to)| checks::probe_spec(&c.name, c, to)).collect(),
            };
            // Samples run one after another: the batch takes at most the slowest check's total.
            let limit = checks.iter().map(|c| Duration::from_millis(c.timeout_ms * c.samples as u64)).max().unwrap_or_default()
                + Duration::from_secs(30);
            let started = Instant::now();
            let results = exec::probe(&ctx.client, &from.namespace, &from.pod, &batch, limit).await;
            let took = started.elapsed();
            checks
                .iter()
                .zip(targets)
                .map(|(c, to)| match &results {
                    Err(e) => record(scenario, c, Status::Failed(e.clone()), took, None, vec![]),
                    Ok(results) => match results.iter().find(|r| r.id == c.name) {
                        None => record(scenario, c, Status::Failed("the agent returned no result for this check".into()), took, None, vec![]),
                        Some(result) => {
                            let (status, latency) = checks::evaluate(c, &from, &to, result);
                            let probe = ProbeRecord {
                                from: from.clone(),
                                to,
                                protocol: c.protocol.as_str().into(),
                                port: checks::port_of(c),
                                result: result.clone(),
                            };
                            record(scenario, c, status, took, latency, vec![probe])
                        }
                    },
                })
                .collect::<Vec<_>>()
        }
    });
    Ok(join_all(batches).await.into_iter().flatten().collect())
}
