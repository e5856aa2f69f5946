//! Running one scenario on a cluster: set up its world, plan every selected
//! check's probes, run one batch per source container (all at once), judge,
//! and delete the scenario's namespaces by label whatever happened.

use crate::actions;
use crate::checks::{self, PlannedProbe};
use crate::exec;
use crate::fixtures::{AgentImage, AGENT_CONTAINER};
use crate::namespaces;
use crate::report::{CheckRecord, ProbeRecord};
use crate::run::RunId;
use crate::scenario::{Check, Scenario};
use crate::stats::{LatencySummary, PairLatency};
use crate::verdict::{Failure, ProbeError, Status};
use crate::world::{self, World};
use futures::future::join_all;
use kube::Client;
use netconform_agent::protocol::{ProbeBatch, ProbeResult};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

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
pub async fn run_scenario(
    ctx: &RunContext,
    scenario: &Scenario,
    selected: &BTreeSet<String>,
    report: &(dyn Fn(CheckRecord) + Sync),
) {
    if selected.is_empty() {
        return;
    }
    let checks: Vec<&Check> = scenario
        .checks
        .iter()
        .filter(|c| selected.contains(&c.name))
        .collect();
    let started = Instant::now();
    match world::setup(&ctx.client, &ctx.run, &ctx.image, &ctx.nodes, scenario).await {
        Ok(mut world) => {
            // Checks that change the fixtures run after the others, one at a time.
            let (plain, acting): (Vec<&Check>, Vec<&Check>) =
                checks.iter().partition(|c| c.before.is_empty());
            for r in probe_all(ctx, scenario, &world, &plain, None).await {
                report(r);
            }
            for c in acting {
                let started = Instant::now();
                let mut failure = None;
                for a in &c.before {
                    if let Err(e) = actions::run(&ctx.client, &mut world, a, &scenario.name).await {
                        failure = Some(Failure::ActionFailed {
                            action: format!("{a:?}"),
                            reason: e.to_string(),
                        });
                        break;
                    }
                }
                if let Some(f) = failure {
                    report(record(
                        scenario,
                        c,
                        Status::Failed(f),
                        started.elapsed(),
                        None,
                        vec![],
                    ));
                    continue;
                }
                let changed_ips = actions::cluster_ips_unchanged(&ctx.client, &world).await;
                for mut r in probe_all(ctx, scenario, &world, &[c], Some(Instant::now())).await {
                    if !changed_ips.is_empty() {
                        let also = match r.status {
                            Status::Failed(f) => Some(Box::new(f)),
                            _ => None,
                        };
                        r.status = Status::Failed(Failure::ClusterIpChanged {
                            changes: changed_ips.clone(),
                            also,
                        });
                    }
                    report(r);
                }
            }
        }
        Err(reason) => {
            progress(&scenario.name, format!("setup failed: {reason}"));
            for c in checks {
                report(record(
                    scenario,
                    c,
                    Status::Failed(Failure::SetupFailed {
                        reason: reason.to_string(),
                    }),
                    started.elapsed(),
                    None,
                    vec![],
                ));
            }
        }
    }
    let selector = format!(
        "{},{}={}",
        ctx.run.selector(),
        crate::run::LABEL_SCENARIO,
        scenario.name
    );
    match namespaces::delete_by_label(&ctx.client, &selector).await {
        Ok(names) => progress(&scenario.name, format!("deleting {}", names.join(", "))),
        Err(e) => progress(
            &scenario.name,
            format!("could not delete its namespaces (the run's final cleanup retries): {e}"),
        ),
    }
}

pub fn record(
    scenario: &Scenario,
    check: &Check,
    status: Status,
    took: Duration,
    latency: Option<LatencySummary>,
    probes: Vec<ProbeRecord>,
) -> CheckRecord {
    let mut features = scenario.features.clone();
    for f in &check.features {
        if !features.contains(f) {
            features.push(f.clone());
        }
    }
    CheckRecord {
        scenario: scenario.name.clone(),
        check: check.name.clone(),
        trial: format!("{}::{}", scenario.name, check.name),
        features,
        rule: check.rule.clone(),
        status,
        duration_ms: took.as_millis() as u64,
        latency,
        dns: crate::stats::dns_summary(probes.iter().flat_map(|p| &p.result.attempts)),
        node_pairs: vec![],
        converged_after_ms: None,
        probes,
    }
}

/// Plans every check, runs them together, then re-runs (bounded) the checks
/// that wait for convergence until they pass.
async fn probe_all(
    ctx: &RunContext,
    scenario: &Scenario,
    world: &World,
    checks: &[&Check],
    since: Option<Instant>,
) -> Vec<CheckRecord> {
    let mut records = Vec::new();
    let mut planned: Vec<(&Check, Vec<PlannedProbe>)> = Vec::new();
    for c in checks {
        match checks::plan(c, world) {
            Ok(p) => planned.push((c, p)),
            Err(e) => records.push(record(
                scenario,
                c,
                Status::Failed(Failure::CannotPlan { reason: e }),
                Duration::ZERO,
                None,
                vec![],
            )),
        }
    }
    // Convergence counts from the last change: this check's actions, or the policies.
    let since = since
        .or(world.policies_applied)
        .unwrap_or_else(Instant::now);
    let started = Instant::now();
    let first = run_round(ctx, world, &planned, scenario.quiet).await;
    for ((c, probes), (status, latency, probe_records, pairs)) in planned.iter().zip(first) {
        let (mut status, mut latency, mut probe_records, mut pairs) =
            (status, latency, probe_records, pairs);
        let mut converged = None;
        if let Some(limit) = c.converge_ms {
            let deadline = since + Duration::from_millis(limit);
            let mut rounds = 1;
            while status != Status::Passed && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(300)).await;
                rounds += 1;
                let again = run_round(ctx, world, &[(*c, probes.clone())], scenario.quiet).await;
                (status, latency, probe_records, pairs) =
                    again.into_iter().next().expect("one check, one verdict");
            }
            if status == Status::Passed {
                converged = Some(since.elapsed());
                progress(&scenario.name, format!("{} converged {:.1}s after the last change to its fixtures ({rounds} rounds)", c.name, since.elapsed().as_secs_f64()));
            } else if let Status::Failed(last) = status {
                status = Status::Failed(Failure::DidNotConverge {
                    limit_ms: limit,
                    rounds,
                    last: Box::new(last),
                });
            }
        }
        let mut r = record(
            scenario,
            c,
            status,
            started.elapsed(),
            latency,
            probe_records,
        );
        r.converged_after_ms = converged.map(|d| d.as_millis() as u64);
        r.node_pairs = pairs;
        if let Some(d) = r.dns.filter(|d| d.lost > 0) {
            let covered = match d.resolved_after_loss {
                0 => String::new(),
                n => format!(
                    "; {n} sample(s) resolved all the same through the resolver's own retry"
                ),
            };
            progress(
                &scenario.name,
                format!(
                    "{}: {} of {} DNS queries went unanswered{covered}",
                    c.name, d.lost, d.queries
                ),
            );
        }
        records.push(r);
    }
    records
}

type Verdict = (
    Status,
    Option<LatencySummary>,
    Vec<ProbeRecord>,
    Vec<PairLatency>,
);

/// Runs the planned probes of several checks, one agent batch per (pod,
/// container), and judges each check. Normally all batches run at once and a
/// batch's probes run concurrently; `quiet`, one probe at a time in the whole
/// cluster, so that latency is the network's and not the suite's.
async fn run_round(
    ctx: &RunContext,
    world: &World,
    planned: &[(&Check, Vec<PlannedProbe>)],
    quiet: bool,
) -> Vec<Verdict> {
    let mut batches: BTreeMap<(String, String, String), Vec<&PlannedProbe>> = BTreeMap::new();
    for (c, probes) in planned {
        let container = c
            .container
            .clone()
            .unwrap_or_else(|| AGENT_CONTAINER.to_string());
        for p in probes {
            batches
                .entry((
                    p.from.namespace.clone(),
                    p.from.pod.clone(),
                    container.clone(),
                ))
                .or_default()
                .push(p);
        }
    }
    let runs = batches
        .into_iter()
        .map(|((ns, pod, container), probes)| async move {
            // Samples run one after another: a batch takes at most its slowest
            // probe's bound, or (quiet) the sum of its probes' bounds.
            let bounds = probes.iter().map(|p| p.spec.time_bound());
            let limit = if quiet {
                bounds.sum()
            } else {
                bounds.max().unwrap_or_default()
            } + Duration::from_secs(30);
            let batch = ProbeBatch {
                probes: probes.iter().map(|p| p.spec.clone()).collect(),
                sequential: quiet,
            };
            let result = if pod == crate::scenario::HARNESS {
                // Probes from the harness host run here, with the agent's own code.
                tokio::time::timeout(limit, netconform_agent::probe::run_batch(batch))
                    .await
                    .map_err(|_| {
                        format!("harness probes did not finish within {}s", limit.as_secs())
                    })
            } else {
                exec::probe_in(&ctx.client, &ns, &pod, &container, &batch, limit).await
            };
            (probes, result)
        });
    let finished = if quiet {
        let mut done = Vec::new();
        for run in runs {
            done.push(run.await);
        }
        done
    } else {
        join_all(runs).await
    };
    let mut results: BTreeMap<String, Result<ProbeResult, String>> = BTreeMap::new();
    for (probes, result) in finished {
        for p in probes {
            let r = match &result {
                Ok(rs) => rs
                    .iter()
                    .find(|r| r.id == p.spec.id)
                    .cloned()
                    .ok_or_else(|| "the agent returned no result for this probe".to_string()),
                Err(e) => Err(e.clone()),
            };
            results.insert(p.spec.id.clone(), r);
        }
    }
    planned
        .iter()
        .map(|(c, probes)| {
            let mut judged = Vec::new();
            let mut errors = Vec::new();
            for p in probes {
                match results
                    .remove(&p.spec.id)
                    .unwrap_or_else(|| Err("not run".into()))
                {
                    Ok(r) => judged.push((p.clone(), r)),
                    Err(error) => errors.push(ProbeError {
                        from_pod: p.from.pod.clone(),
                        target: p.target.clone(),
                        error,
                    }),
                }
            }
            let (status, latency) = if errors.is_empty() {
                checks::evaluate(c, world, &judged)
            } else {
                (Status::Failed(Failure::ProbesCouldNotRun { errors }), None)
            };
            let pairs = if quiet {
                checks::node_pairs(c, &judged)
            } else {
                vec![]
            };
            let probes = judged
                .into_iter()
                .map(|(p, r)| ProbeRecord {
                    from: p.from,
                    to: p.target,
                    spec: p.spec,
                    result: r,
                })
                .collect();
            (status, latency, probes, pairs)
        })
        .collect()
}
