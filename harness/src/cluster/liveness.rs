//! A run's liveness record, the turns runs take on a shared cluster, and
//! garbage collection of runs that died.
//!
//! Every run holds a Lease (`netconform-run`) in a namespace of its own,
//! `nc-run-<id>`, labelled like everything else it creates, and renews it
//! while it runs. A run killed with SIGKILL (or on a machine that died)
//! leaves its namespaces behind, and its Lease stops being renewed: `gc`
//! deletes the namespaces of exactly those runs, by their run label, and
//! never touches a run whose Lease is fresh or anything without
//! netconform's labels.
//!
//! The Lease also says what the run is doing (its phase annotation), so
//! that runs sharing a cluster take turns: quiet measurements (node-pair
//! latency and throughput) need the cluster to themselves, and another
//! run's fixtures are load like any other. See [`may_enter`].

use crate::cluster::namespaces;
use crate::cluster::run::{RunId, LABEL_MANAGED_BY, LABEL_RUN, MANAGED_BY};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::time::Duration;

pub const LEASE_NAME: &str = "netconform-run";
/// A Lease not renewed for this long belongs to a dead run.
pub const LEASE_DURATION: Duration = Duration::from_secs(30);
/// Renewed three times per duration: two lost renewals do not make a live
/// run look dead.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);
/// A run's namespaces without a Lease are left alone this long after their
/// creation (a run creates its Lease first, but an older netconform did not).
pub const NO_LEASE_GRACE: Duration = Duration::from_secs(120);
/// Marks the namespace that holds the Lease.
pub const LABEL_ROLE: &str = "netconform.io/role";

#[derive(Debug, thiserror::Error)]
pub enum LivenessError {
    #[error("creating the run's liveness namespace {namespace}: {}", super::describe(.source))]
    Namespace {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating the run's Lease {namespace}/{LEASE_NAME}: {}", super::describe(.source))]
    Lease {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("listing netconform's namespaces: {}", super::describe(.0))]
    List(#[source] kube::Error),
    #[error("deleting the namespaces of run {run}: {}", super::describe(.source))]
    Delete {
        run: String,
        #[source]
        source: kube::Error,
    },
}

pub fn namespace_for(run: &RunId) -> String {
    format!("nc-run-{run}")
}

/// Who holds a run's Lease: `<host>/<pid>`, so a stale one says where it ran.
pub fn holder_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{host}/{}", std::process::id())
}

/// What a run is doing, in its Lease's [`ANNOTATION_PHASE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Has quiet scenarios and waits for the cluster to itself.
    WaitingQuiet,
    /// Measuring on a cluster no other run loads.
    Quiet,
    /// Waits until no run measures quietly.
    WaitingBusy,
    /// Running its other scenarios.
    Busy,
    /// Finished; cleaning up.
    Done,
}

pub const ANNOTATION_PHASE: &str = "netconform.io/phase";

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::WaitingQuiet => "waiting-quiet",
            Phase::Quiet => "quiet",
            Phase::WaitingBusy => "waiting-busy",
            Phase::Busy => "busy",
            Phase::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        [
            Phase::WaitingQuiet,
            Phase::Quiet,
            Phase::WaitingBusy,
            Phase::Busy,
            Phase::Done,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// Another live run, as its Lease shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherRun {
    pub run: String,
    pub acquired: Timestamp,
    /// None: it has not said yet (it just started).
    pub phase: Option<Phase>,
}

impl std::fmt::Display for OtherRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phase = self.phase.map_or("starting", Phase::as_str);
        write!(f, "run {} ({phase})", self.run)
    }
}

/// The runs that keep this one (started at `me`, with id `my_run`) from
/// entering `want` (Quiet or Busy); empty when it may.
///
/// Older runs go first: a quiet phase waits for every older live run to
/// finish and for younger ones that are already measuring or busy; a busy
/// phase waits while any run measures quietly, and while an older run waits
/// for its quiet turn (so a stream of younger runs cannot starve it).
/// Between two runs one always has the other's way: no deadlock.
pub fn may_enter(me: Timestamp, my_run: &str, want: Phase, others: &[OtherRun]) -> Vec<OtherRun> {
    let older = |o: &OtherRun| (o.acquired, o.run.as_str()) < (me, my_run);
    others
        .iter()
        .filter(|o| o.run != my_run && o.phase != Some(Phase::Done))
        .filter(|o| match want {
            Phase::Quiet => older(o) || matches!(o.phase, Some(Phase::Quiet | Phase::Busy)),
            _ => {
                o.phase == Some(Phase::Quiet) || (older(o) && o.phase == Some(Phase::WaitingQuiet))
            }
        })
        .cloned()
        .collect()
}

/// Holds the run's Lease while it lives; renewal stops when it is dropped
/// or released.
pub struct LeaseHolder {
    renewer: tokio::task::JoinHandle<()>,
    client: Client,
    run: RunId,
    acquired: Timestamp,
    pub namespace: String,
}

impl Drop for LeaseHolder {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// How often a waiting run looks at the others, and says whom it waits for.
const TURN_POLL: Duration = Duration::from_secs(1);
const TURN_PROGRESS: Duration = Duration::from_secs(10);

impl LeaseHolder {
    async fn set_phase(&self, phase: Phase) {
        let patch =
            serde_json::json!({"metadata": {"annotations": {ANNOTATION_PHASE: phase.as_str()}}});
        let leases = Api::<Lease>::namespaced(self.client.clone(), &self.namespace);
        if let Err(e) = leases
            .patch(LEASE_NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::warn!("setting the run's phase to {}: {e}", phase.as_str());
        }
    }

    /// Waits (bounded by `limit`) until this run may enter `want` (Quiet or
    /// Busy), saying every 10 s whom it waits for; then enters it. Returns
    /// how long it waited, or the runs still in the way when time ran out
    /// (the phase is not entered then).
    pub async fn wait_turn(&self, want: Phase, limit: Duration) -> Result<Duration, Vec<OtherRun>> {
        let waiting = if want == Phase::Quiet {
            Phase::WaitingQuiet
        } else {
            Phase::WaitingBusy
        };
        self.set_phase(waiting).await;
        let started = std::time::Instant::now();
        let mut said = started;
        loop {
            let others = match live_runs(&self.client).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!("looking at other runs' Leases: {e}");
                    vec![]
                }
            };
            let blockers = may_enter(self.acquired, self.run.as_str(), want, &others);
            if blockers.is_empty() {
                self.set_phase(want).await;
                return Ok(started.elapsed());
            }
            if started.elapsed() >= limit {
                return Err(blockers);
            }
            if said.elapsed() >= TURN_PROGRESS {
                said = std::time::Instant::now();
                eprintln!(
                    "netconform: run {} waits {}s for its {} turn: {}",
                    self.run,
                    started.elapsed().as_secs(),
                    want.as_str(),
                    blockers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            tokio::time::sleep(TURN_POLL).await;
        }
    }

    /// Stops renewing and says the run is done, so that no other run waits
    /// for it while its namespaces are deleted.
    pub async fn release(&self) {
        self.renewer.abort();
        self.set_phase(Phase::Done).await;
    }
}

/// Every run whose Lease is fresh, with its phase.
pub async fn live_runs(client: &Client) -> kube::Result<Vec<OtherRun>> {
    let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_ROLE}=liveness");
    let list = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default().labels(&selector))
        .await?;
    let now = Timestamp::now();
    let mut runs = Vec::new();
    for ns in list.items {
        let Some(name) = ns.metadata.name else {
            continue;
        };
        if ns.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(lease) = Api::<Lease>::namespaced(client.clone(), &name)
            .get_opt(LEASE_NAME)
            .await?
        else {
            continue;
        };
        let created = ns.metadata.creation_timestamp.map_or(now, |t| t.0);
        if !matches!(judge(Some(&lease), created, now), RunState::Alive { .. }) {
            continue;
        }
        let run = ns
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_RUN))
            .cloned()
            .unwrap_or_default();
        let acquired = lease
            .spec
            .as_ref()
            .and_then(|s| s.acquire_time.as_ref())
            .map_or(created, |t| t.0);
        let phase = lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_PHASE))
            .and_then(|p| Phase::parse(p));
        runs.push(OtherRun {
            run,
            acquired,
            phase,
        });
    }
    Ok(runs)
}

/// Creates the run's liveness namespace and Lease, and renews the Lease in
/// the background until the holder is dropped (the namespace goes with the
/// run's others, by its label).
pub async fn hold(
    client: &Client,
    run: &RunId,
    holder: &str,
) -> Result<LeaseHolder, LivenessError> {
    let namespace = namespace_for(run);
    let mut labels = run.labels("run");
    labels.insert(LABEL_ROLE.into(), "liveness".into());
    namespaces::create(client, &namespace, labels.clone())
        .await
        .map_err(|source| LivenessError::Namespace {
            namespace: namespace.clone(),
            source,
        })?;
    let acquired = Timestamp::now();
    let now = MicroTime(acquired);
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(LEASE_NAME.into()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..Default::default()
        }),
    };
    let leases = Api::<Lease>::namespaced(client.clone(), &namespace);
    let renewing = leases.clone();
    if let Err(source) = leases.create(&PostParams::default(), &lease).await {
        // Nothing of the run may stay behind: its namespace goes too.
        let _ = namespaces::delete_by_label(client, &run.selector()).await;
        return Err(LivenessError::Lease { namespace, source });
    }
    let renewer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(RENEW_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            let patch = serde_json::json!({"spec": {"renewTime": MicroTime(Timestamp::now())}});
            if let Err(e) = renewing
                .patch(LEASE_NAME, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!("renewing the run's Lease: {e}");
            }
        }
    });
    Ok(LeaseHolder {
        renewer,
        client: client.clone(),
        run: run.clone(),
        acquired,
        namespace,
    })
}

/// What gc decided about one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Its Lease was renewed within its duration.
    Alive {
        holder: String,
        renewed_ago: Duration,
    },
    /// No Lease, but its newest namespace is within [`NO_LEASE_GRACE`].
    TooYoungToJudge { age: Duration },
    /// Its Lease expired.
    Expired {
        holder: String,
        renewed_ago: Duration,
    },
    /// No Lease, and its namespaces are older than [`NO_LEASE_GRACE`].
    NoLease { age: Duration },
}

impl RunState {
    pub fn is_dead(&self) -> bool {
        matches!(self, RunState::Expired { .. } | RunState::NoLease { .. })
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunState::Alive {
                holder,
                renewed_ago,
            } => write!(
                f,
                "alive: Lease held by {holder}, renewed {}s ago",
                renewed_ago.as_secs()
            ),
            RunState::TooYoungToJudge { age } => write!(
                f,
                "no Lease yet, namespaces {}s old (left alone for {}s)",
                age.as_secs(),
                NO_LEASE_GRACE.as_secs()
            ),
            RunState::Expired {
                holder,
                renewed_ago,
            } => write!(
                f,
                "dead: Lease of {holder} last renewed {}s ago (expires after {}s)",
                renewed_ago.as_secs(),
                LEASE_DURATION.as_secs()
            ),
            RunState::NoLease { age } => {
                write!(f, "dead: no Lease, namespaces {}s old", age.as_secs())
            }
        }
    }
}

fn since(then: Timestamp, now: Timestamp) -> Duration {
    let d: SignedDuration = now.duration_since(then);
    d.try_into().unwrap_or(Duration::ZERO)
}

/// Judges a run from its Lease (if any) and its newest namespace's creation.
pub fn judge(lease: Option<&Lease>, newest_namespace: Timestamp, now: Timestamp) -> RunState {
    let spec = lease.and_then(|l| l.spec.as_ref());
    let renewed = spec.and_then(|s| s.renew_time.as_ref().or(s.acquire_time.as_ref()));
    match (spec, renewed) {
        (Some(spec), Some(renewed)) => {
            let holder = spec.holder_identity.clone().unwrap_or_else(|| "?".into());
            let duration = spec
                .lease_duration_seconds
                .map_or(LEASE_DURATION, |s| Duration::from_secs(s.max(0) as u64));
            let renewed_ago = since(renewed.0, now);
            if renewed_ago <= duration {
                RunState::Alive {
                    holder,
                    renewed_ago,
                }
            } else {
                RunState::Expired {
                    holder,
                    renewed_ago,
                }
            }
        }
        _ => {
            let age = since(newest_namespace, now);
            if age <= NO_LEASE_GRACE {
                RunState::TooYoungToJudge { age }
            } else {
                RunState::NoLease { age }
            }
        }
    }
}

/// One run found on the cluster, and what gc did about it.
#[derive(Debug)]
pub struct RunFound {
    pub run: String,
    pub namespaces: Vec<String>,
    pub state: RunState,
    /// The namespaces deleted (empty when alive, or with `dry_run`).
    pub deleted: Vec<String>,
}

/// Finds every run that left namespaces with netconform's labels, judges
/// each by its Lease, and (unless `dry_run`) deletes the namespaces of the
/// dead ones by their run label. `keep` is a run never to touch (the
/// caller's own).
pub async fn collect_garbage(
    client: &Client,
    dry_run: bool,
    keep: Option<&RunId>,
) -> Result<Vec<RunFound>, LivenessError> {
    let api = Api::<Namespace>::all(client.clone());
    let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_RUN}");
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(LivenessError::List)?;
    let mut runs: BTreeMap<String, (Vec<String>, Timestamp)> = BTreeMap::new();
    for ns in list.items {
        let (Some(name), Some(run)) = (
            ns.metadata.name.clone(),
            ns.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_RUN))
                .cloned(),
        ) else {
            continue;
        };
        let created = ns
            .metadata
            .creation_timestamp
            .map_or(Timestamp::now(), |t| t.0);
        let entry = runs.entry(run).or_insert((Vec::new(), created));
        entry.0.push(name);
        entry.1 = entry.1.max(created);
    }
    let now = Timestamp::now();
    let mut found = Vec::new();
    for (run, (names, newest)) in runs {
        if keep.is_some_and(|k| k.as_str() == run) {
            continue;
        }
        let lease_ns = format!("nc-run-{run}");
        let lease = if names.contains(&lease_ns) {
            Api::<Lease>::namespaced(client.clone(), &lease_ns)
                .get_opt(LEASE_NAME)
                .await
                .ok()
                .flatten()
        } else {
            None
        };
        let state = judge(lease.as_ref(), newest, now);
        let deleted = if state.is_dead() && !dry_run {
            let selector = format!("{LABEL_RUN}={run},{LABEL_MANAGED_BY}={MANAGED_BY}");
            namespaces::delete_by_label(client, &selector)
                .await
                .map_err(|source| LivenessError::Delete {
                    run: run.clone(),
                    source,
                })?
        } else {
            vec![]
        };
        found.push(RunFound {
            run,
            namespaces: names,
            state,
            deleted,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(renewed_secs_ago: i64, now: Timestamp) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some("host/42".into()),
                lease_duration_seconds: Some(30),
                renew_time: Some(MicroTime(now - SignedDuration::from_secs(renewed_secs_ago))),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_fresh_lease_is_alive_and_an_expired_one_dead() {
        let now = Timestamp::now();
        let old = now - SignedDuration::from_secs(3600);
        assert!(matches!(
            judge(Some(&lease(5, now)), old, now),
            RunState::Alive { .. }
        ));
        assert!(matches!(
            judge(Some(&lease(30, now)), old, now),
            RunState::Alive { .. }
        ));
        let expired = judge(Some(&lease(31, now)), old, now);
        assert!(expired.is_dead(), "{expired}");
        assert_eq!(
            expired.to_string(),
            "dead: Lease of host/42 last renewed 31s ago (expires after 30s)"
        );
    }

    fn other(run: &str, secs: i64, phase: Option<Phase>) -> OtherRun {
        OtherRun {
            run: run.into(),
            acquired: Timestamp::from_second(1_000 + secs).unwrap(),
            phase,
        }
    }

    #[test]
    fn older_runs_measure_first_and_nobody_loads_a_quiet_measurement() {
        let me = Timestamp::from_second(1_010).unwrap();
        let quiet = |others: &[OtherRun]| may_enter(me, "me", Phase::Quiet, others);
        let busy = |others: &[OtherRun]| may_enter(me, "me", Phase::Busy, others);
        // Alone, or with only younger runs that have not started: go.
        assert!(quiet(&[]).is_empty());
        assert!(quiet(&[other("young", 20, Some(Phase::WaitingQuiet))]).is_empty());
        assert!(quiet(&[other("young", 20, None)]).is_empty());
        // Any older live run, or a younger one already loading the cluster: wait.
        assert_eq!(quiet(&[other("old", 0, Some(Phase::Busy))]).len(), 1);
        assert_eq!(
            quiet(&[other("old", 0, Some(Phase::WaitingQuiet))]).len(),
            1
        );
        assert_eq!(quiet(&[other("young", 20, Some(Phase::Busy))]).len(), 1);
        // Finished runs never block.
        assert!(quiet(&[other("old", 0, Some(Phase::Done))]).is_empty());
        // Busy: not while anyone measures, nor ahead of an older waiting run.
        assert!(busy(&[other("old", 0, Some(Phase::Busy))]).is_empty());
        assert!(busy(&[other("young", 20, Some(Phase::WaitingQuiet))]).is_empty());
        assert_eq!(busy(&[other("young", 20, Some(Phase::Quiet))]).len(), 1);
        assert_eq!(busy(&[other("old", 0, Some(Phase::WaitingQuiet))]).len(), 1);
    }

    #[test]
    fn two_runs_never_wait_for_each_other() {
        let (a, b) = (
            Timestamp::from_second(1_000).unwrap(),
            Timestamp::from_second(1_001).unwrap(),
        );
        let phases = [
            None,
            Some(Phase::WaitingQuiet),
            Some(Phase::Quiet),
            Some(Phase::WaitingBusy),
            Some(Phase::Busy),
        ];
        // Whatever each is doing and whichever turn each wants, at least one
        // of the two may go.
        for pa in phases {
            for pb in phases {
                for wa in [Phase::Quiet, Phase::Busy] {
                    for wb in [Phase::Quiet, Phase::Busy] {
                        let a_sees = [OtherRun {
                            run: "b".into(),
                            acquired: b,
                            phase: pb,
                        }];
                        let b_sees = [OtherRun {
                            run: "a".into(),
                            acquired: a,
                            phase: pa,
                        }];
                        let a_may = may_enter(a, "a", wa, &a_sees).is_empty();
                        let b_may = may_enter(b, "b", wb, &b_sees).is_empty();
                        // A run asking for a turn says it waits for it.
                        let waiting = |w: Phase| {
                            if w == Phase::Quiet {
                                Phase::WaitingQuiet
                            } else {
                                Phase::WaitingBusy
                            }
                        };
                        if pa == Some(waiting(wa)) && pb == Some(waiting(wb)) {
                            assert!(a_may || b_may, "{pa:?}/{wa:?} and {pb:?}/{wb:?} deadlock");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn without_a_lease_only_old_namespaces_are_dead() {
        let now = Timestamp::now();
        let young = judge(None, now - SignedDuration::from_secs(10), now);
        assert!(!young.is_dead(), "{young}");
        let old = judge(None, now - SignedDuration::from_secs(600), now);
        assert!(old.is_dead(), "{old}");
    }
}
