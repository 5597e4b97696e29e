//! The fleet end to end on loopback: a real `hardend-collector` (SQLite)
//! and three real `hardend run` agents on fixture roots, over mutual TLS
//! with certificates from `hardend-collector pki`; `hardenctl` sees the
//! three hosts and their failing rules, and a drift on one agent reaches
//! `hardenctl watch` within a second.

mod fleet_support;

use std::time::{Duration, Instant};

use fleet_support::{Agent, Collector, Pki, hardenctl, hardenctl_json, wait_for};
use hardend_tests::Lines;
use hardend_tests::{is_root, require};

const AGENTS: [&str; 3] = ["web-1", "web-2", "db-1"];

#[test]
fn three_agents_report_to_the_collector_and_drift_reaches_the_console_within_a_second() {
    if !require("root (the agents' sockets and state)", is_root()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path(), &AGENTS);
    let collector = Collector::start(dir.path(), &pki);
    // web-1 and web-2 keep /etc/shadow private; db-1 does not.
    let agents: Vec<Agent> = AGENTS
        .iter()
        .map(|name| {
            let mode = if *name == "db-1" { 0o644 } else { 0o640 };
            Agent::start(name, &pki, &collector.url(), mode)
        })
        .collect();

    let hosts = wait_for("three hosts with results", Duration::from_secs(30), || {
        let hosts = hardenctl_json(&collector, &pki, &["hosts"]);
        let list = hosts.as_array()?;
        let ready = list.len() == 3
            && list
                .iter()
                .all(|h| h["summary"]["total"].as_u64() == Some(2) && h["connected"] == true);
        ready.then_some(hosts)
    });
    let mut names: Vec<&str> = hosts
        .as_array()
        .expect("array")
        .iter()
        .map(|h| h["host"].as_str().expect("host"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, vec!["db-1", "web-1", "web-2"], "{hosts:#}");

    let findings = hardenctl_json(&collector, &pki, &["findings"]);
    let open: Vec<(String, String, String)> = findings
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| {
            assert_eq!(f["status"], "fail", "{f}");
            assert!(f["first_failed_at"].is_string(), "{f}");
            (
                f["host"].as_str().unwrap_or("").to_string(),
                f["policy"].as_str().unwrap_or("").to_string(),
                f["rule"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        open,
        vec![(
            "db-1".to_string(),
            "fleet-test".to_string(),
            "shadow-mode".to_string()
        )],
        "{findings:#}"
    );

    // The console watches; web-2 loses its banner.
    let mut watch_cmd = hardenctl(&collector, &pki);
    watch_cmd.args(["--json", "watch"]);
    let watch = Lines::spawn(watch_cmd);
    // Give the watch stream time to be established before the change.
    std::thread::sleep(Duration::from_millis(1500));
    let changed_at = Instant::now();
    agents[1].set_banner(false);
    let deadline = changed_at + Duration::from_secs(1);
    let event = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match watch.lines.recv_timeout(left) {
            Ok(line) => {
                let v: serde_json::Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
                if v["host"] == "web-2" && v["rule"] == "motd-banner" {
                    break v;
                }
            }
            Err(_) => panic!(
                "no drift event from web-2 within a second of the change\nagent log:\n{}\ncollector log:\n{}",
                agents[1].log(),
                collector.log()
            ),
        }
    };
    let latency = changed_at.elapsed();
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    assert_eq!(event["status"], "fail", "{event}");
    assert_eq!(event["kind"], "failing", "{event}");
    assert_eq!(event["severity"], "high", "{event}");
    eprintln!("drift reached hardenctl watch in {latency:?}");

    // The finding is open on the collector too.
    wait_for("web-2's new finding", Duration::from_secs(5), || {
        let f = hardenctl_json(&collector, &pki, &["findings", "--host", "web-2"]);
        let list = f.as_array()?;
        (list.len() == 1 && list[0]["rule"] == "motd-banner").then_some(())
    });
}
