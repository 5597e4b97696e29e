//! Alerts as journal entries: the fields, priorities and MESSAGE_IDs of a drift
//! event, written to journald over its native protocol or, without a journal,
//! to stderr as the same fields on one line.
//!
//! The MESSAGE_IDs are fixed: `packaging/hardend.catalog` explains each one,
//! and a test checks that the two agree.

mod line;
mod native;

use hardend_engine::{RuleResult, Status};
use hardend_policy::Severity;
use hardend_policy::config::JournaldMode;

use crate::{AlertSink, DriftEvent, DriftKind};

pub use line::{LineSink, format_line, parse_line};
pub use native::{DEFAULT_SOCKET, JournalError, JournalSink, encode_native};

/// The fixed 128-bit MESSAGE_ID of each kind of entry, as journald writes
/// them (32 lower-case hex digits).
pub mod message_id {
    /// A rule fails now (or fails with a different value).
    pub const FAILING: &str = "58a0e51a7b4e4686b5cbdeece8bb37e3";
    /// A rule that failed or errored is back to passing.
    pub const PASSING: &str = "af7c6f47a6634bc9949412be96d45194";
    /// A rule could not be evaluated.
    pub const ERROR: &str = "cd33d5329391485aa5ac104e452edee4";
    /// A failing rule is past its severity's deadline.
    pub const OVERDUE: &str = "cf2e5a83433f4dff92bb9d7d274c04b1";
    /// A policy file was refused at a (re)load.
    pub const POLICY_REJECTED: &str = "92a96122ffb344ce98b58ee04eec56e9";

    /// Every id with its `HARDEND_KIND`.
    pub const ALL: [(&str, &str); 5] = [
        ("failing", FAILING),
        ("passing", PASSING),
        ("error", ERROR),
        ("overdue", OVERDUE),
        ("policy_rejected", POLICY_REJECTED),
    ];
}

/// The longest value of an ordinary field, in bytes; longer ones are cut and
/// say so.
pub const MAX_FIELD_BYTES: usize = 4096;
/// The longest evidence line, in bytes.
pub const MAX_EVIDENCE_LINE_BYTES: usize = 1024;
/// The most evidence lines in one entry.
pub const MAX_EVIDENCE_LINES: usize = 64;
/// The longest `HARDEND_EVIDENCE` value, in bytes.
pub const MAX_EVIDENCE_BYTES: usize = 16 * 1024;

/// The sink for a `journald` setting: `On` writes to journald (falling back to
/// stderr event by event when a write fails), `Off` writes to stderr, and
/// `Auto` writes to journald when its socket exists and accepts a datagram
/// socket's connection, else to stderr.
pub fn sink(mode: JournaldMode) -> Box<dyn AlertSink> {
    match mode {
        JournaldMode::On => Box::new(JournalSink::new()),
        JournaldMode::Off => Box::new(LineSink::stderr()),
        JournaldMode::Auto => match JournalSink::connect(DEFAULT_SOCKET) {
            Ok(sink) => Box::new(sink),
            Err(_) => Box::new(LineSink::stderr()),
        },
    }
}

/// The MESSAGE_ID of a drift kind.
pub fn message_id(kind: DriftKind) -> &'static str {
    match kind {
        DriftKind::Failing => message_id::FAILING,
        DriftKind::Passing => message_id::PASSING,
        DriftKind::Error => message_id::ERROR,
        DriftKind::Overdue => message_id::OVERDUE,
    }
}

/// The `HARDEND_KIND` value of a drift kind.
pub fn kind_name(kind: DriftKind) -> &'static str {
    match kind {
        DriftKind::Failing => "failing",
        DriftKind::Passing => "passing",
        DriftKind::Error => "error",
        DriftKind::Overdue => "overdue",
    }
}

/// The syslog priority of a severity: critical 2, high 3, medium 4, low 5.
pub fn severity_priority(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
    }
}

/// The syslog priority of a drift event: the severity's for failing and
/// overdue, 3 (err) for an evaluation error, 6 (info) back to passing.
pub fn priority(kind: DriftKind, severity: Severity) -> u8 {
    match kind {
        DriftKind::Failing | DriftKind::Overdue => severity_priority(severity),
        DriftKind::Error => 3,
        DriftKind::Passing => 6,
    }
}

/// One journal entry: its fields in a fixed order. Values are already
/// sanitised (no NUL, bounded length); only `HARDEND_EVIDENCE` and
/// `HARDEND_MESSAGE` may hold newlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub fields: Vec<(&'static str, String)>,
}

impl Entry {
    /// The entry of a drift event.
    pub fn drift(event: &DriftEvent) -> Entry {
        let r = &event.result;
        let previous = event.previous.map(Status::as_str).unwrap_or("none");
        let mut fields: Vec<(&'static str, String)> = vec![
            ("PRIORITY", priority(event.kind, r.severity).to_string()),
            ("SYSLOG_IDENTIFIER", "hardend".to_string()),
            ("MESSAGE_ID", message_id(event.kind).to_string()),
            ("HARDEND_KIND", kind_name(event.kind).to_string()),
            ("HARDEND_SEQ", event.seq.to_string()),
            ("HARDEND_POLICY", single_line(&r.policy)),
            ("HARDEND_RULE", single_line(&r.rule)),
            ("HARDEND_SEVERITY", r.severity.as_str().to_string()),
            ("HARDEND_PREVIOUS", previous.to_string()),
            ("HARDEND_STATUS", r.status.as_str().to_string()),
            ("HARDEND_TITLE", single_line(&r.title)),
            (
                "HARDEND_EXPECTED",
                single_line(r.expected.as_deref().unwrap_or("")),
            ),
            (
                "HARDEND_ACTUAL",
                single_line(r.actual.as_deref().unwrap_or("")),
            ),
            ("HARDEND_EVIDENCE", evidence(r)),
        ];
        if let Some(message) = &r.message {
            fields.push(("HARDEND_MESSAGE", bounded(message, MAX_FIELD_BYTES)));
        }
        fields.push(("HARDEND_AT", event.at.to_string()));
        fields.push(("MESSAGE", drift_message(event)));
        Entry { fields }
    }

    /// The entry of a policy file refused at a (re)load; `error` is
    /// `file:line:col: message`.
    pub fn policy_rejected(error: &str) -> Entry {
        let error = bounded(error, MAX_FIELD_BYTES);
        let message = single_line(&format!(
            "hardend: policy rejected, the last good policies stay in force: {error}"
        ));
        Entry {
            fields: vec![
                ("PRIORITY", "3".to_string()),
                ("SYSLOG_IDENTIFIER", "hardend".to_string()),
                ("MESSAGE_ID", message_id::POLICY_REJECTED.to_string()),
                ("HARDEND_KIND", "policy_rejected".to_string()),
                ("HARDEND_ERROR", error),
                ("MESSAGE", message),
            ],
        }
    }

    /// The value of a field, if the entry has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The one human line of a drift event.
fn drift_message(event: &DriftEvent) -> String {
    let r = &event.result;
    let previous = event.previous.map(Status::as_str).unwrap_or("none");
    let mut facts = Vec::new();
    if let Some(actual) = &r.actual {
        facts.push(format!("actual: {}", display(actual)));
    }
    if let Some(expected) = &r.expected {
        facts.push(format!("expected: {}", display(expected)));
    }
    if let Some(message) = &r.message {
        facts.push(message.clone());
    }
    let facts = if facts.is_empty() {
        String::new()
    } else {
        format!(" ({})", facts.join(", "))
    };
    let text = match event.kind {
        DriftKind::Overdue => format!(
            "hardening overdue: {}/{} still fails past its {} response deadline (overdue as of {}): {}{}",
            r.policy,
            r.rule,
            r.severity.as_str(),
            event.at,
            r.title,
            facts
        ),
        _ => format!(
            "hardening drift: {}/{} {} -> {}: {}{}",
            r.policy,
            r.rule,
            previous,
            r.status.as_str(),
            r.title,
            facts
        ),
    };
    single_line(&text)
}

/// An empty value shown as such in a sentence.
fn display(value: &str) -> &str {
    if value.is_empty() { "(empty)" } else { value }
}

/// `HARDEND_EVIDENCE`: one `path:line: text` line per piece of evidence,
/// bounded in line length, line count and total size.
fn evidence(r: &RuleResult) -> String {
    let mut out = String::new();
    for (i, e) in r.evidence.iter().enumerate() {
        let mut text = e.path.clone();
        if let Some(line) = e.line {
            text.push_str(&format!(":{line}"));
        }
        if let Some(t) = &e.text {
            text.push_str(": ");
            text.push_str(t);
        }
        let text = bounded(&single_line(&text), MAX_EVIDENCE_LINE_BYTES);
        let remaining = r.evidence.len() - i;
        if i == MAX_EVIDENCE_LINES || out.len() + text.len() + 1 > MAX_EVIDENCE_BYTES {
            out.push_str(&format!(
                "... {remaining} more evidence line(s) not shown (truncated)"
            ));
            break;
        }
        out.push_str(&text);
        out.push('\n');
    }
    if out.ends_with('\n') {
        out.pop();
    }
    out
}

/// A value on one line: control characters (newlines included) become
/// spaces, and the length is bounded.
fn single_line(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    bounded(&cleaned, MAX_FIELD_BYTES)
}

/// A value without NUL bytes and at most `max` bytes long (cut at a character
/// boundary, with a note saying how long it was).
fn bounded(value: &str, max: usize) -> String {
    let value = if value.contains('\0') {
        value.replace('\0', "\u{FFFD}")
    } else {
        value.to_string()
    };
    if value.len() <= max {
        return value;
    }
    let note = format!("... (truncated, {} bytes in all)", value.len());
    let mut cut = max.saturating_sub(note.len());
    while cut > 0 && !value.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", &value[..cut], note)
}

#[cfg(test)]
mod tests;
