//! `hardend run` start-up failures: an invalid configuration or policy stops
//! it with a non-zero exit and every error as `file:line:col: message`,
//! before it tells systemd it is ready.

use std::process::Command;
use std::time::Duration;

use hardend_tests::program;

fn run_until_exit(config: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new("timeout")
        .arg("20")
        .arg(program("hardend"))
        .args(["run", "--config"])
        .arg(config)
        .output()
        .expect("run hardend");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn every_configuration_error_is_printed_with_its_position_and_the_exit_is_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hardend.yaml");
    std::fs::write(
        &config,
        "root: relative/path\njournald: maybe\nwatch:\n  debounce_ms: soon\n  bogus: 1\n",
    )
    .expect("config");
    let (code, stderr) = run_until_exit(&config);
    assert_eq!(code, Some(1), "{stderr}");
    let shown = config.display().to_string();
    let positions: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&shown)).collect();
    assert!(positions.len() >= 4, "one line per error: {stderr}");
    for line in [
        format!("{shown}:1:"),
        format!("{shown}:2:"),
        format!("{shown}:4:"),
        format!("{shown}:5:"),
    ] {
        assert!(stderr.contains(&line), "no error at {line}: {stderr}");
    }
}

#[test]
fn an_invalid_policy_stops_the_start_with_its_position_and_no_readiness() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).expect("mkdir");
    let policy = policies.join("bad.yaml");
    std::fs::write(
        &policy,
        "policy:\n  id: bad\n  title: Bad\n  version: \"1\"\nrules:\n  - id: r\n    title: R\n    severity: urgent\n    check:\n      file_exists: /etc/passwd\n",
    )
    .expect("policy");
    let config = dir.path().join("hardend.yaml");
    std::fs::write(
        &config,
        format!(
            "root: {}\npolicies: [{}]\nstate_dir: {}\nsocket: {}\njournald: off\n",
            dir.path().display(),
            policies.display(),
            dir.path().join("state").display(),
            dir.path().join("hardend.sock").display()
        ),
    )
    .expect("config");
    let notify_path = dir.path().join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("bind");
    notify
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let out = Command::new("timeout")
        .arg("20")
        .arg(program("hardend"))
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        .output()
        .expect("run hardend");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:8:", policy.display())),
        "the severity's line: {stderr}"
    );
    let mut buf = [0u8; 1024];
    while let Ok(len) = notify.recv(&mut buf) {
        let msg = String::from_utf8_lossy(&buf[..len]);
        assert!(!msg.contains("READY=1"), "READY=1 before failing: {msg}");
    }
    assert!(!dir.path().join("hardend.sock").exists());
}
