//! The four patch-posture check kinds in the policy language: the contract
//! forms load into the model, and mistakes are reported at their position.

use std::path::Path;

use hardend_policy::{Check, parse_policy};

fn rule_check(check: &str) -> Result<Check, Vec<String>> {
    let text = format!(
        "policy: {{ id: p, title: P, version: \"1\" }}\nrules:\n  - id: r\n    title: R\n    severity: high\n    check: {check}\n"
    );
    parse_policy(&text, Path::new("p.yaml"))
        .map(|mut p| p.rules.remove(0).check)
        .map_err(|errors| errors.iter().map(|e| e.to_string()).collect())
}

#[test]
fn the_contract_forms_load() {
    let Ok(Check::Patches(p)) = rule_check("{ patches: { security_updates_pending: 0 } }") else {
        panic!("patches");
    };
    assert_eq!(p.security_updates_pending, 0);
    let Ok(Check::Reboot(r)) = rule_check("{ reboot: { required: false } }") else {
        panic!("reboot");
    };
    assert!(!r.required);
    let Ok(Check::Processes(p)) = rule_check("{ processes: { deleted_files_mapped: false } }")
    else {
        panic!("processes");
    };
    assert!(!p.deleted_files_mapped);
    assert!(p.commands.is_empty());
    let Ok(Check::Certificate(c)) = rule_check(
        "{ certificate: { path: /etc/ssl/private/server.pem, min_days_valid: 30, self_signed: false, min_key_bits: 2048 } }",
    ) else {
        panic!("certificate");
    };
    assert_eq!(c.path, "/etc/ssl/private/server.pem");
    assert_eq!(c.min_days_valid, Some(30));
    assert_eq!(c.self_signed, Some(false));
    assert_eq!(c.min_key_bits, Some(2048));
    assert!(!c.allow_weak_signatures);
}

#[test]
fn the_extensions_load() {
    let Ok(Check::Processes(p)) =
        rule_check("{ processes: { deleted_files_mapped: false, command: [sshd, nginx] } }")
    else {
        panic!("processes");
    };
    assert_eq!(p.commands, vec!["sshd".to_string(), "nginx".to_string()]);
    let Ok(Check::Certificate(c)) =
        rule_check("{ certificate: { path: /etc/ssl/certs, allow_weak_signatures: true } }")
    else {
        panic!("certificate");
    };
    assert_eq!(
        (c.min_days_valid, c.self_signed, c.min_key_bits),
        (None, None, None)
    );
    assert!(c.allow_weak_signatures);
}

/// Each bad check, the text its error points at, and the message.
#[test]
fn mistakes_are_reported_where_they_are() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "{ patches: { security_updates_pending: -1 } }",
            "-1",
            "`security_updates_pending` must be between 0 and 4294967295, found -1",
        ),
        ("{ patches: {} }", "{}", "`security_updates_pending`"),
        ("{ reboot: { required: maybe } }", "maybe", "`required`"),
        (
            "{ processes: { deleted_files_mapped: false, user: root } }",
            "user",
            "`user`",
        ),
        (
            "{ processes: { deleted_files_mapped: false, command: /usr/sbin/sshd } }",
            "/usr/sbin/sshd",
            "invalid `command` `/usr/sbin/sshd`",
        ),
        (
            "{ certificate: { path: server.pem } }",
            "server.pem",
            "`path` must be an absolute path, found `server.pem`",
        ),
        (
            "{ certificate: { path: /a, min_key_bits: 1000000 } }",
            "1000000",
            "`min_key_bits` must be between 0 and 65536, found 1000000",
        ),
    ];
    for (check, at, message) in cases {
        // The check starts at column 12 of line 6 (`    check: `).
        let column = 12 + check.find(at).expect("marker in the check");
        let want = format!("p.yaml:6:{column}: ");
        let errors = rule_check(check).expect_err(check);
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&want) && e.contains(message)),
            "{check}: {errors:?} has no error at {want} containing {message:?}"
        );
    }
}
