//! The agent under its unit's restrictions, without systemd: the capability
//! bounding set of `packaging/hardend.service` (applied with `setpriv`, with
//! no_new_privs), `/proc/sys` mounted read-only as ProtectKernelTunables does
//! (`unshare -m`), in a private network namespace (`unshare -n`). `hardend
//! check` gives the same verdicts as without the restrictions, while an empty
//! bounding set changes them (so the comparison can fail); the daemon still
//! sees `sysctl -w` from outside its mount namespace through inotify.

mod daemon_support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use daemon_support::{
    DaemonProcess, IP_FORWARD_POLICY, control_fifo, live_config, send, seq_kind_rule,
};
use hardend_tests::{have_command, is_root, program, repo_root, require, shipped_policies};

/// The `setpriv --bounding-set` argument for the unit's
/// `CapabilityBoundingSet=` (`-all,+dac_read_search,...`).
fn unit_bounding_set() -> String {
    let unit = std::fs::read_to_string(repo_root().join("packaging/hardend.service"))
        .expect("read hardend.service");
    let caps: Vec<String> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .flat_map(|v| v.split_whitespace())
        .map(|c| {
            let name = c
                .strip_prefix("CAP_")
                .unwrap_or_else(|| panic!("unexpected capability {c:?} in hardend.service"));
            format!("+{}", name.to_ascii_lowercase())
        })
        .collect();
    assert!(
        !caps.is_empty(),
        "hardend.service has no CapabilityBoundingSet="
    );
    format!("-all,{}", caps.join(","))
}

/// Runs in the new mount namespace: `/proc/sys` read-only (and proven so),
/// then the program with the given bounding set and no_new_privs. Everything
/// comes in as positional parameters; nothing is spliced into the text.
const SANDBOX: &str = r#"set -e
bounding="$1"; shift
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
if (echo 0 > /proc/sys/net/ipv4/ip_forward) 2>/dev/null; then
  echo "SANDBOX: /proc/sys is still writable" >&2; exit 97
fi
exec setpriv --no-new-privs --inh-caps=-all --bounding-set="$bounding" -- "$@""#;

fn sandbox_tools() -> bool {
    require(
        "unshare, setpriv, mount and sysctl (as root)",
        is_root()
            && have_command("unshare")
            && have_command("setpriv")
            && have_command("mount")
            && have_command("sysctl")
            && have_command("timeout"),
    )
}

/// `hardend check --format json` with the shipped policies, in a new network
/// namespace, optionally in the sandbox with `bounding`; rule -> status.
fn check(bounding: Option<&str>) -> BTreeMap<String, String> {
    let mut cmd = Command::new("timeout");
    cmd.args(["120", "unshare", "-n"]);
    if let Some(bounding) = bounding {
        cmd.args([
            "-m",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            SANDBOX,
            "sh",
        ])
        .arg(bounding);
    } else {
        cmd.arg("--");
    }
    cmd.arg(program("hardend"))
        .arg("check")
        .arg("--policy")
        .arg(shipped_policies())
        .args(["--format", "json"]);
    let out = cmd.output().expect("run hardend check");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| {
            // The patches policy looks at running processes, which come and go
            // between two runs on a busy machine; it is not compared.
            r["policy"] != "linux-baseline-patches"
        })
        .map(|r| {
            (
                format!(
                    "{}/{}",
                    r["policy"].as_str().unwrap_or("?"),
                    r["rule"].as_str().unwrap_or("?")
                ),
                r["status"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

fn differences(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    a.iter()
        .filter(|(rule, status)| b.get(*rule) != Some(*status))
        .map(|(rule, status)| format!("{rule}: {status} -> {:?}", b.get(rule)))
        .collect()
}

#[test]
fn check_under_the_units_capabilities_gives_the_unrestricted_verdicts() {
    if !sandbox_tools() {
        return;
    }
    let bounding = unit_bounding_set();
    let free = check(None);
    assert!(free.len() >= 200, "only {} results", free.len());
    let boxed = check(Some(&bounding));
    let diff = differences(&free, &boxed);
    assert!(
        diff.is_empty(),
        "with the unit's capabilities ({bounding}) these verdicts change:\n{}",
        diff.join("\n")
    );
    // The accounts rules read /etc/shadow: none of them may be an error.
    let shadow_errors: Vec<_> = boxed
        .iter()
        .filter(|(rule, status)| rule.starts_with("linux-baseline-accounts/") && *status == "error")
        .collect();
    assert!(shadow_errors.is_empty(), "{shadow_errors:?}");

    // The control: with no capability at all, something the agent must see
    // (the nftables ruleset, over netlink) is lost, so the comparison above
    // can fail.
    let bare = check(Some("-all"));
    let diff = differences(&free, &bare);
    assert!(
        diff.iter()
            .any(|d| d.starts_with("linux-baseline-firewall/")),
        "an empty bounding set changed no firewall verdict: {diff:?}"
    );
}

/// Runs in the new network namespace: the daemon in the sandbox (its own
/// mount namespace, /proc/sys read-only), and `sysctl -w` from outside that
/// mount namespace for each `set KEY=VALUE` line of the control FIFO.
const SCRIPT: &str = r#"set -e
sandbox="$1"; bounding="$2"; hardend="$3"; config="$4"; control="$5"
sysctl -q -w net.ipv4.ip_forward=0
unshare -m --propagation private -- sh -c "$sandbox" sh "$bounding" "$hardend" run --config "$config" &
pid=$!
while read -r cmd arg; do
  case "$cmd" in
    set) sysctl -q -w "$arg" ;;
    stop) break ;;
  esac
done < "$control"
kill -TERM "$pid"
wait "$pid""#;

#[test]
fn sandboxed_daemon_sees_sysctl_drift_through_read_only_proc_sys() {
    if !sandbox_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = live_config(dir.path(), IP_FORWARD_POLICY);
    let control = control_fifo(dir.path());

    let mut cmd = Command::new("timeout");
    cmd.args([
        "60", "unshare", "-n", "--", "sh", "-c", SCRIPT, "sh", SANDBOX,
    ])
    .arg(unit_bounding_set())
    .arg(program("hardend"))
    .arg(&config)
    .arg(&control);
    let mut daemon = DaemonProcess::spawn(cmd, dir.path(), "sandbox");
    let mut control = std::fs::OpenOptions::new()
        .write(true)
        .open(&control)
        .expect("open the control FIFO");
    daemon.wait_notify("READY=1", Duration::from_secs(20));
    assert!(daemon.drift().is_empty(), "{:#?}", daemon.lines());

    send(&mut control, "set net.ipv4.ip_forward=1");
    let alerts = daemon.wait_drift(1, Duration::from_secs(2));
    assert_eq!(
        seq_kind_rule(&alerts),
        vec![(1, "failing".to_string(), "ip-forward-off".to_string())]
    );
    assert_eq!(alerts[0]["HARDEND_ACTUAL"], "1");

    send(&mut control, "set net.ipv4.ip_forward=0");
    let alerts = daemon.wait_drift(2, Duration::from_secs(2));
    assert_eq!(
        seq_kind_rule(&alerts[1..]),
        vec![(2, "passing".to_string(), "ip-forward-off".to_string())]
    );

    send(&mut control, "stop");
    drop(control);
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit {status}: {:#?}", daemon.lines());
    assert!(
        !daemon.lines().iter().any(|l| l.contains("SANDBOX:")),
        "{:#?}",
        daemon.lines()
    );
}
