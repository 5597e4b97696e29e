//! The journald catalog in `packaging/`: one entry per MESSAGE_ID the daemon
//! writes, accepted by journalctl, and naming only fields the entries carry.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use hardend_daemon::journal::{Entry, message_id};
use hardend_daemon::{DriftEvent, DriftKind};
use hardend_engine::{RuleResult, Status};
use hardend_policy::Severity;
use hardend_tests::{have_command, repo_root, require};

fn catalog_text() -> String {
    std::fs::read_to_string(repo_root().join("packaging/hardend.catalog"))
        .expect("read the catalog")
}

/// The catalog's entries: id -> (header lines, body).
fn catalog_entries(text: &str) -> BTreeMap<String, (Vec<String>, String)> {
    let mut entries = BTreeMap::new();
    let mut current: Option<(String, Vec<String>, String, bool)> = None;
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("-- ") {
            if let Some((id, headers, body, _)) = current.take() {
                assert!(
                    entries.insert(id.clone(), (headers, body)).is_none(),
                    "{id} twice"
                );
            }
            current = Some((id.trim().to_string(), Vec::new(), String::new(), true));
            continue;
        }
        let Some((_, headers, body, in_headers)) = current.as_mut() else {
            assert!(
                line.is_empty() || line.starts_with('#'),
                "text before the first entry: {line}"
            );
            continue;
        };
        if *in_headers {
            if line.is_empty() {
                *in_headers = false;
            } else {
                headers.push(line.to_string());
            }
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((id, headers, body, _)) = current {
        assert!(
            entries.insert(id.clone(), (headers, body)).is_none(),
            "{id} twice"
        );
    }
    entries
}

fn sample(kind: DriftKind) -> Entry {
    let status = match kind {
        DriftKind::Passing => Status::Pass,
        DriftKind::Error => Status::Error,
        _ => Status::Fail,
    };
    Entry::drift(&DriftEvent {
        seq: 1,
        at: jiff::Timestamp::UNIX_EPOCH,
        kind,
        previous: Some(Status::Pass),
        result: RuleResult {
            policy: "p".into(),
            rule: "r".into(),
            title: "t".into(),
            severity: Severity::High,
            status,
            waived_status: None,
            expected: Some("e".into()),
            actual: Some("a".into()),
            evidence: vec![],
            message: Some("m".into()),
        },
    })
}

#[test]
fn every_message_id_has_a_catalog_entry_naming_only_real_fields() {
    let text = catalog_text();
    let entries = catalog_entries(&text);
    let in_code: BTreeSet<String> = message_id::ALL
        .iter()
        .map(|(_, id)| id.to_string())
        .collect();
    let in_catalog: BTreeSet<String> = entries.keys().cloned().collect();
    assert_eq!(
        in_catalog, in_code,
        "the catalog and the code list the same ids"
    );

    let samples: BTreeMap<&str, Entry> = [
        (message_id::FAILING, sample(DriftKind::Failing)),
        (message_id::PASSING, sample(DriftKind::Passing)),
        (message_id::ERROR, sample(DriftKind::Error)),
        (message_id::OVERDUE, sample(DriftKind::Overdue)),
        (
            message_id::POLICY_REJECTED,
            Entry::policy_rejected("f:1:1: x"),
        ),
    ]
    .into_iter()
    .collect();
    for (id, (headers, body)) in &entries {
        let header = |name: &str| {
            headers
                .iter()
                .filter_map(|h| h.strip_prefix(&format!("{name}: ")))
                .collect::<Vec<_>>()
        };
        assert_eq!(header("Subject").len(), 1, "{id}: one Subject");
        assert_eq!(header("Defined-By"), ["hardend"], "{id}");
        assert!(!header("Documentation").is_empty(), "{id}: Documentation");
        assert!(
            body.trim().len() > 100,
            "{id}: the body explains what to do"
        );
        // Every @FIELD@ is a field that entries of this id carry.
        let entry = &samples[id.as_str()];
        assert_eq!(entry.get("MESSAGE_ID"), Some(id.as_str()));
        let whole = format!("{}\n{body}", headers.join("\n"));
        let mut parts = whole.split('@');
        parts.next();
        let names: Vec<&str> = parts.step_by(2).collect();
        assert!(!names.is_empty(), "{id}: the entry uses the alert's fields");
        for name in names {
            assert!(
                entry.get(name).is_some(),
                "{id}: @{name}@ is not a field of its entries"
            );
        }
    }
}

#[test]
fn journalctl_accepts_the_catalog() {
    if !require("journalctl", have_command("journalctl")) {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("usr/lib/systemd/catalog");
    std::fs::create_dir_all(&dir).expect("catalog directory");
    std::fs::copy(
        repo_root().join("packaging/hardend.catalog"),
        dir.join("hardend.catalog"),
    )
    .expect("copy the catalog");
    let update = Command::new("journalctl")
        .arg(format!("--root={}", root.path().display()))
        .arg("--update-catalog")
        .output()
        .expect("run journalctl --update-catalog");
    assert!(
        update.status.success() && update.stderr.is_empty(),
        "journalctl --update-catalog: {}",
        String::from_utf8_lossy(&update.stderr)
    );
    assert!(
        root.path()
            .join("var/lib/systemd/catalog/database")
            .is_file()
    );
    let list = Command::new("journalctl")
        .arg(format!("--root={}", root.path().display()))
        .arg("--list-catalog")
        .output()
        .expect("run journalctl --list-catalog");
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listed: BTreeMap<String, String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, rest)| (id.to_string(), rest.to_string()))
        .collect();
    for (kind, id) in message_id::ALL {
        let line = listed
            .get(id)
            .unwrap_or_else(|| panic!("{kind} ({id}) is not listed: {listed:?}"));
        assert!(line.starts_with("hardend: "), "{kind}: {line}");
    }
    assert_eq!(listed.len(), message_id::ALL.len(), "{listed:?}");
}
