//! A run's liveness record, and garbage collection of runs that died.
//!
//! Every run holds a Lease (`netconform-run`) in a namespace of its own,
//! `nc-run-<id>`, labelled like everything else it creates, and renews it
//! while it runs. A run killed with SIGKILL (or on a machine that died)
//! leaves its namespaces behind, and its Lease stops being renewed: `gc`
//! deletes the namespaces of exactly those runs, by their run label, and
//! never touches a run whose Lease is fresh or anything without
//! netconform's labels.

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
    #[error("creating the run's liveness namespace {namespace}: {source}")]
    Namespace {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating the run's Lease {namespace}/{LEASE_NAME}: {source}")]
    Lease {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("listing netconform's namespaces: {0}")]
    List(#[source] kube::Error),
    #[error("deleting the namespaces of run {run}: {source}")]
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

/// Holds the run's Lease while it lives; renewal stops when it is dropped.
pub struct LeaseHolder {
    renewer: tokio::task::JoinHandle<()>,
    pub namespace: String,
}

impl Drop for LeaseHolder {
    fn drop(&mut self) {
        self.renewer.abort();
    }
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
    let now = MicroTime(Timestamp::now());
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
            if let Err(e) = leases
                .patch(LEASE_NAME, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!("renewing the run's Lease: {e}");
            }
        }
    });
    Ok(LeaseHolder { renewer, namespace })
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

    #[test]
    fn without_a_lease_only_old_namespaces_are_dead() {
        let now = Timestamp::now();
        let young = judge(None, now - SignedDuration::from_secs(10), now);
        assert!(!young.is_dead(), "{young}");
        let old = judge(None, now - SignedDuration::from_secs(600), now);
        assert!(old.is_dead(), "{old}");
    }
}
