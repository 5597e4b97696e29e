//! Alerts in a real journald: inside a private mount namespace with its own
//! `/run`, a systemd-journald receives what the daemon's journal sink writes,
//! and `journalctl` reads back every field, the priorities, the filters an
//! operator uses, multi-line evidence, the catalog text of `journalctl -x`,
//! and the order of the entries.

mod daemon_journal_support;

use std::time::Duration;

use daemon_journal_support as ns;
use hardend_daemon::journal::{self, Entry, JournalSink, message_id};
use hardend_daemon::{DriftEvent, DriftKind};
use hardend_engine::{RuleResult, Status};
use hardend_facts::Evidence;
use hardend_policy::Severity;
use hardend_policy::config::JournaldMode;
use hardend_tests::require;

fn result(rule: &str, severity: Severity, status: Status, actual: Option<&str>) -> RuleResult {
    RuleResult {
        policy: "linux-baseline-ssh".into(),
        rule: rule.into(),
        title: format!("Rule {rule} holds"),
        severity,
        status,
        waived_status: None,
        expected: Some("passwordauthentication = no".into()),
        actual: actual.map(str::to_string),
        evidence: vec![
            Evidence {
                path: "/etc/ssh/sshd_config".into(),
                line: Some(57),
                text: Some("PasswordAuthentication yes".into()),
            },
            Evidence {
                path: "/etc/ssh/sshd_config.d/10 \"odd\" name=ü.conf".into(),
                line: Some(3),
                text: Some("Match User alice # tab\there".into()),
            },
            Evidence {
                path: "/etc/ssh/sshd_config.d".into(),
                line: None,
                text: None,
            },
        ],
        message: None,
    }
}

fn event(seq: u64, kind: DriftKind, previous: Option<Status>, result: RuleResult) -> DriftEvent {
    DriftEvent {
        seq,
        at: jiff::Timestamp::now(),
        kind,
        previous,
        result,
    }
}

/// Bind-mounts a directory holding only hardend's catalog over
/// `/usr/lib/systemd/catalog`, with a private `/var/lib/systemd/catalog`,
/// and builds the catalog database (inside the namespace only).
fn install_catalog() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        hardend_tests::repo_root().join("packaging/hardend.catalog"),
        dir.path().join("hardend.catalog"),
    )
    .expect("copy the catalog");
    std::fs::create_dir_all("/var/lib/systemd/catalog").expect("catalog directory");
    ns::run(
        "mount",
        &["-t", "tmpfs", "tmpfs", "/var/lib/systemd/catalog"],
    );
    let source = dir.path().to_str().expect("utf-8 tempdir");
    ns::run("mount", &["--bind", source, "/usr/lib/systemd/catalog"]);
    ns::run("journalctl", &["--update-catalog"]);
    // The bind mount keeps the directory's contents alive in the namespace.
    std::mem::forget(dir);
}

#[test]
fn journald_receives_every_kind_of_alert() {
    const NAME: &str = "journald_receives_every_kind_of_alert";
    if !ns::in_child(NAME) {
        if !require("root, unshare and systemd-journald", ns::available()) {
            return;
        }
        let out = ns::run_test_in_namespace(NAME, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("journald is unavailable"),
            "an alert fell back to stderr:\n{stderr}"
        );
        return;
    }

    let _journald = ns::Journald::start();
    install_catalog();

    let events = [
        event(
            1,
            DriftKind::Failing,
            Some(Status::Pass),
            result("crit", Severity::Critical, Status::Fail, Some("yes")),
        ),
        event(
            2,
            DriftKind::Failing,
            None,
            result("high", Severity::High, Status::Fail, Some("yes")),
        ),
        event(
            3,
            DriftKind::Failing,
            Some(Status::NotApplicable),
            result("medium", Severity::Medium, Status::Fail, Some("")),
        ),
        event(
            4,
            DriftKind::Failing,
            Some(Status::Fail),
            result("low", Severity::Low, Status::Fail, Some("maybe")),
        ),
        {
            let mut r = result("unreadable", Severity::Low, Status::Error, None);
            r.message = Some("cannot read /etc/ssh/sshd_config: permission denied".into());
            event(5, DriftKind::Error, Some(Status::Pass), r)
        },
        event(
            6,
            DriftKind::Passing,
            Some(Status::Fail),
            result("crit", Severity::Critical, Status::Pass, Some("no")),
        ),
        event(
            7,
            DriftKind::Overdue,
            Some(Status::Fail),
            result("crit2", Severity::Critical, Status::Fail, Some("yes")),
        ),
        event(
            8,
            DriftKind::Passing,
            Some(Status::Fail),
            result("waived", Severity::High, Status::Waived, Some("yes")),
        ),
    ];
    let rejected = [
        "/etc/hardend/policies.d/broken.yaml:4:3: unknown key `rulez`".to_string(),
        "/etc/hardend/policies.d/other.yaml:12:9: unknown severity `urgent`".to_string(),
    ];

    // What an operator gets: the configured sink, `journald: on`.
    let mut sink = journal::sink(JournaldMode::On);
    for e in &events[..7] {
        sink.drift(e);
    }
    sink.policy_errors(&rejected);
    // `auto` finds this journald too.
    let mut auto = journal::sink(JournaldMode::Auto);
    auto.drift(&events[7]);
    // An entry larger than the socket's send buffer goes through a memfd.
    let mut big = result("big", Severity::Medium, Status::Fail, Some("yes"));
    big.evidence = (0..60)
        .map(|i| Evidence {
            path: "/etc/big.conf".into(),
            line: Some(i + 1),
            text: Some(format!("{i} {}", "y".repeat(200))),
        })
        .collect();
    let big = event(9, DriftKind::Failing, Some(Status::Pass), big);
    let mut small = JournalSink::connect(ns::SOCKET).expect("connect to journald");
    small.set_send_buffer(2048).expect("small send buffer");
    let big_entry = Entry::drift(&big);
    assert!(journal::encode_native(&big_entry.fields).len() > 12_000);
    small
        .send(&big_entry)
        .expect("send a large entry through a memfd");

    let mut expected: Vec<Entry> = events[..7].iter().map(Entry::drift).collect();
    expected.extend(rejected.iter().map(|e| Entry::policy_rejected(e)));
    expected.push(Entry::drift(&events[7]));
    expected.push(big_entry);

    let got = ns::wait_for_entries(
        &["SYSLOG_IDENTIFIER=hardend"],
        expected.len(),
        Duration::from_secs(10),
    );
    assert_eq!(got.len(), expected.len(), "one journal entry per alert");
    for (i, (want, entry)) in expected.iter().zip(&got).enumerate() {
        for (name, value) in &want.fields {
            assert_eq!(
                &ns::field(entry, name),
                value,
                "entry {i} ({}), field {name}",
                want.get("MESSAGE").unwrap_or("")
            );
        }
        assert_eq!(ns::field(entry, "_TRANSPORT"), "journal");
    }

    // Multi-line evidence arrives whole, line by line.
    assert_eq!(
        ns::field(&got[0], "HARDEND_EVIDENCE"),
        "/etc/ssh/sshd_config:57: PasswordAuthentication yes\n\
         /etc/ssh/sshd_config.d/10 \"odd\" name=ü.conf:3: Match User alice # tab here\n\
         /etc/ssh/sshd_config.d"
    );
    assert_eq!(ns::field(&got[10], "HARDEND_EVIDENCE").lines().count(), 60);
    // The order is the order of the events.
    let seqs: Vec<String> = got.iter().map(|e| ns::field(e, "HARDEND_SEQ")).collect();
    assert_eq!(seqs, ["1", "2", "3", "4", "5", "6", "7", "", "", "8", "9"]);
    let priorities: Vec<String> = got.iter().map(|e| ns::field(e, "PRIORITY")).collect();
    assert_eq!(
        priorities,
        ["2", "3", "4", "5", "3", "6", "2", "3", "3", "6", "4"]
    );
    let ids: Vec<String> = got.iter().map(|e| ns::field(e, "MESSAGE_ID")).collect();
    assert_eq!(
        ids,
        [
            message_id::FAILING,
            message_id::FAILING,
            message_id::FAILING,
            message_id::FAILING,
            message_id::ERROR,
            message_id::PASSING,
            message_id::OVERDUE,
            message_id::POLICY_REJECTED,
            message_id::POLICY_REJECTED,
            message_id::PASSING,
            message_id::FAILING,
        ]
    );

    // The filters of the issue: by severity, and by priority and identifier.
    let critical = ns::entries(&["HARDEND_SEVERITY=critical"]);
    let rules: Vec<String> = critical
        .iter()
        .map(|e| ns::field(e, "HARDEND_RULE"))
        .collect();
    assert_eq!(rules, ["crit", "crit", "crit2"]);
    let out = ns::run(
        "journalctl",
        &[
            "-o",
            "json",
            "--all",
            "--no-pager",
            "-p",
            "err",
            "-t",
            "hardend",
        ],
    );
    let kinds: Vec<String> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            let m = v.as_object().expect("object").clone();
            format!(
                "{}:{}",
                ns::field(&m, "HARDEND_KIND"),
                ns::field(&m, "PRIORITY")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "failing:2",
            "failing:3",
            "error:3",
            "overdue:2",
            "policy_rejected:3",
            "policy_rejected:3"
        ]
    );

    // `journalctl -x` explains the entries from the shipped catalog.
    let explained = ns::run(
        "journalctl",
        &[
            "-x",
            "--no-pager",
            "-o",
            "short",
            &format!("MESSAGE_ID={}", message_id::FAILING),
            "HARDEND_SEQ=1",
        ],
    );
    for want in [
        "Subject: Hardening drift: linux-baseline-ssh/crit now fails",
        "Defined-By: hardend",
        "Severity: critical",
        "Actual:   yes",
        "/etc/ssh/sshd_config:57: PasswordAuthentication yes",
    ] {
        assert!(
            explained.contains(want),
            "`journalctl -x` lacks {want:?}:\n{explained}"
        );
    }
    let explained = ns::run(
        "journalctl",
        &[
            "-x",
            "--no-pager",
            &format!("MESSAGE_ID={}", message_id::POLICY_REJECTED),
        ],
    );
    assert!(
        explained.contains("/etc/hardend/policies.d/other.yaml:12:9: unknown severity `urgent`"),
        "{explained}"
    );
}

#[test]
fn journald_restart_and_absence_lose_nothing() {
    const NAME: &str = "journald_restart_and_absence_lose_nothing";
    if !ns::in_child(NAME) {
        if !require("root, unshare and systemd-journald", ns::available()) {
            return;
        }
        let out = ns::run_test_in_namespace(NAME, &[]);
        // The third event had no journald: it is on stderr, whole.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<Vec<(String, String)>> =
            stderr.lines().filter_map(journal::parse_line).collect();
        assert_eq!(lines.len(), 1, "one alert on stderr:\n{stderr}");
        let fields: std::collections::BTreeMap<_, _> = lines[0].iter().cloned().collect();
        assert_eq!(fields["HARDEND_SEQ"], "3");
        assert_eq!(fields["HARDEND_KIND"], "failing");
        assert_eq!(fields["PRIORITY"], "3");
        assert_eq!(
            fields["HARDEND_EVIDENCE"].lines().count(),
            3,
            "{}",
            fields["HARDEND_EVIDENCE"]
        );
        assert!(
            stderr.contains("hardend: journald is unavailable"),
            "the fallback says why:\n{stderr}"
        );
        return;
    }

    let failing = |seq| {
        event(
            seq,
            DriftKind::Failing,
            Some(Status::Pass),
            result("restart", Severity::High, Status::Fail, Some("yes")),
        )
    };
    let mut sink = journal::sink(JournaldMode::On);
    let journald = ns::Journald::start();
    sink.drift(&failing(1));
    ns::wait_for_entries(&["HARDEND_SEQ=1"], 1, Duration::from_secs(10));
    // journald restarts (a fresh one, with a fresh socket and journal).
    drop(journald);
    let journald = ns::Journald::start();
    sink.drift(&failing(2));
    let got = ns::wait_for_entries(&["SYSLOG_IDENTIFIER=hardend"], 1, Duration::from_secs(10));
    assert_eq!(ns::field(&got[0], "HARDEND_SEQ"), "2");
    // journald is gone: the alert goes to stderr (checked by the parent).
    drop(journald);
    sink.drift(&failing(3));
}
