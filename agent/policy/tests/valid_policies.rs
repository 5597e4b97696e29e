//! Valid policies parse into the expected model: the example of the format page, every documented check form, and the extensions.

use std::path::Path;

use hardend_policy::{
    AccountsRequirement, Check, ListenProto, MissingSshd, Severity, parse_policy,
};

const SPEC_EXAMPLE: &str = r#"policy:
  id: linux-baseline-ssh          # unique across loaded policies; [a-z0-9][a-z0-9._-]*
  title: SSH server hardening
  version: 1.0.0                  # free text, reported with every result
  description: ...                # optional
rules:
  - id: ssh-password-auth-disabled   # unique inside the policy; same charset as policy id
    title: SSH password authentication is disabled
    severity: critical            # critical | high | medium | low
    rationale: ...                # optional, shown to the operator
    remediation: ...              # optional, human text
    references: { cis-debian12: "5.1.12", dev-sec: "sshd-20" }   # optional map
    when: { file_exists: /usr/sbin/sshd }   # optional applicability; false -> not_applicable
    check:
      sshd_config: { key: PasswordAuthentication, equals: "no" }
"#;

#[test]
fn the_format_pages_example_parses_into_the_expected_model() {
    let policy = parse_policy(SPEC_EXAMPLE, Path::new("/p/ssh.yaml")).expect("valid policy");
    assert_eq!(policy.id, "linux-baseline-ssh");
    assert_eq!(policy.title, "SSH server hardening");
    assert_eq!(policy.version, "1.0.0");
    assert_eq!(policy.description.as_deref(), Some("..."));
    assert_eq!(policy.source, Path::new("/p/ssh.yaml"));
    assert_eq!(policy.rules.len(), 1);

    let rule = &policy.rules[0];
    assert_eq!(rule.id, "ssh-password-auth-disabled");
    assert_eq!(rule.title, "SSH password authentication is disabled");
    assert_eq!(rule.severity, Severity::Critical);
    assert_eq!(rule.rationale.as_deref(), Some("..."));
    assert_eq!(rule.remediation.as_deref(), Some("..."));
    assert_eq!(
        rule.references.iter().collect::<Vec<_>>(),
        vec![
            (&"cis-debian12".to_string(), &"5.1.12".to_string()),
            (&"dev-sec".to_string(), &"sshd-20".to_string())
        ]
    );
    assert!(matches!(&rule.when, Some(Check::FileExists(p)) if p == "/usr/sbin/sshd"));
    assert_eq!(
        (rule.location.line, rule.location.column),
        (7, 5),
        "a rule's location is its first key"
    );
    let Check::SshdConfig(sshd) = &rule.check else {
        panic!("expected an sshd_config check, got {:?}", rule.check);
    };
    assert_eq!(sshd.keyword, "PasswordAuthentication");
    assert_eq!(sshd.compare.equals.as_deref(), Some("no"));
    assert!(sshd.compare.in_.is_none() && sshd.compare.matches.is_none());
    assert!(sshd.connection.is_none());
    assert_eq!(sshd.if_not_installed, MissingSshd::NotApplicable);
}

/// Wraps one check in a policy with one rule and returns that check.
fn one_check(check: &str) -> Check {
    let source = format!(
        "policy: {{ id: p, title: T, version: \"1\" }}\nrules:\n  - id: r\n    title: T\n    severity: low\n    check: {check}\n"
    );
    match parse_policy(&source, Path::new("p.yaml")) {
        Ok(mut policy) => policy.rules.remove(0).check,
        Err(errors) => panic!(
            "{check} should be valid:\n{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

#[test]
fn every_documented_check_form_is_accepted() {
    let forms = [
        "{ sysctl: { key: net.ipv4.tcp_syncookies, equals: 1 } }",
        "{ sysctl: { key: net.ipv4.ip_forward, equals: 0, persistent: true } }",
        r#"{ sshd_config: { key: PermitRootLogin, in: ["no", "prohibit-password"] } }"#,
        "{ sshd_config: { key: MaxAuthTries, max: 4 } }",
        "{ sshd_config: { key: Ciphers, not_contains: [3des-cbc, aes128-cbc] } }",
        r#"{ sshd_config: { key: PermitRootLogin, equals: "no", match: { user: alice, host: h, addr: 10.0.0.5 } } }"#,
        r#"{ file: { path: /etc/shadow, exists: true, mode_max: "0640", owner: root, group: [root, shadow] } }"#,
        r#"{ file: { path: /etc/issue.net, not_contains: '\\v|\\r|\\m' } }"#,
        "{ file: { path: /etc/motd, contains: 'Authorized use only' } }",
        r#"{ file: { path: /etc/cron.d, mode_max: "0700" } }"#,
        "{ accounts: { require: no-empty-passwords } }",
        "{ accounts: { require: unique-uid0, allow: [root] } }",
        "{ accounts: { require: no-duplicate-uids } }",
        "{ accounts: { require: no-duplicate-names } }",
        "{ accounts: { require: strong-password-hashes } }",
        "{ accounts: { require: system-accounts-no-login } }",
        "{ accounts: { require: password-max-days, max: 365 } }",
        "{ accounts: { require: password-min-days, min: 1 } }",
        "{ accounts: { require: inactive-lock-days, max: 30 } }",
        "{ accounts: { require: shadow-passwords } }",
        "{ package: { name: telnetd, installed: false } }",
        "{ package: { name: openssh-server, installed: true } }",
        "{ service: { unit: telnet.socket, enabled: false } }",
        "{ service: { unit: ssh.service, enabled: true } }",
        "{ service: { unit: avahi-daemon.service, active: false } }",
        r#"{ listening: { allowed: ["22/tcp", "443/tcp", "323/udp"] } }"#,
        "{ firewall: { input_default: drop } }",
        "{ all: [ { sysctl: { key: a.b, equals: 1 } }, { file: { path: /etc/x, exists: true } } ] }",
        "{ any: [ { package_installed: x } ] }",
        "{ not: { package: { name: nis, installed: true } } }",
        "{ file_exists: /usr/sbin/sshd }",
        "{ package_installed: openssh-server }",
    ];
    for form in forms {
        one_check(form);
    }
}

#[test]
fn comparison_values_keep_the_text_the_user_wrote() {
    let Check::Sysctl(s) = one_check("{ sysctl: { key: a.b, equals: 1 } }") else {
        panic!("sysctl")
    };
    assert_eq!(s.compare.equals.as_deref(), Some("1"));
    let Check::SshdConfig(s) = one_check("{ sshd_config: { key: X11Forwarding, equals: no } }")
    else {
        panic!("sshd")
    };
    assert_eq!(s.compare.equals.as_deref(), Some("no"));
    let Check::SshdConfig(s) =
        one_check("{ sshd_config: { key: UsePAM, in: [yes, true, 1.0, 0x10] } }")
    else {
        panic!("sshd")
    };
    assert_eq!(
        s.compare.in_.as_deref(),
        Some(
            &[
                "yes".to_string(),
                "true".into(),
                "1.0".into(),
                "0x10".into()
            ][..]
        )
    );
    let Check::Sysctl(s) = one_check("{ sysctl: { key: a.b, min: -2, max: 2.5 } }") else {
        panic!("sysctl")
    };
    assert_eq!((s.compare.min, s.compare.max), (Some(-2.0), Some(2.5)));
}

#[test]
fn file_modes_and_owner_forms() {
    for (written, mode) in [
        (r#""0640""#, 0o640),
        (r#""640""#, 0o640),
        ("0640", 0o640),
        ("640", 0o640),
        (r#""04755""#, 0o4755),
    ] {
        let Check::File(f) = one_check(&format!(
            "{{ file: {{ path: /etc/x, mode_max: {written} }} }}"
        )) else {
            panic!("file")
        };
        assert_eq!(f.mode_max, Some(mode), "mode_max: {written}");
    }
    let Check::File(f) =
        one_check("{ file: { path: /etc/x, owner: root, group: [root, shadow] } }")
    else {
        panic!("file")
    };
    assert_eq!(f.owner, Some(vec!["root".to_string()]));
    assert_eq!(
        f.group,
        Some(vec!["root".to_string(), "shadow".to_string()])
    );
}

#[test]
fn regexes_compile_and_match_lines() {
    let Check::File(f) =
        one_check(r#"{ file: { path: /etc/issue.net, not_contains: '\\v|\\r|\\m' } }"#)
    else {
        panic!("file")
    };
    let re = f.not_contains.expect("regex");
    assert!(re.is_match(r"Debian \r"));
    assert!(!re.is_match("Authorized use only"));
}

#[test]
fn kinds_and_extensions_map_to_the_model() {
    let Check::Accounts(a) = one_check("{ accounts: { require: unique-uid0 } }") else {
        panic!("accounts")
    };
    assert_eq!(a.require, AccountsRequirement::UniqueUid0);
    assert_eq!(
        a.allow,
        vec!["root".to_string()],
        "root is allowed by default"
    );
    let Check::Accounts(a) = one_check("{ accounts: { require: password-max-days, max: 365 } }")
    else {
        panic!("accounts")
    };
    assert_eq!(
        (a.require, a.max, a.min),
        (AccountsRequirement::PasswordMaxDays, Some(365), None)
    );

    let Check::Listening(l) =
        one_check(r#"{ listening: { allowed: ["22/tcp", "323/udp"], include_loopback: true } }"#)
    else {
        panic!("listening")
    };
    assert_eq!(
        l.allowed,
        vec![(22, ListenProto::Tcp), (323, ListenProto::Udp)]
    );
    assert!(l.include_loopback);

    let Check::Firewall(fw) = one_check("{ firewall: { input_default: reject } }") else {
        panic!("firewall")
    };
    assert_eq!(fw.input_default, "reject");

    let Check::SshdConfig(s) = one_check(
        r#"{ sshd_config: { key: PermitRootLogin, equals: "no", if_not_installed: fail, match: { user: a, laddr: 10.0.0.1, lport: 2222, rdomain: r1 } } }"#,
    ) else {
        panic!("sshd")
    };
    assert_eq!(s.if_not_installed, MissingSshd::Fail);
    let m = s.connection.expect("match");
    assert_eq!(m.user.as_deref(), Some("a"));
    assert_eq!(m.laddr.as_deref(), Some("10.0.0.1"));
    assert_eq!(m.lport, Some(2222));
    assert_eq!(m.rdomain.as_deref(), Some("r1"));

    let Check::Not(inner) =
        one_check("{ not: { all: [ { package_installed: nis }, { file_exists: /etc/x } ] } }")
    else {
        panic!("not")
    };
    let Check::All(items) = *inner else {
        panic!("all")
    };
    assert!(matches!(&items[0], Check::PackageInstalled(n) if n == "nis"));
    assert!(matches!(&items[1], Check::FileExists(p) if p == "/etc/x"));
}

#[test]
fn anchors_and_aliases_are_followed() {
    let source = r#"policy: { id: p, title: T, version: "1" }
rules:
  - id: a
    title: T
    severity: low
    check: &shared { package: { name: telnetd, installed: false } }
  - id: b
    title: T
    severity: high
    check: *shared
"#;
    let policy = parse_policy(source, Path::new("p.yaml")).expect("valid");
    assert!(
        matches!(&policy.rules[1].check, Check::Package(p) if p.name == "telnetd" && !p.installed)
    );
}

#[test]
fn a_policy_may_have_no_rules_and_a_numeric_version() {
    let policy = parse_policy(
        "policy: { id: p, title: T, version: 1.10 }\nrules: []\n",
        Path::new("p.yaml"),
    )
    .expect("valid");
    assert_eq!(policy.version, "1.10", "the version is kept as written");
    assert!(policy.rules.is_empty());
}
