//! Who may use the local API: root, and processes whose primary or
//! supplementary group is the allowed one; everyone else gets
//! PERMISSION_DENIED on every call of every service. The callers connect from
//! threads whose kernel credentials were switched, so these tests need root.

mod api_common;

use api_common::{TestServer, channel_over, connect_as, is_root};
use hardend_proto as pb;
use hardend_proto::agent_client::AgentClient;
use tonic::Code;
use tonic::transport::Channel;

const NOBODY: u32 = 65534;
/// A group id that no account on the test machine uses.
const API_GID: u32 = 4242;

fn require_root() {
    assert!(
        is_root(),
        "the access tests switch credentials and must run as root (CI does)"
    );
}

/// Every call of every service, each answered with this code (`Ok` for success).
async fn every_call(channel: Channel) -> Vec<(&'static str, Code)> {
    let code = |r: Result<(), tonic::Status>| r.map_or_else(|s| s.code(), |()| Code::Ok);
    let mut agent = AgentClient::new(channel.clone());
    let mut out = vec![
        (
            "GetStatus",
            code(agent.get_status(pb::GetStatusRequest {}).await.map(drop)),
        ),
        (
            "GetReport",
            code(agent.get_report(pb::GetReportRequest {}).await.map(drop)),
        ),
        (
            "ListPolicies",
            code(
                agent
                    .list_policies(pb::ListPoliciesRequest {})
                    .await
                    .map(drop),
            ),
        ),
        (
            "WatchDrift",
            code(
                agent
                    .watch_drift(pb::WatchDriftRequest { min_severity: 0 })
                    .await
                    .map(drop),
            ),
        ),
    ];
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    out.push((
        "Health.Check",
        code(
            health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(drop),
        ),
    ));
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let listed = match reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
    {
        Ok(mut answers) => answers.get_mut().message().await.map(drop),
        Err(status) => Err(status),
    };
    out.push(("ServerReflectionInfo", code(listed)));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uid_outside_the_group_is_denied_every_call() {
    require_root();
    let mut server = TestServer::start(TestServer::options(Some(API_GID))).await;
    let stream = connect_as(&server.socket, NOBODY, NOBODY, &[]);
    let results = every_call(channel_over(stream).await).await;
    for (call, code) in &results {
        assert_eq!(*code, Code::PermissionDenied, "{call}");
    }
    // The refusal names the caller.
    let stream = connect_as(&server.socket, NOBODY, NOBODY, &[1, 2]);
    let status = AgentClient::new(channel_over(stream).await)
        .get_report(pb::GetReportRequest {})
        .await
        .expect_err("denied");
    assert_eq!(
        status.message(),
        "uid 65534 is neither root nor a member of group hardend"
    );
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_the_group_may_call_by_primary_or_supplementary_group() {
    require_root();
    let mut server = TestServer::start(TestServer::options(Some(API_GID))).await;
    for (gid, groups) in [(API_GID, vec![]), (NOBODY, vec![100, API_GID])] {
        let stream = connect_as(&server.socket, NOBODY, gid, &groups);
        let results = every_call(channel_over(stream).await).await;
        for (call, code) in &results {
            assert_eq!(*code, Code::Ok, "{call} as gid {gid} groups {groups:?}");
        }
    }
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_may_always_call_and_without_a_group_only_root_may() {
    require_root();
    let mut server = TestServer::start(TestServer::options(None)).await;
    let stream = connect_as(&server.socket, 0, 0, &[]);
    for (call, code) in every_call(channel_over(stream).await).await {
        assert_eq!(code, Code::Ok, "{call} as root");
    }
    let stream = connect_as(&server.socket, NOBODY, API_GID, &[API_GID]);
    for (call, code) in every_call(channel_over(stream).await).await {
        assert_eq!(code, Code::PermissionDenied, "{call} with no allowed group");
    }
    server.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_mode_keeps_others_out_before_any_call() {
    require_root();
    // The production mode, 0660, with the allowed group: nobody cannot even
    // connect, and the client explains who may.
    let options = hardend_daemon::api::ServeOptions {
        socket_mode: 0o660,
        ..TestServer::options(Some(API_GID))
    };
    let mut server = TestServer::start(options).await;
    let socket = server.socket.clone();
    let denied = std::thread::spawn(move || {
        // SAFETY: raw credential system calls on this thread only.
        unsafe {
            assert_eq!(
                libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<u32>()),
                0
            );
            assert_eq!(
                libc::syscall(libc::SYS_setresgid, NOBODY, NOBODY, NOBODY),
                0
            );
            assert_eq!(
                libc::syscall(libc::SYS_setresuid, NOBODY, NOBODY, NOBODY),
                0
            );
        }
        let runtime = hardend_daemon::client::runtime().expect("runtime");
        runtime
            .block_on(hardend_daemon::client::status(&socket))
            .expect_err("connect is refused")
            .to_string()
    })
    .join()
    .expect("thread");
    assert!(denied.contains("Permission denied"), "{denied}");
    assert!(
        denied.ends_with("(only root and members of group hardend may use it)"),
        "{denied}"
    );
    // A member of the group can.
    let stream = connect_as(&server.socket, NOBODY, API_GID, &[]);
    let status = AgentClient::new(channel_over(stream).await)
        .get_status(pb::GetStatusRequest {})
        .await
        .expect("a member may call");
    assert_eq!(status.get_ref().hostname, "web-1");
    server.stop().await.expect("clean stop");
}
