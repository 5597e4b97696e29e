//! Engine tests: tables of (check, facts) and the status and `actual` each
//! must give.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hardend_facts::accounts::{GroupEntry, LoginDef, PasswdEntry, ShadowEntry};
use hardend_facts::firewall::{Family, InputChain};
use hardend_facts::listening::{Proto, Socket};
use hardend_facts::sshd::{SshdConfig, SshdFact, SshdLoader};
use hardend_facts::*;
use hardend_policy::*;
use regex::Regex;

use super::*;

fn today() -> jiff::civil::Date {
    jiff::civil::date(2026, 11, 22)
}

fn rule(id: &str, check: Check) -> Rule {
    Rule {
        id: id.to_string(),
        title: format!("title of {id}"),
        severity: Severity::High,
        rationale: None,
        remediation: None,
        references: BTreeMap::new(),
        when: None,
        check,
        location: Location::default(),
    }
}

fn policy(rules: Vec<Rule>) -> Policy {
    Policy {
        id: "p".to_string(),
        title: "P".to_string(),
        version: "1.0.0".to_string(),
        description: None,
        rules,
        source: "p.yaml".into(),
    }
}

fn run(check: Check, facts: &Facts) -> RuleResult {
    run_with(check, facts, &[])
}

fn run_with(check: Check, facts: &Facts, waivers: &[Waiver]) -> RuleResult {
    let p = policy(vec![rule("r", check)]);
    let ctx = Context {
        waivers,
        today: today(),
    };
    evaluate_rule(&p, &p.rules[0], facts, &ctx)
}

/// One row: a name, the check, the facts, the status, and a substring that
/// `actual` (or `message` for errors and not-applicable) must contain.
struct Row {
    name: &'static str,
    check: Check,
    facts: Facts,
    status: Status,
    detail: &'static str,
}

fn row(
    name: &'static str,
    check: Check,
    facts: Facts,
    status: Status,
    detail: &'static str,
) -> Row {
    Row {
        name,
        check,
        facts,
        status,
        detail,
    }
}

fn check_table(rows: Vec<Row>) {
    let mut failures = Vec::new();
    for r in rows {
        let got = run(r.check, &r.facts);
        let text = match got.status {
            Status::Error | Status::NotApplicable => got.message.clone(),
            _ => got.actual.clone(),
        }
        .unwrap_or_default();
        if got.status != r.status || !text.contains(r.detail) {
            failures.push(format!(
                "{}: want {} containing {:?}, got {} {:?} (expected {:?}, evidence {:?})",
                r.name, r.status, r.detail, got.status, text, got.expected, got.evidence
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn eq(v: &str) -> Comparison {
    Comparison {
        equals: Some(v.to_string()),
        ..Comparison::default()
    }
}

// ---- sysctl ----

fn sysctl_check(key: &str, cmp: Comparison, persistent: bool) -> Check {
    Check::Sysctl(SysctlCheck {
        key: key.to_string(),
        compare: cmp,
        persistent,
    })
}

fn sysctl_facts(key: &str, live: Probed<Option<&str>>, configured: Option<&str>) -> Facts {
    let mut facts = Facts::default();
    facts.sysctl.insert(
        key.to_string(),
        SysctlFact {
            live: live.map(|v| v.map(str::to_string)),
            live_path: format!("/proc/sys/{}", key.replace('.', "/")),
            configured: Ok(configured.map(|v| ConfiguredValue {
                value: v.to_string(),
                evidence: Evidence::line(
                    "/etc/sysctl.d/99-hardening.conf",
                    3,
                    format!("{key} = {v}"),
                ),
            })),
        },
    );
    facts
}

#[test]
fn sysctl_table() {
    let k = "net.ipv4.ip_forward";
    check_table(vec![
        row(
            "live pass",
            sysctl_check(k, eq("0"), false),
            sysctl_facts(k, Ok(Some("0")), None),
            Status::Pass,
            "0",
        ),
        row(
            "live fail",
            sysctl_check(k, eq("0"), false),
            sysctl_facts(k, Ok(Some("1")), Some("0")),
            Status::Fail,
            "1",
        ),
        row(
            "offline uses configured",
            sysctl_check(k, eq("0"), false),
            sysctl_facts(k, Ok(None), Some("0")),
            Status::Pass,
            "0",
        ),
        row(
            "unset",
            sysctl_check(k, eq("0"), false),
            sysctl_facts(k, Ok(None), None),
            Status::Fail,
            "unset",
        ),
        row(
            "persistent both",
            sysctl_check(k, eq("0"), true),
            sysctl_facts(k, Ok(Some("0")), Some("0")),
            Status::Pass,
            "0",
        ),
        row(
            "persistent configured wrong",
            sysctl_check(k, eq("0"), true),
            sysctl_facts(k, Ok(Some("0")), Some("1")),
            Status::Fail,
            "1 (configured)",
        ),
        row(
            "persistent not configured",
            sysctl_check(k, eq("0"), true),
            sysctl_facts(k, Ok(Some("0")), None),
            Status::Fail,
            "unset (configured)",
        ),
        row(
            "persistent offline",
            sysctl_check(k, eq("0"), true),
            sysctl_facts(k, Ok(None), Some("0")),
            Status::Pass,
            "0",
        ),
        row(
            "persistent neither",
            sysctl_check(k, eq("0"), true),
            sysctl_facts(k, Ok(None), None),
            Status::Fail,
            "unset",
        ),
        row(
            "unreadable",
            sysctl_check(k, eq("0"), false),
            sysctl_facts(k, Err(ProbeFailure::new("permission denied")), None),
            Status::Error,
            "permission denied",
        ),
        row(
            "not collected",
            sysctl_check(k, eq("0"), false),
            Facts::default(),
            Status::Error,
            NOT_COLLECTED,
        ),
        row(
            "numeric max",
            sysctl_check(
                "kernel.x",
                Comparison {
                    max: Some(2.0),
                    ..Comparison::default()
                },
                false,
            ),
            sysctl_facts("kernel.x", Ok(Some("2")), None),
            Status::Pass,
            "2",
        ),
    ]);
}

#[test]
fn expected_names_the_key_and_value() {
    let k = "net.ipv4.ip_forward";
    let r = run(
        sysctl_check(k, eq("0"), false),
        &sysctl_facts(k, Ok(Some("1")), None),
    );
    assert_eq!(r.expected.as_deref(), Some("net.ipv4.ip_forward = 0"));
    assert_eq!(r.actual.as_deref(), Some("1"));
    assert_eq!(r.evidence[0].path, "/proc/sys/net/ipv4/ip_forward");
}

// ---- sshd ----

fn sshd_check(key: &str, cmp: Comparison, m: Option<SshdMatch>) -> Check {
    Check::SshdConfig(SshdCheck {
        keyword: key.to_string(),
        compare: cmp,
        connection: m,
        if_not_installed: MissingSshd::NotApplicable,
    })
}

/// sshd configuration files held in memory, for [`SshdConfig::parse`].
struct MemLoader(BTreeMap<String, String>);

impl SshdLoader for MemLoader {
    fn read(&self, path: &str) -> Result<String, String> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| "not found".to_string())
    }
    fn glob(&self, _pattern: &str) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
}

fn sshd_text(text: &str) -> Facts {
    let loader = MemLoader(
        [("/etc/ssh/sshd_config".to_string(), text.to_string())]
            .into_iter()
            .collect(),
    );
    let config = SshdConfig::parse(&loader, "/etc/ssh/sshd_config").expect("valid sshd_config");
    let mut facts = Facts {
        sshd: Some(Ok(SshdFact::Config(config))),
        ..Facts::default()
    };
    facts.accounts = Some(accounts(
        &[
            "root:x:0:0:root:/root:/bin/bash",
            "alice:x:1000:1000::/home/alice:/bin/bash",
        ],
        &[],
        &[("admins", 1000, &[])],
        &[],
    ));
    facts
}

/// `PermitRootLogin <global>` on line 1 and, when given, a `Match Group
/// admins` block (line 2) that sets `<block>` on line 3.
fn sshd_facts(global: &str, block: Option<&str>) -> Facts {
    let mut text = format!("PermitRootLogin {global}\n");
    if let Some(v) = block {
        text.push_str(&format!("Match Group admins\n    PermitRootLogin {v}\n"));
    }
    sshd_text(&text)
}

#[test]
fn sshd_table() {
    let no = || Comparison {
        in_: Some(vec!["no".into(), "prohibit-password".into()]),
        ..Comparison::default()
    };
    let alice = || {
        Some(SshdMatch {
            user: Some("alice".into()),
            ..SshdMatch::default()
        })
    };
    check_table(vec![
        row(
            "global pass",
            sshd_check("PermitRootLogin", no(), None),
            sshd_facts("no", None),
            Status::Pass,
            "no",
        ),
        row(
            "global fail",
            sshd_check("PermitRootLogin", no(), None),
            sshd_facts("yes", None),
            Status::Fail,
            "yes",
        ),
        row(
            "case-insensitive",
            sshd_check("PermitRootLogin", eq("NO"), None),
            sshd_facts("no", None),
            Status::Pass,
            "no",
        ),
        row(
            "match block weakens",
            sshd_check("PermitRootLogin", no(), None),
            sshd_facts("no", Some("yes")),
            Status::Fail,
            "Match Group admins",
        ),
        row(
            "connection in the group gets the block",
            sshd_check("PermitRootLogin", no(), alice()),
            sshd_facts("no", Some("yes")),
            Status::Fail,
            "yes",
        ),
        row(
            "other connection gets global",
            sshd_check(
                "PermitRootLogin",
                no(),
                Some(SshdMatch {
                    user: Some("root".into()),
                    ..SshdMatch::default()
                }),
            ),
            sshd_facts("no", Some("yes")),
            Status::Pass,
            "no",
        ),
        row(
            "not installed",
            sshd_check("PermitRootLogin", no(), None),
            Facts {
                sshd: Some(Ok(SshdFact::NotInstalled)),
                ..Facts::default()
            },
            Status::NotApplicable,
            "not installed",
        ),
        row(
            "unreadable",
            sshd_check("PermitRootLogin", no(), None),
            Facts {
                sshd: Some(Err(ProbeFailure::new("sshd_config: permission denied"))),
                ..Facts::default()
            },
            Status::Error,
            "permission denied",
        ),
        row(
            "not collected",
            sshd_check("PermitRootLogin", no(), None),
            Facts::default(),
            Status::Error,
            NOT_COLLECTED,
        ),
    ]);
}

#[test]
fn failing_match_block_evidence_names_the_match_line_and_the_directive() {
    let r = run(
        sshd_check("PermitRootLogin", eq("no"), None),
        &sshd_facts("no", Some("yes")),
    );
    assert_eq!(r.status, Status::Fail);
    let lines: Vec<Option<u32>> = r.evidence.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![Some(2), Some(3)], "{:?}", r.evidence);
}

#[test]
fn sshd_if_not_installed_can_pass_or_fail() {
    let facts = Facts {
        sshd: Some(Ok(SshdFact::NotInstalled)),
        ..Facts::default()
    };
    for (mode, status) in [
        (MissingSshd::Pass, Status::Pass),
        (MissingSshd::Fail, Status::Fail),
    ] {
        let check = Check::SshdConfig(SshdCheck {
            keyword: "PermitRootLogin".into(),
            compare: eq("no"),
            connection: None,
            if_not_installed: mode,
        });
        assert_eq!(run(check, &facts).status, status);
    }
}

// ---- file ----

fn file_facts(
    path: &str,
    stat: Option<(FileKind, u32, &str, &str)>,
    lines: Option<&[&str]>,
) -> Facts {
    let mut facts = Facts::default();
    let stat = stat.map(|(kind, mode, owner, group)| FileStat {
        kind,
        mode,
        uid: owner.parse().unwrap_or(0),
        gid: group.parse().unwrap_or(42),
        owner: owner.parse::<u32>().is_err().then(|| owner.to_string()),
        group: group.parse::<u32>().is_err().then(|| group.to_string()),
    });
    facts.files.insert(
        path.to_string(),
        Ok(FileFact {
            path: path.to_string(),
            stat,
            lines: lines.map(|l| Ok(l.iter().map(|s| s.to_string()).collect())),
        }),
    );
    facts
}

fn file_check(path: &str) -> FileCheck {
    FileCheck {
        path: path.to_string(),
        ..FileCheck::default()
    }
}

#[test]
fn file_table() {
    let shadow = "/etc/shadow";
    let perms = || {
        Check::File(FileCheck {
            exists: Some(true),
            mode_max: Some(0o640),
            owner: Some(vec!["root".into()]),
            group: Some(vec!["root".into(), "shadow".into()]),
            ..file_check(shadow)
        })
    };
    let re = |r: &str| Regex::new(r).ok();
    let issue = "/etc/issue.net";
    let banned = || {
        Check::File(FileCheck {
            not_contains: re(r"\\v|\\r|\\m"),
            ..file_check(issue)
        })
    };
    let motd = || {
        Check::File(FileCheck {
            contains: re("Authorized use only"),
            ..file_check("/etc/motd")
        })
    };
    check_table(vec![
        row(
            "perms pass",
            perms(),
            file_facts(
                shadow,
                Some((FileKind::File, 0o640, "root", "shadow")),
                None,
            ),
            Status::Pass,
            "0640",
        ),
        row(
            "stricter mode passes",
            perms(),
            file_facts(shadow, Some((FileKind::File, 0o600, "root", "root")), None),
            Status::Pass,
            "0600",
        ),
        row(
            "mode too wide",
            perms(),
            file_facts(
                shadow,
                Some((FileKind::File, 0o644, "root", "shadow")),
                None,
            ),
            Status::Fail,
            "mode 0644",
        ),
        row(
            "setuid bit outside mask",
            perms(),
            file_facts(
                shadow,
                Some((FileKind::File, 0o4640, "root", "shadow")),
                None,
            ),
            Status::Fail,
            "mode 4640",
        ),
        row(
            "wrong owner",
            perms(),
            file_facts(
                shadow,
                Some((FileKind::File, 0o640, "alice", "shadow")),
                None,
            ),
            Status::Fail,
            "owner alice",
        ),
        row(
            "unknown owner is numeric",
            perms(),
            file_facts(
                shadow,
                Some((FileKind::File, 0o640, "1234", "shadow")),
                None,
            ),
            Status::Fail,
            "owner 1234",
        ),
        row(
            "missing but required",
            perms(),
            file_facts(shadow, None, None),
            Status::Fail,
            "missing",
        ),
        row(
            "exists: false and present",
            Check::File(FileCheck {
                exists: Some(false),
                ..file_check("/etc/hosts.equiv")
            }),
            file_facts(
                "/etc/hosts.equiv",
                Some((FileKind::File, 0o644, "root", "root")),
                None,
            ),
            Status::Fail,
            "exists",
        ),
        row(
            "exists: false and missing",
            Check::File(FileCheck {
                exists: Some(false),
                ..file_check("/etc/hosts.equiv")
            }),
            file_facts("/etc/hosts.equiv", None, None),
            Status::Pass,
            "missing",
        ),
        row(
            "not_contains pass",
            banned(),
            file_facts(
                issue,
                Some((FileKind::File, 0o644, "root", "root")),
                Some(&["Authorized use only"]),
            ),
            Status::Pass,
            "",
        ),
        row(
            "not_contains fail names the line",
            banned(),
            file_facts(
                issue,
                Some((FileKind::File, 0o644, "root", "root")),
                Some(&["Debian", "\\S \\r"]),
            ),
            Status::Fail,
            "line 2",
        ),
        row(
            "not_contains on missing file",
            banned(),
            file_facts(issue, None, None),
            Status::Pass,
            "missing",
        ),
        row(
            "contains pass",
            motd(),
            file_facts(
                "/etc/motd",
                Some((FileKind::File, 0o644, "root", "root")),
                Some(&["", "Authorized use only."]),
            ),
            Status::Pass,
            "",
        ),
        row(
            "contains fail",
            motd(),
            file_facts(
                "/etc/motd",
                Some((FileKind::File, 0o644, "root", "root")),
                Some(&["hello"]),
            ),
            Status::Fail,
            "no matching line",
        ),
        row(
            "contains on missing file",
            motd(),
            file_facts("/etc/motd", None, None),
            Status::Fail,
            "missing",
        ),
        row(
            "contains on a directory",
            motd(),
            file_facts(
                "/etc/motd",
                Some((FileKind::Directory, 0o755, "root", "root")),
                None,
            ),
            Status::Error,
            "directory",
        ),
        row(
            "directory mode",
            Check::File(FileCheck {
                mode_max: Some(0o700),
                ..file_check("/etc/cron.d")
            }),
            file_facts(
                "/etc/cron.d",
                Some((FileKind::Directory, 0o755, "root", "root")),
                None,
            ),
            Status::Fail,
            "mode 0755",
        ),
        row(
            "not collected",
            perms(),
            Facts::default(),
            Status::Error,
            NOT_COLLECTED,
        ),
    ]);
}

#[test]
fn not_contains_evidence_has_line_numbers() {
    let check = Check::File(FileCheck {
        not_contains: Regex::new(r"\\m").ok(),
        ..file_check("/etc/issue")
    });
    let facts = file_facts(
        "/etc/issue",
        Some((FileKind::File, 0o644, "root", "root")),
        Some(&["Debian \\m", "ok", "\\m again"]),
    );
    let r = run(check, &facts);
    let lines: Vec<Option<u32>> = r.evidence.iter().filter_map(|e| e.line.map(Some)).collect();
    assert_eq!(lines, vec![Some(1), Some(3)]);
}

// ---- accounts ----

fn accounts(
    passwd: &[&str],
    shadow: &[&str],
    group: &[(&str, u32, &[&str])],
    defs: &[(&str, &str)],
) -> AccountsFact {
    let passwd = passwd
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let f: Vec<&str> = l.split(':').collect();
            PasswdEntry {
                name: f[0].into(),
                password: f[1].into(),
                uid: f[2].parse().unwrap(),
                gid: f[3].parse().unwrap(),
                gecos: f[4].into(),
                home: f[5].into(),
                shell: f[6].into(),
                line: i as u32 + 1,
            }
        })
        .collect();
    let num = |s: &str| s.parse().ok();
    let shadow = shadow
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let f: Vec<&str> = l.split(':').collect();
            ShadowEntry {
                name: f[0].into(),
                hash: f[1].into(),
                last_change: num(f[2]),
                min_days: num(f[3]),
                max_days: num(f[4]),
                warn_days: num(f[5]),
                inactive_days: num(f[6]),
                expire: num(f[7]),
                line: i as u32 + 1,
            }
        })
        .collect();
    let group = group
        .iter()
        .enumerate()
        .map(|(i, (name, gid, members))| GroupEntry {
            name: name.to_string(),
            gid: *gid,
            members: members.iter().map(|m| m.to_string()).collect(),
            line: i as u32 + 1,
        })
        .collect();
    let defs = defs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            (
                k.to_string(),
                LoginDef {
                    value: v.to_string(),
                    line: i as u32 + 1,
                },
            )
        })
        .collect();
    AccountsFact {
        passwd: Ok(passwd),
        shadow: Ok(shadow),
        group: Ok(group),
        login_defs: Ok(defs),
    }
}

fn acc(require: AccountsRequirement) -> AccountsCheck {
    AccountsCheck {
        require,
        allow: vec!["root".into()],
        min: None,
        max: None,
    }
}

fn with_accounts(a: AccountsFact) -> Facts {
    Facts {
        accounts: Some(a),
        ..Facts::default()
    }
}

const ROOT: &str = "root:x:0:0:root:/root:/bin/bash";
const DAEMON: &str = "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin";
const ALICE: &str = "alice:x:1000:1000::/home/alice:/bin/bash";

#[test]
fn accounts_table() {
    use AccountsRequirement as R;
    let p = |lines: &[&str]| with_accounts(accounts(lines, &[], &[], &[]));
    let s = |lines: &[&str]| with_accounts(accounts(&[ROOT, ALICE], lines, &[], &[]));
    let sd = |lines: &[&str], defs: &[(&str, &str)]| {
        with_accounts(accounts(&[ROOT, ALICE], lines, &[], defs))
    };
    let a = |r: R| Check::Accounts(acc(r));
    let am = |r: R, min: Option<i64>, max: Option<i64>| {
        Check::Accounts(AccountsCheck { min, max, ..acc(r) })
    };
    let y = "$y$j9T$abc$def";
    let _ = y;
    check_table(vec![
        row(
            "empty hash",
            a(R::NoEmptyPasswords),
            s(&[
                "root:$y$j9T$a$b:19000:0:99999:7:::",
                "alice::19000:0:99999:7:::",
            ]),
            Status::Fail,
            "alice",
        ),
        row(
            "locked is not empty",
            a(R::NoEmptyPasswords),
            s(&["root:!:19000:0:99999:7:::", "alice:*:19000:0:99999:7:::"]),
            Status::Pass,
            "",
        ),
        row(
            "empty passwd field",
            a(R::NoEmptyPasswords),
            with_accounts(accounts(
                &[ROOT, "bob::1001:1001::/home/bob:/bin/sh"],
                &["root:!:1::::::"],
                &[],
                &[],
            )),
            Status::Fail,
            "bob",
        ),
        row(
            "unique uid0 pass",
            a(R::UniqueUid0),
            p(&[ROOT, DAEMON]),
            Status::Pass,
            "",
        ),
        row(
            "second uid0",
            a(R::UniqueUid0),
            p(&[ROOT, "toor:x:0:0::/root:/bin/sh"]),
            Status::Fail,
            "toor",
        ),
        row(
            "duplicate uids",
            a(R::NoDuplicateUids),
            p(&[ROOT, ALICE, "bob:x:1000:1000::/home/bob:/bin/sh"]),
            Status::Fail,
            "alice (uid 1000), bob (uid 1000)",
        ),
        row(
            "duplicate names",
            a(R::NoDuplicateNames),
            p(&[ROOT, ALICE, "alice:x:1001:1001::/home/a2:/bin/sh"]),
            Status::Fail,
            "alice (name alice)",
        ),
        row(
            "no duplicates",
            a(R::NoDuplicateNames),
            p(&[ROOT, ALICE]),
            Status::Pass,
            "",
        ),
        row(
            "strong hashes",
            a(R::StrongPasswordHashes),
            s(&[
                "root:$6$salt$h:1::::::",
                "alice:$y$j9T$s$h:1::::::",
                "bob:$2b$10$x:1::::::",
                "carol:!$1$old$h:1::::::",
                "dave:!!:1::::::",
                "eve:*:1::::::",
            ]),
            Status::Pass,
            "",
        ),
        row(
            "md5 and des are weak",
            a(R::StrongPasswordHashes),
            s(&["root:$1$salt$h:1::::::", "alice:abcdefghijklm:1::::::"]),
            Status::Fail,
            "root (md5crypt), alice (descrypt)",
        ),
        row(
            "system account with a shell",
            a(R::SystemAccountsNoLogin),
            p(&[ROOT, DAEMON, "games:x:5:60::/usr/games:/bin/sh", ALICE]),
            Status::Fail,
            "games",
        ),
        row(
            "sync shutdown halt allowed",
            a(R::SystemAccountsNoLogin),
            p(&[
                ROOT,
                "sync:x:4:65534:sync:/bin:/bin/sync",
                "shutdown:x:6:0::/sbin:/sbin/shutdown",
                "halt:x:7:0::/sbin:/sbin/halt",
                DAEMON,
            ]),
            Status::Pass,
            "",
        ),
        row(
            "sync with a real shell",
            a(R::SystemAccountsNoLogin),
            p(&[ROOT, "sync:x:4:65534:sync:/bin:/bin/bash"]),
            Status::Fail,
            "sync",
        ),
        row(
            "UID_MIN moves the line",
            a(R::SystemAccountsNoLogin),
            with_accounts(accounts(
                &[ROOT, "svc:x:600:600::/:/bin/sh"],
                &[],
                &[],
                &[("UID_MIN", "500")],
            )),
            Status::Pass,
            "",
        ),
        row(
            "nobody counts as system",
            a(R::SystemAccountsNoLogin),
            p(&[ROOT, "nobody:x:65534:65534::/nonexistent:/bin/sh"]),
            Status::Fail,
            "nobody",
        ),
        row(
            "max days pass",
            am(R::PasswordMaxDays, None, Some(365)),
            sd(
                &["root:!:1:1:365:7:::", "alice:$6$s$h:1:1:90:7:::"],
                &[("PASS_MAX_DAYS", "365")],
            ),
            Status::Pass,
            "",
        ),
        row(
            "max days login.defs unset",
            am(R::PasswordMaxDays, None, Some(365)),
            sd(&["alice:$6$s$h:1:1:90:7:::"], &[]),
            Status::Fail,
            "PASS_MAX_DAYS unset",
        ),
        row(
            "max days account too long",
            am(R::PasswordMaxDays, None, Some(365)),
            sd(
                &["alice:$6$s$h:1:1:99999:7:::"],
                &[("PASS_MAX_DAYS", "365")],
            ),
            Status::Fail,
            "alice (99999)",
        ),
        row(
            "max days account unset",
            am(R::PasswordMaxDays, None, Some(365)),
            sd(&["alice:$6$s$h:1::::::"], &[("PASS_MAX_DAYS", "365")]),
            Status::Fail,
            "alice (unset)",
        ),
        row(
            "min days",
            am(R::PasswordMinDays, Some(1), None),
            sd(&["alice:$6$s$h:1:0:90:7:::"], &[("PASS_MIN_DAYS", "1")]),
            Status::Fail,
            "alice (0)",
        ),
        row(
            "min days pass",
            am(R::PasswordMinDays, Some(1), None),
            sd(
                &["alice:$6$s$h:1:1:90:7:::", "root:*:1:0::::"],
                &[("PASS_MIN_DAYS", "1")],
            ),
            Status::Pass,
            "",
        ),
        row(
            "inactive",
            am(R::InactiveLockDays, None, Some(30)),
            sd(
                &["alice:$6$s$h:1:1:90:7:45::", "bob:$6$s$h:1:1:90:7:30::"],
                &[],
            ),
            Status::Fail,
            "alice (45)",
        ),
        row(
            "inactive -1 fails",
            am(R::InactiveLockDays, None, Some(30)),
            sd(&["alice:$6$s$h:1:1:90:7:-1::"], &[]),
            Status::Fail,
            "alice (-1)",
        ),
        row(
            "inactive pass",
            am(R::InactiveLockDays, None, Some(30)),
            sd(&["alice:$6$s$h:1:1:90:7:30::", "root:!:1::::::"], &[]),
            Status::Pass,
            "",
        ),
        row(
            "shadow passwords",
            a(R::ShadowPasswords),
            p(&[ROOT, "bob:$1$x$y:1001:1001::/home/bob:/bin/sh"]),
            Status::Fail,
            "bob",
        ),
        row(
            "shadow passwords pass",
            a(R::ShadowPasswords),
            p(&[ROOT, ALICE]),
            Status::Pass,
            "",
        ),
        row(
            "unreadable shadow",
            a(R::StrongPasswordHashes),
            with_accounts(AccountsFact {
                shadow: Err(ProbeFailure::new("/etc/shadow: permission denied")),
                ..accounts(&[ROOT], &[], &[], &[])
            }),
            Status::Error,
            "permission denied",
        ),
        row(
            "not collected",
            a(R::ShadowPasswords),
            Facts::default(),
            Status::Error,
            NOT_COLLECTED,
        ),
    ]);
}

#[test]
fn weak_hash_evidence_never_quotes_the_hash() {
    let facts = with_accounts(accounts(
        &[ROOT],
        &["root:$1$salt$secrethash:1::::::"],
        &[],
        &[],
    ));
    let r = run(
        Check::Accounts(acc(AccountsRequirement::StrongPasswordHashes)),
        &facts,
    );
    assert_eq!(r.status, Status::Fail);
    let all = format!("{:?} {:?}", r.actual, r.evidence);
    assert!(!all.contains("secrethash"), "{all}");
    assert_eq!(r.evidence[0].line, Some(1));
}

// ---- package, service, listening, firewall ----

fn packages(names: &[&str]) -> Facts {
    let installed = names
        .iter()
        .map(|n| {
            (
                n.to_string(),
                Package {
                    name: n.to_string(),
                    version: "1.0".into(),
                    evidence: Evidence::line("/var/lib/dpkg/status", 1, format!("Package: {n}")),
                },
            )
        })
        .collect();
    Facts {
        packages: Some(Ok(PackagesFact {
            installed,
            databases: vec!["/var/lib/dpkg/status".into()],
            format: PackageFormat::Dpkg,
        })),
        ..Facts::default()
    }
}

/// One installed package at `version`, from a database of `format`.
fn versioned(format: PackageFormat, name: &str, version: &str) -> Facts {
    let db = match format {
        PackageFormat::Dpkg => "/var/lib/dpkg/status",
        PackageFormat::Rpm => "/var/lib/rpm/rpmdb.sqlite",
    };
    let package = Package {
        name: name.to_string(),
        version: version.to_string(),
        evidence: Evidence::text(db, format!("{name}-{version}")),
    };
    Facts {
        packages: Some(Ok(PackagesFact {
            installed: [(name.to_string(), package)].into(),
            databases: vec![db.into()],
            format,
        })),
        ..Facts::default()
    }
}

fn service(
    unit: &str,
    file: bool,
    masked: bool,
    enabled: bool,
    active: Live<Probed<bool>>,
) -> Facts {
    let mut facts = Facts::default();
    facts.services.insert(
        unit.to_string(),
        Ok(ServiceFact {
            unit: unit.to_string(),
            unit_file: file.then(|| format!("/lib/systemd/system/{unit}")),
            masked,
            enabled_by: if enabled {
                vec![Evidence::text(
                    format!("/etc/systemd/system/multi-user.target.wants/{unit}"),
                    "link",
                )]
            } else {
                Vec::new()
            },
            active,
        }),
    );
    facts
}

fn svc(unit: &str, enabled: Option<bool>, active: Option<bool>) -> Check {
    Check::Service(ServiceCheck {
        unit: unit.to_string(),
        enabled,
        active,
    })
}

fn sockets(list: &[(&str, u16, Proto, Option<&str>)]) -> Facts {
    Facts {
        listening: Some(Ok(Live::Value(ListeningFact {
            sockets: list
                .iter()
                .map(|(addr, port, proto, comm)| Socket {
                    proto: *proto,
                    address: addr.parse::<IpAddr>().unwrap(),
                    port: *port,
                    inode: 1,
                    process: comm.map(|c| (42, c.to_string())),
                })
                .collect(),
        }))),
        ..Facts::default()
    }
}

fn chain(family: Family, policy: &str, ends_in_drop: bool) -> InputChain {
    InputChain {
        family,
        name: format!("{family:?} input"),
        policy: policy.to_string(),
        ends_in_unconditional_drop: ends_in_drop,
        evidence: Evidence::text("nft -j list ruleset", "chain"),
    }
}

fn firewall(chains: Vec<InputChain>) -> Facts {
    Facts {
        firewall: Some(Ok(Live::Value(FirewallFact {
            input_chains: chains,
            sources: vec!["nft -j list ruleset".into()],
        }))),
        ..Facts::default()
    }
}

#[test]
fn system_table() {
    let pkg = |name: &str, installed: bool| {
        Check::Package(PackageCheck {
            name: name.to_string(),
            installed,
            min_version: None,
        })
    };
    let at_least = |name: &str, min: &str| {
        Check::Package(PackageCheck {
            name: name.to_string(),
            installed: true,
            min_version: Some(min.to_string()),
        })
    };
    let (dpkg, rpm) = (PackageFormat::Dpkg, PackageFormat::Rpm);
    let listen = |allowed: Vec<(u16, ListenProto)>, lo: bool| {
        Check::Listening(ListeningCheck {
            allowed,
            include_loopback: lo,
        })
    };
    let fw = || {
        Check::Firewall(FirewallCheck {
            input_default: "drop".into(),
        })
    };
    let offline = || Live::NotApplicable("offline image".to_string());
    check_table(vec![
        row(
            "package absent",
            pkg("telnetd", false),
            packages(&["openssh-server"]),
            Status::Pass,
            "not installed",
        ),
        row(
            "package present",
            pkg("telnetd", false),
            packages(&["telnetd"]),
            Status::Fail,
            "installed 1.0",
        ),
        row(
            "package required",
            pkg("openssh-server", true),
            packages(&["openssh-server"]),
            Status::Pass,
            "installed",
        ),
        row(
            "rpm: epoch beats version",
            at_least("openssl", "3.0.7-1"),
            versioned(rpm, "openssl", "1:3.0.1-4.el9"),
            Status::Pass,
            "installed 1:3.0.1-4.el9 (rpm ordering)",
        ),
        row(
            "rpm: older release fails",
            at_least("openssl", "1:3.0.7-25.el9"),
            versioned(rpm, "openssl", "1:3.0.7-24.el9"),
            Status::Fail,
            "installed 1:3.0.7-24.el9",
        ),
        row(
            "rpm: a minimum without release accepts every release",
            at_least("openssl", "1:3.0.7"),
            versioned(rpm, "openssl", "1:3.0.7-1.el9"),
            Status::Pass,
            "installed",
        ),
        row(
            "rpm: letters are older than digits",
            at_least("pkg", "1.1"),
            versioned(rpm, "pkg", "1.a-1"),
            Status::Fail,
            "(rpm ordering)",
        ),
        row(
            "dpkg: letters are newer than the end of a run",
            at_least("pkg", "1.1"),
            versioned(dpkg, "pkg", "1.a-1"),
            Status::Pass,
            "(dpkg ordering)",
        ),
        row(
            "dpkg: tilde sorts before the release",
            at_least("openssh-server", "1:9.2p1-2"),
            versioned(dpkg, "openssh-server", "1:9.2p1-2~bpo1"),
            Status::Fail,
            "installed 1:9.2p1-2~bpo1",
        ),
        row(
            "minimum version of an absent package",
            at_least("openssl", "1.0"),
            packages(&[]),
            Status::Fail,
            "not installed",
        ),
        row(
            "package_installed shorthand",
            Check::PackageInstalled("auditd".into()),
            packages(&[]),
            Status::Fail,
            "not installed",
        ),
        row(
            "package db unreadable",
            pkg("x", false),
            Facts {
                packages: Some(Err(ProbeFailure::new("status: bad stanza"))),
                ..Facts::default()
            },
            Status::Error,
            "bad stanza",
        ),
        row(
            "enabled",
            svc("ssh.service", Some(true), None),
            service("ssh.service", true, false, true, offline()),
            Status::Pass,
            "enabled",
        ),
        row(
            "disabled but required",
            svc("ssh.service", Some(true), None),
            service("ssh.service", true, false, false, offline()),
            Status::Fail,
            "disabled",
        ),
        row(
            "masked is not enabled",
            svc("telnet.socket", Some(false), None),
            service("telnet.socket", true, true, true, offline()),
            Status::Pass,
            "masked",
        ),
        row(
            "missing unit not active",
            svc("avahi-daemon.service", None, Some(false)),
            service(
                "avahi-daemon.service",
                false,
                false,
                false,
                Live::Value(Err(ProbeFailure::new("no systemd"))),
            ),
            Status::Pass,
            "not installed",
        ),
        row(
            "missing unit not enabled",
            svc("avahi-daemon.service", Some(false), None),
            service("avahi-daemon.service", false, false, false, offline()),
            Status::Pass,
            "not installed",
        ),
        row(
            "active offline",
            svc("avahi-daemon.service", None, Some(false)),
            service("avahi-daemon.service", true, false, false, offline()),
            Status::NotApplicable,
            "offline",
        ),
        row(
            "active live",
            svc("avahi-daemon.service", None, Some(false)),
            service(
                "avahi-daemon.service",
                true,
                false,
                true,
                Live::Value(Ok(true)),
            ),
            Status::Fail,
            "active",
        ),
        row(
            "active unknown",
            svc("avahi-daemon.service", None, Some(false)),
            service(
                "avahi-daemon.service",
                true,
                false,
                true,
                Live::Value(Err(ProbeFailure::new("systemd not reachable"))),
            ),
            Status::Error,
            "systemd",
        ),
        row(
            "listening allowed",
            listen(vec![(22, ListenProto::Tcp)], false),
            sockets(&[
                ("0.0.0.0", 22, Proto::Tcp, Some("sshd")),
                ("127.0.0.1", 25, Proto::Tcp, None),
            ]),
            Status::Pass,
            "",
        ),
        row(
            "listening unexpected",
            listen(vec![(22, ListenProto::Tcp)], false),
            sockets(&[
                ("0.0.0.0", 22, Proto::Tcp, Some("sshd")),
                ("::", 111, Proto::Udp, Some("rpcbind")),
            ]),
            Status::Fail,
            "111/udp (rpcbind)",
        ),
        row(
            "proto matters",
            listen(vec![(22, ListenProto::Tcp)], false),
            sockets(&[("0.0.0.0", 22, Proto::Udp, None)]),
            Status::Fail,
            "22/udp",
        ),
        row(
            "loopback included",
            listen(vec![], true),
            sockets(&[("::1", 25, Proto::Tcp, Some("exim4"))]),
            Status::Fail,
            "25/tcp",
        ),
        row(
            "listening offline",
            listen(vec![], false),
            Facts {
                listening: Some(Ok(Live::NotApplicable("offline image".into()))),
                ..Facts::default()
            },
            Status::NotApplicable,
            "offline",
        ),
        row(
            "inet drop",
            fw(),
            firewall(vec![chain(Family::Inet, "drop", false)]),
            Status::Pass,
            "",
        ),
        row(
            "ip + ip6 drop",
            fw(),
            firewall(vec![
                chain(Family::Ipv4, "accept", true),
                chain(Family::Ipv6, "drop", false),
            ]),
            Status::Pass,
            "",
        ),
        row(
            "ipv6 uncovered",
            fw(),
            firewall(vec![chain(Family::Ipv4, "drop", false)]),
            Status::Fail,
            "IPv6",
        ),
        row(
            "one accepting chain",
            fw(),
            firewall(vec![
                chain(Family::Inet, "drop", false),
                chain(Family::Ipv4, "accept", false),
            ]),
            Status::Fail,
            "policy accept",
        ),
        row("no chains", fw(), firewall(vec![]), Status::Fail, "IPv4"),
        row(
            "firewall offline",
            fw(),
            Facts {
                firewall: Some(Ok(Live::NotApplicable("offline image".into()))),
                ..Facts::default()
            },
            Status::NotApplicable,
            "offline",
        ),
        row(
            "firewall not collected",
            fw(),
            Facts::default(),
            Status::Error,
            NOT_COLLECTED,
        ),
    ]);
}

// ---- combinators, when, waivers ----

fn sysctl_is(key: &str, v: &str) -> Check {
    sysctl_check(key, eq(v), false)
}

fn three_sysctls() -> Facts {
    let mut facts = sysctl_facts("a", Ok(Some("1")), None);
    facts
        .sysctl
        .extend(sysctl_facts("b", Ok(Some("0")), None).sysctl);
    facts
        .sysctl
        .extend(sysctl_facts("broken", Err(ProbeFailure::new("EIO")), None).sysctl);
    facts
}

#[test]
fn combinator_table() {
    let pass = || sysctl_is("a", "1");
    let fail = || sysctl_is("b", "1");
    let err = || sysctl_is("broken", "1");
    let na = || sshd_check("PermitRootLogin", eq("no"), None);
    let mut facts = three_sysctls();
    facts.sshd = Some(Ok(SshdFact::NotInstalled));
    let rows = vec![
        ("all pass", Check::All(vec![pass(), pass()]), Status::Pass),
        (
            "all with a fail",
            Check::All(vec![pass(), fail()]),
            Status::Fail,
        ),
        (
            "all fail beats error",
            Check::All(vec![err(), fail()]),
            Status::Fail,
        ),
        ("all error", Check::All(vec![pass(), err()]), Status::Error),
        (
            "all ignores n/a",
            Check::All(vec![pass(), na()]),
            Status::Pass,
        ),
        ("all of n/a", Check::All(vec![na()]), Status::NotApplicable),
        ("any pass", Check::Any(vec![fail(), pass()]), Status::Pass),
        (
            "any pass beats error",
            Check::Any(vec![err(), pass()]),
            Status::Pass,
        ),
        ("any error", Check::Any(vec![err(), fail()]), Status::Error),
        ("any fail", Check::Any(vec![fail(), fail()]), Status::Fail),
        ("not pass", Check::Not(Box::new(pass())), Status::Fail),
        ("not fail", Check::Not(Box::new(fail())), Status::Pass),
        ("not error", Check::Not(Box::new(err())), Status::Error),
        ("not n/a", Check::Not(Box::new(na())), Status::NotApplicable),
    ];
    let mut failures = Vec::new();
    for (name, check, want) in rows {
        let got = run(check, &facts).status;
        if got != want {
            failures.push(format!("{name}: want {want}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn all_failure_reports_only_the_failing_part() {
    let r = run(
        Check::All(vec![sysctl_is("a", "1"), sysctl_is("b", "1")]),
        &three_sysctls(),
    );
    assert_eq!(r.expected.as_deref(), Some("a = 1 and b = 1"));
    assert_eq!(r.actual.as_deref(), Some("0"));
    assert_eq!(r.evidence.len(), 1);
    let r = run(Check::Not(Box::new(sysctl_is("a", "1"))), &three_sysctls());
    assert_eq!(r.expected.as_deref(), Some("not (a = 1)"));
}

#[test]
fn when_decides_applicability() {
    let facts = three_sysctls();
    let with_when = |when: Check| {
        let mut r = rule("r", sysctl_is("b", "1"));
        r.when = Some(when);
        let p = policy(vec![r]);
        let ctx = Context {
            waivers: &[],
            today: today(),
        };
        evaluate(&p, &facts, &ctx).remove(0)
    };
    assert_eq!(with_when(sysctl_is("a", "1")).status, Status::Fail);
    let na = with_when(sysctl_is("a", "0"));
    assert_eq!(na.status, Status::NotApplicable);
    assert!(na.message.unwrap_or_default().contains("a = 0"));
    let err = with_when(sysctl_is("broken", "0"));
    assert_eq!(err.status, Status::Error);
    assert_eq!(err.message.as_deref(), Some("when: EIO"));
    let missing = with_when(sysctl_is("never-collected", "0"));
    assert_eq!(missing.status, Status::Error);
}

fn waiver(rule: &str, expires: jiff::civil::Date) -> Waiver {
    Waiver {
        policy: "p".into(),
        rule: rule.into(),
        reason: "jump host".into(),
        expires,
        location: Location::default(),
    }
}

#[test]
fn waivers_cover_fail_and_error_until_they_expire() {
    let facts = three_sysctls();
    let d = jiff::civil::date;
    let cases = [
        (
            sysctl_is("b", "1"),
            waiver("r", d(2027, 1, 31)),
            Status::Waived,
            Some(Status::Fail),
        ),
        (
            sysctl_is("b", "1"),
            waiver("r", d(2026, 11, 22)),
            Status::Waived,
            Some(Status::Fail),
        ),
        (
            sysctl_is("b", "1"),
            waiver("r", d(2026, 11, 21)),
            Status::Fail,
            None,
        ),
        (
            sysctl_is("b", "1"),
            waiver("other", d(2027, 1, 31)),
            Status::Fail,
            None,
        ),
        (
            sysctl_is("broken", "1"),
            waiver("r", d(2027, 1, 31)),
            Status::Waived,
            Some(Status::Error),
        ),
        (
            sysctl_is("a", "1"),
            waiver("r", d(2027, 1, 31)),
            Status::Pass,
            None,
        ),
    ];
    for (i, (check, w, status, under)) in cases.into_iter().enumerate() {
        let r = run_with(check, &facts, &[w]);
        assert_eq!((r.status, r.waived_status), (status, under), "case {i}");
        let message = r.message.unwrap_or_default();
        match (status, i) {
            (Status::Waived, _) => assert!(message.contains("waived until"), "{message}"),
            (_, 2) => assert!(
                message.contains("waiver expired on 2026-11-21"),
                "{message}"
            ),
            _ => assert!(!message.contains("waive"), "{message}"),
        }
    }
}

#[test]
fn required_facts_cover_check_when_and_match_users() {
    let mut r1 = rule(
        "r1",
        sshd_check(
            "PermitRootLogin",
            eq("no"),
            Some(SshdMatch {
                user: Some("alice".into()),
                ..SshdMatch::default()
            }),
        ),
    );
    r1.when = Some(Check::FileExists("/usr/sbin/sshd".into()));
    let r2 = rule(
        "r2",
        Check::All(vec![
            Check::Not(Box::new(Check::PackageInstalled("nis".into()))),
            Check::File(FileCheck {
                contains: Regex::new("x").ok(),
                ..file_check("/etc/motd")
            }),
            sysctl_is("net.ipv4.ip_forward", "0"),
        ]),
    );
    let keys = required_facts(&[policy(vec![r1, r2])]);
    let want: BTreeSet<FactKey> = [
        FactKey::Sshd,
        FactKey::Accounts,
        FactKey::File {
            path: "/usr/sbin/sshd".into(),
            content: false,
        },
        FactKey::Packages,
        FactKey::File {
            path: "/etc/motd".into(),
            content: true,
        },
        FactKey::Sysctl("net.ipv4.ip_forward".into()),
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, want);
    let plain = rule("r3", sshd_check("PermitRootLogin", eq("no"), None));
    assert_eq!(rule_facts(&plain), [FactKey::Sshd].into_iter().collect());
}

#[test]
fn report_counts_and_names_policies() {
    let facts = three_sysctls();
    let p = policy(vec![
        rule("ok", sysctl_is("a", "1")),
        rule("bad", sysctl_is("b", "1")),
    ]);
    let ctx = Context {
        waivers: &[],
        today: today(),
    };
    let results = evaluate(&p, &facts, &ctx);
    let report = build_report(
        HostInfo {
            hostname: "web-1".into(),
            root: "/".into(),
        },
        "2026-11-22T10:00:00Z".into(),
        1.5,
        &[p],
        results,
    );
    assert_eq!(report.schema, "hardend.report/v1");
    assert_eq!(
        (
            report.summary.total,
            report.summary.pass,
            report.summary.fail
        ),
        (2, 1, 1)
    );
    assert_eq!(report.policies[0].id, "p");
    assert_eq!(report.summary.score(), Some(50.0));
}
