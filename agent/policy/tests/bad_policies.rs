//! Data-driven table of invalid policies: each case lists the exact `file:line:col: message` lines it must produce, all at once.

use std::path::Path;

use hardend_policy::parse_policy;

/// The header every case starts from, so line numbers stay readable.
const HEAD: &str = "policy:\n  id: p\n  title: T\n  version: \"1\"\nrules:\n";

struct Case {
    name: &'static str,
    /// The whole file when `whole` is true, else the rules after `HEAD`
    /// (which makes the first rule line 6).
    yaml: &'static str,
    whole: bool,
    expected: &'static [&'static str],
}

const fn rules(name: &'static str, yaml: &'static str, expected: &'static [&'static str]) -> Case {
    Case {
        name,
        yaml,
        whole: false,
        expected,
    }
}

const fn file(name: &'static str, yaml: &'static str, expected: &'static [&'static str]) -> Case {
    Case {
        name,
        yaml,
        whole: true,
        expected,
    }
}

const CASES: &[Case] = &[
    file(
        "empty_file",
        "",
        &["p.yaml:1:1: the policy file is empty; it needs `policy:` and `rules:`"],
    ),
    file(
        "top_level_list",
        "- a\n- b\n",
        &["p.yaml:1:1: a policy file must be a mapping with `policy:` and `rules:`, found a list"],
    ),
    file(
        "missing_rules_and_unknown_top_key",
        "policy: {id: p, title: T, version: \"1\"}\nrulez: []\n",
        &[
            "p.yaml:1:1: missing required field `rules` in the policy file",
            "p.yaml:2:1: unknown field `rulez` in the policy file; expected one of: policy, rules",
        ],
    ),
    file(
        "missing_policy",
        "rules: []\n",
        &["p.yaml:1:1: missing required field `policy` in the policy file"],
    ),
    file(
        "two_policy_keys",
        "policy: {id: p, title: T, version: \"1\"}\npolicy: {id: q, title: T, version: \"1\"}\nrules: []\n",
        &["p.yaml:2:1: duplicate mapping key `policy` is not allowed here"],
    ),
    file(
        "rules_not_a_list",
        "policy: {id: p, title: T, version: \"1\"}\nrules: {id: r}\n",
        &["p.yaml:2:8: `rules` must be a list of rules, found a mapping"],
    ),
    file(
        "bad_header",
        "policy:\n  id: Linux_Baseline\n  title: \"\"\n  owner: me\nrules: []\n",
        &[
            "p.yaml:2:3: missing required field `version` in `policy`",
            "p.yaml:2:7: invalid policy id `Linux_Baseline`: ids must match [a-z0-9][a-z0-9._-]*",
            "p.yaml:3:10: `title` must not be empty",
            "p.yaml:4:3: unknown field `owner` in `policy`; expected one of: id, title, version, description",
        ],
    ),
    file(
        "yaml_syntax_error",
        "policy: {id: p\nrules: []\n",
        &["p.yaml:2:6: while parsing a flow mapping, did not find expected ',' or '}'"],
    ),
    rules(
        "three_mistakes_three_lines",
        r#"
  - id: r1
    title: T
    severity: urgent
    check: { sysctl: { key: net.ipv4.ip_forward, equal: 0 } }
    remedy: x
"#,
        &[
            "p.yaml:8:15: unknown severity `urgent`; expected one of: critical, high, medium, low",
            "p.yaml:9:22: `sysctl` check needs at least one comparison: equals, in, not_in, min, max, matches",
            "p.yaml:9:50: unknown field `equal` in `sysctl` check; expected one of: key, equals, in, not_in, min, max, matches, persistent",
            "p.yaml:10:5: unknown field `remedy` in rule `r1`; expected one of: id, title, severity, rationale, remediation, references, when, check",
        ],
    ),
    rules(
        "rule_missing_fields",
        "  - id: r1\n",
        &[
            "p.yaml:6:5: missing required field `title` in rule `r1`",
            "p.yaml:6:5: missing required field `severity` in rule `r1`",
            "p.yaml:6:5: missing required field `check` in rule `r1`",
        ],
    ),
    rules(
        "bad_and_duplicate_rule_ids",
        r#"
  - { id: same, title: T, severity: low, check: { package_installed: x } }
  - { id: same, title: T, severity: low, check: { package_installed: x } }
  - { id: -leading-dash, title: T, severity: low, check: { package_installed: x } }
  - { id: UPPER, title: T, severity: low, check: { package_installed: x } }
"#,
        &[
            "p.yaml:7:11: duplicate rule id `same` (first defined at line 6)",
            "p.yaml:8:11: invalid rule id `-leading-dash`: ids must match [a-z0-9][a-z0-9._-]*",
            "p.yaml:9:11: invalid rule id `UPPER`: ids must match [a-z0-9][a-z0-9._-]*",
        ],
    ),
    rules(
        "check_kinds",
        r#"
  - { id: a, title: T, severity: low, check: {} }
  - { id: b, title: T, severity: low, check: { sysctl: { key: k, equals: 1 }, package: { name: x, installed: true } } }
  - { id: c, title: T, severity: low, check: { registry: { key: k } } }
  - { id: d, title: T, severity: low, check: [ { package_installed: x } ] }
"#,
        &[
            "p.yaml:6:46: a check needs one of: sysctl, sshd_config, file, accounts, package, service, listening, firewall, patches, reboot, processes, certificate, all, any, not, file_exists, package_installed",
            "p.yaml:7:79: a check must have exactly one kind, found `sysctl` and `package`",
            "p.yaml:8:48: unknown check kind `registry`; expected one of: sysctl, sshd_config, file, accounts, package, service, listening, firewall, patches, reboot, processes, certificate, all, any, not, file_exists, package_installed",
            "p.yaml:9:46: a check must be a mapping with one of: sysctl, sshd_config, file, accounts, package, service, listening, firewall, patches, reboot, processes, certificate, all, any, not, file_exists, package_installed; found a list",
        ],
    ),
    rules(
        "comparison_types",
        r#"
  - id: a
    title: T
    severity: high
    check:
      all:
        - sysctl: { key: k, equals: [1] }
        - sysctl: { key: k, in: 1 }
        - sysctl: { key: k, not_in: [] }
        - sysctl: { key: k, max: high }
        - sysctl: { key: k, min: 5, max: 1 }
        - sysctl: { key: k, equals: 1, persistent: yes }
        - sysctl: { key: /proc/sys/k, equals: 1 }
"#,
        &[
            "p.yaml:11:37: `equals` must be a string, number or boolean, found a list",
            "p.yaml:12:33: `in` must be a list, found an integer",
            "p.yaml:13:37: `not_in` must not be an empty list",
            "p.yaml:14:34: `max` must be a number, found a string",
            "p.yaml:15:34: `min` is greater than `max`",
            "p.yaml:16:52: `persistent` must be true or false, found a string",
            "p.yaml:17:26: invalid sysctl key `/proc/sys/k`: expected a dotted name like net.ipv4.ip_forward",
        ],
    ),
    rules(
        "regexes",
        r#"
  - id: a
    title: T
    severity: medium
    check:
      any:
        - sshd_config: { key: Ciphers, matches: "aes(128" }
        - file: { path: /etc/motd, contains: "[z-a]" }
        - file: { path: /etc/motd, not_contains: "a{1000}{1000}{1000}" }
        - file: { path: /etc/motd, contains: [a, b] }
"#,
        &[
            "p.yaml:11:49: invalid regular expression in `matches`: unclosed group",
            "p.yaml:12:46: invalid regular expression in `contains`: invalid character class range, the start must be <= the end",
            "p.yaml:13:50: invalid regular expression in `not_contains`: the pattern is too large (compiled size over 1048576 bytes)",
            "p.yaml:14:46: `contains` must be a regular expression (a string), found a list",
        ],
    ),
    rules(
        "file_fields",
        r#"
  - id: a
    title: T
    severity: medium
    check:
      all:
        - file: { path: etc/shadow, mode_max: "0999" }
        - file: { path: /etc/shadow, mode_max: -1 }
        - file: { path: /etc/shadow, owner: [], group: { name: root } }
        - file: { path: /etc/../shadow, exists: false, mode_max: "0600" }
        - file: { path: /etc/shadow }
        - file_exists: usr/sbin/sshd
"#,
        &[
            "p.yaml:11:25: `path` must be an absolute path, found `etc/shadow`",
            "p.yaml:11:47: `mode_max` must be an octal mode like \"0640\", found `0999`",
            "p.yaml:12:48: `mode_max` must not be negative",
            "p.yaml:13:45: `owner` must not be an empty list",
            "p.yaml:13:56: `group` must be a string or a list of strings, found a mapping",
            "p.yaml:14:25: `path` must not contain `..`",
            "p.yaml:14:56: `mode_max` cannot be checked on a file that must not exist",
            "p.yaml:15:17: `file` check needs at least one condition: exists, mode_max, owner, group, contains, not_contains",
            "p.yaml:16:24: `file_exists` must be an absolute path, found `usr/sbin/sshd`",
        ],
    ),
    rules(
        "accounts",
        r#"
  - id: a
    title: T
    severity: medium
    check:
      all:
        - accounts: { require: password-max-days, max: -1 }
        - accounts: { require: inactive-lock-days }
        - accounts: { require: password-min-days, max: 3 }
        - accounts: { require: no-empty-password }
        - accounts: { require: no-empty-passwords, allow: [root] }
        - accounts: { require: unique-uid0, allow: [] }
"#,
        &[
            "p.yaml:11:56: `max` must not be negative",
            "p.yaml:12:21: `require: inactive-lock-days` needs `max`",
            "p.yaml:13:21: `require: password-min-days` needs `min`",
            "p.yaml:13:51: `max` does not apply to `require: password-min-days`",
            "p.yaml:14:32: unknown accounts requirement `no-empty-password`; expected one of: no-empty-passwords, unique-uid0, no-duplicate-uids, no-duplicate-names, strong-password-hashes, system-accounts-no-login, password-max-days, password-min-days, inactive-lock-days, shadow-passwords",
            "p.yaml:15:52: `allow` does not apply to `require: no-empty-passwords`",
            "p.yaml:16:52: `allow` must not be an empty list",
        ],
    ),
    rules(
        "package_service_listening_firewall",
        r#"
  - id: a
    title: T
    severity: low
    check:
      all:
        - package: { name: telnetd }
        - service: { unit: ssh.service }
        - service: { unit: ../x.service, enabled: maybe }
        - listening: { allowed: ["22/tcp", "22", "70000/tcp", "53/sctp"] }
        - listening: { allowed: "22/tcp" }
        - firewall: { input_default: accept }
        - package: { name: openssl, installed: false, min_version: "3.0" }
        - package: { name: openssl, installed: true, min_version: "" }
"#,
        &[
            "p.yaml:11:20: missing required field `installed` in `package` check",
            "p.yaml:12:20: `service` check needs `enabled` or `active`",
            "p.yaml:13:28: invalid unit name `../x.service`",
            "p.yaml:13:51: `enabled` must be true or false, found a string",
            "p.yaml:14:44: invalid `allowed` entry `22`: expected PORT/tcp or PORT/udp with PORT 1-65535",
            "p.yaml:14:50: invalid `allowed` entry `70000/tcp`: expected PORT/tcp or PORT/udp with PORT 1-65535",
            "p.yaml:14:63: invalid `allowed` entry `53/sctp`: expected PORT/tcp or PORT/udp with PORT 1-65535",
            "p.yaml:15:33: `allowed` must be a list like [\"22/tcp\"], found a string",
            "p.yaml:16:38: unknown `input_default` value `accept`; expected drop (or reject)",
            "p.yaml:17:68: `min_version` needs `installed: true`",
            "p.yaml:18:67: `min_version` must not be empty",
        ],
    ),
    rules(
        "sshd_match_and_extensions",
        r#"
  - id: a
    title: T
    severity: critical
    check:
      all:
        - sshd_config: { key: PermitRootLogin, equals: "no", match: { user: alice, group: wheel } }
        - sshd_config: { key: PermitRootLogin, equals: "no", match: { lport: 99999 } }
        - sshd_config: { key: PermitRootLogin, equals: "no", match: {} }
        - sshd_config: { key: Permit Root, equals: "no", if_not_installed: skip }
"#,
        &[
            "p.yaml:11:84: unknown field `group` in `match`; expected one of: user, host, addr, laddr, lport, rdomain",
            "p.yaml:12:78: `lport` must be a port between 1 and 65535",
            "p.yaml:13:69: `match` needs at least one of: user, host, addr, laddr, lport, rdomain",
            "p.yaml:14:31: invalid sshd_config keyword `Permit Root`: keywords are letters and digits",
            "p.yaml:14:76: unknown `if_not_installed` value `skip`; expected one of: not_applicable, pass, fail",
        ],
    ),
    rules(
        "when_and_combinators",
        r#"
  - id: a
    title: T
    severity: low
    when: { file_exist: /usr/sbin/sshd }
    references: { cis: [1] }
    check:
      not: [ { package_installed: nis } ]
  - id: b
    title: T
    severity: low
    check: { any: [] }
"#,
        &[
            "p.yaml:9:13: unknown check kind `file_exist`; expected one of: sysctl, sshd_config, file, accounts, package, service, listening, firewall, patches, reboot, processes, certificate, all, any, not, file_exists, package_installed",
            "p.yaml:10:24: values of `references` must be strings, found a list",
            "p.yaml:12:12: a check must be a mapping with one of: sysctl, sshd_config, file, accounts, package, service, listening, firewall, patches, reboot, processes, certificate, all, any, not, file_exists, package_installed; found a list",
            "p.yaml:16:19: `any` needs at least one check",
        ],
    ),
];

#[test]
fn bad_policies_report_every_error_with_its_position() {
    let mut failures = Vec::new();
    for case in CASES {
        let source = if case.whole {
            case.yaml.to_string()
        } else {
            // Raw strings in the table start with a newline for readability.
            format!(
                "{HEAD}{}",
                case.yaml.strip_prefix('\n').unwrap_or(case.yaml)
            )
        };
        let actual: Vec<String> = match parse_policy(&source, Path::new("p.yaml")) {
            Ok(_) => vec!["<parsed without error>".to_string()],
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        };
        if actual != case.expected {
            failures.push(format!(
                "case `{}`:\n  expected:\n    {}\n  actual:\n    {}",
                case.name,
                case.expected.join("\n    "),
                actual.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_accessors_split_location_and_message() {
    let errors = parse_policy(
        "policy: {id: p, title: T, version: \"1\"}\nrules:\n  - { id: r, title: T, severity: urgent, check: { package_installed: x } }\n",
        Path::new("/etc/hardend/policies.d/p.yaml"),
    )
    .expect_err("unknown severity");
    assert_eq!(errors.len(), 1);
    let location = errors[0].location();
    assert_eq!(location.file, Path::new("/etc/hardend/policies.d/p.yaml"));
    assert_eq!((location.line, location.column), (3, 34));
    assert_eq!(
        errors[0].message(),
        "unknown severity `urgent`; expected one of: critical, high, medium, low"
    );
}

#[test]
fn control_characters_in_user_text_do_not_break_the_line() {
    let errors = parse_policy(
        &format!("{HEAD}  - {{ id: r, title: T, severity: \"lo\\nw\\u001b[31m\", check: {{ package_installed: x }} }}\n"),
        Path::new("p.yaml"),
    )
    .expect_err("bad severity");
    let line = errors[0].to_string();
    assert!(!line.contains('\n') && !line.contains('\u{1b}'), "{line:?}");
}
