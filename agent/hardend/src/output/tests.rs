//! Snapshots of the three renderings of one small report.

use expect_test::expect;
use hardend_engine::{HostInfo, PolicyRef, Report, RuleResult, Status, Summary};
use hardend_facts::Evidence;
use hardend_policy::Severity;

use super::*;

fn result(rule: &str, severity: Severity, status: Status) -> RuleResult {
    RuleResult {
        policy: "linux-baseline-ssh".into(),
        rule: rule.into(),
        title: format!("The {rule} rule holds on this host"),
        severity,
        status,
        waived_status: None,
        expected: None,
        actual: None,
        evidence: Vec::new(),
        message: None,
    }
}

fn sample() -> Report {
    let mut fail = result(
        "ssh-password-auth-disabled",
        Severity::Critical,
        Status::Fail,
    );
    fail.title = "SSH password authentication is disabled for every user and every address".into();
    fail.expected = Some("passwordauthentication = no".into());
    fail.actual = Some("yes".into());
    fail.evidence = vec![Evidence::line(
        "/etc/ssh/sshd_config",
        57,
        "PasswordAuthentication yes",
    )];
    let mut error = result("ssh-max-auth-tries", Severity::Medium, Status::Error);
    error.message = Some("/etc/ssh/sshd_config: permission denied".into());
    let mut waived = result("ssh-x11-forwarding-disabled", Severity::Low, Status::Waived);
    waived.waived_status = Some(Status::Fail);
    waived.expected = Some("x11forwarding = no".into());
    waived.actual = Some("yes".into());
    waived.message = Some("waived until 2027-01-31: jump host needs X11 & <GUI>".into());
    let mut na = result("ssh-banner", Severity::Low, Status::NotApplicable);
    na.message = Some("sshd is not installed".into());
    let mut pass = result("ssh-root-login-disabled", Severity::High, Status::Pass);
    pass.expected = Some("permitrootlogin in [no, prohibit-password]".into());
    pass.actual = Some("no".into());
    let results = vec![pass, fail, error, waived, na];
    Report {
        schema: "hardend.report/v1".into(),
        host: HostInfo {
            hostname: "web-1".into(),
            root: "/".into(),
        },
        started_at: "2026-11-22T10:00:00Z".into(),
        duration_ms: 3.1,
        policies: vec![PolicyRef {
            id: "linux-baseline-ssh".into(),
            version: "1.0.0".into(),
        }],
        summary: Summary::of(&results),
        results,
    }
}

#[test]
fn table() {
    let text = render_table(&sample(), false);
    assert!(
        text.lines().all(|l| l.chars().count() <= TABLE_WIDTH),
        "{text}"
    );
    expect![[r#"
        hardend check: web-1 (root /) at 2026-11-22T10:00:00Z

        linux-baseline-ssh 1.0.0
        PASS   high     ssh-root-login-disabled     The ssh-root-login-disabled rule ho…
        FAIL   critical ssh-password-auth-disabled  SSH password authentication is disa…
                expected: passwordauthentication = no
                actual:   yes
                /etc/ssh/sshd_config:57: PasswordAuthentication yes
        ERROR  medium   ssh-max-auth-tries          The ssh-max-auth-tries rule holds o…
                message:  /etc/ssh/sshd_config: permission denied
        WAIVED low      ssh-x11-forwarding-disabled The ssh-x11-forwarding-disabled rul…
                expected: x11forwarding = no
                actual:   yes
                message:  waived until 2027-01-31: jump host needs X11 & <GUI>
        N/A    low      ssh-banner                  The ssh-banner rule holds on this h…

        5 rules: 1 passed, 1 failed, 1 error, 1 not applicable, 1 waived; score 50.0%
    "#]]
    .assert_eq(&text);
}

#[test]
fn table_colours_only_when_asked() {
    assert!(!render_table(&sample(), false).contains('\x1b'));
    assert!(render_table(&sample(), true).contains("\x1b[1;31mFAIL"));
}

#[test]
fn table_never_prints_control_characters_from_files() {
    let mut report = sample();
    report.results[1].actual = Some("yes\x1b]0;pwned\x07".into());
    let text = render_table(&report, false);
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
}

#[test]
fn json() {
    expect![[r#"
        {
          "schema": "hardend.report/v1",
          "host": {
            "hostname": "web-1",
            "root": "/"
          },
          "started_at": "2026-11-22T10:00:00Z",
          "duration_ms": 3.1,
          "policies": [
            {
              "id": "linux-baseline-ssh",
              "version": "1.0.0"
            }
          ],
          "summary": {
            "total": 5,
            "pass": 1,
            "fail": 1,
            "error": 1,
            "not_applicable": 1,
            "waived": 1
          },
          "results": [
            {
              "policy": "linux-baseline-ssh",
              "rule": "ssh-root-login-disabled",
              "title": "The ssh-root-login-disabled rule holds on this host",
              "severity": "high",
              "status": "pass",
              "expected": "permitrootlogin in [no, prohibit-password]",
              "actual": "no",
              "evidence": [],
              "message": null
            },
            {
              "policy": "linux-baseline-ssh",
              "rule": "ssh-password-auth-disabled",
              "title": "SSH password authentication is disabled for every user and every address",
              "severity": "critical",
              "status": "fail",
              "expected": "passwordauthentication = no",
              "actual": "yes",
              "evidence": [
                {
                  "path": "/etc/ssh/sshd_config",
                  "line": 57,
                  "text": "PasswordAuthentication yes"
                }
              ],
              "message": null
            },
            {
              "policy": "linux-baseline-ssh",
              "rule": "ssh-max-auth-tries",
              "title": "The ssh-max-auth-tries rule holds on this host",
              "severity": "medium",
              "status": "error",
              "expected": null,
              "actual": null,
              "evidence": [],
              "message": "/etc/ssh/sshd_config: permission denied"
            },
            {
              "policy": "linux-baseline-ssh",
              "rule": "ssh-x11-forwarding-disabled",
              "title": "The ssh-x11-forwarding-disabled rule holds on this host",
              "severity": "low",
              "status": "waived",
              "waived_status": "fail",
              "expected": "x11forwarding = no",
              "actual": "yes",
              "evidence": [],
              "message": "waived until 2027-01-31: jump host needs X11 & <GUI>"
            },
            {
              "policy": "linux-baseline-ssh",
              "rule": "ssh-banner",
              "title": "The ssh-banner rule holds on this host",
              "severity": "low",
              "status": "not_applicable",
              "expected": null,
              "actual": null,
              "evidence": [],
              "message": "sshd is not installed"
            }
          ]
        }
    "#]]
    .assert_eq(&render_json(&sample()).expect("serializes"));
}

#[test]
fn junit() {
    expect![[r#"
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuites name="hardend" tests="5" failures="1" errors="1" skipped="2" time="0.003100" timestamp="2026-11-22T10:00:00Z">
          <testsuite name="linux-baseline-ssh" tests="5" failures="1" errors="1" skipped="2" time="0" timestamp="2026-11-22T10:00:00Z" hostname="web-1">
            <properties><property name="version" value="1.0.0"/><property name="root" value="/"/></properties>
            <testcase name="ssh-root-login-disabled" classname="linux-baseline-ssh" time="0"/>
            <testcase name="ssh-password-auth-disabled" classname="linux-baseline-ssh" time="0">
              <failure message="SSH password authentication is disabled for every user and every address [critical]: expected passwordauthentication = no, actual yes" type="critical">expected: passwordauthentication = no&#10;actual: yes&#10;evidence: /etc/ssh/sshd_config:57: PasswordAuthentication yes</failure>
            </testcase>
            <testcase name="ssh-max-auth-tries" classname="linux-baseline-ssh" time="0">
              <error message="The ssh-max-auth-tries rule holds on this host [medium]: /etc/ssh/sshd_config: permission denied" type="medium">message: /etc/ssh/sshd_config: permission denied</error>
            </testcase>
            <testcase name="ssh-x11-forwarding-disabled" classname="linux-baseline-ssh" time="0">
              <skipped message="waived (fail): waived until 2027-01-31: jump host needs X11 &amp; &lt;GUI&gt;" type="low">expected: x11forwarding = no&#10;actual: yes&#10;message: waived until 2027-01-31: jump host needs X11 &amp; &lt;GUI&gt;</skipped>
            </testcase>
            <testcase name="ssh-banner" classname="linux-baseline-ssh" time="0">
              <skipped message="not applicable: sshd is not installed" type="low">message: sshd is not installed</skipped>
            </testcase>
          </testsuite>
        </testsuites>
    "#]].assert_eq(&render_junit(&sample()));
}

#[test]
fn xml_escaping_covers_markup_quotes_and_control_characters() {
    assert_eq!(
        xml_escape("a<b>&\"c\"'\n\u{7}"),
        "a&lt;b&gt;&amp;&quot;c&quot;&apos;&#10;?"
    );
}

#[test]
fn summary_line_scores_passed_over_passed_and_failed() {
    let s = Summary {
        total: 10,
        pass: 3,
        fail: 1,
        error: 1,
        not_applicable: 5,
        waived: 0,
    };
    assert_eq!(
        summary_line(&s),
        "10 rules: 3 passed, 1 failed, 1 error, 5 not applicable, 0 waived; score 75.0%"
    );
    assert!(summary_line(&Summary::default()).ends_with("score n/a"));
}
