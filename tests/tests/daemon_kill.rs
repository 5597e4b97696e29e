//! `hardend run` killed with SIGKILL and restarted on the same state: the
//! second run alerts exactly what changed while it was down, repeats nothing
//! it had alerted, and continues the sequence numbers. Alerts go to stderr
//! (`journald: off`); root, policies, state and socket live in a tempdir.

mod daemon_support;

use std::process::Command;
use std::time::Duration;

use daemon_support::{DaemonProcess, seq_kind_rule, wait_persisted};
use hardend_tests::program;

const POLICY: &str = r#"
policy:
  id: kill-test
  title: Kill test policy
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

const START: Duration = Duration::from_secs(20);
const ALERT: Duration = Duration::from_secs(5);

fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn kill_9_then_restart_alerts_only_the_drift_made_while_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let policies = dir.path().join("policies");
    let state = dir.path().join("state");
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    std::fs::create_dir_all(root.join("proc/sys/net/ipv4")).expect("mkdir");
    std::fs::create_dir_all(&policies).expect("mkdir");
    std::fs::write(policies.join("kill.yaml"), POLICY).expect("policy");
    std::fs::write(root.join("etc/motd"), "Authorized use only\n").expect("motd");
    std::fs::write(root.join("etc/shadow"), "root:*:19000::::::\n").expect("shadow");
    chmod(&root.join("etc/shadow"), 0o640);
    std::fs::write(root.join("proc/sys/net/ipv4/ip_forward"), "0\n").expect("sysctl");
    let config = dir.path().join("hardend.yaml");
    std::fs::write(
        &config,
        format!(
            "root: {}\npolicies: [{}]\nstate_dir: {}\nsocket: {}\njournald: off\nwatch: {{ debounce_ms: 20 }}\n",
            root.display(),
            policies.display(),
            state.display(),
            dir.path().join("run/hardend.sock").display()
        ),
    )
    .expect("config");
    let run = || {
        let mut cmd = Command::new(program("hardend"));
        cmd.arg("run").arg("--config").arg(&config);
        cmd
    };

    // First run: a passing root alerts nothing; then the banner drifts.
    let mut first = DaemonProcess::spawn(run(), dir.path(), "first");
    first.wait_notify("READY=1", START);
    assert!(first.drift().is_empty(), "{:?}", first.lines());
    std::fs::write(root.join("etc/motd"), "welcome\n").expect("motd");
    let alerts = first.wait_drift(1, ALERT);
    assert_eq!(
        seq_kind_rule(&alerts),
        vec![(1, "failing".to_string(), "motd-banner".to_string())]
    );
    // The alert is persisted right after it is written; wait for that, then
    // kill without warning.
    wait_persisted(&state, 2, ALERT);
    first.kill9();

    // While down: two new drifts; the banner keeps failing (old drift).
    chmod(&root.join("etc/shadow"), 0o644);
    std::fs::write(root.join("proc/sys/net/ipv4/ip_forward"), "1\n").expect("sysctl");

    // The second run also has a systemd watchdog, which it must feed.
    let mut with_watchdog = run();
    with_watchdog.env("WATCHDOG_USEC", "400000");
    let mut second = DaemonProcess::spawn(with_watchdog, dir.path(), "second");
    second.wait_notify("READY=1", START);
    let alerts = second.wait_drift(2, ALERT);
    // Give a stray duplicate the chance to show up before judging.
    std::thread::sleep(Duration::from_millis(500));
    let alerts_now = second.drift();
    assert_eq!(alerts.len(), alerts_now.len(), "{alerts_now:#?}");
    assert_eq!(
        seq_kind_rule(&alerts_now),
        vec![
            (2, "failing".to_string(), "shadow-mode".to_string()),
            (3, "failing".to_string(), "ip-forward-off".to_string()),
        ]
    );
    assert_eq!(alerts_now[0]["HARDEND_PREVIOUS"], "pass");
    assert_eq!(alerts_now[1]["HARDEND_ACTUAL"], "1");

    // And it keeps watching: fixing the banner is "back to passing".
    std::fs::write(root.join("etc/motd"), "Authorized use only\n").expect("motd");
    let alerts = second.wait_drift(3, ALERT);
    assert_eq!(
        seq_kind_rule(&alerts[2..]),
        vec![(4, "passing".to_string(), "motd-banner".to_string())]
    );

    second.wait_notify("WATCHDOG=1", Duration::from_secs(2));
    // SIGHUP reloads, as systemd's reload protocol expects.
    second.signal(libc::SIGHUP);
    second.wait_notify("RELOADING=1", ALERT);
    second.wait_notify("READY=1", ALERT);
    assert_eq!(second.drift().len(), 3, "a reload repeats nothing");

    // SIGTERM is a clean stop: exit 0, STOPPING=1, the socket removed.
    let status = second.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    second.wait_notify("STOPPING=1", Duration::from_secs(1));
    assert!(
        !dir.path().join("run/hardend.sock").exists(),
        "the socket is removed at stop"
    );
    let lines = second.lines();
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("ERROR") || l.contains("panicked")),
        "{lines:#?}"
    );
}
