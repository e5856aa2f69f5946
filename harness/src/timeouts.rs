//! Every bound the harness puts on waiting, in one place. Probe timeouts are
//! not here: they belong to the checks (`timeout_ms`, `converge_ms` in the
//! scenario files). Each wait that runs out is an error naming what it waited for.

use std::time::Duration;

pub struct Timeouts {
    /// The first contact with the API server.
    pub connect: Duration,
    /// A namespace's default ServiceAccount (pods are admitted only after it).
    pub service_account: Duration,
    /// Fixture pods becoming Ready (image import, CNI, probes on a busy node).
    pub pod_ready: Duration,
    /// A Service's EndpointSlices listing every Ready backend.
    pub endpoints: Duration,
    /// The first probe through a new Service, until its data path answers.
    pub data_path: Duration,
    /// One `before` action (pods replaced or made unready, a policy deleted).
    pub action: Duration,
    /// A shared world all-allowed: before its first scenario, and again
    /// after each scenario's policies are deleted.
    pub restore: Duration,
    /// How long a converging check may spend settling (short probe rounds
    /// until the change shows, before the rounds that judge).
    pub settle: Duration,
    /// One probe of a quick round (settling, and restoring a shared world).
    pub settle_probe: Duration,
    /// Between two quick rounds.
    pub settle_pause: Duration,
    /// Added to a batch's own probe bounds for the exec around it.
    pub exec_margin: Duration,
    /// A batch waiting for its pod's probe session while other batches use
    /// it (each of those is bounded by its own limit).
    pub session_queue: Duration,
    /// Between two rounds of a converging check.
    pub converge_pause: Duration,
    /// The run's pods gone at the end (the run reports them if not).
    pub pods_gone: Duration,
    /// Deleting the run's namespaces after Ctrl-C.
    pub interrupted_cleanup: Duration,
    /// Waiting for other netconform runs on the same cluster before a quiet
    /// phase (or before loading the cluster while one measures).
    pub turn: Duration,
}

pub const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(10),
    service_account: Duration::from_secs(60),
    pod_ready: Duration::from_secs(180),
    endpoints: Duration::from_secs(60),
    data_path: Duration::from_secs(90),
    action: Duration::from_secs(120),
    restore: Duration::from_secs(30),
    settle: Duration::from_secs(5),
    settle_probe: Duration::from_millis(250),
    settle_pause: Duration::from_millis(50),
    exec_margin: Duration::from_secs(30),
    session_queue: Duration::from_secs(600),
    converge_pause: Duration::from_millis(300),
    pods_gone: Duration::from_secs(120),
    interrupted_cleanup: Duration::from_secs(30),
    turn: Duration::from_secs(600),
};
