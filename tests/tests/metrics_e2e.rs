//! Prometheus metrics end to end: a real `hardend-collector` and a real
//! `hardend run` agent, each with `metrics: { listen: 127.0.0.1:0 }`, are
//! scraped with Python's urllib and parsed with `prometheus_client`'s text
//! parser (code nobody here wrote). A drift event moves the agent's drift
//! counter by exactly one and its failing count with the failing rules; the
//! collector counts the hello, snapshots and drift events it stored and shows
//! the fleet. Without a `metrics:` section nothing listens.

mod fleet_support;

use std::net::SocketAddr;
use std::time::Duration;

use fleet_support::{Agent, Collector, Pki, listening_ports, logged_metrics_addr, wait_for};
use hardend_tests::{is_root, require};

const PYTHON_PACKAGES: &str = "python3 with prometheus-client (scripts/install-deps)";
const METRICS_ON: &str = "metrics: { listen: 127.0.0.1:0 }\n";

fn python_prometheus_available() -> bool {
    hardend_tests::python_imports("prometheus_client.parser")
}

/// One scrape, as parsed by prometheus_client.
struct Scrape(serde_json::Value);

impl Scrape {
    fn take(addr: SocketAddr) -> Scrape {
        Scrape(hardend_tests::run_python_json(
            "scrape_metrics.py",
            [format!("http://{addr}/metrics")],
        ))
    }

    /// The value of the sample with this name and exactly these labels.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0["samples"].as_array()?.iter().find_map(|s| {
            let have = s["labels"].as_object()?;
            let same = s["name"] == name
                && have.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| have.get(*k).and_then(|x| x.as_str()) == Some(*v));
            if same { s["value"].as_f64() } else { None }
        })
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in {:#}", self.0["samples"]))
    }

    /// The sum of every sample with this name.
    fn sum(&self, name: &str) -> f64 {
        self.0["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .filter(|s| s["name"] == name)
            .filter_map(|s| s["value"].as_f64())
            .sum()
    }

    fn family_type(&self, family: &str) -> &str {
        self.0["families"][family]["type"].as_str().unwrap_or("")
    }
}

fn metrics_addr(what: &str, log: impl Fn() -> String) -> SocketAddr {
    wait_for(
        &format!("{what}'s metrics address in its log"),
        Duration::from_secs(10),
        || logged_metrics_addr(&log()),
    )
}

#[test]
fn agent_and_collector_metrics_parse_and_follow_a_drift_event() {
    if !require("root (the agent's socket and state)", is_root())
        || !require(PYTHON_PACKAGES, python_prometheus_available())
    {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path(), &["web-1"]);
    let collector = Collector::start_with(dir.path(), &pki, METRICS_ON);
    let collector_addr = metrics_addr("the collector", || collector.log());
    assert!(collector_addr.ip().is_loopback() && collector_addr.port() != 0);
    // /etc/shadow is 0644: shadow-mode (medium) fails from the start.
    let agent = Agent::start_with("web-1", &pki, &collector.url(), 0o644, METRICS_ON);
    let agent_addr = metrics_addr("the agent", || agent.log());
    assert!(agent_addr.ip().is_loopback() && agent_addr.port() != 0);

    let before = Scrape::take(agent_addr);
    assert_eq!(
        before.0["content_type"], "text/plain; version=0.0.4; charset=utf-8",
        "{:#}",
        before.0
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        before.value("hardend_build_info", &[("version", version)]),
        1.0
    );
    let rules = |s: &Scrape, severity: &str, status: &str| {
        s.get(
            "hardend_rules",
            &[
                ("policy", "fleet-test"),
                ("severity", severity),
                ("status", status),
            ],
        )
    };
    assert_eq!(rules(&before, "high", "pass"), Some(1.0));
    assert_eq!(rules(&before, "medium", "fail"), Some(1.0));
    assert_eq!(
        before.value("hardend_failing_rules", &[("severity", "medium")]),
        1.0
    );
    assert_eq!(before.sum("hardend_failing_rules"), 1.0);
    assert_eq!(before.sum("hardend_overdue_rules"), 0.0);
    assert!(
        before.value(
            "hardend_evaluation_duration_seconds_count",
            &[("kind", "full")]
        ) >= 1.0
    );
    assert!(before.value("hardend_last_full_scan_timestamp_seconds", &[]) > 1.7e9);
    assert!(
        before.get("hardend_outbox_messages", &[]).is_some(),
        "a pushing agent shows its outbox"
    );
    assert!(before.value("hardend_outbox_oldest_age_seconds", &[]) >= 0.0);
    assert_eq!(before.family_type("hardend_drift_events"), "counter");
    assert_eq!(
        before.family_type("hardend_evaluation_duration_seconds"),
        "histogram"
    );
    let drift = |s: &Scrape, kind: &str| s.value("hardend_drift_events_total", &[("kind", kind)]);
    let failing_before = drift(&before, "failing");
    assert!(
        failing_before >= 1.0,
        "shadow-mode's first failure is a drift event"
    );

    // web-1 loses its banner: one more failing drift event, two failing rules.
    agent.set_banner(false);
    let after = wait_for(
        "the agent's drift counter to move",
        Duration::from_secs(10),
        || {
            let s = Scrape::take(agent_addr);
            (drift(&s, "failing") > failing_before).then_some(s)
        },
    );
    // Settle: nothing else is changing, so a later scrape shows the same.
    std::thread::sleep(Duration::from_millis(300));
    let after = {
        let again = Scrape::take(agent_addr);
        assert_eq!(drift(&again, "failing"), drift(&after, "failing"));
        again
    };
    assert_eq!(
        drift(&after, "failing"),
        failing_before + 1.0,
        "{:#}",
        after.0["samples"]
    );
    for kind in ["passing", "error", "overdue"] {
        assert_eq!(drift(&after, kind), drift(&before, kind), "{kind}");
    }
    // The failing count is the failing rules of the daemon's own report.
    let runtime = hardend_daemon::client::runtime().expect("runtime");
    let report = runtime
        .block_on(hardend_daemon::client::report(&agent.socket))
        .expect("the agent's report");
    let failing = report
        .results
        .iter()
        .filter(|r| r.status == hardend_engine::Status::Fail)
        .count();
    assert_eq!(failing, 2);
    assert_eq!(after.sum("hardend_failing_rules"), failing as f64);
    assert_eq!(
        after.value("hardend_failing_rules", &[("severity", "high")]),
        1.0
    );
    assert_eq!(rules(&after, "high", "fail"), Some(1.0));
    assert_eq!(rules(&after, "high", "pass"), None);
    assert!(
        after.value(
            "hardend_evaluation_duration_seconds_count",
            &[("kind", "partial")]
        ) >= 1.0
    );
    // Buckets are cumulative and end at the count.
    let inf = after.value(
        "hardend_evaluation_duration_seconds_bucket",
        &[("kind", "full"), ("le", "+Inf")],
    );
    assert_eq!(
        inf,
        after.value(
            "hardend_evaluation_duration_seconds_count",
            &[("kind", "full")]
        )
    );

    // The collector stored the hello, a snapshot and both drift events.
    let fleet = wait_for(
        "the collector's counters and fleet",
        Duration::from_secs(20),
        || {
            let s = Scrape::take(collector_addr);
            let ready = s.get("hardend_collector_messages_total", &[("kind", "drift")])? >= 2.0
                && s.get("hardend_collector_open_findings", &[("severity", "high")])? == 1.0;
            ready.then_some(s)
        },
    );
    assert_eq!(
        fleet.0["content_type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(fleet.value("hardend_collector_messages_total", &[("kind", "hello")]) >= 1.0);
    assert!(fleet.value("hardend_collector_messages_total", &[("kind", "snapshot")]) >= 1.0);
    assert_eq!(fleet.value("hardend_collector_hosts", &[]), 1.0);
    assert_eq!(fleet.value("hardend_collector_hosts_connected", &[]), 1.0);
    assert_eq!(fleet.value("hardend_collector_hosts_overdue", &[]), 0.0);
    assert_eq!(
        fleet.value("hardend_collector_open_findings", &[("severity", "medium")]),
        1.0
    );
    assert_eq!(
        fleet.value(
            "hardend_collector_open_findings",
            &[("severity", "critical")]
        ),
        0.0
    );
    assert_eq!(fleet.sum("hardend_collector_overdue_findings"), 0.0);
    assert_eq!(fleet.sum("hardend_collector_rejected_total"), 0.0);
    for op in ["hello", "queue_snapshot", "queue_drift", "commit"] {
        assert!(
            fleet.value(
                "hardend_collector_store_duration_seconds_count",
                &[("operation", op)]
            ) >= 1.0,
            "{op}"
        );
    }
    assert!(
        fleet.value(
            "hardend_collector_store_duration_seconds_count",
            &[("operation", "queue_drift")]
        ) >= 2.0
    );
    assert_eq!(
        fleet.family_type("hardend_collector_store_duration_seconds"),
        "histogram"
    );

    // Each process listens on what it was told to and nothing more.
    let agent_ports = listening_ports(agent.pid().expect("agent runs"));
    assert_eq!(agent_ports, vec![agent_addr.port()]);
    let mut collector_ports = vec![collector.port, collector_addr.port()];
    collector_ports.sort_unstable();
    assert_eq!(
        listening_ports(collector.pid().expect("collector runs")),
        collector_ports
    );
}

#[test]
fn without_a_metrics_section_nothing_listens() {
    if !require("root (the agent's socket and state)", is_root()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path(), &["web-1"]);
    let collector = Collector::start(dir.path(), &pki);
    let agent = Agent::start("web-1", &pki, &collector.url(), 0o640);
    // The agent has started (its API answered) and pushes to the collector.
    assert_eq!(
        listening_ports(agent.pid().expect("agent runs")),
        Vec::<u16>::new(),
        "the agent listens on TCP without metrics:\n{}",
        agent.log()
    );
    assert_eq!(
        listening_ports(collector.pid().expect("collector runs")),
        vec![collector.port],
        "{}",
        collector.log()
    );
    assert_eq!(logged_metrics_addr(&agent.log()), None);
    assert_eq!(logged_metrics_addr(&collector.log()), None);
}
