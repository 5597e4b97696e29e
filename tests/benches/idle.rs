//! The idle daemon: `hardend run` with the shipped policies on `/`, inside a
//! private mount and network namespace (`unshare -m -n`; state and socket in
//! a temporary directory, journald off), left alone after it settles. Samples
//! VmRSS from `/proc/PID/status` every second and utime+stime from
//! `/proc/PID/stat` at both ends, and prints RSS and CPU as a percentage of
//! one core.
//!
//! `cargo bench -p hardend-tests --bench idle` (as root; needs the `hardend`
//! program built in the same profile, or `HARDEND_BIN`).
//! `HARDEND_IDLE_SECS` sets the sampling time (default 60),
//! `HARDEND_IDLE_SETTLE_SECS` the settling time (default 5). Targets: RSS <
//! 15 MB, CPU < 0.2 %. `HARDEND_IDLE_METRICS=1` turns the Prometheus
//! endpoint on (on the namespace's loopback, scraped once every 15 s, as
//! Prometheus would) to measure what it costs.

#[path = "../tests/daemon_journal_support/mod.rs"]
mod daemon_journal_support;

use std::time::{Duration, Instant};

use daemon_journal_support as ns;

const CHILD: &str = "idle";

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !ns::in_child(CHILD) {
        if !(hardend_tests::is_root() && hardend_tests::have_command("unshare")) {
            eprintln!("idle needs root and unshare");
            std::process::exit(1);
        }
        ns::run_binary_in_namespace(CHILD, &["-n"]);
        return;
    }
    let settle = Duration::from_secs(env_secs("HARDEND_IDLE_SETTLE_SECS", 5));
    let window = Duration::from_secs(env_secs("HARDEND_IDLE_SECS", 60));

    let metrics = std::env::var_os("HARDEND_IDLE_METRICS").is_some_and(|v| v == "1");
    let metrics_port = metrics.then(|| {
        // A fresh network namespace's loopback is down.
        let up = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("run ip");
        assert!(up.success(), "ip link set lo up: {up}");
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hardend.yaml");
    std::fs::write(
        &config,
        format!(
            "root: /\npolicies: [{}]\nstate_dir: {}\nsocket: {}\njournald: off\n{}",
            hardend_tests::shipped_policies().display(),
            dir.path().join("state").display(),
            dir.path().join("hardend.sock").display(),
            metrics_port
                .map(|p| format!("metrics: {{ listen: 127.0.0.1:{p} }}\n"))
                .unwrap_or_default()
        ),
    )
    .expect("config");
    let daemon = ns::Daemon::start(&config, dir.path(), Duration::from_secs(60));
    let pid = daemon.pid();
    std::thread::sleep(settle);
    let scrape = |port: u16| {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("request");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        answer.len()
    };
    let mut scraped_bytes = metrics_port.map(scrape);
    let mut last_scrape = Instant::now();

    let ticks_per_sec = clock_ticks();
    let (own0, children0) = cpu_ticks(pid);
    let start = Instant::now();
    let mut rss_kb = Vec::new();
    while start.elapsed() < window {
        if let Some(port) = metrics_port
            && last_scrape.elapsed() >= Duration::from_secs(15)
        {
            scraped_bytes = Some(scrape(port));
            last_scrape = Instant::now();
        }
        rss_kb.push(vm_rss_kb(pid));
        std::thread::sleep(Duration::from_secs(1).min(window.saturating_sub(start.elapsed())));
    }
    let (own1, children1) = cpu_ticks(pid);
    let elapsed = start.elapsed().as_secs_f64();
    rss_kb.push(vm_rss_kb(pid));
    drop(daemon);

    let cpu = |ticks: u64| ticks as f64 / ticks_per_sec / elapsed * 100.0;
    let max = rss_kb.iter().copied().max().unwrap_or(0);
    let last = rss_kb.last().copied().unwrap_or(0);
    println!(
        "idle hardend run (shipped policies, root /, journald off{}), {elapsed:.0} s after {} s settling:",
        match scraped_bytes {
            Some(bytes) => format!(", metrics on, scraped every 15 s: {bytes} bytes"),
            None => String::new(),
        },
        settle.as_secs()
    );
    println!(
        "  RSS   max {:.1} MB, last {:.1} MB   (target < 15 MB)",
        max as f64 / 1024.0,
        last as f64 / 1024.0
    );
    println!(
        "  CPU   {:.3} % of one core (the daemon's own utime+stime; target < 0.2 %)",
        cpu(own1.saturating_sub(own0))
    );
    println!(
        "        {:.3} % with the programs it ran and waited for (cutime+cstime)",
        cpu(own1.saturating_sub(own0) + children1.saturating_sub(children0))
    );
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// (utime + stime, cutime + cstime) of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // The command name is in parentheses and may hold spaces: the fields
    // after it start at field 3.
    let rest = &stat[stat.rfind(')').expect("comm field") + 2..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // utime is field 14 of the whole line, i.e. index 11 of `rest`.
    (fields[11] + fields[12], fields[13] + fields[14])
}

fn vm_rss_kb(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}
