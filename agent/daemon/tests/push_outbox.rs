//! The collector outbox: replay order, acknowledgements and segment
//! deletion, torn and corrupt tails, and the bound that folds old drift
//! events into the next snapshot.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use hardend_daemon::outbox::{OUTBOX_DIR, Outbox, OutboxError, OutboxOptions};
use hardend_proto as pb;

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
                ..Default::default()
            }),
            hostname: "web-1".into(),
        })),
    }
}

fn snapshot(seq: u64) -> pb::AgentMessage {
    pb::AgentMessage {
        body: Some(pb::agent_message::Body::Snapshot(pb::Snapshot {
            seq,
            report: Some(pb::Report {
                hostname: "web-1".into(),
                ..Default::default()
            }),
            first_failed_at: Default::default(),
            folded_events: 0,
        })),
    }
}

/// (seq, is snapshot, folded_events) of each message.
fn shape(messages: &[pb::AgentMessage]) -> Vec<(u64, bool, u64)> {
    messages
        .iter()
        .map(|m| match &m.body {
            Some(pb::agent_message::Body::Drift(d)) => {
                let rule = d
                    .result
                    .as_ref()
                    .map(|r| r.rule.clone())
                    .unwrap_or_default();
                assert_eq!(rule, format!("r{}", d.seq), "payload of {}", d.seq);
                (d.seq, false, 0)
            }
            Some(pb::agent_message::Body::Snapshot(s)) => (s.seq, true, s.folded_events),
            other => panic!("unexpected message {other:?}"),
        })
        .collect()
}

fn open(dir: &Path, options: OutboxOptions) -> Outbox {
    Outbox::open(dir, options).expect("open outbox").0
}

fn small_segments() -> OutboxOptions {
    OutboxOptions {
        max_drift_events: 100_000,
        segment_bytes: 512,
    }
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join(OUTBOX_DIR))
        .expect("read outbox dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

#[test]
fn replay_keeps_order_and_drops_what_was_acked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut outbox = open(dir.path(), small_segments());
    let mut want = Vec::new();
    for seq in 1..=60u64 {
        let m = if seq % 10 == 0 {
            snapshot(seq)
        } else {
            drift(seq)
        };
        want.push((seq, seq % 10 == 0, 0));
        outbox.append(vec![m]).expect("append");
    }
    assert!(outbox.segment_count() > 3, "small segments roll over");
    assert_eq!(shape(&outbox.read_after(0, 1000).expect("read")), want);
    drop(outbox);

    let mut outbox = open(dir.path(), small_segments());
    assert_eq!(outbox.last_seq(), 60);
    assert_eq!(shape(&outbox.read_after(0, 1000).expect("read")), want);
    assert_eq!(
        shape(&outbox.read_after(55, 2).expect("read")),
        want[55..57]
    );
    let before = segment_files(dir.path()).len();
    outbox.ack(45).expect("ack");
    assert_eq!(outbox.acked(), 45);
    assert_eq!(outbox.len(), 15);
    let after = segment_files(dir.path()).len();
    assert!(
        after < before,
        "acked segments are deleted ({before} -> {after})"
    );
    drop(outbox);

    let mut outbox = open(dir.path(), small_segments());
    assert_eq!(outbox.acked(), 45);
    assert_eq!(
        shape(&outbox.read_after(0, 1000).expect("read")),
        want[45..]
    );
    // An acknowledgement past the last queued message covers only that.
    outbox.ack(1_000).expect("ack");
    assert_eq!(outbox.acked(), 60);
    assert!(outbox.is_empty());
    outbox
        .append(vec![drift(61)])
        .expect("append after full ack");
    drop(outbox);
    let outbox = open(dir.path(), small_segments());
    assert_eq!(
        shape(&outbox.read_after(0, 10).expect("read")),
        vec![(61, false, 0)]
    );
    assert!(segment_files(dir.path()).len() <= 2);
}

#[test]
fn a_batch_is_one_append_and_order_is_enforced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut outbox = open(dir.path(), OutboxOptions::default());
    outbox
        .append(vec![drift(1), drift(2), snapshot(3)])
        .expect("append");
    assert!(matches!(
        outbox.append(vec![drift(3)]),
        Err(OutboxError::OutOfOrder { seq: 3, last: 3 })
    ));
    assert!(matches!(
        outbox.append(vec![drift(5), drift(4)]),
        Err(OutboxError::OutOfOrder { seq: 4, last: 5 })
    ));
    let hello = pb::AgentMessage {
        body: Some(pb::agent_message::Body::Hello(pb::Hello::default())),
    };
    assert!(matches!(
        outbox.append(vec![hello]),
        Err(OutboxError::NotQueueable)
    ));
    // Refused batches left nothing behind.
    drop(outbox);
    let outbox = open(dir.path(), OutboxOptions::default());
    assert_eq!(outbox.last_seq(), 3);
    assert_eq!(outbox.len(), 3);
}

#[test]
fn a_torn_tail_is_cut_off_and_appending_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut outbox = open(dir.path(), OutboxOptions::default());
    for seq in 1..=5 {
        outbox.append(vec![drift(seq)]).expect("append");
    }
    drop(outbox);
    let segment = segment_files(dir.path()).pop().expect("a segment");
    let full = std::fs::metadata(&segment).expect("stat").len();

    // Half a record: a crash in the middle of a write.
    let bytes = std::fs::read(&segment).expect("read");
    let record = (full / 5) as usize;
    std::fs::write(&segment, &bytes[..bytes.len() - record / 2]).expect("tear");
    let (mut outbox, report) = Outbox::open(dir.path(), OutboxOptions::default()).expect("open");
    assert_eq!(report.truncated.len(), 1, "{report:?}");
    assert_eq!(report.records, 4);
    assert_eq!(outbox.last_seq(), 4);
    outbox
        .append(vec![drift(5), drift(6)])
        .expect("append after a cut");
    drop(outbox);
    let outbox = open(dir.path(), OutboxOptions::default());
    let seqs: Vec<u64> = shape(&outbox.read_after(0, 100).expect("read"))
        .into_iter()
        .map(|(s, _, _)| s)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    drop(outbox);

    // Garbage after the last record (a header of a record never written).
    let mut f = OpenOptions::new()
        .append(true)
        .open(&segment)
        .expect("open segment");
    f.write_all(&[0xff, 0xff, 0xff, 0x7f, 1, 2]).expect("write");
    drop(f);
    let (outbox, report) = Outbox::open(dir.path(), OutboxOptions::default()).expect("open");
    assert_eq!(report.truncated.len(), 1);
    assert_eq!(outbox.len(), 6);
}

#[test]
fn a_record_with_a_bad_crc_is_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut outbox = open(dir.path(), OutboxOptions::default());
    outbox.append(vec![drift(1)]).expect("append");
    outbox.append(vec![drift(2)]).expect("append");
    drop(outbox);
    let segment = segment_files(dir.path()).pop().expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("read");
    let last = bytes.len() - 3;
    bytes[last] ^= 0x55;
    std::fs::write(&segment, &bytes).expect("corrupt");
    let (outbox, report) = Outbox::open(dir.path(), OutboxOptions::default()).expect("open");
    assert_eq!(report.truncated.len(), 1);
    assert_eq!(
        shape(&outbox.read_after(0, 10).expect("read")),
        vec![(1, false, 0)]
    );
    // The acked file is corrupt: everything is resent, nothing breaks.
    std::fs::write(dir.path().join(OUTBOX_DIR).join("acked"), b"\xffjunk").expect("write");
    let (outbox, _) = Outbox::open(dir.path(), OutboxOptions::default()).expect("open");
    assert_eq!(outbox.acked(), 0);
    assert_eq!(outbox.len(), 1);
}

#[test]
fn past_the_bound_old_drift_events_are_folded_into_the_next_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = OutboxOptions {
        max_drift_events: 20,
        segment_bytes: 1024,
    };
    let mut outbox = open(dir.path(), options);
    outbox.append(vec![snapshot(1)]).expect("append");
    for seq in 2..=51 {
        outbox.append(vec![drift(seq)]).expect("append");
        assert!(outbox.drift_events() <= 20, "bound at seq {seq}");
    }
    let folded = outbox.pending_folded();
    assert!(folded >= 30, "folded {folded}");
    // The newest drift events are kept, in order, after the old snapshot.
    let kept = shape(&outbox.read_after(0, 1000).expect("read"));
    assert_eq!(kept[0], (1, true, 0));
    let drift_seqs: Vec<u64> = kept[1..].iter().map(|(s, _, _)| *s).collect();
    let first = 52 - drift_seqs.len() as u64;
    assert_eq!(drift_seqs, (first..=51).collect::<Vec<_>>());
    assert_eq!(folded, first - 2, "every dropped event is counted");
    drop(outbox);

    // The count survives a restart, and the next snapshot carries it once.
    let mut outbox = open(dir.path(), options);
    assert_eq!(outbox.pending_folded(), folded);
    assert_eq!(outbox.drift_events(), drift_seqs.len());
    outbox.append(vec![snapshot(52)]).expect("append");
    outbox.append(vec![snapshot(53)]).expect("append");
    assert_eq!(outbox.pending_folded(), 0);
    // Still at the bound: the next drift event folds a tenth of it again.
    outbox.append(vec![drift(54)]).expect("append");
    assert_eq!(outbox.pending_folded(), 3);
    outbox.append(vec![snapshot(55)]).expect("append");
    let want = vec![
        (52, true, folded),
        (53, true, 0),
        (54, false, 0),
        (55, true, 3),
    ];
    assert_eq!(shape(&outbox.read_after(51, 10).expect("read")), want);
    drop(outbox);
    let outbox = open(dir.path(), options);
    assert_eq!(outbox.pending_folded(), 0);
    assert_eq!(outbox.folded_total(), folded + 3);
    assert_eq!(shape(&outbox.read_after(51, 10).expect("read")), want);
}

#[test]
fn a_fold_marker_outlives_acknowledged_segments_until_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = OutboxOptions {
        max_drift_events: 5,
        segment_bytes: 256,
    };
    let mut outbox = open(dir.path(), options);
    for seq in 1..=12 {
        outbox.append(vec![drift(seq)]).expect("append");
    }
    let folded = outbox.pending_folded();
    assert!(folded > 0);
    outbox.ack(12).expect("ack everything");
    drop(outbox);
    let mut outbox = open(dir.path(), options);
    assert!(outbox.is_empty());
    assert_eq!(outbox.pending_folded(), folded, "the fold is still owed");
    outbox.append(vec![snapshot(13)]).expect("append");
    outbox.ack(13).expect("ack");
    for seq in 14..=30 {
        outbox.append(vec![snapshot(seq)]).expect("append");
    }
    outbox.ack(30).expect("ack");
    drop(outbox);
    let outbox = open(dir.path(), options);
    assert_eq!(outbox.pending_folded(), 0);
    assert!(
        segment_files(dir.path()).len() <= 2,
        "spent segments are gone"
    );
}
