//! What `hardenctl` prints, from fixed Console answers: table snapshots
//! that fit 80 columns, the JSON shapes DESIGN.md promises, hostile text
//! kept off the terminal, and one agent recast as a fleet of one.

use hardend_collector::console::{self, agent, agent::FindingFilter};
use hardend_proto as pb;
use jiff::Timestamp;
use serde_json::json;

fn now() -> Timestamp {
    "2026-11-22T12:00:00Z".parse().unwrap()
}

fn summary(total: u32, pass: u32, fail: u32, error: u32) -> Option<pb::Summary> {
    Some(pb::Summary {
        total,
        pass,
        fail,
        error,
        not_applicable: total - pass - fail - error,
        waived: 0,
    })
}

fn hosts() -> Vec<pb::HostSummary> {
    vec![
        pb::HostSummary {
            host: "web-1".into(),
            agent_version: "0.1.0".into(),
            last_seen_at: "2026-11-22T11:59:58Z".into(),
            connected: true,
            summary: summary(212, 180, 25, 1),
            overdue: 2,
            last_seq: 4411,
        },
        pb::HostSummary {
            host: "db-primary.dc-2.example.internal".into(),
            agent_version: "0.1.0".into(),
            last_seen_at: "2026-11-22T07:15:00Z".into(),
            connected: false,
            summary: summary(212, 205, 1, 0),
            overdue: 0,
            last_seq: 93,
        },
    ]
}

#[allow(clippy::too_many_arguments)]
fn finding(
    host: &str,
    policy: &str,
    rule: &str,
    severity: pb::Severity,
    first_failed_at: &str,
    overdue: bool,
    actual: &str,
    expected: &str,
) -> pb::Finding {
    pb::Finding {
        host: host.into(),
        policy: policy.into(),
        rule: rule.into(),
        title: format!("{rule} title"),
        severity: severity.into(),
        status: pb::Status::Fail.into(),
        first_failed_at: first_failed_at.into(),
        resolved_at: String::new(),
        overdue,
        expected: Some(expected.into()),
        actual: Some(actual.into()),
        evidence: vec![pb::Evidence {
            path: "/etc/ssh/sshd_config".into(),
            line: Some(57),
            text: Some("PasswordAuthentication yes".into()),
        }],
    }
}

fn findings() -> Vec<pb::Finding> {
    vec![
        finding(
            "web-1",
            "linux-baseline-ssh",
            "ssh-password-auth-disabled",
            pb::Severity::Critical,
            "2026-11-22T06:30:00Z",
            true,
            "yes",
            "no",
        ),
        finding(
            "db-primary.dc-2.example.internal",
            "linux-baseline-kernel-network-parameters",
            "net-ipv4-conf-all-accept-source-route-disabled",
            pb::Severity::Medium,
            "2026-11-22T11:48:00Z",
            false,
            "1",
            "0",
        ),
    ]
}

fn fleet() -> pb::FleetSummaryResponse {
    let sev =
        |severity: pb::Severity, open, overdue, resolved, mttf: f64, deadline| pb::SeverityCounts {
            severity: severity.into(),
            open,
            overdue,
            mean_time_to_fix_seconds: mttf,
            resolved,
            deadline_seconds: deadline,
        };
    pb::FleetSummaryResponse {
        hosts: 3,
        hosts_seen_last_hour: 2,
        // Out of order on purpose: the console sorts critical first.
        severities: vec![
            sev(pb::Severity::Low, 7, 0, 0, 0.0, 0),
            sev(
                pb::Severity::Critical,
                1,
                1,
                4,
                5.0 * 3600.0 + 600.0,
                4 * 3600,
            ),
            sev(pb::Severity::High, 3, 0, 10, 3600.0 * 2.5, 24 * 3600),
            sev(pb::Severity::Medium, 2, 0, 0, 0.0, 72 * 3600),
        ],
        policies: vec![
            pb::PolicyCompliance {
                policy: "linux-baseline-ssh".into(),
                pass: 40,
                fail: 5,
                error: 0,
                score: 40.0 * 100.0 / 45.0,
            },
            pb::PolicyCompliance {
                policy: "linux-baseline-kernel-network-parameters".into(),
                pass: 88,
                fail: 8,
                error: 1,
                score: 88.0 * 100.0 / 96.0,
            },
        ],
        open_findings: 13,
        overdue_findings: 1,
    }
}

fn assert_fits(text: &str) {
    for line in text.lines() {
        assert!(
            line.chars().count() <= console::WIDTH,
            "wider than 80 columns: {line:?}"
        );
    }
}

#[test]
fn hosts_table_snapshot() {
    let text = console::hosts_table(&hosts(), now());
    assert_fits(&text);
    assert_eq!(
        text,
        "\
HOST                              SEEN        AGENT  PASS  FAIL  ERROR  OVERDUE
web-1                             connected   0.1.0   180    25      1        2
db-primary.dc-2.example.internal  4h 45m ago  0.1.0   205     1      0        0
"
    );
}

#[test]
fn hosts_json_is_an_array_of_objects_with_a_host() {
    let value = console::hosts_json(&hosts());
    assert_eq!(
        value[0],
        json!({
            "host": "web-1",
            "agent_version": "0.1.0",
            "last_seen_at": "2026-11-22T11:59:58Z",
            "connected": true,
            "summary": { "total": 212, "pass": 180, "fail": 25, "error": 1, "not_applicable": 6, "waived": 0 },
            "overdue": 2,
            "last_seq": 4411,
        })
    );
    let names: Vec<&str> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-1", "db-primary.dc-2.example.internal"]);
}

#[test]
fn findings_table_snapshot() {
    let text = console::findings_table(&findings(), now());
    assert_fits(&text);
    assert_eq!(
        text,
        "\
SEVERITY  HOST              POLICY/RULE                        OPEN FOR  OVERDUE
critical  web-1             linux-baseline-ssh/ssh-password-…    5h 30m  yes
medium    db-primary.dc-2…  linux-baseline-kernel-network-pa…       12m

2 findings, 1 overdue
"
    );
}

#[test]
fn findings_json_has_the_promised_fields() {
    let value = console::findings_json(&findings());
    assert_eq!(
        value[0],
        json!({
            "host": "web-1",
            "policy": "linux-baseline-ssh",
            "rule": "ssh-password-auth-disabled",
            "title": "ssh-password-auth-disabled title",
            "severity": "critical",
            "status": "fail",
            "first_failed_at": "2026-11-22T06:30:00Z",
            "resolved_at": null,
            "overdue": true,
            "expected": "no",
            "actual": "yes",
            "evidence": [ { "path": "/etc/ssh/sshd_config", "line": 57, "text": "PasswordAuthentication yes" } ],
        })
    );
    assert_eq!(value.as_array().unwrap().len(), 2);
    assert_eq!(value[1]["severity"], "medium");
    assert_eq!(value[1]["overdue"], false);
}

#[test]
fn an_empty_list_is_said_in_words_and_is_an_empty_json_array() {
    assert_eq!(console::findings_table(&[], now()), "No findings match.\n");
    assert_eq!(console::findings_json(&[]), json!([]));
    assert_eq!(
        console::hosts_table(&[], now()),
        "No hosts have reported yet.\n"
    );
    assert_eq!(console::hosts_json(&[]), json!([]));
}

#[test]
fn summary_table_snapshot() {
    let text = console::summary_table(&fleet());
    assert_fits(&text);
    assert_eq!(
        text,
        "\
Fleet: 3 hosts (2 seen in the last hour)
Findings: 13 open, 1 overdue

SEVERITY  OPEN  OVERDUE  FIXED  MEAN TIME TO FIX  DEADLINE  MTTF VS DEADLINE
critical     1        1      4            5h 10m        4h  OVER
high         3        0     10            2h 30m        1d  within
medium       2        0      0                 -        3d
low          7        0      0                 -      none

POLICY                                    PASS  FAIL  ERROR  COMPLIANCE
linux-baseline-ssh                          40     5      0       88.9%
linux-baseline-kernel-network-parameters    88     8      1       91.7%
"
    );
}

#[test]
fn summary_json_snapshot() {
    let value = console::summary_json(&fleet());
    assert_eq!(value["hosts"], 3);
    assert_eq!(value["open_findings"], 13);
    assert_eq!(value["overdue_findings"], 1);
    let severities: Vec<&str> = value["severities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["severity"].as_str().unwrap())
        .collect();
    assert_eq!(severities, ["critical", "high", "medium", "low"]);
    assert_eq!(
        value["severities"][0],
        json!({ "severity": "critical", "open": 1, "overdue": 1, "resolved": 4,
                "mean_time_to_fix_seconds": 18600.0, "deadline_seconds": 14400 })
    );
    assert_eq!(
        value["severities"][2]["mean_time_to_fix_seconds"],
        json!(null)
    );
    assert_eq!(value["severities"][3]["deadline_seconds"], json!(null));
    assert_eq!(value["policies"][0]["policy"], "linux-baseline-ssh");
}

fn host_answer() -> pb::GetHostResponse {
    let mut results = findings();
    results.truncate(1);
    results.push(pb::Finding {
        status: pb::Status::Pass.into(),
        rule: "ssh-root-login-disabled".into(),
        first_failed_at: String::new(),
        overdue: false,
        ..results[0].clone()
    });
    pb::GetHostResponse {
        host: Some(hosts()[0].clone()),
        policies: vec![pb::PolicyRef {
            id: "linux-baseline-ssh".into(),
            version: "1.0.0".into(),
        }],
        results,
    }
}

#[test]
fn host_table_snapshot_shows_what_does_not_pass() {
    let text = console::host_table(&host_answer(), now());
    assert_fits(&text);
    assert_eq!(
        text,
        "\
Host:      web-1
Agent:     0.1.0
Seen:      connected
Results:   212 total, 180 pass, 25 fail, 1 error, 6 n/a, 0 waived; 2 overdue
Policies:  linux-baseline-ssh 1.0.0

SEVERITY  POLICY/RULE                                    OPEN FOR  OVERDUE
critical  linux-baseline-ssh/ssh-password-auth-disabled    5h 30m  yes
"
    );
}

#[test]
fn host_json_is_the_host_with_its_policies_and_results() {
    let value = console::host_json(&host_answer());
    assert_eq!(value["host"], "web-1");
    assert_eq!(value["connected"], true);
    assert_eq!(
        value["policies"],
        json!([{ "id": "linux-baseline-ssh", "version": "1.0.0" }])
    );
    let statuses: Vec<&str> = value["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["fail", "pass"]);
}

fn drift() -> pb::DriftEvent {
    pb::DriftEvent {
        seq: 17,
        at: "2026-11-22T12:00:01Z".into(),
        kind: pb::DriftKind::Failing.into(),
        previous: pb::Status::Pass.into(),
        result: Some(pb::RuleResult {
            policy: "linux-baseline-kernel-network-parameters".into(),
            rule: "net-ipv4-ip-forward-disabled".into(),
            title: "IP forwarding is disabled".into(),
            severity: pb::Severity::High.into(),
            status: pb::Status::Fail.into(),
            expected: Some("net.ipv4.ip_forward = 0".into()),
            actual: Some("1".into()),
            first_failed_at: Some("2026-11-22T12:00:01Z".into()),
            ..Default::default()
        }),
        hostname: "web-1".into(),
    }
}

#[test]
fn drift_line_snapshot() {
    assert_eq!(
        console::drift_line(&drift()),
        "2026-11-22T12:00:01Z web-1 high \
         linux-baseline-kernel-network-parameters/net-ipv4-ip-forward-disabled \
         pass -> fail: IP forwarding is disabled (actual: 1, expected: net.ipv4.ip_forward = 0)"
    );
}

#[test]
fn drift_json_snapshot() {
    assert_eq!(
        console::drift_json(&drift()),
        json!({
            "host": "web-1", "seq": 17, "at": "2026-11-22T12:00:01Z", "kind": "failing",
            "previous": "pass", "policy": "linux-baseline-kernel-network-parameters",
            "rule": "net-ipv4-ip-forward-disabled", "title": "IP forwarding is disabled",
            "severity": "high", "status": "fail", "expected": "net.ipv4.ip_forward = 0",
            "actual": "1", "first_failed_at": "2026-11-22T12:00:01Z", "overdue": false,
        })
    );
}

#[test]
fn control_characters_from_hosts_never_reach_the_terminal() {
    let mut evil = drift();
    evil.hostname = "web-1\u{1b}]0;owned\u{7}".into();
    if let Some(r) = evil.result.as_mut() {
        r.actual = Some("1\n\u{1b}[2Jfake line".into());
    }
    let line = console::drift_line(&evil);
    assert!(!line.chars().any(char::is_control), "{line:?}");
    assert!(line.contains("web-1?]0;owned?"), "{line:?}");

    let mut hosts = hosts();
    hosts[0].host = "a\u{1b}[31mred\rb".into();
    let table = console::hosts_table(&hosts, now());
    assert!(
        !table.chars().any(|c| c.is_control() && c != '\n'),
        "{table:?}"
    );
    assert_eq!(table.lines().count(), 3);
}

#[test]
fn long_names_are_shortened_to_fit_80_columns() {
    let mut list = findings();
    list[0].rule = "r".repeat(150);
    list[0].host = "h".repeat(60);
    let text = console::findings_table(&list, now());
    assert_fits(&text);
    assert!(text.contains('…'), "{text}");
    let mut hosts = hosts();
    hosts[0].host = "x".repeat(120);
    assert_fits(&console::hosts_table(&hosts, now()));
}

#[test]
fn durations_for_people() {
    assert_eq!(console::human_duration(42.0), "42s");
    assert_eq!(console::human_duration(600.0), "10m");
    assert_eq!(console::human_duration(4.0 * 3600.0), "4h");
    assert_eq!(console::human_duration(5.0 * 3600.0 + 120.0), "5h 2m");
    assert_eq!(console::human_duration(3.0 * 86_400.0 + 7200.0), "3d 2h");
    assert_eq!(console::human_duration(-1.0), "-");
    assert_eq!(console::human_duration(f64::NAN), "-");
    assert_eq!(console::age("not a time", now()), "-");
    assert_eq!(console::age("2026-11-22T11:00:00Z", now()), "1h");
}

// ---------------------------------------------------------------------------
// One agent as a fleet of one.

fn rule(
    policy: &str,
    rule: &str,
    severity: pb::Severity,
    status: pb::Status,
    overdue: bool,
) -> pb::RuleResult {
    pb::RuleResult {
        policy: policy.into(),
        rule: rule.into(),
        title: rule.into(),
        severity: severity.into(),
        status: status.into(),
        first_failed_at: (status == pb::Status::Fail).then(|| "2026-11-22T01:00:00Z".into()),
        overdue,
        ..Default::default()
    }
}

fn agent_report() -> pb::Report {
    use pb::Severity::*;
    use pb::Status::*;
    pb::Report {
        schema: "hardend.report/v1".into(),
        hostname: "web-1".into(),
        root: "/".into(),
        policies: vec![
            pb::PolicyRef {
                id: "ssh".into(),
                version: "1.0.0".into(),
            },
            pb::PolicyRef {
                id: "kernel".into(),
                version: "2.0.0".into(),
            },
            pb::PolicyRef {
                id: "empty".into(),
                version: "1.0.0".into(),
            },
        ],
        results: vec![
            rule("ssh", "password-auth", Critical, Fail, true),
            rule("ssh", "root-login", High, Fail, false),
            rule("ssh", "x11", Low, Pass, false),
            rule("kernel", "ip-forward", High, Fail, false),
            rule("kernel", "syncookies", Medium, Pass, false),
            rule("kernel", "rp-filter", Medium, Error, false),
            rule("kernel", "bpf", Low, NotApplicable, false),
        ],
        ..Default::default()
    }
}

#[test]
fn one_agent_summarised_as_a_fleet_of_one() {
    let s = agent::fleet_summary(&agent_report());
    assert_eq!((s.hosts, s.open_findings, s.overdue_findings), (1, 3, 1));
    let open: Vec<(&str, u32, u32, u64)> = s
        .severities
        .iter()
        .map(|c| {
            (
                console::severity_word(c.severity),
                c.open,
                c.overdue,
                c.deadline_seconds,
            )
        })
        .collect();
    assert_eq!(
        open,
        [
            ("critical", 1, 1, 14_400),
            ("high", 2, 0, 86_400),
            ("medium", 0, 0, 259_200),
            ("low", 0, 0, 0)
        ]
    );
    let policies: Vec<(&str, u32, u32, u32, String)> = s
        .policies
        .iter()
        .map(|p| {
            (
                p.policy.as_str(),
                p.pass,
                p.fail,
                p.error,
                format!("{:.1}", p.score),
            )
        })
        .collect();
    assert_eq!(
        policies,
        [
            ("empty", 0, 0, 0, "100.0".to_string()),
            ("kernel", 1, 1, 1, "50.0".to_string()),
            ("ssh", 1, 2, 0, "33.3".to_string()),
        ]
    );
}

#[test]
fn one_agents_findings_are_its_failing_rules_filtered() {
    let report = agent_report();
    let all = agent::findings(&report, &FindingFilter::default());
    let names: Vec<&str> = all.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(names, ["password-auth", "ip-forward", "root-login"]);
    assert!(all.iter().all(|f| f.host == "web-1"));

    let critical = agent::findings(
        &report,
        &FindingFilter {
            severity: Some(pb::Severity::Critical),
            ..Default::default()
        },
    );
    assert_eq!(critical.len(), 1);
    let overdue = agent::findings(
        &report,
        &FindingFilter {
            overdue_only: true,
            ..Default::default()
        },
    );
    assert_eq!(overdue[0].rule, "password-auth");
    let kernel_high = agent::findings(
        &report,
        &FindingFilter {
            policy: Some("kernel".into()),
            severity: Some(pb::Severity::High),
            ..Default::default()
        },
    );
    assert_eq!(kernel_high[0].rule, "ip-forward");
    assert_eq!(kernel_high.len(), 1);
    let other_host = agent::findings(
        &report,
        &FindingFilter {
            host: Some("web-2".into()),
            ..Default::default()
        },
    );
    assert!(other_host.is_empty());
    let one_rule = agent::findings(
        &report,
        &FindingFilter {
            rule: Some("root-login".into()),
            ..Default::default()
        },
    );
    assert_eq!(one_rule.len(), 1);
}

#[test]
fn the_filter_becomes_a_list_findings_request() {
    let filter = FindingFilter {
        severity: Some(pb::Severity::Critical),
        policy: Some("ssh".into()),
        rule: None,
        overdue_only: true,
        host: Some("web-1".into()),
    };
    assert_eq!(
        filter.to_request(),
        pb::ListFindingsRequest {
            severity: pb::Severity::Critical.into(),
            policy: "ssh".into(),
            rule: String::new(),
            overdue_only: true,
            host: "web-1".into(),
            include_resolved: false,
        }
    );
}
