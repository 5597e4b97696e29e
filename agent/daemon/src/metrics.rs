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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use hardend_engine::{HostInfo, Report, RuleResult, Summary};

    use super::*;
    use crate::outbox::{Outbox, OutboxOptions};

    fn result(policy: &str, rule: &str, severity: Severity, status: Status) -> RuleResult {
        RuleResult {
            policy: policy.into(),
            rule: rule.into(),
            title: "t".into(),
            severity,
            status,
            waived_status: None,
            expected: None,
            actual: None,
            evidence: vec![],
            message: None,
        }
    }

    fn view() -> AgentView {
        let results = vec![
            result("ssh", "a", Severity::Critical, Status::Fail),
            result("ssh", "b", Severity::Critical, Status::Fail),
            result("ssh", "c", Severity::High, Status::Pass),
            result("kernel", "d", Severity::Medium, Status::Fail),
            result("kernel", "e", Severity::Low, Status::Waived),
        ];
        AgentView {
            hostname: "web-1".into(),
            root: "/".into(),
            started_at: "2026-11-22T10:00:00Z".parse().expect("timestamp"),
            last_full_scan_at: Some("2026-11-22T10:00:01.5Z".parse().expect("timestamp")),
            report: Report {
                schema: hardend_engine::REPORT_SCHEMA.into(),
                host: HostInfo {
                    hostname: "web-1".into(),
                    root: "/".into(),
                },
                started_at: "2026-11-22T10:00:01Z".into(),
                duration_ms: 1.0,
                policies: vec![],
                summary: Summary::of(&results),
                results,
            },
            first_failed: Default::default(),
            overdue: BTreeSet::from([("ssh".to_string(), "b".to_string())]),
            policies: vec![],
            policy_errors: vec![],
            drift_events: 0,
        }
    }

    fn lines_starting(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn rules_failing_and_overdue_come_from_the_view() {
        let (_tx, rx) = watch::channel(Arc::new(view()));
        let metrics = Arc::new(AgentMetrics::new());
        let exposition = AgentExposition {
            metrics: metrics.clone(),
            view: rx,
            outbox: None,
        };
        let text = exposition.render_at("2026-11-22T11:00:00Z".parse().expect("now"));
        assert_eq!(
            lines_starting(&text, "hardend_rules{"),
            [
                "hardend_rules{policy=\"kernel\",severity=\"low\",status=\"waived\"} 1",
                "hardend_rules{policy=\"kernel\",severity=\"medium\",status=\"fail\"} 1",
                "hardend_rules{policy=\"ssh\",severity=\"critical\",status=\"fail\"} 2",
                "hardend_rules{policy=\"ssh\",severity=\"high\",status=\"pass\"} 1",
            ]
        );
        assert_eq!(
            lines_starting(&text, "hardend_failing_rules{"),
            [
                "hardend_failing_rules{severity=\"critical\"} 2",
                "hardend_failing_rules{severity=\"high\"} 0",
                "hardend_failing_rules{severity=\"medium\"} 1",
                "hardend_failing_rules{severity=\"low\"} 0",
            ]
        );
        assert_eq!(
            lines_starting(&text, "hardend_overdue_rules{"),
            [
                "hardend_overdue_rules{severity=\"critical\"} 1",
                "hardend_overdue_rules{severity=\"high\"} 0",
                "hardend_overdue_rules{severity=\"medium\"} 0",
                "hardend_overdue_rules{severity=\"low\"} 0",
            ]
        );
        assert_eq!(
            lines_starting(&text, "hardend_last_full_scan_timestamp_seconds "),
            ["hardend_last_full_scan_timestamp_seconds 1795341601.5"]
        );
        // Without a collector there is no outbox to show.
        assert!(!text.contains("hardend_outbox"), "{text}");
    }

    #[test]
    fn counters_and_histograms_follow_the_hooks() {
        let (_tx, rx) = watch::channel(Arc::new(view()));
        let metrics = Arc::new(AgentMetrics::new());
        let event = |kind| DriftEvent {
            seq: 1,
            at: jiff::Timestamp::UNIX_EPOCH,
            kind,
            previous: None,
            result: result("ssh", "a", Severity::Critical, Status::Fail),
        };
        metrics.drift_emitted(&[event(DriftKind::Failing), event(DriftKind::Failing)]);
        metrics.drift_emitted(&[event(DriftKind::Overdue)]);
        metrics.evaluated(EvaluationKind::Partial, Duration::from_millis(3));
        let exposition = AgentExposition {
            metrics,
            view: rx,
            outbox: None,
        };
        let text = exposition.render_at(jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(
            lines_starting(&text, "hardend_drift_events_total{"),
            [
                "hardend_drift_events_total{kind=\"failing\"} 2",
                "hardend_drift_events_total{kind=\"passing\"} 0",
                "hardend_drift_events_total{kind=\"error\"} 0",
                "hardend_drift_events_total{kind=\"overdue\"} 1",
            ]
        );
        assert_eq!(
            lines_starting(&text, "hardend_evaluation_duration_seconds_count"),
            [
                "hardend_evaluation_duration_seconds_count{kind=\"full\"} 0",
                "hardend_evaluation_duration_seconds_count{kind=\"partial\"} 1",
            ]
        );
        assert!(
            text.contains(
                "hardend_evaluation_duration_seconds_bucket{kind=\"partial\",le=\"0.0025\"} 0\n\
                 hardend_evaluation_duration_seconds_bucket{kind=\"partial\",le=\"0.005\"} 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_outbox_shows_its_depth_and_the_age_of_its_oldest_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (outbox, _) = Outbox::open(dir.path(), OutboxOptions::default()).expect("outbox");
        let shared = SharedOutbox::new(outbox);
        let drift = |seq: u64, at: &str| pb::AgentMessage {
            body: Some(pb::agent_message::Body::Drift(pb::DriftEvent {
                seq,
                at: at.into(),
                ..Default::default()
            })),
        };
        let (_tx, rx) = watch::channel(Arc::new(view()));
        let exposition = AgentExposition {
            metrics: Arc::new(AgentMetrics::new()),
            view: rx,
            outbox: Some(shared.clone()),
        };
        let now: jiff::Timestamp = "2026-11-22T11:00:00Z".parse().expect("now");
        let text = exposition.render_at(now);
        assert!(text.contains("\nhardend_outbox_messages 0\n"), "{text}");
        assert!(
            text.contains("\nhardend_outbox_oldest_age_seconds 0\n"),
            "{text}"
        );

        shared
            .append(vec![
                drift(1, "2026-11-22T10:58:30Z"),
                drift(2, "2026-11-22T10:59:59Z"),
            ])
            .expect("append");
        let text = exposition.render_at(now);
        assert!(text.contains("\nhardend_outbox_messages 2\n"), "{text}");
        assert!(text.contains("\nhardend_outbox_drift_events 2\n"), "{text}");
        assert!(
            text.contains("\nhardend_outbox_oldest_age_seconds 90\n"),
            "{text}"
        );

        // Once the first is acknowledged, the second is the oldest.
        shared.lock().expect("lock").ack(1).expect("ack");
        let text = exposition.render_at(now);
        assert!(text.contains("\nhardend_outbox_messages 1\n"), "{text}");
        assert!(
            text.contains("\nhardend_outbox_oldest_age_seconds 1\n"),
            "{text}"
        );
        assert!(
            text.contains("\nhardend_outbox_folded_events_total 0\n"),
            "{text}"
        );
    }
}
