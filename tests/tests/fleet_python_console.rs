//! The Console API from a client nobody here wrote: Python `grpcio` stubs
//! generated from `proto/hardend.proto` at test time call FleetSummary and
//! ListFindings on a real collector over mutual TLS with the console's
//! certificate, while a real agent reports to it; with an agent's
//! certificate the same calls are refused.

mod fleet_support;

use std::time::Duration;

use fleet_support::{Agent, Collector, Pki, hardenctl_json, wait_for};
use hardend_tests::{is_root, require};

const PYTHON_PACKAGES: &str = "python3 with grpcio and grpcio-tools (scripts/install-deps)";

fn python_grpc_available() -> bool {
    hardend_tests::python_imports("grpc, grpc_tools.protoc")
}

fn run_client(collector: &Collector, pki: &Pki, identity: &str) -> serde_json::Value {
    hardend_tests::run_python_json(
        "console_client.py",
        [
            std::ffi::OsString::from(format!("127.0.0.1:{}", collector.port)),
            pki.ca().into(),
            pki.cert(identity).into(),
            pki.key(identity).into(),
        ],
    )
}

#[test]
fn a_python_grpcio_client_reads_the_fleet_summary_and_findings() {
    if !require("root (the agent's socket and state)", is_root())
        || !require(PYTHON_PACKAGES, python_grpc_available())
    {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path(), &["py-1"]);
    let collector = Collector::start(dir.path(), &pki);
    // /etc/shadow world-readable: one medium finding.
    let agent = Agent::start("py-1", &pki, &collector.url(), 0o644);
    wait_for("py-1 and its finding", Duration::from_secs(30), || {
        let f = hardenctl_json(&collector, &pki, &["findings"]);
        (f.as_array()?.len() == 1).then_some(())
    });

    let out = run_client(&collector, &pki, "operator");
    let summary = &out["summary"];
    assert_eq!(summary["hosts"], 1, "{out:#}");
    assert_eq!(summary["open_findings"], 1, "{out:#}");
    let policies = summary["policies"].as_array().expect("policies");
    assert_eq!(policies.len(), 1, "{out:#}");
    assert_eq!(policies[0]["policy"], "fleet-test");
    assert_eq!(policies[0]["pass"], 1);
    assert_eq!(policies[0]["fail"], 1);

    let findings = out["findings"]["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{out:#}");
    assert_eq!(findings[0]["host"], "py-1");
    assert_eq!(findings[0]["policy"], "fleet-test");
    assert_eq!(findings[0]["rule"], "shadow-mode");
    assert_eq!(findings[0]["severity"], "SEVERITY_MEDIUM");
    assert_eq!(findings[0]["status"], "STATUS_FAIL");
    // No critical finding: the filter works for this client too.
    assert!(
        out["critical"]
            .get("findings")
            .is_none_or(|f| f.as_array().is_some_and(Vec::is_empty)),
        "{out:#}"
    );

    // An agent's certificate may report but not read.
    let refused = run_client(&collector, &pki, "py-1");
    assert_eq!(
        refused["summary"]["error"], "PERMISSION_DENIED",
        "{refused:#}"
    );
    assert_eq!(
        refused["findings"]["error"], "PERMISSION_DENIED",
        "{refused:#}"
    );
    drop(agent);
}
