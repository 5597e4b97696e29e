//! `hardend status`, `report` and `watch` against a local API server: the
//! report prints exactly as `hardend check` prints the same results, status
//! in text and JSON, drift streamed live one line per event, and a clear
//! exit-2 error when no daemon listens.

mod daemon_api_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use daemon_api_support::{RealDaemon, Server};
use hardend::output;
use hardend_daemon::{DriftEvent, DriftKind};
use hardend_engine::Status;
use hardend_policy::Severity;
use hardend_tests::program;

fn hardend(args: &[&str]) -> std::process::Output {
    Command::new(program("hardend"))
        .args(args)
        .env_remove("HARDEND_SOCKET")
        .env("NO_COLOR", "1")
        .output()
        .expect("run hardend")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

#[test]
fn report_prints_exactly_what_check_prints() {
    let server = Server::start();
    let socket = server.socket.to_str().expect("utf-8 path");
    let expected = [
        ("table", output::render_table(&server.report, false)),
        (
            "json",
            output::render_json(&server.report).expect("render json"),
        ),
        ("junit", output::render_junit(&server.report)),
    ];
    for (format, want) in expected {
        let out = hardend(&["report", "--socket", socket, "--format", format]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), want, "--format {format}");
    }
    // And the JSON is the hardend.report/v1 document with the fixture's failures.
    let out = hardend(&["report", "--socket", socket, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["schema"], "hardend.report/v1");
    assert!(
        doc["summary"]["fail"].as_u64().expect("fail count") > 0,
        "the fixture has failing rules"
    );
}

#[test]
fn status_prints_text_and_json() {
    let server = Server::start();
    let socket = server.socket.to_str().expect("utf-8 path");
    let out = hardend(&["status", "--socket", socket]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let summary = server.report.summary;
    assert!(
        shown.starts_with(&format!(
            "hardend {} on {} (root {})\n",
            env!("CARGO_PKG_VERSION"),
            server.report.host.hostname,
            server.report.host.root
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "rules              {} total: {} pass, {} fail,",
            summary.total, summary.pass, summary.fail
        )),
        "{shown}"
    );

    let out = hardend(&["status", "--socket", socket, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["hostname"], server.report.host.hostname.as_str());
    assert_eq!(doc["last_full_scan_at"], "2026-11-22T01:00:00Z");
    assert_eq!(doc["summary"]["total"], summary.total);
    assert_eq!(doc["summary"]["fail"], summary.fail);
    assert_eq!(
        doc["policies"][0]["id"],
        server.report.policies[0].id.as_str()
    );
}

fn event(
    seq: u64,
    severity: Severity,
    kind: DriftKind,
    report: &hardend_engine::Report,
) -> DriftEvent {
    let mut result = report.results[0].clone();
    result.severity = severity;
    result.rule = format!("rule-{seq}");
    result.status = if kind == DriftKind::Passing {
        Status::Pass
    } else {
        Status::Fail
    };
    result.actual = Some(format!("value {seq}"));
    DriftEvent {
        seq,
        at: jiff::Timestamp::from_second(1_795_000_000).expect("timestamp"),
        kind,
        previous: Some(if kind == DriftKind::Passing {
            Status::Fail
        } else {
            Status::Pass
        }),
        result,
    }
}

/// Runs `hardend watch ARGS`, sends events, and returns the lines it printed
/// once it printed `want` lines; then interrupts it like Ctrl-C and checks
/// that it exits 0.
fn watch_lines(server: &Server, args: &[&str], want: usize) -> Vec<String> {
    let mut cmd = Command::new(program("hardend"));
    cmd.arg("watch")
        .args(["--socket", server.socket.to_str().expect("utf-8 path")])
        .args(args);
    let mut watch = hardend_tests::Lines::spawn(cmd);
    let rx = &watch.lines;
    server.wait_for_watchers(1);
    for (seq, severity, kind) in [
        (1, Severity::Low, DriftKind::Failing),
        (2, Severity::Critical, DriftKind::Failing),
        (3, Severity::High, DriftKind::Overdue),
        (4, Severity::Critical, DriftKind::Passing),
    ] {
        server
            .drift
            .send(std::sync::Arc::new(event(
                seq,
                severity,
                kind,
                &server.report,
            )))
            .expect("the watcher subscribed");
    }
    let mut lines = Vec::new();
    while lines.len() < want {
        lines.push(
            rx.recv_timeout(Duration::from_secs(10))
                .expect("a line within 10 s, before the watcher is stopped"),
        );
    }
    // SAFETY: signalling our own child process by its id.
    unsafe {
        libc::kill(i32::try_from(watch.child.id()).expect("pid"), libc::SIGINT);
    }
    let status = watch.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "Ctrl-C ends the watch with 0");
    assert!(
        watch.lines.recv_timeout(Duration::from_secs(5)).is_err(),
        "no more lines than the filter lets through"
    );
    lines
}

#[test]
fn watch_prints_each_event_as_it_arrives() {
    let server = Server::start();
    let lines = watch_lines(&server, &["--min-severity", "high"], 3);
    let host = &server.report.host.hostname;
    let policy = &server.report.results[0].policy;
    assert!(
        lines[0].contains(&format!(
            " {host} FAILING critical {policy}/rule-2 pass -> fail: "
        )),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("(actual: value 2"), "{}", lines[0]);
    assert!(lines[1].contains(" OVERDUE high "), "{}", lines[1]);
    assert!(lines[2].contains(" PASSING critical "), "{}", lines[2]);
    assert!(lines[2].contains("fail -> pass"), "{}", lines[2]);
}

#[test]
fn watch_json_prints_one_object_per_line() {
    let server = Server::start();
    let lines = watch_lines(&server, &["--json"], 4);
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| {
            let doc: serde_json::Value = serde_json::from_str(l).expect("one JSON object per line");
            assert_eq!(doc["hostname"], server.report.host.hostname.as_str());
            doc["seq"].as_u64().expect("seq")
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let last: serde_json::Value = serde_json::from_str(&lines[3]).expect("json");
    assert_eq!(last["kind"], "passing");
    assert_eq!(last["result"]["status"], "pass");
}

#[test]
fn without_a_daemon_each_command_says_so_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("hardend.sock");
    let socket = socket.to_str().expect("utf-8 path");
    for command in ["status", "report", "watch"] {
        let out = hardend(&[command, "--socket", socket]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with(&format!(
                "hardend: cannot reach the hardend daemon at {socket}: "
            )),
            "{command}: {err}"
        );
        assert!(
            err.trim_end().ends_with("(is `hardend run` running?)"),
            "{command}: {err}"
        );
        assert!(out.stdout.is_empty(), "{command}");
    }
}

#[test]
fn the_socket_comes_from_the_configuration() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hardend.yaml");
    std::fs::write(
        &config,
        format!("socket: {}\n", server.socket.to_str().expect("utf-8 path")),
    )
    .expect("write config");
    let out = hardend(&[
        "status",
        "--config",
        config.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A bad configuration is reported as check reports it, with exit 2.
    std::fs::write(&config, "socket: [not, a, path]\n").expect("write config");
    let out = hardend(&["status", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("hardend.yaml:1:"),
        "{}",
        text(&out.stderr)
    );
}

/// The `results` and `summary` of a hardend.report/v1 document (the rest
/// names the run: its start and duration).
fn verdicts(json: &[u8]) -> (serde_json::Value, serde_json::Value) {
    let doc: serde_json::Value = serde_json::from_slice(json).expect("a JSON report");
    (doc["results"].clone(), doc["summary"].clone())
}

#[test]
fn the_real_daemon_reports_what_check_finds_and_streams_a_file_change() {
    let daemon = RealDaemon::start();
    let socket = daemon.socket.to_str().expect("utf-8 path");
    let root = daemon.root.to_str().expect("utf-8 path");
    let policies = hardend_tests::shipped_policies();
    let policies = policies.to_str().expect("utf-8 path");

    let served = hardend(&["report", "--socket", socket, "--format", "json"]);
    assert_eq!(served.status.code(), Some(0), "{}", text(&served.stderr));
    let checked = hardend(&[
        "check", "--root", root, "--policy", policies, "--format", "json",
    ]);
    assert_eq!(verdicts(&served.stdout), verdicts(&checked.stdout));

    // --evaluate has the daemon scan again: same verdicts, a later start.
    let started = |json: &[u8]| -> jiff::Timestamp {
        let doc: serde_json::Value = serde_json::from_slice(json).expect("a JSON report");
        doc["started_at"]
            .as_str()
            .expect("started_at")
            .parse()
            .expect("RFC 3339")
    };
    let fresh = hardend(&[
        "report",
        "--socket",
        socket,
        "--format",
        "json",
        "--evaluate",
    ]);
    assert_eq!(fresh.status.code(), Some(0), "{}", text(&fresh.stderr));
    assert_eq!(verdicts(&fresh.stdout), verdicts(&checked.stdout));
    assert!(started(&fresh.stdout) > started(&served.stdout));

    // `watch` sees sshd_config weakened and restored. The first change may
    // land before the stream is subscribed, so it is repeated until seen.
    let mut child = Command::new(program("hardend"))
        .args([
            "watch",
            "--socket",
            socket,
            "--json",
            "--min-severity",
            "critical",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hardend watch");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let config = daemon.root.join("etc/ssh/sshd_config");
    let original = std::fs::read_to_string(&config).expect("read sshd_config");
    let weakened = format!("PermitEmptyPasswords yes\n{original}");
    let rule = "ssh-empty-passwords-disabled";
    let wait_for = |kind: &str, within: Duration| -> Option<serde_json::Value> {
        let deadline = std::time::Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            let Ok(line) = rx.recv_timeout(left) else {
                break;
            };
            let event: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
            if event["result"]["rule"] == rule && event["kind"] == kind {
                return Some(event);
            }
        }
        None
    };
    let mut failing = None;
    for _ in 0..10 {
        std::fs::write(&config, &weakened).expect("weaken sshd_config");
        failing = wait_for("failing", Duration::from_secs(2));
        if failing.is_some() {
            break;
        }
        std::fs::write(&config, &original).expect("restore sshd_config");
        std::thread::sleep(Duration::from_millis(500));
    }
    let failing = failing.unwrap_or_else(|| panic!("no drift seen; daemon log:\n{}", daemon.log()));
    assert_eq!(failing["previous"], "pass");
    assert_eq!(failing["result"]["actual"], "yes");
    assert_eq!(failing["result"]["severity"], "critical");
    std::fs::write(&config, &original).expect("restore sshd_config");
    let passing = wait_for("passing", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no return to passing; daemon log:\n{}", daemon.log()));
    assert!(
        passing["seq"].as_u64() > failing["seq"].as_u64(),
        "{failing} then {passing}"
    );
    // SAFETY: signalling our own child process by its id.
    unsafe {
        libc::kill(i32::try_from(child.id()).expect("pid"), libc::SIGINT);
    }
    assert_eq!(child.wait().expect("wait").code(), Some(0));
}
