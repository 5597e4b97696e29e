//! The `hardenctl` binary end to end against stand-in servers: a Console
//! service over mutual TLS with certificates from `pki` (flags and the
//! `HARDENCTL_*` environment, `--json` shapes, filters reaching the server,
//! live drift until Ctrl-C), an Agent service on a Unix socket
//! (`--agent unix:PATH`), and the errors that exit 2.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hardend_collector::pki::{self, CertKind};
use hardend_collector::tls::{peer_identity, server_tls};
use hardend_proto as pb;
use serde_json::Value;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Server;
use tonic::{Request, Response, Status};

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::DriftEvent, Status>> + Send>>;

fn drift(seq: u64, host: &str) -> pb::DriftEvent {
    pb::DriftEvent {
        seq,
        at: "2026-11-22T12:00:01Z".into(),
        kind: pb::DriftKind::Failing.into(),
        previous: pb::Status::Pass.into(),
        result: Some(pb::RuleResult {
            policy: "kernel".into(),
            rule: "ip-forward".into(),
            title: "IP forwarding is disabled".into(),
            severity: pb::Severity::High.into(),
            status: pb::Status::Fail.into(),
            actual: Some("1".into()),
            expected: Some("0".into()),
            ..Default::default()
        }),
        hostname: host.into(),
    }
}

fn finding(host: &str, rule: &str, severity: pb::Severity, overdue: bool) -> pb::Finding {
    pb::Finding {
        host: host.into(),
        policy: "ssh".into(),
        rule: rule.into(),
        title: rule.into(),
        severity: severity.into(),
        status: pb::Status::Fail.into(),
        first_failed_at: "2026-11-22T06:00:00Z".into(),
        overdue,
        ..Default::default()
    }
}

/// A Console service with fixed answers that records the findings
/// requests it gets and answers console certificates only.
#[derive(Default, Clone)]
struct FakeConsole {
    requests: Arc<Mutex<Vec<pb::ListFindingsRequest>>>,
    /// End each drift stream after its events (as a restarting collector
    /// does) instead of keeping it open.
    watch_ends: bool,
}

fn console_only<T>(req: &Request<T>) -> Result<(), Status> {
    let id = peer_identity(req)?;
    if id.kind == CertKind::Console {
        Ok(())
    } else {
        Err(Status::permission_denied("console certificates only"))
    }
}

#[tonic::async_trait]
impl pb::console_server::Console for FakeConsole {
    async fn fleet_summary(
        &self,
        req: Request<pb::FleetSummaryRequest>,
    ) -> Result<Response<pb::FleetSummaryResponse>, Status> {
        console_only(&req)?;
        Ok(Response::new(pb::FleetSummaryResponse {
            hosts: 2,
            hosts_seen_last_hour: 2,
            open_findings: 2,
            overdue_findings: 1,
            ..Default::default()
        }))
    }

    async fn list_hosts(
        &self,
        req: Request<pb::ListHostsRequest>,
    ) -> Result<Response<pb::ListHostsResponse>, Status> {
        console_only(&req)?;
        let host = |name: &str| pb::HostSummary {
            host: name.into(),
            agent_version: "0.1.0".into(),
            connected: true,
            ..Default::default()
        };
        Ok(Response::new(pb::ListHostsResponse {
            hosts: vec![host("web-1"), host("web-2")],
        }))
    }

    async fn get_host(
        &self,
        req: Request<pb::GetHostRequest>,
    ) -> Result<Response<pb::GetHostResponse>, Status> {
        console_only(&req)?;
        Err(Status::not_found(req.into_inner().host))
    }

    async fn list_findings(
        &self,
        req: Request<pb::ListFindingsRequest>,
    ) -> Result<Response<pb::ListFindingsResponse>, Status> {
        console_only(&req)?;
        let r = req.into_inner();
        self.requests.lock().unwrap().push(r.clone());
        let all = vec![
            finding("web-1", "password-auth", pb::Severity::Critical, true),
            finding("web-2", "root-login", pb::Severity::High, false),
        ];
        let findings = all
            .into_iter()
            .filter(|f| r.severity == 0 || f.severity == r.severity)
            .filter(|f| !r.overdue_only || f.overdue)
            .collect();
        Ok(Response::new(pb::ListFindingsResponse { findings }))
    }

    type WatchDriftStream = EventStream;

    async fn watch_drift(
        &self,
        req: Request<pb::ConsoleWatchDriftRequest>,
    ) -> Result<Response<EventStream>, Status> {
        console_only(&req)?;
        let events = vec![Ok(drift(1, "web-1")), Ok(drift(2, "web-2"))];
        if self.watch_ends {
            return Ok(Response::new(Box::pin(tokio_stream::iter(events))));
        }
        let stream = tokio_stream::iter(events).chain(tokio_stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }
}

/// A CA with a collector certificate for 127.0.0.1, a console `alice`, an
/// agent `web-1`, and a console from another CA.
struct Pki {
    dir: tempfile::TempDir,
    other: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        pki::init(dir.path()).unwrap();
        pki::issue(dir.path(), CertKind::Collector, "127.0.0.1").unwrap();
        pki::issue(dir.path(), CertKind::Console, "alice").unwrap();
        pki::issue(dir.path(), CertKind::Agent, "web-1").unwrap();
        let other = tempfile::tempdir().unwrap();
        pki::init(other.path()).unwrap();
        pki::issue(other.path(), CertKind::Console, "alice").unwrap();
        Pki { dir, other }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
}

/// Runs the fake console on 127.0.0.1 in its own runtime; returns its URL.
fn serve_console(pki: &Pki, console: FakeConsole, rt: &tokio::runtime::Runtime) -> String {
    let config = server_tls(
        &pki.path("ca.pem"),
        &pki.path("127.0.0.1.pem"),
        &pki.path("127.0.0.1.key"),
    )
    .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = Server::builder()
        .tls_config(config)
        .unwrap()
        .add_service(pb::console_server::ConsoleServer::new(console));
    rt.spawn(async move {
        let _ = router
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    format!("https://127.0.0.1:{port}")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn hardenctl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hardenctl"));
    for var in [
        "HARDENCTL_COLLECTOR",
        "HARDENCTL_CA",
        "HARDENCTL_CERT",
        "HARDENCTL_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn with_tls(cmd: &mut Command, url: &str, pki: &Pki, who: &str) {
    cmd.arg("--collector")
        .arg(url)
        .arg("--ca")
        .arg(pki.path("ca.pem"))
        .arg("--cert")
        .arg(pki.path(&format!("{who}.pem")))
        .arg("--key")
        .arg(pki.path(&format!("{who}.key")));
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn failed_with(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn json_hosts_and_findings_over_mutual_tls() {
    let pki = Pki::new();
    let rt = runtime();
    let console = FakeConsole::default();
    let url = serve_console(&pki, console.clone(), &rt);

    let mut cmd = hardenctl();
    with_tls(&mut cmd, &url, &pki, "alice");
    let hosts = stdout_json(&cmd.args(["--json", "hosts"]).output().unwrap());
    let names: Vec<&str> = hosts
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-1", "web-2"]);

    let mut cmd = hardenctl();
    with_tls(&mut cmd, &url, &pki, "alice");
    let findings = stdout_json(
        &cmd.args([
            "findings",
            "--severity",
            "critical",
            "--overdue",
            "--policy",
            "ssh",
            "--json",
        ])
        .output()
        .unwrap(),
    );
    let list = findings.as_array().unwrap();
    assert_eq!(list.len(), 1);
    for field in [
        "host",
        "policy",
        "rule",
        "severity",
        "status",
        "first_failed_at",
        "overdue",
    ] {
        assert!(list[0].get(field).is_some(), "no {field} in {}", list[0]);
    }
    assert_eq!(list[0]["host"], "web-1");
    assert_eq!(list[0]["severity"], "critical");
    assert_eq!(list[0]["overdue"], true);
    let requests = console.requests.lock().unwrap().clone();
    assert_eq!(
        requests,
        [pb::ListFindingsRequest {
            severity: pb::Severity::Critical.into(),
            policy: "ssh".into(),
            overdue_only: true,
            ..Default::default()
        }]
    );
}

#[test]
fn the_environment_stands_in_for_the_flags() {
    let pki = Pki::new();
    let rt = runtime();
    let url = serve_console(&pki, FakeConsole::default(), &rt);
    let out = hardenctl()
        .env("HARDENCTL_COLLECTOR", &url)
        .env("HARDENCTL_CA", pki.path("ca.pem"))
        .env("HARDENCTL_CERT", pki.path("alice.pem"))
        .env("HARDENCTL_KEY", pki.path("alice.key"))
        .arg("summary")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("Fleet: 2 hosts (2 seen in the last hour)\nFindings: 2 open, 1 overdue\n"),
        "{text}"
    );
}

#[test]
fn an_unknown_host_is_an_error() {
    let pki = Pki::new();
    let rt = runtime();
    let url = serve_console(&pki, FakeConsole::default(), &rt);
    let mut cmd = hardenctl();
    with_tls(&mut cmd, &url, &pki, "alice");
    failed_with(
        &cmd.args(["host", "nosuch"]).output().unwrap(),
        "knows no host \"nosuch\"",
    );
}

#[test]
fn watch_prints_live_drift_until_ctrl_c() {
    let pki = Pki::new();
    let rt = runtime();
    let url = serve_console(&pki, FakeConsole::default(), &rt);
    let mut cmd = hardenctl();
    with_tls(&mut cmd, &url, &pki, "alice");
    let mut child = cmd
        .args(["watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let second: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(
        (first["host"].as_str(), first["seq"].as_u64()),
        (Some("web-1"), Some(1))
    );
    assert_eq!(
        (second["host"].as_str(), second["seq"].as_u64()),
        (Some("web-2"), Some(2))
    );
    assert_eq!(first["status"], "fail");

    // Ctrl-C ends it cleanly.
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "hardenctl watch ignored SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn watch_subscribes_again_when_the_stream_ends() {
    let pki = Pki::new();
    let rt = runtime();
    let console = FakeConsole {
        watch_ends: true,
        ..Default::default()
    };
    let url = serve_console(&pki, console, &rt);
    let mut cmd = hardenctl();
    with_tls(&mut cmd, &url, &pki, "alice");
    let mut child = cmd
        .args(["watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Each subscription yields seq 1 and 2 and ends; the third and fourth
    // lines come from a second subscription.
    let seqs: Vec<u64> = (0..4)
        .map(|_| {
            let line = lines.next().unwrap().unwrap();
            serde_json::from_str::<Value>(&line).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [1, 2, 1, 2]);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the drift stream ended; subscribing again"),
        "{stderr}"
    );
    assert!(stderr.contains("watching again"), "{stderr}");
}

#[test]
fn a_console_certificate_of_another_ca_is_refused() {
    let pki = Pki::new();
    let rt = runtime();
    let url = serve_console(&pki, FakeConsole::default(), &rt);
    let out = hardenctl()
        .arg("--collector")
        .arg(&url)
        .arg("--ca")
        .arg(pki.path("ca.pem"))
        .arg("--cert")
        .arg(pki.other.path().join("alice.pem"))
        .arg("--key")
        .arg(pki.other.path().join("alice.key"))
        .args(["hosts", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn an_agent_certificate_is_no_console_certificate() {
    let pki = Pki::new();
    let mut cmd = hardenctl();
    // Nothing listens there: the kind is checked before connecting.
    with_tls(&mut cmd, "https://127.0.0.1:9", &pki, "web-1");
    failed_with(
        &cmd.arg("hosts").output().unwrap(),
        "is a certificate of kind agent",
    );
}

#[test]
fn errors_are_clear_and_exit_2() {
    let pki = Pki::new();
    failed_with(&hardenctl().arg("hosts").output().unwrap(), "no collector");

    let mut cmd = hardenctl();
    cmd.args(["--collector", "https://127.0.0.1:9", "--ca"])
        .arg(pki.path("nosuch-ca.pem"))
        .arg("--cert")
        .arg(pki.path("alice.pem"))
        .arg("--key")
        .arg(pki.path("alice.key"));
    failed_with(&cmd.arg("hosts").output().unwrap(), "nosuch-ca.pem");

    let mut cmd = hardenctl();
    cmd.args(["--collector", "https://127.0.0.1:9", "--ca"])
        .arg(pki.path("ca.pem"))
        .arg("--key")
        .arg(pki.path("alice.key"));
    failed_with(&cmd.arg("hosts").output().unwrap(), "--cert FILE");

    let mut cmd = hardenctl();
    with_tls(&mut cmd, "http://127.0.0.1:9", &pki, "alice");
    failed_with(
        &cmd.arg("hosts").output().unwrap(),
        "expected https://HOST:PORT",
    );

    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cmd = hardenctl();
    with_tls(
        &mut cmd,
        &format!("https://127.0.0.1:{port}"),
        &pki,
        "alice",
    );
    failed_with(
        &cmd.arg("hosts").output().unwrap(),
        "cannot reach the collector",
    );

    failed_with(
        &hardenctl()
            .args(["--agent", "/run/hardend/hardend.sock", "hosts"])
            .output()
            .unwrap(),
        "--agent takes unix:PATH",
    );
    failed_with(
        &hardenctl()
            .arg("--agent")
            .arg(format!("unix:{}", pki.path("nosuch.sock").display()))
            .arg("hosts")
            .output()
            .unwrap(),
        "cannot reach the agent",
    );

    let bad = hardenctl()
        .args(["findings", "--severity", "urgent"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

// ---------------------------------------------------------------------------
// One agent on its Unix socket.

#[derive(Clone)]
struct FakeAgent;

fn report() -> pb::Report {
    let rule =
        |rule: &str, severity: pb::Severity, status: pb::Status, overdue: bool| pb::RuleResult {
            policy: "ssh".into(),
            rule: rule.into(),
            title: rule.into(),
            severity: severity.into(),
            status: status.into(),
            first_failed_at: (status == pb::Status::Fail).then(|| "2026-11-22T06:00:00Z".into()),
            overdue,
            ..Default::default()
        };
    pb::Report {
        schema: "hardend.report/v1".into(),
        hostname: "web-1".into(),
        root: "/".into(),
        policies: vec![pb::PolicyRef {
            id: "ssh".into(),
            version: "1.0.0".into(),
        }],
        results: vec![
            rule(
                "password-auth",
                pb::Severity::Critical,
                pb::Status::Fail,
                true,
            ),
            rule("root-login", pb::Severity::High, pb::Status::Fail, false),
            rule("x11", pb::Severity::Low, pb::Status::Pass, false),
        ],
        ..Default::default()
    }
}

#[tonic::async_trait]
impl pb::agent_server::Agent for FakeAgent {
    async fn get_status(
        &self,
        _: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        Ok(Response::new(pb::GetStatusResponse {
            hostname: "web-1".into(),
            agent_version: "0.1.0".into(),
            summary: Some(pb::Summary {
                total: 3,
                pass: 1,
                fail: 2,
                ..Default::default()
            }),
            overdue: 1,
            ..Default::default()
        }))
    }

    async fn get_report(
        &self,
        _: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::Report>, Status> {
        Ok(Response::new(report()))
    }

    async fn evaluate(
        &self,
        _: Request<pb::EvaluateRequest>,
    ) -> Result<Response<pb::Report>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    type WatchDriftStream = EventStream;

    async fn watch_drift(
        &self,
        _: Request<pb::WatchDriftRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let stream = tokio_stream::iter(vec![Ok(drift(5, "web-1"))]).chain(tokio_stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_policies(
        &self,
        _: Request<pb::ListPoliciesRequest>,
    ) -> Result<Response<pb::ListPoliciesResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

fn serve_agent(socket: &Path, rt: &tokio::runtime::Runtime) {
    let listener = {
        let _guard = rt.enter();
        tokio::net::UnixListener::bind(socket).unwrap()
    };
    let router = Server::builder().add_service(pb::agent_server::AgentServer::new(FakeAgent));
    rt.spawn(async move {
        let _ = router
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener))
            .await;
    });
}

#[test]
fn one_agent_over_its_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hardend.sock");
    let rt = runtime();
    serve_agent(&socket, &rt);
    let agent = format!("unix:{}", socket.display());

    let hosts = stdout_json(
        &hardenctl()
            .args(["--agent", &agent, "--json", "hosts"])
            .output()
            .unwrap(),
    );
    assert_eq!(hosts[0]["host"], "web-1");
    assert_eq!(hosts.as_array().unwrap().len(), 1);

    let critical = stdout_json(
        &hardenctl()
            .args([
                "--agent",
                &agent,
                "findings",
                "--severity",
                "critical",
                "--json",
            ])
            .output()
            .unwrap(),
    );
    let list = critical.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["rule"], "password-auth");
    assert_eq!(list[0]["first_failed_at"], "2026-11-22T06:00:00Z");
    assert_eq!(list[0]["overdue"], true);

    let summary = stdout_json(
        &hardenctl()
            .args(["--agent", &agent, "--json", "summary"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        (summary["hosts"].as_u64(), summary["open_findings"].as_u64()),
        (Some(1), Some(2))
    );

    let host = hardenctl()
        .args(["--agent", &agent, "host", "web-1"])
        .output()
        .unwrap();
    let text = String::from_utf8(host.stdout).unwrap();
    assert!(text.starts_with("Host:      web-1\n"), "{text}");
    assert!(text.contains("ssh/password-auth"), "{text}");
    assert!(
        !text.contains("ssh/x11"),
        "passing rules are not listed: {text}"
    );

    failed_with(
        &hardenctl()
            .args(["--agent", &agent, "host", "web-2"])
            .output()
            .unwrap(),
        "this agent is host \"web-1\", not \"web-2\"",
    );

    let mut child = hardenctl()
        .args(["--agent", &agent, "watch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    assert_eq!(
        line,
        "2026-11-22T12:00:01Z web-1 high kernel/ip-forward pass -> fail: \
         IP forwarding is disabled (actual: 1, expected: 0)"
    );
    // This child is ours; it is ended by its own handle.
    child.kill().unwrap();
    child.wait().unwrap();
}
