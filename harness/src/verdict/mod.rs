//! What a check concluded, as data. Judging ([`judge`]) builds these values;
//! the report module is the only place that turns them into text, and tests
//! (the fault tests among them) match on them instead of parsing messages.

pub mod judge;
pub mod stats;

use netconform_protocol::{DnsQuery, Outcome};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

use crate::probes::PlanError;
use crate::scenario::{Expectation, IpFamily, Protocol};
use crate::setup::actions::ClusterIpChange;
use crate::setup::SetupError;

/// A check's verdict.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Passed,
    Failed(Failure),
    Skipped(Skip),
}

impl Status {
    pub fn is_passed(&self) -> bool {
        matches!(self, Status::Passed)
    }

    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Status::Failed(f) => Some(f),
            _ => None,
        }
    }
}

/// Why a check failed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// The scenario's fixtures could not be set up.
    SetupFailed { error: SetupError },
    /// One of the check's `before` actions failed.
    ActionFailed { action: String, error: SetupError },
    /// The scenario's shared world had no copy left to run it: every copy
    /// stopped taking scenarios, each for its reason.
    NoWorldLeft { copies: Vec<WorldStopped> },
    /// The check could not be turned into probes on this world.
    CannotPlan { error: PlanError },
    /// Probes that never produced a result (exec failed, agent error).
    ProbesCouldNotRun { errors: Vec<ProbeError> },
    /// The probes ran and their results were judged.
    Judged(Judgement),
    /// A converging check still failed when its time was up.
    DidNotConverge {
        limit_ms: u64,
        rounds: u32,
        last: Box<Failure>,
    },
    /// A Service's clusterIP changed across the check's actions.
    ClusterIpChanged {
        changes: Vec<ClusterIpChange>,
        /// What the probes found besides, if they failed too.
        also: Option<Box<Failure>>,
    },
}

impl Failure {
    /// The judgement behind this failure, through convergence and clusterIP
    /// wrappers.
    pub fn judgement(&self) -> Option<&Judgement> {
        match self {
            Failure::Judged(j) => Some(j),
            Failure::DidNotConverge { last, .. } => last.judgement(),
            Failure::ClusterIpChanged { also, .. } => also.as_deref().and_then(Failure::judgement),
            // The probes that stopped the shared world's copies.
            Failure::NoWorldLeft { copies } => copies.iter().find_map(|c| match c {
                WorldStopped::NotAllowedAtStart { failure, .. }
                | WorldStopped::NotRestored { failure, .. } => failure.judgement(),
                _ => None,
            }),
            _ => None,
        }
    }

    /// A short, stable name of what went wrong (for summaries and tests).
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::SetupFailed { .. } => "setup_failed",
            Failure::ActionFailed { .. } => "action_failed",
            Failure::NoWorldLeft { .. } => "no_world_left",
            Failure::CannotPlan { .. } => "cannot_plan",
            Failure::ProbesCouldNotRun { .. } => "probes_could_not_run",
            Failure::Judged(_) => "judged",
            Failure::DidNotConverge { .. } => "did_not_converge",
            Failure::ClusterIpChanged { .. } => "cluster_ip_changed",
        }
    }
}

/// Why a copy of a shared world stopped taking scenarios.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorldStopped {
    /// The copy could not be set up.
    SetupFailed { world: String, error: SetupError },
    /// A case's policies could not be deleted, or the labels it changed not given back.
    ChangesNotUndone {
        world: String,
        after: String,
        error: SetupError,
    },
    /// Before any case, without any policy, its pods did not all reach each
    /// other: every case would fail for a reason no policy gave.
    NotAllowedAtStart {
        world: String,
        check: String,
        failure: Box<Failure>,
    },
    /// After a case's policies were deleted, traffic did not come back.
    NotRestored {
        world: String,
        after: String,
        check: String,
        failure: Box<Failure>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeError {
    pub from_pod: String,
    pub target: String,
    pub error: String,
}

/// The judged probes of a check and what only the whole check can show.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Judgement {
    pub probes: usize,
    pub failed_probes: Vec<ProbeFailure>,
    pub check_problems: Vec<CheckProblem>,
    /// Matrix checks: expected and observed connectivity per pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matrix: Option<Matrix>,
}

/// Where a probe was sent from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    HarnessHost,
    HostNetwork {
        namespace: String,
        pod: String,
        node: String,
        ip: String,
    },
    Pod {
        namespace: String,
        pod: String,
        node: String,
        ip: String,
    },
}

impl Origin {
    pub fn node(&self) -> Option<&str> {
        match self {
            Origin::HarnessHost => None,
            Origin::HostNetwork { node, .. } | Origin::Pod { node, .. } => Some(node),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeFailure {
    pub protocol: Protocol,
    pub origin: Origin,
    pub target: String,
    pub problems: Vec<ProbeProblem>,
}

/// What one probe's samples got wrong.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeProblem {
    NoSamples,
    /// Samples whose outcome was not the expected one.
    UnexpectedOutcome {
        expected: Expectation,
        samples: usize,
        /// The samples the probe was to take; more than `samples` when it
        /// stopped early (timeouts in a row, a time bound that ran out).
        planned: usize,
        observed: BTreeMap<Outcome, usize>,
        first: Outcome,
        first_detail: Option<String>,
        /// The DNS queries of the first unexpected sample (when it had any and
        /// did not connect).
        first_queries: Vec<DnsQuery>,
        /// A sample failed with "No route to host" (a neighbour resolution).
        no_route_to_host: bool,
    },
    /// The server saw another source address than the client's pod IP.
    SourceAddressRewritten {
        expected: String,
        seen: BTreeMap<String, usize>,
    },
    /// Answers that should have come truncated over UDP and then over TCP
    /// came another way on this many samples.
    NoDnsTcpFallback {
        samples: usize,
    },
    /// The outside host saw neither the client's pod IP nor its node's IP.
    SourceNeitherPodNorNode {
        pod_ip: String,
        node_ip: String,
        seen: BTreeMap<String, usize>,
    },
    /// A client's samples were answered by more than one backend although the
    /// Service keeps a client on one (session affinity).
    SpreadDespiteAffinity {
        servers: BTreeMap<String, usize>,
    },
    /// The answer came from another pod than the client itself.
    AnsweredByOtherPod {
        expected: String,
        got: BTreeSet<String>,
    },
    DnsAnswers {
        expected: BTreeSet<String>,
        got: BTreeSet<String>,
    },
    SrvRecords {
        count: usize,
        port: u16,
        got: Vec<String>,
    },
    PodIpNotOwned {
        missing: BTreeSet<String>,
        own: BTreeSet<String>,
    },
    Hostname {
        expected: String,
        got: String,
    },
}

/// What only the set of a check's probes shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckProblem {
    ServedByForbidden {
        forbidden: BTreeSet<String>,
        hits: BTreeMap<String, usize>,
    },
    TooFewBackends {
        want: u32,
        got: BTreeSet<String>,
    },
    LatencyOverThreshold {
        percentile: Percentile,
        limit_ms: f64,
        observed_us: u64,
    },
    /// A node pair far slower than the cluster's own baseline.
    NodePairOutlier {
        from: String,
        to: String,
        p50_us: u64,
        baseline_p50_us: u64,
        ratio: f64,
        floor_ms: f64,
    },
    /// A node pair whose throughput is far below the cluster's own baseline.
    ThroughputPairOutlier {
        from: String,
        to: String,
        median_mbps: f64,
        baseline_mbps: f64,
        ratio: f64,
        floor_mbps: f64,
    },
    NoProbes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Percentile {
    P50,
    P90,
    P99,
}

/// Connectivity of a matrix check: rows are sources, columns targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Matrix {
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    pub cells: Vec<MatrixCell>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MatrixCell {
    pub from: String,
    pub to: String,
    pub expected: Reach,
    pub observed: Reach,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    Connects,
    Blocked,
    /// Some samples connected, some did not.
    Mixed,
}

impl Matrix {
    /// Cells whose observation differs from the expectation.
    pub fn mismatches(&self) -> usize {
        self.cells
            .iter()
            .filter(|c| c.expected != c.observed)
            .count()
    }
}

/// Why a check did not run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Skip {
    /// A feature of the check that this cluster does not offer.
    FeatureAbsent { feature: String, why: Absence },
    /// A feature outside the profile the run claims.
    NotInProfile { feature: String, profile: String },
    /// The fixtures cannot be placed on this cluster's nodes.
    Placement { reason: String },
    /// A quiet measurement never got the cluster to itself: other netconform
    /// runs were still active when the wait ran out.
    ClusterNotQuiet { waited_s: u64, runs: Vec<String> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Absence {
    /// The user's declaration says the cluster does not support it.
    DeclaredUnsupported { source: String },
    /// No node has an IPv6 pod CIDR.
    NoIpv6PodCidr,
    /// No host outside the cluster was named (`NETCONFORM_OUTSIDE_HOST`).
    NoOutsideHostNamed,
    /// The outside host was named without an address in this family.
    NoOutsideHostInFamily { family: IpFamily },
    /// netconform runs in a pod of the cluster: there is no harness host
    /// outside it to probe from.
    HarnessInCluster,
}
