//! The conformance suite behind `cargo test`.
//!
//! 1. Load and validate every scenario (nothing touches the cluster if one is bad).
//! 2. Name one trial per check, `<scenario>::<check>`, so libtest's filters,
//!    `--list`, `--skip`, `--exact` and `--test-threads` work as usual.
//! 3. Connect. No cluster: trials are ignored with one line saying what was
//!    tried, or fail when NETCONFORM_REQUIRE_CLUSTER=1.
//! 4. Start every selected scenario at once on a background runtime; each trial
//!    waits for its own check's verdict.
//! 5. Delete what the run created (by its label, also on Ctrl-C), wait for it to
//!    be gone, write reports/junit.xml and reports/results.json.

mod logging;
mod results;
mod selection;

use libtest_mimic::{Arguments, Failed, Trial};
use netconform_harness::cluster::liveness::{self, Phase};
use netconform_harness::cluster::run::RunId;
use netconform_harness::cluster::{self, namespaces, Cluster};
use netconform_harness::features;
use netconform_harness::report::{self, CheckRecord, RunRecord};
use netconform_harness::runner::{self, RunContext};
use netconform_harness::scenario::{load_dir, Fixtures, LoadedScenario, NodePair, Scenario};
use netconform_harness::setup::fixtures::AgentImage;
use netconform_harness::setup::placement;
use netconform_harness::timeouts::TIMEOUTS;
use netconform_harness::verdict::{Skip, Status};
use results::Results;
use selection::will_run;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("suite/ is inside the workspace")
        .to_path_buf()
}

/// NETCONFORM_SCENARIOS, else `scenarios/` at the workspace root.
pub fn scenarios_dir() -> PathBuf {
    std::env::var_os("NETCONFORM_SCENARIOS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("scenarios"))
}

pub fn trial_name(scenario: &str, check: &str) -> String {
    format!("{scenario}::{check}")
}

/// `cargo test`'s entry point: libtest's arguments from the command line.
pub fn main() -> ExitCode {
    run(Arguments::from_args())
}

/// Runs the suite with libtest's arguments (filters, `--list`, `--skip`,
/// `--exact`, ...); `cargo test` and `netconform run` both come here.
pub fn run(args: Arguments) -> ExitCode {
    logging::init();
    let dir = scenarios_dir();
    let scenarios = match load_dir(&dir) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!(
                "netconform: {} problem(s) in the scenarios under {}:",
                errors.len(),
                dir.display()
            );
            for e in errors {
                eprintln!("  {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    let names: Vec<(String, &LoadedScenario, usize)> = scenarios
        .iter()
        .flat_map(|s| {
            s.scenario
                .checks
                .iter()
                .enumerate()
                .map(move |(i, c)| (trial_name(&s.scenario.name, &c.name), s, i))
        })
        .collect();

    if args.list {
        let trials = names
            .iter()
            .map(|(n, _, _)| Trial::test(n.clone(), || Ok(())))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let require = std::env::var("NETCONFORM_REQUIRE_CLUSTER").is_ok_and(|v| v == "1");
    let cluster = match runtime.block_on(cluster::connect()) {
        Ok(c) => c,
        Err(e) => {
            let line = format!("netconform: {e}");
            if require {
                eprintln!("{line}\nnetconform: NETCONFORM_REQUIRE_CLUSTER=1, so every conformance trial fails.");
            } else {
                eprintln!("{line}; conformance trials are ignored (set NETCONFORM_REQUIRE_CLUSTER=1 to fail instead).");
            }
            let message = e.to_string();
            let trials = names
                .iter()
                .map(|(n, _, _)| {
                    let message = message.clone();
                    Trial::test(n.clone(), move || Err(Failed::from(message)))
                        .with_ignored_flag(!require)
                })
                .collect();
            return libtest_mimic::run(&args, trials).exit_code();
        }
    };
    run_on_cluster(&args, &runtime, cluster, &scenarios, &names)
}

fn run_on_cluster(
    args: &Arguments,
    runtime: &tokio::runtime::Runtime,
    cluster: Cluster,
    scenarios: &[LoadedScenario],
    names: &[(String, &LoadedScenario, usize)],
) -> ExitCode {
    let started = Instant::now();
    let run = RunId::generate();
    let (mut declaration, source) = match std::env::var_os("NETCONFORM_CONFIG").map(PathBuf::from) {
        Some(path) => match features::read_declaration(&path) {
            Ok(d) => (d, Some(path)),
            Err(e) => {
                eprintln!("netconform: NETCONFORM_CONFIG: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => (features::Declaration::default(), None),
    };
    if let Some(profile) = std::env::var("NETCONFORM_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
    {
        if features::profile(&profile).is_none() {
            eprintln!(
                "netconform: NETCONFORM_PROFILE: unknown profile `{profile}` (known: {})",
                features::PROFILES
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return ExitCode::FAILURE;
        }
        declaration.profile = Some(profile);
    }
    // The run's liveness record, first: `netconform gc` deletes only runs
    // whose Lease has stopped being renewed.
    let lease = match runtime.block_on(liveness::hold(
        &cluster.client,
        &run,
        &liveness::holder_identity(),
    )) {
        Ok(lease) => Arc::new(lease),
        Err(e) => {
            eprintln!("netconform: on {}: {e}", cluster.source);
            return ExitCode::FAILURE;
        }
    };
    let all_nodes = match runtime.block_on(cluster::schedulable_nodes(&cluster.client)) {
        Ok(n) => n,
        Err(e) => {
            eprintln!(
                "netconform: listing nodes on {}: {}",
                cluster.source,
                cluster::describe(&e)
            );
            return ExitCode::FAILURE;
        }
    };
    let outside_hosts = match cluster::outside_hosts() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("netconform: {e}");
            return ExitCode::FAILURE;
        }
    };
    let detected = features::Detected {
        ip_families: cluster::ip_families(&all_nodes),
        outside_hosts,
        harness_in_cluster: cluster.in_cluster,
    };
    let feature_plan = features::plan(&declaration, source, &detected);
    let nodes: Vec<String> = all_nodes
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    eprintln!(
        "netconform: run {run} on {} (Kubernetes {}), schedulable nodes: {}",
        cluster.source,
        cluster.server_version,
        if nodes.is_empty() {
            "none".to_string()
        } else {
            nodes.join(", ")
        }
    );

    eprintln!(
        "netconform: profile {} ({}){}",
        feature_plan.profile.name,
        feature_plan.profile.features.join(", "),
        if feature_plan.skipped.is_empty() {
            String::new()
        } else {
            format!(
                "; skipped features: {}",
                feature_plan
                    .skipped
                    .iter()
                    .map(|(f, why)| format!("{f} ({why})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );

    // Checks that cannot run on this cluster are skipped with their reason, never passed.
    let skips = skipped_checks(scenarios, &feature_plan, &nodes);

    // What libtest will run, so only those scenarios and checks are started.
    let mut selected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, s, i) in names {
        if will_run(args, name, skips.contains_key(name)) {
            selected
                .entry(s.scenario.name.clone())
                .or_default()
                .insert(s.scenario.checks[*i].name.clone());
        }
    }

    let results = Arc::new(Results::default());
    let ctx = Arc::new(RunContext {
        client: cluster.client.clone(),
        run: run.clone(),
        image: AgentImage::from_env(),
        nodes,
        local_probes: |batch| Box::pin(netconform_agent::probe::run_batch(batch)),
    });
    let cleanup_client = cluster.client.clone();
    let cleanup_selector = run.selector();
    runtime.spawn(async move {
        // Ctrl-C, or a `kill` (SIGTERM: CI timeouts, `timeout`, systemd): the
        // run's namespaces go either way. Only SIGKILL leaves them behind.
        let (signal, exit_code) = interrupted().await;
        eprintln!("\nnetconform: {signal}; deleting this run's namespaces ({cleanup_selector})");
        let _ = tokio::time::timeout(
            TIMEOUTS.interrupted_cleanup,
            namespaces::delete_by_label(&cleanup_client, &cleanup_selector),
        )
        .await;
        std::process::exit(exit_code);
    });
    let tasks = start_scenarios(runtime, &ctx, &lease, scenarios, &selected, &results);

    let trials = names
        .iter()
        .map(|(name, _, _)| {
            if let Some(reason) = skips.get(name) {
                eprintln!("netconform: {name} skipped: {reason}");
                // Forced with --ignored, a skipped check fails: it never passes unrun.
                let reason = format!("skipped: {reason}");
                return Trial::test(name.clone(), move || Err(Failed::from(reason)))
                    .with_ignored_flag(true);
            }
            let (results, name2) = (results.clone(), name.clone());
            Trial::test(name.clone(), move || match results.wait(&name2).status {
                Status::Passed => Ok(()),
                Status::Failed(failure) => Err(Failed::from(failure.to_string())),
                Status::Skipped(reason) => {
                    Err(Failed::from(format!("skipped at run time: {reason}")))
                }
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(args, trials);

    runtime.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
        lease.release().await;
        finish(
            &ctx,
            &cluster,
            &results,
            scenarios,
            &skips,
            &feature_plan,
            started,
        )
        .await
    });
    conclusion.exit_code()
}

/// Waits for SIGINT or SIGTERM; what to say and the shell's exit code for it.
async fn interrupted() -> (&'static str, i32) {
    use tokio::signal::unix::{signal, SignalKind};
    const INT: (&str, i32) = ("interrupted", 130);
    const TERM: (&str, i32) = ("terminated", 143);
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return INT;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => INT,
        _ = term.recv() => TERM,
    }
}

/// A scenario with the names of its selected checks.
type Job = (Scenario, BTreeSet<String>);

/// Starts every scenario that has selected checks; each publishes its verdicts.
/// Quiet scenarios run first, one at a time, on the otherwise idle cluster
/// (once no other netconform run loads it: the run's Lease takes turns);
/// the others start together once they are done, except that scenarios
/// sharing a world run one after another on one copy of it.
fn start_scenarios(
    runtime: &tokio::runtime::Runtime,
    ctx: &Arc<RunContext>,
    lease: &Arc<liveness::LeaseHolder>,
    scenarios: &[LoadedScenario],
    selected: &BTreeMap<String, BTreeSet<String>>,
    results: &Arc<Results>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut quiet = Vec::new();
    let mut alone = Vec::new();
    let mut shared: BTreeMap<String, (Fixtures, Vec<Job>)> = BTreeMap::new();
    for s in scenarios {
        let Some(checks) = selected.get(&s.scenario.name) else {
            continue;
        };
        let job = (s.scenario.clone(), checks.clone());
        if s.scenario.quiet {
            quiet.push(job)
        } else if let Some((world, fixtures)) = s.scenario.shared_world() {
            shared
                .entry(world.to_string())
                .or_insert_with(|| (fixtures.clone(), Vec::new()))
                .1
                .push(job)
        } else {
            alone.push(job)
        }
    }
    let (ctx, results, lease) = (ctx.clone(), results.clone(), lease.clone());
    vec![runtime.spawn(async move {
        if !quiet.is_empty() {
            match lease.wait_turn(Phase::Quiet, TIMEOUTS.turn).await {
                Ok(_) => {
                    for (scenario, checks) in quiet {
                        runner::run_scenario(&ctx, &scenario, &checks, &|record| {
                            results.publish(record)
                        })
                        .await;
                    }
                }
                Err(others) => {
                    let skip = Skip::ClusterNotQuiet {
                        waited_s: TIMEOUTS.turn.as_secs(),
                        runs: others.iter().map(ToString::to_string).collect(),
                    };
                    for (scenario, checks) in quiet {
                        runner::report_skipped(&scenario, &checks, &skip, &|record| {
                            results.publish(record)
                        });
                    }
                }
            }
        }
        // Not while another run measures quietly; after that, no reason to wait.
        if let Err(others) = lease.wait_turn(Phase::Busy, TIMEOUTS.turn).await {
            eprintln!(
                "netconform: still waiting after {}s for {}; starting anyway",
                TIMEOUTS.turn.as_secs(),
                others
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let mut tasks: Vec<_> = alone
            .into_iter()
            .map(|(scenario, checks)| {
                let (ctx, results) = (ctx.clone(), results.clone());
                tokio::spawn(async move {
                    runner::run_scenario(&ctx, &scenario, &checks, &|record| {
                        results.publish(record)
                    })
                    .await
                })
            })
            .collect();
        for (world, (fixtures, mut jobs)) in shared {
            runner::queue_order(&mut jobs);
            // Policy cases take turns on a copy, so two copies halve the
            // wait; scenarios without policies share one copy side by side.
            let takes_turns = jobs.iter().any(|(s, _)| !s.own_policies().is_empty());
            let copies = if takes_turns {
                WORLD_COPIES.min(jobs.len())
            } else {
                1
            };
            let queue = Arc::new(runner::WorldQueue::new(jobs.into()));
            let copies: Vec<_> = (1..=copies)
                .map(|copy| {
                    let (ctx, results, fixtures, queue) = (
                        ctx.clone(),
                        results.clone(),
                        fixtures.clone(),
                        queue.clone(),
                    );
                    let name = format!("{world}-{copy}");
                    tokio::spawn(async move {
                        runner::run_shared_world(&ctx, &name, &fixtures, &queue, &|record| {
                            results.publish(record)
                        })
                        .await
                    })
                })
                .collect();
            let results = results.clone();
            tasks.push(tokio::spawn(async move {
                let mut why = Vec::new();
                for copy in copies {
                    if let Ok(Some(stopped)) = copy.await {
                        why.push(stopped);
                    }
                }
                // Every copy stopped early: what is left cannot run.
                runner::report_left_in_queue(&queue, &why, &|record| results.publish(record));
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    })]
}

/// How many copies of a shared world run side by side, taking the world's
/// scenarios from one queue. One copy starts the fewest pods, but its
/// scenarios then run one after another (2-3 s each on the 2-core testbed,
/// and a whole convergence window each on a cluster that ignores
/// NetworkPolicy). Two copies of the 3x3 world (18 pods) take the eleven
/// policy cases in six turns; a third copy's 9 pods cost the 2-core testbed
/// more start-up time than its turns save (measured: 40-48 s against 35-41 s).
const WORLD_COPIES: usize = 2;

/// Deletes whatever still carries the run's label and waits (bounded) until
/// every pod of the run is gone. The namespaces are left terminating: the
/// namespace controller removes them on its own, 5 s after their deletion at
/// the earliest, and waiting for that would add those seconds to every run.
async fn cleanup(ctx: &RunContext, run: &RunId) {
    let selector = run.selector();
    let names = match namespaces::delete_by_label(&ctx.client, &selector).await {
        Ok(names) => names,
        Err(e) => {
            eprintln!("netconform: cleanup by label {selector} failed: {e}");
            return;
        }
    };
    if names.is_empty() {
        return;
    }
    match namespaces::wait_pods_gone(&ctx.client, &selector, TIMEOUTS.pods_gone).await {
        Ok(left) if left.is_empty() => {}
        Ok(left) => eprintln!(
            "netconform: pods of run {run} still terminating after {}s: {}",
            TIMEOUTS.pods_gone.as_secs(),
            left.join(", ")
        ),
        Err(e) => eprintln!("netconform: checking pod deletion: {e}"),
    }
    match namespaces::not_terminating(&ctx.client, &selector).await {
        Ok(active) if active.is_empty() => eprintln!(
            "netconform: every pod of run {run} is gone; its {} namespace(s) are terminating (Kubernetes removes them)",
            names.len()
        ),
        Ok(active) => eprintln!(
            "netconform: namespaces of run {run} not being deleted: {}",
            active.join(", ")
        ),
        Err(e) => eprintln!("netconform: checking namespace deletion: {e}"),
    }
}

/// Runs the checks whose trial names `select` accepts on the current cluster,
/// without libtest (the fault tests use this): all their scenarios at once,
/// then cleanup. A check a declaration-less run would skip here (an absent
/// feature such as IPv6 on an IPv4 cluster, a placement the nodes cannot
/// meet) is not run and comes back skipped with the reason.
pub fn run_checks(select: &dyn Fn(&str) -> bool) -> Result<Vec<CheckRecord>, String> {
    logging::init();
    let scenarios = load_dir(&scenarios_dir()).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let cluster = runtime
        .block_on(cluster::connect())
        .map_err(|e| e.to_string())?;
    let all_nodes = runtime
        .block_on(cluster::schedulable_nodes(&cluster.client))
        .map_err(|e| e.to_string())?;
    // The full profile, and what the cluster shows, as a run without a
    // declaration sees it: a check that run would skip is skipped here too.
    let detected = features::Detected {
        ip_families: cluster::ip_families(&all_nodes),
        outside_hosts: cluster::outside_hosts()?,
        harness_in_cluster: cluster.in_cluster,
    };
    let feature_plan = features::plan(&features::Declaration::default(), None, &detected);
    let nodes: Vec<String> = all_nodes
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    let skips = skipped_checks(&scenarios, &feature_plan, &nodes);
    let mut selected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut skipped = Vec::new();
    for s in &scenarios {
        for c in &s.scenario.checks {
            let name = trial_name(&s.scenario.name, &c.name);
            if !select(&name) {
                continue;
            }
            match skips.get(&name) {
                Some(reason) => skipped.push(skipped_record(&s.scenario, c, reason)),
                None => {
                    selected
                        .entry(s.scenario.name.clone())
                        .or_default()
                        .insert(c.name.clone());
                }
            }
        }
    }
    let run = RunId::generate();
    let lease = runtime
        .block_on(liveness::hold(
            &cluster.client,
            &run,
            &liveness::holder_identity(),
        ))
        .map(Arc::new)
        .map_err(|e| e.to_string())?;
    let ctx = Arc::new(RunContext {
        client: cluster.client.clone(),
        run: run.clone(),
        image: AgentImage::from_env(),
        nodes,
        local_probes: |batch| Box::pin(netconform_agent::probe::run_batch(batch)),
    });
    let results = Arc::new(Results::default());
    let tasks = start_scenarios(&runtime, &ctx, &lease, &scenarios, &selected, &results);
    runtime.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
        lease.release().await;
        cleanup(&ctx, &run).await;
    });
    Ok(results.all().into_iter().chain(skipped).collect())
}

/// The checks that cannot run on this cluster, each with the reason: a
/// feature absent or outside the profile, a placement the nodes cannot meet.
fn skipped_checks(
    scenarios: &[LoadedScenario],
    feature_plan: &features::FeaturePlan,
    nodes: &[String],
) -> BTreeMap<String, Skip> {
    let mut skips: BTreeMap<String, Skip> = BTreeMap::new();
    for s in scenarios {
        let single: Vec<_> = s
            .scenario
            .fixtures
            .pods
            .iter()
            .filter(|p| !p.per_node)
            .cloned()
            .collect();
        let placement = placement::assign(&single, nodes)
            .err()
            .or_else(|| {
                nodes
                    .is_empty()
                    .then(|| "the cluster has no schedulable node".to_string())
            })
            .map(|reason| Skip::Placement { reason });
        for c in &s.scenario.checks {
            let features = s.scenario.check_features(c);
            // A pair across nodes needs a second schedulable node.
            let no_other_node = (c.to.pair == Some(NodePair::OtherNode) && nodes.len() < 2)
                .then(|| Skip::Placement {
                    reason: format!(
                        "the check pairs pods on different nodes; the cluster has {} schedulable node(s)",
                        nodes.len()
                    ),
                });
            let no_outside_host_in_family =
                c.to.outside_host
                    .then(|| feature_plan.outside_host_absent(c.family))
                    .flatten();
            if let Some(reason) = feature_plan
                .skip_reason(&features)
                .or(no_outside_host_in_family)
                .or_else(|| placement.clone())
                .or(no_other_node)
            {
                skips.insert(trial_name(&s.scenario.name, &c.name), reason);
            }
        }
    }
    skips
}

/// The record of a check that did not run here, with the reason.
fn skipped_record(
    scenario: &Scenario,
    check: &netconform_harness::scenario::Check,
    reason: &Skip,
) -> CheckRecord {
    CheckRecord::unprobed(
        &scenario.name,
        &check.name,
        scenario.check_features(check),
        check.rule.clone(),
        Status::Skipped(reason.clone()),
    )
}

/// Final cleanup by run label (bounded wait, with progress) and the reports.
async fn finish(
    ctx: &RunContext,
    cluster: &Cluster,
    results: &Results,
    scenarios: &[LoadedScenario],
    skips: &BTreeMap<String, Skip>,
    feature_plan: &features::FeaturePlan,
    started: Instant,
) {
    let run = &ctx.run;
    cleanup(ctx, run).await;

    let mut checks: Vec<CheckRecord> = results.all();
    for s in scenarios {
        for c in &s.scenario.checks {
            let name = trial_name(&s.scenario.name, &c.name);
            if let Some(reason) = skips.get(&name) {
                checks.push(skipped_record(&s.scenario, c, reason));
            }
        }
    }
    checks.sort_by(|a, b| a.trial.cmp(&b.trial));
    let record = RunRecord {
        run_id: run.to_string(),
        cluster: cluster.source.clone(),
        server_version: cluster.server_version.clone(),
        started_unix: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            - started.elapsed().as_secs(),
        duration_ms: started.elapsed().as_millis() as u64,
        checks,
        exec_transport_losses: netconform_harness::cluster::exec::transport_losses(),
    };
    if !record.exec_transport_losses.is_empty() {
        eprintln!(
            "netconform: {} exec(s) reported success without the agent's output; their results were read from the copy the agent keeps in the pod (results.json: exec_transport_losses)",
            record.exec_transport_losses.len()
        );
    }
    let dir = report::report_dir(&workspace_root());
    match report::write(&record, feature_plan, &dir) {
        Ok(paths) => eprintln!(
            "netconform: run {run}: {} checks in {:.1}s; reports: {}",
            record.checks.len(),
            started.elapsed().as_secs_f64(),
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => eprintln!("netconform: writing reports to {}: {e}", dir.display()),
    }
}
