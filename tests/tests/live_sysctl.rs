//! Live sysctl: inside a private network namespace (`unshare -n`), values set
//! with `sysctl -w` are what `hardend check --root /` reports. The host's own
//! sysctls are never written: a network namespace has its own `/proc/sys/net`.

use std::path::Path;
use std::process::Command;

use hardend_tests::{have_command, is_root, program, require};

const POLICY: &str = r#"
policy:
  id: live-sysctl-test
  title: Live sysctl test
  version: "1"
rules:
  - id: ip-forward-off
    title: IPv4 forwarding is off
    severity: high
    check:
      sysctl: { key: net.ipv4.ip_forward, equals: 0 }
  - id: syncookies-on
    title: SYN cookies are on
    severity: high
    check:
      sysctl: { key: net.ipv4.tcp_syncookies, equals: 1 }
  - id: redirects-off
    title: ICMP redirects are not accepted
    severity: medium
    check:
      sysctl: { key: net.ipv4.conf.all.accept_redirects, equals: 0 }
"#;

/// Runs `hardend check --root /` in a new network namespace after setting
/// `assignments` there with `sysctl -w`, and returns rule id -> (status, actual).
fn check_in_netns(policy: &Path, assignments: &[&str]) -> Vec<(String, String, String)> {
    // A fixed script; the program, the policy and the assignments come in as
    // positional parameters, never spliced into the text.
    let script = r#"set -e
hardend="$1"; policy="$2"; shift 2
for a in "$@"; do sysctl -q -w "$a"; done
exec "$hardend" check --root / --policy "$policy" --format json"#;
    let out = Command::new("unshare")
        .args(["-n", "--", "sh", "-c", script, "sh"])
        .arg(program("hardend"))
        .arg(policy)
        .args(assignments)
        .output()
        .expect("run unshare");
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "hardend check in the namespace exited {code:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["schema"], "hardend.report/v1");
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap_or_default().to_string(),
                r["status"].as_str().unwrap_or_default().to_string(),
                r["actual"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn status_of<'a>(results: &'a [(String, String, String)], rule: &str) -> (&'a str, &'a str) {
    let r = results
        .iter()
        .find(|(id, _, _)| id == rule)
        .unwrap_or_else(|| panic!("no result for {rule}: {results:?}"));
    (r.1.as_str(), r.2.as_str())
}

#[test]
fn sysctl_values_set_in_a_namespace_are_seen_live() {
    if !require(
        "unshare -n and sysctl (as root)",
        is_root() && have_command("unshare") && have_command("sysctl"),
    ) {
        return;
    }
    let host_forward =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read host ip_forward");
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("live.yaml");
    std::fs::write(&policy, POLICY).expect("write policy");

    let weak = check_in_netns(
        &policy,
        &[
            "net.ipv4.ip_forward=1",
            "net.ipv4.tcp_syncookies=0",
            "net.ipv4.conf.all.accept_redirects=1",
        ],
    );
    assert_eq!(status_of(&weak, "ip-forward-off"), ("fail", "1"));
    assert_eq!(status_of(&weak, "syncookies-on"), ("fail", "0"));
    assert_eq!(status_of(&weak, "redirects-off"), ("fail", "1"));

    let hardened = check_in_netns(
        &policy,
        &[
            "net.ipv4.ip_forward=0",
            "net.ipv4.tcp_syncookies=1",
            "net.ipv4.conf.all.accept_redirects=0",
        ],
    );
    assert_eq!(status_of(&hardened, "ip-forward-off").0, "pass");
    assert_eq!(status_of(&hardened, "syncookies-on").0, "pass");
    assert_eq!(status_of(&hardened, "redirects-off").0, "pass");

    // The namespace's writes never reached the host.
    let after =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read host ip_forward");
    assert_eq!(host_forward, after, "the host's ip_forward changed");
}
