//! Declarative scenarios: the file format ([`model`]), its loader ([`load`]),
//! the semantic checks ([`validate`]) and the known feature names
//! ([`features`]). A leaf: nothing here imports the rest of the harness.

pub mod expand;
pub mod features;
pub mod load;
pub mod model;
pub mod validate;

pub use load::{
    load_dir, load_worlds, parse, parse_with, parse_world, LoadedScenario, ScenarioError, Worlds,
};
pub use model::*;
