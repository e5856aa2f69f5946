//! Why a check could not be turned into probes on its world: data that the
//! verdict carries (`Failure::CannotPlan` in the verdict module) and the report
//! renders (`Display`).

use crate::setup::SetupError;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlanError {
    /// The world has no fixture by that name (validation should have caught
    /// it; kept as a verdict rather than a panic).
    #[error("no {what} `{name}`")]
    Unknown { what: &'static str, name: String },
    /// A Service lacks what the check needs of it.
    #[error("service `{service}` has no {lacks}")]
    ServiceLacks { service: String, lacks: String },
    #[error("pod {pod} runs on node {node}, which is not Ready")]
    NodeNotReady { pod: String, node: String },
    /// A pod, node or Service without an address of the check's family (on
    /// a dual-stack cluster, every one should have both).
    #[error("{object} has no {family} address")]
    NoAddress {
        object: String,
        family: &'static str,
    },
    #[error("no host outside the cluster is named ({variable})")]
    NoOutsideHost { variable: &'static str },
    #[error("the `kubernetes` Service in namespace default could not be read (its clusterIP is the API server's in-cluster address)")]
    NoApiServerAddress,
    /// The check lacks a field its kind needs.
    #[error("{0}")]
    Incomplete(&'static str),
    /// A DNS name whose placeholders this world cannot fill.
    #[error(transparent)]
    Name(#[from] SetupError),
}
