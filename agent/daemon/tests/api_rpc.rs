//! The local API over a real Unix socket: every `hardend.v1.Agent` call with
//! the Rust client, drift streaming, health, reflection, and the socket's
//! life (stale files, mode, removal at shutdown).

mod api_common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::sync::Arc;
use std::time::Duration;

use api_common::{TestServer, drift, fixture_view, key};
use hardend_daemon::api::{ApiError, ApiServer};
use hardend_daemon::client::{self, ClientError, WatchEnd, WatchFormat};
use hardend_daemon::convert::{self, RemoteDrift};
use hardend_daemon::{Command, DriftKind};
use hardend_engine::Status;
use hardend_policy::Severity;
use hardend_proto as pb;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_status_answers_from_the_view() {
    let mut server = TestServer::start(TestServer::options(None)).await;
    let status = client::status(&server.socket).await.expect("GetStatus");
    let view = fixture_view();
    assert_eq!(status.hostname, "web-1");
    assert_eq!(status.root, "/srv/fixture");
    assert_eq!(status.agent_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(status.started_at, "2026-11-22T09:00:00Z");
    assert_eq!(
        status.last_full_scan_at.as_deref(),
        Some("2026-11-22T10:00:00Z")
    );
    assert_eq!(status.summary, view.report.summary);
    assert_eq!((status.summary.pass, status.summary.fail), (1, 2));
    assert_eq!(status.overdue, 1);
    assert_eq!(status.policies, view.report.policies);
    assert_eq!(status.policy_errors, view.policy_errors);
    assert_eq!(status.drift_events, 3);

    // A new view is what the next call sees.
    let mut next = fixture_view();
    next.drift_events = 10;
    next.overdue.clear();
    server.view.send(Arc::new(next)).expect("update the view");
    let status = client::status(&server.socket).await.expect("GetStatus");
    assert_eq!((status.drift_events, status.overdue), (10, 0));
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_report_is_the_views_report_with_deadline_facts() {
    let mut server = TestServer::start(TestServer::options(None)).await;
    let report = client::report(&server.socket).await.expect("GetReport");
    assert_eq!(report, fixture_view().report);

    let mut agent = client::connect(&server.socket).await.expect("connect");
    let wire = agent
        .get_report(pb::GetReportRequest {})
        .await
        .expect("GetReport")
        .into_inner();
    let by_rule = |rule: &str| {
        wire.results
            .iter()
            .find(|r| r.rule == rule)
            .expect("rule in report")
            .clone()
    };
    let overdue = by_rule("ssh-password-auth-disabled");
    assert!(overdue.overdue);
    assert_eq!(
        overdue.first_failed_at.as_deref(),
        Some("2026-11-22T04:00:00Z")
    );
    let recent = by_rule("ssh-x11-forwarding-disabled");
    assert!(!recent.overdue);
    assert_eq!(
        recent.first_failed_at.as_deref(),
        Some("2026-11-22T09:30:00Z")
    );
    let passing = by_rule("ssh-root-login-disabled");
    assert_eq!((passing.overdue, passing.first_failed_at), (false, None));
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_policies_lists_the_loaded_policies() {
    let mut server = TestServer::start(TestServer::options(None)).await;
    let mut agent = client::connect(&server.socket).await.expect("connect");
    let list = agent
        .list_policies(pb::ListPoliciesRequest {})
        .await
        .expect("ListPolicies")
        .into_inner();
    let policies: Vec<_> = list
        .policies
        .into_iter()
        .map(convert::policy_info_from_proto)
        .collect();
    assert_eq!(policies, fixture_view().policies);
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluate_asks_the_core_and_returns_its_new_view() {
    let mut server = TestServer::start(TestServer::options(None)).await;
    let mut commands = server.commands.take().expect("command receiver");
    let core = tokio::spawn(async move {
        let Some(Command::Evaluate(reply)) = commands.recv().await else {
            panic!("expected an Evaluate command");
        };
        let mut after = fixture_view();
        after.report.results[1].status = Status::Pass;
        after.report.summary = hardend_engine::Summary::of(&after.report.results);
        after
            .first_failed
            .remove(&key("ssh-password-auth-disabled"));
        after.overdue.clear();
        reply.send(Arc::new(after)).expect("reply");
    });
    let mut agent = client::connect(&server.socket).await.expect("connect");
    let wire = agent
        .evaluate(pb::EvaluateRequest {})
        .await
        .expect("Evaluate")
        .into_inner();
    core.await.expect("core task");
    let report = convert::report_from_proto(wire.clone()).expect("convert");
    assert_eq!(report.results[1].status, Status::Pass);
    assert_eq!((report.summary.pass, report.summary.fail), (2, 1));
    assert!(wire.results.iter().all(|r| !r.overdue));
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluate_times_out_when_the_core_is_busy_and_fails_when_it_is_gone() {
    let mut server = TestServer::start(TestServer::options(None)).await;
    let mut agent = client::connect(&server.socket).await.expect("connect");
    // The core holds the command without answering: the 500 ms timeout fires.
    let status = agent
        .evaluate(pb::EvaluateRequest {})
        .await
        .expect_err("no answer from the core");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let mut commands = server.commands.take().expect("command receiver");
    assert!(matches!(commands.recv().await, Some(Command::Evaluate(_))));
    // The core has stopped: the call fails at once instead of hanging.
    drop(commands);
    let status = agent
        .evaluate(pb::EvaluateRequest {})
        .await
        .expect_err("the core is gone");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    server.stop().await.expect("clean stop");
}

/// Reads `n` events from a drift stream, each within 5 s.
async fn take(stream: &mut tonic::Streaming<pb::DriftEvent>, n: usize) -> Vec<RemoteDrift> {
    let mut out = Vec::new();
    for _ in 0..n {
        let message = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("an event within 5 s")
            .expect("no error")
            .expect("the stream is open");
        out.push(convert::drift_from_proto(message).expect("convert"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_drift_streams_events_in_order_and_filters_by_severity() {
    let mut server = TestServer::start(TestServer::options(None)).await;
    let mut agent = client::connect(&server.socket).await.expect("connect");
    let mut all = agent
        .watch_drift(pb::WatchDriftRequest { min_severity: 0 })
        .await
        .expect("WatchDrift")
        .into_inner();
    let mut high = agent
        .watch_drift(pb::WatchDriftRequest {
            min_severity: pb::Severity::High.into(),
        })
        .await
        .expect("WatchDrift")
        .into_inner();
    let sent = [
        drift(
            11,
            "ssh-password-auth-disabled",
            Severity::Critical,
            DriftKind::Failing,
        ),
        drift(
            12,
            "ssh-x11-forwarding-disabled",
            Severity::Low,
            DriftKind::Failing,
        ),
        drift(13, "ssh-banner", Severity::Medium, DriftKind::Error),
        drift(
            14,
            "ssh-root-login-disabled",
            Severity::High,
            DriftKind::Failing,
        ),
        drift(
            15,
            "ssh-password-auth-disabled",
            Severity::Critical,
            DriftKind::Passing,
        ),
    ];
    for event in &sent {
        server
            .drift
            .send(Arc::new(event.clone()))
            .expect("a subscriber");
    }
    let got = take(&mut all, 5).await;
    assert_eq!(
        got.iter().map(|d| d.event.clone()).collect::<Vec<_>>(),
        sent.to_vec()
    );
    assert!(got.iter().all(|d| d.hostname == "web-1"));
    // The failing, overdue rule carries its deadline facts; the passing one does not.
    assert!(got[0].overdue);
    assert_eq!(
        got[0].first_failed_at.as_deref(),
        Some("2026-11-22T04:00:00Z")
    );
    assert!(!got[4].overdue);
    assert_eq!(got[4].first_failed_at, None);

    let got = take(&mut high, 3).await;
    let seqs: Vec<u64> = got.iter().map(|d| d.event.seq).collect();
    assert_eq!(seqs, [11, 14, 15]);
    // Nothing else is queued for the filtered stream.
    server
        .drift
        .send(Arc::new(drift(
            16,
            "ssh-banner",
            Severity::Critical,
            DriftKind::Error,
        )))
        .expect("send");
    assert_eq!(take(&mut high, 1).await[0].event.seq, 16);
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_drift_streams_are_capped_and_a_closed_one_frees_its_place() {
    let options = hardend_daemon::api::ServeOptions {
        max_watchers: 2,
        ..TestServer::options(None)
    };
    let mut server = TestServer::start(options).await;
    let mut agent = client::connect(&server.socket).await.expect("connect");
    let request = || pb::WatchDriftRequest { min_severity: 0 };
    let first = agent.watch_drift(request()).await.expect("first stream");
    let _second = agent.watch_drift(request()).await.expect("second stream");
    let status = agent
        .watch_drift(request())
        .await
        .expect_err("a third stream is one too many");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    drop(first);
    // The server notices the closed stream and frees its place.
    let mut reopened = None;
    for _ in 0..500 {
        match agent.watch_drift(request()).await {
            Ok(stream) => {
                reopened = Some(stream);
                break;
            }
            Err(s) => assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(reopened.is_some(), "a place was freed");
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_drift_rejects_an_unknown_severity() {
    let mut server = TestServer::start(TestServer::options(None)).await;
    let mut agent = client::connect(&server.socket).await.expect("connect");
    let status = agent
        .watch_drift(pb::WatchDriftRequest { min_severity: 99 })
        .await
        .expect_err("99 is no severity");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    server.stop().await.expect("clean stop");
}

// One thread: the events are all sent before the forwarding task runs, so
// the broadcast (capacity 4) must drop some for this client.
#[tokio::test(flavor = "current_thread")]
async fn watch_drift_tells_a_lagging_client_how_much_it_missed() {
    let mut server = TestServer::start_with_capacity(TestServer::options(None), 4).await;
    let mut agent = client::connect(&server.socket).await.expect("connect");
    let mut stream = agent
        .watch_drift(pb::WatchDriftRequest { min_severity: 0 })
        .await
        .expect("WatchDrift")
        .into_inner();
    for seq in 0..20 {
        server
            .drift
            .send(Arc::new(drift(
                seq,
                "ssh-banner",
                Severity::Low,
                DriftKind::Failing,
            )))
            .expect("send");
    }
    let status = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("an answer within 5 s")
        .expect_err("the client lagged");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("missed 16 drift events"),
        "{}",
        status.message()
    );
    // The stream is over after the error.
    let end = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("an answer within 5 s");
    assert!(matches!(end, Ok(None)), "{end:?}");
    server.stop().await.expect("clean stop");
}

/// A `Write` whose bytes the test reads while the writer still runs.
#[derive(Clone, Default)]
struct SharedOutput(Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedOutput {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8")
    }
}

impl std::io::Write for SharedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_client_prints_lines_and_json() {
    let mut server = TestServer::start(TestServer::options(None)).await;
    for format in [WatchFormat::Lines, WatchFormat::Json] {
        let socket = server.socket.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let output = SharedOutput::default();
        let mut out = output.clone();
        let watcher = tokio::spawn(async move {
            client::watch(
                &socket,
                Some(Severity::Medium),
                format,
                &mut out,
                async move {
                    let _ = stop_rx.await;
                },
            )
            .await
        });
        // Wait until the watcher has subscribed.
        for _ in 0..500 {
            if server.drift.receiver_count() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(server.drift.receiver_count(), 1, "the watcher subscribed");
        server
            .drift
            .send(Arc::new(drift(
                1,
                "ssh-x11-forwarding-disabled",
                Severity::Low,
                DriftKind::Failing,
            )))
            .expect("send");
        server
            .drift
            .send(Arc::new(drift(
                2,
                "ssh-password-auth-disabled",
                Severity::Critical,
                DriftKind::Failing,
            )))
            .expect("send");
        server
            .drift
            .send(Arc::new(drift(
                3,
                "ssh-password-auth-disabled",
                Severity::Critical,
                DriftKind::Passing,
            )))
            .expect("send");
        // Each event is flushed as it arrives: both lines appear while the
        // watcher still runs.
        for _ in 0..500 {
            if output.text().lines().count() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop_tx.send(()).expect("stop the watcher");
        let end = watcher.await.expect("join").expect("watch");
        assert_eq!(end, WatchEnd::Stopped);
        let text = output.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        match format {
            WatchFormat::Lines => {
                assert!(
                    lines[0].ends_with(
                        "web-1 FAILING critical linux-baseline-ssh/ssh-password-auth-disabled pass -> fail: \
                         the ssh-password-auth-disabled rule (actual: yes, expected: passwordauthentication = no, \
                         failing since 2026-11-22T04:00:00Z)"
                    ),
                    "{}",
                    lines[0]
                );
                assert!(lines[1].contains(" PASSING critical "), "{}", lines[1]);
                assert!(lines[1].contains("fail -> pass"), "{}", lines[1]);
            }
            WatchFormat::Json => {
                let first: serde_json::Value = serde_json::from_str(lines[0]).expect("json");
                assert_eq!(first["seq"], 2);
                assert_eq!(first["hostname"], "web-1");
                assert_eq!(first["kind"], "failing");
                assert_eq!(first["previous"], "pass");
                assert_eq!(first["result"]["status"], "fail");
                assert_eq!(first["result"]["severity"], "critical");
                assert_eq!(first["overdue"], true);
                let second: serde_json::Value = serde_json::from_str(lines[1]).expect("json");
                assert_eq!(second["kind"], "passing");
            }
        }
        // The stream is gone once the watcher stopped.
        for _ in 0..500 {
            if server.drift.receiver_count() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(server.drift.receiver_count(), 0, "the stream was dropped");
    }
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams_and_removes_the_socket() {
    let mut server = TestServer::start(TestServer::options(None)).await;
    let mut agent = client::connect(&server.socket).await.expect("connect");
    let mut stream = agent
        .watch_drift(pb::WatchDriftRequest { min_severity: 0 })
        .await
        .expect("WatchDrift")
        .into_inner();
    server
        .stop()
        .await
        .expect("serve returns Ok after shutdown");
    let end = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("the stream ends within 5 s");
    assert!(!matches!(end, Ok(Some(_))), "{end:?}");
    assert!(!server.socket.exists(), "the socket file is removed");
    let err = client::status(&server.socket)
        .await
        .expect_err("nothing serves");
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_serving_for_the_agent_and_the_server() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut server = TestServer::start(TestServer::options(None)).await;
    let mut health = HealthClient::new(client::channel(&server.socket).await.expect("channel"));
    for service in ["", "hardend.v1.Agent"] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("Check")
            .into_inner();
        assert_eq!(answer.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), Code::NotFound);
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_describes_the_agent_service() {
    use prost::Message;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let mut server = TestServer::start(TestServer::options(None)).await;
    let mut reflection =
        ServerReflectionClient::new(client::channel(&server.socket).await.expect("channel"));
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol("hardend.v1.Agent".into()),
    ];
    let outbound = tokio_stream::iter(requests.into_iter().map(|m| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    }));
    let mut answers = reflection
        .server_reflection_info(outbound)
        .await
        .expect("ServerReflectionInfo")
        .into_inner();

    let first = answers.message().await.expect("answer").expect("one");
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("expected a service list: {first:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for want in [
        "hardend.v1.Agent",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }

    let second = answers.message().await.expect("answer").expect("two");
    let Some(MessageResponse::FileDescriptorResponse(files)) = second.message_response else {
        panic!("expected a file descriptor: {second:?}");
    };
    let file = prost_types_file(&files.file_descriptor_proto[0]);
    assert_eq!(file.0, "hardend.proto");
    assert_eq!(file.1, "hardend.v1");
    assert!(file.2.contains(&"Agent".to_string()), "{:?}", file.2);
    server.stop().await.expect("clean stop");

    /// (name, package, services) of an encoded FileDescriptorProto, decoded
    /// with a hand-written subset of its message so no extra crate is needed.
    fn prost_types_file(bytes: &[u8]) -> (String, String, Vec<String>) {
        #[derive(Clone, PartialEq, prost::Message)]
        struct Service {
            #[prost(string, tag = "1")]
            name: String,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct File {
            #[prost(string, tag = "1")]
            name: String,
            #[prost(string, tag = "2")]
            package: String,
            #[prost(message, repeated, tag = "6")]
            service: Vec<Service>,
        }
        let f = File::decode(bytes).expect("a FileDescriptorProto");
        (
            f.name,
            f.package,
            f.service.into_iter().map(|s| s.name).collect(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_prepares_the_socket_and_refuses_to_clobber() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("nested/run/hardend.sock");
    let gid = 4242;
    let options = hardend_daemon::api::ServeOptions {
        allowed_gid: Some(gid),
        ..hardend_daemon::api::ServeOptions::standard()
    };
    let server = ApiServer::bind(&socket, options.clone()).expect("bind");
    let parent = std::fs::metadata(socket.parent().expect("parent")).expect("stat dir");
    assert_eq!(parent.permissions().mode() & 0o7777, 0o755);
    let meta = std::fs::symlink_metadata(&socket).expect("stat socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
    if api_common::is_root() {
        assert_eq!(meta.gid(), gid, "the socket belongs to the allowed group");
    }

    // A second daemon on the same socket is refused while the first listens.
    let err = ApiServer::bind(&socket, options.clone()).expect_err("in use");
    assert!(matches!(err, ApiError::InUse { .. }), "{err}");
    // Once the first is gone, its leftover socket file is replaced.
    drop(server);
    assert!(socket.exists(), "a dropped listener leaves its file behind");
    let again = ApiServer::bind(&socket, options.clone()).expect("stale socket replaced");
    drop(again);

    // Something that is not a socket is never removed.
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, "precious").expect("write");
    let err = ApiServer::bind(&file, options).expect_err("not a socket");
    assert!(matches!(err, ApiError::NotASocket { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "precious");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_daemon_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("hardend.sock");
    let err = client::report(&socket).await.expect_err("no daemon");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot reach the hardend daemon at {}: ",
            socket.display()
        )),
        "{text}"
    );
    assert!(text.contains("No such file or directory"), "{text}");
    assert!(text.ends_with("(is `hardend run` running?)"), "{text}");
}
