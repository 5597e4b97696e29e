//! Helpers of the `hardend run` end-to-end tests: a daemon process with its
//! stderr collected line by line, readiness through a real sd_notify socket,
//! and the alert lines parsed back into fields.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One alert line's fields.
pub type Fields = BTreeMap<String, String>;

/// A `hardend run` (or any command running it) with stderr collected.
pub struct DaemonProcess {
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    notify: UnixDatagram,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl DaemonProcess {
    /// Starts `cmd` with stderr piped and `NOTIFY_SOCKET` set to a socket
    /// in `dir`, so the test learns readiness as systemd would.
    pub fn spawn(mut cmd: Command, dir: &Path, name: &str) -> DaemonProcess {
        let notify_path = dir.join(format!("{name}.notify"));
        let _ = std::fs::remove_file(&notify_path);
        let notify = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
        notify
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        cmd.env("NOTIFY_SOCKET", &notify_path)
            .env("HARDEND_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start the daemon");
        let stderr = child.stderr.take().expect("stderr");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("lock").push(line);
            }
        });
        DaemonProcess {
            child,
            lines,
            notify,
            reader: Some(reader),
        }
    }

    /// Every stderr line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lock").clone()
    }

    /// The alert lines so far, parsed (log lines are skipped).
    pub fn alerts(&self) -> Vec<Fields> {
        self.lines()
            .iter()
            .filter_map(|l| hardend_daemon::journal::parse_line(l))
            .map(|f| f.into_iter().collect())
            .collect()
    }

    /// The drift alerts (not policy errors) so far.
    pub fn drift(&self) -> Vec<Fields> {
        self.alerts()
            .into_iter()
            .filter(|f| f.contains_key("HARDEND_SEQ"))
            .collect()
    }

    /// Waits for a notification message containing `what` (e.g. `READY=1`).
    pub fn wait_notify(&mut self, what: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        loop {
            if let Ok(len) = self.notify.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..len]).to_string();
                if msg.lines().any(|l| l == what) {
                    return msg;
                }
                continue;
            }
            // Nothing queued: did the daemon die before saying it?
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the daemon exited ({status}) before {what}:\n{}",
                    self.lines().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {within:?}; stderr:\n{}",
                self.lines().join("\n")
            );
        }
    }

    /// Waits until at least `n` drift alerts were written.
    pub fn wait_drift(&self, n: usize, within: Duration) -> Vec<Fields> {
        let deadline = Instant::now() + within;
        loop {
            let drift = self.drift();
            if drift.len() >= n {
                return drift;
            }
            assert!(
                Instant::now() < deadline,
                "waited {within:?} for {n} alerts; stderr:\n{}",
                self.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill -{signal}");
    }

    /// SIGKILL, then reap.
    pub fn kill9(mut self) -> Vec<String> {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
        self.finish()
    }

    /// SIGTERM, then wait (at most `within`) for the exit.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit(within)
    }

    /// Waits (at most `within`) for the process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the daemon did not stop within {within:?}:\n{}",
                    self.lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.finish();
        status
    }

    fn finish(&mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.lines()
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// (HARDEND_SEQ, HARDEND_KIND, HARDEND_RULE) of alerts, for asserts.
pub fn seq_kind_rule(alerts: &[Fields]) -> Vec<(u64, String, String)> {
    alerts
        .iter()
        .map(|f| {
            (
                f.get("HARDEND_SEQ")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                f.get("HARDEND_KIND").cloned().unwrap_or_default(),
                f.get("HARDEND_RULE").cloned().unwrap_or_default(),
            )
        })
        .collect()
}

/// The `next_seq` recorded in a state directory, 0 when there is none yet.
pub fn persisted_next_seq(state_dir: &Path) -> u64 {
    std::fs::read(state_dir.join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["next_seq"].as_u64())
        .unwrap_or(0)
}

/// Waits until the state directory records `next_seq >= n`.
pub fn wait_persisted(state_dir: &Path, n: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while persisted_next_seq(state_dir) < n {
        assert!(
            Instant::now() < deadline,
            "the state never recorded next_seq >= {n} (have {})",
            persisted_next_seq(state_dir)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A policy with one rule on a namespaced sysctl: IPv4 forwarding is off.
pub const IP_FORWARD_POLICY: &str = r#"
policy:
  id: live-drift
  title: Live drift test
  version: "1"
rules:
  - id: ip-forward-off
    title: IPv4 forwarding is off
    severity: critical
    check:
      sysctl: { key: net.ipv4.ip_forward, equals: 0 }
"#;

/// Writes `policy` to `dir/policies/live.yaml` and a configuration for a
/// daemon on the live host (`root: /`) with that policy, its state and
/// socket in `dir` and alerts on stderr; returns the configuration's path.
pub fn live_config(dir: &Path, policy: &str) -> std::path::PathBuf {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).expect("mkdir policies");
    std::fs::write(policies.join("live.yaml"), policy).expect("write the policy");
    let config = dir.join("hardend.yaml");
    std::fs::write(
        &config,
        format!(
            "root: /\npolicies: [{}]\nstate_dir: {}\nsocket: {}\njournald: off\n",
            policies.display(),
            dir.join("state").display(),
            dir.join("hardend.sock").display()
        ),
    )
    .expect("write the configuration");
    config
}

/// A FIFO at `dir/control` through which a test drives its namespace script
/// (`set KEY=VALUE`, `stop`).
pub fn control_fifo(dir: &Path) -> std::path::PathBuf {
    let control = dir.join("control");
    let c_path = std::ffi::CString::new(control.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: mkfifo with a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    control
}

/// Writes one command line to the control FIFO; returns when it was sent.
pub fn send(control: &mut std::fs::File, line: &str) -> Instant {
    use std::io::Write;
    writeln!(control, "{line}").expect("write the control FIFO");
    control.flush().expect("flush the control FIFO");
    Instant::now()
}
