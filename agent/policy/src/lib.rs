//! The policy language: parsing YAML into validated domain types.
//!
//! Parsing runs in two phases: `raw` holds serde types that mirror the YAML
//! (with source positions), `model` holds the validated domain types the
//! engine evaluates. Every error carries `file:line:column`.

pub mod model;
pub mod raw;

pub use model::*;
