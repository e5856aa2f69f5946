//! Declarative scenarios: the file format ([`model`]) and its loader ([`load`]).

pub mod load;
pub mod model;

pub use load::{load_dir, parse, LoadedScenario, ScenarioError};
pub use model::*;
