//! Probes: planning a check's probes ([`plan`]). The agent runs them in the
//! pods (one exec per source container, `cluster::exec`); the runner runs
//! the rounds.

pub mod error;
pub mod plan;

pub use error::PlanError;
