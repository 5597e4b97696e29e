//! The local API from a client nobody here wrote: Python `grpcio` stubs
//! generated from `proto/hardend.proto` at test time call GetReport,
//! GetStatus, ListPolicies, health Check and server reflection over the Unix
//! socket of the real daemon (`hardend run` on a fixture root); the same
//! client running as uid 65534 (outside the group) is refused with
//! PERMISSION_DENIED on every call.

mod daemon_api_support;

use std::os::unix::fs::PermissionsExt;

use daemon_api_support::RealDaemon;
use hardend_tests::{is_root, require};

const PYTHON_PACKAGES: &str = "python3 with grpcio, grpcio-tools, grpcio-health-checking and grpcio-reflection (scripts/install-deps)";

fn python_grpc_available() -> bool {
    hardend_tests::python_imports(
        "grpc, grpc_tools.protoc, grpc_health.v1.health_pb2_grpc, grpc_reflection.v1alpha.reflection_pb2_grpc",
    )
}

/// Runs the Python client and returns the JSON object it printed.
fn run_client(daemon: &RealDaemon, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![std::ffi::OsString::from(&daemon.socket)];
    args.extend(extra.iter().map(std::ffi::OsString::from));
    hardend_tests::run_python_json("agent_client.py", args)
}

#[test]
fn a_python_grpcio_client_reads_the_report_status_health_and_services() {
    if !require(PYTHON_PACKAGES, python_grpc_available()) {
        return;
    }
    let daemon = RealDaemon::start();
    let out = run_client(&daemon, &[]);
    // What `hardend check` finds on the same root, to compare with.
    let expected = hardend::run_check(&hardend::CheckOptions {
        root: Some(daemon.root.clone()),
        policies: vec![hardend_tests::shipped_policies()],
        config: None,
        today: None,
    })
    .expect("check the same root");

    let report = &out["report"];
    assert_eq!(report["schema"], "hardend.report/v1", "{out}");
    assert_eq!(report["hostname"], expected.host.hostname.as_str());
    assert_eq!(report["root"], daemon.root.to_str().expect("utf-8 path"));
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), expected.results.len());
    // Each result agrees with the check's, rule by rule, in the proto's enum names.
    for (got, want) in results.iter().zip(&expected.results) {
        assert_eq!(got["policy"], want.policy.as_str());
        assert_eq!(got["rule"], want.rule.as_str());
        let status = format!("STATUS_{}", want.status.as_str().to_uppercase());
        assert_eq!(got["status"], status.as_str(), "{}", want.rule);
        let severity = format!("SEVERITY_{}", want.severity.as_str().to_uppercase());
        assert_eq!(got["severity"], severity.as_str(), "{}", want.rule);
        if want.status == hardend_engine::Status::Fail {
            let since = got["first_failed_at"]
                .as_str()
                .expect("a failing rule's start");
            assert!(since.parse::<jiff::Timestamp>().is_ok(), "{since}");
        }
    }
    let summary = expected.summary;
    assert!(summary.fail > 0, "the fixture has failing rules");
    assert_eq!(report["summary"]["total"], summary.total);
    assert_eq!(report["summary"]["fail"], summary.fail);

    assert_eq!(out["status"]["hostname"], expected.host.hostname.as_str());
    assert_eq!(out["status"]["agent_version"], env!("CARGO_PKG_VERSION"));
    let ids: Vec<&str> = out["policies"]["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    let want: Vec<&str> = expected.policies.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, want);

    assert_eq!(out["health"], "SERVING");
    assert_eq!(out["health_agent"], "SERVING");
    let services: Vec<&str> = out["services"]
        .as_array()
        .expect("service list")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    for want in [
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "hardend.v1.Agent",
    ] {
        assert!(services.contains(&want), "{want} missing from {services:?}");
    }
}

#[test]
fn the_python_client_as_another_uid_is_refused() {
    if !require(PYTHON_PACKAGES, python_grpc_available()) {
        return;
    }
    assert!(
        is_root(),
        "this test drops to uid 65534 and must run as root (CI does)"
    );
    let daemon = RealDaemon::start();
    // The daemon's socket is 0660 (group hardend), which already keeps uid
    // 65534 out at connect(); opened up here, the peer-credential check is
    // what must refuse it.
    std::fs::set_permissions(&daemon.socket, std::fs::Permissions::from_mode(0o666))
        .expect("chmod the socket");
    let out = run_client(&daemon, &["--as-uid", "65534"]);
    assert_eq!(out["uid"], 65534);
    for call in [
        "report",
        "status",
        "policies",
        "health",
        "health_agent",
        "services",
    ] {
        assert_eq!(out[call]["error"], "PERMISSION_DENIED", "{call}: {out}");
    }
    assert_eq!(
        out["report"]["details"],
        "uid 65534 is neither root nor a member of group hardend"
    );
}
