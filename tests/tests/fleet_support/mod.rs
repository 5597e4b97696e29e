//! A fleet on loopback for the end-to-end tests: a PKI made by
//! `hardend-collector pki`, a real `hardend-collector` on a free port with
//! SQLite in a temporary directory, real `hardend run` agents on fixture
//! roots pushing to it over mutual TLS, and `hardenctl` as the console.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hardend_tests::program;

/// The agents' policy: a banner file and a private file's mode.
pub const POLICY: &str = r#"
policy:
  id: fleet-test
  title: Fleet test policy
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
"#;

pub const BANNER: &str = "Authorized use only\n";

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run a program");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA with a collector certificate for 127.0.0.1, agent certificates and
/// a console certificate.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path, agents: &[&str]) -> Pki {
        let collector = program("hardend-collector");
        run_ok(
            Command::new(&collector)
                .args(["pki", "init", "--dir"])
                .arg(dir),
        );
        let issue = |kind: &str, name: &str| {
            run_ok(
                Command::new(&collector)
                    .args(["pki", "issue", "--dir"])
                    .arg(dir)
                    .args(["--kind", kind, "--name", name]),
            );
        };
        issue("collector", "127.0.0.1");
        for agent in agents {
            issue("agent", agent);
        }
        issue("console", "operator");
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

/// A free TCP port on loopback (bound and released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signalling our own child process by its id.
    unsafe {
        libc::kill(i32::try_from(child.id()).expect("pid fits"), sig);
    }
}

/// Stops a child with SIGTERM (then SIGKILL after 10 s).
fn stop_child(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    signal(child, libc::SIGTERM);
    for _ in 0..200 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A running `hardend-collector`.
pub struct Collector {
    pub port: u16,
    pub config: PathBuf,
    pub db: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Collector {
    /// Writes the configuration (SQLite in `dir`) and starts the collector.
    pub fn start(dir: &Path, pki: &Pki) -> Collector {
        Collector::start_with(dir, pki, "")
    }

    /// Like [`Collector::start`], with `extra` YAML appended to the configuration.
    pub fn start_with(dir: &Path, pki: &Pki, extra: &str) -> Collector {
        let port = free_port();
        let db = dir.join("collector.db");
        let config = dir.join("collector.yaml");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{port}\ntls: {{ ca: {}, cert: {}, key: {} }}\nstore: sqlite://{}\n{extra}",
                pki.ca().display(),
                pki.cert("127.0.0.1").display(),
                pki.key("127.0.0.1").display(),
                db.display()
            ),
        )
        .expect("write the collector configuration");
        let mut c = Collector {
            port,
            config,
            db,
            log: dir.join("collector.log"),
            child: None,
        };
        c.restart();
        c
    }

    /// Starts the collector again on the same port and database.
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("collector log");
        let child = Command::new(program("hardend-collector"))
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hardend-collector");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("hardend-collector exited early ({status}):\n{}", self.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "hardend-collector did not listen within 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it (SIGTERM) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running `hardend run` on its own fixture root, pushing to a collector.
pub struct Agent {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub socket: PathBuf,
    pub config: PathBuf,
    child: Option<Child>,
}

impl Agent {
    /// A root named `name` (its /etc/hostname) with the banner in place and
    /// /etc/shadow at `shadow_mode`, the fleet policy, and the collector.
    pub fn start(name: &str, pki: &Pki, collector_url: &str, shadow_mode: u32) -> Agent {
        Agent::start_with(name, pki, collector_url, shadow_mode, "")
    }

    /// Like [`Agent::start`], with `extra` YAML appended to the configuration.
    pub fn start_with(
        name: &str,
        pki: &Pki,
        collector_url: &str,
        shadow_mode: u32,
        extra: &str,
    ) -> Agent {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir etc");
        std::fs::write(root.join("etc/hostname"), format!("{name}\n")).expect("hostname");
        std::fs::write(root.join("etc/motd"), BANNER).expect("motd");
        std::fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").expect("shadow");
        std::fs::set_permissions(
            root.join("etc/shadow"),
            std::fs::Permissions::from_mode(shadow_mode),
        )
        .expect("chmod shadow");
        let policies = dir.path().join("policies");
        std::fs::create_dir_all(&policies).expect("mkdir policies");
        std::fs::write(policies.join("fleet.yaml"), POLICY).expect("policy");
        let socket = dir.path().join("run/hardend.sock");
        let config = dir.path().join("hardend.yaml");
        std::fs::write(
            &config,
            format!(
                "root: {}\npolicies: [{}]\nstate_dir: {}\nsocket: {}\njournald: off\n\
                 collector:\n  url: {collector_url}\n  ca: {}\n  cert: {}\n  key: {}\n{extra}",
                root.display(),
                policies.display(),
                dir.path().join("state").display(),
                socket.display(),
                pki.ca().display(),
                pki.cert(name).display(),
                pki.key(name).display(),
            ),
        )
        .expect("write the agent configuration");
        let mut agent = Agent {
            name: name.to_string(),
            dir,
            root,
            socket,
            config,
            child: None,
        };
        agent.restart();
        agent
    }

    /// Starts `hardend run` (again) and waits until its API serves.
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("agent log");
        let child = Command::new(program("hardend"))
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .env_remove("NOTIFY_SOCKET")
            .env("HARDEND_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hardend run");
        self.child = Some(child);
        let runtime = hardend_daemon::client::runtime().expect("runtime");
        for _ in 0..300 {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
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

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }

    /// Writes the banner (`true`) or removes it (`false`) by replacing the file.
    pub fn set_banner(&self, present: bool) {
        let text = if present { BANNER } else { "Welcome\n" };
        let tmp = self.root.join("etc/.motd.tmp");
        std::fs::write(&tmp, text).expect("write motd");
        std::fs::rename(&tmp, self.root.join("etc/motd")).expect("rename motd");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The sequence numbers of the drift events this agent logged, in order.
    pub fn logged_drift_seqs(&self) -> Vec<u64> {
        self.log()
            .lines()
            .filter(|l| l.contains(" drift ") || l.ends_with(" drift"))
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("seq="))
                    .and_then(|n| n.parse().ok())
            })
            .collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `hardenctl` against the collector with the console certificate.
pub fn hardenctl(collector: &Collector, pki: &Pki) -> Command {
    let mut cmd = Command::new(program("hardenctl"));
    cmd.arg("--collector")
        .arg(collector.url())
        .arg("--ca")
        .arg(pki.ca())
        .arg("--cert")
        .arg(pki.cert("operator"))
        .arg("--key")
        .arg(pki.key("operator"));
    cmd
}

/// Runs `hardenctl --json ARGS` and parses what it printed.
pub fn hardenctl_json(collector: &Collector, pki: &Pki, args: &[&str]) -> serde_json::Value {
    let out = hardenctl(collector, pki)
        .arg("--json")
        .args(args)
        .output()
        .expect("run hardenctl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hardenctl {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The address a metrics endpoint logged that it listens on
/// (`metrics endpoint listening listen=ADDR`), if it did.
pub fn logged_metrics_addr(log: &str) -> Option<std::net::SocketAddr> {
    log.lines()
        .filter(|l| l.contains("metrics endpoint listening"))
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("listen="))
                .and_then(|a| a.parse().ok())
        })
}

/// The TCP ports a process listens on: its socket descriptors matched
/// against the kernel's tables of listening sockets.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    use std::collections::BTreeSet;
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list the process's descriptors")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut ports = BTreeSet::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is f[1] (ADDR:PORT in hex), st is f[3] (0A: LISTEN), inode f[9].
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                let port = f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok());
                ports.extend(port);
            }
        }
    }
    ports.into_iter().collect()
}
