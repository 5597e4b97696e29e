//! Conversions between the daemon's domain types (engine results, drift
//! events, the agent view) and the `hardend.v1` protobuf messages, in both
//! directions: the server encodes, the clients decode back into the engine's
//! `Report` so they print it with the same renderers as `hardend check`.

use std::collections::{BTreeMap, BTreeSet};

use hardend_engine::{HostInfo, PolicyRef, Report, RuleResult, Status, Summary};
use hardend_facts::Evidence;
use hardend_policy::Severity;
use hardend_proto as pb;
use serde::{Deserialize, Serialize};

use crate::{AgentView, DriftEvent, DriftKind, PolicyInfo, RuleKey};

/// Why a message from the other side could not be turned into a domain value.
/// Only a client sees these: a server that speaks a newer `hardend.v1` may
/// send enum values this build does not know.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    /// An enum field holds a value this build does not know (or is unspecified
    /// where a value is required).
    #[error("{field}: unknown or unspecified value {value}")]
    Enum { field: &'static str, value: i32 },
    /// A required message field is absent.
    #[error("{field}: missing")]
    Missing { field: &'static str },
    /// A timestamp field is not RFC 3339.
    #[error("{field}: {value:?} is not an RFC 3339 timestamp: {reason}")]
    Timestamp {
        field: &'static str,
        value: String,
        reason: String,
    },
}

/// The `GetStatus` answer in domain terms, as `hardend status --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub hostname: String,
    pub agent_version: String,
    pub root: String,
    pub started_at: String,
    /// `None` until the first full evaluation finished.
    pub last_full_scan_at: Option<String>,
    pub summary: Summary,
    pub overdue: u32,
    pub policies: Vec<PolicyRef>,
    pub policy_errors: Vec<String>,
    pub drift_events: u64,
}

/// A drift event as a client receives it: the event, and the host and
/// first-failed time the server attached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteDrift {
    pub hostname: String,
    #[serde(flatten)]
    pub event: DriftEvent,
    /// When the rule started failing without interruption, if it is failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failed_at: Option<String>,
    pub overdue: bool,
}

/// Saturates a count into the protobuf's `uint32`.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub fn status_to_proto(s: Status) -> pb::Status {
    match s {
        Status::Pass => pb::Status::Pass,
        Status::Fail => pb::Status::Fail,
        Status::Error => pb::Status::Error,
        Status::NotApplicable => pb::Status::NotApplicable,
        Status::Waived => pb::Status::Waived,
    }
}

/// The status of a wire value; `None` for `STATUS_UNSPECIFIED`.
pub fn status_from_proto(field: &'static str, value: i32) -> Result<Option<Status>, ConvertError> {
    match pb::Status::try_from(value) {
        Ok(pb::Status::Unspecified) => Ok(None),
        Ok(pb::Status::Pass) => Ok(Some(Status::Pass)),
        Ok(pb::Status::Fail) => Ok(Some(Status::Fail)),
        Ok(pb::Status::Error) => Ok(Some(Status::Error)),
        Ok(pb::Status::NotApplicable) => Ok(Some(Status::NotApplicable)),
        Ok(pb::Status::Waived) => Ok(Some(Status::Waived)),
        Err(_) => Err(ConvertError::Enum { field, value }),
    }
}

fn required_status(field: &'static str, value: i32) -> Result<Status, ConvertError> {
    status_from_proto(field, value)?.ok_or(ConvertError::Enum { field, value })
}

pub fn severity_to_proto(s: Severity) -> pb::Severity {
    match s {
        Severity::Low => pb::Severity::Low,
        Severity::Medium => pb::Severity::Medium,
        Severity::High => pb::Severity::High,
        Severity::Critical => pb::Severity::Critical,
    }
}

/// The severity of a wire value; `None` for `SEVERITY_UNSPECIFIED`.
pub fn severity_from_proto(
    field: &'static str,
    value: i32,
) -> Result<Option<Severity>, ConvertError> {
    match pb::Severity::try_from(value) {
        Ok(pb::Severity::Unspecified) => Ok(None),
        Ok(pb::Severity::Low) => Ok(Some(Severity::Low)),
        Ok(pb::Severity::Medium) => Ok(Some(Severity::Medium)),
        Ok(pb::Severity::High) => Ok(Some(Severity::High)),
        Ok(pb::Severity::Critical) => Ok(Some(Severity::Critical)),
        Err(_) => Err(ConvertError::Enum { field, value }),
    }
}

pub fn kind_to_proto(k: DriftKind) -> pb::DriftKind {
    match k {
        DriftKind::Failing => pb::DriftKind::Failing,
        DriftKind::Passing => pb::DriftKind::Passing,
        DriftKind::Error => pb::DriftKind::Error,
        DriftKind::Overdue => pb::DriftKind::Overdue,
    }
}

pub fn kind_from_proto(value: i32) -> Result<DriftKind, ConvertError> {
    match pb::DriftKind::try_from(value) {
        Ok(pb::DriftKind::Failing) => Ok(DriftKind::Failing),
        Ok(pb::DriftKind::Passing) => Ok(DriftKind::Passing),
        Ok(pb::DriftKind::Error) => Ok(DriftKind::Error),
        Ok(pb::DriftKind::Overdue) => Ok(DriftKind::Overdue),
        Ok(pb::DriftKind::Unspecified) | Err(_) => Err(ConvertError::Enum {
            field: "drift_event.kind",
            value,
        }),
    }
}

pub fn evidence_to_proto(e: &Evidence) -> pb::Evidence {
    pb::Evidence {
        path: e.path.clone(),
        line: e.line,
        text: e.text.clone(),
    }
}

pub fn evidence_from_proto(e: pb::Evidence) -> Evidence {
    Evidence {
        path: e.path,
        line: e.line,
        text: e.text,
    }
}

pub fn summary_to_proto(s: &Summary) -> pb::Summary {
    pb::Summary {
        total: count(s.total),
        pass: count(s.pass),
        fail: count(s.fail),
        error: count(s.error),
        not_applicable: count(s.not_applicable),
        waived: count(s.waived),
    }
}

pub fn summary_from_proto(s: &pb::Summary) -> Summary {
    // A u32 always fits a usize on the 32- and 64-bit targets hardend runs on.
    let n = |v: u32| usize::try_from(v).unwrap_or(usize::MAX);
    Summary {
        total: n(s.total),
        pass: n(s.pass),
        fail: n(s.fail),
        error: n(s.error),
        not_applicable: n(s.not_applicable),
        waived: n(s.waived),
    }
}

/// One result, with the daemon's first-failed time and overdue flag.
pub fn rule_result_to_proto(
    r: &RuleResult,
    first_failed_at: Option<jiff::Timestamp>,
    overdue: bool,
) -> pb::RuleResult {
    pb::RuleResult {
        policy: r.policy.clone(),
        rule: r.rule.clone(),
        title: r.title.clone(),
        severity: severity_to_proto(r.severity).into(),
        status: status_to_proto(r.status).into(),
        waived_status: r
            .waived_status
            .map_or(pb::Status::Unspecified, status_to_proto)
            .into(),
        expected: r.expected.clone(),
        actual: r.actual.clone(),
        evidence: r.evidence.iter().map(evidence_to_proto).collect(),
        message: r.message.clone(),
        first_failed_at: first_failed_at.map(|t| t.to_string()),
        overdue,
    }
}

pub fn rule_result_from_proto(r: pb::RuleResult) -> Result<RuleResult, ConvertError> {
    Ok(RuleResult {
        severity: severity_from_proto("rule_result.severity", r.severity)?.ok_or(
            ConvertError::Enum {
                field: "rule_result.severity",
                value: r.severity,
            },
        )?,
        status: required_status("rule_result.status", r.status)?,
        waived_status: status_from_proto("rule_result.waived_status", r.waived_status)?,
        policy: r.policy,
        rule: r.rule,
        title: r.title,
        expected: r.expected,
        actual: r.actual,
        evidence: r.evidence.into_iter().map(evidence_from_proto).collect(),
        message: r.message,
    })
}

fn key_of(r: &RuleResult) -> RuleKey {
    (r.policy.clone(), r.rule.clone())
}

/// A report, each result with the first-failed time and overdue flag the
/// daemon keeps for it.
pub fn report_to_proto(
    report: &Report,
    first_failed: &BTreeMap<RuleKey, jiff::Timestamp>,
    overdue: &BTreeSet<RuleKey>,
) -> pb::Report {
    pb::Report {
        schema: report.schema.clone(),
        hostname: report.host.hostname.clone(),
        root: report.host.root.clone(),
        started_at: report.started_at.clone(),
        duration_ms: report.duration_ms,
        policies: report.policies.iter().map(policy_ref_to_proto).collect(),
        summary: Some(summary_to_proto(&report.summary)),
        results: report
            .results
            .iter()
            .map(|r| {
                let key = key_of(r);
                rule_result_to_proto(r, first_failed.get(&key).copied(), overdue.contains(&key))
            })
            .collect(),
    }
}

/// The view's report, as `GetReport` and `Evaluate` answer.
pub fn view_report_to_proto(view: &AgentView) -> pb::Report {
    report_to_proto(&view.report, &view.first_failed, &view.overdue)
}

/// Back to the engine's report (dropping first-failed times and overdue
/// flags, which the report format does not carry). A missing summary is
/// recomputed from the results.
pub fn report_from_proto(r: pb::Report) -> Result<Report, ConvertError> {
    let results = r
        .results
        .into_iter()
        .map(rule_result_from_proto)
        .collect::<Result<Vec<_>, _>>()?;
    let summary = match &r.summary {
        Some(s) => summary_from_proto(s),
        None => Summary::of(&results),
    };
    Ok(Report {
        schema: r.schema,
        host: HostInfo {
            hostname: r.hostname,
            root: r.root,
        },
        started_at: r.started_at,
        duration_ms: r.duration_ms,
        policies: r.policies.into_iter().map(policy_ref_from_proto).collect(),
        summary,
        results,
    })
}

pub fn policy_ref_to_proto(p: &PolicyRef) -> pb::PolicyRef {
    pb::PolicyRef {
        id: p.id.clone(),
        version: p.version.clone(),
    }
}

pub fn policy_ref_from_proto(p: pb::PolicyRef) -> PolicyRef {
    PolicyRef {
        id: p.id,
        version: p.version,
    }
}

pub fn policy_info_to_proto(p: &PolicyInfo) -> pb::PolicyInfo {
    pb::PolicyInfo {
        id: p.id.clone(),
        version: p.version.clone(),
        title: p.title.clone(),
        source: p.source.clone(),
        rules: p.rules,
    }
}

pub fn policy_info_from_proto(p: pb::PolicyInfo) -> PolicyInfo {
    PolicyInfo {
        id: p.id,
        version: p.version,
        title: p.title,
        source: p.source,
        rules: p.rules,
    }
}

/// A drift event as the stream carries it, with the view's host name and the
/// rule's first-failed time. An `Overdue` event is overdue by definition,
/// whether or not the view has caught up with it yet.
pub fn drift_to_proto(event: &DriftEvent, view: &AgentView) -> pb::DriftEvent {
    let key = key_of(&event.result);
    // The view may lag behind or run ahead of the event; only a failing
    // result can be overdue or have a first-failed time.
    let failing = event.result.status == Status::Fail;
    let overdue = event.kind == DriftKind::Overdue || (failing && view.overdue.contains(&key));
    let first_failed = if failing {
        view.first_failed.get(&key).copied()
    } else {
        None
    };
    pb::DriftEvent {
        seq: event.seq,
        at: event.at.to_string(),
        kind: kind_to_proto(event.kind).into(),
        previous: event
            .previous
            .map_or(pb::Status::Unspecified, status_to_proto)
            .into(),
        result: Some(rule_result_to_proto(&event.result, first_failed, overdue)),
        hostname: view.hostname.clone(),
    }
}

fn timestamp(field: &'static str, value: &str) -> Result<jiff::Timestamp, ConvertError> {
    value
        .parse::<jiff::Timestamp>()
        .map_err(|e| ConvertError::Timestamp {
            field,
            value: value.to_string(),
            reason: e.to_string(),
        })
}

pub fn drift_from_proto(e: pb::DriftEvent) -> Result<RemoteDrift, ConvertError> {
    let result = e.result.ok_or(ConvertError::Missing {
        field: "drift_event.result",
    })?;
    let first_failed_at = result.first_failed_at.clone();
    let overdue = result.overdue;
    Ok(RemoteDrift {
        hostname: e.hostname,
        event: DriftEvent {
            seq: e.seq,
            at: timestamp("drift_event.at", &e.at)?,
            kind: kind_from_proto(e.kind)?,
            previous: status_from_proto("drift_event.previous", e.previous)?,
            result: rule_result_from_proto(result)?,
        },
        first_failed_at,
        overdue,
    })
}

/// The `GetStatus` answer for a view.
pub fn status_response(view: &AgentView) -> pb::GetStatusResponse {
    pb::GetStatusResponse {
        hostname: view.hostname.clone(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        root: view.root.clone(),
        started_at: view.started_at.to_string(),
        last_full_scan_at: view
            .last_full_scan_at
            .map(|t| t.to_string())
            .unwrap_or_default(),
        summary: Some(summary_to_proto(&view.report.summary)),
        overdue: count(view.overdue.len()),
        policies: view
            .report
            .policies
            .iter()
            .map(policy_ref_to_proto)
            .collect(),
        policy_errors: view.policy_errors.clone(),
        drift_events: view.drift_events,
    }
}

pub fn status_from_response(s: pb::GetStatusResponse) -> AgentStatus {
    AgentStatus {
        summary: s
            .summary
            .as_ref()
            .map(summary_from_proto)
            .unwrap_or_default(),
        hostname: s.hostname,
        agent_version: s.agent_version,
        root: s.root,
        started_at: s.started_at,
        last_full_scan_at: (!s.last_full_scan_at.is_empty()).then_some(s.last_full_scan_at),
        overdue: s.overdue,
        policies: s.policies.into_iter().map(policy_ref_from_proto).collect(),
        policy_errors: s.policy_errors,
        drift_events: s.drift_events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(rule: &str, severity: Severity, status: Status) -> RuleResult {
        RuleResult {
            policy: "linux-baseline-ssh".into(),
            rule: rule.into(),
            title: format!("title of {rule}"),
            severity,
            status,
            waived_status: (status == Status::Waived).then_some(Status::Fail),
            expected: Some("passwordauthentication = no".into()),
            actual: (status != Status::NotApplicable).then(|| "yes".into()),
            evidence: vec![
                Evidence {
                    path: "/etc/ssh/sshd_config".into(),
                    line: Some(57),
                    text: Some("PasswordAuthentication yes".into()),
                },
                Evidence::path("/etc/ssh/sshd_config.d"),
            ],
            message: (status == Status::Error).then(|| "cannot read: denied".into()),
        }
    }

    fn report() -> Report {
        let results = vec![
            result("a-pass", Severity::Critical, Status::Pass),
            result("b-fail", Severity::High, Status::Fail),
            result("c-error", Severity::Medium, Status::Error),
            result("d-na", Severity::Low, Status::NotApplicable),
            result("e-waived", Severity::Critical, Status::Waived),
        ];
        Report {
            schema: hardend_engine::REPORT_SCHEMA.into(),
            host: HostInfo {
                hostname: "web-1".into(),
                root: "/".into(),
            },
            started_at: "2026-11-22T10:00:00.123Z".into(),
            duration_ms: 3.25,
            policies: vec![PolicyRef {
                id: "linux-baseline-ssh".into(),
                version: "1.0.0".into(),
            }],
            summary: Summary::of(&results),
            results,
        }
    }

    fn view() -> AgentView {
        let failed_at: jiff::Timestamp = "2026-11-22T06:00:00Z".parse().expect("timestamp");
        let key = ("linux-baseline-ssh".to_string(), "b-fail".to_string());
        AgentView {
            hostname: "web-1".into(),
            root: "/".into(),
            started_at: "2026-11-22T09:59:00Z".parse().expect("timestamp"),
            last_full_scan_at: Some("2026-11-22T10:00:00Z".parse().expect("timestamp")),
            report: report(),
            first_failed: BTreeMap::from([(key.clone(), failed_at)]),
            overdue: BTreeSet::from([key]),
            policies: vec![PolicyInfo {
                id: "linux-baseline-ssh".into(),
                version: "1.0.0".into(),
                title: "SSH".into(),
                source: "/usr/share/hardend/policies/ssh.yaml".into(),
                rules: 5,
            }],
            policy_errors: vec!["/etc/hardend/policies.d/x.yaml:3:5: unknown key".into()],
            drift_events: 7,
        }
    }

    #[test]
    fn report_round_trips_through_the_wire_format() {
        let view = view();
        let wire = view_report_to_proto(&view);
        // Encode and decode for real, so field numbers and optionals are exercised.
        let bytes = prost::Message::encode_to_vec(&wire);
        let decoded: pb::Report = prost::Message::decode(bytes.as_slice()).expect("decode");
        assert_eq!(decoded, wire);
        let back = report_from_proto(decoded).expect("convert back");
        assert_eq!(back, view.report);
    }

    #[test]
    fn report_carries_first_failed_and_overdue_only_for_the_failing_rule() {
        let wire = view_report_to_proto(&view());
        let by_rule: BTreeMap<&str, &pb::RuleResult> =
            wire.results.iter().map(|r| (r.rule.as_str(), r)).collect();
        let failing = by_rule["b-fail"];
        assert_eq!(
            failing.first_failed_at.as_deref(),
            Some("2026-11-22T06:00:00Z")
        );
        assert!(failing.overdue);
        assert_eq!(failing.status, pb::Status::Fail as i32);
        assert_eq!(failing.severity, pb::Severity::High as i32);
        let passing = by_rule["a-pass"];
        assert_eq!(passing.first_failed_at, None);
        assert!(!passing.overdue);
        assert_eq!(passing.waived_status, pb::Status::Unspecified as i32);
        assert_eq!(by_rule["e-waived"].waived_status, pb::Status::Fail as i32);
        let summary = wire.summary.expect("summary");
        assert_eq!((summary.total, summary.pass, summary.fail), (5, 1, 1));
        assert_eq!(
            (summary.error, summary.not_applicable, summary.waived),
            (1, 1, 1)
        );
    }

    #[test]
    fn missing_summary_is_recomputed() {
        let mut wire = view_report_to_proto(&view());
        wire.summary = None;
        let back = report_from_proto(wire).expect("convert");
        assert_eq!(back.summary, Summary::of(&back.results));
        assert_eq!(back.summary.fail, 1);
    }

    #[test]
    fn unknown_enum_values_are_errors_not_panics() {
        let mut wire = view_report_to_proto(&view());
        wire.results[1].status = 99;
        assert_eq!(
            report_from_proto(wire.clone()),
            Err(ConvertError::Enum {
                field: "rule_result.status",
                value: 99
            })
        );
        wire.results[1].status = pb::Status::Unspecified as i32;
        assert!(report_from_proto(wire.clone()).is_err());
        wire.results[1].status = pb::Status::Fail as i32;
        wire.results[1].severity = 0;
        assert_eq!(
            report_from_proto(wire),
            Err(ConvertError::Enum {
                field: "rule_result.severity",
                value: 0
            })
        );
    }

    #[test]
    fn drift_event_round_trips() {
        let view = view();
        for (kind, previous, status) in [
            (DriftKind::Failing, Some(Status::Pass), Status::Fail),
            (DriftKind::Passing, Some(Status::Fail), Status::Pass),
            (DriftKind::Error, None, Status::Error),
            (DriftKind::Overdue, Some(Status::Fail), Status::Fail),
        ] {
            let mut r = result("b-fail", Severity::High, status);
            r.waived_status = None;
            let event = DriftEvent {
                seq: 42,
                at: "2026-11-22T10:01:02.5Z".parse().expect("timestamp"),
                kind,
                previous,
                result: r,
            };
            let wire = drift_to_proto(&event, &view);
            assert_eq!(wire.hostname, "web-1");
            let back = drift_from_proto(wire).expect("convert back");
            assert_eq!(back.event, event);
            assert_eq!(back.hostname, "web-1");
            let failing = status == Status::Fail;
            assert_eq!(back.overdue, failing || kind == DriftKind::Overdue);
            assert_eq!(
                back.first_failed_at.as_deref(),
                failing.then_some("2026-11-22T06:00:00Z")
            );
        }
    }

    #[test]
    fn drift_event_rejects_bad_time_and_missing_result() {
        let view = view();
        let event = DriftEvent {
            seq: 1,
            at: jiff::Timestamp::UNIX_EPOCH,
            kind: DriftKind::Failing,
            previous: None,
            result: result("b-fail", Severity::High, Status::Fail),
        };
        let mut wire = drift_to_proto(&event, &view);
        wire.at = "yesterday".into();
        assert!(matches!(
            drift_from_proto(wire.clone()),
            Err(ConvertError::Timestamp {
                field: "drift_event.at",
                ..
            })
        ));
        wire.at = "2026-11-22T10:00:00Z".into();
        wire.result = None;
        assert_eq!(
            drift_from_proto(wire.clone()),
            Err(ConvertError::Missing {
                field: "drift_event.result"
            })
        );
        wire.result = Some(rule_result_to_proto(&event.result, None, false));
        wire.kind = 0;
        assert!(drift_from_proto(wire).is_err());
    }

    #[test]
    fn status_round_trips() {
        let view = view();
        let wire = status_response(&view);
        assert_eq!(wire.agent_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(wire.overdue, 1);
        let status = status_from_response(wire);
        assert_eq!(status.hostname, "web-1");
        assert_eq!(status.started_at, "2026-11-22T09:59:00Z");
        assert_eq!(
            status.last_full_scan_at.as_deref(),
            Some("2026-11-22T10:00:00Z")
        );
        assert_eq!(status.summary, view.report.summary);
        assert_eq!(status.policies, view.report.policies);
        assert_eq!(status.policy_errors, view.policy_errors);
        assert_eq!(status.drift_events, 7);
        let mut never = view.clone();
        never.last_full_scan_at = None;
        assert_eq!(
            status_from_response(status_response(&never)).last_full_scan_at,
            None
        );
    }

    #[test]
    fn policy_info_round_trips() {
        let view = view();
        let back: Vec<PolicyInfo> = view
            .policies
            .iter()
            .map(policy_info_to_proto)
            .map(policy_info_from_proto)
            .collect();
        assert_eq!(back, view.policies);
    }

    #[test]
    fn severities_and_statuses_map_one_to_one() {
        for s in Severity::ALL {
            let wire: i32 = severity_to_proto(s).into();
            assert_eq!(severity_from_proto("s", wire), Ok(Some(s)));
        }
        for s in [
            Status::Pass,
            Status::Fail,
            Status::Error,
            Status::NotApplicable,
            Status::Waived,
        ] {
            let wire: i32 = status_to_proto(s).into();
            assert_eq!(status_from_proto("s", wire), Ok(Some(s)));
        }
        for k in [
            DriftKind::Failing,
            DriftKind::Passing,
            DriftKind::Error,
            DriftKind::Overdue,
        ] {
            assert_eq!(kind_from_proto(kind_to_proto(k).into()), Ok(k));
        }
        assert_eq!(severity_from_proto("s", 0), Ok(None));
        assert!(severity_from_proto("s", -3).is_err());
    }
}
