//! A local API server for the end-to-end client tests: the daemon's own
//! `api::ApiServer`, serving a view made from a real evaluation of a fixture
//! root with the shipped policies, on a temporary socket everyone may
//! connect to (so the peer-credential check is what refuses strangers).

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hardend_daemon::api::{ApiServer, ServeOptions};
use hardend_daemon::{AgentView, Command, DriftEvent, PolicyInfo, Shared};
use hardend_engine::Report;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// The fixture root whose evaluation the server serves.
pub fn fixture_root() -> PathBuf {
    hardend_tests::fixtures().join("cases/shipped-ssh-debian-defaults/root")
}

/// The report `hardend check` makes for the fixture root.
pub fn fixture_report() -> Report {
    let opts = hardend::CheckOptions {
        root: Some(fixture_root()),
        policies: vec![hardend_tests::shipped_policies()],
        config: None,
        today: Some(hardend::jiff::civil::date(2026, 11, 22)),
    };
    hardend::run_check(&opts).expect("the fixture evaluates")
}

pub struct Server {
    pub runtime: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub report: Report,
    pub drift: broadcast::Sender<std::sync::Arc<DriftEvent>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), hardend_daemon::api::ApiError>>>,
}

impl Server {
    /// Starts the server; only root (and no group) may call.
    pub fn start() -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod tempdir");
        let socket = dir.path().join("hardend.sock");
        let report = fixture_report();
        let failing_since: jiff::Timestamp = "2026-11-22T01:00:00Z".parse().expect("timestamp");
        let first_failed = report
            .results
            .iter()
            .filter(|r| r.status == hardend_engine::Status::Fail)
            .map(|r| ((r.policy.clone(), r.rule.clone()), failing_since))
            .collect();
        let view = AgentView {
            hostname: report.host.hostname.clone(),
            root: report.host.root.clone(),
            started_at: "2026-11-22T00:59:00Z".parse().expect("timestamp"),
            last_full_scan_at: Some(failing_since),
            report: report.clone(),
            first_failed,
            overdue: Default::default(),
            policies: report
                .policies
                .iter()
                .map(|p| PolicyInfo {
                    id: p.id.clone(),
                    version: p.version.clone(),
                    title: p.id.clone(),
                    source: "policies".into(),
                    rules: u32::try_from(
                        report.results.iter().filter(|r| r.policy == p.id).count(),
                    )
                    .expect("few rules"),
                })
                .collect(),
            policy_errors: vec![],
            drift_events: 0,
        };
        let (_view_tx, view_rx) = watch::channel(Arc::new(view));
        let (drift, _) = broadcast::channel(256);
        let (commands_tx, mut commands) = mpsc::channel::<Command>(4);
        let shared = Shared {
            view: view_rx.clone(),
            drift: drift.clone(),
            commands: commands_tx,
        };
        let options = ServeOptions {
            allowed_gid: None,
            socket_mode: 0o666,
            ..ServeOptions::standard()
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = {
            let _entered = runtime.enter();
            // A stand-in core: answers Evaluate with the current view.
            tokio::spawn(async move {
                while let Some(command) = commands.recv().await {
                    if let Command::Evaluate(reply) = command {
                        let _ = reply.send(view_rx.borrow().clone());
                    }
                }
            });
            let server = ApiServer::bind(&socket, options).expect("bind the API socket");
            tokio::spawn(server.serve(shared, async move {
                let _ = stopped.await;
            }))
        };
        Server {
            runtime,
            dir,
            socket,
            report,
            drift,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Waits until `n` clients watch drift.
    pub fn wait_for_watchers(&self, n: usize) {
        for _ in 0..1000 {
            if self.drift.receiver_count() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{n} watchers did not subscribe within 10 s");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = self
                .runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(5), task).await });
        }
    }
}

/// The real daemon, `hardend run`, on a copy of the fixture root with the
/// shipped policies, its state and socket in a temporary directory, and
/// alerts on stderr (journald off). Stopped with SIGTERM when dropped.
pub struct RealDaemon {
    pub dir: tempfile::TempDir,
    /// The scanned root (a copy the test may change).
    pub root: PathBuf,
    pub socket: PathBuf,
    child: std::process::Child,
}

impl RealDaemon {
    pub fn start() -> RealDaemon {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod tempdir");
        let root = dir.path().join("root");
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(fixture_root())
            .arg(&root)
            .status()
            .expect("run cp");
        assert!(status.success(), "copy the fixture root");
        let socket = dir.path().join("run/hardend.sock");
        let config = dir.path().join("hardend.yaml");
        std::fs::write(
            &config,
            format!(
                "root: {}\npolicies: [{}]\nstate_dir: {}\nsocket: {}\njournald: off\n",
                root.display(),
                hardend_tests::shipped_policies().display(),
                dir.path().join("state").display(),
                socket.display()
            ),
        )
        .expect("write the configuration");
        let log = std::fs::File::create(dir.path().join("daemon.log")).expect("log file");
        let child = std::process::Command::new(hardend_tests::program("hardend"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env_remove("NOTIFY_SOCKET")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hardend run");
        let mut daemon = RealDaemon {
            dir,
            root,
            socket,
            child,
        };
        daemon.wait_until_serving();
        daemon
    }

    /// Waits (up to 30 s) until GetStatus answers after the first full scan.
    fn wait_until_serving(&mut self) {
        let runtime = hardend_daemon::client::runtime().expect("runtime");
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("hardend run exited early ({status}):\n{}", self.log());
            }
            if let Ok(s) = runtime.block_on(hardend_daemon::client::status(&self.socket))
                && s.last_full_scan_at.is_some()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("hardend run did not serve within 30 s:\n{}", self.log());
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }
}

impl Drop for RealDaemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child process by its id.
        unsafe {
            libc::kill(
                i32::try_from(self.child.id()).expect("pid fits"),
                libc::SIGTERM,
            );
        }
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
