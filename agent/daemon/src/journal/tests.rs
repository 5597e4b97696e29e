//! Unit tests of the journal entries, their encodings, and the socket paths
//! (datagram, memfd, reconnect, fallback) against a socket this test binds.

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;

use hardend_engine::{RuleResult, Status};
use hardend_facts::Evidence;
use hardend_policy::Severity;

use super::*;

fn result(status: Status, severity: Severity) -> RuleResult {
    RuleResult {
        policy: "linux-baseline-ssh".into(),
        rule: "ssh-password-auth-disabled".into(),
        title: "SSH password authentication is disabled".into(),
        severity,
        status,
        waived_status: None,
        expected: Some("passwordauthentication = no".into()),
        actual: Some("yes".into()),
        evidence: vec![
            Evidence {
                path: "/etc/ssh/sshd_config".into(),
                line: Some(57),
                text: Some("PasswordAuthentication yes".into()),
            },
            Evidence {
                path: "/etc/ssh/sshd_config.d/50-cloud.conf".into(),
                line: None,
                text: None,
            },
        ],
        message: None,
    }
}

fn event(kind: DriftKind, previous: Option<Status>, status: Status) -> DriftEvent {
    DriftEvent {
        seq: 42,
        at: "2026-11-22T10:00:00Z".parse().expect("timestamp"),
        kind,
        previous,
        result: result(status, Severity::Critical),
    }
}

/// Decodes journald's native format, as journald itself does.
fn decode_native(mut data: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    while !data.is_empty() {
        let nl = data.iter().position(|&b| b == b'\n').expect("a newline");
        let head = &data[..nl];
        if let Some(eq) = head.iter().position(|&b| b == b'=') {
            let name = String::from_utf8(head[..eq].to_vec()).expect("utf-8");
            let value = String::from_utf8(head[eq + 1..].to_vec()).expect("utf-8");
            fields.push((name, value));
            data = &data[nl + 1..];
        } else {
            let name = String::from_utf8(head.to_vec()).expect("utf-8");
            let len_bytes: [u8; 8] = data[nl + 1..nl + 9].try_into().expect("8 bytes");
            let len = u64::from_le_bytes(len_bytes) as usize;
            let value = &data[nl + 9..nl + 9 + len];
            assert_eq!(
                data[nl + 9 + len],
                b'\n',
                "binary field ends with a newline"
            );
            fields.push((name, String::from_utf8(value.to_vec()).expect("utf-8")));
            data = &data[nl + 10 + len..];
        }
    }
    fields
}

fn owned(entry: &Entry) -> Vec<(String, String)> {
    entry
        .fields
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect()
}

#[test]
fn failing_entry_has_every_field() {
    let entry = Entry::drift(&event(DriftKind::Failing, Some(Status::Pass), Status::Fail));
    let fields: BTreeMap<&str, &str> = entry.fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let want: BTreeMap<&str, &str> = [
        ("PRIORITY", "2"),
        ("SYSLOG_IDENTIFIER", "hardend"),
        ("MESSAGE_ID", message_id::FAILING),
        ("HARDEND_KIND", "failing"),
        ("HARDEND_SEQ", "42"),
        ("HARDEND_POLICY", "linux-baseline-ssh"),
        ("HARDEND_RULE", "ssh-password-auth-disabled"),
        ("HARDEND_SEVERITY", "critical"),
        ("HARDEND_PREVIOUS", "pass"),
        ("HARDEND_STATUS", "fail"),
        ("HARDEND_TITLE", "SSH password authentication is disabled"),
        ("HARDEND_EXPECTED", "passwordauthentication = no"),
        ("HARDEND_ACTUAL", "yes"),
        (
            "HARDEND_EVIDENCE",
            "/etc/ssh/sshd_config:57: PasswordAuthentication yes\n/etc/ssh/sshd_config.d/50-cloud.conf",
        ),
        ("HARDEND_AT", "2026-11-22T10:00:00Z"),
        (
            "MESSAGE",
            "hardening drift: linux-baseline-ssh/ssh-password-auth-disabled pass -> fail: \
             SSH password authentication is disabled (actual: yes, expected: passwordauthentication = no)",
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(fields, want);
    assert_eq!(entry.fields.len(), want.len(), "no field twice");
}

#[test]
fn priorities_and_ids_per_kind_and_severity() {
    let cases = [
        (DriftKind::Failing, Severity::Critical, 2),
        (DriftKind::Failing, Severity::High, 3),
        (DriftKind::Failing, Severity::Medium, 4),
        (DriftKind::Failing, Severity::Low, 5),
        (DriftKind::Overdue, Severity::Critical, 2),
        (DriftKind::Overdue, Severity::Low, 5),
        (DriftKind::Error, Severity::Low, 3),
        (DriftKind::Error, Severity::Critical, 3),
        (DriftKind::Passing, Severity::Critical, 6),
    ];
    for (kind, severity, want) in cases {
        let mut e = event(kind, Some(Status::Pass), Status::Fail);
        e.result.severity = severity;
        let entry = Entry::drift(&e);
        assert_eq!(
            entry.get("PRIORITY"),
            Some(want.to_string().as_str()),
            "{kind:?} {severity:?}"
        );
        assert_eq!(entry.get("MESSAGE_ID"), Some(message_id(kind)));
        assert_eq!(entry.get("HARDEND_KIND"), Some(kind_name(kind)));
    }
    let ids: std::collections::BTreeSet<&str> = message_id::ALL.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), 5, "the ids are distinct");
    for id in ids {
        assert!(
            id.len() == 32
                && id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}

#[test]
fn messages_of_the_other_kinds() {
    let mut passing = event(DriftKind::Passing, Some(Status::Fail), Status::Pass);
    passing.result.actual = Some("no".into());
    assert_eq!(
        Entry::drift(&passing).get("MESSAGE"),
        Some(
            "hardening drift: linux-baseline-ssh/ssh-password-auth-disabled fail -> pass: \
             SSH password authentication is disabled (actual: no, expected: passwordauthentication = no)"
        )
    );
    let mut error = event(DriftKind::Error, None, Status::Error);
    error.result.actual = None;
    error.result.message = Some("cannot read /etc/ssh/sshd_config: permission denied".into());
    let entry = Entry::drift(&error);
    assert_eq!(
        entry.get("MESSAGE"),
        Some(
            "hardening drift: linux-baseline-ssh/ssh-password-auth-disabled none -> error: \
             SSH password authentication is disabled (expected: passwordauthentication = no, \
             cannot read /etc/ssh/sshd_config: permission denied)"
        )
    );
    assert_eq!(entry.get("HARDEND_PREVIOUS"), Some("none"));
    assert_eq!(entry.get("HARDEND_ACTUAL"), Some(""));
    assert_eq!(
        entry.get("HARDEND_MESSAGE"),
        Some("cannot read /etc/ssh/sshd_config: permission denied")
    );
    let overdue = event(DriftKind::Overdue, Some(Status::Fail), Status::Fail);
    assert_eq!(
        Entry::drift(&overdue).get("MESSAGE"),
        Some(
            "hardening overdue: linux-baseline-ssh/ssh-password-auth-disabled still fails past its \
             critical response deadline (overdue as of 2026-11-22T10:00:00Z): \
             SSH password authentication is disabled (actual: yes, expected: passwordauthentication = no)"
        )
    );
    let rejected =
        Entry::policy_rejected("/etc/hardend/policies.d/x.yaml:3:7: unknown key `rulez`");
    assert_eq!(rejected.get("PRIORITY"), Some("3"));
    assert_eq!(
        rejected.get("MESSAGE_ID"),
        Some(message_id::POLICY_REJECTED)
    );
    assert_eq!(
        rejected.get("HARDEND_ERROR"),
        Some("/etc/hardend/policies.d/x.yaml:3:7: unknown key `rulez`")
    );
    assert_eq!(
        rejected.get("MESSAGE"),
        Some(
            "hardend: policy rejected, the last good policies stay in force: \
             /etc/hardend/policies.d/x.yaml:3:7: unknown key `rulez`"
        )
    );
}

#[test]
fn hostile_values_are_sanitised_and_bounded() {
    let mut e = event(DriftKind::Failing, Some(Status::Pass), Status::Fail);
    e.result.actual = Some(format!("a\0b\nc{}", "é".repeat(10_000)));
    e.result.title = "two\nlines".into();
    e.result.message = Some("many\0\nlines".into());
    e.result.evidence = (0..1000)
        .map(|i| Evidence {
            path: "/etc/x".into(),
            line: Some(i),
            text: Some(format!("line\0{i}\n{}", "x".repeat(3000))),
        })
        .collect();
    let entry = Entry::drift(&e);
    for (name, value) in &entry.fields {
        assert!(!value.contains('\0'), "{name} has a NUL");
        assert!(
            value.len() <= MAX_EVIDENCE_BYTES,
            "{name} is {} bytes",
            value.len()
        );
        if !["HARDEND_EVIDENCE", "HARDEND_MESSAGE"].contains(name) {
            assert!(!value.contains('\n'), "{name} has a newline");
            assert!(
                value.len() <= MAX_FIELD_BYTES,
                "{name} is {} bytes",
                value.len()
            );
        }
    }
    let actual = entry.get("HARDEND_ACTUAL").expect("actual");
    assert!(actual.starts_with("a b c\u{e9}"), "{actual:.20}");
    assert!(
        actual.ends_with("(truncated, 20005 bytes in all)"),
        "{actual:.40}"
    );
    assert_eq!(entry.get("HARDEND_MESSAGE"), Some("many\u{FFFD}\nlines"));
    let evidence = entry.get("HARDEND_EVIDENCE").expect("evidence");
    let lines: Vec<&str> = evidence.lines().collect();
    assert!(lines.len() <= MAX_EVIDENCE_LINES + 1);
    assert!(lines[0].starts_with("/etc/x:0: line 0 xxx"), "{}", lines[0]);
    assert!(lines.iter().all(|l| l.len() <= MAX_EVIDENCE_LINE_BYTES));
    let last = lines.last().expect("a last line");
    assert!(
        last.contains("more evidence line(s) not shown (truncated)"),
        "{last}"
    );
    // The encodings carry it whole.
    assert_eq!(decode_native(&encode_native(&entry.fields)), owned(&entry));
    assert_eq!(parse_line(&format_line(&entry)), Some(owned(&entry)));
}

#[test]
fn native_encoding_uses_the_binary_form_only_for_newlines() {
    let fields = vec![
        ("A", "one".to_string()),
        ("B", "x\ny".to_string()),
        ("C", String::new()),
    ];
    let bytes = encode_native(&fields);
    let mut want = b"A=one\nB\n".to_vec();
    want.extend_from_slice(&3u64.to_le_bytes());
    want.extend_from_slice(b"x\ny\nC=\n");
    assert_eq!(bytes, want);
}

#[test]
fn line_format_round_trips_and_rejects_other_lines() {
    let entry = Entry {
        fields: vec![
            ("MESSAGE", "say \"hi\" \\ there\tnow\r".to_string()),
            ("HARDEND_EVIDENCE", "a:1: x\nb:2: \u{1b}[31m".to_string()),
            ("EMPTY", String::new()),
        ],
    };
    let line = format_line(&entry);
    assert!(!line.contains('\n') && !line.contains('\u{1b}'), "{line}");
    assert_eq!(
        line,
        r#"MESSAGE="say \"hi\" \\ there\tnow\r" HARDEND_EVIDENCE="a:1: x\nb:2: \u{1b}[31m" EMPTY="""#
    );
    assert_eq!(parse_line(&line), Some(owned(&entry)));
    for other in [
        "",
        "hardend: journald is unavailable",
        "2026-11-22T10:00:00Z INFO hardend: started",
        "MESSAGE=\"unterminated",
        "lower=\"x\"",
        "A=\"x\"B=\"y\"",
        "A=\"bad \\q escape\"",
    ] {
        assert_eq!(parse_line(other), None, "{other:?}");
    }
}

#[test]
fn line_sink_writes_one_parseable_line_per_entry() {
    let (mut sink, buffer) = LineSink::buffer();
    sink.drift(&event(DriftKind::Failing, Some(Status::Pass), Status::Fail));
    sink.policy_errors(&[
        "a.yaml:1:1: bad".to_string(),
        "b.yaml:2:2: worse".to_string(),
    ]);
    let text = String::from_utf8(buffer.lock().expect("lock").clone()).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let kinds: Vec<String> = lines
        .iter()
        .map(|l| {
            let fields = parse_line(l).expect("parseable");
            fields
                .into_iter()
                .find(|(n, _)| n == "HARDEND_KIND")
                .expect("kind")
                .1
        })
        .collect();
    assert_eq!(kinds, ["failing", "policy_rejected", "policy_rejected"]);
}

/// A bound datagram socket standing in for journald.
fn fake_journal(dir: &std::path::Path) -> (UnixDatagram, std::path::PathBuf) {
    let path = dir.join("socket");
    let server = UnixDatagram::bind(&path).expect("bind");
    server
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    (server, path)
}

/// Receives one datagram and, when it carries an fd instead of data, the
/// fd's contents.
fn receive(server: &UnixDatagram) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut data = vec![0u8; 256 * 1024];
    let mut control = vec![0u64; 16];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; the buffers outlive the call and their
    // sizes are given.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = (control.len() * 8) as _;
        let n = libc::recvmsg(server.as_raw_fd(), &mut msg, 0);
        assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if !cmsg.is_null() && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
            let mut file = std::fs::File::from(OwnedFd::from_raw_fd(fd));
            let seals = libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS);
            assert_eq!(
                seals & (libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE),
                libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE,
                "the memfd is sealed"
            );
            // journald reads the memfd from its start, whatever the offset.
            file.seek(std::io::SeekFrom::Start(0)).expect("seek");
            let mut contents = Vec::new();
            file.read_to_end(&mut contents).expect("read the memfd");
            data.truncate(n as usize);
            return (data, Some(contents));
        }
        n
    };
    data.truncate(n as usize);
    (data, None)
}

#[test]
fn journal_sink_sends_one_datagram_per_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, path) = fake_journal(dir.path());
    let mut sink = JournalSink::connect(&path).expect("connect");
    let e = event(DriftKind::Failing, Some(Status::Pass), Status::Fail);
    sink.drift(&e);
    sink.policy_errors(&["x.yaml:1:2: bad".to_string()]);
    let (first, fd) = receive(&server);
    assert!(fd.is_none());
    assert_eq!(decode_native(&first), owned(&Entry::drift(&e)));
    let (second, _) = receive(&server);
    assert_eq!(
        decode_native(&second),
        owned(&Entry::policy_rejected("x.yaml:1:2: bad"))
    );
}

#[test]
fn a_large_entry_goes_through_a_sealed_memfd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, path) = fake_journal(dir.path());
    let mut sink = JournalSink::connect(&path).expect("connect");
    sink.set_send_buffer(1024).expect("small send buffer");
    let mut e = event(DriftKind::Failing, Some(Status::Pass), Status::Fail);
    e.result.evidence = (0..60)
        .map(|i| Evidence {
            path: "/etc/big".into(),
            line: Some(i),
            text: Some("y".repeat(200)),
        })
        .collect();
    let entry = Entry::drift(&e);
    assert!(encode_native(&entry.fields).len() > 12_000);
    sink.send(&entry).expect("send through a memfd");
    let (data, fd) = receive(&server);
    assert!(data.is_empty(), "no payload besides the fd");
    assert_eq!(decode_native(&fd.expect("an fd was passed")), owned(&entry));
}

#[test]
fn a_restarted_journal_is_reconnected_and_a_missing_one_falls_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, path) = fake_journal(dir.path());
    let (fallback, buffer) = LineSink::buffer();
    let mut sink = JournalSink::connect(&path)
        .expect("connect")
        .with_fallback(fallback);
    let e = event(DriftKind::Failing, Some(Status::Pass), Status::Fail);
    sink.drift(&e);
    receive(&server);
    // journald restarts: a new socket at the same path.
    drop(server);
    std::fs::remove_file(&path).expect("remove the old socket");
    let (server, _) = fake_journal(dir.path());
    sink.drift(&e);
    let (data, _) = receive(&server);
    assert_eq!(decode_native(&data), owned(&Entry::drift(&e)));
    assert!(buffer.lock().expect("lock").is_empty(), "nothing fell back");
    // journald is gone: the event goes to the fallback, with a note.
    drop(server);
    std::fs::remove_file(&path).expect("remove the socket");
    sink.drift(&e);
    let text = String::from_utf8(buffer.lock().expect("lock").clone()).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("hardend: journald is unavailable"),
        "{}",
        lines[0]
    );
    let fields = parse_line(lines[1]).expect("an entry line");
    assert_eq!(fields, owned(&Entry::drift(&e)));
}

#[test]
fn auto_without_a_socket_and_off_write_lines() {
    // Only the construction is checked here: where `sink` writes is covered by
    // the real-journald test in tests/tests/daemon_journal.rs.
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(JournalSink::connect(dir.path().join("none")).is_err());
    let s = format!("{:?}", JournalSink::with_path(dir.path().join("none")));
    assert!(s.contains("connected: false"), "{s}");
}
