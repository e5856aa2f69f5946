//! Running one scenario on a cluster: set up its world, plan every selected
//! check's probes, run one batch per source container (all at once), judge,
//! and delete the scenario's namespaces by label whatever happened.

use crate::cluster::namespaces;
use crate::cluster::run::RunId;
use crate::cluster::session;
use crate::probes::plan::{self, PlannedProbe};
use crate::progress::progress;
use crate::report::{CheckRecord, ProbeRecord};
use crate::scenario::{Check, Expectation, Fixtures, Protocol, Scenario};
use crate::setup::actions;
use crate::setup::fixtures::{AgentImage, AGENT_CONTAINER};
use crate::setup::world::{self, World};
use crate::timeouts::TIMEOUTS;
use crate::verdict::judge;
use crate::verdict::stats::{LatencySummary, PairLatency, PairThroughput};
use crate::verdict::{Failure, ProbeError, Skip, Status, WorldStopped};
use futures::future::{join_all, BoxFuture};
use kube::Client;
use netconform_protocol::{ProbeBatch, ProbeResult};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

pub struct RunContext {
    pub client: Client,
    pub run: RunId,
    pub image: AgentImage,
    /// Schedulable node names, sorted.
    pub nodes: Vec<String>,
    /// Runs the batches whose source is the harness host (NodePort from
    /// outside the cluster). The binary passes the agent's own probe engine,
    /// so this library links the wire contract and not the agent runtime.
    pub local_probes: LocalProbes,
}

/// A probe engine on the harness host: a batch in, its results out.
pub type LocalProbes = fn(ProbeBatch) -> BoxFuture<'static, Vec<ProbeResult>>;

/// Runs the checks of `scenario` named in `selected`, handing each finished
/// check to `report`. Every selected check is reported exactly once.
pub async fn run_scenario(
    ctx: &RunContext,
    scenario: &Scenario,
    selected: &BTreeSet<String>,
    report: &(dyn Fn(CheckRecord) + Sync),
) {
    let checks = selected_checks(scenario, selected);
    if checks.is_empty() {
        return;
    }
    let started = Instant::now();
    match world::setup(&ctx.client, &ctx.run, &ctx.image, &ctx.nodes, scenario).await {
        Ok(mut world) => run_checks(ctx, scenario, &mut world, &checks, report).await,
        Err(error) => {
            progress(&scenario.name, format!("setup failed: {error}"));
            let failure = Failure::SetupFailed { error };
            report_not_run(scenario, &checks, &failure, started, report);
        }
    }
    delete_namespaces(ctx, &scenario.name).await;
}

/// Scenarios waiting for a copy of their shared world, taken in order.
pub type WorldQueue = std::sync::Mutex<std::collections::VecDeque<(Scenario, BTreeSet<String>)>>;

/// Orders a shared world's scenarios for the queue: those with policies of
/// their own first, those with more checks that act on the world (the
/// longest) first among them. Scenarios without policies go last: they then
/// prove that the cases before them left their copy all-allowed.
pub fn queue_order(jobs: &mut [(Scenario, BTreeSet<String>)]) {
    jobs.sort_by_key(|(s, _)| {
        let acting = s.checks.iter().filter(|c| !c.before.is_empty()).count();
        (s.own_policies().is_empty(), std::cmp::Reverse(acting))
    });
}

/// One copy of a shared world (see `Scenario::shared_world`): set up once, then scenarios taken from
/// `queue` one after another until it is empty (copies side by side share
/// the queue, so none idles while another has a backlog). Each scenario adds
/// its policies, runs its checks, and deletes them again, and the world must
/// be back to all-allowed before the next one starts.
///
/// Returns why this copy stopped taking scenarios early (its setup failed,
/// or a scenario's policies could not be removed); the caller reports what is
/// left in the queue once every copy has stopped.
pub async fn run_shared_world(
    ctx: &RunContext,
    world_name: &str,
    world_fixtures: &Fixtures,
    queue: &WorldQueue,
    report: &(dyn Fn(CheckRecord) + Sync),
) -> Option<WorldStopped> {
    let next = || queue.lock().expect("world queue").pop_front();
    let next_if_policy_free = || {
        let mut queue = queue.lock().expect("world queue");
        let free = queue.front()?.0.own_policies().is_empty();
        free.then(|| queue.pop_front()).flatten()
    };
    let base = Scenario {
        name: world_name.to_string(),
        description: String::new(),
        features: vec![],
        world: None,
        fixtures: world_fixtures.clone(),
        world_fixtures: None,
        quiet: false,
        families: vec![],
        checks: vec![],
    };
    let mut world = match world::setup(&ctx.client, &ctx.run, &ctx.image, &ctx.nodes, &base).await {
        Ok(world) => world,
        Err(error) => {
            progress(world_name, format!("setup failed: {error}"));
            delete_namespaces(ctx, world_name).await;
            return Some(WorldStopped::SetupFailed {
                world: world_name.to_string(),
                error,
            });
        }
    };
    // Pods that cannot reach each other without any policy would fail every
    // policy case for a reason no policy gave, each after waiting out its
    // convergence: look once, with the first case's probes, before any. A
    // world of readers only (queue_order puts policy cases first) is not
    // looked at: its scenarios' own checks are the verdict on its paths.
    let first = queue
        .lock()
        .expect("world queue")
        .front()
        .filter(|(scenario, _)| !scenario.own_policies().is_empty())
        .map(|(scenario, selected)| all_allowed(&selected_checks(scenario, selected)));
    if let Some(checks) = first {
        if let Err(why) = baseline(ctx, world_name, &world, &checks).await {
            progress(world_name, format!("{why}; it takes no scenarios"));
            delete_namespaces(ctx, world_name).await;
            return Some(why);
        }
    }
    let mut stopped = None;
    while let Some((scenario, selected)) = next() {
        if scenario.own_policies().is_empty() {
            // A scenario that adds no policy only reads the world: it and the
            // policy-free ones queued after it (queue_order puts them last)
            // run side by side, each on its own copy of the world's record.
            let mut readers = vec![(scenario, selected)];
            while let Some(job) = next_if_policy_free() {
                readers.push(job);
            }
            join_all(readers.iter().map(|(scenario, selected)| {
                let mut world = world.clone();
                async move {
                    let checks = selected_checks(scenario, selected);
                    run_checks(ctx, scenario, &mut world, &checks, report).await
                }
            }))
            .await;
            continue;
        }
        let checks = selected_checks(&scenario, &selected);
        let started = Instant::now();
        let own = scenario.own_policies();
        let labels = ctx.run.labels(&scenario.name);
        match world::apply_policies(&ctx.client, &mut world, own, &labels, &scenario.name).await {
            Ok(()) => run_checks(ctx, &scenario, &mut world, &checks, report).await,
            Err(error) => {
                let failure = Failure::SetupFailed { error };
                report_not_run(&scenario, &checks, &failure, started, report)
            }
        }
        let given_back = match world::delete_policies(&ctx.client, &mut world, own).await {
            Ok(()) => actions::restore_labels(&ctx.client, &mut world).await,
            Err(error) => Err(error),
        };
        let restored = match given_back {
            Ok(()) => restore(ctx, world_name, &world, &scenario, &checks).await,
            Err(error) => Err(WorldStopped::ChangesNotUndone {
                world: world_name.to_string(),
                after: scenario.name.clone(),
                error,
            }),
        };
        if let Err(why) = restored {
            progress(world_name, format!("{why}; it takes no more scenarios"));
            stopped = Some(why);
            break;
        }
    }
    delete_namespaces(ctx, world_name).await;
    stopped
}

/// Reports every check of the scenarios left in `queue` as not run, with `reason`.
pub fn report_left_in_queue(
    queue: &WorldQueue,
    copies: &[WorldStopped],
    report: &(dyn Fn(CheckRecord) + Sync),
) {
    let started = Instant::now();
    let failure = Failure::NoWorldLeft {
        copies: copies.to_vec(),
    };
    let next = || queue.lock().expect("world queue").pop_front();
    while let Some((scenario, selected)) = next() {
        let checks = selected_checks(&scenario, &selected);
        report_not_run(&scenario, &checks, &failure, started, report);
    }
}

/// What a shared world without policies lets through: every pod-to-pod
/// probe of `probed` (the same sources, targets, protocols and ports), as a
/// quick copy expected to connect.
fn all_allowed(probed: &[&Check]) -> Vec<Check> {
    probed
        .iter()
        .filter(|c| pod_to_pod(c))
        .map(|c| Check {
            expect: Expectation::Connected,
            except: vec![],
            // Its rounds look while a policy is being removed (or before
            // the first one is in place) and stop at `TIMEOUTS.restore`.
            converge_ms: Some(TIMEOUTS.restore.as_millis() as u64),
            ..quick_copy(c)
        })
        .collect()
}

/// Quick rounds of `checks` until every probe connects, bounded by
/// `TIMEOUTS.restore`: the seconds it took, or the last round's first failure.
async fn until_all_allowed(
    ctx: &RunContext,
    world: &World,
    checks: &[Check],
) -> Result<f64, (String, Failure)> {
    let started = Instant::now();
    quick_rounds(ctx, world, checks, started, TIMEOUTS.restore).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// A fresh shared world's pods connect as `all_allowed` says, before any
/// scenario layers policies on it.
async fn baseline(
    ctx: &RunContext,
    world_name: &str,
    world: &World,
    checks: &[Check],
) -> Result<(), WorldStopped> {
    let took = until_all_allowed(ctx, world, checks)
        .await
        .map_err(|(check, failure)| WorldStopped::NotAllowedAtStart {
            world: world_name.to_string(),
            check,
            failure: Box::new(failure),
        })?;
    progress(
        world_name,
        format!("all-allowed before any policy ({took:.1}s)"),
    );
    Ok(())
}

/// Every pod-to-pod probe of `probed` connects again (`all_allowed`) after
/// `scenario`'s policies were deleted.
async fn restore(
    ctx: &RunContext,
    world_name: &str,
    world: &World,
    scenario: &Scenario,
    probed: &[&Check],
) -> Result<(), WorldStopped> {
    let took = until_all_allowed(ctx, world, &all_allowed(probed))
        .await
        .map_err(|(check, failure)| WorldStopped::NotRestored {
            world: world_name.to_string(),
            after: scenario.name.clone(),
            check,
            failure: Box::new(failure),
        })?;
    progress(
        world_name,
        format!(
            "all-allowed again {took:.1}s after {}'s policies were deleted",
            scenario.name
        ),
    );
    Ok(())
}

fn selected_checks<'a>(scenario: &'a Scenario, selected: &BTreeSet<String>) -> Vec<&'a Check> {
    scenario
        .checks
        .iter()
        .filter(|c| selected.contains(&c.name))
        .collect()
}

/// Every check of a scenario whose fixtures could not be set up fails with the reason.
/// Every selected check of a scenario that cannot run here, skipped with the reason.
pub fn report_skipped(
    scenario: &Scenario,
    selected: &BTreeSet<String>,
    skip: &Skip,
    report: &(dyn Fn(CheckRecord) + Sync),
) {
    for c in selected_checks(scenario, selected) {
        report(record(
            scenario,
            c,
            Status::Skipped(skip.clone()),
            Duration::ZERO,
            None,
            vec![],
        ));
    }
}

fn report_not_run(
    scenario: &Scenario,
    checks: &[&Check],
    failure: &Failure,
    started: Instant,
    report: &(dyn Fn(CheckRecord) + Sync),
) {
    for c in checks {
        report(record(
            scenario,
            c,
            Status::Failed(failure.clone()),
            started.elapsed(),
            None,
            vec![],
        ));
    }
}

/// Probes the plain checks together, then the checks that change the
/// fixtures one at a time.
async fn run_checks(
    ctx: &RunContext,
    scenario: &Scenario,
    world: &mut World,
    checks: &[&Check],
    report: &(dyn Fn(CheckRecord) + Sync),
) {
    let (plain, acting): (Vec<&Check>, Vec<&Check>) =
        checks.iter().partition(|c| c.before.is_empty());
    for r in probe_all(ctx, scenario, world, &plain, None).await {
        report(r);
    }
    // A check and its IPv6 twin share their actions: run once, then both
    // probe the changed fixtures (the actions' second run would find them
    // changed already: a deleted policy is gone).
    let mut groups: Vec<Vec<&Check>> = Vec::new();
    for c in acting {
        match groups.last_mut() {
            Some(group) if is_twin_of(c, group[0]) => group.push(c),
            _ => groups.push(vec![c]),
        }
    }
    for group in groups {
        let c = group[0];
        let started = Instant::now();
        let mut failure = None;
        for a in &c.before {
            if let Err(e) = actions::run(&ctx.client, world, a, &scenario.name).await {
                failure = Some(Failure::ActionFailed {
                    action: format!("{a:?}"),
                    error: e,
                });
                break;
            }
        }
        if let Some(f) = failure {
            for c in &group {
                report(record(
                    scenario,
                    c,
                    Status::Failed(f.clone()),
                    started.elapsed(),
                    None,
                    vec![],
                ));
            }
            continue;
        }
        let changed_ips = actions::cluster_ips_unchanged(&ctx.client, world).await;
        for mut r in probe_all(ctx, scenario, world, &group, Some(Instant::now())).await {
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

/// `twin` is `first`'s IPv6 twin: the same check (actions included) in the other family.
fn is_twin_of(twin: &Check, first: &Check) -> bool {
    twin.family != first.family
        && twin.name == format!("{}::ipv6", first.name)
        && twin.before == first.before
}

/// Deletes the namespaces labelled with this run and `scenario` (a scenario's
/// or a shared world's name).
async fn delete_namespaces(ctx: &RunContext, scenario: &str) {
    let selector = format!(
        "{},{}={}",
        ctx.run.selector(),
        crate::cluster::run::LABEL_SCENARIO,
        scenario
    );
    match namespaces::delete_by_label(&ctx.client, &selector).await {
        Ok(names) => progress(scenario, format!("deleting {}", names.join(", "))),
        Err(e) => progress(
            scenario,
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
        dns: crate::verdict::stats::dns_summary(probes.iter().flat_map(|p| &p.result.attempts)),
        node_pairs: vec![],
        node_pair_throughput: vec![],
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
        match plan::plan(c, world) {
            Ok(p) => planned.push((c, p)),
            Err(e) => records.push(record(
                scenario,
                c,
                Status::Failed(Failure::CannotPlan { error: e }),
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
    if !scenario.quiet {
        settle(ctx, world, checks, since).await;
    }
    let mut verdicts = run_round(ctx, world, &planned, scenario.quiet).await;
    let mut rounds = vec![1u32; planned.len()];
    // When each check first passed, from the last change.
    let mut passed_after: Vec<Option<Duration>> = verdicts
        .iter()
        .map(|v| (v.0 == Status::Passed).then(|| since.elapsed()))
        .collect();
    // Checks that may still converge go again together, one round for all of
    // them: their probes share the rounds' batches (one per source pod).
    loop {
        let now = Instant::now();
        let pending: Vec<usize> = (0..planned.len())
            .filter(|&i| {
                verdicts[i].0 != Status::Passed
                    && planned[i]
                        .0
                        .converge_ms
                        .is_some_and(|limit| now < since + Duration::from_millis(limit))
            })
            .collect();
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(TIMEOUTS.converge_pause).await;
        let again: Vec<(&Check, Vec<PlannedProbe>)> = pending
            .iter()
            .map(|&i| (planned[i].0, planned[i].1.clone()))
            .collect();
        let again = run_round(ctx, world, &again, scenario.quiet).await;
        for (i, verdict) in pending.into_iter().zip(again) {
            if verdict.0 == Status::Passed {
                passed_after[i] = Some(since.elapsed());
            }
            verdicts[i] = verdict;
            rounds[i] += 1;
        }
    }
    for ((((c, _), (status, latency, probe_records, pairs)), rounds), passed_after) in
        planned.iter().zip(verdicts).zip(rounds).zip(passed_after)
    {
        let mut status = status;
        let mut converged = None;
        if let Some(limit) = c.converge_ms {
            if let (Status::Passed, Some(after)) = (&status, passed_after) {
                converged = Some(after);
                progress(&scenario.name, format!("{} converged {:.1}s after the last change to its fixtures ({rounds} rounds)", c.name, after.as_secs_f64()));
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
        (r.node_pairs, r.node_pair_throughput) = pairs;
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

/// Before the rounds that judge a converging check, waits (bounded) until a
/// quick look agrees with its expectations: the same pod-to-pod probes, one
/// sample each with a short timeout, repeated until every one matches. A
/// policy change takes the enforcer tens of milliseconds; a judging round
/// started at once would meet the old rules and then sit out the full
/// timeout of every correctly blocked probe before the next round. This
/// only decides when to judge: its results are never a verdict, and when it
/// runs out of time the judging rounds start all the same.
async fn settle(ctx: &RunContext, world: &World, checks: &[&Check], since: Instant) {
    let Some((settling, limit)) = settling(checks) else {
        return;
    };
    let quick: Vec<Check> = settling.into_iter().map(quick_copy).collect();
    // Out of time, the judging rounds start all the same and say what they see.
    let _ = quick_rounds(ctx, world, &quick, since, limit).await;
}

/// The checks that settle before they are judged, and for how long at most
/// (from the change): the shortest convergence bound among them, capped by
/// `TIMEOUTS.settle`. None when no check settles.
fn settling<'a>(checks: &[&'a Check]) -> Option<(Vec<&'a Check>, Duration)> {
    let settling: Vec<&Check> = checks
        .iter()
        .copied()
        // A check whose probes are already this quick gains nothing.
        .filter(|c| {
            c.converge_ms.is_some()
                && c.timeout_ms > TIMEOUTS.settle_probe.as_millis() as u64
                && pod_to_pod(c)
        })
        .collect();
    let limit = settling.iter().filter_map(|c| c.converge_ms).min()?;
    Some((settling, Duration::from_millis(limit).min(TIMEOUTS.settle)))
}

/// Probes of a pod (TCP, UDP, HTTP), the kind a quick round can repeat.
fn pod_to_pod(c: &Check) -> bool {
    c.to.pod.is_some() && matches!(c.protocol, Protocol::Tcp | Protocol::Udp | Protocol::Http)
}

/// `c` as a quick look: one sample with a short timeout, no latency limits.
/// It keeps `converge_ms`: a quick look is taken while a change converges,
/// and `plan` gives such probes reserved source ports.
fn quick_copy(c: &Check) -> Check {
    Check {
        samples: 1,
        warmup: 0,
        latency: Default::default(),
        timeout_ms: c.timeout_ms.min(TIMEOUTS.settle_probe.as_millis() as u64),
        ..c.clone()
    }
}

/// Rounds of `checks` (quick copies) until every one agrees with its
/// expectations, or until `limit` after `since`; then the failure of the
/// last round's first disagreeing check.
async fn quick_rounds(
    ctx: &RunContext,
    world: &World,
    checks: &[Check],
    since: Instant,
    limit: Duration,
) -> Result<(), (String, Failure)> {
    let mut planned: Vec<(&Check, Vec<PlannedProbe>)> = Vec::new();
    for c in checks {
        match plan::plan(c, world) {
            Ok(p) => planned.push((c, p)),
            Err(error) => return Err((c.name.clone(), Failure::CannotPlan { error })),
        }
    }
    if planned.is_empty() {
        return Ok(());
    }
    loop {
        let verdicts = run_round(ctx, world, &planned, false).await;
        let disagreeing = planned
            .iter()
            .zip(verdicts)
            .find_map(|((c, _), (status, ..))| match status {
                Status::Failed(f) => Some((c.name.clone(), f)),
                _ => None,
            });
        match disagreeing {
            None => return Ok(()),
            Some(last) if since.elapsed() >= limit => return Err(last),
            Some(_) => tokio::time::sleep(TIMEOUTS.settle_pause).await,
        }
    }
}

type Verdict = (
    Status,
    Option<LatencySummary>,
    Vec<ProbeRecord>,
    (Vec<PairLatency>, Vec<PairThroughput>),
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
            } + TIMEOUTS.exec_margin;
            let batch = ProbeBatch {
                probes: probes.iter().map(|p| p.spec.clone()).collect(),
                sequential: quiet,
            };
            let result = if pod == crate::scenario::HARNESS {
                // Probes from the harness host run here, with the agent's own code.
                tokio::time::timeout(limit, (ctx.local_probes)(batch))
                    .await
                    .map_err(|_| {
                        format!("harness probes did not finish within {}s", limit.as_secs())
                    })
            } else {
                session::probe(&ctx.client, &ns, &pod, &container, &batch, limit)
                    .await
                    .map_err(|e| e.to_string())
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
                judge::evaluate(c, world, &judged)
            } else {
                (Status::Failed(Failure::ProbesCouldNotRun { errors }), None)
            };
            let pairs = if quiet {
                (
                    judge::node_pairs(c, &judged),
                    judge::node_pair_throughput(c, &judged),
                )
            } else {
                Default::default()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Check {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn an_action_check_and_its_ipv6_twin_share_one_run_of_the_actions() {
        let mut s = Scenario {
            name: "s".into(),
            description: String::new(),
            features: vec![],
            world: None,
            fixtures: Default::default(),
            world_fixtures: None,
            quiet: false,
            families: vec![
                crate::scenario::IpFamily::Ipv4,
                crate::scenario::IpFamily::Ipv6,
            ],
            checks: vec![
                check(
                    "{name: a, from: c, to: {pod: s}, protocol: tcp, before: [{delete_policy: p}]}",
                ),
                check(
                    "{name: b, from: c, to: {pod: s}, protocol: tcp, before: [{delete_policy: p}]}",
                ),
            ],
        };
        s.expand_families();
        let [a, a6, b, _] = &s.checks[..] else {
            panic!("two checks in two families")
        };
        assert!(is_twin_of(a6, a));
        assert!(!is_twin_of(b, a6), "same actions, another check");
    }

    #[test]
    fn converging_pod_checks_settle_within_their_shortest_bound_capped() {
        let long = check(
            "{name: a, from: x, to: {pod: y}, protocol: tcp, timeout_ms: 1000, converge_ms: 30000}",
        );
        let short = check(
            "{name: b, from: x, to: {pod: y}, protocol: udp, timeout_ms: 1000, converge_ms: 2000}",
        );
        let judged_at_once =
            check("{name: c, from: x, to: {pod: y}, protocol: tcp, timeout_ms: 1000}");
        let already_quick = check(
            "{name: d, from: x, to: {pod: y}, protocol: tcp, timeout_ms: 200, converge_ms: 2000}",
        );

        let (set, limit) = settling(&[&long, &short, &judged_at_once, &already_quick]).unwrap();
        let names: Vec<&str> = set.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(limit, Duration::from_millis(2000));

        let (_, limit) = settling(&[&long]).unwrap();
        assert_eq!(limit, TIMEOUTS.settle, "capped");
        assert!(settling(&[&judged_at_once, &already_quick]).is_none());
    }

    /// Quick looks are taken while a change converges, so `plan` gives
    /// their probes reserved source ports (see `only_a_converging_check_
    /// takes_reserved_source_ports`): they carry `converge_ms`.
    #[test]
    fn every_quick_look_is_a_converging_check() {
        let settled = check("{name: a, from: x, to: {pod: y}, protocol: tcp, timeout_ms: 1000}");
        let converging = check(
            "{name: b, from: x, to: {pod: y}, protocol: tcp, timeout_ms: 1000, converge_ms: 9000}",
        );
        assert_eq!(quick_copy(&converging).converge_ms, Some(9000));
        for copy in all_allowed(&[&settled, &converging]) {
            assert!(copy.converge_ms.is_some(), "{}", copy.name);
            assert_eq!(copy.expect, Expectation::Connected);
        }
    }
}
