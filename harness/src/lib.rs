//! netconform-harness: everything the conformance suite needs that is not the
//! test binary itself. One module per capability:
//!
//! - [`scenario`]: the YAML format and its validating loader
//! - [`features`]: features, profiles, and which checks a cluster skips
//! - [`cluster`]: connecting like kubectl, schedulable nodes
//! - [`run`]: run ids and the labels that mark what a run creates
//! - [`namespaces`]: per-scenario namespaces, deleted only by label
//! - [`placement`]: which node each fixture pod runs on
//! - [`fixtures`]: agent pods and Services, server-side apply, readiness waits on watches
//! - [`world`]: a scenario's fixtures as they exist in the cluster
//! - [`actions`]: changes checks make to fixtures (replace pods, make unready, delete policies)
//! - [`exec`]: one agent exec per probe batch
//! - [`checks`]: checks to probes, results to verdicts
//! - [`verdict`]: what a check concluded, typed (failures, skips)
//! - [`stats`]: latency percentiles
//! - [`runner`]: one scenario from namespaces to verdicts to cleanup
//! - [`report`]: JUnit and JSON, and the only place verdicts become text

pub mod actions;
pub mod checks;
pub mod cluster;
pub mod exec;
pub mod features;
pub mod fixtures;
pub mod namespaces;
pub mod placement;
pub mod report;
pub mod run;
pub mod runner;
pub mod scenario;
pub mod stats;
pub mod verdict;
pub mod world;
