//! The outbox under `kill -9`: a child process (this same test, run again
//! with an environment variable) appends and acknowledges in a loop and is
//! killed at random moments; after each kill the outbox must reopen intact,
//! hold every message whose append had returned, in order, without gaps,
//! and never forget an acknowledgement that had been recorded.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hardend_daemon::outbox::{Outbox, OutboxOptions};
use hardend_proto as pb;

const CHILD_ENV: &str = "HARDEND_OUTBOX_CRASH_CHILD_DIR";
const ROUNDS: usize = 12;

fn options() -> OutboxOptions {
    OutboxOptions {
        max_drift_events: 1_000_000,
        segment_bytes: 16 * 1024,
    }
}

fn drift(seq: u64) -> pb::AgentMessage {
    pb::AgentMessage {
        body: Some(pb::agent_message::Body::Drift(pb::DriftEvent {
            seq,
            at: "2026-11-22T10:00:00Z".into(),
            kind: pb::DriftKind::Failing.into(),
            previous: pb::Status::Pass.into(),
            result: Some(pb::RuleResult {
                policy: "p".into(),
                rule: format!("r{seq}"),
                actual: Some("x".repeat((seq % 200) as usize)),
                ..Default::default()
            }),
            hostname: "web-1".into(),
        })),
    }
}

/// The child: appends batches of 1 to 7 events and acknowledges now and
/// then, printing `appended N` and `acked N` after each call returns.
fn child(dir: &Path) -> ! {
    let (mut outbox, _) = Outbox::open(dir, options()).expect("child: open");
    let mut next = outbox.last_seq() + 1;
    let mut round: u64 = 0;
    loop {
        round += 1;
        let n = 1 + (round * 7919 % 7);
        let batch: Vec<_> = (next..next + n).map(drift).collect();
        outbox.append(batch).expect("child: append");
        next += n;
        println!("appended {}", next - 1);
        if round.is_multiple_of(5) && next > 40 {
            let seq = next - 40;
            outbox.ack(seq).expect("child: ack");
            println!("acked {seq}");
        }
    }
}

fn seqs(messages: &[pb::AgentMessage]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| match &m.body {
            Some(pb::agent_message::Body::Drift(d)) => {
                let rule = d.result.as_ref().map(|r| r.rule.as_str()).unwrap_or("");
                assert_eq!(rule, format!("r{}", d.seq), "payload intact");
                d.seq
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn outbox_survives_sigkill_at_random_moments() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    let mut last_appended = 0u64;
    let mut last_acked = 0u64;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "outbox_survives_sigkill_at_random_moments",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait until the child has appended something, then a random while.
        let started = Instant::now();
        let mut lines: Vec<String> = Vec::new();
        while !lines.iter().any(|l| l.starts_with("appended ")) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "child never appended"
            );
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                lines.push(line);
            }
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 150));
        // SIGKILL: the child gets no chance to finish anything.
        child.kill().expect("kill -9");
        child.wait().expect("wait");
        reader.join().expect("reader");
        lines.extend(rx.try_iter());
        // The test harness prints its own lines too; only ours count.
        for line in &lines {
            if let Some(n) = line.strip_prefix("appended ") {
                last_appended = last_appended.max(n.parse().expect("child number"));
            } else if let Some(n) = line.strip_prefix("acked ") {
                last_acked = last_acked.max(n.parse().expect("child number"));
            }
        }

        let (outbox, report) = Outbox::open(dir.path(), options()).expect("reopen");
        assert!(
            outbox.acked() >= last_acked,
            "round {round}: acked {} < recorded {last_acked}",
            outbox.acked()
        );
        assert!(
            outbox.last_seq() >= last_appended,
            "round {round}: lost appended messages: last {} < {last_appended} ({report:?})",
            outbox.last_seq()
        );
        let queued = seqs(&outbox.read_after(0, usize::MAX).expect("read"));
        let want: Vec<u64> = (outbox.acked() + 1..=outbox.last_seq()).collect();
        assert_eq!(
            queued, want,
            "round {round}: contiguous, in order, nothing after the ack lost"
        );
    }
    assert!(last_appended > 0);
}
