//! The policy language: parsing YAML into validated domain types.
//!
//! Parsing runs in two phases: `raw` reads the YAML into a tree of nodes
//! that keep their source positions, `validate` turns that tree into the
//! `model` types the engine evaluates, collecting every error. Every error
//! carries `file:line:column`. `config` reads the agent's configuration
//! file with the same machinery.

pub mod config;
mod error;
mod load;
pub mod model;
pub mod raw;
mod reader;
pub mod validate;

pub use error::PolicyError;
pub use load::{
    ConfiguredPoliciesError, join_lines, load_configured, load_paths, parse_policy, show_paths,
};
pub use model::*;
