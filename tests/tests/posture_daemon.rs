//! The daemon watches the dpkg database and the apt lists: an `apt-get
//! update` that brings a security fix turns the patch rule to failing, and
//! the `apt-get upgrade` that installs it turns it back to passing, each
//! within a second. The files are replaced by rename, as apt and dpkg do.

mod daemon_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use daemon_support::{DaemonProcess, seq_kind_rule};
use hardend_tests::program;

const POLICY: &str = r#"
policy:
  id: posture-daemon
  title: Patch posture drift test
  version: "1"
rules:
  - id: security-updates-applied
    title: No security update is pending
    severity: high
    check:
      patches: { security_updates_pending: 0 }
  - id: no-reboot-pending
    title: No reboot is pending
    severity: high
    check:
      reboot: { required: false }
"#;

const LISTS: &str = "var/lib/apt/lists";
const SECURITY: &str = "deb.debian.org_debian-security_dists_bookworm-security";

fn status(openssl: &str) -> String {
    format!(
        "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n\nPackage: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: {openssl}\n"
    )
}

fn packages(openssl: &str) -> String {
    format!(
        "Package: openssl\nVersion: {openssl}\nArchitecture: amd64\n\nPackage: libc6\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\n"
    )
}

/// Writes `text` next to `path` and renames it into place.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("hardend-new");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[test]
fn apt_update_and_upgrade_flip_the_patch_rule_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(root.join("var/lib/dpkg/updates")).expect("mkdir");
    std::fs::create_dir_all(root.join(LISTS).join("partial")).expect("mkdir");
    std::fs::create_dir_all(root.join("run")).expect("mkdir");
    std::fs::create_dir_all(&policies).expect("mkdir");
    std::fs::write(policies.join("posture.yaml"), POLICY).expect("policy");
    std::fs::write(root.join("var/lib/dpkg/status"), status("3.0.11-1~deb12u1")).expect("status");
    std::fs::write(
        root.join(LISTS).join(format!("{SECURITY}_Release")),
        "Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\nCodename: bookworm-security\n",
    )
    .expect("release");
    let list = root
        .join(LISTS)
        .join(format!("{SECURITY}_main_binary-amd64_Packages"));
    std::fs::write(&list, packages("3.0.11-1~deb12u1")).expect("packages");
    let config = dir.path().join("hardend.yaml");
    std::fs::write(
        &config,
        format!(
            "root: {}\npolicies: [{}]\nstate_dir: {}\nsocket: {}\njournald: off\nwatch: {{ debounce_ms: 20 }}\n",
            root.display(),
            policies.display(),
            dir.path().join("state").display(),
            dir.path().join("run/hardend.sock").display()
        ),
    )
    .expect("config");
    let mut cmd = Command::new(program("hardend"));
    cmd.arg("run").arg("--config").arg(&config);
    let mut daemon = DaemonProcess::spawn(cmd, dir.path(), "posture");
    daemon.wait_notify("READY=1", Duration::from_secs(20));
    assert!(daemon.drift().is_empty(), "{:?}", daemon.lines());

    // `apt-get update`: the security suite now offers a newer openssl.
    let t = Instant::now();
    replace(&list, &packages("3.0.11-1~deb12u2"));
    let alerts = daemon.wait_drift(1, Duration::from_secs(5));
    let update_latency = t.elapsed();
    assert_eq!(
        seq_kind_rule(&alerts),
        vec![(
            1,
            "failing".to_string(),
            "security-updates-applied".to_string()
        )]
    );
    assert!(
        alerts[0]["HARDEND_ACTUAL"].contains("openssl 3.0.11-1~deb12u1 -> 3.0.11-1~deb12u2"),
        "{:?}",
        alerts[0]
    );

    // `apt-get upgrade`: dpkg installs it and asks for a reboot.
    let t = Instant::now();
    replace(
        &root.join("var/lib/dpkg/status"),
        &status("3.0.11-1~deb12u2"),
    );
    let alerts = daemon.wait_drift(2, Duration::from_secs(5));
    let upgrade_latency = t.elapsed();
    assert_eq!(
        seq_kind_rule(&alerts[1..]),
        vec![(
            2,
            "passing".to_string(),
            "security-updates-applied".to_string()
        )]
    );
    std::fs::write(root.join("run/reboot-required"), "").expect("flag");
    let alerts = daemon.wait_drift(3, Duration::from_secs(5));
    assert_eq!(
        seq_kind_rule(&alerts[2..]),
        vec![(3, "failing".to_string(), "no-reboot-pending".to_string())]
    );
    eprintln!(
        "drift latency: apt-get update {update_latency:?}, apt-get upgrade {upgrade_latency:?}"
    );
    assert!(
        update_latency < Duration::from_secs(1) && upgrade_latency < Duration::from_secs(1),
        "update {update_latency:?}, upgrade {upgrade_latency:?}"
    );
    let status = daemon.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
}
