//! Declarative scenarios: the file format ([`model`]), its loader ([`load`])
//! and the semantic checks ([`validate`]).

pub mod load;
pub mod model;
pub mod validate;

pub use load::{load_dir, parse, LoadedScenario, ScenarioError};
pub use model::*;
