//! Live sysctl drift: `hardend run` with `root: /` and a sysctl-only policy,
//! inside a private network namespace (`unshare -n`), sees `sysctl -w
//! net.ipv4.ip_forward=1` through inotify on `/proc/sys` and alerts within a
//! second; setting it back is "back to passing". Only the namespace's own
//! `/proc/sys/net` is written, never the host's.

mod daemon_support;

use std::process::Command;
use std::time::Duration;

use daemon_support::{
    DaemonProcess, IP_FORWARD_POLICY, control_fifo, live_config, send, seq_kind_rule,
};
use hardend_tests::{have_command, is_root, program, require};

/// Runs in the new namespace: the initial assignments, then the daemon in
/// the background, then one `sysctl -w` per `set KEY=VALUE` line read from
/// the control FIFO, until `stop`. Everything comes in as positional
/// parameters; nothing is spliced into the text.
const SCRIPT: &str = r#"set -e
hardend="$1"; config="$2"; control="$3"; shift 3
for a in "$@"; do sysctl -q -w "$a"; done
"$hardend" run --config "$config" &
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
fn sysctl_w_in_a_network_namespace_alerts_within_a_second_and_back() {
    if !require(
        "unshare -n and sysctl (as root)",
        is_root() && have_command("unshare") && have_command("sysctl") && have_command("timeout"),
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = live_config(dir.path(), IP_FORWARD_POLICY);
    let control = control_fifo(dir.path());

    let mut cmd = Command::new("timeout");
    cmd.args(["60", "unshare", "-n", "--", "sh", "-c", SCRIPT, "sh"])
        .arg(program("hardend"))
        .arg(&config)
        .arg(&control)
        .arg("net.ipv4.ip_forward=0");
    let mut daemon = DaemonProcess::spawn(cmd, dir.path(), "netns");
    // Opening the FIFO waits for the script to open its end.
    let mut control = std::fs::OpenOptions::new()
        .write(true)
        .open(&control)
        .expect("open the control FIFO");
    daemon.wait_notify("READY=1", Duration::from_secs(20));
    assert!(daemon.drift().is_empty(), "{:#?}", daemon.lines());

    let at = send(&mut control, "set net.ipv4.ip_forward=1");
    let alerts = daemon.wait_drift(1, Duration::from_secs(1));
    let latency = at.elapsed();
    assert_eq!(
        seq_kind_rule(&alerts),
        vec![(1, "failing".to_string(), "ip-forward-off".to_string())]
    );
    assert_eq!(alerts[0]["HARDEND_ACTUAL"], "1");
    assert_eq!(alerts[0]["HARDEND_SEVERITY"], "critical");
    assert_eq!(alerts[0]["PRIORITY"], "2");
    eprintln!("sysctl drift latency (including sysctl itself): {latency:?}");

    send(&mut control, "set net.ipv4.ip_forward=0");
    let alerts = daemon.wait_drift(2, Duration::from_secs(1));
    assert_eq!(
        seq_kind_rule(&alerts[1..]),
        vec![(2, "passing".to_string(), "ip-forward-off".to_string())]
    );
    assert_eq!(alerts[1]["PRIORITY"], "6");

    send(&mut control, "stop");
    drop(control);
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit {status}: {:#?}", daemon.lines());
    assert_eq!(daemon.drift().len(), 2, "{:#?}", daemon.lines());
}
