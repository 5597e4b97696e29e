//! The daemon's Prometheus metrics (`metrics:` in the configuration): the
//! counters the core loop bumps where it emits drift events and evaluates,
//! and the exposition made at each scrape from the shared view and the
//! outbox. With metrics off nothing here exists: no listener, no task.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hardend_engine::Status;
use hardend_metrics::{
    Counter, Exporter, Exposition, Family, Histogram, HttpError, LATENCY_BUCKETS, MetricType,
    TextEncoder,
};
use hardend_policy::Severity;
use hardend_proto as pb;
use tokio::sync::watch;

use crate::push::SharedOutbox;
use crate::{AgentView, DriftEvent, DriftKind};

/// The label values of `hardend_drift_events_total`, in [`drift_index`] order.
const DRIFT_KINDS: &[&str] = &["failing", "passing", "error", "overdue"];
/// The label values of `hardend_evaluation_duration_seconds`.
const EVALUATION_KINDS: &[&str] = &["full", "partial"];

/// What an evaluation covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvaluationKind {
    /// Every rule (start, periodic rescan, reload, `Evaluate`).
    Full,
    /// The rules behind changed files or polled facts.
    Partial,
}

fn drift_index(kind: DriftKind) -> usize {
    match kind {
        DriftKind::Failing => 0,
        DriftKind::Passing => 1,
        DriftKind::Error => 2,
        DriftKind::Overdue => 3,
    }
}

/// The counters and histograms the core loop feeds.
#[derive(Debug)]
pub struct AgentMetrics {
    drift: Family<Counter>,
    evaluations: Family<Histogram>,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        AgentMetrics {
            drift: Family::new("kind", DRIFT_KINDS),
            evaluations: Family::histograms("kind", EVALUATION_KINDS, LATENCY_BUCKETS),
        }
    }
}

impl AgentMetrics {
    pub fn new() -> AgentMetrics {
        AgentMetrics::default()
    }

    /// Counts drift events as they are emitted.
    pub fn drift_emitted(&self, events: &[DriftEvent]) {
        for event in events {
            self.drift.at(drift_index(event.kind)).inc();
        }
    }

    /// Counts one evaluation and how long it took.
    pub fn evaluated(&self, kind: EvaluationKind, took: Duration) {
        let index = match kind {
            EvaluationKind::Full => 0,
            EvaluationKind::Partial => 1,
        };
        self.evaluations.at(index).observe_duration(took);
    }

    /// Drift events of a kind counted so far.
    pub fn drift_events(&self, kind: DriftKind) -> u64 {
        self.drift.at(drift_index(kind)).get()
    }
}

/// A bound endpoint with the metrics it will serve; started by [`serve`].
#[derive(Debug)]
pub struct Endpoint {
    exporter: Exporter,
    pub metrics: Arc<AgentMetrics>,
}

impl Endpoint {
    /// Binds the endpoint (so that an unusable address stops the start).
    pub async fn bind(listen: SocketAddr) -> Result<Endpoint, HttpError> {
        Ok(Endpoint {
            exporter: Exporter::bind(listen).await?,
            metrics: Arc::new(AgentMetrics::new()),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.exporter.local_addr()
    }

    /// Serves scrapes from the view and the outbox (when pushing) until
    /// `shutdown` completes.
    pub async fn serve(
        self,
        view: watch::Receiver<Arc<AgentView>>,
        outbox: Option<SharedOutbox>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let exposition = Arc::new(AgentExposition {
            metrics: self.metrics,
            view,
            outbox,
        });
        self.exporter.serve(exposition, shutdown).await;
    }
}

/// What a scrape of the agent shows.
pub struct AgentExposition {
    pub metrics: Arc<AgentMetrics>,
    pub view: watch::Receiver<Arc<AgentView>>,
    pub outbox: Option<SharedOutbox>,
}

impl Exposition for AgentExposition {
    async fn render(&self) -> String {
        self.render_at(jiff::Timestamp::now())
    }
}

fn seconds(t: jiff::Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

/// When a queued message was made: a drift event's time, a snapshot's scan.
fn message_time(message: &pb::AgentMessage) -> Option<jiff::Timestamp> {
    let text = match &message.body {
        Some(pb::agent_message::Body::Drift(d)) => d.at.as_str(),
        Some(pb::agent_message::Body::Snapshot(s)) => s.report.as_ref()?.started_at.as_str(),
        _ => return None,
    };
    text.parse().ok()
}

impl AgentExposition {
    /// The exposition as of `now`.
    pub fn render_at(&self, now: jiff::Timestamp) -> String {
        let view = self.view.borrow().clone();
        let mut e = TextEncoder::new();
        e.family(
            "hardend_build_info",
            "The running hardend's version; always 1.",
            MetricType::Gauge,
        );
        e.sample(
            "hardend_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        e.gauge(
            "hardend_start_time_seconds",
            "When the daemon started, in seconds since the Unix epoch.",
            seconds(view.started_at),
        );
        self.rules(&mut e, &view);
        e.gauge(
            "hardend_policy_errors",
            "Policy or configuration errors of the last reload (the last good policies stay in force).",
            view.policy_errors.len() as f64,
        );
        if let Some(at) = view.last_full_scan_at {
            e.gauge(
                "hardend_last_full_scan_timestamp_seconds",
                "When the last full evaluation ran, in seconds since the Unix epoch.",
                seconds(at),
            );
        }
        e.counter_family(
            "hardend_drift_events_total",
            "Drift events emitted since the daemon started, by kind.",
            &self.metrics.drift,
        );
        e.histogram_family(
            "hardend_evaluation_duration_seconds",
            "Time to probe and evaluate: full (every rule) or partial (the rules behind a change or a poll).",
            &self.metrics.evaluations,
        );
        if let Some(outbox) = &self.outbox {
            self.outbox(&mut e, outbox, now);
        }
        e.finish()
    }

    fn rules(&self, e: &mut TextEncoder, view: &AgentView) {
        let results = &view.report.results;
        let mut by_group: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
        let mut failing = [0u64; 4];
        let severity_index = |s: Severity| Severity::ALL.iter().position(|x| *x == s).unwrap_or(0);
        for r in results {
            *by_group
                .entry((r.policy.as_str(), r.severity.as_str(), r.status.as_str()))
                .or_default() += 1;
            if r.status == Status::Fail {
                failing[severity_index(r.severity)] += 1;
            }
        }
        let mut overdue = [0u64; 4];
        for (policy, rule) in &view.overdue {
            if let Some(r) = results
                .iter()
                .find(|r| &r.policy == policy && &r.rule == rule)
            {
                overdue[severity_index(r.severity)] += 1;
            }
        }
        e.family(
            "hardend_rules",
            "Rules by policy, severity and status (pass, fail, error, not_applicable, waived).",
            MetricType::Gauge,
        );
        for ((policy, severity, status), n) in &by_group {
            e.sample_u64(
                "hardend_rules",
                &[
                    ("policy", policy),
                    ("severity", severity),
                    ("status", status),
                ],
                *n,
            );
        }
        e.family(
            "hardend_failing_rules",
            "Rules failing now, by severity.",
            MetricType::Gauge,
        );
        for (i, severity) in Severity::ALL.iter().enumerate() {
            e.sample_u64(
                "hardend_failing_rules",
                &[("severity", severity.as_str())],
                failing[i],
            );
        }
        e.family(
            "hardend_overdue_rules",
            "Failing rules past their severity's deadline, by severity.",
            MetricType::Gauge,
        );
        for (i, severity) in Severity::ALL.iter().enumerate() {
            e.sample_u64(
                "hardend_overdue_rules",
                &[("severity", severity.as_str())],
                overdue[i],
            );
        }
    }

    fn outbox(&self, e: &mut TextEncoder, outbox: &SharedOutbox, now: jiff::Timestamp) {
        let Ok(outbox) = outbox.lock() else {
            return;
        };
        let oldest = if outbox.is_empty() {
            None
        } else {
            match outbox.read_after(outbox.acked(), 1) {
                Ok(messages) => messages.first().and_then(message_time),
                Err(err) => {
                    tracing::warn!(error = %err, "metrics: cannot read the oldest queued message");
                    None
                }
            }
        };
        e.gauge(
            "hardend_outbox_messages",
            "Messages (drift events and snapshots) queued for the collector and not acknowledged.",
            outbox.len() as f64,
        );
        e.gauge(
            "hardend_outbox_drift_events",
            "Drift events queued for the collector and not acknowledged.",
            outbox.drift_events() as f64,
        );
        let age = oldest.map_or(0.0, |at| {
            (now.as_millisecond() - at.as_millisecond()).max(0) as f64 / 1000.0
        });
        e.gauge(
            "hardend_outbox_oldest_age_seconds",
            "Age of the oldest message not acknowledged by the collector (0 when none is queued).",
            age,
        );
        e.family(
            "hardend_outbox_folded_events_total",
            "Drift events folded into a snapshot because the outbox was full.",
            MetricType::Counter,
        );
        e.sample_u64(
            "hardend_outbox_folded_events_total",
            &[],
            outbox.folded_total(),
        );
    }
}
