//! The evaluation engine: `evaluate(policy, facts) -> results`.
//!
//! Pure: no I/O, no clock, no async. Anything the engine needs from outside
//! (today's date for waivers) is passed in. A fact that could not be read
//! yields the `error` status; it never passes.

pub mod report;

pub use report::*;
