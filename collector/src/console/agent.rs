//! The console against one agent (`hardenctl --agent unix:PATH`): the
//! agent's `GetStatus` and `GetReport` answers recast as the Console
//! service's fleet shapes, so both modes print alike; and the findings
//! filter, which the collector applies itself and this mode applies here.

use std::collections::BTreeMap;

use hardend_proto as pb;

/// The default response deadlines of DESIGN.md (the agent does not report
/// its own), in seconds; low has none.
pub fn default_deadline_seconds(severity: pb::Severity) -> u64 {
    match severity {
        pb::Severity::Critical => 4 * 3600,
        pb::Severity::High => 24 * 3600,
        pb::Severity::Medium => 72 * 3600,
        pb::Severity::Low | pb::Severity::Unspecified => 0,
    }
}

/// What `hardenctl findings` asks for; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFilter {
    pub severity: Option<pb::Severity>,
    pub policy: Option<String>,
    pub rule: Option<String>,
    pub overdue_only: bool,
    pub host: Option<String>,
}

impl FindingFilter {
    /// The filter as a Console `ListFindings` request (open findings only).
    pub fn to_request(&self) -> pb::ListFindingsRequest {
        pb::ListFindingsRequest {
            severity: self.severity.unwrap_or(pb::Severity::Unspecified).into(),
            policy: self.policy.clone().unwrap_or_default(),
            rule: self.rule.clone().unwrap_or_default(),
            overdue_only: self.overdue_only,
            host: self.host.clone().unwrap_or_default(),
            include_resolved: false,
        }
    }

    /// Whether `f` is one of the findings asked for.
    pub fn matches(&self, f: &pb::Finding) -> bool {
        self.severity.is_none_or(|s| s as i32 == f.severity)
            && self.policy.as_ref().is_none_or(|p| *p == f.policy)
            && self.rule.as_ref().is_none_or(|r| *r == f.rule)
            && (!self.overdue_only || f.overdue)
            && self.host.as_ref().is_none_or(|h| *h == f.host)
    }
}

/// The agent as the one host of a fleet. It is being asked right now, so it
/// is connected and seen at `now`.
pub fn host_summary(status: &pb::GetStatusResponse, now: &str) -> pb::HostSummary {
    pb::HostSummary {
        host: status.hostname.clone(),
        agent_version: status.agent_version.clone(),
        last_seen_at: now.to_string(),
        connected: true,
        summary: status.summary,
        overdue: status.overdue,
        last_seq: 0,
    }
}

/// One rule result of `host` as a finding (open when failing).
pub fn finding(host: &str, r: &pb::RuleResult) -> pb::Finding {
    pb::Finding {
        host: host.to_string(),
        policy: r.policy.clone(),
        rule: r.rule.clone(),
        title: r.title.clone(),
        severity: r.severity,
        status: r.status,
        first_failed_at: r.first_failed_at.clone().unwrap_or_default(),
        resolved_at: String::new(),
        overdue: r.overdue,
        expected: r.expected.clone(),
        actual: r.actual.clone(),
        evidence: r.evidence.clone(),
    }
}

fn is_failing(r: &pb::RuleResult) -> bool {
    r.status == pb::Status::Fail as i32
}

/// The agent's open findings (its failing results) that `filter` matches,
/// most urgent first.
pub fn findings(report: &pb::Report, filter: &FindingFilter) -> Vec<pb::Finding> {
    let mut out: Vec<pb::Finding> = report
        .results
        .iter()
        .filter(|r| is_failing(r))
        .map(|r| finding(&report.hostname, r))
        .filter(|f| filter.matches(f))
        .collect();
    super::sort_findings(&mut out);
    out
}

/// The agent as `GetHost` would describe it: every result as a finding.
pub fn host(status: &pb::GetStatusResponse, report: &pb::Report, now: &str) -> pb::GetHostResponse {
    pb::GetHostResponse {
        host: Some(host_summary(status, now)),
        policies: report.policies.clone(),
        results: report
            .results
            .iter()
            .map(|r| finding(&report.hostname, r))
            .collect(),
    }
}

/// A fleet of one: per-severity counts of failing rules (the agent keeps no
/// history of fixes, so nothing is resolved) and per-policy compliance.
pub fn fleet_summary(report: &pb::Report) -> pb::FleetSummaryResponse {
    let failing: Vec<&pb::RuleResult> = report.results.iter().filter(|r| is_failing(r)).collect();
    let severities = super::SEVERITIES
        .into_iter()
        .map(|severity| {
            let of = || failing.iter().filter(|r| r.severity == severity as i32);
            pb::SeverityCounts {
                severity: severity.into(),
                open: count(of()),
                overdue: count(of().filter(|r| r.overdue)),
                mean_time_to_fix_seconds: 0.0,
                resolved: 0,
                deadline_seconds: default_deadline_seconds(severity),
            }
        })
        .collect();

    let mut by_policy: BTreeMap<&str, pb::PolicyCompliance> = BTreeMap::new();
    for p in &report.policies {
        by_policy
            .entry(&p.id)
            .or_insert_with(|| pb::PolicyCompliance {
                policy: p.id.clone(),
                ..Default::default()
            });
    }
    for r in &report.results {
        let entry = by_policy
            .entry(&r.policy)
            .or_insert_with(|| pb::PolicyCompliance {
                policy: r.policy.clone(),
                ..Default::default()
            });
        match pb::Status::try_from(r.status) {
            Ok(pb::Status::Pass) => entry.pass += 1,
            Ok(pb::Status::Fail) => entry.fail += 1,
            Ok(pb::Status::Error) => entry.error += 1,
            _ => {}
        }
    }
    let policies = by_policy
        .into_values()
        .map(|mut p| {
            let judged = p.pass + p.fail;
            p.score = if judged == 0 {
                100.0
            } else {
                f64::from(p.pass) * 100.0 / f64::from(judged)
            };
            p
        })
        .collect();

    pb::FleetSummaryResponse {
        hosts: 1,
        hosts_seen_last_hour: 1,
        severities,
        policies,
        open_findings: count(failing.iter()),
        overdue_findings: count(failing.iter().filter(|r| r.overdue)),
    }
}

fn count<I: Iterator>(it: I) -> u32 {
    u32::try_from(it.count()).unwrap_or(u32::MAX)
}
