//! What `hardenctl` prints: pure functions from the Console service's
//! answers (or an agent's, converted by [`agent`]) to 80-column tables for
//! people and to the JSON shapes of DESIGN.md for scripts.

pub mod agent;
pub mod table;

use std::fmt::Write as _;

use hardend_proto as pb;
use jiff::Timestamp;
use serde_json::{Value, json};

use table::{Column, Table, clean};

/// The width tables are fitted to.
pub const WIDTH: usize = 80;

/// The severities from the most to the least urgent.
pub const SEVERITIES: [pb::Severity; 4] = [
    pb::Severity::Critical,
    pb::Severity::High,
    pb::Severity::Medium,
    pb::Severity::Low,
];

/// The word for a severity, as in policies and the JSON report.
pub fn severity_word(severity: i32) -> &'static str {
    match pb::Severity::try_from(severity) {
        Ok(pb::Severity::Critical) => "critical",
        Ok(pb::Severity::High) => "high",
        Ok(pb::Severity::Medium) => "medium",
        Ok(pb::Severity::Low) => "low",
        Ok(pb::Severity::Unspecified) | Err(_) => "unspecified",
    }
}

/// The severity a word names (`critical`, `high`, `medium`, `low`).
pub fn parse_severity(word: &str) -> Option<pb::Severity> {
    SEVERITIES
        .into_iter()
        .find(|s| severity_word(*s as i32) == word.to_ascii_lowercase())
}

/// The word for a status, as in the JSON report.
pub fn status_word(status: i32) -> &'static str {
    match pb::Status::try_from(status) {
        Ok(pb::Status::Pass) => "pass",
        Ok(pb::Status::Fail) => "fail",
        Ok(pb::Status::Error) => "error",
        Ok(pb::Status::NotApplicable) => "not_applicable",
        Ok(pb::Status::Waived) => "waived",
        Ok(pb::Status::Unspecified) | Err(_) => "unspecified",
    }
}

/// The word for a kind of drift event.
pub fn drift_kind_word(kind: i32) -> &'static str {
    match pb::DriftKind::try_from(kind) {
        Ok(pb::DriftKind::Failing) => "failing",
        Ok(pb::DriftKind::Passing) => "passing",
        Ok(pb::DriftKind::Error) => "error",
        Ok(pb::DriftKind::Overdue) => "overdue",
        Ok(pb::DriftKind::Unspecified) | Err(_) => "unspecified",
    }
}

/// A duration for people: `45s`, `12m`, `5h 10m`, `3d 4h`.
pub fn human_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".to_string();
    }
    // Whole seconds are precise enough for people; the cast saturates.
    let s = seconds.round() as u64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if d > 0 {
        if h > 0 {
            format!("{d}d {h}h")
        } else {
            format!("{d}d")
        }
    } else if h > 0 {
        if m > 0 {
            format!("{h}h {m}m")
        } else {
            format!("{h}h")
        }
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{s}s")
    }
}

/// How long ago an RFC 3339 time was, for people (`-` when absent or unreadable).
pub fn age(at: &str, now: Timestamp) -> String {
    match at.parse::<Timestamp>() {
        Ok(t) => {
            let seconds = now.as_second() - t.as_second();
            human_duration(seconds.max(0) as f64)
        }
        Err(_) => "-".to_string(),
    }
}

fn opt_str(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_string())
    }
}

// ---------------------------------------------------------------------------
// summary

/// `hardenctl summary` for people.
pub fn summary_table(s: &pb::FleetSummaryResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Fleet: {} host{} ({} seen in the last hour)",
        s.hosts,
        if s.hosts == 1 { "" } else { "s" },
        s.hosts_seen_last_hour
    );
    let _ = writeln!(
        out,
        "Findings: {} open, {} overdue",
        s.open_findings, s.overdue_findings
    );
    out.push('\n');

    let mut sev = Table::new(vec![
        Column::left("SEVERITY"),
        Column::right("OPEN"),
        Column::right("OVERDUE"),
        Column::right("FIXED"),
        Column::right("MEAN TIME TO FIX"),
        Column::right("DEADLINE"),
        Column::left("MTTF VS DEADLINE"),
    ]);
    for severity in ordered_severities(&s.severities) {
        let deadline = if severity.deadline_seconds == 0 {
            "none".to_string()
        } else {
            human_duration(severity.deadline_seconds as f64)
        };
        let (mttf, verdict) = if severity.resolved == 0 {
            ("-".to_string(), String::new())
        } else {
            let mttf = severity.mean_time_to_fix_seconds;
            let verdict = if severity.deadline_seconds == 0 {
                String::new()
            } else if mttf <= severity.deadline_seconds as f64 {
                "within".to_string()
            } else {
                "OVER".to_string()
            };
            (human_duration(mttf), verdict)
        };
        sev.row(vec![
            severity_word(severity.severity).to_string(),
            severity.open.to_string(),
            severity.overdue.to_string(),
            severity.resolved.to_string(),
            mttf,
            deadline,
            verdict,
        ]);
    }
    out.push_str(&sev.render(WIDTH));
    out.push('\n');

    if s.policies.is_empty() {
        out.push_str("No policy results yet.\n");
    } else {
        let mut pol = Table::new(vec![
            Column::flex("POLICY"),
            Column::right("PASS"),
            Column::right("FAIL"),
            Column::right("ERROR"),
            Column::right("COMPLIANCE"),
        ]);
        for p in &s.policies {
            pol.row(vec![
                p.policy.clone(),
                p.pass.to_string(),
                p.fail.to_string(),
                p.error.to_string(),
                format!("{:.1}%", p.score),
            ]);
        }
        out.push_str(&pol.render(WIDTH));
    }
    out
}

/// The severities of a summary from critical to low (unknown ones last).
fn ordered_severities(list: &[pb::SeverityCounts]) -> Vec<&pb::SeverityCounts> {
    let rank = |s: &pb::SeverityCounts| {
        SEVERITIES
            .iter()
            .position(|x| *x as i32 == s.severity)
            .unwrap_or(SEVERITIES.len())
    };
    let mut v: Vec<&pb::SeverityCounts> = list.iter().collect();
    v.sort_by_key(|s| rank(s));
    v
}

/// `hardenctl summary --json`.
pub fn summary_json(s: &pb::FleetSummaryResponse) -> Value {
    json!({
        "hosts": s.hosts,
        "hosts_seen_last_hour": s.hosts_seen_last_hour,
        "open_findings": s.open_findings,
        "overdue_findings": s.overdue_findings,
        "severities": ordered_severities(&s.severities).into_iter().map(|c| json!({
            "severity": severity_word(c.severity),
            "open": c.open,
            "overdue": c.overdue,
            "resolved": c.resolved,
            "mean_time_to_fix_seconds": if c.resolved == 0 { Value::Null } else { json!(c.mean_time_to_fix_seconds) },
            "deadline_seconds": if c.deadline_seconds == 0 { Value::Null } else { json!(c.deadline_seconds) },
        })).collect::<Vec<_>>(),
        "policies": s.policies.iter().map(|p| json!({
            "policy": p.policy,
            "pass": p.pass,
            "fail": p.fail,
            "error": p.error,
            "score": p.score,
        })).collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------------------
// hosts

fn summary_object(s: Option<&pb::Summary>) -> Value {
    let s = s.cloned().unwrap_or_default();
    json!({
        "total": s.total,
        "pass": s.pass,
        "fail": s.fail,
        "error": s.error,
        "not_applicable": s.not_applicable,
        "waived": s.waived,
    })
}

/// One host as a JSON object with a `host` field.
pub fn host_object(h: &pb::HostSummary) -> Value {
    json!({
        "host": h.host,
        "agent_version": h.agent_version,
        "last_seen_at": opt_str(&h.last_seen_at),
        "connected": h.connected,
        "summary": summary_object(h.summary.as_ref()),
        "overdue": h.overdue,
        "last_seq": h.last_seq,
    })
}

/// `hardenctl hosts --json`: an array of host objects.
pub fn hosts_json(hosts: &[pb::HostSummary]) -> Value {
    Value::Array(hosts.iter().map(host_object).collect())
}

fn host_state(h: &pb::HostSummary, now: Timestamp) -> String {
    if h.connected {
        "connected".to_string()
    } else if h.last_seen_at.is_empty() {
        "never seen".to_string()
    } else {
        format!("{} ago", age(&h.last_seen_at, now))
    }
}

/// `hardenctl hosts` for people.
pub fn hosts_table(hosts: &[pb::HostSummary], now: Timestamp) -> String {
    if hosts.is_empty() {
        return "No hosts have reported yet.\n".to_string();
    }
    let mut t = Table::new(vec![
        Column::flex("HOST"),
        Column::left("SEEN"),
        Column::left("AGENT"),
        Column::right("PASS"),
        Column::right("FAIL"),
        Column::right("ERROR"),
        Column::right("OVERDUE"),
    ]);
    for h in hosts {
        let s = h.summary.unwrap_or_default();
        t.row(vec![
            h.host.clone(),
            host_state(h, now),
            h.agent_version.clone(),
            s.pass.to_string(),
            s.fail.to_string(),
            s.error.to_string(),
            h.overdue.to_string(),
        ]);
    }
    t.render(WIDTH)
}

// ---------------------------------------------------------------------------
// findings

/// One finding as a JSON object.
pub fn finding_object(f: &pb::Finding) -> Value {
    json!({
        "host": f.host,
        "policy": f.policy,
        "rule": f.rule,
        "title": f.title,
        "severity": severity_word(f.severity),
        "status": status_word(f.status),
        "first_failed_at": opt_str(&f.first_failed_at),
        "resolved_at": opt_str(&f.resolved_at),
        "overdue": f.overdue,
        "expected": f.expected,
        "actual": f.actual,
        "evidence": f.evidence.iter().map(evidence_object).collect::<Vec<_>>(),
    })
}

fn evidence_object(e: &pb::Evidence) -> Value {
    json!({ "path": e.path, "line": e.line, "text": e.text })
}

/// `hardenctl findings --json`: an array of finding objects.
pub fn findings_json(findings: &[pb::Finding]) -> Value {
    Value::Array(findings.iter().map(finding_object).collect())
}

fn findings_rows(findings: &[pb::Finding], with_host: bool, now: Timestamp) -> Table {
    // Open findings fail by definition; a STATUS column is shown only when
    // some do not (errors, resolved findings).
    let with_status = findings
        .iter()
        .any(|f| f.status != pb::Status::Fail as i32 || !f.resolved_at.is_empty());
    let mut columns = vec![Column::left("SEVERITY")];
    if with_host {
        columns.push(Column::flex("HOST"));
    }
    columns.push(Column::flex("POLICY/RULE"));
    if with_status {
        columns.push(Column::left("STATUS"));
    }
    columns.extend([Column::right("OPEN FOR"), Column::left("OVERDUE")]);
    let mut t = Table::new(columns);
    for f in findings {
        let open_for = if f.resolved_at.is_empty() {
            age(&f.first_failed_at, now)
        } else {
            "fixed".to_string()
        };
        let mut row = vec![severity_word(f.severity).to_string()];
        if with_host {
            row.push(f.host.clone());
        }
        row.push(format!("{}/{}", f.policy, f.rule));
        if with_status {
            row.push(status_word(f.status).to_string());
        }
        row.extend([open_for, if f.overdue { "yes" } else { "" }.to_string()]);
        t.row(row);
    }
    t
}

/// `hardenctl findings` for people.
pub fn findings_table(findings: &[pb::Finding], now: Timestamp) -> String {
    if findings.is_empty() {
        return "No findings match.\n".to_string();
    }
    let mut out = findings_rows(findings, true, now).render(WIDTH);
    let overdue = findings.iter().filter(|f| f.overdue).count();
    let _ = writeln!(
        out,
        "\n{} finding{}, {} overdue",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        overdue
    );
    out
}

// ---------------------------------------------------------------------------
// host

/// `hardenctl host NAME --json`: the host object plus its policies and all
/// its results.
pub fn host_json(h: &pb::GetHostResponse) -> Value {
    let mut object = match h.host.as_ref().map(host_object) {
        Some(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    object.insert(
        "policies".to_string(),
        Value::Array(
            h.policies
                .iter()
                .map(|p| json!({ "id": p.id, "version": p.version }))
                .collect(),
        ),
    );
    object.insert("results".to_string(), findings_json(&h.results));
    Value::Object(object)
}

/// `hardenctl host NAME` for people: the host, its policies, and its
/// results that do not pass.
pub fn host_table(h: &pb::GetHostResponse, now: Timestamp) -> String {
    let mut out = String::new();
    let host = h.host.clone().unwrap_or_default();
    let s = host.summary.unwrap_or_default();
    let _ = writeln!(out, "Host:      {}", clean(&host.host));
    let _ = writeln!(out, "Agent:     {}", clean(&host.agent_version));
    let _ = writeln!(out, "Seen:      {}", host_state(&host, now));
    let _ = writeln!(
        out,
        "Results:   {} total, {} pass, {} fail, {} error, {} n/a, {} waived; {} overdue",
        s.total, s.pass, s.fail, s.error, s.not_applicable, s.waived, host.overdue
    );
    let policies: Vec<String> = h
        .policies
        .iter()
        .map(|p| clean(&format!("{} {}", p.id, p.version)))
        .collect();
    let _ = writeln!(
        out,
        "Policies:  {}",
        if policies.is_empty() {
            "-".to_string()
        } else {
            policies.join(", ")
        }
    );
    out.push('\n');
    let mut open: Vec<pb::Finding> = h
        .results
        .iter()
        .filter(|f| {
            matches!(
                pb::Status::try_from(f.status),
                Ok(pb::Status::Fail | pb::Status::Error)
            )
        })
        .cloned()
        .collect();
    sort_findings(&mut open);
    if open.is_empty() {
        out.push_str("Every rule passes, is waived or does not apply.\n");
    } else {
        out.push_str(&findings_rows(&open, false, now).render(WIDTH));
    }
    out
}

/// Orders findings most urgent first: overdue, then by severity, then by
/// host, policy and rule.
pub fn sort_findings(findings: &mut [pb::Finding]) {
    findings.sort_by(|a, b| {
        b.overdue
            .cmp(&a.overdue)
            .then(b.severity.cmp(&a.severity))
            .then_with(|| a.host.cmp(&b.host))
            .then_with(|| a.policy.cmp(&b.policy))
            .then_with(|| a.rule.cmp(&b.rule))
    });
}

// ---------------------------------------------------------------------------
// watch

/// One drift event as a JSON object (one line of `hardenctl watch --json`).
pub fn drift_json(d: &pb::DriftEvent) -> Value {
    let r = d.result.clone().unwrap_or_default();
    json!({
        "host": d.hostname,
        "seq": d.seq,
        "at": d.at,
        "kind": drift_kind_word(d.kind),
        "previous": status_word(d.previous),
        "policy": r.policy,
        "rule": r.rule,
        "title": r.title,
        "severity": severity_word(r.severity),
        "status": status_word(r.status),
        "expected": r.expected,
        "actual": r.actual,
        "first_failed_at": r.first_failed_at,
        "overdue": r.overdue,
    })
}

/// One drift event as one line for people.
pub fn drift_line(d: &pb::DriftEvent) -> String {
    let r = d.result.clone().unwrap_or_default();
    let mut line = format!(
        "{} {} {} {}/{} {} -> {}",
        d.at,
        d.hostname,
        severity_word(r.severity),
        r.policy,
        r.rule,
        status_word(d.previous),
        status_word(r.status),
    );
    if pb::DriftKind::try_from(d.kind) == Ok(pb::DriftKind::Overdue) {
        line.push_str(" OVERDUE");
    }
    if !r.title.is_empty() {
        let _ = write!(line, ": {}", r.title);
    }
    if matches!(
        pb::Status::try_from(r.status),
        Ok(pb::Status::Fail | pb::Status::Error)
    ) {
        let actual = r.actual.as_deref().unwrap_or("-");
        let expected = r.expected.as_deref().unwrap_or("-");
        let _ = write!(line, " (actual: {actual}, expected: {expected})");
        if let Some(message) = r.message.as_deref() {
            let _ = write!(line, " [{message}]");
        }
    }
    clean(&line)
}
