//! The core loop on fixture roots with a capturing sink: drift from the three
//! ways files change, kernel parameters, modes, restarts on the same state,
//! policy reloads, overdue deadlines and the `Evaluate` command.

mod core_support;

use std::time::Duration;

use core_support::{BANNER, Capture, Fixture, Running, summary};
use hardend_daemon::app::{Daemon, DaemonOptions};
use hardend_daemon::sd_notify::SdNotify;
use hardend_daemon::{Command, DriftKind};
use hardend_engine::Status;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_changes_in_place_by_rename_and_by_delete_and_recreate_alert_in_order() {
    let fx = Fixture::new();
    let d = Running::start(fx.config());
    assert!(
        d.capture.drift().is_empty(),
        "a passing root alerts nothing"
    );
    assert_eq!(d.status("motd-banner"), Some(Status::Pass));

    // In place.
    fx.write("etc/motd", "welcome\n");
    d.capture.wait_drift(1, WAIT).await;
    // Renamed over.
    fx.rename_over("etc/motd", BANNER);
    d.capture.wait_drift(2, WAIT).await;
    // Deleted, then recreated.
    fx.remove("etc/motd");
    d.capture.wait_drift(3, WAIT).await;
    fx.write("etc/motd", BANNER);
    d.capture.wait_drift(4, WAIT).await;
    // A mode change and a kernel parameter written in place.
    fx.chmod("etc/shadow", 0o644);
    d.capture.wait_drift(5, WAIT).await;
    fx.write("proc/sys/net/ipv4/ip_forward", "1\n");
    let events = d.capture.wait_drift(6, WAIT).await;

    use DriftKind::{Failing, Passing};
    use Status::{Fail, Pass};
    let want = vec![
        (1, Failing, "motd-banner".to_string(), Some(Pass), Fail),
        (2, Passing, "motd-banner".to_string(), Some(Fail), Pass),
        (3, Failing, "motd-banner".to_string(), Some(Pass), Fail),
        (4, Passing, "motd-banner".to_string(), Some(Fail), Pass),
        (5, Failing, "shadow-mode".to_string(), Some(Pass), Fail),
        (6, Failing, "ip-forward-off".to_string(), Some(Pass), Fail),
    ];
    assert_eq!(summary(&events), want);
    assert_eq!(events[2].result.actual.as_deref(), Some("missing"));
    assert_eq!(events[5].result.actual.as_deref(), Some("1"));
    // Nothing more trickles in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        d.capture.drift().len(),
        6,
        "{:#?}",
        summary(&d.capture.drift())
    );
    let view = d.shared.view.borrow().clone();
    assert_eq!(view.drift_events, 6);
    assert_eq!(view.report.summary.fail, 2);
    assert!(
        view.first_failed
            .contains_key(&("core-test".into(), "shadow-mode".into()))
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_value_that_changes_alerts_again_and_subscribers_get_events() {
    let fx = Fixture::new();
    let d = Running::start(fx.config());
    let mut rx = d.shared.drift.subscribe();
    fx.write("proc/sys/net/ipv4/ip_forward", "1\n");
    d.capture.wait_drift(1, WAIT).await;
    fx.write("proc/sys/net/ipv4/ip_forward", "2\n");
    let events = d.capture.wait_drift(2, WAIT).await;
    assert_eq!(events[1].kind, DriftKind::Failing);
    assert_eq!(events[1].previous, Some(Status::Fail));
    assert_eq!(events[1].result.actual.as_deref(), Some("2"));
    let first = rx.recv().await.expect("broadcast");
    let second = rx.recv().await.expect("broadcast");
    assert_eq!((first.seq, second.seq), (1, 2));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_alerts_only_what_changed_while_down_and_sequence_numbers_continue() {
    let fx = Fixture::new();
    // Old drift: the banner fails from the start.
    fx.write("etc/motd", "welcome\n");
    let d = Running::start(fx.config());
    let first = d.capture.drift();
    assert_eq!(
        summary(&first),
        vec![(
            1,
            DriftKind::Failing,
            "motd-banner".to_string(),
            None,
            Status::Fail
        )]
    );
    fx.chmod("etc/shadow", 0o666);
    d.capture.wait_drift(2, WAIT).await;
    // Dropped without a clean stop.
    d.abort().await;

    // While down: forwarding turned on (new), the mode fixed (new), the
    // banner still failing (old).
    fx.write("proc/sys/net/ipv4/ip_forward", "1\n");
    fx.chmod("etc/shadow", 0o600);
    let d = Running::start(fx.config());
    let events = d.capture.drift();
    assert_eq!(
        summary(&events),
        vec![
            (
                3,
                DriftKind::Passing,
                "shadow-mode".to_string(),
                Some(Status::Fail),
                Status::Pass
            ),
            (
                4,
                DriftKind::Failing,
                "ip-forward-off".to_string(),
                Some(Status::Pass),
                Status::Fail
            ),
        ]
    );
    d.stop().await;

    // A clean restart with nothing changed alerts nothing.
    let d = Running::start(fx.config());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        d.capture.drift().is_empty(),
        "{:#?}",
        summary(&d.capture.drift())
    );
    fx.write("proc/sys/net/ipv4/ip_forward", "0\n");
    let events = d.capture.wait_drift(1, WAIT).await;
    assert_eq!(events[0].seq, 5);
    assert_eq!(events[0].kind, DriftKind::Passing);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_state_is_reported_and_the_daemon_starts_fresh() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.state_dir()).expect("mkdir");
    std::fs::write(fx.state_dir().join("state.json"), "{ not json").expect("write");
    fx.write("etc/motd", "welcome\n");
    let d = Running::start(fx.config());
    // Fresh: the failing rule is alerted as new, numbering starts again.
    assert_eq!(
        summary(&d.capture.drift()),
        vec![(
            1,
            DriftKind::Failing,
            "motd-banner".to_string(),
            None,
            Status::Fail
        )]
    );
    assert!(fx.state_dir().join("state.json.corrupt").exists());
    assert!(fx.state_dir().join("state.json").exists());
    d.stop().await;
}

const BROKEN_POLICY: &str = "policy:\n  id: extra\n  title: Extra\n  version: \"1\"\nrules:\n  - id: extra-rule\n    title: Extra rule\n    severity: low\n    check:\n      file: { path: /etc/motd, bogus_option: 1 }\n";

const FIXED_POLICY: &str = "policy:\n  id: extra\n  title: Extra\n  version: \"1\"\nrules:\n  - id: extra-rule\n    title: Extra rule\n    severity: low\n    check:\n      file: { path: /etc/issue, exists: true }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_policy_is_rejected_with_its_position_and_the_old_rules_keep_working() {
    let fx = Fixture::new();
    let d = Running::start(fx.config());
    let broken = fx.policies().join("extra.yaml");
    std::fs::write(&broken, BROKEN_POLICY).expect("write broken");
    let reports = d.capture.wait_policy_errors(1, WAIT).await;
    let prefix = format!("{}:10:", broken.display());
    assert!(
        reports[0].iter().any(|e| e.starts_with(&prefix)),
        "expected an error at {prefix}..., got {reports:?}"
    );
    let view = d.shared.view.borrow().clone();
    assert!(view.policy_errors.iter().any(|e| e.starts_with(&prefix)));
    assert_eq!(view.policies.len(), 1, "the old policies stay in force");

    // The old rules keep evaluating.
    fx.write("etc/motd", "welcome\n");
    let events = d.capture.wait_drift(1, WAIT).await;
    assert_eq!(events[0].result.rule, "motd-banner");

    // The fixed policy is picked up (its rule fails: /etc/issue is missing).
    std::fs::write(fx.policies().join(".extra.yaml.swp"), "editor noise").expect("write");
    let tmp = fx.policies().join("extra.yaml.new");
    std::fs::write(&tmp, FIXED_POLICY).expect("write fixed");
    std::fs::rename(&tmp, &broken).expect("rename fixed");
    let events = d.capture.wait_drift(2, WAIT).await;
    assert_eq!(
        summary(&events[1..]),
        vec![(
            2,
            DriftKind::Failing,
            "extra-rule".to_string(),
            None,
            Status::Fail
        )]
    );
    let view = d.shared.view.borrow().clone();
    assert!(view.policy_errors.is_empty(), "{:?}", view.policy_errors);
    assert_eq!(view.policies.len(), 2);
    assert_eq!(view.report.results.len(), 4);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_policy_at_start_is_fatal_with_its_position() {
    let fx = Fixture::new();
    let broken = fx.policies().join("extra.yaml");
    std::fs::write(&broken, BROKEN_POLICY).expect("write broken");
    let err = Running::try_start(fx.config()).err().expect("start fails");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}:10:", broken.display())),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reload_command_rereads_the_configuration_file() {
    let fx = Fixture::new();
    let config_file = fx.dir.path().join("hardend.yaml");
    let yaml = |waive: bool| {
        let mut s = format!(
            "root: {}\npolicies: [{}]\nstate_dir: {}\njournald: off\nwatch: {{ debounce_ms: 20 }}\n",
            fx.root().display(),
            fx.policies().display(),
            fx.state_dir().display()
        );
        if waive {
            s.push_str("waivers:\n  - rule: core-test/motd-banner\n    reason: lab host\n    expires: 2099-01-01\n");
        }
        s
    };
    std::fs::write(&config_file, yaml(false)).expect("write config");
    fx.write("etc/motd", "welcome\n");
    let config = hardend_policy::config::load_config(&config_file).expect("valid config");
    let capture = Capture::default();
    let daemon = Daemon::start(DaemonOptions {
        config,
        config_path: Some(config_file.clone()),
        sink: Box::new(capture.clone()),
        notify: SdNotify::disabled(),
        metrics: None,
    })
    .expect("start");
    let d = Running::spawn(daemon, capture);
    assert_eq!(d.capture.drift().len(), 1);

    // A waiver added to the file takes effect at the reload.
    std::fs::write(&config_file, yaml(true)).expect("write config");
    d.shared.commands.send(Command::Reload).await.expect("send");
    let events = d.capture.wait_drift(2, WAIT).await;
    assert_eq!(events[1].kind, DriftKind::Passing);
    assert_eq!(events[1].result.status, Status::Waived);

    // An invalid file is reported; the old configuration stays.
    std::fs::write(&config_file, "watch: { debounce_ms: soon }\n").expect("write config");
    d.shared.commands.send(Command::Reload).await.expect("send");
    let reports = d.capture.wait_policy_errors(1, WAIT).await;
    let prefix = format!("{}:1:", config_file.display());
    assert!(reports[0][0].starts_with(&prefix), "{reports:?}");
    assert_eq!(d.status("motd-banner"), Some(Status::Waived));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_fires_once_and_not_again_after_a_restart() {
    let fx = Fixture::new();
    let mut config = fx.config();
    config.deadlines.critical = Some(Duration::from_secs(1));
    let d = Running::start(config.clone());
    fx.write("proc/sys/net/ipv4/ip_forward", "1\n");
    d.capture.wait_drift(1, WAIT).await;
    let events = d.capture.wait_drift(2, WAIT).await;
    assert_eq!(events[1].kind, DriftKind::Overdue);
    assert_eq!(events[1].result.rule, "ip-forward-off");
    assert_eq!(events[1].seq, 2);
    let late = events[1].at.duration_since(events[0].at);
    assert!(
        late >= jiff::SignedDuration::from_secs(1) && late < jiff::SignedDuration::from_secs(5),
        "overdue after {late:?}"
    );
    let view = d.shared.view.borrow().clone();
    assert!(
        view.overdue
            .contains(&("core-test".into(), "ip-forward-off".into()))
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        d.capture.drift().len(),
        2,
        "{:#?}",
        summary(&d.capture.drift())
    );
    d.stop().await;

    // Persisted: a restart does not fire it again.
    let d = Running::start(config.clone());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        d.capture.drift().is_empty(),
        "{:#?}",
        summary(&d.capture.drift())
    );
    // Back to passing and failing again starts a new deadline.
    fx.write("proc/sys/net/ipv4/ip_forward", "0\n");
    d.capture.wait_drift(1, WAIT).await;
    fx.write("proc/sys/net/ipv4/ip_forward", "1\n");
    let events = d.capture.wait_drift(3, WAIT).await;
    assert_eq!(
        events.iter().map(|e| (e.seq, e.kind)).collect::<Vec<_>>(),
        vec![
            (3, DriftKind::Passing),
            (4, DriftKind::Failing),
            (5, DriftKind::Overdue)
        ]
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluate_answers_with_the_new_view_and_the_poll_runs_quietly() {
    let fx = Fixture::new();
    let mut config = fx.config();
    config.watch.poll_interval = Duration::from_millis(200);
    let d = Running::start(config);
    let before = d.shared.view.borrow().last_full_scan_at;
    let (tx, rx) = oneshot::channel();
    d.shared
        .commands
        .send(Command::Evaluate(tx))
        .await
        .expect("send");
    let view = tokio::time::timeout(Duration::from_secs(2), rx)
        .await
        .expect("answered within 2 s")
        .expect("a view");
    assert!(view.last_full_scan_at > before);
    assert_eq!(view.report.summary.total, 3);

    // The poll backstop runs and, with nothing changed, alerts nothing.
    let polls = d.stats.polls();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        d.stats.polls() >= polls + 2,
        "polls: {polls} -> {}",
        d.stats.polls()
    );
    assert!(d.capture.drift().is_empty());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_overflow_becomes_a_full_rescan_that_misses_nothing() {
    let fx = Fixture::new();
    let mut config = fx.config();
    // A long debounce, so the whole burst lands in one batch even when a
    // loaded machine stretches the writing over several seconds (the batch
    // is taken at the latest after four debounce times).
    config.watch.debounce = Duration::from_millis(3000);
    let d = Running::start(config);
    let full_before = d.stats.full_evaluations();
    let root = fx.root();
    tokio::task::spawn_blocking(move || {
        std::fs::write(root.join("etc/motd"), "welcome\n").expect("motd");
        for i in 0..(hardend_daemon::watch::INBOX_CAPACITY + 500) {
            std::fs::write(root.join(format!("etc/noise-{i}")), "x").expect("noise");
        }
    })
    .await
    .expect("writer");
    let events = d.capture.wait_drift(1, Duration::from_secs(40)).await;
    assert_eq!(
        summary(&events),
        vec![(
            1,
            DriftKind::Failing,
            "motd-banner".to_string(),
            Some(Status::Pass),
            Status::Fail
        )]
    );
    assert!(d.stats.overflows() >= 1, "the inbox overflowed");
    assert!(
        d.stats.full_evaluations() > full_before,
        "a full rescan ran"
    );
    assert!(d.stats.pending_high_water() <= hardend_daemon::watch::INBOX_CAPACITY);
    d.stop().await;
}
