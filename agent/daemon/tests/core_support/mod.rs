//! Helpers of the core tests: a fixture root with policies and a state
//! directory in a tempdir, a capturing alert sink, and a running daemon
//! with handles to stop it and to wait for its alerts.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hardend_daemon::app::{Daemon, DaemonOptions, StatsHandle};
use hardend_daemon::sd_notify::SdNotify;
use hardend_daemon::{AlertSink, DriftEvent, DriftKind, Shared};
use hardend_engine::Status;
use hardend_policy::config::{AgentConfig, JournaldMode};
use tokio::sync::oneshot;

/// What the capturing sink received, in order.
#[derive(Debug, Clone)]
pub enum Alert {
    Drift(DriftEvent),
    PolicyErrors(Vec<String>),
}

/// A sink that keeps every alert for the test to read.
#[derive(Debug, Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<Alert>>>);

impl AlertSink for Capture {
    fn drift(&mut self, event: &DriftEvent) {
        self.0
            .lock()
            .expect("lock")
            .push(Alert::Drift(event.clone()));
    }

    fn policy_errors(&mut self, errors: &[String]) {
        self.0
            .lock()
            .expect("lock")
            .push(Alert::PolicyErrors(errors.to_vec()));
    }
}

impl Capture {
    pub fn alerts(&self) -> Vec<Alert> {
        self.0.lock().expect("lock").clone()
    }

    pub fn drift(&self) -> Vec<DriftEvent> {
        self.alerts()
            .into_iter()
            .filter_map(|a| match a {
                Alert::Drift(e) => Some(e),
                Alert::PolicyErrors(_) => None,
            })
            .collect()
    }

    pub fn policy_errors(&self) -> Vec<Vec<String>> {
        self.alerts()
            .into_iter()
            .filter_map(|a| match a {
                Alert::PolicyErrors(e) => Some(e),
                Alert::Drift(_) => None,
            })
            .collect()
    }

    /// Waits until at least `n` drift events arrived; fails after `within`.
    pub async fn wait_drift(&self, n: usize, within: Duration) -> Vec<DriftEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let events = self.drift();
            if events.len() >= n {
                return events;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited {within:?} for {n} drift events, have {}: {:#?}",
                events.len(),
                summary(&events)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the sink received at least `n` policy error reports.
    pub async fn wait_policy_errors(&self, n: usize, within: Duration) -> Vec<Vec<String>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let errors = self.policy_errors();
            if errors.len() >= n {
                return errors;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited {within:?} for {n} policy error reports, have {errors:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// (seq, kind, rule, previous, status) of each event, for readable asserts.
pub fn summary(events: &[DriftEvent]) -> Vec<(u64, DriftKind, String, Option<Status>, Status)> {
    events
        .iter()
        .map(|e| {
            (
                e.seq,
                e.kind,
                e.result.rule.clone(),
                e.previous,
                e.result.status,
            )
        })
        .collect()
}

/// The fixture policy: a file's content, a file's mode and a kernel parameter.
pub const POLICY: &str = r#"
policy:
  id: core-test
  title: Core test policy
  version: "1"
rules:
  - id: motd-banner
    title: The login banner warns
    severity: high
    check:
      file: { path: /etc/motd, contains: 'Authorized use only' }
  - id: shadow-mode
    title: The shadow file is private
    severity: medium
    check:
      file: { path: /etc/shadow, mode_max: "0640" }
  - id: ip-forward-off
    title: IPv4 forwarding is off
    severity: critical
    check:
      sysctl: { key: net.ipv4.ip_forward, equals: 0 }
"#;

pub const BANNER: &str = "Authorized use only\n";

/// A root with /etc and /proc/sys, a policy directory and a state directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// A passing root: banner present, shadow 0640, forwarding off.
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let fx = Fixture { dir };
        std::fs::create_dir_all(fx.root().join("etc")).expect("mkdir etc");
        std::fs::create_dir_all(fx.root().join("proc/sys/net/ipv4")).expect("mkdir proc");
        std::fs::create_dir_all(fx.policies()).expect("mkdir policies");
        fx.write("etc/motd", BANNER);
        fx.write("etc/shadow", "root:*:19000:0:99999:7:::\n");
        fx.chmod("etc/shadow", 0o640);
        fx.write("proc/sys/net/ipv4/ip_forward", "0\n");
        std::fs::write(fx.policies().join("core.yaml"), POLICY).expect("write policy");
        fx
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn policies(&self) -> PathBuf {
        self.dir.path().join("policies")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Writes a file below the root in place (same inode when it exists).
    pub fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.root().join(rel), text).expect("write");
    }

    /// Replaces a file below the root by renaming a new one over it.
    pub fn rename_over(&self, rel: &str, text: &str) {
        let target = self.root().join(rel);
        let tmp = target.with_extension("tmp-new");
        std::fs::write(&tmp, text).expect("write tmp");
        std::fs::rename(&tmp, &target).expect("rename");
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.root().join(rel)).expect("remove");
    }

    pub fn chmod(&self, rel: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.root().join(rel), std::fs::Permissions::from_mode(mode))
            .expect("chmod");
    }

    /// The configuration: fast debounce and poll, alerts to the capture.
    pub fn config(&self) -> AgentConfig {
        let mut c = AgentConfig {
            root: self.root(),
            policies: vec![self.policies()],
            state_dir: self.state_dir(),
            socket: self.dir.path().join("hardend.sock"),
            journald: JournaldMode::Off,
            ..AgentConfig::default()
        };
        c.watch.debounce = Duration::from_millis(20);
        c.watch.poll_interval = Duration::from_secs(30);
        c
    }
}

/// A daemon running on the test's runtime.
pub struct Running {
    pub capture: Capture,
    pub shared: Shared,
    pub stats: StatsHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Starts a daemon with `config`, alerts captured.
    pub fn start(config: AgentConfig) -> Running {
        Running::try_start(config).expect("the daemon starts")
    }

    pub fn try_start(config: AgentConfig) -> Result<Running, hardend_daemon::AppError> {
        let capture = Capture::default();
        let daemon = Daemon::start(DaemonOptions {
            config,
            config_path: None,
            sink: Box::new(capture.clone()),
            notify: SdNotify::disabled(),
            metrics: None,
        })?;
        Ok(Running::spawn(daemon, capture))
    }

    pub fn spawn(daemon: Daemon, capture: Capture) -> Running {
        let shared = daemon.shared();
        let stats = daemon.stats();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            daemon
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .expect("the loop ends cleanly");
        });
        Running {
            capture,
            shared,
            stats,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the loop cleanly and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the loop stops within 10 s")
                .expect("the loop did not panic");
        }
    }

    /// Drops the loop without a clean stop (as a crash would): the state is
    /// what the last batch persisted.
    pub async fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// The status of a rule in the current view.
    pub fn status(&self, rule: &str) -> Option<Status> {
        let view = self.shared.view.borrow().clone();
        view.report
            .results
            .iter()
            .find(|r| r.rule == rule)
            .map(|r| r.status)
    }

    /// Waits until the view shows `rule` with `status`.
    pub async fn wait_status(&self, rule: &str, status: Status, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.status(rule) != Some(status) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited {within:?} for {rule} to be {status}, it is {:?}",
                self.status(rule)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Resident memory of this process in kB, from /proc/self/status.
pub fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}
