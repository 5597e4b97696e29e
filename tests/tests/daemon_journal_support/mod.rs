//! A private, real journald for tests and benchmarks: the test process runs
//! itself again inside `unshare -m` (and `-n` when asked), and that child
//! mounts a tmpfs on `/run` (and on `/var/log/journal`, so nothing reaches the
//! host's journal), starts systemd-journald, and reads entries back with
//! `journalctl -o json`. The test process itself never changes namespaces.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// Set (to the name of the test to run) in the child that runs inside the
/// namespace.
pub const HELPER_ENV: &str = "HARDEND_JOURNAL_NAMESPACE_CHILD";

/// Where Debian installs journald.
pub const JOURNALD: &str = "/lib/systemd/systemd-journald";

/// The native-protocol socket journald creates.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// Whether this process is the child inside the namespace, running `name`.
pub fn in_child(name: &str) -> bool {
    std::env::var(HELPER_ENV).is_ok_and(|v| v == name)
}

/// Whether what the namespace tests need is here: root, unshare, mount,
/// journald and journalctl.
pub fn available() -> bool {
    hardend_tests::is_root()
        && hardend_tests::have_command("unshare")
        && hardend_tests::have_command("mount")
        && hardend_tests::have_command("journalctl")
        && Path::new(JOURNALD).exists()
}

/// Runs the test `name` of this test binary again inside a new mount
/// namespace (plus the extra `unshare` flags, such as `-n`), with
/// `HELPER_ENV=name`, and returns its output. Panics, showing the child's
/// output, when the child fails.
pub fn run_test_in_namespace(name: &str, extra_flags: &[&str]) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new("unshare")
        .arg("-m")
        .args(extra_flags)
        .arg("--")
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(HELPER_ENV, name)
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");
    assert!(
        out.status.success(),
        "the namespace child for {name} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs this (benchmark) binary again inside `unshare -m` plus `extra_flags`,
/// with `HELPER_ENV=name`, passing its output through.
pub fn run_binary_in_namespace(name: &str, extra_flags: &[&str]) {
    let exe = std::env::current_exe().expect("current_exe");
    let status = Command::new("unshare")
        .arg("-m")
        .args(extra_flags)
        .arg("--")
        .arg(exe)
        .env(HELPER_ENV, name)
        .stdin(Stdio::null())
        .status()
        .expect("run unshare");
    assert!(
        status.success(),
        "the namespace child {name} failed: {status}"
    );
}

/// Runs a program with separate arguments and panics, with its stderr, when
/// it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A journald running in this (private) mount namespace. Killed on drop.
pub struct Journald {
    child: Child,
}

impl Journald {
    /// Mounts the private `/run` (and `/var/log/journal`), starts journald and
    /// waits for its socket. Only call this inside the namespace child.
    pub fn start() -> Journald {
        assert!(
            std::env::var_os(HELPER_ENV).is_some(),
            "Journald::start outside a namespace child would touch the host"
        );
        run("mount", &["-t", "tmpfs", "tmpfs", "/run"]);
        if Path::new("/var/log/journal").is_dir() {
            run("mount", &["-t", "tmpfs", "tmpfs", "/var/log/journal"]);
        }
        std::fs::create_dir_all("/run/systemd/journal").expect("create /run/systemd/journal");
        let child = Command::new(JOURNALD)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start systemd-journald");
        let journald = Journald { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let probe = std::os::unix::net::UnixDatagram::unbound().expect("socket");
            if probe.connect(SOCKET).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "journald did not open {SOCKET} in 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        journald
    }

    /// The pid of journald.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The entries `journalctl -o json` gives for `matches` (for example
/// `SYSLOG_IDENTIFIER=hardend`), oldest first.
pub fn entries(matches: &[&str]) -> Vec<Map<String, Value>> {
    let mut args = vec!["-o", "json", "--all", "--no-pager"];
    args.extend_from_slice(matches);
    let out = Command::new("journalctl")
        .args(&args)
        .output()
        .expect("run journalctl");
    // journalctl exits 1 with "No entries" on some versions; only parse.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(m)) => m,
            other => panic!("journalctl printed a line that is not an object: {l}: {other:?}"),
        })
        .collect()
}

/// Waits (up to `timeout`) until `matches` give at least `count` entries, and
/// returns them; panics with what it saw when they do not come.
pub fn wait_for_entries(
    matches: &[&str],
    count: usize,
    timeout: Duration,
) -> Vec<Map<String, Value>> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = entries(matches);
        if got.len() >= count {
            return got;
        }
        if Instant::now() >= deadline {
            let messages: Vec<&str> = got
                .iter()
                .map(|e| e.get("MESSAGE").and_then(Value::as_str).unwrap_or("?"))
                .collect();
            panic!(
                "waited {timeout:?} for {count} entries matching {matches:?}, got {}: {messages:#?}",
                got.len()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A string field of a journal entry ("" when absent; journalctl prints
/// binary-unsafe values as byte arrays, which are decoded here).
pub fn field(entry: &Map<String, Value>, name: &str) -> String {
    match entry.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(bytes)) => {
            let bytes: Vec<u8> = bytes
                .iter()
                .map(|b| {
                    b.as_u64()
                        .and_then(|b| u8::try_from(b).ok())
                        .expect("a byte")
                })
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Some(other) => panic!("field {name} is {other}"),
        None => String::new(),
    }
}

/// The `hardend` program: `HARDEND_BIN` when set, else the one built next
/// to this test or benchmark.
pub fn hardend() -> PathBuf {
    match std::env::var_os("HARDEND_BIN") {
        Some(path) => PathBuf::from(path),
        None => hardend_tests::program("hardend"),
    }
}

/// A journal entry as `journalctl -o json` prints it, with the instant its
/// line arrived.
pub type Followed = (Instant, Map<String, Value>);

/// Follows `journalctl -f -o json` for `matches` in a thread, handing each
/// new entry with the instant its line arrived to the receiver.
pub fn follow(matches: &[&str]) -> (Child, std::sync::mpsc::Receiver<Followed>) {
    use std::io::BufRead;
    let mut child = Command::new("journalctl")
        .args(["-f", "-o", "json", "--no-pager", "-n", "0"])
        .args(matches)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run journalctl -f");
    let stdout = child.stdout.take().expect("journalctl stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let at = Instant::now();
            if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&line)
                && tx.send((at, m)).is_err()
            {
                break;
            }
        }
    });
    (child, rx)
}

/// A running `hardend run --config FILE`, stopped with SIGTERM (then killed)
/// on drop. Its stderr goes to a file, shown when something fails.
pub struct Daemon {
    child: Child,
    pub stderr_path: PathBuf,
}

impl Daemon {
    /// Starts `hardend run --config config` and waits (up to `timeout`) for
    /// its READY=1 on a private NOTIFY_SOCKET in `dir`.
    pub fn start(config: &Path, dir: &Path, timeout: Duration) -> Daemon {
        let notify_path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&notify_path);
        let notify =
            std::os::unix::net::UnixDatagram::bind(&notify_path).expect("bind NOTIFY_SOCKET");
        notify
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let stderr_path = dir.join("hardend.stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let child = Command::new(hardend())
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("HARDEND_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start hardend run");
        let mut daemon = Daemon { child, stderr_path };
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            if let Ok(n) = notify.recv(&mut buf)
                && String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .any(|l| l == "READY=1")
            {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "hardend run exited before READY=1 ({status}):\n{}",
                    daemon.stderr()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "hardend run sent no READY=1 in {timeout:?}:\n{}",
                    daemon.stderr()
                );
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Stops the daemon with SIGTERM and waits up to 10 s for it to exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        // SAFETY: kill has no memory preconditions; the pid is our own child,
        // not yet reaped, so it names that process.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}
