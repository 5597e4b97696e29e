//! The `hardend` binary end to end: exit codes, validate's error lines, and
//! the JSON and JUnit outputs read back by real parsers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_hardend");

const POLICY: &str = r#"policy:
  id: cli-test
  title: CLI test policy
  version: 2.0.1
rules:
  - id: motd-exists
    title: The motd exists
    severity: high
    check:
      file: { path: /etc/motd, exists: true }
  - id: no-telnet-config
    title: There is no inetd.conf
    severity: low
    check:
      file: { path: /etc/inetd.conf, exists: false }
"#;

/// A temporary scanned root and a policy file next to it.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("root/etc")).expect("mkdir");
        fs::write(dir.path().join("root/etc/motd"), "hello\n").expect("write");
        fs::write(dir.path().join("root/etc/hostname"), "cli-host\n").expect("write");
        fs::write(dir.path().join("policy.yaml"), POLICY).expect("write");
        Setup { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Makes the low-severity rule fail.
    fn add_inetd_conf(&self) {
        fs::write(self.path("root/etc/inetd.conf"), "telnet stream tcp\n").expect("write");
    }

    fn check(&self, extra: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("check")
            .arg("--root")
            .arg(self.path("root"))
            .arg("--policy")
            .arg(self.path("policy.yaml"))
            .args(extra)
            .env_remove("NO_COLOR");
        cmd.output().expect("run hardend")
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited with a code")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn all_passing_exits_0_with_a_table() {
    let s = Setup::new();
    let o = s.check(&[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("PASS   high     motd-exists"), "{out}");
    assert!(out.contains("2 rules: 2 passed, 0 failed"), "{out}");
    assert!(
        !out.contains('\x1b'),
        "not a terminal, so no colour: {out:?}"
    );
}

#[test]
fn a_failing_rule_exits_1_and_shows_why() {
    let s = Setup::new();
    s.add_inetd_conf();
    let o = s.check(&["--no-color"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("FAIL   low      no-telnet-config"), "{out}");
    assert!(
        out.contains("expected: /etc/inetd.conf does not exist"),
        "{out}"
    );
    assert!(out.contains("score 50.0%"), "{out}");
}

#[test]
fn fail_on_high_ignores_a_low_failure() {
    let s = Setup::new();
    s.add_inetd_conf();
    assert_eq!(code(&s.check(&["--fail-on", "high"])), 0);
    assert_eq!(code(&s.check(&["--fail-on", "low"])), 1);
    fs::remove_file(s.path("root/etc/motd")).expect("rm");
    assert_eq!(
        code(&s.check(&["--fail-on", "high"])),
        1,
        "the high rule fails now"
    );
    assert_eq!(code(&s.check(&["--fail-on", "critical"])), 0);
}

#[test]
fn bad_usage_exits_2() {
    let s = Setup::new();
    assert_eq!(code(&s.check(&["--format", "yaml"])), 2);
    assert_eq!(code(&s.check(&["--fail-on", "urgent"])), 2);
    assert_eq!(code(&s.check(&["--no-such-flag"])), 2);
    let o = Command::new(BIN).output().expect("run");
    assert_eq!(code(&o), 2, "no subcommand");
}

#[test]
fn an_invalid_policy_exits_2_with_file_line_col() {
    let s = Setup::new();
    let bad = s.path("bad.yaml");
    fs::write(&bad, POLICY.replace("severity: high", "severity: urgent")).expect("write");
    let o = Command::new(BIN)
        .arg("check")
        .arg("--root")
        .arg(s.path("root"))
        .arg("--policy")
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    let prefix = format!("{}:8:", bad.display());
    assert!(err.lines().any(|l| l.starts_with(&prefix)), "{err}");
}

#[test]
fn missing_policy_directories_exit_2() {
    let s = Setup::new();
    let config = s.path("hardend.yaml");
    fs::write(
        &config,
        format!("policies: [{}]\n", s.path("nowhere").display()),
    )
    .expect("write");
    let o = Command::new(BIN)
        .arg("check")
        .arg("--root")
        .arg(s.path("root"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run");
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no policy directory exists"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn config_supplies_policies_and_waivers() {
    let s = Setup::new();
    s.add_inetd_conf();
    let dir = s.path("policies.d");
    fs::create_dir(&dir).expect("mkdir");
    fs::copy(s.path("policy.yaml"), dir.join("cli.yaml")).expect("copy");
    let config = s.path("hardend.yaml");
    fs::write(
        &config,
        format!(
            "policies: [{}, {}]\nwaivers:\n  - rule: cli-test/no-telnet-config\n    reason: lab host\n    expires: 2999-01-01\n",
            s.path("missing-dir").display(),
            dir.display()
        ),
    )
    .expect("write");
    let o = Command::new(BIN)
        .arg("check")
        .arg("--root")
        .arg(s.path("root"))
        .arg("--config")
        .arg(&config)
        .args(["--format", "json"])
        .output()
        .expect("run");
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["summary"]["waived"], 1);
    let waived = &v["results"][1];
    assert_eq!(waived["status"], "waived");
    assert_eq!(waived["waived_status"], "fail");
}

#[test]
fn json_has_the_report_schema() {
    let s = Setup::new();
    s.add_inetd_conf();
    let o = s.check(&["--format", "json"]);
    assert_eq!(code(&o), 1);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("valid JSON");
    assert_eq!(v["schema"], "hardend.report/v1");
    assert_eq!(v["host"]["hostname"], "cli-host");
    assert_eq!(v["host"]["root"], s.path("root").display().to_string());
    let started = v["started_at"].as_str().expect("started_at");
    assert!(
        started.ends_with('Z') && started.parse::<jiff::Timestamp>().is_ok(),
        "{started}"
    );
    assert!(v["duration_ms"].as_f64().is_some_and(|d| d >= 0.0));
    assert_eq!(v["policies"][0]["id"], "cli-test");
    assert_eq!(v["policies"][0]["version"], "2.0.1");
    for key in ["total", "pass", "fail", "error", "not_applicable", "waived"] {
        assert!(v["summary"][key].is_u64(), "summary.{key}");
    }
    assert_eq!(
        (v["summary"]["pass"].as_u64(), v["summary"]["fail"].as_u64()),
        (Some(1), Some(1))
    );
    let failed = &v["results"][1];
    for key in [
        "policy", "rule", "title", "severity", "status", "expected", "actual", "evidence",
        "message",
    ] {
        assert!(
            failed.get(key).is_some(),
            "results[].{key} missing: {failed}"
        );
    }
    assert_eq!(failed["status"], "fail");
    assert_eq!(failed["severity"], "low");
    assert_eq!(failed["evidence"][0]["path"], "/etc/inetd.conf");
}

/// Parses the XML with quick-xml, returning (element name, attributes) of
/// every start or empty element; panics on malformed XML.
fn xml_elements(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut out = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.name().as_ref().to_string();
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.expect("attribute");
                        (
                            a.key.as_ref().to_string(),
                            a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                .expect("escaped value")
                                .into_owned(),
                        )
                    })
                    .collect();
                out.push((name, attrs));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

#[test]
fn junit_is_well_formed_with_failures() {
    let s = Setup::new();
    s.add_inetd_conf();
    let o = s.check(&["--format", "junit"]);
    assert_eq!(code(&o), 1);
    let elements = xml_elements(&stdout(&o));
    let names: Vec<&str> = elements.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.iter().filter(|n| **n == "testsuite").count(), 1);
    assert_eq!(names.iter().filter(|n| **n == "testcase").count(), 2);
    let failure = elements
        .iter()
        .find(|(n, _)| n == "failure")
        .expect("a failure element");
    let message = &failure
        .1
        .iter()
        .find(|(k, _)| k == "message")
        .expect("message")
        .1;
    assert!(
        message.contains("expected /etc/inetd.conf does not exist"),
        "{message}"
    );
}

#[test]
fn validate_prints_ok_or_every_error() {
    let s = Setup::new();
    let o = Command::new(BIN)
        .arg("validate")
        .arg(s.path("policy.yaml"))
        .output()
        .expect("run");
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert_eq!(stdout(&o), "1 policies, 2 rules: ok\n");

    let bad = s.path("bad.yaml");
    fs::write(
        &bad,
        POLICY
            .replace("severity: high", "severity: urgent")
            .replace("exists: false", "exists: false, colour: red"),
    )
    .expect("write");
    let o = Command::new(BIN)
        .arg("validate")
        .arg(s.path("policy.yaml"))
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(code(&o), 2);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 2, "every error is printed: {out}");
    for line in &lines {
        assert!(is_located(line, &bad), "not file:line:col: message: {line}");
    }
}

/// `file:line:col: message` with numeric line and column.
fn is_located(line: &str, file: &Path) -> bool {
    let Some(rest) = line.strip_prefix(&format!("{}:", file.display())) else {
        return false;
    };
    let mut parts = rest.splitn(3, ':');
    let (Some(l), Some(c), Some(m)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    l.parse::<u32>().is_ok() && c.parse::<u32>().is_ok() && m.starts_with(' ') && m.len() > 1
}

#[test]
fn help_explains_flags_and_exit_codes() {
    let o = Command::new(BIN)
        .args(["check", "--help"])
        .output()
        .expect("run");
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    for needle in [
        "--root",
        "--policy",
        "--config",
        "--format",
        "--fail-on",
        "--no-color",
        "Exit codes",
        "NO_COLOR",
    ] {
        assert!(out.contains(needle), "{needle} missing from:\n{out}");
    }
    let o = Command::new(BIN).arg("--help").output().expect("run");
    assert!(stdout(&o).contains("Exit codes"));
}
