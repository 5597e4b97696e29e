//! The collector's Prometheus metrics (`metrics:` in its configuration):
//! messages ingested and refused, the latency of every store call the
//! services make, and fleet gauges read from the store at most once every
//! [`FLEET_REFRESH`] however often it is scraped.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hardend_metrics::{
    Counter, Exposition, Family, Histogram, LATENCY_BUCKETS, MetricType, TextEncoder,
};
use jiff::Timestamp;
use tokio::sync::Mutex;

use crate::store::{Store, StoreError};

/// How long fleet gauges are reused before the store is asked again.
pub const FLEET_REFRESH: Duration = Duration::from_secs(5);

/// What an agent sent that was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingest {
    Hello = 0,
    Snapshot = 1,
    Drift = 2,
}
const INGEST_KINDS: &[&str] = &["hello", "snapshot", "drift"];

/// Why a stream or a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// A certificate of another kind than agent tried to report.
    NotAgentCertificate = 0,
    /// The Hello named another host than the certificate.
    HostMismatch = 1,
    /// The stream did not start with a Hello (in time).
    NoHello = 2,
    /// A second Hello on one stream (ignored).
    SecondHello = 3,
    /// A snapshot or drift event missing required parts.
    Incomplete = 4,
    /// A message over `max_message_bytes`.
    TooLarge = 5,
    /// The store failed to take a message.
    StoreFailure = 6,
}
const REJECT_REASONS: &[&str] = &[
    "not_agent_certificate",
    "host_mismatch",
    "no_hello",
    "second_hello",
    "incomplete",
    "too_large",
    "store_failure",
];

/// A store call the services make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Hello = 0,
    QueueSnapshot = 1,
    QueueDrift = 2,
    /// Waiting for a queued message's transaction to commit.
    Commit = 3,
    SetConnected = 4,
    FleetSummary = 5,
    ListHosts = 6,
    GetHost = 7,
    ListFindings = 8,
}
const STORE_OPERATIONS: &[&str] = &[
    "hello",
    "queue_snapshot",
    "queue_drift",
    "commit",
    "set_connected",
    "fleet_summary",
    "list_hosts",
    "get_host",
    "list_findings",
];

/// The collector's counters and histograms, fed by the services.
#[derive(Debug)]
pub struct CollectorMetrics {
    ingested: Family<Counter>,
    rejected: Family<Counter>,
    store: Family<Histogram>,
}

impl Default for CollectorMetrics {
    fn default() -> Self {
        CollectorMetrics {
            ingested: Family::new("kind", INGEST_KINDS),
            rejected: Family::new("reason", REJECT_REASONS),
            store: Family::histograms("operation", STORE_OPERATIONS, LATENCY_BUCKETS),
        }
    }
}

impl CollectorMetrics {
    pub fn new() -> CollectorMetrics {
        CollectorMetrics::default()
    }

    pub fn ingested(&self, kind: Ingest) {
        self.ingested.at(kind as usize).inc();
    }

    pub fn rejected(&self, reason: Reject) {
        self.rejected.at(reason as usize).inc();
    }

    /// Runs a store call and records how long it took.
    pub async fn timed<T>(&self, op: StoreOp, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = call.await;
        self.store
            .at(op as usize)
            .observe_duration(started.elapsed());
        out
    }

    /// Messages of a kind ingested so far.
    pub fn ingested_count(&self, kind: Ingest) -> u64 {
        self.ingested.at(kind as usize).get()
    }

    /// Refusals for a reason so far.
    pub fn rejected_count(&self, reason: Reject) -> u64 {
        self.rejected.at(reason as usize).get()
    }
}

/// The fleet as the gauges show it.
#[derive(Debug, Clone, Default, PartialEq)]
struct Fleet {
    hosts: u64,
    connected: u64,
    hosts_overdue: u64,
    /// Open and overdue findings by severity, in [`SEVERITIES`] order.
    open: [u64; 4],
    overdue: [u64; 4],
}

/// Severity label values, with their `hardend.v1.Severity` numbers.
const SEVERITIES: [(&str, i32); 4] = [("critical", 4), ("high", 3), ("medium", 2), ("low", 1)];

/// What a scrape of the collector shows.
pub struct CollectorExposition {
    metrics: Arc<CollectorMetrics>,
    store: Store,
    /// The last fleet read and when; one scrape refreshes, others wait.
    fleet: Mutex<Option<(Instant, Fleet)>>,
}

impl CollectorExposition {
    pub fn new(metrics: Arc<CollectorMetrics>, store: Store) -> CollectorExposition {
        CollectorExposition {
            metrics,
            store,
            fleet: Mutex::new(None),
        }
    }

    /// The fleet, from the store when the last read is older than
    /// [`FLEET_REFRESH`]; on a store error the last read is kept.
    async fn fleet(&self) -> Option<Fleet> {
        let mut cached = self.fleet.lock().await;
        if let Some((at, fleet)) = &*cached
            && at.elapsed() < FLEET_REFRESH
        {
            return Some(fleet.clone());
        }
        match self.read_fleet().await {
            Ok(fleet) => {
                *cached = Some((Instant::now(), fleet.clone()));
                Some(fleet)
            }
            Err(err) => {
                tracing::warn!(error = %err, "metrics: cannot read the fleet from the store");
                cached.as_ref().map(|(_, fleet)| fleet.clone())
            }
        }
    }

    async fn read_fleet(&self) -> Result<Fleet, StoreError> {
        let now = Timestamp::now();
        let summary = self
            .metrics
            .timed(StoreOp::FleetSummary, self.store.fleet_summary(now))
            .await?;
        let hosts = self
            .metrics
            .timed(StoreOp::ListHosts, self.store.list_hosts(now))
            .await?;
        let mut fleet = Fleet {
            hosts: hosts.len() as u64,
            connected: hosts.iter().filter(|h| h.connected).count() as u64,
            hosts_overdue: hosts.iter().filter(|h| h.overdue > 0).count() as u64,
            ..Fleet::default()
        };
        for counts in &summary.severities {
            if let Some(i) = SEVERITIES.iter().position(|(_, n)| *n == counts.severity) {
                fleet.open[i] += u64::from(counts.open);
                fleet.overdue[i] += u64::from(counts.overdue);
            }
        }
        Ok(fleet)
    }
}

impl Exposition for CollectorExposition {
    async fn render(&self) -> String {
        let fleet = self.fleet().await;
        let mut e = TextEncoder::new();
        e.family(
            "hardend_collector_build_info",
            "The running collector's version; always 1.",
            MetricType::Gauge,
        );
        e.sample(
            "hardend_collector_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        if let Some(fleet) = fleet {
            e.gauge(
                "hardend_collector_hosts",
                "Hosts known to the store.",
                fleet.hosts as f64,
            );
            e.gauge(
                "hardend_collector_hosts_connected",
                "Hosts with a live push stream.",
                fleet.connected as f64,
            );
            e.gauge(
                "hardend_collector_hosts_overdue",
                "Hosts with at least one overdue finding.",
                fleet.hosts_overdue as f64,
            );
            e.family(
                "hardend_collector_open_findings",
                "Open findings (failing rules) across the fleet, by severity.",
                MetricType::Gauge,
            );
            for (i, (severity, _)) in SEVERITIES.iter().enumerate() {
                e.sample_u64(
                    "hardend_collector_open_findings",
                    &[("severity", severity)],
                    fleet.open[i],
                );
            }
            e.family(
                "hardend_collector_overdue_findings",
                "Open findings past their severity's deadline, by severity.",
                MetricType::Gauge,
            );
            for (i, (severity, _)) in SEVERITIES.iter().enumerate() {
                e.sample_u64(
                    "hardend_collector_overdue_findings",
                    &[("severity", severity)],
                    fleet.overdue[i],
                );
            }
        }
        e.counter_family(
            "hardend_collector_messages_total",
            "Agent messages stored, by kind (hello, snapshot, drift).",
            &self.metrics.ingested,
        );
        e.counter_family(
            "hardend_collector_rejected_total",
            "Agent streams or messages refused, by reason.",
            &self.metrics.rejected,
        );
        e.histogram_family(
            "hardend_collector_store_duration_seconds",
            "Latency of store calls, by operation (commit: a queued message's wait for its transaction).",
            &self.metrics.store,
        );
        e.finish()
    }
}
