//! A storm: 10,000 file changes in about two seconds (a watched file flipped
//! between passing and failing, thousands of new files next to it) leave the
//! core loop responsive (`Evaluate` answers, the view moves), its queues
//! and memory bounded, and the final state right. In its own test binary so
//! the RSS measured is this test's.

mod core_support;

use std::time::{Duration, Instant};

use core_support::{BANNER, Fixture, Running, rss_kb};
use hardend_daemon::app::DRIFT_CHANNEL_CAPACITY;
use hardend_daemon::watch::INBOX_CAPACITY;
use hardend_daemon::{Command, DriftKind};
use hardend_engine::Status;
use tokio::sync::oneshot;

const CHANGES: usize = 10_000;
const CHUNK: usize = 100;
/// The longest an `Evaluate` may take to answer during the storm.
const ANSWER_BOUND: Duration = Duration::from_secs(3);
/// How much the resident memory may grow over the storm.
const RSS_GROWTH_LIMIT_KB: u64 = 48 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_changes_leave_the_loop_responsive_bounded_and_right() {
    let fx = Fixture::new();
    let d = Running::start(fx.config());
    // A subscriber that never reads: the channel must not grow past its capacity.
    let idle_subscriber = d.shared.drift.subscribe();
    let mut view_rx = d.shared.view.clone();
    let rss_before = rss_kb();

    let root = fx.root();
    let writer = tokio::task::spawn_blocking(move || {
        for chunk in 0..(CHANGES / CHUNK) {
            for j in 0..CHUNK {
                let i = chunk * CHUNK + j;
                if i.is_multiple_of(2) {
                    // Thousands of distinct new paths: more than the inbox holds.
                    std::fs::write(root.join(format!("etc/noise-{i}")), "x").expect("noise");
                } else {
                    let text = if i % 4 == 1 { "welcome\n" } else { BANNER };
                    std::fs::write(root.join("etc/motd"), text).expect("motd");
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The last word: everything fails.
        std::fs::write(root.join("etc/motd"), "welcome\n").expect("motd");
        std::fs::write(root.join("proc/sys/net/ipv4/ip_forward"), "1\n").expect("sysctl");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            root.join("etc/shadow"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
    });

    // While the storm blows: the loop answers Evaluate within the bound, and
    // the view keeps moving.
    let started = Instant::now();
    let mut answers = 0;
    let mut slowest = Duration::ZERO;
    let mut seen_drift_counts: Vec<u64> = Vec::new();
    let batches_before = d.stats.batches();
    while !writer.is_finished() {
        let (tx, rx) = oneshot::channel();
        let asked = Instant::now();
        d.shared
            .commands
            .send(Command::Evaluate(tx))
            .await
            .expect("send");
        let view = tokio::time::timeout(ANSWER_BOUND, rx)
            .await
            .unwrap_or_else(|_| panic!("Evaluate unanswered for {ANSWER_BOUND:?} in the storm"))
            .expect("a view");
        assert_eq!(view.report.summary.total, 3);
        slowest = slowest.max(asked.elapsed());
        answers += 1;
        // The view keeps moving: its drift count changes as the file flips.
        let drift_events = view_rx.borrow_and_update().drift_events;
        if seen_drift_counts.last() != Some(&drift_events) {
            seen_drift_counts.push(drift_events);
        }
        assert!(
            d.stats.pending() <= INBOX_CAPACITY,
            "pending {}",
            d.stats.pending()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    writer.await.expect("the writer finished");
    let storm = started.elapsed();
    assert!(answers >= 5, "only {answers} answers in {storm:?}");
    assert!(
        seen_drift_counts.len() >= 3,
        "the view moved only through {seen_drift_counts:?}"
    );
    assert!(
        d.stats.batches() >= batches_before + 10,
        "the watcher's batches kept being processed"
    );

    // The final state is right: all three rules fail, and the last event of
    // each says so.
    for rule in ["motd-banner", "shadow-mode", "ip-forward-off"] {
        d.wait_status(rule, Status::Fail, Duration::from_secs(5))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = d.capture.drift();
    for rule in ["motd-banner", "shadow-mode", "ip-forward-off"] {
        let last = events
            .iter()
            .rev()
            .find(|e| e.result.rule == rule)
            .unwrap_or_else(|| panic!("no event for {rule}"));
        assert_eq!(
            (last.kind, last.result.status),
            (DriftKind::Failing, Status::Fail),
            "{rule}"
        );
    }
    // Sequence numbers are gapless and increasing.
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
    }
    // A fresh full evaluation agrees with what the incremental path left.
    let incremental = d.shared.view.borrow().report.results.clone();
    let (tx, rx) = oneshot::channel();
    d.shared
        .commands
        .send(Command::Evaluate(tx))
        .await
        .expect("send");
    let fresh = rx.await.expect("a view");
    assert_eq!(fresh.report.results, incremental);
    assert_eq!(
        d.capture.drift().len(),
        events.len(),
        "no drift from a re-evaluation"
    );

    // Bounded: the inbox, the broadcast channel, the memory.
    assert!(d.stats.pending_high_water() <= INBOX_CAPACITY);
    assert!(idle_subscriber.len() <= DRIFT_CHANNEL_CAPACITY);
    let rss_after = rss_kb();
    eprintln!(
        "storm: {CHANGES} changes in {storm:?}, {} events received, {} batches, {} drift events, \
         {} overflows, high water {}, {answers} Evaluate answers (slowest {slowest:?}), RSS {rss_before} kB -> {rss_after} kB",
        d.stats.received(),
        d.stats.batches(),
        events.len(),
        d.stats.overflows(),
        d.stats.pending_high_water()
    );
    assert!(
        rss_after.saturating_sub(rss_before) < RSS_GROWTH_LIMIT_KB,
        "RSS grew from {rss_before} kB to {rss_after} kB"
    );
    d.stop().await;
}
