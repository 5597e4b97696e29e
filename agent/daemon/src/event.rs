//! Drift events: a rule's status changed (or its failing value did), or it
//! became overdue.

use hardend_engine::{RuleResult, Status};
use serde::{Deserialize, Serialize};

/// What kind of change an event is. Each kind has its own journald MESSAGE_ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// The rule fails now, and did not before (or its failing value changed).
    Failing,
    /// The rule no longer fails or errors (pass, not applicable, waived).
    Passing,
    /// The rule could not be evaluated.
    Error,
    /// A failing rule has failed for longer than its severity's deadline.
    Overdue,
}

/// One drift event, as sinks (journald, API streams, the collector) see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftEvent {
    /// Per-host sequence number, strictly increasing across restarts.
    pub seq: u64,
    /// When the change was seen (RFC 3339 UTC when serialised).
    pub at: jiff::Timestamp,
    pub kind: DriftKind,
    /// The status before; `None` when the rule is new to the daemon.
    pub previous: Option<Status>,
    /// The result now.
    pub result: RuleResult,
}

impl DriftKind {
    /// The kind of change from `previous` to `current`, or `None` when nothing
    /// worth an alert changed. A rule seen for the first time alerts only when
    /// it does not pass.
    pub fn classify(previous: Option<&RuleResult>, current: &RuleResult) -> Option<DriftKind> {
        let bad = |s: Status| matches!(s, Status::Fail | Status::Error);
        match (previous, current.status) {
            (None, Status::Fail) => Some(DriftKind::Failing),
            (None, Status::Error) => Some(DriftKind::Error),
            (None, _) => None,
            (Some(p), Status::Fail) if p.status != Status::Fail || p.actual != current.actual => {
                Some(DriftKind::Failing)
            }
            (Some(p), Status::Error)
                if p.status != Status::Error || p.message != current.message =>
            {
                Some(DriftKind::Error)
            }
            (Some(p), s) if bad(p.status) && !bad(s) => Some(DriftKind::Passing),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hardend_policy::Severity;

    fn result(status: Status, actual: &str) -> RuleResult {
        RuleResult {
            policy: "p".into(),
            rule: "r".into(),
            title: "t".into(),
            severity: Severity::High,
            status,
            waived_status: None,
            expected: Some("x = 0".into()),
            actual: Some(actual.into()),
            evidence: vec![],
            message: None,
        }
    }

    #[test]
    fn classification_table() {
        use DriftKind::{Failing, Passing};
        use Status::{Fail, NotApplicable, Pass, Waived};
        let error = Some(DriftKind::Error);
        // (previous status and actual, new status and actual, expected kind)
        type Case<'a> = (
            Option<(Status, &'a str)>,
            (Status, &'a str),
            Option<DriftKind>,
        );
        let cases: &[Case] = &[
            (None, (Pass, "0"), None),
            (None, (Fail, "1"), Some(Failing)),
            (None, (Status::Error, ""), error),
            (None, (NotApplicable, ""), None),
            (Some((Pass, "0")), (Pass, "0"), None),
            (Some((Pass, "0")), (Fail, "1"), Some(Failing)),
            (Some((Fail, "1")), (Fail, "1"), None),
            (Some((Fail, "1")), (Fail, "2"), Some(Failing)),
            (Some((Fail, "1")), (Pass, "0"), Some(Passing)),
            (Some((Fail, "1")), (Waived, "1"), Some(Passing)),
            (Some((Status::Error, "")), (Pass, "0"), Some(Passing)),
            (Some((Pass, "0")), (Status::Error, ""), error),
            (Some((Pass, "0")), (NotApplicable, ""), None),
            (Some((NotApplicable, "")), (Fail, "1"), Some(Failing)),
        ];
        for (prev, cur, want) in cases {
            let prev = prev.map(|(s, a)| result(s, a));
            let cur = result(cur.0, cur.1);
            assert_eq!(
                DriftKind::classify(prev.as_ref(), &cur),
                *want,
                "{:?} -> {:?}",
                prev.map(|p| p.status),
                cur.status
            );
        }
    }
}
