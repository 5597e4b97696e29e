//! What the local API tests share: a fixture view, a server on a temporary
//! socket with hand-made core handles, and connections made with other
//! credentials.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hardend_daemon::api::{ApiError, ApiServer, ServeOptions};
use hardend_daemon::{AgentView, Command, DriftEvent, DriftKind, PolicyInfo, Shared};
use hardend_engine::{HostInfo, PolicyRef, Report, RuleResult, Status, Summary};
use hardend_facts::Evidence;
use hardend_policy::Severity;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub fn result(rule: &str, severity: Severity, status: Status) -> RuleResult {
    RuleResult {
        policy: "linux-baseline-ssh".into(),
        rule: rule.into(),
        title: format!("the {rule} rule"),
        severity,
        status,
        waived_status: None,
        expected: Some("passwordauthentication = no".into()),
        actual: (status == Status::Fail).then(|| "yes".into()),
        evidence: vec![Evidence {
            path: "/etc/ssh/sshd_config".into(),
            line: Some(57),
            text: Some("PasswordAuthentication yes".into()),
        }],
        message: None,
    }
}

pub fn fixture_report(results: Vec<RuleResult>) -> Report {
    Report {
        schema: hardend_engine::REPORT_SCHEMA.into(),
        host: HostInfo {
            hostname: "web-1".into(),
            root: "/srv/fixture".into(),
        },
        started_at: "2026-11-22T10:00:00.000Z".into(),
        duration_ms: 2.5,
        policies: vec![PolicyRef {
            id: "linux-baseline-ssh".into(),
            version: "1.0.0".into(),
        }],
        summary: Summary::of(&results),
        results,
    }
}

pub fn key(rule: &str) -> (String, String) {
    ("linux-baseline-ssh".to_string(), rule.to_string())
}

pub fn fixture_view() -> AgentView {
    let results = vec![
        result("ssh-root-login-disabled", Severity::Critical, Status::Pass),
        result(
            "ssh-password-auth-disabled",
            Severity::Critical,
            Status::Fail,
        ),
        result("ssh-x11-forwarding-disabled", Severity::Low, Status::Fail),
        result("ssh-banner", Severity::Medium, Status::NotApplicable),
    ];
    AgentView {
        hostname: "web-1".into(),
        root: "/srv/fixture".into(),
        started_at: "2026-11-22T09:00:00Z".parse().expect("timestamp"),
        last_full_scan_at: Some("2026-11-22T10:00:00Z".parse().expect("timestamp")),
        report: fixture_report(results),
        first_failed: BTreeMap::from([
            (
                key("ssh-password-auth-disabled"),
                "2026-11-22T04:00:00Z".parse().expect("timestamp"),
            ),
            (
                key("ssh-x11-forwarding-disabled"),
                "2026-11-22T09:30:00Z".parse().expect("timestamp"),
            ),
        ]),
        overdue: BTreeSet::from([key("ssh-password-auth-disabled")]),
        policies: vec![PolicyInfo {
            id: "linux-baseline-ssh".into(),
            version: "1.0.0".into(),
            title: "OpenSSH server baseline".into(),
            source: "/usr/share/hardend/policies/ssh.yaml".into(),
            rules: 4,
        }],
        policy_errors: vec!["/etc/hardend/policies.d/bad.yaml:3:7: unknown key `chek`".into()],
        drift_events: 3,
    }
}

pub fn drift(seq: u64, rule: &str, severity: Severity, kind: DriftKind) -> DriftEvent {
    let (previous, status) = match kind {
        DriftKind::Passing => (Status::Fail, Status::Pass),
        DriftKind::Error => (Status::Pass, Status::Error),
        DriftKind::Failing | DriftKind::Overdue => (Status::Pass, Status::Fail),
    };
    DriftEvent {
        seq,
        at: jiff::Timestamp::from_second(1_795_000_000 + i64::try_from(seq).expect("small"))
            .expect("timestamp"),
        kind,
        previous: Some(previous),
        result: result(rule, severity, status),
    }
}

/// A running API server with hand-made core handles.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub view: watch::Sender<Arc<AgentView>>,
    pub drift: broadcast::Sender<Arc<DriftEvent>>,
    /// The core's side of the command channel; `None` once taken.
    pub commands: Option<mpsc::Receiver<Command>>,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<Result<(), ApiError>>>,
}

impl TestServer {
    /// Options for tests: group `gid` allowed, a socket everyone may
    /// connect to (so the peer-credential check is what refuses), a short
    /// evaluation timeout.
    pub fn options(gid: Option<u32>) -> ServeOptions {
        ServeOptions {
            allowed_gid: gid,
            socket_mode: 0o666,
            evaluate_timeout: Duration::from_millis(500),
            ..ServeOptions::standard()
        }
    }

    pub async fn start(options: ServeOptions) -> TestServer {
        Self::start_with_capacity(options, 256).await
    }

    pub async fn start_with_capacity(options: ServeOptions, capacity: usize) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        // Other uids must reach the socket inside.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod tempdir");
        let socket = dir.path().join("run/hardend.sock");
        let (view, view_rx) = watch::channel(Arc::new(fixture_view()));
        let (drift, _) = broadcast::channel(capacity);
        let (commands_tx, commands) = mpsc::channel(4);
        let shared = Shared {
            view: view_rx,
            drift: drift.clone(),
            commands: commands_tx,
        };
        let server = ApiServer::bind(&socket, options).expect("bind the API socket");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(shared, async move {
            let _ = stopped.await;
        }));
        TestServer {
            dir,
            socket,
            view,
            drift,
            commands: Some(commands),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and returns what `serve` returned.
    pub async fn stop(&mut self) -> Result<(), ApiError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("server task");
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the server stops within 10 s")
            .expect("the server task does not panic")
    }
}

/// Connects to `socket` from a fresh thread whose kernel credentials are
/// `uid`, `gid` and supplementary `groups`. Linux keeps credentials per
/// thread (glibc's `setuid` merely repeats the call in every thread), so raw
/// system calls on one short-lived thread change only that thread, and the
/// socket's `SO_PEERCRED`/`SO_PEERGROUPS` record them at `connect`.
pub fn connect_as(
    socket: &Path,
    uid: u32,
    gid: u32,
    groups: &[u32],
) -> std::os::unix::net::UnixStream {
    let socket = socket.to_path_buf();
    let groups = groups.to_vec();
    std::thread::spawn(move || {
        // SAFETY: plain system calls on this thread's own credentials, with a
        // valid pointer and length for the group list.
        unsafe {
            assert_eq!(
                libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()),
                0,
                "setgroups: {}",
                std::io::Error::last_os_error()
            );
            assert_eq!(
                libc::syscall(libc::SYS_setresgid, gid, gid, gid),
                0,
                "setresgid: {}",
                std::io::Error::last_os_error()
            );
            assert_eq!(
                libc::syscall(libc::SYS_setresuid, uid, uid, uid),
                0,
                "setresuid: {}",
                std::io::Error::last_os_error()
            );
        }
        let stream =
            std::os::unix::net::UnixStream::connect(&socket).expect("connect as another uid");
        stream.set_nonblocking(true).expect("non-blocking");
        stream
    })
    .join()
    .expect("the connecting thread does not panic")
}

/// A gRPC channel over one already connected stream.
pub async fn channel_over(stream: std::os::unix::net::UnixStream) -> tonic::transport::Channel {
    let slot = Arc::new(std::sync::Mutex::new(Some(stream)));
    tonic::transport::Endpoint::from_static("http://hardend.sock")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let taken = slot.lock().expect("lock").take();
            async move {
                let stream = taken.ok_or_else(|| std::io::Error::other("connected once only"))?;
                let stream = tokio::net::UnixStream::from_std(stream)?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .expect("channel over the stream")
}

/// Whether this test process may switch credentials (it is root).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
