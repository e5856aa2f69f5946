//! netconform-harness: everything the conformance suite needs that is not the
//! test binary itself. The folders follow one scenario's path, each layer
//! importing only the ones before it (tests/layering.rs):
//!
//! - [`scenario`]: the YAML format, `vary` expansion and the validating loader (a leaf)
//! - [`cluster`]: connecting like kubectl and listing nodes; run ids and labels
//!   ([`cluster::run`]); namespaces deleted only by label ([`cluster::namespaces`]);
//!   one agent exec per probe batch ([`cluster::exec`])
//! - [`setup`]: a scenario's world in the cluster: node placement, manifests and
//!   readiness waits ([`setup::fixtures`]), the world itself, policies on it, and
//!   the changes checks make to it ([`setup::actions`])
//! - [`probes`]: a check's probes, planned from the world
//! - [`verdict`]: what a check concluded, typed; judging results ([`verdict::judge`]),
//!   matrices and latency statistics ([`verdict::stats`])
//! - [`features`]: features, profiles, and which checks a cluster skips
//! - [`report`]: JUnit and JSON, and the only place verdicts become text
//! - [`runner`]: one scenario (or a shared world's scenarios) from setup to
//!   verdicts to cleanup
//! - [`timeouts`]: every bound the harness puts on waiting
//! - [`progress`]: progress of long work as `tracing` events

pub mod cluster;
pub mod features;
pub mod probes;
pub mod progress;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod setup;
pub mod timeouts;
pub mod verdict;
