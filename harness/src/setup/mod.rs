//! A scenario's world in the cluster: which node each pod runs on
//! ([`placement`]), the manifests and readiness waits ([`fixtures`]), the wait
//! for each new Service's data path on every node ([`data_path`]), the world
//! as it exists ([`world`]) and the changes checks make to it ([`actions`]);
//! every step fails with a [`SetupError`].

pub use error::SetupError;

pub mod actions;
pub mod data_path;
pub mod error;
pub mod fixtures;
pub mod placement;
pub mod world;
