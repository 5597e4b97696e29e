//! The hardend daemon (`hardend run`): watches the sources behind every fact,
//! re-evaluates what a change touches, turns status changes into drift events,
//! writes them to journald, keeps state across restarts, and serves the local
//! gRPC API on a Unix socket. This crate is the only one that knows tokio and
//! tonic.

pub mod api;
pub mod client;
pub mod convert;
pub mod event;
pub mod journal;
pub mod shared;

pub use event::{DriftEvent, DriftKind};
pub use shared::{AgentView, AlertSink, Command, PolicyInfo, RuleKey, Shared};
