//! `hardend run` end to end with a real journald: in a private mount
//! namespace, the daemon watches a fixture root with a file policy; the
//! watched file is changed the three usual ways (in place, renamed over,
//! deleted and recreated), a broken policy is dropped in, and `journalctl -o
//! json` shows one entry per change, with its fields, in order.

mod daemon_journal_support;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use daemon_journal_support as ns;
use hardend_daemon::journal::message_id;
use hardend_tests::require;

const POLICY: &str = r#"policy:
  id: e2e-file
  title: End-to-end file policy
  version: "1"
rules:
  - id: app-not-insecure
    title: The app does not run in insecure mode
    severity: high
    check:
      file: { path: /etc/app.conf, not_contains: '^mode = insecure' }
"#;

const BROKEN_POLICY: &str = r#"policy:
  id: e2e-broken
  title: Broken
  version: "1"
rules:
  - id: r
    title: R
    severity: urgent
    check:
      file: { path: /etc/app.conf, exists: true }
"#;

/// Waits for the `count`-th hardend entry and returns all of them.
fn wait(count: usize, daemon: &ns::Daemon) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let got = ns::entries(&["SYSLOG_IDENTIFIER=hardend"]);
    if got.len() >= count {
        return got;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = ns::entries(&["SYSLOG_IDENTIFIER=hardend"]);
        if got.len() >= count {
            return got;
        }
        if std::time::Instant::now() >= deadline {
            let messages: Vec<String> = got.iter().map(|e| ns::field(e, "MESSAGE")).collect();
            panic!(
                "waited 10 s for entry {count}, have {messages:#?}\n--- daemon stderr\n{}",
                daemon.stderr()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write_in_place(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .expect("open in place");
    f.write_all(text.as_bytes()).expect("write in place");
}

#[test]
fn daemon_drift_reaches_the_journal_in_order() {
    const NAME: &str = "daemon_drift_reaches_the_journal_in_order";
    if !ns::in_child(NAME) {
        if !require("root, unshare and systemd-journald", ns::available()) {
            return;
        }
        ns::run_test_in_namespace(NAME, &[]);
        return;
    }

    let _journald = ns::Journald::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(root.join("etc")).expect("root");
    std::fs::create_dir_all(&policies).expect("policies");
    let app = root.join("etc/app.conf");
    std::fs::write(&app, "mode = safe\n").expect("app.conf");
    std::fs::write(policies.join("e2e.yaml"), POLICY).expect("policy");
    let config = dir.path().join("hardend.yaml");
    let yaml = format!(
        "root: {root}\npolicies: [{policies}]\nstate_dir: {state}\nsocket: {socket}\njournald: on\n",
        root = root.display(),
        policies = policies.display(),
        state = dir.path().join("state").display(),
        socket = dir.path().join("hardend.sock").display(),
    );
    std::fs::write(&config, yaml).expect("config");
    let daemon = ns::Daemon::start(&config, dir.path(), Duration::from_secs(30));
    assert!(
        ns::entries(&["SYSLOG_IDENTIFIER=hardend"]).is_empty(),
        "a passing rule raises no alert at start"
    );

    // 1. In place: the same inode, truncated and rewritten.
    write_in_place(&app, "mode = insecure\n");
    wait(1, &daemon);
    // 2. Renamed over, as editors save.
    let tmp = root.join("etc/.app.conf.swp");
    std::fs::write(&tmp, "mode = safe\n").expect("temp file");
    std::fs::rename(&tmp, &app).expect("rename over");
    wait(2, &daemon);
    // 3. Deleted and recreated, the weakness now on line 2.
    std::fs::remove_file(&app).expect("delete");
    std::fs::write(&app, "# recreated\nmode = insecure\n").expect("recreate");
    wait(3, &daemon);
    // 4. A broken policy is refused with its position; the old one stays.
    std::fs::write(policies.join("zz-broken.yaml"), BROKEN_POLICY).expect("broken policy");
    wait(4, &daemon);
    write_in_place(&app, "mode = safe\n");
    let got = wait(5, &daemon);
    // Nothing more arrives.
    std::thread::sleep(Duration::from_millis(500));
    let got_later = ns::entries(&["SYSLOG_IDENTIFIER=hardend"]);
    assert_eq!(got_later.len(), got.len(), "no extra entries");

    let pid = daemon.pid().to_string();
    let kinds: Vec<String> = got.iter().map(|e| ns::field(e, "HARDEND_KIND")).collect();
    assert_eq!(
        kinds,
        [
            "failing",
            "passing",
            "failing",
            "policy_rejected",
            "passing"
        ]
    );
    let ids: Vec<String> = got.iter().map(|e| ns::field(e, "MESSAGE_ID")).collect();
    assert_eq!(
        ids,
        [
            message_id::FAILING,
            message_id::PASSING,
            message_id::FAILING,
            message_id::POLICY_REJECTED,
            message_id::PASSING
        ]
    );
    let priorities: Vec<String> = got.iter().map(|e| ns::field(e, "PRIORITY")).collect();
    assert_eq!(priorities, ["3", "6", "3", "3", "6"]);
    for e in &got {
        assert_eq!(ns::field(e, "_PID"), pid, "written by the daemon");
        assert_eq!(ns::field(e, "_TRANSPORT"), "journal");
    }
    let drift: Vec<_> = got
        .iter()
        .filter(|e| ns::field(e, "HARDEND_KIND") != "policy_rejected")
        .collect();
    let transitions: Vec<String> = drift
        .iter()
        .map(|e| {
            format!(
                "{} -> {}",
                ns::field(e, "HARDEND_PREVIOUS"),
                ns::field(e, "HARDEND_STATUS")
            )
        })
        .collect();
    assert_eq!(
        transitions,
        [
            "pass -> fail",
            "fail -> pass",
            "pass -> fail",
            "fail -> pass"
        ]
    );
    let seqs: Vec<u64> = drift
        .iter()
        .map(|e| {
            ns::field(e, "HARDEND_SEQ")
                .parse()
                .expect("HARDEND_SEQ is a number")
        })
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequence numbers increase: {seqs:?}"
    );
    for e in &drift {
        assert_eq!(ns::field(e, "HARDEND_POLICY"), "e2e-file");
        assert_eq!(ns::field(e, "HARDEND_RULE"), "app-not-insecure");
        assert_eq!(ns::field(e, "HARDEND_SEVERITY"), "high");
        assert_eq!(
            ns::field(e, "HARDEND_TITLE"),
            "The app does not run in insecure mode"
        );
        assert!(!ns::field(e, "HARDEND_EXPECTED").is_empty());
    }
    let evidence0 = ns::field(drift[0], "HARDEND_EVIDENCE");
    assert!(
        evidence0.contains("/etc/app.conf:1: mode = insecure"),
        "{evidence0}"
    );
    let evidence2 = ns::field(drift[2], "HARDEND_EVIDENCE");
    assert!(
        evidence2.contains("/etc/app.conf:2: mode = insecure"),
        "{evidence2}"
    );
    let message = ns::field(drift[0], "MESSAGE");
    assert!(
        message.starts_with(
            "hardening drift: e2e-file/app-not-insecure pass -> fail: The app does not run in insecure mode"
        ),
        "{message}"
    );
    let error = ns::field(&got[3], "HARDEND_ERROR");
    assert!(
        error.contains("zz-broken.yaml:8:15: unknown severity `urgent`"),
        "the error names file, line and column: {error}"
    );
}
