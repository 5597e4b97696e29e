//! The hardend daemon (`hardend run`): watches the sources behind every fact,
//! re-evaluates what a change touches, turns status changes into drift events,
//! writes them to journald, keeps state across restarts, and serves the local
//! gRPC API on a Unix socket. This crate is the only one that knows tokio and
//! tonic.

pub mod api;
pub mod app;
pub mod client;
pub mod convert;
pub mod evaluator;
pub mod event;
pub mod journal;
mod memory;
pub mod metrics;
pub mod outbox;
pub mod push;
mod run;
pub mod sd_notify;
pub mod shared;
pub mod state;
pub mod watch;

pub use app::{AppError, Daemon, DaemonOptions, StatsHandle};
pub use event::{DriftEvent, DriftKind};
pub use run::{DaemonError, run};
pub use shared::{AgentView, AlertSink, Command, FanOut, PolicyInfo, RuleKey, Shared};
