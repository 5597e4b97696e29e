//! Drift latency: from a change on the host to its entry in journald, for a
//! watched file and for a sysctl, as p50/p99 over N changes alternating
//! between failing and passing. Runs in a private mount and network namespace
//! (`unshare -m -n`) with its own journald, so the host is never touched.
//!
//! `cargo bench -p hardend-tests --bench drift_latency` (as root; needs the
//! `hardend` program built in the same profile, or `HARDEND_BIN`).
//! `HARDEND_BENCH_CHANGES` sets N (default 200 per source). Target: p99 <
//! 250 ms for both.

#[path = "../tests/daemon_journal_support/mod.rs"]
mod daemon_journal_support;

use std::io::Write;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use daemon_journal_support as ns;

const CHILD: &str = "drift_latency";
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

fn policies(file: &str) -> [(&'static str, String); 2] {
    [
        (
            "bench-file.yaml",
            format!(
                r#"policy:
  id: bench-file
  title: Latency bench, file
  version: "1"
rules:
  - id: app-not-insecure
    title: The app does not run in insecure mode
    severity: high
    check:
      file: {{ path: {file}, not_contains: '^mode = insecure' }}
"#
            ),
        ),
        (
            "bench-sysctl.yaml",
            r#"policy:
  id: bench-sysctl
  title: Latency bench, sysctl
  version: "1"
rules:
  - id: ip-forward-off
    title: IPv4 forwarding is off
    severity: high
    check:
      sysctl: { key: net.ipv4.ip_forward, equals: 0 }
"#
            .to_string(),
        ),
    ]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !ns::in_child(CHILD) {
        if !ns::available() {
            eprintln!("drift_latency needs root, unshare, mount, journalctl and systemd-journald");
            std::process::exit(1);
        }
        ns::run_binary_in_namespace(CHILD, &["-n"]);
        return;
    }
    let changes: usize = std::env::var("HARDEND_BENCH_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);

    let _journald = ns::Journald::start();
    // Inside the namespace, the daemon scans `/`: the file lives in a
    // temporary directory, and ip_forward is this namespace's own.
    let dir = tempfile::tempdir().expect("tempdir");
    let watched = dir.path().join("etc");
    std::fs::create_dir_all(&watched).expect("watched directory");
    let app = watched.join("app.conf");
    std::fs::write(&app, "mode = safe\n").expect("app.conf");
    std::fs::write(IP_FORWARD, "0\n").expect("ip_forward=0 in the namespace");
    let policy_dir = dir.path().join("policies");
    std::fs::create_dir_all(&policy_dir).expect("policies");
    for (name, text) in policies(app.to_str().expect("utf-8 path")) {
        std::fs::write(policy_dir.join(name), text).expect("policy");
    }
    let config = dir.path().join("hardend.yaml");
    std::fs::write(
        &config,
        format!(
            "root: /\npolicies: [{}]\nstate_dir: {}\nsocket: {}\njournald: on\n",
            policy_dir.display(),
            dir.path().join("state").display(),
            dir.path().join("hardend.sock").display()
        ),
    )
    .expect("config");

    let (mut follower, entries) = ns::follow(&["SYSLOG_IDENTIFIER=hardend"]);
    let daemon = ns::Daemon::start(&config, dir.path(), Duration::from_secs(60));
    // Anything the start raised is not part of the measurement.
    std::thread::sleep(Duration::from_millis(300));
    while entries.try_recv().is_ok() {}

    let file = measure(changes, &entries, "bench-file", &daemon, |fail| {
        let text = if fail {
            "mode = insecure\n"
        } else {
            "mode = safe\n"
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&app)
            .expect("open app.conf");
        f.write_all(text.as_bytes()).expect("write app.conf");
    });
    let sysctl = measure(changes, &entries, "bench-sysctl", &daemon, |fail| {
        // What `sysctl -w net.ipv4.ip_forward=1` does, without the fork.
        std::fs::write(IP_FORWARD, if fail { "1\n" } else { "0\n" }).expect("write ip_forward");
    });
    let _ = follower.kill();
    let _ = follower.wait();
    drop(daemon);

    println!(
        "drift latency, change -> journald entry (__REALTIME_TIMESTAMP), {changes} changes each:"
    );
    report("file (in-place write)", &file);
    report("sysctl (write to /proc/sys)", &sysctl);
    println!("target: p99 < 250 ms");
}

/// One source's latencies: from the journal's own receive time, from the
/// moment `journalctl -f` printed the entry, and the changes never seen.
struct Figures {
    journal_ms: Vec<f64>,
    follow_ms: Vec<f64>,
    missed: usize,
}

/// Makes `changes` changes through `change(fail)`, alternating fail and pass,
/// and waits after each for the entry of `policy`.
fn measure(
    changes: usize,
    entries: &Receiver<ns::Followed>,
    policy: &str,
    daemon: &ns::Daemon,
    change: impl Fn(bool),
) -> Figures {
    let mut figures = Figures {
        journal_ms: Vec::new(),
        follow_ms: Vec::new(),
        missed: 0,
    };
    for i in 0..changes {
        let fail = i % 2 == 0;
        let want = if fail { "fail" } else { "pass" };
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_micros();
        let start = Instant::now();
        change(fail);
        let deadline = start + Duration::from_secs(5);
        let mut seen = false;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok((at, entry)) = entries.recv_timeout(left) else {
                break;
            };
            if ns::field(&entry, "HARDEND_POLICY") != policy
                || ns::field(&entry, "HARDEND_STATUS") != want
            {
                continue;
            }
            let realtime: u128 = ns::field(&entry, "__REALTIME_TIMESTAMP")
                .parse()
                .expect("__REALTIME_TIMESTAMP");
            figures
                .journal_ms
                .push(realtime.saturating_sub(wall) as f64 / 1000.0);
            figures
                .follow_ms
                .push(at.duration_since(start).as_secs_f64() * 1000.0);
            seen = true;
            break;
        }
        if !seen {
            figures.missed += 1;
            eprintln!(
                "change {i} of {policy} ({want}) raised no entry in 5 s; daemon stderr:\n{}",
                daemon.stderr()
            );
        }
    }
    figures
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(what: &str, figures: &Figures) {
    let mut journal = figures.journal_ms.clone();
    let mut follow = figures.follow_ms.clone();
    journal.sort_by(f64::total_cmp);
    follow.sort_by(f64::total_cmp);
    println!(
        "  {what:<30} p50 {:7.1} ms  p99 {:7.1} ms  max {:7.1} ms  (printed by journalctl -f, which wakes in steps of about 0.5 s: p50 {:.0} ms, p99 {:.0} ms)  n={} missed={}",
        percentile(&journal, 50.0),
        percentile(&journal, 99.0),
        journal.last().copied().unwrap_or(f64::NAN),
        percentile(&follow, 50.0),
        percentile(&follow, 99.0),
        journal.len(),
        figures.missed
    );
}
