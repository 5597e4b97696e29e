//! The shipped policies on a real Debian root: a debootstrapped bookworm
//! minbase with openssh-server, checked offline with `--root`. The verdicts
//! asserted are facts of a stock Debian; a hardening script then flips the
//! failures, and a weakening script flips passes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use hardend_tests::{copy_tree, debian_root, fixtures, program, shipped_policies};

/// rule id -> (status, actual) from `hardend check --root ROOT --format json`.
fn check(root: &Path) -> BTreeMap<String, (String, String)> {
    let out = Command::new(program("hardend"))
        .arg("check")
        .arg("--root")
        .arg(root)
        .arg("--policy")
        .arg(shipped_policies())
        .args(["--format", "json"])
        .output()
        .expect("run hardend");
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "hardend check exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["host"]["root"], root.display().to_string());
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("rule"), (s("status"), s("actual")))
        })
        .collect()
}

fn assert_statuses(results: &BTreeMap<String, (String, String)>, status: &str, rules: &[&str]) {
    let wrong: Vec<String> = rules
        .iter()
        .filter_map(|rule| match results.get(*rule) {
            Some((s, _)) if s == status => None,
            Some((s, actual)) => Some(format!(
                "{rule}: {s} (actual {actual:?}), expected {status}"
            )),
            None => Some(format!("{rule}: no result")),
        })
        .collect();
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

fn run_script(script: &str, root: &Path) {
    let status = Command::new("sh")
        .arg(fixtures().join("debian").join(script))
        .arg(root)
        .status()
        .expect("run script");
    assert!(status.success(), "{script} failed");
}

#[test]
fn stock_debian_verdicts_and_their_flips() {
    let Some(cached) = debian_root() else { return };
    let copy = copy_tree(&cached);
    let root = copy.path();

    let stock = check(root);
    assert_statuses(
        &stock,
        "pass",
        &[
            "accounts-no-empty-passwords",
            "accounts-unique-uid0",
            "accounts-shadow-passwords",
            "accounts-no-duplicate-uids",
            "file-shadow-permissions",
            "file-passwd-permissions",
            "pkg-telnetd-absent",
            "ssh-empty-passwords-disabled",
            "ssh-kbd-interactive-disabled",
            "ssh-use-pam",
            "ssh-host-key-ed25519-private-permissions",
        ],
    );
    // Stock Debian: sshd's compiled defaults and Debian's own sshd_config,
    // no sysctl.d settings, no password aging.
    assert_statuses(
        &stock,
        "fail",
        &[
            "ssh-root-login-disabled",
            "ssh-password-auth-disabled",
            "ssh-x11-forwarding-disabled",
            "ssh-max-auth-tries",
            "ssh-login-grace-time",
            "ssh-sshd-config-permissions",
            "net-ipv4-tcp-syncookies-enabled",
            "kernel-aslr-full",
            "fs-suid-dumpable-disabled",
            "accounts-password-max-days",
            "accounts-password-min-days",
        ],
    );
    assert_eq!(stock["ssh-password-auth-disabled"].1, "yes");
    assert_eq!(stock["ssh-root-login-disabled"].1, "prohibit-password");
    assert_eq!(stock["ssh-max-auth-tries"].1, "6");
    assert_eq!(stock["net-ipv4-tcp-syncookies-enabled"].1, "unset");
    // Live state is not the image's.
    assert_statuses(
        &stock,
        "not_applicable",
        &["firewall-input-default-deny", "listening-allowlist"],
    );

    run_script("harden.sh", root);
    let hardened = check(root);
    assert_statuses(
        &hardened,
        "pass",
        &[
            "ssh-root-login-disabled",
            "ssh-password-auth-disabled",
            "ssh-x11-forwarding-disabled",
            "ssh-max-auth-tries",
            "ssh-login-grace-time",
            "ssh-sshd-config-permissions",
            "net-ipv4-tcp-syncookies-enabled",
            "kernel-aslr-full",
            "fs-suid-dumpable-disabled",
            "accounts-password-max-days",
            "accounts-password-min-days",
        ],
    );

    run_script("weaken.sh", root);
    let weakened = check(root);
    assert_statuses(
        &weakened,
        "fail",
        &[
            "accounts-unique-uid0",
            "accounts-no-empty-passwords",
            "pkg-telnetd-absent",
        ],
    );
    assert!(
        weakened["accounts-unique-uid0"].1.contains("toor"),
        "{:?}",
        weakened["accounts-unique-uid0"]
    );
    assert!(weakened["accounts-no-empty-passwords"].1.contains("guest"));
    // Hardening that the weakening did not touch still holds.
    assert_statuses(
        &weakened,
        "pass",
        &["ssh-password-auth-disabled", "kernel-aslr-full"],
    );
}
