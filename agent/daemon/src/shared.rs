//! What the daemon's tasks share: the current view that the API serves, the
//! broadcast of drift events, and the commands the API sends to the core.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use hardend_engine::Report;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::DriftEvent;

/// A loaded policy, as `ListPolicies` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    pub id: String,
    pub version: String,
    pub title: String,
    pub source: String,
    pub rules: u32,
}

/// (policy id, rule id).
pub type RuleKey = (String, String);

/// The daemon's current state of the host. Replaced as a whole (behind an
/// `Arc`) after every evaluation, so readers never see half an update.
#[derive(Debug, Clone)]
pub struct AgentView {
    pub hostname: String,
    pub root: String,
    pub started_at: jiff::Timestamp,
    pub last_full_scan_at: Option<jiff::Timestamp>,
    /// The latest result of every rule, as a `hardend.report/v1` report.
    pub report: Report,
    /// When each currently failing rule started failing without interruption.
    pub first_failed: BTreeMap<RuleKey, jiff::Timestamp>,
    /// The failing rules past their severity's deadline.
    pub overdue: BTreeSet<RuleKey>,
    pub policies: Vec<PolicyInfo>,
    /// Policy files refused at the last (re)load, as `file:line:col: message`;
    /// the last good policies stay in force meanwhile.
    pub policy_errors: Vec<String>,
    /// Drift events emitted since the daemon started.
    pub drift_events: u64,
}

/// Requests from the API to the core loop.
#[derive(Debug)]
pub enum Command {
    /// Evaluate everything now; the reply is the view afterwards.
    Evaluate(oneshot::Sender<Arc<AgentView>>),
    /// Reload the configuration and policies (as SIGHUP does).
    Reload,
    /// Hand the sinks a snapshot of the current view now (the push task
    /// asks for one after connecting to the collector).
    Snapshot,
}

/// Handles to the core, cloned into every API task.
#[derive(Debug, Clone)]
pub struct Shared {
    pub view: watch::Receiver<Arc<AgentView>>,
    /// Drift events as they happen. Shared (`Arc`) so that the channel's
    /// preallocated slots stay small.
    pub drift: broadcast::Sender<Arc<DriftEvent>>,
    pub commands: mpsc::Sender<Command>,
}

/// Where alerts go: journald, or stderr when there is no journal. Called from
/// the core loop in event order; an implementation must not block for long
/// and must never panic.
pub trait AlertSink: Send {
    /// One drift event.
    fn drift(&mut self, event: &DriftEvent);
    /// Policy files were refused at a (re)load; each error is `file:line:col: message`.
    fn policy_errors(&mut self, errors: &[String]);
    /// The drift events of one evaluation, in order, with the view they
    /// produced. By default each goes to [`AlertSink::drift`]; the outbox
    /// takes them as one durable append.
    fn drift_batch(&mut self, events: &[DriftEvent], view: &AgentView) {
        let _ = view;
        for event in events {
            self.drift(event);
        }
    }
    /// Whether this sink wants snapshots (the core allocates a sequence
    /// number for each only then).
    fn wants_snapshots(&self) -> bool {
        false
    }
    /// The full view after a full evaluation (or when asked), with its own
    /// sequence number from the drift events' counter.
    fn snapshot(&mut self, seq: u64, view: &AgentView) {
        let _ = (seq, view);
    }
    /// The lowest sequence number the next event may take: a sink that
    /// keeps messages across restarts (the outbox) may have queued some
    /// that the persisted state does not know of yet.
    fn next_seq_floor(&self) -> u64 {
        0
    }
}

/// Forwards everything to several sinks, in the order given.
pub struct FanOut(pub Vec<Box<dyn AlertSink>>);

impl AlertSink for FanOut {
    fn drift(&mut self, event: &DriftEvent) {
        for sink in &mut self.0 {
            sink.drift(event);
        }
    }

    fn policy_errors(&mut self, errors: &[String]) {
        for sink in &mut self.0 {
            sink.policy_errors(errors);
        }
    }

    fn drift_batch(&mut self, events: &[DriftEvent], view: &AgentView) {
        for sink in &mut self.0 {
            sink.drift_batch(events, view);
        }
    }

    fn wants_snapshots(&self) -> bool {
        self.0.iter().any(|s| s.wants_snapshots())
    }

    fn snapshot(&mut self, seq: u64, view: &AgentView) {
        for sink in &mut self.0 {
            sink.snapshot(seq, view);
        }
    }

    fn next_seq_floor(&self) -> u64 {
        self.0.iter().map(|s| s.next_seq_floor()).max().unwrap_or(0)
    }
}
